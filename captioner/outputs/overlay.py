"""The browser-source overlay as an output: every caption goes to the overlay's subscribers of its language."""

from __future__ import annotations

from collections.abc import Callable

from ..translation.interpreter import Caption
from ..web.overlay import OverlayHub
from .base import CaptionSink


class OverlayOutput(CaptionSink):
    name = "overlay"

    def __init__(self, hub: OverlayHub, languages: Callable[[], tuple[str, ...]]) -> None:
        self.hub = hub
        self._languages = languages

    def caption(self, caption: Caption) -> None:
        self.hub.publish(caption.language, "final" if caption.final else "partial", caption.text)

    def clear(self, output: str | None = None) -> None:
        if output is None:  # the overlay has no named outputs: only "clear everything" reaches it
            for lang in self._languages():
                self.hub.publish(lang, "clear", "")
