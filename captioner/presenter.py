"""Timing of what each OBS output shows: layout screens, throttled live captions, paced stream captions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import cea608
from .config import SOURCE, Config, LayoutConfig, OutputConfig
from .layout import CaptionScreen, LayoutSettings

log = logging.getLogger(__name__)
Clock = Callable[[], float]


def settings_of(layout: LayoutConfig) -> LayoutSettings:
    return LayoutSettings(
        max_width=layout.max_width,
        max_lines=layout.max_lines,
        rolling=layout.rolling,
        min_display_s=layout.min_display_s,
        clear_after_s=layout.clear_after_s,
    )


# A bilingual output waits this long for a final's other half before showing it alone.
PAIR_WAIT_S = 1.5
# A live partial of one input keeps the lane this long after it last grew; then another input's may take it.
PARTIAL_HOLD_S = 3.0
_MAX_WAITING = 16


@dataclass
class _Lane:
    """One language inside an output: its screen and a live caption waiting for its turn."""

    screen: CaptionScreen
    pending_partial: str | None = None
    partial_shown_at: float = field(default=-1e9)
    # The input whose sentence the live partial shows, and when it last grew: another input's partial waits for
    # that sentence's final, so two people speaking at once are never interleaved mid-sentence.
    partial_input: str | None = None
    partial_at: float = field(default=-1e9)


@dataclass
class _Waiting:
    language: str
    text: str
    arrived: float


@dataclass
class _View:
    """One OBS text source: one lane, or two (source above translation) for a bilingual output."""

    output: OutputConfig
    layout: LayoutConfig
    lanes: dict[str, _Lane]
    shown: str | None = None
    # Bilingual outputs: finals whose other half has not arrived yet, by item id.
    waiting: dict[str, _Waiting] = field(default_factory=dict)

    @classmethod
    def of(cls, output: OutputConfig, layout: LayoutConfig) -> _View:
        languages = [SOURCE, output.language] if output.with_source else [output.language]
        return cls(output, layout, {lang: _Lane(CaptionScreen(settings_of(layout))) for lang in languages})


class Presenter:
    """Feeds each output's laid-out text to `show(source, text, received_at)` as captions arrive and time passes."""

    def __init__(
        self, cfg: Config, show: Callable[[str, str, float | None], None], clock: Clock = time.monotonic
    ) -> None:
        self._show = show
        self._clock = clock
        self._views: list[_View] = []
        self._wake = asyncio.Event()
        self._due: float | None = None  # when the timer task wakes next (None: only for new input)
        self.set_outputs(cfg)

    def set_outputs(self, cfg: Config) -> None:
        """(Re)build the views; an output whose layout did not change keeps its screens."""
        old = {(v.output.obs_source, v.output.language, v.output.with_source): v for v in self._views}
        views = []
        for out in cfg.obs_outputs:
            layout = cfg.layout_for(out)
            kept = old.get((out.obs_source, out.language, out.with_source))
            if kept is not None and kept.layout == layout:
                kept.output = out
                views.append(kept)
            else:
                views.append(_View.of(out, layout))
        self._views = views
        now = self._clock()
        for view in views:
            self._refresh(view, now)  # a new output starts empty, not with a caption left from an earlier run
        self._wake.set()

    def caption(
        self,
        language: str,
        text: str,
        final: bool,
        received_at: float | None = None,
        item_id: str = "",
        pair_id: str = "",
        input_name: str = "",
    ) -> None:
        """A caption for `language` heard on `input_name`; finals show at once, live partials at most every
        `live_interval_s`; only outputs that take that input (outputs[].inputs) show it.

        `received_at` (perf_counter of the final's frame) travels with the text so OBS's confirmation can be timed;
        `item_id`/`pair_id` let a bilingual output show a translation together with its source sentence.
        """
        now = self._clock()
        # The timer task is woken only when this caption brings a change due before its next wake-up: a partial
        # that no output shows live changes nothing, and a final is laid out and shown here. With eight languages
        # it would lay out every output again for every event, in the moment the finals must reach OBS (#21).
        sooner = False
        for view in self._views:
            lane = view.lanes.get(language)
            if lane is None or not view.output.takes(input_name):
                continue
            if final:
                lane.pending_partial = None
                if lane.partial_input == input_name:
                    lane.partial_input = None
                if len(view.lanes) == 1:
                    lane.screen.final(text, now)
                elif (mate := view.waiting.pop(pair_id, None)) is not None:
                    view.lanes[mate.language].screen.final(mate.text, now)
                    lane.screen.final(text, now)
                else:
                    view.waiting[item_id or f"#{len(view.waiting)}:{now}"] = _Waiting(language, text, now)
                    while len(view.waiting) > _MAX_WAITING:
                        self._release(view, next(iter(view.waiting)), now)
            elif not view.layout.live:
                continue
            elif lane.partial_input not in (None, input_name) and now - lane.partial_at < PARTIAL_HOLD_S:
                continue  # another input's sentence is showing live: this one shows in full with its final
            else:
                lane.partial_input, lane.partial_at = input_name, now
                if now - lane.partial_shown_at >= view.layout.live_interval_s:
                    lane.screen.partial(text, now)
                    lane.partial_shown_at = now
                else:
                    lane.pending_partial = text
            self._refresh(view, now, received_at if final else None)
            sooner = sooner or self._comes_sooner(view, now)
        if sooner:
            self._wake.set()

    def _comes_sooner(self, view: _View, now: float) -> bool:
        """Whether `view` has a change due before the timer task's next wake-up (then it must wake earlier)."""
        due = [lane.screen.next_change(now) for lane in view.lanes.values()]
        due += [
            lane.partial_shown_at + view.layout.live_interval_s
            for lane in view.lanes.values()
            if lane.pending_partial is not None
        ]
        due += [w.arrived + PAIR_WAIT_S for w in view.waiting.values()]
        return any(t is not None and (self._due is None or t < self._due) for t in due)

    def shown(self, source: str) -> str:
        """The text last laid out for one output ("" for none, or before anything was)."""
        return next((v.shown or "" for v in self._views if v.output.obs_source == source), "")

    def clear(self, source: str | None = None) -> None:
        """Empty one output (by OBS source) or every output now: the operator asked for a clean screen."""
        now = self._clock()
        for view in self._views:
            if source is not None and view.output.obs_source != source:
                continue
            view.waiting.clear()
            for lane in view.lanes.values():
                lane.pending_partial = None
                lane.screen.clear(now)
            self._refresh(view, now)
        self._wake.set()

    def settle(self) -> None:
        """Stopping: show each output's last lines (and any half-pair) now instead of after their wait."""
        now = self._clock()
        for view in self._views:
            for item in list(view.waiting):
                self._release(view, item, now)
            for lane in view.lanes.values():
                lane.screen.settle(now)
            self._refresh(view, now)

    def _release(self, view: _View, item: str, now: float) -> None:
        """Show a final whose other half never came, alone: a late pair is better than a lost caption."""
        alone = view.waiting.pop(item)
        view.lanes[alone.language].screen.final(alone.text, now)

    def _refresh(self, view: _View, now: float, received_at: float | None = None) -> None:
        text = "\n".join(shown for lane in view.lanes.values() if (shown := lane.screen.render(now)))
        if text != view.shown:
            view.shown = text
            self._show(view.output.obs_source, text, received_at)

    def _next_due(self, now: float) -> float | None:
        due: list[float] = [w.arrived + PAIR_WAIT_S for view in self._views for w in view.waiting.values()]
        for view in self._views:
            for lane in view.lanes.values():
                if (t := lane.screen.next_change(now)) is not None:
                    due.append(t)
                if lane.pending_partial is not None:
                    due.append(lane.partial_shown_at + view.layout.live_interval_s)
        return min(due) if due else None

    def tick(self) -> None:
        """Apply whatever has come due: half-pairs that waited long enough, throttled partials, scrolls, clears."""
        now = self._clock()
        for view in self._views:
            for item, w in list(view.waiting.items()):
                if now - w.arrived >= PAIR_WAIT_S:
                    self._release(view, item, now)
            for lane in view.lanes.values():
                if lane.pending_partial is not None and now - lane.partial_shown_at >= view.layout.live_interval_s:
                    lane.screen.partial(lane.pending_partial, now)
                    lane.pending_partial, lane.partial_shown_at = None, now
            self._refresh(view, now)

    async def run(self) -> None:
        """Sleep until the next scheduled change (or new input), then apply it."""
        while True:
            self._wake.clear()
            due = self._due = self._next_due(self._clock())
            timeout = None if due is None else max(0.0, due - self._clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self.tick()


class StreamCaptionFeed:
    """One language's finals as CEA-608 pages, paced, handed to `send(page)` (OBS SendStreamCaption)."""

    def __init__(
        self,
        rows: int,
        min_interval_s: float,
        send: Callable[[str], None],
        on_skipped: Callable[[int], None] = lambda n: None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.rows = rows
        self._send = send
        self._on_skipped = on_skipped
        self._clock = clock
        self.pacer = cea608.CaptionPacer(min_interval_s=min_interval_s)
        self._wake = asyncio.Event()

    def caption(self, text: str) -> None:
        before = self.pacer.skipped
        self.pacer.push(cea608.pages(text, rows=self.rows))
        if self.pacer.skipped > before:
            # A burst outran the pacing: the oldest pages were skipped (the stream shows the newest).
            self._on_skipped(self.pacer.skipped - before)
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            now = self._clock()
            while (page := self.pacer.due(now)) is not None:
                self._send(page)
            due = self.pacer.next_due(now)
            timeout = None if due is None else max(0.0, due - self._clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
