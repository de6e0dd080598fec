"""Real-part test harness: headless OBS 29 on Xvfb, private PulseAudio null sink, espeak-ng, nginx-rtmp."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

logging.getLogger("obsws_python").setLevel(logging.CRITICAL)

#: Executables the real-part tests need.
REQUIRED_TOOLS: tuple[str, ...] = (
    "obs",
    "Xvfb",
    "pulseaudio",
    "pactl",
    "paplay",
    "espeak-ng",
    "sox",
    "ffmpeg",
    "nginx",
)
#: Files needed too: the nginx RTMP module; the ALSA->PulseAudio plugin behind the ALSA "pulse" device.
REQUIRED_FILES: tuple[str, ...] = (
    "/usr/lib/nginx/modules/ngx_rtmp_module.so",
    "/usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so",
)

#: Set CAPTIONER_E2E_KEEP=1 to keep the scratch directories (configs, logs, recordings) after stop().
KEEP_ENV_VAR = "CAPTIONER_E2E_KEEP"

_PR_SET_PDEATHSIG = 1
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def home_env(home: Path) -> dict[str, str]:
    """HOME and the XDG folders of a private home: programs that read $XDG_CONFIG_HOME (OBS does) look there."""
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }


def missing_requirements() -> list[str]:
    """Return the required executables/files that are not installed (empty list = all present)."""
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    missing += [f for f in REQUIRED_FILES if not Path(f).exists()]
    from tests.support.browser import chromium_path  # the overlay tests drive a real headless Chromium

    if chromium_path() is None:
        missing.append("chromium")
    return missing


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_display(start: int = 90, stop: int = 150, skip: Sequence[int] = ()) -> int:
    """Return the first X display number in [start, stop] with neither a socket nor a lock file."""
    for n in range(start, stop + 1):
        if n in skip:
            continue
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError(f"no free X display in {start}..{stop}")


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(text.splitlines()[-lines:])


_PRCTL: Any = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # resolved before any fork


def _set_pdeathsig() -> None:
    """In the child: die with SIGKILL when the spawning (main) thread of the test process dies."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _spawn(
    cmd: Sequence[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a child in its own session, stdout+stderr appended to log, registered for the atexit net."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pdeath = threading.current_thread() is threading.main_thread()
    with open(log, "ab") as out:
        p = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_set_pdeathsig if pdeath else None,
        )
    with _LIVE_LOCK:
        _LIVE.add(p)
    return p


def _killpg_leftovers(pid: int) -> None:
    """SIGKILL what is left of the process group led by our just-reaped child pid (it ran in its own session).

    Call this only right after reaping: while group members live, the kernel does not reuse the PID.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _reap(p: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, grace: float = 5.0) -> None:
    """Send sig to p (by PID), wait up to grace s, then SIGKILL; SIGKILL its leftover process group."""
    if p is None:
        return
    try:
        if p.returncode is not None:
            return  # reaped earlier: its PID (and so its process group id) may belong to someone else by now
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGCONT)  # a frozen process cannot act on SIGINT/SIGTERM
                os.kill(p.pid, sig)
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        _killpg_leftovers(p.pid)
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(p)


@atexit.register
def _kill_leftovers() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for p in procs:
        _reap(p, signal.SIGKILL, grace=2.0)


def _wait_for(
    pred: Any,
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    interval: float = 0.02,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            tail = _tail(log) if log else ""
            raise RuntimeError(f"{what}: {proc.args!r} exited {proc.returncode}\n--- log tail ---\n{tail}")
        if time.monotonic() > deadline:
            tail = _tail(log) if log else ""
            raise TimeoutError(f"{what}: not ready after {timeout:.0f} s\n--- log tail ---\n{tail}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------- audio files


def speech_wav(text: str, path: str | os.PathLike[str], voice: str = "en", wpm: int = 160) -> Path:
    """Synthesize text with espeak-ng into a wav file (22050 Hz mono s16) and return its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(out), "--", text],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    return out


def silence_padded_sequence(
    phrases: list[str], gap_s: float, path: str | os.PathLike[str], voice: str = "en", wpm: int = 160
) -> Path:
    """Build ONE wav: the spoken phrases in order, separated by gap_s seconds of silence."""
    if not phrases:
        raise ValueError("phrases must not be empty")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seq-", dir=out.parent) as td:
        parts: list[str] = []
        sil = Path(td) / "gap.wav"
        for i, phrase in enumerate(phrases):
            wav = speech_wav(phrase, Path(td) / f"p{i}.wav", voice=voice, wpm=wpm)
            if i == 0 and gap_s > 0:
                with wave.open(str(wav)) as w:
                    rate, ch = w.getframerate(), w.getnchannels()
                subprocess.run(
                    ["sox", "-n", "-r", str(rate), "-c", str(ch), "-b", "16", str(sil), "trim", "0", f"{gap_s:.3f}"],
                    check=True,
                    capture_output=True,
                    timeout=60,
                )
            if i > 0 and gap_s > 0:
                parts.append(str(sil))
            parts.append(str(wav))
        if len(parts) == 1:
            shutil.copyfile(parts[0], out)
        else:
            subprocess.run(["sox", *parts, str(out)], check=True, capture_output=True, timeout=60)
    return out


def tone_wav(
    path: str | os.PathLike[str],
    seconds: float,
    freq: float,
    rate: int = 48000,
    channels: int = 2,
    amplitude: float = 0.5,
) -> Path:
    """Write a sine tone as a 16-bit wav and return its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(round(seconds * rate)) / rate
    mono = (amplitude * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    data = np.repeat(mono[:, None], channels, axis=1)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return out


def wav_duration(path: str | os.PathLike[str]) -> float:
    """Length of a wav file in seconds."""
    with wave.open(str(path)) as w:
        return float(w.getnframes()) / float(w.getframerate())


# --------------------------------------------------------------------------------------------- PulseAudio


class PulseEnv:
    """Private PulseAudio server, null sink `e2e_sink` = default sink, its monitor = default source."""

    sink = "e2e_sink"
    monitor = "e2e_sink.monitor"

    def __init__(
        self,
        base: str | os.PathLike[str] | None = None,
        start_timeout: float = 10.0,
        keepalive: bool = True,
        keepalive_ms: int = 40,
    ) -> None:
        self._own_base = base is None
        self.keepalive = keepalive
        # The keepalive stream's latency sets how often the null sink renders, and so how often its monitor wakes
        # every recorder: ~keepalive_ms / 2 (benchmarks/ model a device shared with a low-latency recorder by it).
        self.keepalive_ms = keepalive_ms
        self.keepalive_proc: subprocess.Popen[bytes] | None = None
        self.base = Path(base) if base is not None else Path(tempfile.mkdtemp(prefix="pulseenv-"))
        self.start_timeout = start_timeout
        self.home = self.base / "home"
        self.runtime = self.base / "run"
        self.socket = self.runtime / "pulse" / "native"
        self.log = self.base / "logs" / "pulse.log"
        self.client_conf = self.base / "client.conf"
        self.proc: subprocess.Popen[bytes] | None = None
        self._players: list[subprocess.Popen[bytes]] = []
        #: Environment for children: PULSE_SERVER is all libpulse (and so the ALSA "pulse" device) needs;
        #: PULSE_CLIENTCONFIG points at a client.conf with autospawn=no so nothing ever spawns a stray daemon.
        self.env: dict[str, str] = {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_CLIENTCONFIG": str(self.client_conf),
        }

    # -- lifecycle
    def start(self) -> PulseEnv:
        """Start pulseaudio and wait for its socket (fails fast with the log tail)."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        for d in (self.home, self.runtime / "pulse", self.log.parent):
            d.mkdir(parents=True, exist_ok=True)
        self.runtime.chmod(0o700)
        self.client_conf.write_text("autospawn = no\n")
        if self.socket.exists():
            self.socket.unlink()
        env = {**os.environ, **home_env(self.home), "XDG_RUNTIME_DIR": str(self.runtime), **self.env}
        env.pop("DISPLAY", None)
        cmd = [
            "pulseaudio",
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--log-target=stderr",
            "-L",
            f"module-native-protocol-unix socket={self.socket} auth-anonymous=1",
            "-L",
            f"module-null-sink sink_name={self.sink} rate=48000 channels=2 sink_properties=device.description=E2E_Sink",
            "-L",
            "module-always-sink",
        ]
        self.proc = _spawn(cmd, self.log, env=env, cwd=self.base)
        try:
            _wait_for(self._answers, self.start_timeout, "pulseaudio", self.proc, self.log, interval=0.05)
            self.pactl("set-default-sink", self.sink)
            self.pactl("set-default-source", self.monitor)
            if self.keepalive:
                self._start_keepalive()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_keepalive(self) -> None:
        """Play endless digital silence into the sink at low latency, then wait until the monitor delivers data.

        An idle module-null-sink renders in 2 s blocks and only re-reads the requested latency when its current
        block ends, so without a steady low-latency input a recorder on the monitor gets its first data up to 2 s
        late (and paplay overruns by as much). The silent stream makes the null sink clock like a sound card;
        it adds nothing audible (digital zeros) and costs ~0.5 % CPU.
        """
        self.keepalive_proc = _spawn(
            [
                "pacat",
                "--playback",
                f"--device={self.sink}",
                f"--latency-msec={self.keepalive_ms}",
                "--raw",
                "--format=s16le",
                "--rate=48000",
                "--channels=2",
                "--client-name=e2e-keepalive",
                "/dev/zero",
            ],
            self.log.parent / "keepalive.log",
            env=self.child_env(),
        )
        _wait_for(
            lambda: bool(self.pactl("list", "short", "sink-inputs").strip()),
            5,
            "keepalive stream",
            self.keepalive_proc,
            self.log.parent / "keepalive.log",
            interval=0.02,
        )
        # A suspend/resume cycle restarts the sink's clock at once with the new, small block size
        # (otherwise the pending 2 s block must run out first).
        self.pactl("suspend-sink", self.sink, "1")
        self.pactl("suspend-sink", self.sink, "0")
        probe = subprocess.Popen(
            ["pacat", "--record", f"--device={self.monitor}", "--latency-msec=20", "--raw"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=self.child_env(),
        )
        try:
            assert probe.stdout is not None
            got = 0
            deadline = time.monotonic() + 5.0
            # The first data arrives when the pending 2 s block ends; from then on blocks are small.
            while got < 2 and time.monotonic() < deadline:
                r, _, _ = select.select([probe.stdout], [], [], 0.1)
                if r and os.read(probe.stdout.fileno(), 65536):
                    got += 1
            if got < 2:
                raise RuntimeError(f"null sink monitor delivers no data\n{_tail(self.log)}")
        finally:
            probe.kill()
            probe.wait()
            if probe.stdout is not None:
                probe.stdout.close()

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        r = subprocess.run(["pactl", "info"], env=self.child_env(), capture_output=True, timeout=10)
        return r.returncode == 0

    def stop(self) -> None:
        """Stop players + server (by PID, waited); remove the scratch dir unless CAPTIONER_E2E_KEEP=1."""
        for p in self._players:
            _reap(p, signal.SIGTERM, grace=2.0)
        self._players.clear()
        _reap(self.keepalive_proc, signal.SIGTERM, grace=2.0)
        self.keepalive_proc = None
        _reap(self.proc, signal.SIGTERM, grace=5.0)
        self.proc = None
        if self._own_base and not os.environ.get(KEEP_ENV_VAR):
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PulseEnv:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- helpers
    def child_env(self, **extra: str) -> dict[str, str]:
        """os.environ + self.env + extra: the whole environment for a child that should use this server."""
        return {**os.environ, **self.env, **extra}

    def pactl(self, *args: str) -> str:
        """Run pactl against this server, return stdout (raises on failure)."""
        r = subprocess.run(["pactl", *args], env=self.child_env(), capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {r.stderr.strip()}")
        return r.stdout

    def load_module(self, name: str, *args: str) -> int:
        """pactl load-module; returns the module index (unload with unload_module)."""
        return int(self.pactl("load-module", name, *args).strip())

    def unload_module(self, index: int) -> None:
        self.pactl("unload-module", str(index))

    def defaults(self) -> tuple[str, str]:
        """(default sink, default source) as reported by the server."""
        return self.pactl("get-default-sink").strip(), self.pactl("get-default-source").strip()

    def play_async(self, wav_path: str | os.PathLike[str]) -> subprocess.Popen[bytes]:
        """Start `paplay --device=e2e_sink wav` and return the Popen (reaped by stop() if still running)."""
        p = _spawn(
            ["paplay", f"--device={self.sink}", str(wav_path)], self.log.parent / "paplay.log", env=self.child_env()
        )
        self._players = [q for q in self._players if q.poll() is None] + [p]
        return p

    def play(self, wav_path: str | os.PathLike[str], blocking: bool = True) -> subprocess.Popen[bytes] | None:
        """Play a wav into the null sink; blocking waits for the end (raises if paplay fails)."""
        p = self.play_async(wav_path)
        if not blocking:
            return p
        try:
            rc = p.wait(timeout=wav_duration(wav_path) + 30)
        finally:
            _reap(p, signal.SIGTERM, grace=2.0)
            self._players.remove(p)
        if rc != 0:
            raise RuntimeError(f"paplay exited {rc}\n{_tail(self.log.parent / 'paplay.log')}")
        return None


# --------------------------------------------------------------------------------------------- OBS


_GLOBAL_INI = """\
[General]
FirstRun=true
EnableAutoUpdates=false
ConfirmOnExit=false
[BasicWindow]
PreviewEnabled=false
[Basic]
Profile=E2E
ProfileDir=E2E
SceneCollection=E2E
SceneCollectionFile=E2E
[OBSWebSocket]
FirstLoad=false
ServerEnabled=true
ServerPort={ws_port}
AlertsEnabled=false
AuthRequired=true
ServerPassword={password}
"""

_BASIC_INI = """\
[General]
Name=E2E
[Video]
BaseCX={w}
BaseCY={h}
OutputCX={w}
OutputCY={h}
FPSType=2
FPSNum={fps}
FPSDen=1
[Output]
Mode=Simple
[SimpleOutput]
StreamEncoder=x264
VBitrate=200
ABitrate=64
Preset=ultrafast
UseAdvanced=true
x264Settings=keyint={fps}
[Audio]
SampleRate=48000
ChannelSetup=Stereo
"""

_NGINX_CONF = """\
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process off; worker_processes 1;
pid {base}/nginx/nginx.pid; error_log {base}/logs/nginx.log info;
events {{ worker_connections 64; }}
rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;
  application live {{ live on; record all; record_path {base}/rec; record_unique on; }} }} }}
"""

# Sends WM_DELETE_WINDOW to every top-level window whose WM_NAME starts with argv[2] on X display argv[1], i.e.
# what clicking the main window's close button does. Runs in a child process so an Xlib failure cannot take the
# test process down. Exit status 0 = sent, 1 = no such window, 2 = cannot open the display.
_X11_CLOSE_SCRIPT = r"""
import ctypes, sys
from ctypes import POINTER, byref, c_char, c_char_p, c_int, c_long, c_uint, c_ulong, c_void_p
class XClientMessageEvent(ctypes.Structure):
    _fields_ = [("type", c_int), ("serial", c_ulong), ("send_event", c_int), ("display", c_void_p),
                ("window", c_ulong), ("message_type", c_ulong), ("format", c_int), ("data", c_long * 5)]
class XEvent(ctypes.Union):
    _fields_ = [("xclient", XClientMessageEvent), ("pad", c_long * 24)]
x = ctypes.CDLL("libX11.so.6")
on_error = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p)(lambda d, e: 0)
x.XSetErrorHandler(on_error)
x.XOpenDisplay.restype = c_void_p
x.XOpenDisplay.argtypes = [c_char_p]
x.XDefaultRootWindow.restype = c_ulong
x.XDefaultRootWindow.argtypes = [c_void_p]
x.XQueryTree.argtypes = [c_void_p, c_ulong, POINTER(c_ulong), POINTER(c_ulong), POINTER(POINTER(c_ulong)),
                         POINTER(c_uint)]
x.XFetchName.argtypes = [c_void_p, c_ulong, POINTER(POINTER(c_char))]
x.XInternAtom.restype = c_ulong
x.XInternAtom.argtypes = [c_void_p, c_char_p, c_int]
x.XSendEvent.argtypes = [c_void_p, c_ulong, c_int, c_long, c_void_p]
for f in (x.XFree, x.XFlush, x.XCloseDisplay):
    f.argtypes = [c_void_p]
dpy = x.XOpenDisplay(sys.argv[1].encode())
if not dpy:
    sys.exit(2)
root, parent, children, n = c_ulong(), c_ulong(), POINTER(c_ulong)(), c_uint()
x.XQueryTree(dpy, x.XDefaultRootWindow(dpy), byref(root), byref(parent), byref(children), byref(n))
windows = [children[i] for i in range(n.value)]
if children:
    x.XFree(children)
protocols = x.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
delete = x.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
sent = 0
for w in windows:
    name = POINTER(c_char)()
    if x.XFetchName(dpy, w, byref(name)) and name:
        title = ctypes.cast(name, c_char_p).value.decode(errors="replace")
        x.XFree(name)
        if title.startswith(sys.argv[2]):
            ev = XEvent()
            ev.xclient.type = 33  # ClientMessage
            ev.xclient.window = w
            ev.xclient.message_type = protocols
            ev.xclient.format = 32
            ev.xclient.data[0] = delete
            x.XSendEvent(dpy, w, 0, 0, byref(ev))
            sent += 1
x.XFlush(dpy)
x.XCloseDisplay(dpy)
sys.exit(0 if sent else 1)
"""

_TAG_RE = re.compile(r"<[^>]*>|\{\\an?\d+\}")


def parse_srt(text: str, row_sep: str = " ") -> list[str]:
    """SRT text -> list of cue texts, font tags and {\\an7} stripped, rows joined with `row_sep`."""
    cues: list[str] = []
    for block in re.split(r"\r?\n\s*\r?\n", text.strip()):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if len(lines) >= 2 and "-->" in lines[1]:
            rows = lines[2:]
        elif lines and "-->" in lines[0]:
            rows = lines[1:]
        else:
            continue
        cue = row_sep.join(r for r in (_TAG_RE.sub("", x).strip() for x in rows) if r)
        if cue:
            cues.append(cue)
    return cues


class ObsEnv:
    """Headless OBS 29 (Xvfb, software GL), obs-websocket on a free port, optionally nginx-rtmp recording."""

    host = "127.0.0.1"
    stream_key = "test"

    def __init__(
        self,
        pulse: PulseEnv | None = None,
        *,
        ws_port: int | None = None,
        password: str = "e2e-pass",
        rtmp: bool = False,
        rtmp_port: int | None = None,
        fps: int = 10,
        width: int = 320,
        height: int = 180,
        base: str | os.PathLike[str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.pulse = pulse
        self.ws_port = ws_port if ws_port is not None else free_port()
        self.password = password
        self.rtmp = rtmp
        self.rtmp_port = rtmp_port if rtmp_port is not None else free_port()
        self.fps, self.width, self.height = fps, width, height
        self.start_timeout = start_timeout
        self._own_base = base is None
        self.base = Path(base) if base is not None else Path(tempfile.mkdtemp(prefix="obsenv-"))
        self.home = self.base / "home"
        self.runtime = self.base / "run"
        self.logs = self.base / "logs"
        self.rec_dir = self.base / "rec"
        self.obs_log = self.logs / "obs.log"
        self.display: int | None = None
        self.obs: subprocess.Popen[bytes] | None = None
        self.xvfb: subprocess.Popen[bytes] | None = None
        self.nginx: subprocess.Popen[bytes] | None = None
        self._clients: list[Any] = []
        self._probe: Any = None
        self.frozen = False
        #: Seconds from spawning OBS to a working GetVersion, and from SIGINT to process exit (last call).
        self.last_start_s: float | None = None
        self.last_stop_s: float | None = None
        self.last_stop_method: str | None = None

    # -- properties
    @property
    def rtmp_url(self) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live"

    @property
    def obs_running(self) -> bool:
        return self.obs is not None and self.obs.poll() is None

    # -- lifecycle
    def __enter__(self) -> ObsEnv:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> ObsEnv:
        """Write configs, start nginx (if rtmp), Xvfb and OBS; wait for the websocket."""
        try:
            for d in (self.home, self.runtime, self.logs, self.rec_dir, self.base / "nginx"):
                d.mkdir(parents=True, exist_ok=True)
            self.runtime.chmod(0o700)
            if self.rtmp and self.nginx is None:
                self._start_nginx()
            if self.xvfb is None:
                self._start_xvfb()
            self.start_obs()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_nginx(self) -> None:
        if port_open(self.rtmp_port):
            raise RuntimeError(f"rtmp port {self.rtmp_port} already in use")
        conf = self.base / "nginx" / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(base=self.base, port=self.rtmp_port))
        log = self.logs / "nginx.out"
        self.nginx = _spawn(
            ["nginx", "-p", str(self.base / "nginx"), "-e", str(self.logs / "nginx.log"), "-c", str(conf)], log
        )
        _wait_for(lambda: port_open(self.rtmp_port), 10, "nginx-rtmp", self.nginx, self.logs / "nginx.log")

    def _start_xvfb(self) -> None:
        tried: list[int] = []
        for _ in range(5):  # another run may grab the same display between our check and Xvfb's lock
            n = free_display(skip=tried)
            tried.append(n)
            log = self.logs / "xvfb.log"
            p = _spawn(["Xvfb", f":{n}", "-screen", "0", "1280x720x24", "-nolisten", "tcp"], log)
            sock = Path(f"/tmp/.X11-unix/X{n}")
            try:
                _wait_for(sock.exists, 10, f"Xvfb :{n}", p, log)
            except (RuntimeError, TimeoutError):
                _reap(p)
                continue
            self.xvfb, self.display = p, n
            return
        raise RuntimeError(f"could not start Xvfb (tried {tried})\n{_tail(self.logs / 'xvfb.log')}")

    def _write_configs(self) -> None:
        cfg = self.home / ".config" / "obs-studio"
        prof = cfg / "basic" / "profiles" / "E2E"
        prof.mkdir(parents=True, exist_ok=True)
        (cfg / "global.ini").write_text(_GLOBAL_INI.format(ws_port=self.ws_port, password=self.password))
        (prof / "basic.ini").write_text(_BASIC_INI.format(w=self.width, h=self.height, fps=self.fps))
        (prof / "service.json").write_text(
            json.dumps({"type": "rtmp_custom", "settings": {"server": self.rtmp_url, "key": self.stream_key}})
        )

    def _obs_env(self) -> dict[str, str]:
        env = {
            **os.environ,
            **home_env(self.home),
            "XDG_RUNTIME_DIR": str(self.runtime),
            "DISPLAY": f":{self.display}",
            "LIBGL_ALWAYS_SOFTWARE": "1",
        }
        drop = ("WAYLAND_DISPLAY", "PULSE_SERVER", "PULSE_SOURCE", "PULSE_SINK", "DBUS_SESSION_BUS_ADDRESS")
        for k in drop:
            env.pop(k, None)
        if self.pulse is not None:
            env.update(self.pulse.env)
        else:  # no audio server: make sure libpulse never autospawns one
            conf = self.base / "client.conf"
            conf.write_text("autospawn = no\n")
            env["PULSE_CLIENTCONFIG"] = str(conf)
            env["PULSE_SERVER"] = f"unix:{self.runtime}/no-pulse"
        return env

    def start_obs(self, fresh: bool = False) -> None:
        """Start OBS with the same config (scene collection kept unless fresh); wait until it answers."""
        if self.obs_running:
            return
        if self.xvfb is None or self.display is None:
            raise RuntimeError("start() first")
        if port_open(self.ws_port):
            raise RuntimeError(f"websocket port {self.ws_port} already in use")
        self._write_configs()
        if fresh:
            shutil.rmtree(self.home / ".config" / "obs-studio" / "basic" / "scenes", ignore_errors=True)
        with open(self.obs_log, "a") as f:
            f.write(f"\n===== start_obs {time.strftime('%H:%M:%S')} =====\n")
        t0 = time.monotonic()
        self.obs = _spawn(
            [
                "obs",
                "--disable-shutdown-check",
                "--disable-missing-files-check",
                "--multi",
                "--websocket_port",
                str(self.ws_port),
                "--websocket_password",
                self.password,
            ],
            self.obs_log,
            env=self._obs_env(),
            cwd=self.home,
        )
        self.frozen = False
        _wait_for(
            lambda: port_open(self.ws_port),
            self.start_timeout,
            "OBS websocket port",
            self.obs,
            self.obs_log,
            interval=0.05,
        )
        deadline = t0 + self.start_timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self.obs.poll() is not None:
                break
            try:
                c = self._new_client(timeout=3)
                try:
                    c.get_version()
                finally:
                    c.disconnect()
                self.last_start_s = time.monotonic() - t0
                return
            except Exception as e:  # noqa: BLE001 - not ready yet: retry
                last = e
                time.sleep(0.1)
        raise RuntimeError(
            f"OBS websocket never answered GetVersion ({last!r})\n--- obs log ---\n{_tail(self.obs_log)}"
        )

    def _disconnect_clients(self) -> None:
        for c in [*self._clients, self._probe]:
            if c is not None:
                with contextlib.suppress(Exception):
                    c.disconnect()
        self._clients.clear()
        self._probe = None

    def close_main_window(self) -> bool:
        """Send WM_DELETE_WINDOW to OBS's main window (a click on its close button); False if not possible."""
        if self.display is None:
            return False
        try:
            r = subprocess.run(
                [sys.executable, "-c", _X11_CLOSE_SCRIPT, f":{self.display}", "OBS "],
                capture_output=True,
                timeout=10,
            )
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0

    def stop_obs(self, grace: float = 8.0, method: str = "close") -> None:
        """Clean stop: disconnect our clients, ask OBS to quit, wait grace s, then SIGKILL.

        method="close" (default) closes the main window over X11 and falls back to SIGINT; method="sigint" sends
        SIGINT. OBS 29.0.2 runs its shutdown *inside* the SIGINT handler (fixed in 29.1, obs-studio PR #8506), so
        a SIGINT that lands while the UI thread is in malloc deadlocks OBS for good (seen 1 in ~10-30 stops
        shortly after start). The window close goes through the Qt event loop: same clean exit (ExitStarted,
        close code 1001, scene collection saved), no deadlock. last_stop_method tells what actually happened.
        """
        self._disconnect_clients()
        p = self.obs
        if p is None:
            return
        t0 = time.monotonic()
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGCONT)
            sent = method == "close" and self.close_main_window()
            self.last_stop_method = "close" if sent else "sigint"
            if not sent:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGINT)
            try:
                p.wait(timeout=grace)
                _killpg_leftovers(p.pid)
            except subprocess.TimeoutExpired:
                self.last_stop_method = "sigkill"
        _reap(p, signal.SIGKILL, grace=5.0)  # SIGKILL + leftovers if it still runs; else only unregisters
        self.last_stop_s = time.monotonic() - t0
        self.obs = None
        self.frozen = False

    def kill_obs(self) -> None:
        """Crash OBS: SIGKILL (clients see close 1006), wait for it."""
        if self.obs is not None:
            _reap(self.obs, signal.SIGKILL, grace=5.0)
            self.obs = None
        self.frozen = False
        self._disconnect_clients()

    def freeze_obs(self) -> None:
        """SIGSTOP OBS: requests time out (discard clients that timed out)."""
        if self.obs_running and self.obs is not None:
            os.kill(self.obs.pid, signal.SIGSTOP)
            self.frozen = True

    def thaw_obs(self) -> None:
        """SIGCONT a frozen OBS."""
        if self.obs_running and self.obs is not None:
            os.kill(self.obs.pid, signal.SIGCONT)
        self.frozen = False

    def ensure_running(self) -> None:
        """Thaw / restart OBS if a test left it frozen or dead."""
        if self.frozen:
            self.thaw_obs()
        if not self.obs_running:
            self.obs = None
            self._disconnect_clients()
            self.start_obs()

    def stop(self) -> None:
        """Stop OBS, Xvfb, nginx by PID (waited); remove the scratch dir unless CAPTIONER_E2E_KEEP=1."""
        try:
            self.stop_obs()
        finally:
            _reap(self.xvfb, signal.SIGTERM, grace=5.0)
            self.xvfb = None
            self.display = None
            _reap(self.nginx, signal.SIGTERM, grace=5.0)
            self.nginx = None
            if self._own_base and not os.environ.get(KEEP_ENV_VAR):
                shutil.rmtree(self.base, ignore_errors=True)

    # -- websocket
    def _new_client(self, timeout: float) -> Any:
        import obsws_python

        logging.getLogger("obsws_python").setLevel(logging.CRITICAL)
        return obsws_python.ReqClient(host=self.host, port=self.ws_port, password=self.password, timeout=timeout)

    def client(self, timeout: float = 5) -> Any:
        """A new obsws_python.ReqClient (tracked: stop_obs()/kill_obs()/stop() disconnect it)."""
        c = self._new_client(timeout)
        self._clients = [*self._clients, c]
        return c

    def _call(self, fn: Any) -> Any:
        """Run fn(client) on a cached probe client; on a transport error reconnect once."""
        import websocket

        for attempt in (0, 1):
            if self._probe is None:
                self._probe = self._new_client(timeout=5)
            try:
                return fn(self._probe)
            except (websocket.WebSocketException, json.JSONDecodeError, OSError):
                with contextlib.suppress(Exception):
                    self._probe.disconnect()
                self._probe = None
                if attempt:
                    raise
            except Exception as e:
                if type(e).__name__ == "OBSSDKTimeoutError":  # stale response would follow: discard
                    with contextlib.suppress(Exception):
                        self._probe.disconnect()
                    self._probe = None
                raise
        raise AssertionError("unreachable")

    def text_of(self, input_name: str) -> str | None:
        """Current `text` setting of an input, "" if unset, None if the input does not exist."""
        from obsws_python.error import OBSSDKRequestError

        try:
            resp = self._call(lambda c: c.get_input_settings(input_name))
        except OBSSDKRequestError as e:
            if e.code == 600:  # ResourceNotFound
                return None
            raise
        return str(resp.input_settings.get("text", ""))

    def wait_stream(self, active: bool = True, timeout: float = 10.0) -> None:
        """Poll GetStreamStatus until outputActive == active."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if bool(self._call(lambda c: c.get_stream_status()).output_active) == active:
                return
            time.sleep(0.05)
        raise TimeoutError(f"stream never became {'active' if active else 'inactive'}")

    # -- recordings and captions
    def recordings(self) -> list[Path]:
        """FLV files nginx recorded (one per StartStream), oldest first."""
        return sorted(self.rec_dir.glob("*.flv"), key=lambda p: (p.stat().st_mtime, p.name))

    def recording_open(self, flv: Path) -> bool:
        """True while nginx still holds the recording open (i.e. it is still being written)."""
        if self.nginx is None or self.nginx.poll() is not None:
            return False
        target = str(Path(flv).resolve())
        fd_dir = Path(f"/proc/{self.nginx.pid}/fd")
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return True
        return False

    def wait_recordings_closed(self, timeout: float = 10.0) -> list[Path]:
        """Wait until nginx has closed every recording; return recordings()."""
        _wait_for(lambda: not any(self.recording_open(p) for p in self.recordings()), timeout, "nginx recording close")
        return self.recordings()

    def extract_captions(self, flv: str | os.PathLike[str], row_sep: str = " ") -> list[str]:
        """CEA-608 captions of an OBS recording (real-obs.md §4 ffmpeg recipe) as cue texts, rows joined by row_sep."""
        with tempfile.TemporaryDirectory(prefix="cc-") as td:
            h264, mkv, srt = Path(td) / "v.h264", Path(td) / "v.mkv", Path(td) / "out.srt"
            base = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
            steps = [
                [
                    *base,
                    "-i",
                    str(flv),
                    "-map",
                    "0:v:0",
                    "-c",
                    "copy",
                    "-bsf:v",
                    "h264_mp4toannexb",
                    "-f",
                    "h264",
                    str(h264),
                ],
                [*base, "-framerate", str(self.fps), "-i", str(h264), "-c", "copy", str(mkv)],
                [*base, "-f", "lavfi", "-i", f"movie={mkv}[out0+subcc]", "-map", "0:s", str(srt)],
            ]
            for i, cmd in enumerate(steps):
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
                if r.returncode != 0:
                    if i == 2 and "matches no streams" in r.stderr:
                        return []
                    raise RuntimeError(f"ffmpeg step {i + 1} failed ({r.returncode}): {r.stderr.strip()}")
            return parse_srt(srt.read_text(errors="replace"), row_sep) if srt.exists() else []


@contextlib.contextmanager
def obs_and_pulse(**obs_kwargs: Any) -> Iterator[tuple[PulseEnv, ObsEnv]]:
    """Convenience: a PulseEnv plus an ObsEnv using it, both stopped on exit."""
    with PulseEnv() as pulse, ObsEnv(pulse, **obs_kwargs) as obs:
        yield pulse, obs
