"""Headless OBS 29 for the real-part tests: Xvfb, software GL, obs-websocket on a free port, nginx-rtmp recording."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support import rtmp
from tests.support.obs_config import write_configs
from tests.support.procs import (
    KEEP_ENV_VAR,
    free_port,
    home_env,
    killpg_leftovers,
    log_tail,
    port_open,
    reap,
    spawn,
    wait_for,
)
from tests.support.pulse_env import PulseEnv
from tests.support.xvfb import close_window, start_xvfb

logging.getLogger("obsws_python").setLevel(logging.CRITICAL)


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
        self.nginx = rtmp.start_nginx(self.base, self.logs, self.rtmp_port)

    def _start_xvfb(self) -> None:
        self.xvfb, self.display = start_xvfb(self.logs)

    def _write_configs(self) -> None:
        write_configs(
            self.home,
            ws_port=self.ws_port,
            password=self.password,
            width=self.width,
            height=self.height,
            fps=self.fps,
            rtmp_url=self.rtmp_url,
            stream_key=self.stream_key,
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
        self.obs = spawn(
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
        wait_for(
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
            f"OBS websocket never answered GetVersion ({last!r})\n--- obs log ---\n{log_tail(self.obs_log)}"
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
        return close_window(self.display, "OBS ")

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
                killpg_leftovers(p.pid)
            except subprocess.TimeoutExpired:
                self.last_stop_method = "sigkill"
        reap(p, signal.SIGKILL, grace=5.0)  # SIGKILL + leftovers if it still runs; else only unregisters
        self.last_stop_s = time.monotonic() - t0
        self.obs = None
        self.frozen = False

    def kill_obs(self) -> None:
        """Crash OBS: SIGKILL (clients see close 1006), wait for it."""
        if self.obs is not None:
            reap(self.obs, signal.SIGKILL, grace=5.0)
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
            reap(self.xvfb, signal.SIGTERM, grace=5.0)
            self.xvfb = None
            self.display = None
            reap(self.nginx, signal.SIGTERM, grace=5.0)
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
        return rtmp.recording_open(self.nginx, flv)

    def wait_recordings_closed(self, timeout: float = 10.0) -> list[Path]:
        """Wait until nginx has closed every recording; return recordings()."""
        wait_for(lambda: not any(self.recording_open(p) for p in self.recordings()), timeout, "nginx recording close")
        return self.recordings()

    def extract_captions(self, flv: str | os.PathLike[str], row_sep: str = " ") -> list[str]:
        """CEA-608 captions of an OBS recording (real-obs.md §4 ffmpeg recipe) as cue texts, rows joined by row_sep."""
        return rtmp.extract_captions(flv, self.fps, row_sep)


@contextlib.contextmanager
def obs_and_pulse(**obs_kwargs: Any) -> Iterator[tuple[PulseEnv, ObsEnv]]:
    """Convenience: a PulseEnv plus an ObsEnv using it, both stopped on exit."""
    with PulseEnv() as pulse, ObsEnv(pulse, **obs_kwargs) as obs:
        yield pulse, obs
