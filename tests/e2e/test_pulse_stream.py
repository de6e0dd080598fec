"""The native capture's record stream (captioner.inputs.pulse_stream) against a real PulseAudio server."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from captioner.inputs import pulse
from captioner.inputs.pulse_stream import PulseStream
from tests.support.pulse_env import PulseEnv
from tests.support.speech import tone_wav


async def collect(stream: PulseStream, seconds: float) -> tuple[list[bytes], int]:
    """Read as the capture does (a timer set by next_poll_s) for `seconds`: the chunks, and how many reads."""
    chunks: list[bytes] = []
    reads = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        chunks += stream.read()
        reads += 1
        await asyncio.sleep(stream.next_poll_s())
    return chunks, reads


@pytest.fixture
def server(pulse_env: PulseEnv, monkeypatch: pytest.MonkeyPatch) -> PulseEnv:
    for key, value in pulse_env.env.items():
        monkeypatch.setenv(key, value)
    return pulse_env


async def test_a_48k_stereo_tone_arrives_as_16k_mono_chunks_read_on_the_loop(server: PulseEnv, tmp_path: Path) -> None:
    stream = PulseStream(server.monitor, 16000, 3200)
    await stream.open(5)
    try:
        player = server.play_async(tone_wav(tmp_path / "tone.wav", 3.0, 1000.0, rate=48000, channels=2))
        chunks, reads = await collect(stream, 3.5)
        await asyncio.to_thread(player.wait, 10)
    finally:
        stream.close()
    assert all(len(c) == 3200 for c in chunks)  # 100 ms of 16-bit mono at 16 kHz, exactly
    assert 30 <= len(chunks) <= 40, len(chunks)  # 3.5 s of a live source, none lost nor doubled
    print(f"{len(chunks)} chunks in {reads} reads")
    loud = [np.frombuffer(c, "<i2").astype(np.float64) / 32768 for c in chunks]
    loud = [x for x in loud if np.sqrt(np.mean(x * x)) > 0.3]
    assert len(loud) >= 5, "the tone never arrived"
    for x in loud[1:-1]:
        peak_hz = np.argmax(np.abs(np.fft.rfft(x * np.hanning(x.size)))) * 16000 / x.size
        assert abs(peak_hz - 1000) <= 10
        assert 0.3 < np.sqrt(np.mean(x * x)) < 0.4


async def test_a_missing_source_is_refused_with_its_name(server: PulseEnv) -> None:
    stream = PulseStream("no_such_source", 16000, 3200)
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
    stream = PulseStream(None, 16000, 3200)
    try:
        with pytest.raises(pulse.PulseError, match="PulseAudio: "):
            await stream.open(5)
    finally:
        stream.close()


async def test_a_killed_server_fails_the_read_and_close_leaves_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sound-server restart must end the stream (the capture reopens) and leak no libpulse thread (#15)."""
    with PulseEnv() as private:  # its own server: this one gets killed
        for key, value in private.env.items():
            monkeypatch.setenv(key, value)
        pulse.use_client_config_without_shm()
        tasks_before = len(os.listdir("/proc/self/task"))
        stream = PulseStream(None, 16000, 3200)
        await stream.open(5)
        chunks, _ = await collect(stream, 0.5)
        assert chunks, "no audio from the default source"
        assert private.proc is not None
        private.proc.send_signal(signal.SIGKILL)
        with pytest.raises(pulse.PulseError, match="PulseAudio: "):
            await collect(stream, 5)
        stream.close()
        assert len(os.listdir("/proc/self/task")) <= tasks_before


async def test_a_frozen_server_never_blocks_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hung sound server only means no chunks (the capture's stall check ends the stream): reading and closing
    return at once, so /status, OBS and a stop go on (#21: the read moved onto the event loop)."""
    with PulseEnv() as private:
        for key, value in private.env.items():
            monkeypatch.setenv(key, value)
        pulse.use_client_config_without_shm()
        stream = PulseStream(None, 16000, 3200)
        await stream.open(5)
        assert private.proc is not None
        try:
            await collect(stream, 0.5)
            private.proc.send_signal(signal.SIGSTOP)
            await asyncio.sleep(0.3)  # what was on its way has arrived
            stream.read()
            started = time.monotonic()
            chunks, reads = await asyncio.wait_for(collect(stream, 1.0), 10)  # hang guard
            assert chunks == [] and reads >= 1
            await asyncio.wait_for(asyncio.to_thread(stream.close), 10)
            print(f"{reads} reads in {time.monotonic() - started:.2f} s of a frozen server")
        finally:
            private.proc.send_signal(signal.SIGCONT)
