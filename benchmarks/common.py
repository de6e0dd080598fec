"""What benchmarks/run.py and benchmarks/soak.py share: the speech, the machine, the rig (OBS's own capture
silenced, the daemon spawned at the production log level, a NOTIFY_SOCKET stand-in), /proc readings of a
process and its threads, and /metrics parsing.
"""

from __future__ import annotations

import compileall
import contextlib
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.daemonproc import DaemonProc
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv

ROOT = Path(__file__).resolve().parent.parent
PHRASES = [
    "Hello everyone and welcome back to the stream",
    "Today we are going to build a castle on the hill",
    "First we need a lot of stone and some wood",
    "The walls should be thick enough to stop an army",
    "Let me know in the chat what colour the towers should be",
    "We will add a drawbridge over the moat later",
    "This part always takes longer than I expect",
    "Thank you all for watching and see you next time",
]
GAP_S = 1.5  # pause between sentences: longer than the fake's 600 ms end-of-speech silence


# ---- tools and the machine --------------------------------------------------------------------------------


def missing_tools(tools: tuple[str, ...]) -> list[str]:
    """The command-line tools of `tools` not on PATH."""
    return [t for t in tools if shutil.which(t) is None]


def compile_daemon() -> Path:
    """Byte-compile the captioner package the daemon will import, as `pip install` does; returns its folder.

    Without it, a checkout run with PYTHONDONTWRITEBYTECODE set (or a fresh git worktree) compiles every module
    from source at every start: measured here, ~170 ms more to /healthz and ~1.2 MB more peak RSS than the same
    code installed. The benchmark is about the installed daemon. The package is the one a child with this
    environment imports (PYTHONPATH may name another checkout than this script's); the files are written whatever
    PYTHONDONTWRITEBYTECODE says, and a stale one is rewritten, so edits are measured as they are.
    """
    where = subprocess.run(
        [sys.executable, "-c", "import captioner; print(captioner.__file__)"],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),  # as the daemon runs: not from this checkout's folder
        check=True,
    )
    package = Path(where.stdout.strip()).parent
    if not compileall.compile_dir(package, quiet=1):
        raise RuntimeError(f"byte-compiling {package} failed")
    return package


def machine() -> str:
    def first(path: str, prefix: str, sep: str) -> str:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                if line.startswith(prefix):
                    return line.split(sep, 1)[1].strip().strip('"')
        return "?"

    cpu = first("/proc/cpuinfo", "model name", ":")
    distro = first("/etc/os-release", "PRETTY_NAME=", "=")
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} × {cpu}, {mem_gb:.0f} GB RAM, {distro}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def silence_obs_capture(obs: ObsEnv, pulse: PulseEnv) -> None:
    """Point OBS's PulseAudio inputs (its Desktop Audio records the sink's monitor) at a non-existent device.

    OBS records with ~5 ms buffers, which clocks the null sink at ~25 ms whatever the keepalive asks, and its
    stream costs the sound server CPU: the benchmark wants the sink latency alone to set the cadence.
    """
    client = obs.client()
    for item in client.get_input_list().inputs:
        if str(item["inputKind"]).startswith("pulse_"):
            client.set_input_settings(item["inputName"], {"device_id": "captioner-bench-none"}, True)
    deadline = time.monotonic() + 5
    while pulse.pactl("list", "short", "source-outputs").strip():
        if time.monotonic() > deadline:
            print("  ! OBS still records from the sound server: the sink latency is not what is asked", file=sys.stderr)
            return
        time.sleep(0.05)


# ---- the daemon process: start-up and /proc ----------------------------------------------------------------


class InfoDaemon(DaemonProc):
    """DaemonProc (config, HTTP helpers) spawned as systemd would, at the production log level: hours of debug
    logging would measure the log, not the daemon."""

    def spawn(self) -> float:
        """Start `python -m captioner run`; return time.monotonic() just before the spawn."""
        cmd = [sys.executable, "-m", "captioner", "run", "--config", str(self.config_path), "--log-level", "info"]
        with self.log_path.open("wb") as log:
            t0 = time.monotonic()
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=str(self.tmp)
            )
        return t0


class NotifyListener:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET; remembers when READY=1 arrived."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.ready_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if self.ready_at is None and b"READY=1" in msg.split(b"\n"):
                self.ready_at = time.monotonic()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def proc_cpu_s(pid: int) -> float:
    """utime + stime of every thread of `pid`, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_runtime_s(pid: int) -> float:
    """CPU seconds of the live threads of `pid` to the nanosecond (/proc/.../schedstat), for small figures: stat
    counts in 10 ms clock ticks, too coarse for a recorder that needs a few ms a second."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def proc_threads_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds by thread group: "event loop" (the main thread), "libpulse" (threaded-ml), "other"."""
    out = {"event loop": 0.0, "libpulse": 0.0, "other": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            stat = (task / "stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat.rsplit(")", 1)[1].split()
            group = "event loop" if int(task.name) == pid else "libpulse" if name == "threaded-ml" else "other"
            out[group] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def thread_wakeups(pid: int, name: str) -> int:
    """Voluntary context switches of the threads of `pid` called `name`: how often they slept and woke."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            if (task / "comm").read_text().strip() == name:
                total += proc_status_kb(int(task.name), "voluntary_ctxt_switches")
    return total


class ServerMeter:
    """The PulseAudio server's CPU and its null sink's render cadence between start() and stop()."""

    def __init__(self, pulse: PulseEnv) -> None:
        assert pulse.proc is not None
        self.pid = pulse.proc.pid
        self.cpu_s, self.render_ms, self.seconds = 0.0, float("nan"), 0.0

    def _sample(self) -> tuple[float, int, float]:
        return proc_runtime_s(self.pid), thread_wakeups(self.pid, "null-sink"), time.monotonic()

    def start(self) -> ServerMeter:
        self._t0 = self._sample()
        return self

    def stop(self) -> ServerMeter:
        (c0, w0, t0), (c1, w1, t1) = self._t0, self._sample()
        self.cpu_s, self.seconds = c1 - c0, t1 - t0
        self.render_ms = 1000 * self.seconds / (w1 - w0) if w1 > w0 else float("nan")
        return self

    @property
    def per_min(self) -> float:
        return self.cpu_s / (self.seconds / 60) if self.seconds else float("nan")


def proc_status_kb(pid: int, key: str, name: str = "status") -> int:
    for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


# ---- /metrics ----------------------------------------------------------------------------------------------


def metric_text_sum(text: str, name: str) -> float:
    """Sum of every sample of one metric (all label sets) in Prometheus text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def metric_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def metric_sum(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items()))
