"""Transcript files: per language SRT, WebVTT and timestamped text, appended as each caption finalizes."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

# How long a cue stays up after its sentence was final, when nothing replaces it sooner.
CUE_TAIL_S = 3.0
FORMATS = ("srt", "vtt", "txt")


def clock(seconds: float, sep: str) -> str:
    """Seconds -> HH:MM:SS<sep>mmm (SRT uses ',', WebVTT '.')."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def srt_cue(index: int, start_s: float, end_s: float, text: str) -> str:
    return f"{index}\n{clock(start_s, ',')} --> {clock(end_s, ',')}\n{_one_block(text)}\n\n"


def vtt_cue(start_s: float, end_s: float, text: str) -> str:
    # "-->" inside a cue would end it early in some players.
    return f"{clock(start_s, '.')} --> {clock(end_s, '.')}\n{_one_block(text).replace('-->', '->')}\n\n"


def txt_line(start_s: float, text: str) -> str:
    return f"[{clock(start_s, '.')}] {' '.join(text.split())}\n"


def _one_block(text: str) -> str:
    # A blank line ends a cue in both formats: keep the caption's lines, drop empty ones.
    return "\n".join(line.strip() for line in text.splitlines() if line.strip()) or "…"


@dataclass
class _Language:
    files: dict[str, IO[str]]
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
        files: dict[str, IO[str]] = {}
        for fmt in self.formats:
            f = self.path(language, fmt).open("a", encoding="utf-8")
            if fmt == "vtt" and f.tell() == 0:
                f.write("WEBVTT\n\n")
                f.flush()
            files[fmt] = f
        self._languages[language] = _Language(files)

    def write(self, language: str, text: str, spoken_at: float, final_at: float) -> None:
        """Append one final caption; flushed at once so a crash loses at most the caption in flight."""
        self.add_language(language)
        entry = self._languages[language]
        entry.count += 1
        start = max(0.0, spoken_at - self.started_at)
        end = max(start + 0.5, final_at - self.started_at + CUE_TAIL_S)
        for fmt, f in entry.files.items():
            if fmt == "srt":
                f.write(srt_cue(entry.count, start, end, text))
            elif fmt == "vtt":
                f.write(vtt_cue(start, end, text))
            else:
                f.write(txt_line(start, text))
            f.flush()

    def close(self) -> None:
        for entry in self._languages.values():
            for f in entry.files.values():
                f.close()
        self._languages.clear()
