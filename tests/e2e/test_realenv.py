"""Proof that the real-part harness (OBS, PulseAudio null sink, espeak-ng, nginx-rtmp) works as a user sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import obsws_python
import pytest

from tests.support.obs_env import ObsEnv
from tests.support.procs import port_open
from tests.support.pulse_env import PulseEnv
from tests.support.speech import silence_padded_sequence, speech_wav, tone_wav, wav_duration

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

# Child: capture from the ALSA "pulse" device with python-sounddevice, 48 kHz mono, 100 ms blocks; print READY once
# the stream runs, then after argv[1] seconds print the device names and the RMS of each 100 ms window as JSON.
_CAPTURE_CHILD = r"""
import json, sys, time
import numpy as np
import sounddevice as sd
names = [d["name"] for d in sd.query_devices()]
blocks = []
def cb(indata, frames, t, status):
    blocks.append(indata[:, 0].copy())
with sd.InputStream(device="pulse", samplerate=48000, channels=1, dtype="float32", blocksize=4800, callback=cb):
    print("READY", flush=True)
    time.sleep(float(sys.argv[1]))
x = np.concatenate(blocks) if blocks else np.zeros(0, dtype="float32")
rms = [float(np.sqrt(np.mean(x[i:i + 4800] ** 2))) for i in range(0, len(x) - 4799, 4800)]
print(json.dumps({"devices": names, "rms": rms}), flush=True)
"""


def _capture_while_playing(
    pulse: PulseEnv, wav: Path, env: dict[str, str], seconds: float = 3.5
) -> dict[str, list[Any]]:
    """Run the sounddevice capture child with env; play wav into e2e_sink 0.4 s after it reports READY."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CAPTURE_CHILD, str(seconds)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline().strip()
        assert first == "READY", f"capture child did not start: {first!r} {child.stderr.read() if child.stderr else ''}"
        time.sleep(0.4)  # 4 windows of baseline silence
        pulse.play(wav)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    result: dict[str, list[Any]] = json.loads(out.strip().splitlines()[-1])
    return result


def test_text_source_roundtrip(obs: ObsEnv) -> None:
    c = obs.client()
    scene = c.get_current_program_scene().current_program_scene_name
    name = f"Captions-{uuid.uuid4().hex[:8]}"
    c.create_input(scene, name, "text_ft2_source_v2", {"text": "first"}, True)
    try:
        assert obs.text_of(name) == "first"
        c.set_input_settings(name, {"text": "Hallo Welt, ça va?"}, True)
        assert obs.text_of(name) == "Hallo Welt, ça va?"
        items = [i["sourceName"] for i in c.get_scene_item_list(scene).scene_items]
        assert name in items
        assert obs.text_of(f"{name}-does-not-exist") is None
    finally:
        c.remove_input(name)
    deadline = time.monotonic() + 3  # RemoveInput returns before the source is actually released
    while obs.text_of(name) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert obs.text_of(name) is None


def test_audio_file_helpers(tmp_path: Path) -> None:
    one = speech_wav("hello world", tmp_path / "one.wav")
    seq = silence_padded_sequence(["hello world", "good morning"], 1.5, tmp_path / "seq.wav")
    two = speech_wav("good morning", tmp_path / "two.wav")
    assert wav_duration(seq) == pytest.approx(wav_duration(one) + 1.5 + wav_duration(two), abs=0.05)
    tone = tone_wav(tmp_path / "tone.wav", 0.5, 1000)
    assert wav_duration(tone) == pytest.approx(0.5)


# How monitor capture works for a child process (the daemon's "loopback" device uses the same mechanism):
#  * sounddevice/PortAudio opens the ALSA device named "pulse" (ALSA plugin from libasound2-plugins,
#    /usr/share/alsa/alsa.conf.d/pulse.conf); the plugin is a plain libpulse client.
#  * PULSE_SERVER=unix:<socket> (pulse_env.env) points libpulse at the private server. It must be in the child's
#    environment before PortAudio initialises (i.e. before `import sounddevice`), hence the subprocess.
#  * The ALSA pulse plugin records from libpulse's default source, and libpulse takes that from PULSE_SOURCE
#    (client.conf `default-source`) when set. PULSE_SOURCE=e2e_sink.monitor, or the generic
#    PULSE_SOURCE=@DEFAULT_MONITOR@ (server-side alias for "monitor of the current default sink"), makes the
#    "pulse" device capture what is played into the sink. This test first makes a silent null source (a fake mic)
#    the server's default source, so it proves that PULSE_SOURCE, not the server default, selects the monitor;
#    without PULSE_SOURCE the child hears the fake mic (silence).
@pytest.mark.parametrize(
    ("pulse_source", "expect_speech"),
    [("e2e_sink.monitor", True), ("@DEFAULT_MONITOR@", True), (None, False)],
    ids=["sink-monitor", "default-monitor", "no-PULSE_SOURCE"],
)
def test_speech_reaches_sounddevice_child_via_monitor(
    pulse_env: PulseEnv, tmp_path: Path, pulse_source: str | None, expect_speech: bool
) -> None:
    wav = speech_wav("The quick brown fox jumps over the lazy dog.", tmp_path / "speech.wav")
    env = pulse_env.child_env()
    env.pop("PULSE_SOURCE", None)
    if pulse_source is not None:
        env["PULSE_SOURCE"] = pulse_source
    mic = pulse_env.load_module("module-null-source", "source_name=e2e_fake_mic")
    try:
        pulse_env.pactl("set-default-source", "e2e_fake_mic")
        result = _capture_while_playing(pulse_env, wav, env, seconds=0.4 + wav_duration(wav) + 0.8)
    finally:
        pulse_env.pactl("set-default-source", pulse_env.monitor)
        pulse_env.unload_module(mic)
    assert "pulse" in result["devices"]
    rms: list[float] = result["rms"]
    assert len(rms) >= 25, rms
    baseline = max(rms[:3])
    loud = [r for r in rms if r > 0.02]
    if expect_speech:
        assert baseline < 0.002, rms  # null sink monitor is digital silence before paplay starts
        assert len(loud) >= 8, rms  # >= 0.8 s of clearly audible speech
        assert max(rms) > 20 * max(baseline, 1e-4), rms
    else:
        assert max(rms) < 0.002, rms


def test_obs_stop_start_kill_freeze(obs: ObsEnv) -> None:

    c = obs.client()
    assert c.get_version().obs_version.startswith("29.")
    events = obsws_python.EventClient(host=obs.host, port=obs.ws_port, password=obs.password)
    seen: list[str] = []

    def on_exit_started(data: Any) -> None:
        seen.append("ExitStarted")

    events.callback.register(on_exit_started)
    try:
        obs.stop_obs()
    finally:
        events.disconnect()
    assert obs.last_stop_method == "close", obs.last_stop_method  # clean exit, no SIGKILL fallback
    assert obs.last_stop_s is not None and obs.last_stop_s < 5, obs.last_stop_s
    assert seen == ["ExitStarted"]
    assert not port_open(obs.ws_port)
    with pytest.raises(Exception):  # noqa: B017 - the old client is dead, whatever it raises
        c.get_version()
    obs.start_obs()
    assert obs.last_start_s is not None and obs.last_start_s < 30
    assert obs.client().get_version().obs_version.startswith("29.")

    # Freezing is covered from the daemon's side in test_e2e_faults.py: a request may still be answered
    # from the socket buffer right after SIGSTOP, so a harness-level timeout assertion here was flaky.
    obs.freeze_obs()
    obs.thaw_obs()
    assert obs.client().get_version().rpc_version == 1

    obs.kill_obs()
    assert not port_open(obs.ws_port)
    obs.start_obs()
    assert obs.client().get_scene_list().current_program_scene_name


def test_stream_cea608_caption_roundtrip(obs: ObsEnv) -> None:
    assert obs.nginx is not None, "session obs_env runs with rtmp=True"
    before = set(obs.recordings())
    c = obs.client()
    c.start_stream()
    try:
        obs.wait_stream(True)
        time.sleep(0.6)  # frames flowing
        c.send_stream_caption("HELLO WORLD")
        time.sleep(1.5)
    finally:
        c.stop_stream()
        obs.wait_stream(False)
    new = [r for r in obs.wait_recordings_closed() if r not in before]
    assert len(new) == 1, new
    assert "HELLO WORLD" in obs.extract_captions(new[0])


def test_second_obs_in_parallel(obs: ObsEnv, tmp_path: Path) -> None:
    with ObsEnv(ws_port=None, password="other") as other:
        assert other.ws_port != obs.ws_port and other.display != obs.display
        assert other.client().get_version().obs_version.startswith("29.")
        assert obs.client().get_version().obs_version.startswith("29.")
        pids = [p.pid for p in (other.obs, other.xvfb) if p is not None]
        base = other.base
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} left behind"
    assert not base.exists()
    assert not port_open(other.ws_port)
