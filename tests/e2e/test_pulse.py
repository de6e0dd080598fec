"""Native capture (captioner.inputs.pulse) against a real PulseAudio server: the server hands over 16 kHz mono."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from captioner.inputs import pulse
from tests.support.pulse_env import PulseEnv
from tests.support.speech import tone_wav


@pytest.fixture
def server(pulse_env: PulseEnv, monkeypatch: pytest.MonkeyPatch) -> PulseEnv:
    # libpulse reads PULSE_SERVER (and the client config) when a stream is created, in this process.
    for key, value in pulse_env.env.items():
        monkeypatch.setenv(key, value)
    return pulse_env


def test_a_48k_stereo_tone_arrives_as_16k_mono_chunks(server: PulseEnv, tmp_path: Path) -> None:
    rec = pulse.PulseRecorder(server.monitor, 16000, 3200)
    rec.open()
    try:
        player = server.play_async(tone_wav(tmp_path / "tone.wav", 3.0, 1000.0, rate=48000, channels=2))
        chunks = [rec.read() for _ in range(25)]  # 2.5 s: the tone starts within the first second
        player.wait(10)
        assert 0 <= rec.buffered_s() < 5
    finally:
        rec.close()
    assert all(len(c) == 3200 for c in chunks)  # 100 ms of 16-bit mono at 16 kHz, exactly
    loud = [np.frombuffer(c, "<i2").astype(np.float64) / 32768 for c in chunks]
    loud = [x for x in loud if np.sqrt(np.mean(x * x)) > 0.3]
    assert len(loud) >= 5, "the tone never arrived"
    for x in loud[1:-1]:  # whole chunks inside the tone
        spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
        peak_hz = np.argmax(spectrum) * 16000 / x.size
        assert abs(peak_hz - 1000) <= 10  # at 16 kHz a 1 kHz tone is still 1 kHz: the server resampled
        assert 0.3 < np.sqrt(np.mean(x * x)) < 0.4  # a 0.5-amplitude sine's RMS, both channels averaged


def test_a_missing_source_is_refused_with_its_name(server: PulseEnv) -> None:
    rec = pulse.PulseRecorder("no_such_source", 16000, 3200)
    with pytest.raises(pulse.PulseError, match="no_such_source"):
        rec.open()
    with pytest.raises(pulse.PulseError, match="not open"):
        rec.read()


def test_no_server_is_a_pulse_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # What `audio.backend: auto` falls back to PortAudio on.
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/nothing-here")
    conf = tmp_path / "client.conf"
    conf.write_text("autospawn = no\n")
    monkeypatch.setenv("PULSE_CLIENTCONFIG", str(conf))
    with pytest.raises(pulse.PulseError, match="PulseAudio: "):
        pulse.PulseRecorder(None, 16000, 3200).open()


def test_a_recorder_learns_that_its_server_died_and_leaves_no_thread_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed or restarted, the server takes the stream with it: the blocked read must end with a PulseError, or
    every sound-server restart leaks the reader and libpulse's mainloop thread (as the soak showed, #15)."""
    with PulseEnv() as private:  # its own server: this one gets killed
        for key, value in private.env.items():
            monkeypatch.setenv(key, value)
        pulse.use_client_config_without_shm()
        tasks_before = len(os.listdir("/proc/self/task"))
        rec = pulse.PulseRecorder(None, 16000, 3200)
        rec.open()
        failure: list[str] = []

        def reader() -> None:
            try:
                while True:  # as the daemon reads: sleep until a chunk is due, then read it
                    time.sleep(max(0.0, 0.1 - rec.buffered_s() + 0.002))
                    rec.read()
            except pulse.PulseError as e:
                failure.append(str(e))
            finally:
                rec.close()

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        time.sleep(0.5)
        assert private.proc is not None
        private.proc.send_signal(signal.SIGKILL)
        thread.join(5)
        assert not thread.is_alive(), "the read never learned that the server died"
        assert failure and "PulseAudio: " in failure[0]
        for _ in range(50):  # libpulse's own thread ends with pa_simple_free
            if len(os.listdir("/proc/self/task")) <= tasks_before:
                break
            time.sleep(0.05)
        assert len(os.listdir("/proc/self/task")) <= tasks_before
