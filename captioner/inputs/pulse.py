"""Native PulseAudio / PipeWire: libpulse-simple (ctypes), the client config without shared memory, pactl.

Why native capture, not only PortAudio: through PortAudio's ALSA host API and the ALSA `pulse` plugin, a capture
stream costs 0.5-0.7 CPU-seconds per audio minute on its own (PortAudio's thread polls the plugin hundreds of times
a second), and `Pa_Initialize` maps every ALSA plugin (21 MB of RSS). Recording from the sound server directly,
with 100 ms fragments and the server doing the downmix and resampling it already does for every client, costs a
fraction of that (measured in benchmarks/, #5). PortAudio stays for everything else (device indices, Windows,
macOS, plain ALSA) and for `captioner devices`. The capture itself reads through libpulse's asynchronous API
(pulse_stream.py, #21); libpulse-simple's blocking recorder here answers whether the sound server records at all
(`server_problem`) and is the benchmark's floor.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

# pa_sample_format_t PA_SAMPLE_S16LE, pa_stream_direction_t PA_STREAM_RECORD (pulse/def.h, pulse/sample.h).
_S16LE = 3
_RECORD = 2
_DEFAULT = 0xFFFFFFFF  # (uint32_t) -1: "let the server choose" in pa_buffer_attr

# PulseAudio's special name for the monitor of whatever the default sink is (follows the user's output switches).
DEFAULT_MONITOR = "@DEFAULT_MONITOR@"


class PulseError(OSError):
    """libpulse refused: no server, no such source, or the stream died."""


class SampleSpec(ctypes.Structure):
    _fields_ = [("format", ctypes.c_int), ("rate", ctypes.c_uint32), ("channels", ctypes.c_uint8)]


class BufferAttr(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in ("maxlength", "tlength", "prebuf", "minreq", "fragsize")]


@functools.cache
def _lib() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL("libpulse-simple.so.0")
        pulse = ctypes.CDLL("libpulse.so.0")
    except OSError:
        return None
    err = ctypes.POINTER(ctypes.c_int)
    lib.pa_simple_new.restype = ctypes.c_void_p
    lib.pa_simple_new.argtypes = [
        ctypes.c_char_p,  # server (NULL = default, PULSE_SERVER honoured)
        ctypes.c_char_p,  # application name
        ctypes.c_int,  # direction
        ctypes.c_char_p,  # device (NULL = default source)
        ctypes.c_char_p,  # stream name
        ctypes.POINTER(SampleSpec),
        ctypes.c_void_p,  # channel map (NULL = default for the channel count)
        ctypes.POINTER(BufferAttr),
        err,
    ]
    lib.pa_simple_read.restype = ctypes.c_int
    lib.pa_simple_read.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, err]
    lib.pa_simple_get_latency.restype = ctypes.c_uint64
    lib.pa_simple_get_latency.argtypes = [ctypes.c_void_p, err]
    lib.pa_simple_free.restype = None
    lib.pa_simple_free.argtypes = [ctypes.c_void_p]
    pulse.pa_strerror.restype = ctypes.c_char_p
    pulse.pa_strerror.argtypes = [ctypes.c_int]
    lib.strerror = pulse.pa_strerror  # type: ignore[attr-defined]
    return lib


# Our client.conf -> the one it includes (what libpulse would have read without ours).
_WRAPPERS: dict[str, str | None] = {}


def use_client_config_without_shm() -> None:
    """Point libpulse (in this process) at a client.conf that includes the user's and turns shared memory off.

    With shm or memfd transport, a stream whose server dies (killed, restarted by the session manager) is never
    told: pa_simple_read and pa_simple_get_latency wait forever, and each restart leaks the reader thread, the
    libpulse mainloop thread and their fds (seen in the soak, reproduced in tests/e2e/test_pulse.py). Over the plain
    socket the death is seen at once ("Connection terminated"). 32 kB/s of capture needs no shared memory.
    Call from the event loop's thread, before a recorder opens: it sets PULSE_CLIENTCONFIG.
    """
    current = os.environ.get("PULSE_CLIENTCONFIG")
    if current in _WRAPPERS:
        return
    base = current or _default_client_config()
    folder = tempfile.mkdtemp(prefix="captioner-pulse-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = os.path.join(folder, "client.conf")
    include = f".include {base}\n" if base and os.path.isfile(base) else ""
    Path(path).write_text(f"{include}enable-shm = no\nenable-memfd = no\n", encoding="utf-8")
    _WRAPPERS[path] = base
    os.environ["PULSE_CLIENTCONFIG"] = path


def _default_client_config() -> str | None:
    """The client.conf libpulse reads when PULSE_CLIENTCONFIG is unset: the user's, else the system's."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    for candidate in (os.path.join(config_home, "pulse", "client.conf"), "/etc/pulse/client.conf"):
        if os.path.isfile(candidate):
            return candidate
    return None


def pactl(*args: str) -> str | None:
    """What `pactl ARGS` prints, or None when pactl is missing, fails or takes over 5 s."""
    if not shutil.which("pactl"):
        return None
    try:
        return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def monitor_source() -> str | None:
    """The monitor source of the default PulseAudio/PipeWire sink, via pactl."""
    sink = (pactl("get-default-sink") or "").strip()
    return f"{sink}.monitor" if sink else None


def names(kind: Literal["sources", "sinks"]) -> list[str]:
    """PulseAudio/PipeWire source (monitors included) or sink names, via pactl, for `captioner devices`."""
    lines = (pactl("list", "short", kind) or "").splitlines()
    return [line.split("\t")[1] for line in lines if "\t" in line]


def available() -> bool:
    """libpulse-simple can be loaded (a server may still be absent: open() says so)."""
    return _lib() is not None


class PulseRecorder:
    """One blocking record stream. Use from a single thread: open(), read() repeatedly, close()."""

    def __init__(self, device: str | None, rate: int, chunk_bytes: int, name: str = "captioner") -> None:
        self.device = device
        self.rate = rate
        self.chunk_bytes = chunk_bytes
        self.name = name
        self._s: int | None = None
        self._buf = ctypes.create_string_buffer(chunk_bytes)

    def open(self) -> None:
        lib = _lib()
        if lib is None:
            raise PulseError("libpulse-simple.so.0 not found")
        spec = SampleSpec(_S16LE, self.rate, 1)
        # fragsize = one chunk: the server wakes us once per chunk where it can, instead of per period.
        attr = BufferAttr(_DEFAULT, _DEFAULT, _DEFAULT, _DEFAULT, self.chunk_bytes)
        err = ctypes.c_int(0)
        s = lib.pa_simple_new(
            None,
            self.name.encode(),
            _RECORD,
            self.device.encode() if self.device else None,
            b"captions",
            ctypes.byref(spec),
            None,
            ctypes.byref(attr),
            ctypes.byref(err),
        )
        if not s:
            raise PulseError(f"PulseAudio: {_strerror(err.value)} (source {self.device or 'default'})")
        self._s = s

    def read(self) -> bytes:
        """Block (the GIL released) until one whole chunk is recorded."""
        lib = _lib()
        if self._s is None or lib is None:
            raise PulseError("PulseAudio stream is not open")
        err = ctypes.c_int(0)
        if lib.pa_simple_read(self._s, self._buf, self.chunk_bytes, ctypes.byref(err)) < 0:
            raise PulseError(f"PulseAudio: {_strerror(err.value)}")
        return self._buf.raw

    def buffered_s(self) -> float:
        """Seconds of audio recorded but not yet read (server and client side)."""
        lib = _lib()
        if self._s is None or lib is None:
            raise PulseError("PulseAudio stream is not open")
        err = ctypes.c_int(0)
        usec: int = lib.pa_simple_get_latency(self._s, ctypes.byref(err))
        if usec == 0xFFFFFFFFFFFFFFFF:  # (pa_usec_t) -1
            raise PulseError(f"PulseAudio: {_strerror(err.value)}")
        return usec / 1e6

    def close(self) -> None:
        lib = _lib()
        if self._s is not None and lib is not None:
            lib.pa_simple_free(self._s)
        self._s = None


def server_problem() -> str | None:
    """Why no record stream opens on the default source ("PulseAudio: Connection refused ..."); None when one does."""
    recorder = PulseRecorder(None, 16000, 3200, name="captioner-check")
    try:
        recorder.open()
    except PulseError as e:
        return str(e)
    finally:
        recorder.close()
    return None


def _strerror(code: int) -> str:
    lib = _lib()
    text = lib.strerror(code) if lib is not None else None
    return text.decode(errors="replace") if text else f"error {code}"
