"""Timing of what each OBS output shows: layout screens, throttled live captions, paced stream captions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import cea608
from .config import Config, LayoutConfig, OutputConfig
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


@dataclass
class _View:
    """One OBS text source: its screen, what it last showed, and a live caption waiting for its turn."""

    output: OutputConfig
    layout: LayoutConfig
    screen: CaptionScreen
    shown: str | None = None
    pending_partial: str | None = None
    partial_shown_at: float = field(default=-1e9)


class Presenter:
    """Feeds each output's laid-out text to `show(source, text)` as captions arrive and as time passes."""

    def __init__(
        self, cfg: Config, show: Callable[[str, str, float | None], None], clock: Clock = time.monotonic
    ) -> None:
        self._show = show
        self._clock = clock
        self._views: list[_View] = []
        self._wake = asyncio.Event()
        self.set_outputs(cfg)

    def set_outputs(self, cfg: Config) -> None:
        """(Re)build the views; an output whose layout did not change keeps its screen."""
        old = {(v.output.obs_source, v.output.language): v for v in self._views}
        views = []
        for out in cfg.outputs:
            layout = cfg.layout_for(out)
            kept = old.get((out.obs_source, out.language))
            if kept is not None and kept.layout == layout:
                kept.output = out
                views.append(kept)
            else:
                views.append(_View(out, layout, CaptionScreen(settings_of(layout))))
        self._views = views
        self._wake.set()

    def caption(self, language: str, text: str, final: bool, received_at: float | None = None) -> None:
        """A caption for `language`; finals show at once, live partials at most every `live_interval_s`.

        `received_at` (perf_counter of the final's frame) travels with the text so OBS's confirmation can be timed.
        """
        now = self._clock()
        for view in self._views:
            if view.output.language != language:
                continue
            if final:
                view.pending_partial = None
                view.screen.final(text, now)
            elif not view.layout.live:
                continue
            elif now - view.partial_shown_at >= view.layout.live_interval_s:
                view.screen.partial(text, now)
                view.partial_shown_at = now
            else:
                view.pending_partial = text
            self._refresh(view, now, received_at if final else None)
        self._wake.set()

    def clear(self) -> None:
        """Empty every output now (the operator asked for a clean screen)."""
        now = self._clock()
        for view in self._views:
            view.pending_partial = None
            view.screen.clear(now)
            self._refresh(view, now)
        self._wake.set()

    def settle(self) -> None:
        """Stopping: show each output's last lines now instead of after their scroll."""
        now = self._clock()
        for view in self._views:
            view.screen.settle(now)
            self._refresh(view, now)

    def texts(self) -> dict[str, str]:
        """What each source shows now (for /status)."""
        return {v.output.obs_source: v.shown or "" for v in self._views}

    def _refresh(self, view: _View, now: float, received_at: float | None = None) -> None:
        text = view.screen.render(now)
        if text != view.shown:
            view.shown = text
            self._show(view.output.obs_source, text, received_at)

    def _next_due(self, now: float) -> float | None:
        due: list[float] = []
        for view in self._views:
            if (t := view.screen.next_change(now)) is not None:
                due.append(t)
            if view.pending_partial is not None:
                due.append(view.partial_shown_at + view.layout.live_interval_s)
        return min(due) if due else None

    def tick(self) -> None:
        """Apply whatever has come due: throttled partials, scrolled lines, clears."""
        now = self._clock()
        for view in self._views:
            if view.pending_partial is not None and now - view.partial_shown_at >= view.layout.live_interval_s:
                view.screen.partial(view.pending_partial, now)
                view.pending_partial, view.partial_shown_at = None, now
            self._refresh(view, now)

    async def run(self) -> None:
        """Sleep until the next scheduled change (or new input), then apply it."""
        while True:
            self._wake.clear()
            due = self._next_due(self._clock())
            timeout = None if due is None else max(0.0, due - self._clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self.tick()


class StreamCaptionFeed:
    """One language's finals as CEA-608 pages, paced, handed to `send(page)` (OBS SendStreamCaption)."""

    def __init__(
        self, rows: int, min_interval_s: float, send: Callable[[str], None], clock: Clock = time.monotonic
    ) -> None:
        self.rows = rows
        self._send = send
        self._clock = clock
        self.pacer = cea608.CaptionPacer(min_interval_s=min_interval_s)
        self._wake = asyncio.Event()

    def caption(self, text: str) -> None:
        self.pacer.push(cea608.pages(text, rows=self.rows))
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
