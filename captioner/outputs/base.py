"""The output interface (CaptionSink) and the router that fans every caption out to the outputs in order."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from ..translation.interpreter import Caption

log = logging.getLogger(__name__)
# Items whose first partial time is kept while the service has not finalized them.
_FIRST_SEEN_ITEMS = 1000


class CaptionSink:
    """One kind of output. `caption` is called on the event loop for every partial and final, in order.

    It must return quickly (queue or schedule slow work) and must not raise for a caption it cannot show: it
    counts and shows its own failures in `as_dict()`. The defaults do nothing, so a sink implements what it has.
    """

    name = "output"

    def caption(self, caption: Caption) -> None:
        raise NotImplementedError

    def clear(self, output: str | None = None) -> None:
        """Empty what is shown: one named output of this kind, or all of it."""

    async def close(self) -> None:
        """Finish: write what is pending and release what was opened."""

    def as_dict(self) -> dict[str, Any] | None:
        """This output's part of /status, or None when it has nothing to add."""
        return None


class CaptionRouter:
    """The outputs, each under a name, in a fixed order (the screen before the files, whenever each was added)."""

    def __init__(self, order: tuple[str, ...] = ()) -> None:
        self._order = order
        self._sinks: dict[str, CaptionSink] = {}
        self._failing: set[str] = set()

    def set(self, name: str, sink: CaptionSink | None) -> None:
        """Add or replace one output, or remove it with None; names in `order` keep their place, others go last."""
        sinks = {n: s for n, s in self._sinks.items() if n != name}
        if sink is not None:
            sinks[name] = sink
        rank = {n: i for i, n in enumerate(self._order)}
        self._sinks = dict(sorted(sinks.items(), key=lambda item: rank.get(item[0], len(rank))))

    def get(self, name: str) -> CaptionSink | None:
        return self._sinks.get(name)

    def caption(self, caption: Caption) -> None:
        for name, sink in self._sinks.items():
            try:
                sink.caption(caption)
            except Exception:  # noqa: BLE001 - a bug in one output must not cost the others this caption
                (log.debug if name in self._failing else log.exception)("output %s failed", name)
                self._failing.add(name)

    def clear(self, output: str | None = None) -> None:
        for sink in self._sinks.values():
            sink.clear(output)

    async def close(self) -> None:
        for name, sink in list(self._sinks.items()):
            try:
                await sink.close()
            except Exception:  # the shutdown goes on: every other output still closes
                log.exception("output %s failed to close", name)


class SpokenAt:
    """Stamps each final with when its words began: a cue starts when the words started, not when they ended.

    The session says it from the audio it sent (Caption.spoken_at); where it cannot, the item's first partial does.
    """

    def __init__(self) -> None:
        self._first_seen: dict[tuple[str, str], float] = {}

    def stamp(self, caption: Caption) -> Caption:
        key, now = (caption.language, caption.item_id), time.time()
        if not caption.final:
            self._first_seen.setdefault(key, now)
            return caption
        first_seen = self._first_seen.pop(key, now)
        # The session knows when the words began from the audio it sent; the first partial is the fallback.
        spoken_at = caption.spoken_at or first_seen
        if len(self._first_seen) > _FIRST_SEEN_ITEMS:  # items the service never finalized
            self._first_seen.clear()
        return dataclasses.replace(caption, spoken_at=spoken_at)
