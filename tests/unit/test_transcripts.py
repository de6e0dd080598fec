"""Transcript files: formats that validate, times relative to the run, one cue per final, flushed at once."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from captioner.transcripts import TranscriptWriter, clock, srt_cue, txt_line, vtt_cue
from tests.conftest import TinyDisk
from tests.support.subtitles import parse_srt, parse_vtt


@pytest.mark.parametrize(
    ("seconds", "sep", "expected"),
    [
        (0, ",", "00:00:00,000"),
        (1.2345, ",", "00:00:01,234"),
        (61.5, ".", "00:01:01.500"),
        (3600 * 2 + 59.999, ".", "02:00:59.999"),
        (-3, ",", "00:00:00,000"),
    ],
)
def test_clock(seconds: float, sep: str, expected: str) -> None:
    assert clock(seconds, sep) == expected


def test_cue_text_never_breaks_the_format() -> None:
    assert srt_cue(1, 0, 1, "a\n\n\nb") == "1\n00:00:00,000 --> 00:00:01,000\na\nb\n\n"
    assert "-->" not in vtt_cue(0, 1, "x --> y").split("\n", 1)[1]
    assert srt_cue(2, 0, 1, "  \n ").endswith("\n…\n\n")
    assert txt_line(5, "two\nlines") == "[00:00:05.000] two lines\n"


def test_writer_files_validate_and_follow_the_run(tmp_path: Path) -> None:
    w = TranscriptWriter(tmp_path / "subs", ["ja", "source"], started_at=1000.0)
    w.write("ja", "こんにちは。", spoken_at=1002.0, final_at=1004.5)
    w.write("source", "Hello.", spoken_at=1002.1, final_at=1004.0)
    w.write("ja", "二行目\nです", spoken_at=1010.0, final_at=1011.0)
    # flushed per caption: readable before close
    srt = parse_srt(w.path("ja", "srt").read_text(encoding="utf-8"))
    assert srt == [
        (1, "00:00:02,000", "00:00:07,500", "こんにちは。"),
        (2, "00:00:10,000", "00:00:14,000", "二行目\nです"),
    ]
    vtt = parse_vtt(w.path("ja", "vtt").read_text(encoding="utf-8"))
    assert [c[2] for c in vtt] == ["こんにちは。", "二行目\nです"]
    assert w.path("source", "txt").read_text() == "[00:00:02.100] Hello.\n"
    w.write("zh", "late language", spoken_at=1020, final_at=1021)
    assert w.path("zh", "srt").exists()
    w.close()


def test_formats_can_be_chosen(tmp_path: Path) -> None:
    w = TranscriptWriter(tmp_path, ["en"], formats=["vtt"])
    w.write("en", "x", 0, 0)
    w.close()
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".vtt"]


def test_a_full_disk_keeps_captions_waiting_and_writes_them_once_there_is_room(tiny_disk: TinyDisk) -> None:
    w = TranscriptWriter(tiny_disk.path, ["en"], formats=["srt", "txt"], started_at=0.0)
    w.write("en", "before", 1, 2)
    tiny_disk.fill()
    long = "word " * 2000  # more than the block each file already has
    with pytest.raises(OSError) as info:
        w.write("en", long, 3, 4)
    assert info.value.errno == errno.ENOSPC
    with pytest.raises(OSError):
        w.write("en", "still full", 5, 6)
    tiny_disk.free()
    w.write("en", "room again", 7, 8)
    cues = parse_srt(w.path("en", "srt").read_text(encoding="utf-8"))
    assert [c[3] for c in cues] == ["before", long.strip(), "still full", "room again"]  # whole, once, in order
    assert w.path("en", "txt").read_text().count("\n") == 4
    w.close()


def test_close_on_a_full_disk_closes_every_file_then_raises(tiny_disk: TinyDisk) -> None:
    w = TranscriptWriter(tiny_disk.path, ["en", "ja"], formats=["srt", "vtt"], started_at=0.0)
    tiny_disk.fill()
    for lang in ("en", "ja"):
        with pytest.raises(OSError):
            w.write(lang, "word " * 2000, 1, 2)
    with pytest.raises(OSError) as info:
        w.close()
    assert info.value.errno == errno.ENOSPC
    open_there = [fd for fd in Path("/proc/self/fd").iterdir() if str(tiny_disk.path) in os.path.realpath(fd)]
    assert open_there == []  # all four files are closed, though every one of them failed
    w.close()  # closing again is harmless
