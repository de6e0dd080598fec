"""End to end: the stream carries CEA-608 captions and transcript files follow an OBS recording.

Real speech -> PulseAudio -> `captioner run` -> fake translator -> real OBS that streams to a local RTMP server and
records to disk at the same time. The captions are decoded back out of the RTMP recording the way a viewer's player
would, and the subtitle files are checked against the recording's own audio.
"""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.daemonproc import DaemonProc
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.speech import silence_padded_sequence

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

KEY = "sk-e2e-outputs-key"
PHRASES = [
    "Hello everyone and welcome to the stream",
    "Today we are going to build a castle with a very tall tower",
    "Thank you all for watching",
]
CUE = re.compile(r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d) --> (\d\d):(\d\d):(\d\d)[,.](\d\d\d)")


@pytest.fixture
def fake(threaded_fake: Callable[..., FakeTranslator]) -> FakeTranslator:
    return threaded_fake(api_key=KEY, script=PHRASES)


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def cues(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, text) of every cue of an SRT or WebVTT file."""
    out = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8").strip()):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if m := CUE.fullmatch(line.strip()):
                g = m.groups()
                out.append((_seconds(*g[:4]), _seconds(*g[4:]), " ".join(lines[i + 1 :])))
    return out


def ffmpeg_reads(path: Path) -> list[str]:
    """The cue texts ffmpeg's own SRT/WebVTT demuxer reads from the file (converted to SRT on stdout)."""
    r = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-f", "srt", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and not r.stderr, (path, r.stderr)
    return [" ".join(lines.splitlines()[2:]) for lines in r.stdout.strip().split("\n\n")]


def speech_onsets(media: Path) -> list[float]:
    """Where speech starts in a recording's audio: the ends of its silences, from ffmpeg's silencedetect."""
    r = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-i",
            str(media),
            "-map",
            "0:a:0",
            "-af",
            "silencedetect=n=-45dB:d=0.5",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return [float(x) for x in re.findall(r"silence_end: ([0-9.]+)", r.stderr)]


def test_stream_captions_and_recording_transcripts(
    obs: ObsEnv, pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    speech = silence_padded_sequence(PHRASES, 2.5, tmp_path / "speech.wav")
    cfg = {
        "audio": {"device": "loopback"},
        "translator": {
            "url": fake.url,
            "model": "qwen3.5-livetranslate-flash-realtime",
            "api_key": "${DASHSCOPE_API_KEY}",
            "source_language": "en",
            "targets": ["ja"],
            "transcribe_source": True,
        },
        "obs": {"port": obs.ws_port, "password": "${OBS_WEBSOCKET_PASSWORD}", "timeout_s": 2},
        "outputs": [{"obs_source": "E2E Out EN", "language": "source"}],
        "stream_captions": {"enabled": True, "language": "source", "rows": 2},
        "transcripts": {"enabled": True, "folder": str(tmp_path / "runs")},
    }
    env = pulse_env.child_env(DASHSCOPE_API_KEY=KEY, OBS_WEBSOCKET_PASSWORD=obs.password)
    daemon = DaemonProc(tmp_path, cfg, env).start()
    c = obs.client()
    before = set(obs.recordings())
    record_path: Path | None = None
    metrics = ""
    try:
        daemon.wait_connected("audio", "obs", "translator:ja")
        c.start_stream()
        obs.wait_stream(True)
        c.send("StartRecord")
        daemon.wait(lambda: "recording started" in daemon.log(), 10, "the daemon to follow the recording")
        time.sleep(1.5)  # silence first, so the recording's audio shows where the first phrase starts
        pulse_env.play(speech)
        daemon.wait(lambda: daemon.status()["outputs"]["source"]["final_count"] == 3, 20, "three finals")
        time.sleep(2.0)  # the last 608 page is paced and needs a video frame
        record_path = Path(c.send("StopRecord", raw=True)["outputPath"])
        c.stop_stream()
        obs.wait_stream(False)
        daemon.wait(lambda: "recording stopped" in daemon.log(), 10, "the daemon to close the recording files")
        metrics = daemon.get("/metrics")[1]
        assert daemon.stop(signal.SIGTERM) == 0
    finally:
        daemon.kill()
        if obs.client().send("GetStreamStatus", raw=True)["outputActive"]:
            obs.client().stop_stream()

    # 1. The viewer's player decodes the stream's 608 captions: the English output, 32-column rows, in order.
    new = [r for r in obs.wait_recordings_closed() if r not in before]
    assert len(new) == 1, new
    decoded = obs.extract_captions(new[0])
    assert decoded == PHRASES, decoded
    sent = re.search(r'^captioner_stream_captions_total\{result="sent"\} ([0-9.]+)$', metrics, re.M)
    assert sent and float(sent.group(1)) == len(PHRASES), metrics

    # 2. Transcript files follow the recording: named after it, next to it, timed from its start.
    assert record_path is not None and record_path.exists()
    stem, folder = record_path.stem, record_path.parent
    for lang in ("en", "ja"):  # the source transcript is named by its language, as players expect
        for fmt in ("srt", "vtt", "txt"):
            assert (folder / f"{stem}.{lang}.{fmt}").exists(), sorted(p.name for p in folder.iterdir())
    srt, vtt = folder / f"{stem}.en.srt", folder / f"{stem}.en.vtt"
    assert ffmpeg_reads(srt) == PHRASES
    assert ffmpeg_reads(vtt) == PHRASES
    assert vtt.read_text(encoding="utf-8").startswith("WEBVTT\n")
    srt_cues, vtt_cues = cues(srt), cues(vtt)
    assert [t for _, _, t in srt_cues] == PHRASES
    assert [(round(a, 3), round(b, 3)) for a, b, _ in srt_cues] == [(round(a, 3), round(b, 3)) for a, b, _ in vtt_cues]
    assert [t for _, _, t in cues(folder / f"{stem}.ja.srt")] == [f"[ja] {p}" for p in PHRASES]
    for (start, end, _), (next_start, _, _) in itertools.pairwise(srt_cues):
        assert start < end and start < next_start
    # Each cue starts where its speech starts in the recording's own audio track.
    onsets = speech_onsets(record_path)
    assert len(onsets) >= 3, onsets
    for start, _, text in srt_cues:
        # A cue starts with the first words the service returned: a little after the voice, never before it.
        assert any(-0.3 < start - onset < 1.2 for onset in onsets), (text, start, onsets)

    # 3. The run's own transcript (whole run, not only the recording) is there as well.
    runs = list((tmp_path / "runs").glob("captioner_*_source.srt"))
    assert len(runs) == 1 and [t for _, _, t in cues(runs[0])] == PHRASES
    log = daemon.log()
    assert KEY not in log and obs.password not in log
