"""Runs the real `captioner run` as a subprocess with a generated config, and reads its HTTP endpoints."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.support.obs_env import ObsEnv
from tests.support.procs import free_port


class DaemonProc:
    """One `python -m captioner run` child; config written to `tmp/config.yaml`, stderr to `tmp/daemon.log`."""

    def __init__(self, tmp: Path, config: dict[str, Any], env: dict[str, str], command: str = "run") -> None:
        self.tmp = tmp
        self.command = command  # "run", or "demo" (the stand-in translator)
        self.http_port = free_port()
        config = {**config, "http": {**config.get("http", {}), "host": "127.0.0.1", "port": self.http_port}}
        self.config_path = tmp / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = tmp / "daemon.log"
        self.env = env
        self.nofile: int | None = None  # an open-file limit (RLIMIT_NOFILE) for the child, e.g. to run it out of them
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProc:
        config = str(self.config_path)
        args = [sys.executable, "-m", "captioner", self.command, "--config", config, "--log-level", "debug"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=str(self.tmp),
                preexec_fn=self._limits if self.nofile else None,
            )
        self.wait(lambda: self.get("/healthz")[0] == 200, 20, "/healthz")
        return self

    def _limits(self) -> None:
        assert self.nofile is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def status(self) -> dict[str, Any]:
        code, body = self.get("/status")
        assert code == 200, (code, body)
        result: dict[str, Any] = json.loads(body)
        return result

    def link_state(self, name: str) -> str | None:
        link = self.status()["links"].get(name)
        return None if link is None else str(link["state"])

    def wait(self, pred: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode} waiting for {what}:\n{self.log()}")
            if pred():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()[-4000:]}")

    def wait_connected(self, *links: str, timeout: float = 30) -> None:
        """Wait for each link in turn to be connected (up to timeout s each): the e2e tests' start-up preamble."""
        for link in links:
            self.wait(lambda link=link: self.link_state(link) == "connected", timeout, f"{link} connected")

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `sig`, wait for the exit code (kill after `timeout`)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"daemon did not stop within {timeout} s:\n{self.log()[-4000:]}") from None
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class TextRecorder:
    """Polls OBS text sources the way a viewer would see them: every distinct value, in order."""

    def __init__(self, obs: ObsEnv, sources: list[str]) -> None:
        self.obs = obs
        self.seen: dict[str, list[str]] = {s: [] for s in sources}
        self.seen_at: dict[str, list[float]] = {s: [] for s in sources}  # time.time() each value was first seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TextRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        client = self.obs.client(timeout=3)
        while not self._stop.is_set():
            for source, values in self.seen.items():
                try:
                    text = client.send("GetInputSettings", {"inputName": source}, raw=True)["inputSettings"].get("text")
                except Exception:  # noqa: BLE001 - not created yet
                    continue
                if text and (not values or values[-1] != text):
                    values.append(text)
                    self.seen_at[source].append(time.time())
            time.sleep(0.05)

    def first_seen(self, source: str, text: str) -> float | None:
        """When `source` first showed `text` (time.time()), or None if it never did."""
        for value, at in zip(self.seen[source], self.seen_at[source], strict=True):
            if value == text:
                return at
        return None

    def wait_for(self, source: str, n: int, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.seen[source]) < n:
            time.sleep(0.1)
        return list(self.seen[source])
