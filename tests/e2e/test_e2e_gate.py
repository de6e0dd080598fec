"""End to end: the same espeak-ng speech heard by a gated and an ungated daemon; same captions, fewer billed seconds."""

from __future__ import annotations

import re
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.daemonproc import DaemonProc, TextRecorder
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.speech import silence_padded_sequence, wav_duration

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
KEY = "sk-gate-e2e-secret"
PHRASES = [
    "Hello everyone and welcome back to the stream, it is good to see you",
    "Today we are going to build a castle on the hill next to the river",
    "Thank you all for watching and see you again next week",
]
GAP_S = 4.5
TAIL_S = 3.0  # after the last phrase: the gate's 2 s trail, then closed


def config(fake: FakeTranslator, obs: ObsEnv, source: str, gated: bool) -> dict[str, Any]:
    return {
        "audio": {"device": "loopback"},
        "gate": {"enabled": gated},
        "translator": {
            "url": fake.url,
            "model": "qwen3.5-livetranslate-flash-realtime",
            "api_key": "${DASHSCOPE_API_KEY}",
            "targets": ["ja"],
        },
        "obs": {"port": obs.ws_port, "password": "${OBS_WEBSOCKET_PASSWORD}", "timeout_s": 2},
        "layout": {"max_width": 80, "max_lines": 1, "clear_after_s": 0},
        "outputs": [{"obs_source": source, "language": "ja"}],
    }


def metric(daemon: DaemonProc, name: str, labels: str = "") -> float:
    code, body = daemon.get("/metrics")
    assert code == 200
    found = re.search(rf"^{name}{re.escape(labels)} ([0-9.e+-]+)$", body, re.M)
    return float(found.group(1)) if found else 0.0


def speech_seconds(path: Path) -> float:
    """Seconds of the wav where anything is heard (10 ms frames above -50 dBFS)."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768
    step = rate // 100
    frames = x[: len(x) // step * step].reshape(-1, step)
    return float(np.count_nonzero(np.mean(frames**2, axis=1) > 1e-5)) / 100


def test_gate_sends_less_audio_for_the_same_captions(
    obs: ObsEnv,
    pulse_env: PulseEnv,
    threaded_fake: Callable[..., FakeTranslator],
    tmp_path: Path,
) -> None:
    speech = silence_padded_sequence(PHRASES, GAP_S, tmp_path / "speech.wav")
    window_s = wav_duration(speech) + TAIL_S
    env = pulse_env.child_env(DASHSCOPE_API_KEY=KEY, OBS_WEBSOCKET_PASSWORD=obs.password)
    sources = {True: "E2E Gate ON", False: "E2E Gate OFF"}
    daemons: dict[bool, DaemonProc] = {}
    try:
        # Both run at once and hear the same playback through the sink's monitor: the same audio, half the time.
        for gated in (True, False):
            fake = threaded_fake(api_key=KEY, script=PHRASES)
            folder = tmp_path / ("gated" if gated else "ungated")
            folder.mkdir()
            daemons[gated] = DaemonProc(folder, config(fake, obs, sources[gated], gated), env).start()
        for d in daemons.values():
            d.wait_connected("audio", "obs", "translator:ja")
        sent = "captioner_audio_sent_seconds_total"
        before = {
            g: (metric(d, sent, '{input="",target="ja"}'), metric(d, "captioner_audio_captured_seconds_total"))
            for g, d in daemons.items()
        }
        with TextRecorder(obs, list(sources.values())) as rec:
            time.sleep(1.0)  # silence before the first phrase, as on a stream
            pulse_env.play(speech)
            time.sleep(TAIL_S)
            after = {
                g: (metric(d, sent, '{input="",target="ja"}'), metric(d, "captioner_audio_captured_seconds_total"))
                for g, d in daemons.items()
            }
            for d in daemons.values():
                d.wait(lambda d=d: d.status()["outputs"]["ja"]["final_count"] >= 3, 10, "three captions")
            time.sleep(0.5)
        # What the viewer sees: the same captions, in the same order, in both.
        expected = [f"[ja] {p}" for p in PHRASES]
        assert rec.seen[sources[True]] == rec.seen[sources[False]] == expected
        status = {g: d.status() for g, d in daemons.items()}
        for s in status.values():
            assert s["outputs"]["ja"]["final_count"] == 3
            assert s["outputs"]["ja"]["last_final"] == expected[-1]
        gate = status[True]["audio_gate"]
        assert gate["enabled"] and gate["state"] == "closed" and gate["opened"] == 3, gate
        assert status[False]["audio_gate"]["state"] == "open"

        gated_sent, gated_captured = (a - b for a, b in zip(after[True], before[True], strict=True))
        ungated_sent, ungated_captured = (a - b for a, b in zip(after[False], before[False], strict=True))
        ratio = gated_sent / ungated_sent
        spoken = speech_seconds(speech)
        print(
            f"\naudio gate, {len(PHRASES)} phrases, {spoken:.1f} s of speech in a {window_s + 1:.1f} s window "
            f"({spoken / (window_s + 1):.0%} speech): ungated sent {ungated_sent:.1f} s of {ungated_captured:.1f} s "
            f"captured; gated sent {gated_sent:.1f} s of {gated_captured:.1f} s; gated/ungated = {ratio:.2f} "
            f"(saves {1 - ratio:.0%})"
        )
        assert ungated_sent == pytest.approx(ungated_captured, abs=0.5)
        assert gated_captured == pytest.approx(ungated_captured, abs=1.0)
        # 3 x (0.5 s pre-roll + 2 s trail) on top of the speech, and nothing in the long pauses
        assert gated_sent < ungated_sent - 6, (gated_sent, ungated_sent)
        assert gated_sent > spoken
        for d in daemons.values():
            assert d.stop() == 0
    finally:
        for d in daemons.values():
            d.kill()
