"""The capture's record stream (captioner.inputs.pulse_stream) against a real PulseAudio server."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from captioner.inputs import pulse
from captioner.inputs.pulse_stream import PulseStream
from tests.support.pulse_env import PulseEnv
from tests.support.speech import tone_wav


class Collected:
    """What the stream hands over, from libpulse's thread, as the capture's hand-over receives it."""

    def __init__(self) -> None:
        self.chunks: list[tuple[bytes, float]] = []
        self.failures: list[str] = []
        self.threads: set[str] = set()

    def chunk(self, chunk: bytes, at: float) -> None:
        self.threads.add(threading.current_thread().name)
        self.chunks.append((chunk, at))

    def fail(self, reason: str) -> None:
        self.failures.append(reason)

    def stream(self, device: str | None, dont_move: bool = False) -> PulseStream:
        return PulseStream(device, 16000, 3200, self.chunk, self.fail, dont_move=dont_move)


async def until(condition: object, within: float, what: str) -> None:
    for _ in range(int(within / 0.02)):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server(pulse_env: PulseEnv, monkeypatch: pytest.MonkeyPatch) -> PulseEnv:
    for key, value in pulse_env.env.items():
        monkeypatch.setenv(key, value)
    return pulse_env


async def test_a_48k_stereo_tone_arrives_as_16k_mono_chunks_off_the_loop(server: PulseEnv, tmp_path: Path) -> None:
    got = Collected()
    stream = got.stream(server.monitor)
    await stream.open(5)
    try:
        player = server.play_async(tone_wav(tmp_path / "tone.wav", 3.0, 1000.0, rate=48000, channels=2))
        await until(lambda: len(got.chunks) >= 25, 10, "2.5 s of chunks")
        await asyncio.to_thread(player.wait, 10)
    finally:
        stream.close()
    assert not got.failures
    assert all(len(c) == 3200 for c, _ in got.chunks)  # 100 ms of 16-bit mono at 16 kHz, exactly
    assert threading.current_thread().name not in got.threads  # read where the packet arrived, not on the loop
    stamps = [at for _, at in got.chunks]
    assert stamps == sorted(stamps) and stamps[-1] <= time.monotonic()
    loud = [np.frombuffer(c, "<i2").astype(np.float64) / 32768 for c, _ in got.chunks]
    loud = [x for x in loud if np.sqrt(np.mean(x * x)) > 0.3]
    assert len(loud) >= 5, "the tone never arrived"
    for x in loud[1:-1]:
        peak_hz = np.argmax(np.abs(np.fft.rfft(x * np.hanning(x.size)))) * 16000 / x.size
        assert abs(peak_hz - 1000) <= 10
        assert 0.3 < np.sqrt(np.mean(x * x)) < 0.4


async def test_a_missing_source_is_refused_with_its_name(server: PulseEnv) -> None:
    stream = Collected().stream("no_such_source")
    try:
        with pytest.raises(pulse.PulseError, match="no_such_source"):
            await stream.open(5)
    finally:
        stream.close()


async def test_no_server_is_a_pulse_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/nothing-here")
    conf = tmp_path / "client.conf"
    conf.write_text("autospawn = no\n")
    monkeypatch.setenv("PULSE_CLIENTCONFIG", str(conf))
    stream = Collected().stream(None)
    try:
        with pytest.raises(pulse.PulseError, match="PulseAudio: "):
            await stream.open(5)
    finally:
        stream.close()


async def test_a_killed_server_fails_the_stream_and_close_leaves_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sound-server restart must end the stream (the capture reopens) and leak no libpulse thread."""
    with PulseEnv() as private:  # its own server: this one gets killed
        for key, value in private.env.items():
            monkeypatch.setenv(key, value)
        pulse.use_client_config_without_shm()
        tasks_before = len(os.listdir("/proc/self/task"))
        got = Collected()
        stream = got.stream(None)
        await stream.open(5)
        await until(lambda: got.chunks, 5, "a first chunk")
        assert private.proc is not None
        private.proc.send_signal(signal.SIGKILL)
        await until(lambda: got.failures, 5, "the stream to fail")
        stream.close()
        assert got.failures[0].startswith("PulseAudio: ") and len(got.failures) == 1
        assert len(os.listdir("/proc/self/task")) <= tasks_before


async def test_a_named_source_that_goes_away_fails_the_stream(server: PulseEnv) -> None:
    """Not moved to the default source (maybe another input's microphone): killed, so the capture says so."""
    module = server.load_module("module-null-sink", "sink_name=vanishing")
    got = Collected()
    stream = got.stream("vanishing.monitor", dont_move=True)
    try:
        await stream.open(5)
        await until(lambda: got.chunks, 5, "a first chunk")
        server.unload_module(module)
        await until(lambda: got.failures, 5, "the stream to fail")
    finally:
        stream.close()
    assert "vanishing.monitor" in got.failures[0]
