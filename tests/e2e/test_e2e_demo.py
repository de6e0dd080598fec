"""`captioner demo`: no key needed, /status says demo, and real speech gives [DEMO] captions in real OBS."""

from __future__ import annotations

import datetime as dt
import re
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from captioner import ledger
from captioner.inputs.pcm import SPEECH_RMS
from captioner.standin import MARKER, WARNING, caption_text
from tests.support.daemonproc import DaemonProc, TextRecorder
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.speech import silence_padded_sequence, speech_wav

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
PHRASES = [
    "Hello everyone and welcome back to the stream",
    "Today we are going to build a castle on the hill",
]
GAP_S = 3.0


def keyless_env(pulse_env: PulseEnv) -> dict[str, str]:
    env = pulse_env.child_env()
    env.pop("DASHSCOPE_API_KEY", None)  # the demo must not need it, and the run check must not find it
    return env


def test_demo_starts_without_a_key_and_run_still_refuses(pulse_env: PulseEnv, tmp_path: Path) -> None:
    config: dict[str, Any] = {
        "audio": {"device": "loopback"},
        "translator": {"targets": ["ja"]},
        "obs": {"enabled": False},
    }
    env = keyless_env(pulse_env)
    # What real runs spent today: a demo must neither show it nor change it.
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    spend = tmp_path / "state" / "captioner" / "spend.json"
    ledger.save(spend, dt.date.today(), 0.2875)
    saved = spend.read_bytes(), spend.stat().st_mtime_ns
    daemon = DaemonProc(tmp_path, config, env, command="demo").start()
    try:
        daemon.wait(lambda: daemon.link_state("translator:ja") == "connected", 20, "the stand-in session")
        assert daemon.status()["demo"] is True
        assert daemon.status()["cost"] is None  # the dashboard says "nothing is billed in demo mode"
        assert re.search(rf"WARNING +captioner\.standin: {re.escape(WARNING)}$", daemon.log(), re.M), daemon.log()
        # A reload reads the file the demo way: the new target gets a session on the stand-in too, not on Qwen.
        config["translator"]["targets"] = ["ja", "ko"]
        daemon.config_path.write_text(yaml.safe_dump({**config, "http": {"port": daemon.http_port}}))
        daemon.send_signal(signal.SIGHUP)
        daemon.wait(lambda: daemon.link_state("translator:ko") == "connected", 20, "the reloaded stand-in session")
        assert daemon.status()["reload_error"] is None and daemon.status()["demo"] is True
        assert "dashscope" not in daemon.log()
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert (spend.read_bytes(), spend.stat().st_mtime_ns) == saved
    run = subprocess.run(
        [sys.executable, "-m", "captioner", "run", "--config", str(daemon.config_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert "translator.api_key: is empty" in run.stderr


def sounded_phrases(raw: bytes, rate: int = 16000) -> list[float]:
    """Each phrase's sounding seconds in a 16 kHz mono recording of the sink (10 ms windows, as sounding_seconds);
    phrases are apart by more than half of GAP_S."""
    x = np.frombuffer(raw[: len(raw) // 2 * 2], "<i2").astype(np.float64) / 32768
    step = rate // 100
    levels = np.sqrt(np.mean(x[: len(x) // step * step].reshape(-1, step) ** 2, axis=1))
    loud = np.flatnonzero(levels >= SPEECH_RMS)
    if not len(loud):
        return []
    phrases, start, prev = [], int(loud[0]), int(loud[0])
    for i in map(int, loud[1:]):
        if i - prev > GAP_S / 2 * 100:
            phrases.append((prev + 1 - start) / 100)
            start = i
        prev = i
    return [*phrases, (prev + 1 - start) / 100]


def sounding_seconds(phrase: str, folder: Path) -> float:
    """From the first to the last 10 ms of espeak's wav at or above the stand-in's speech level."""
    with wave.open(str(speech_wav(phrase, folder / f"{len(phrase)}.wav"))) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768
    step = rate // 100
    levels = np.sqrt(np.mean(x[: len(x) // step * step].reshape(-1, step) ** 2, axis=1))
    loud = np.flatnonzero(levels >= SPEECH_RMS)
    return float(loud[-1] + 1 - loud[0]) / 100


def test_demo_captions_real_speech_in_real_obs(obs: ObsEnv, pulse_env: PulseEnv, tmp_path: Path) -> None:
    speech = silence_padded_sequence(PHRASES, GAP_S, tmp_path / "speech.wav")
    ja, source = "Demo JA", "Demo Source"
    config = {
        "audio": {"device": "loopback"},
        # No api_key and no url: the demo needs neither.
        "translator": {"targets": ["ja"], "transcribe_source": True},
        "obs": {"port": obs.ws_port, "password": "${OBS_WEBSOCKET_PASSWORD}", "timeout_s": 2},
        "layout": {"max_width": 80, "max_lines": 1, "clear_after_s": 0},
        "outputs": [
            # live: the growing partials are shown too, as a newcomer previewing a live layout would see them
            {"obs_source": ja, "language": "ja", "layout": {"live": True, "live_interval_s": 0.1}},
            {"obs_source": source, "language": "source"},
        ],
    }
    env = {**keyless_env(pulse_env), "OBS_WEBSOCKET_PASSWORD": obs.password}
    daemon = DaemonProc(tmp_path, config, env, command="demo").start()
    try:
        daemon.wait_connected("audio", "obs", "translator:ja")
        # What the sink really sounded: on a loaded machine the player can underrun, and the server then plays
        # silence in the middle of a phrase, which the daemon rightly hears as a longer phrase.
        monitor = tmp_path / "monitor.raw"
        with TextRecorder(obs, [ja, source]) as rec, monitor.open("wb") as sink_out:
            recorder = subprocess.Popen(
                ["parec", f"--device={pulse_env.monitor}", "--format=s16le", "--rate=16000", "--channels=1", "--raw"],
                stdout=sink_out,
                env=pulse_env.child_env(),
            )
            time.sleep(1.0)
            pulse_env.play(speech)
            time.sleep(0.3)
            recorder.terminate()
            recorder.wait(5)
            daemon.wait(lambda: daemon.status()["outputs"]["source"]["final_count"] >= 2, 15, "two utterances")
            daemon.wait(lambda: rec.seen[ja][-1:] == [caption_text(2, "ja")], 10, "the second caption in OBS")
        status = daemon.status()
        assert status["demo"] is True
        assert status["outputs"]["ja"]["final_count"] == 2 and status["outputs"]["source"]["final_count"] == 2
        # What the viewer sees: every text marked, partials growing into the numbered sample sentence.
        shown_ja, shown_source = rec.seen[ja], rec.seen[source]
        assert all(text.startswith(MARKER) for text in shown_ja + shown_source), (shown_ja, shown_source)
        finals = [caption_text(1, "ja"), caption_text(2, "ja")]
        assert [t for t in shown_ja if t in finals] == finals, shown_ja
        partials = [t for t in shown_ja if t not in finals]
        assert partials and all(any(f.startswith(p) for f in finals) for p in partials), shown_ja
        # The "transcript" says how long each phrase sounded (to a 100 ms chunk, through the real sound server).
        heard = [
            float(m.group(1)) for t in shown_source if (m := re.fullmatch(r"\[DEMO\] you spoke for (\d+\.\d) s", t))
        ]
        in_wavs = [sounding_seconds(p, tmp_path) for p in PHRASES]
        expected = sounded_phrases(monitor.read_bytes())
        print(f"\ndemo: heard {heard} s of speech; the sink sounded {expected} s; espeak wavs sound for {in_wavs} s")
        assert len(expected) == 2, expected
        assert len(heard) == 2 and all(abs(h - e) <= 0.3 for h, e in zip(heard, expected, strict=True)), (
            heard,
            expected,
        )
        assert daemon.stop() == 0
        assert f"caption [ja] {caption_text(2, 'ja')}" in daemon.log()
    finally:
        daemon.kill()
