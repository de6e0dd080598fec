"""A PulseAudio / PipeWire record stream on libpulse's asynchronous API (ctypes), read as the server's packets arrive.

Why not libpulse-simple, as `pulse.PulseRecorder` does: its read blocks, so the daemon needed a thread of its own
that slept until a chunk was due, blocked in the read, and handed each chunk to the event loop through its
self-pipe: two or three wake-ups a chunk beside the ones libpulse's own thread already pays to receive the packet
(measured in #21: that thread and hand-off were ~0.3x the CPU of the whole minimal pipeline). Here libpulse's
threaded main loop receives the packet and, in the same wake-up, calls `_readable`, which cuts whole chunks and
hands them on. Nothing ever blocks the caller: a frozen server only means no chunks (the capture's stall check
sees that), a dead one a failed stream (`on_fail`).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import time
from collections.abc import Callable

from .pulse import BufferAttr, PulseError, SampleSpec

log = logging.getLogger(__name__)

# pulse/def.h: pa_context_state_t, pa_stream_state_t, pa_stream_flags_t; pulse/sample.h: PA_SAMPLE_S16LE.
_S16LE = 3
_CONTEXT_READY, _CONTEXT_ENDED = 4, (5, 6)  # FAILED, TERMINATED
_STREAM_READY, _STREAM_ENDED = 2, (3, 4)
# The server picks the source latency from fragsize (one chunk), as libpulse-simple asks too. Unlike
# libpulse-simple, no automatic timing updates: nothing here reads the latency, and each update is a round trip.
_ADJUST_LATENCY = 0x2000
# A stream on a source named in the config is killed when that source goes away, instead of being moved to the
# default source (which may be another input's microphone).
_DONT_MOVE = 0x0200
_DEFAULT = 0xFFFFFFFF  # (uint32_t) -1: "let the server choose" in pa_buffer_attr
_OPEN_POLL_S = 0.005

_READ_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
_STATE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


@functools.cache
def _lib() -> ctypes.CDLL | None:
    """libpulse.so.0 with the signatures used here; None when it is not installed."""
    try:
        lib = ctypes.CDLL("libpulse.so.0")  # CDLL: every call releases the GIL, so callbacks can run meanwhile
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
        "pa_stream_set_read_callback": (None, [p, p, p]),
        "pa_stream_set_state_callback": (None, [p, p, p]),
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


def available() -> bool:
    return _lib() is not None


class PulseStream:
    """One record stream of 16-bit mono at `rate`, cut into `chunk_bytes` chunks for `on_chunk(chunk, at)`.

    `on_chunk` and `on_fail` run on libpulse's thread (its lock held): they must only hand over, as
    `_HandOver.put` / `fail` do. open() and close() are for the event loop's thread.
    """

    def __init__(
        self,
        device: str | None,
        rate: int,
        chunk_bytes: int,
        on_chunk: Callable[[bytes, float], None],
        on_fail: Callable[[str], None],
        *,
        name: str = "captioner",
        dont_move: bool = False,
    ) -> None:
        self.device = device
        self.rate = rate
        self.chunk_bytes = chunk_bytes
        self.on_chunk = on_chunk
        self.on_fail = on_fail
        self.name = name
        self.dont_move = dont_move
        self._ml: int | None = None
        self._ctx: int | None = None
        self._stream: int | None = None
        self._pending = bytearray()
        self._failed = False
        # Kept referenced for as long as libpulse may call them.
        self._read_cb = _READ_CB(self._readable)
        self._state_cb = _STATE_CB(self._state_changed)

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
                raise PulseError(f"PulseAudio: {self._error()}")
        await self._until(lambda: lib.pa_context_get_state(self._ctx), _CONTEXT_READY, _CONTEXT_ENDED, deadline)
        spec = SampleSpec(_S16LE, self.rate, 1)
        # fragsize = one chunk: the server sends a packet per chunk where it can, one wake-up each.
        attr = BufferAttr(_DEFAULT, _DEFAULT, _DEFAULT, _DEFAULT, self.chunk_bytes)
        flags = _ADJUST_LATENCY | (_DONT_MOVE if self.dont_move else 0)
        with self._locked():
            self._stream = s = lib.pa_stream_new(self._ctx, b"captions", ctypes.byref(spec), None)
            if not s:
                raise PulseError(f"PulseAudio: {self._error()}")
            lib.pa_stream_set_read_callback(s, ctypes.cast(self._read_cb, ctypes.c_void_p), None)
            device = self.device.encode() if self.device else None
            if lib.pa_stream_connect_record(s, device, ctypes.byref(attr), flags) < 0:
                raise PulseError(f"PulseAudio: {self._error()} (source {self.device or 'default'})")
        await self._until(lambda: lib.pa_stream_get_state(self._stream), _STREAM_READY, _STREAM_ENDED, deadline)
        with self._locked():  # from now on a failure is reported, not raised
            lib.pa_stream_set_state_callback(self._stream, ctypes.cast(self._state_cb, ctypes.c_void_p), None)
            if lib.pa_stream_get_state(self._stream) != _STREAM_READY:
                raise PulseError(f"PulseAudio: {self._error()} (source {self.device or 'default'})")

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

    def close(self) -> None:
        """Stop recording and free everything, libpulse's thread included. Never blocks on the server."""
        lib = _lib()
        if lib is None or self._ml is None:
            return
        with self._locked():
            if self._stream:
                lib.pa_stream_set_read_callback(self._stream, None, None)
                lib.pa_stream_set_state_callback(self._stream, None, None)
                lib.pa_stream_disconnect(self._stream)
                lib.pa_stream_unref(self._stream)
            if self._ctx:
                lib.pa_context_disconnect(self._ctx)
                lib.pa_context_unref(self._ctx)
        self._stream = self._ctx = None
        lib.pa_threaded_mainloop_stop(self._ml)
        lib.pa_threaded_mainloop_free(self._ml)
        self._ml = None

    # ---- libpulse's thread, its lock held --------------------------------------------------------------
    def _readable(self, stream: int, nbytes: int, userdata: int) -> None:
        try:
            self._read_all(stream)
        except Exception as e:  # noqa: BLE001 - an exception must not escape into C, where it is only printed
            self._fail(f"PulseAudio capture failed: {e!r}")

    def _read_all(self, stream: int) -> None:
        lib = _lib()
        assert lib is not None
        data, size = ctypes.c_void_p(), ctypes.c_size_t()
        while lib.pa_stream_readable_size(stream) not in (0, ctypes.c_size_t(-1).value):
            if lib.pa_stream_peek(stream, ctypes.byref(data), ctypes.byref(size)) < 0:
                self._fail(f"PulseAudio: {self._error()}")
                return
            if size.value == 0:  # nothing after all
                break
            # NULL data with a size is a hole in the stream (the server dropped audio): silence keeps time right.
            self._pending += ctypes.string_at(data.value, size.value) if data.value else bytes(size.value)
            lib.pa_stream_drop(stream)
        at = time.monotonic()
        pending, n = self._pending, self.chunk_bytes
        while len(pending) >= n:
            chunk = bytes(pending[:n])
            del pending[:n]
            self.on_chunk(chunk, at)

    def _state_changed(self, stream: int, userdata: int) -> None:
        lib = _lib()
        if lib is not None and lib.pa_stream_get_state(stream) in _STREAM_ENDED:
            self._fail(f"PulseAudio: {self._error()} (source {self.device or 'default'})")

    def _fail(self, reason: str) -> None:
        if not self._failed:
            self._failed = True
            self.on_fail(reason)

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
    """pa_threaded_mainloop_lock / unlock as a context manager (ctypes releases the GIL while it waits)."""

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
