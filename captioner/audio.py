"""Audio capture: a sounddevice stream -> bounded queue -> 16 kHz mono PCM16 chunks."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr

from .status import LinkState, Status

log = logging.getLogger(__name__)

TARGET_RATE = 16_000
LOOPBACK = "loopback"
# Names PortAudio gives devices that hear what the computer plays.
_LOOPBACK_HINTS = ("monitor", "loopback", "stereo mix", "what u hear", "blackhole", "soundflower")


class Pcm16Converter:
    """Any rate / channel count (float32 blocks) -> exact chunks of 16 kHz mono PCM16LE bytes."""

    def __init__(self, in_rate: int, channels: int, chunk_ms: int = 100) -> None:
        self.in_rate = in_rate
        self.channels = channels
        self.chunk_bytes = TARGET_RATE * chunk_ms // 1000 * 2
        # A streaming resampler keeps its filter state between blocks, so block edges leave no clicks.
        self._resampler = (
            soxr.ResampleStream(in_rate, TARGET_RATE, 1, dtype="float32", quality="HQ")
            if in_rate != TARGET_RATE
            else None
        )
        self._pending = bytearray()

    def feed(self, block: np.ndarray) -> list[bytes]:
        """Convert one captured block; returns the whole chunks now complete (maybe none)."""
        mono = block.astype(np.float32, copy=False)
        if mono.ndim == 2:
            mono = _downmix(mono)
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(np.ascontiguousarray(mono))
        self._pending += _pcm16(mono)
        return self._cut()

    def flush(self) -> list[bytes]:
        """Drain the resampler's tail and pad the last chunk with silence."""
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            self._pending += _pcm16(tail)
        if self._pending:
            self._pending += bytes(self.chunk_bytes - len(self._pending) % self.chunk_bytes)
        return self._cut()

    def _cut(self) -> list[bytes]:
        n = len(self._pending) // self.chunk_bytes
        chunks = [bytes(self._pending[i * self.chunk_bytes : (i + 1) * self.chunk_bytes]) for i in range(n)]
        del self._pending[: n * self.chunk_bytes]
        return chunks


# Per-chunk numpy work avoids temporaries and numpy's generic reductions (mean): the capture wakes the process
# from idle every 100 ms, when every array touched is cold and each one costs tens of µs (benchmarks/, #5).


def _downmix(block: np.ndarray) -> np.ndarray:
    """(frames, channels) float32 -> mono: the channels' average."""
    mono: np.ndarray = block[:, 0]
    channels = block.shape[1]
    if channels > 1:
        mono = mono + block[:, 1]
        for c in range(2, channels):
            mono += block[:, c]
        mono *= 1.0 / channels
    return mono


def _pcm16(x: np.ndarray) -> bytes:
    """float32 samples (-1..1, clipped beyond) -> PCM16LE bytes, rounded half to even."""
    y = x * 32767.0
    np.clip(y, -32767.0, 32767.0, out=y)
    return np.rint(y, out=y).astype("<i2").tobytes()


# A capture stream that delivers no block for this long is treated as a lost device and reopened.
_STALL_S = 3.0


def rms(chunk: bytes) -> float:
    """Root mean square level of PCM16 bytes, 0..1."""
    if not chunk:
        return 0.0
    x = np.frombuffer(chunk, "<i2").astype(np.float32)
    return math.sqrt(float(np.dot(x, x)) / x.size) / 32768.0


@dataclass(frozen=True)
class DeviceInfo:
    """One input device as PortAudio lists it."""

    index: int
    name: str
    hostapi: str
    channels: int
    default_rate: float
    is_default: bool
    is_loopback: bool


def list_inputs() -> list[DeviceInfo]:
    """All devices with input channels."""
    import sounddevice as sd

    hostapis = sd.query_hostapis()
    try:
        default_in = sd.default.device[0]
    except Exception:  # noqa: BLE001 - no default device is a normal state
        default_in = -1
    out = []
    for dev in sd.query_devices():
        if dev["max_input_channels"] <= 0:
            continue
        name = str(dev["name"])
        out.append(
            DeviceInfo(
                index=int(dev["index"]),
                name=name,
                hostapi=str(hostapis[dev["hostapi"]]["name"]),
                channels=int(dev["max_input_channels"]),
                default_rate=float(dev["default_samplerate"]),
                is_default=int(dev["index"]) == default_in,
                is_loopback=any(h in name.lower() for h in _LOOPBACK_HINTS),
            )
        )
    return out


def pulse_monitor_source() -> str | None:
    """The monitor source of the default PulseAudio/PipeWire sink, via pactl."""
    if not shutil.which("pactl"):
        return None
    try:
        sink = subprocess.run(
            ["pactl", "get-default-sink"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sink}.monitor" if sink else None


def pulse_sources() -> list[str]:
    """PulseAudio/PipeWire source names (monitors included), for `captioner devices`."""
    if not shutil.which("pactl"):
        return []
    try:
        lines = subprocess.run(
            ["pactl", "list", "short", "sources"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split("\t")[1] for line in lines if "\t" in line]


def resolve_device(spec: int | str | None, devices: list[DeviceInfo]) -> tuple[int | None, str]:
    """Config device spec -> (PortAudio index or None for default, a description). Raises LookupError."""
    if spec is None:
        return None, "default input"
    if isinstance(spec, int):
        if any(d.index == spec for d in devices):
            return spec, f"device {spec}"
        raise LookupError(f"no input device with index {spec}")
    if spec.lower() == LOOPBACK:
        return _resolve_loopback(devices)
    for d in devices:
        if spec.lower() in d.name.lower():
            return d.index, d.name
    raise LookupError(f"no input device whose name contains {spec!r}")


def _resolve_loopback(devices: list[DeviceInfo]) -> tuple[int | None, str]:
    if sys.platform.startswith("linux"):
        # The ALSA "pulse"/"pipewire" device reads whatever source libpulse is told to use; this special
        # name follows the default sink even when the user switches outputs.
        for name in ("pulse", "pipewire"):
            match = next((d for d in devices if d.name == name), None)
            if match:
                os.environ["PULSE_SOURCE"] = "@DEFAULT_MONITOR@"
                return match.index, f"{match.name} (monitor of the default sink: {pulse_monitor_source() or '?'})"
    for d in devices:
        if d.is_loopback:
            return d.index, d.name
    raise LookupError(
        "no loopback device found (Linux: PulseAudio/PipeWire and the ALSA pulse plugin; Windows: enable "
        "'Stereo Mix'; macOS: install BlackHole)"
    )


class AudioCapture:
    """Captures the configured device forever, reopening it after errors; emits PCM16 chunks."""

    def __init__(
        self,
        device: int | str | None,
        chunk_ms: int,
        queue_chunks: int,
        on_chunk: Callable[[bytes, float], None],
        status: Status,
    ) -> None:
        self.device = device
        self.chunk_ms = chunk_ms
        self.on_chunk = on_chunk
        self.status = status
        self._blocks: deque[tuple[np.ndarray, float]] = deque(maxlen=queue_chunks)
        self._wake = asyncio.Event()
        self._stopping = False
        self._level = 0.0

    @property
    def level(self) -> float:
        """RMS of the last chunk, 0..1."""
        return self._level

    async def run(self) -> None:
        """Open, capture, and on any device error wait and reopen, until cancelled."""
        link = self.status.link("audio")
        delay_s = 1.0
        while not self._stopping:
            link.set(LinkState.CONNECTING)
            try:
                await self._capture_once(link)
                delay_s = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - PortAudio raises many kinds; all mean retry
                link.set(LinkState.RECONNECTING, str(e))
                self.status.metrics.audio_errors.inc()
                log.warning("audio device failed: %s (retrying in %.0f s)", e, delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 10.0)

    async def _capture_once(self, link: Any) -> None:
        import sounddevice as sd

        loop = asyncio.get_running_loop()
        index, description = resolve_device(self.device, await asyncio.to_thread(list_inputs))
        info = sd.query_devices(index, "input")
        rate = int(info["default_samplerate"])
        channels = max(1, min(2, int(info["max_input_channels"])))
        converter = Pcm16Converter(rate, channels, self.chunk_ms)
        blocks = self._blocks
        metrics = self.status.metrics
        failed: list[str] = []

        def put(block: np.ndarray, t: float) -> None:
            if len(blocks) == blocks.maxlen:
                metrics.audio_dropped.inc()  # deque(maxlen) drops the oldest itself
            blocks.append((block, t))
            self._wake.set()

        def callback(indata: np.ndarray, frames: int, time_info: Any, flags: Any) -> None:
            # PortAudio's thread: copy and hand over, never block.
            loop.call_soon_threadsafe(put, indata.copy(), time.monotonic())

        def finished() -> None:
            failed.append("stream stopped")
            loop.call_soon_threadsafe(self._wake.set)

        stream = sd.InputStream(
            device=index,
            samplerate=rate,
            channels=channels,
            dtype="float32",
            # An explicit block size: PortAudio's own choice costs ~7x the CPU (real-obs.md §8).
            blocksize=rate * self.chunk_ms // 1000,
            callback=callback,
            finished_callback=finished,
        )
        with stream:
            link.set(LinkState.CONNECTED)
            log.info("capturing from %s at %d Hz, %d channel(s)", description, rate, channels)
            # Some backends neither call back nor finish when the device goes away (the ALSA pulse plugin when the
            # sound server dies): a device that delivers nothing is as good as lost. Checked once a second rather
            # than with a timeout per block (asyncio.wait_for costs a task and a timer on every block, #5).
            last_block_at = loop.time()
            stalled = False
            stall_timer: asyncio.TimerHandle

            def check_stall() -> None:
                nonlocal stalled, stall_timer
                if loop.time() - last_block_at >= _STALL_S:
                    stalled = True
                    self._wake.set()
                else:
                    stall_timer = loop.call_later(1.0, check_stall)

            stall_timer = loop.call_later(1.0, check_stall)
            try:
                while True:
                    await self._wake.wait()
                    self._wake.clear()
                    if stalled:
                        raise OSError(f"no audio from the device for {_STALL_S:.0f} s: device lost?")
                    if blocks:
                        last_block_at = loop.time()
                    while blocks:
                        block, t = blocks.popleft()
                        for chunk in converter.feed(block):
                            self._level = rms(chunk)
                            metrics.audio_chunks.inc()
                            self.on_chunk(chunk, t)
                    if failed or not stream.active:
                        raise OSError("audio stream stopped: device lost?")
            finally:
                stall_timer.cancel()

    def stop(self) -> None:
        """Stop reopening; the running stream ends when the task is cancelled."""
        self._stopping = True
