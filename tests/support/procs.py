"""Processes the real-part harnesses start: own sessions, death with the test process, reaping with leftovers.

Also what a real-part run needs (tools, files, a private home) and free TCP ports.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 40) -> str:
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


def spawn(
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


def killpg_leftovers(pid: int) -> None:
    """SIGKILL what is left of the process group led by our just-reaped child pid (it ran in its own session).

    Call this only right after reaping: while group members live, the kernel does not reuse the PID.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def reap(p: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, grace: float = 5.0) -> None:
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
        killpg_leftovers(p.pid)
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(p)


@atexit.register
def _kill_leftovers() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for p in procs:
        reap(p, signal.SIGKILL, grace=2.0)


def wait_for(
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
            tail = log_tail(log) if log else ""
            raise RuntimeError(f"{what}: {proc.args!r} exited {proc.returncode}\n--- log tail ---\n{tail}")
        if time.monotonic() > deadline:
            tail = log_tail(log) if log else ""
            raise TimeoutError(f"{what}: not ready after {timeout:.0f} s\n--- log tail ---\n{tail}")
        time.sleep(interval)
