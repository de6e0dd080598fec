"""A private PulseAudio server for the real-part tests: null sink e2e_sink, its monitor the default source."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.support.procs import KEEP_ENV_VAR, home_env, log_tail, reap, spawn, wait_for
from tests.support.speech import wav_duration


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
        self.proc = spawn(cmd, self.log, env=env, cwd=self.base)
        try:
            wait_for(self._answers, self.start_timeout, "pulseaudio", self.proc, self.log, interval=0.05)
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
        self.keepalive_proc = spawn(
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
        wait_for(
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
                raise RuntimeError(f"null sink monitor delivers no data\n{log_tail(self.log)}")
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
            reap(p, signal.SIGTERM, grace=2.0)
        self._players.clear()
        reap(self.keepalive_proc, signal.SIGTERM, grace=2.0)
        self.keepalive_proc = None
        reap(self.proc, signal.SIGTERM, grace=5.0)
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

    def play_async(self, wav_path: str | os.PathLike[str], sink: str | None = None) -> subprocess.Popen[bytes]:
        """Start `paplay --device=e2e_sink wav` (or another sink) and return the Popen (reaped by stop())."""
        p = spawn(
            ["paplay", f"--device={sink or self.sink}", str(wav_path)],
            self.log.parent / "paplay.log",
            env=self.child_env(),
        )
        self._players = [q for q in self._players if q.poll() is None] + [p]
        return p

    def play(
        self, wav_path: str | os.PathLike[str], blocking: bool = True, sink: str | None = None
    ) -> subprocess.Popen[bytes] | None:
        """Play a wav into the null sink (or another); blocking waits for the end (raises if paplay fails)."""
        p = self.play_async(wav_path, sink)
        if not blocking:
            return p
        try:
            rc = p.wait(timeout=wav_duration(wav_path) + 30)
        finally:
            reap(p, signal.SIGTERM, grace=2.0)
            self._players.remove(p)
        if rc != 0:
            raise RuntimeError(f"paplay exited {rc}\n{log_tail(self.log.parent / 'paplay.log')}")
        return None


# --------------------------------------------------------------------------------------------- OBS
