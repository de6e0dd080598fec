"""Lifecycle as systemd sees it: sd_notify READY/WATCHDOG/STATUS/STOPPING, and a second signal forcing the exit."""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.daemonproc import DaemonProc
from tests.support.fake_translator import FakeTranslator
from tests.support.pulse_env import PulseEnv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
KEY = "sk-lifecycle"


@pytest.fixture
def fake(threaded_fake: Callable[..., FakeTranslator]) -> FakeTranslator:
    return threaded_fake(api_key=KEY)


def config(fake: FakeTranslator) -> dict[str, object]:
    return {
        "audio": {"device": "loopback"},
        "translator": {"url": fake.url, "api_key": "${DASHSCOPE_API_KEY}", "targets": ["ja"]},
        "obs": {"enabled": False},
    }


def test_sd_notify_ready_watchdog_status_and_stopping(
    pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    env = pulse_env.child_env(DASHSCOPE_API_KEY=KEY, NOTIFY_SOCKET=str(path), WATCHDOG_USEC="1000000")
    daemon = DaemonProc(tmp_path, config(fake), env).start()
    messages: list[str] = []

    def read_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            with contextlib.suppress(TimeoutError):
                messages.append(sock.recv(4096).decode())

    try:
        daemon.wait(lambda: daemon.link_state("translator:ja") == "connected", 20, "connected")
        read_for(2.5)
        assert messages[0].startswith("READY=1")
        pings = [m for m in messages if m.startswith("WATCHDOG=1")]
        assert len(pings) >= 3, messages  # every WatchdogSec/2 = 0.5 s
        assert any("STATUS=" in m and "translator:ja connected" in m for m in messages), messages
        assert daemon.stop(signal.SIGTERM) == 0
        read_for(0.3)
        assert any(m.startswith("STOPPING=1") for m in messages)
    finally:
        daemon.kill()
        sock.close()


def test_second_signal_forces_exit_during_a_slow_stop(
    pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    env = pulse_env.child_env(DASHSCOPE_API_KEY=KEY)
    cfg = config(fake)
    cfg["translator"] = {**cfg["translator"], "finish_timeout_s": 30}  # type: ignore[dict-item]
    daemon = DaemonProc(tmp_path, cfg, env).start()
    try:
        daemon.wait(lambda: daemon.link_state("translator:ja") == "connected", 20, "connected")
        fake.stall = True  # session.finished never comes: the graceful stop would wait
        assert daemon.proc is not None
        daemon.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert daemon.proc.poll() is None, "still finishing gracefully"
        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(10) == 1
        assert time.monotonic() - started < 5
        assert "forcing exit" in daemon.log()
    finally:
        daemon.kill()
