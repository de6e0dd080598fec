"""Strict SRT and WebVTT readers: the whole file must be cues, nothing else."""

from __future__ import annotations

import re

SRT_CUE = re.compile(r"(\d+)\n(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})\n((?:.+\n)+)\n")
VTT_CUE = re.compile(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n((?:.+\n)+)\n")


def parse_srt(text: str) -> list[tuple[int, str, str, str]]:
    """Strict: the whole file must be cues, nothing else."""
    cues = [(int(m[1]), m[2], m[3], m[4].rstrip("\n")) for m in SRT_CUE.finditer(text)]
    assert "".join(m.group(0) for m in SRT_CUE.finditer(text)) == text, "stray text in the SRT"
    return cues


def parse_vtt(text: str) -> list[tuple[str, str, str]]:
    assert text.startswith("WEBVTT\n\n")
    body = text[len("WEBVTT\n\n") :]
    assert "".join(m.group(0) for m in VTT_CUE.finditer(body)) == body, "stray text in the VTT"
    return [(m[1], m[2], m[3].rstrip("\n")) for m in VTT_CUE.finditer(body)]
