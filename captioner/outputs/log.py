"""/status's caption history and the INFO log line of every final: the outputs an operator reads."""

from __future__ import annotations

import logging

from ..status import Status
from ..translation.interpreter import Caption
from .base import CaptionSink

log = logging.getLogger(__name__)
# A final caption's text in the INFO log is cut after this many characters (files and OBS get all of it).
_LOGGED_CAPTION_CHARS = 200


class StatusOutput(CaptionSink):
    name = "status"

    def __init__(self, status: Status) -> None:
        self.status = status

    def caption(self, caption: Caption) -> None:
        lang = caption.language
        if not caption.final:
            self.status.language(lang).last_partial = caption.text
            self.status.metrics.captions_partial.labels(lang).inc()
            return
        self.status.record_final(lang, caption.text, caption.input, caption.speaker)
        who = f"{caption.speaker}: " if caption.speaker else ""
        log.info("caption [%s] %s%s", lang, who, clipped(caption.text))


def clipped(text: str, limit: int = _LOGGED_CAPTION_CHARS) -> str:
    # A caption is as long as the service makes it; the log line stays readable and the journal small.
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more characters]"
