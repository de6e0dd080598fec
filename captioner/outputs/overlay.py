"""The browser-source overlay as an output: every caption goes to the overlay's subscribers of its language."""

from __future__ import annotations

from collections.abc import Callable

from ..speakers import SpeakerNames
from ..translation.interpreter import Caption
from ..web.overlay import OverlayHub, Speaker
from .base import CaptionSink


class OverlayOutput(CaptionSink):
    name = "overlay"

    def __init__(
        self, hub: OverlayHub, languages: Callable[[], tuple[str, ...]], speakers: SpeakerNames | None = None
    ) -> None:
        self.hub = hub
        self._languages = languages
        self._speakers = speakers

    def caption(self, caption: Caption) -> None:
        kind = "final" if caption.final else "partial"
        self.hub.publish(caption.language, kind, caption.text, self._speaker(caption.speaker))

    def _speaker(self, name: str) -> Speaker | None:
        if not name or self._speakers is None:
            return None
        # The colour is the speaker's number (the order heard), so Host is speaker-1 in every language and page.
        return Speaker(name, self._speakers.prefix(name), self._speakers.number(name))

    def clear(self, output: str | None = None) -> None:
        if output is None:  # the overlay has no named outputs: only "clear everything" reaches it
            for lang in self._languages():
                self.hub.publish(lang, "clear", "")
