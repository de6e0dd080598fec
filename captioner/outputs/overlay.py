"""The browser-source overlay as an output: every caption goes to the overlay's subscribers of its language."""

from __future__ import annotations

from collections.abc import Callable

from ..translation.interpreter import Caption
from ..web.overlay import OverlayHub, Speaker
from .base import CaptionSink

# Colour slots: the page styles speakers 1..N by the order they were first shown (CSS .speaker-1 ...); a speaker
# past the table keeps a label but gets no colour of its own.
_MAX_SLOTS = 64


class OverlayOutput(CaptionSink):
    name = "overlay"

    def __init__(
        self,
        hub: OverlayHub,
        languages: Callable[[], tuple[str, ...]],
        label: Callable[[str], str] = lambda name: "",
    ) -> None:
        self.hub = hub
        self._languages = languages
        self._label = label
        self._slots: dict[str, int] = {}

    def caption(self, caption: Caption) -> None:
        kind = "final" if caption.final else "partial"
        self.hub.publish(caption.language, kind, caption.text, self._speaker(caption.speaker))

    def _speaker(self, name: str) -> Speaker | None:
        if not name:
            return None
        slot = self._slots.get(name)
        if slot is None and len(self._slots) < _MAX_SLOTS:
            slot = self._slots[name] = len(self._slots) + 1
        return Speaker(name, self._label(name), slot or 0)

    def clear(self, output: str | None = None) -> None:
        if output is None:  # the overlay has no named outputs: only "clear everything" reaches it
            for lang in self._languages():
                self.hub.publish(lang, "clear", "")
