"""One language's finals as CEA-608 closed captions inside the stream, paced, sent through OBS."""

from __future__ import annotations

from collections.abc import Callable

from ..cea608 import SpeakerChanges
from ..config import StreamCaptionsConfig
from ..presenter import StreamCaptionFeed
from ..status import Status
from ..translation.interpreter import Caption
from .base import CaptionSink


class StreamCaptionOutput(CaptionSink):
    name = "stream_captions"

    def __init__(
        self,
        cfg: StreamCaptionsConfig,
        language: Callable[[], str],
        send: Callable[[str], None],
        status: Status,
        label: Callable[[str], str] = lambda name: "",
    ) -> None:
        skipped = status.metrics.stream_captions.labels("skipped")
        self.feed = StreamCaptionFeed(cfg.rows, cfg.min_interval_s, send, skipped.inc)
        self._language = language
        # 608 names nobody: ">> " marks each change of speaker, shown only while labels are (speakers.label).
        self._label = label
        self._changes = SpeakerChanges()

    def caption(self, caption: Caption) -> None:
        if caption.final and caption.language == self._language():
            speaker = caption.speaker if self._label(caption.speaker) else ""
            self.feed.caption(self._changes.mark(speaker, caption.text))

    async def run(self) -> None:
        await self.feed.run()
