"""Transcript files: per language SRT, WebVTT and timestamped text, appended as each caption finalizes."""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# How long a cue stays up after its sentence was final, when nothing replaces it sooner.
CUE_TAIL_S = 3.0
FORMATS = ("srt", "vtt", "txt")
# Per file, text kept while the disk refuses it (~ thousands of captions); past it new captions are dropped.
_MAX_PENDING_BYTES = 1 << 20


def clock(seconds: float, sep: str) -> str:
    """Seconds -> HH:MM:SS<sep>mmm (SRT uses ',', WebVTT '.')."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def srt_cue(index: int, start_s: float, end_s: float, text: str, label: str = "") -> str:
    """One SRT cue; `label` ("Host: ") goes before the text."""
    return f"{index}\n{clock(start_s, ',')} --> {clock(end_s, ',')}\n{label}{_one_block(text)}\n\n"


def vtt_cue(start_s: float, end_s: float, text: str, voice: str = "") -> str:
    """One WebVTT cue; `voice` (the speaker's name) becomes a voice tag, `<v Host>`, which players can style."""
    # Cue text is markup: "&" and "<" would start a reference or a tag, and "-->" would end the cue in some players.
    body = html.escape(_one_block(text), quote=False)
    return f"{clock(start_s, '.')} --> {clock(end_s, '.')}\n{voice_tag(voice)}{body}\n\n"


def voice_tag(name: str) -> str:
    """`<v name>` for a cue spoken by `name` ("" for none): the name escaped, on one line, as the annotation allows."""
    annotation = html.escape(" ".join(name.split()), quote=False)
    return f"<v {annotation}>" if annotation else ""


def txt_line(start_s: float, text: str, label: str = "") -> str:
    return f"[{clock(start_s, '.')}] {label}{' '.join(text.split())}\n"


def _one_block(text: str) -> str:
    # A blank line ends a cue in both formats: keep the caption's lines, drop empty ones.
    return "\n".join(line.strip() for line in text.splitlines() if line.strip()) or "…"


class _File:
    """One appended file that survives a full disk: what could not be written waits and goes out with the next try."""

    def __init__(self, path: Path) -> None:
        # Unbuffered: a partial write is counted exactly, so a retry neither repeats nor loses a byte.
        self._raw = path.open("ab", buffering=0)
        self._pending = b""
        self.dropped = 0  # captions not kept because too much was already waiting

    @property
    def empty(self) -> bool:
        return self._raw.tell() == 0 and not self._pending

    def append(self, text: str) -> None:
        if len(self._pending) > _MAX_PENDING_BYTES:
            self.dropped += 1
        else:
            self._pending += text.encode("utf-8")
        self.flush()

    def flush(self) -> None:
        """Write what waits; raises OSError (e.g. ENOSPC) with the rest still waiting."""
        while self._pending:
            written = self._raw.write(self._pending)
            self._pending = self._pending[written or 0 :]

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._raw.close()


@dataclass
class _Language:
    files: dict[str, _File]
    count: int = 0


class TranscriptWriter:
    """One set of files per language in `folder`; times are relative to `started_at` (the run or a recording).

    Files are named `captioner_<start time>_<language>.<format>`, or `<name>.<language>.<format>` when a name is
    given (a recording's file name, so players pick the subtitles up next to the video).
    """

    def __init__(
        self,
        folder: Path,
        languages: Iterable[str],
        formats: Iterable[str] = FORMATS,
        started_at: float | None = None,
        name: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.folder = folder.expanduser()
        self.formats = tuple(formats)
        self.started_at = time.time() if started_at is None else started_at
        self.stamp = time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(self.started_at))
        self.name = name
        # Language -> the code used in file names (e.g. "source" -> "en", which players recognise).
        self.labels = labels or {}
        self._languages: dict[str, _Language] = {}
        self.folder.mkdir(parents=True, exist_ok=True)
        for lang in languages:
            self.add_language(lang)

    def path(self, language: str, fmt: str) -> Path:
        if self.name:
            return self.folder / f"{self.name}.{self.labels.get(language, language)}.{fmt}"
        return self.folder / f"captioner_{self.stamp}_{language}.{fmt}"

    def add_language(self, language: str) -> None:
        if language in self._languages:
            return
        files: dict[str, _File] = {}
        for fmt in self.formats:
            f = files[fmt] = _File(self.path(language, fmt))
            if fmt == "vtt" and f.empty:
                f.append("WEBVTT\n\n")
        self._languages[language] = _Language(files)

    def write(
        self, language: str, text: str, spoken_at: float, final_at: float, speaker: str = "", label: str = ""
    ) -> None:
        """Append one final caption; written at once so a crash loses at most the caption in flight.

        `speaker` (a name) is the WebVTT voice; `label` (e.g. "Host: ") starts the SRT cue and the text line.

        A file that cannot be written (a full disk) keeps the caption waiting and tries again with the next one;
        every file is tried, then the first OSError is raised.
        """
        self.add_language(language)
        entry = self._languages[language]
        entry.count += 1
        start = max(0.0, spoken_at - self.started_at)
        end = max(start + 0.5, final_at - self.started_at + CUE_TAIL_S)
        cues = {
            "srt": srt_cue(entry.count, start, end, text, label),
            "vtt": vtt_cue(start, end, text, speaker),
            "txt": txt_line(start, text, label),
        }
        _each(entry.files.items(), lambda fmt, f: f.append(cues[fmt]))

    def flush(self) -> None:
        """Try again to write what waits; raises the first OSError after trying every file."""
        _each(self._files(), lambda fmt, f: f.flush())

    def close(self) -> None:
        """Close every file, also when some fail; then raises the first OSError (what waited there is lost)."""
        try:
            _each(self._files(), lambda fmt, f: f.close())
        finally:
            self._languages.clear()

    def _files(self) -> list[tuple[str, _File]]:
        return [item for entry in self._languages.values() for item in entry.files.items()]


def _each(files: Iterable[tuple[str, _File]], action: Callable[[str, _File], None]) -> None:
    first: OSError | None = None
    for fmt, f in files:
        try:
            action(fmt, f)
        except OSError as e:  # one file failing must not keep the others from their turn
            first = first or e
    if first is not None:
        raise first
