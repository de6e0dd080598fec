"""Subtitle and transcript files (SRT, WebVTT, timestamped text): always-on, and a set that follows OBS's recording.

A failing file (a full disk) is counted, shown in /status and retried with the next caption or heartbeat; it never
stops another output, a reload or the shutdown.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from ..config import SOURCE, Config
from ..obs_watch import Recording
from ..status import Status
from ..transcripts import TranscriptWriter
from ..translation.interpreter import Caption
from .base import CaptionSink

log = logging.getLogger(__name__)


class TranscriptFiles(CaptionSink):
    """One set of files, one per language and format, written as each caption finalizes."""

    def __init__(
        self, name: str, writer: TranscriptWriter, status: Status, label: Callable[[str], str] = lambda name: ""
    ) -> None:
        self.name = name
        self.writer = writer
        self.status = status
        # A speaker's name -> the label before the SRT/TXT text (speakers.label, read at each caption).
        self._label = label

    def caption(self, caption: Caption) -> None:
        if caption.final:
            now = time.time()
            spoken_at = caption.spoken_at or now
            speaker, label = caption.speaker, self._label(caption.speaker)
            self.guarded(lambda: self.writer.write(caption.language, caption.text, spoken_at, now, speaker, label))

    def add_language(self, language: str) -> None:
        self.writer.add_language(language)

    def retry(self) -> None:
        """What waits for room on the disk goes out now, if it can."""
        if self.status.file_output(self.name).failing_since is not None:
            self.guarded(self.writer.flush)

    async def close(self) -> None:
        self.guarded(self.writer.close)

    def guarded(self, action: Callable[[], None]) -> None:
        out = self.status.file_output(self.name)
        try:
            action()
        except OSError as e:
            (log.error if out.failing_since is None else log.debug)("%s: cannot write: %s; will retry", self.name, e)
            out.failed(str(e))
            return
        if out.failing_since is not None:
            log.info("%s: written again", self.name)
            out.failing_since = None


def open_transcripts(
    cfg: Config, status: Status, label: Callable[[str], str] = lambda name: ""
) -> TranscriptFiles | None:
    """The always-on set (transcripts.enabled), or None; a folder that cannot be written is shown in /status."""
    t = cfg.transcripts
    if not t.enabled:
        return None
    try:
        writer = TranscriptWriter(Path(t.folder), cfg.languages(), t.formats)
    except OSError as e:
        log.error("cannot write transcripts to %s: %s", t.folder, e)
        status.file_output("transcripts").failed(str(e))
        return None
    log.info("writing transcripts to %s", writer.folder)
    return TranscriptFiles("transcripts", writer, status, label)


class RecordingFollower:
    """While OBS records, a set of files named after the recording, next to it (or in transcripts.folder).

    `on_recording` is OBS's callback; `set_output(name, sink)` puts the set into the router and takes it out.
    """

    name = "recording_transcripts"

    def __init__(
        self,
        config: Callable[[], Config],
        status: Status,
        set_output: Callable[[str, CaptionSink | None], None],
        label: Callable[[str], str] = lambda name: "",
    ) -> None:
        self._config = config
        self.status = status
        self._set_output = set_output
        self._label = label
        self.files: TranscriptFiles | None = None

    def follow(self, rec: Recording) -> None:
        """OBS started or stopped recording (its callback)."""
        current = self.files
        if not rec.active:
            if current is not None:
                current.guarded(current.writer.close)
                log.info("recording stopped; transcripts in %s", current.writer.folder)
            self.files = None
            self._set_output(self.name, None)
            return
        if current is not None:
            return  # the same recording, reported again (an event after the state poll)
        cfg = self._config()
        t = cfg.transcripts
        name = Path(rec.path).stem if rec.path else time.strftime("recording_%Y-%m-%d_%H-%M-%S")
        folders = [Path(rec.path).parent] if rec.path else []
        # Next to a video, players pick subtitles by language code: name the source transcript by its language.
        spoken = cfg.translator.source_language
        labels = {SOURCE: spoken} if spoken and spoken not in cfg.translator.targets else {}
        for folder in [*folders, Path(t.folder)]:
            try:
                writer = TranscriptWriter(
                    folder, cfg.languages(), t.formats, started_at=rec.started_at, name=name, labels=labels
                )
            except OSError as e:
                log.warning("cannot write recording transcripts to %s: %s", folder, e)
                continue
            self.files = TranscriptFiles(self.name, writer, self.status, self._label)
            self._set_output(self.name, self.files)
            log.info("recording started; transcripts follow it: %s", writer.path("*", "*"))
            return
