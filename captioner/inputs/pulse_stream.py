"""A PulseAudio / PipeWire record stream on libpulse's asynchronous API (ctypes), polled from the event loop.

Why not libpulse-simple, as `pulse.PulseRecorder` does: its read blocks, so the capture needed a thread of its own
that slept until a chunk was due, blocked in the read, and handed the chunk to the event loop through the loop's
self-pipe: two wake-ups a chunk beside the ones libpulse's thread pays to receive each packet (#21: that thread and
the hand-off cost ~0.3x the whole minimal pipeline). A read callback on libpulse's thread was worse still: the
server sends a record stream's data at the device's render cadence (~25-30 packets a second), and Python ran for
each. Here libpulse's thread only receives the packets, in C, and the event loop takes whole chunks on a timer
set for when the next one will be there: one wake-up a chunk, as a client that blocks its loop in the read has,
without ever blocking. `pa_stream_readable_size`, `_peek` and `_drop` look only at what has arrived, and the lock
is held by libpulse's thread only while it dispatches (it is released while that thread waits in poll), so a frozen
server means no chunks (the capture's stall check sees that), a dead one a failed stream (read() raises).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import math
import statistics
import time
from collections import deque
from collections.abc import Callable

from .pulse import BufferAttr, PulseError, SampleSpec

# pulse/def.h: pa_context_state_t, pa_stream_state_t, pa_stream_flags_t; pulse/sample.h: PA_SAMPLE_S16LE.
_S16LE = 3
_CONTEXT_READY, _CONTEXT_ENDED = 4, (5, 6)  # FAILED, TERMINATED
_STREAM_READY, _STREAM_ENDED = 2, (3, 4)
# The server picks the source latency from fragsize (one chunk), as libpulse-simple asks too. Unlike
# libpulse-simple, no automatic timing updates: nothing here reads the latency, and each update is a round trip.
_ADJUST_LATENCY = 0x2000
_DEFAULT = 0xFFFFFFFF  # (uint32_t) -1: "let the server choose" in pa_buffer_attr
_OPEN_POLL_S = 0.005
_NO_SIZE = ctypes.c_size_t(-1).value  # pa_stream_readable_size's (size_t) -1: the stream is not ready
# A poll after the packet that completes a chunk should be there; a poll that finds it missing looks again this
# soon, then twice as late each time (a frozen server: at most once a packet's length).
_SLACK_S = 0.002
_RETRY_S = 0.002
# Packets are learned from the last few reads, and taken as at least this long (a storm of tiny ones is no cadence).
_ARRIVALS = 8
_MIN_PACKET_S = 0.005


@functools.cache
def _lib() -> ctypes.CDLL | None:
    """libpulse.so.0 with the signatures used here; None when it is not installed."""
    try:
        lib = ctypes.CDLL("libpulse.so.0")  # CDLL: every call releases the GIL
    except OSError:
        return None
    p, i, u = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32
    signatures: dict[str, tuple[object, list[object]]] = {
        "pa_threaded_mainloop_new": (p, []),
        "pa_threaded_mainloop_start": (i, [p]),
        "pa_threaded_mainloop_stop": (None, [p]),
        "pa_threaded_mainloop_free": (None, [p]),
        "pa_threaded_mainloop_lock": (None, [p]),
        "pa_threaded_mainloop_unlock": (None, [p]),
        "pa_threaded_mainloop_get_api": (p, [p]),
        "pa_context_new": (p, [p, ctypes.c_char_p]),
        "pa_context_connect": (i, [p, ctypes.c_char_p, u, p]),
        "pa_context_get_state": (i, [p]),
        "pa_context_errno": (i, [p]),
        "pa_context_disconnect": (None, [p]),
        "pa_context_unref": (None, [p]),
        "pa_stream_new": (p, [p, ctypes.c_char_p, ctypes.POINTER(SampleSpec), p]),
        "pa_stream_connect_record": (i, [p, ctypes.c_char_p, ctypes.POINTER(BufferAttr), u]),
        "pa_stream_get_state": (i, [p]),
        "pa_stream_readable_size": (ctypes.c_size_t, [p]),
        "pa_stream_peek": (i, [p, ctypes.POINTER(p), ctypes.POINTER(ctypes.c_size_t)]),
        "pa_stream_drop": (i, [p]),
        "pa_stream_disconnect": (i, [p]),
        "pa_stream_unref": (None, [p]),
        "pa_strerror": (ctypes.c_char_p, [i]),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def next_poll_s(missing: int, packet: int, bytes_per_s: float, misses: int, late_s: float) -> float:
    """Seconds until the packet that completes a chunk should have arrived (pure, table-tested).

    `missing`: bytes the chunk still lacks; `packet`: a packet's size lately (the server sends what the device
    rendered since its last one, so one arrives every `packet` bytes of audio); `misses`: polls in a row that found
    the chunk incomplete; `late_s`: how long ago, about, the last packet arrived. The chunk is complete when
    ceil(missing / packet) more have arrived; a poll that comes too early looks again soon, then twice as late
    each time (a frozen server: at most once a packet's length).
    """
    packet_s = packet / bytes_per_s
    if misses:
        return min(_retry_s(misses), packet_s)
    return max(_RETRY_S, math.ceil(missing / packet) * packet_s + _SLACK_S - late_s)


def _retry_s(misses: int) -> float:
    """How long a read that found the chunk incomplete for the `misses`-th time in a row waits to look again."""
    return _RETRY_S * 2.0 ** (misses - 1)


class PulseStream:
    """One record stream of 16-bit mono at `rate`, read in `chunk_bytes` chunks. Use from the event loop only."""

    def __init__(self, device: str | None, rate: int, chunk_bytes: int, name: str = "captioner") -> None:
        self.device = device
        self.rate = rate
        self.chunk_bytes = chunk_bytes
        self.name = name
        self._ml: int | None = None
        self._ctx: int | None = None
        self._stream: int | None = None
        self._pending = bytearray()
        # What each of the last reads found arrived (their median is about one packet: a read planned for right
        # after a packet finds that one alone), and polls in a row that came too early.
        self._arrived: deque[int] = deque([chunk_bytes], maxlen=_ARRIVALS)
        self._misses = 0
        self._late_s = 0.0
        self._peeked = ctypes.c_void_p()
        self._size = ctypes.c_size_t()
        self._peeked_ref, self._size_ref = ctypes.byref(self._peeked), ctypes.byref(self._size)

    async def open(self, timeout_s: float) -> None:
        """Connect and start recording; PulseError when the server or the source refuses, or within timeout_s."""
        lib = _lib()
        if lib is None:
            raise PulseError("libpulse.so.0 not found")
        deadline = time.monotonic() + timeout_s
        self._ml = ml = lib.pa_threaded_mainloop_new()
        if not ml or lib.pa_threaded_mainloop_start(ml) < 0:
            raise PulseError("PulseAudio: cannot start libpulse's main loop")
        with self._locked():
            self._ctx = lib.pa_context_new(lib.pa_threaded_mainloop_get_api(ml), self.name.encode())
            if not self._ctx or lib.pa_context_connect(self._ctx, None, 0, None) < 0:
                raise PulseError(f"PulseAudio: {self._error()} (source {self.device or 'default'})")
        await self._until(lambda: lib.pa_context_get_state(self._ctx), _CONTEXT_READY, _CONTEXT_ENDED, deadline)
        spec = SampleSpec(_S16LE, self.rate, 1)
        # fragsize = one chunk: the most the server collects before it sends (a device renders more often).
        attr = BufferAttr(_DEFAULT, _DEFAULT, _DEFAULT, _DEFAULT, self.chunk_bytes)
        with self._locked():
            self._stream = s = lib.pa_stream_new(self._ctx, b"captions", ctypes.byref(spec), None)
            if not s:
                raise PulseError(f"PulseAudio: {self._error()}")
            device = self.device.encode() if self.device else None
            if lib.pa_stream_connect_record(s, device, ctypes.byref(attr), _ADJUST_LATENCY) < 0:
                raise PulseError(f"PulseAudio: {self._error()} (source {self.device or 'default'})")
        await self._until(lambda: lib.pa_stream_get_state(self._stream), _STREAM_READY, _STREAM_ENDED, deadline)

    async def _until(self, state: Callable[[], int], ready: int, ended: tuple[int, ...], deadline: float) -> None:
        """Poll a state set by libpulse's thread until `ready` (open only: a few polls, once per device open)."""
        while True:
            with self._locked():
                now = state()
            if now == ready:
                return
            if now in ended:
                raise PulseError(f"PulseAudio: {self._error()} (source {self.device or 'default'})")
            if time.monotonic() >= deadline:
                raise PulseError(f"PulseAudio: no answer from the sound server (source {self.device or 'default'})")
            await asyncio.sleep(_OPEN_POLL_S)

    def read(self) -> list[bytes]:
        """The whole chunks that have arrived, oldest first (often one, none when polled early). Never blocks;
        PulseError when the stream ended (the server died, the source went away)."""
        lib = _lib()
        if lib is None or self._stream is None or self._ml is None:
            raise PulseError("PulseAudio stream is not open")
        # Run ten times a second on the event loop, each time with cold caches: as few calls into C as it can.
        s, pending, before = self._stream, self._pending, len(self._pending)
        lib.pa_threaded_mainloop_lock(self._ml)
        try:
            left = lib.pa_stream_readable_size(s)  # (size_t) -1 unless the stream is ready: it died
            if left == _NO_SIZE:
                raise PulseError(f"PulseAudio: {self._error()} (source {self.device or 'default'})")
            while left:
                if lib.pa_stream_peek(s, self._peeked_ref, self._size_ref) < 0:
                    raise PulseError(f"PulseAudio: {self._error()}")
                n, data = self._size.value, self._peeked.value
                if not n:
                    break
                # NULL data with a size is a hole in the stream (the server dropped audio): silence keeps time right.
                pending += ctypes.string_at(data, n) if data else bytes(n)
                lib.pa_stream_drop(s)
                left -= min(n, left)
        finally:
            lib.pa_threaded_mainloop_unlock(self._ml)
        if len(pending) > before:
            self._arrived.append(len(pending) - before)
            # Planned on time, this read comes _SLACK_S after the packet; a second look, half its wait after.
            self._late_s = _SLACK_S if not self._misses else _retry_s(self._misses) / 2
        chunk = self.chunk_bytes
        whole = len(pending) // chunk
        self._misses = 0 if whole else self._misses + 1
        if not whole:
            return []
        chunks = [bytes(pending[i * chunk : (i + 1) * chunk]) for i in range(whole)]
        del pending[: whole * chunk]
        return chunks

    def next_poll_s(self) -> float:
        """When to read() again: when the next whole chunk should have arrived."""
        missing = self.chunk_bytes - len(self._pending)
        packet = max(_MIN_PACKET_S * self.rate * 2, min(statistics.median_low(self._arrived), self.chunk_bytes))
        return next_poll_s(missing, int(packet), self.rate * 2, self._misses, self._late_s)

    def close(self) -> None:
        """Stop recording and free everything, libpulse's thread included. Never blocks on the server."""
        lib = _lib()
        if lib is None or self._ml is None:
            return
        with self._locked():
            if self._stream:
                lib.pa_stream_disconnect(self._stream)
                lib.pa_stream_unref(self._stream)
            if self._ctx:
                lib.pa_context_disconnect(self._ctx)
                lib.pa_context_unref(self._ctx)
        self._stream = self._ctx = None
        lib.pa_threaded_mainloop_stop(self._ml)
        lib.pa_threaded_mainloop_free(self._ml)
        self._ml = None

    # ---- helpers -----------------------------------------------------------------------------------------
    def _error(self) -> str:
        lib = _lib()
        if lib is None or not self._ctx:
            return "unknown error"
        text = lib.pa_strerror(lib.pa_context_errno(self._ctx))
        return text.decode(errors="replace") if text else "unknown error"

    def _locked(self) -> _Lock:
        return _Lock(self._ml)


class _Lock:
    """pa_threaded_mainloop_lock / unlock as a context manager (held by libpulse's thread only while it dispatches)."""

    def __init__(self, ml: int | None) -> None:
        self._ml = ml

    def __enter__(self) -> None:
        lib = _lib()
        if lib is not None and self._ml:
            lib.pa_threaded_mainloop_lock(self._ml)

    def __exit__(self, *exc: object) -> None:
        lib = _lib()
        if lib is not None and self._ml:
            lib.pa_threaded_mainloop_unlock(self._ml)
