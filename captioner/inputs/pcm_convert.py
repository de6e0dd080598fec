"""Pure: captured float32 blocks at any rate and channel count -> exact 16 kHz mono PCM16LE chunks."""

from __future__ import annotations

import numpy as np

# The translator's input rate; the native PulseAudio path asks the sound server for it directly.
TARGET_RATE = 16_000


class Pcm16Converter:
    """Any rate / channel count (float32 blocks) -> exact chunks of 16 kHz mono PCM16LE bytes."""

    def __init__(self, in_rate: int, channels: int, chunk_ms: int = 100) -> None:
        self.in_rate = in_rate
        self.channels = channels
        self.chunk_bytes = TARGET_RATE * chunk_ms // 1000 * 2
        # A streaming resampler keeps its filter state between blocks, so block edges leave no clicks. Imported
        # here: the native PulseAudio capture never resamples, and the module costs 0.4 MB of RSS (#21).
        import soxr

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
