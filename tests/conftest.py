"""Pytest setup: `e2e` marker that fails (never skips) without real parts; session PulseAudio and OBS fixtures."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from captioner import redaction
from tests.support.browser import Browser
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.procs import free_port, missing_requirements
from tests.support.pulse_env import PulseEnv

E2E_PASSWORD = "e2e-pass"

# Tests never touch the user's home: every test, and every daemon a test starts, gets a throwaway home with its
# own state, config and cache folders (the spend ledger, a default config file, Chromium's crash reports).
USER_HOME = Path(os.environ.get("HOME") or "~").expanduser()
TEST_HOME = Path(tempfile.mkdtemp(prefix="captioner-tests-home-"))
_HOME_VARS = {
    "HOME": "",
    "XDG_CONFIG_HOME": ".config",
    "XDG_STATE_HOME": ".local/state",
    "XDG_DATA_HOME": ".local/share",
    "XDG_CACHE_HOME": ".cache",
}


def _private_home() -> None:
    for var, sub in _HOME_VARS.items():
        os.environ[var] = str(TEST_HOME / sub)
    for var in ("CAPTIONER_CONFIG", "STATE_DIRECTORY"):  # set by a user's shell or unit, they point at real files
        os.environ.pop(var, None)
    atexit.register(shutil.rmtree, TEST_HOME, ignore_errors=True)


# CI replays the same property examples every run (a run that lands must not hinge on a random draw); a developer's
# run keeps exploring new ones, and prints the blob of any failure so it can be replayed.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _secrets_of_this_test_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The secrets a test's configs taught the redaction module are forgotten after it.

    The daemon keeps them for the life of its process, as it should; a test worker is one process for hundreds of
    tests, and the property tests load configs whose keys and passwords are random words ("null", "True"), which
    then masked ordinary text in a later test's error message ("must be ***").
    """
    monkeypatch.setattr(redaction, "_secrets", set(redaction._secrets))


def pytest_configure(config: pytest.Config) -> None:
    _private_home()
    config.addinivalue_line("markers", "e2e: end-to-end test with real OBS, PulseAudio and audio")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With xdist (tests/run.sh runs two workers, --dist loadgroup): the unit tests on one worker, the end-to-end
    tests on the other, side by side. The e2e tests share one OBS and PulseAudio per worker, and mostly wait on
    real time (speech, streams), so they overlap well with the CPU-bound unit tests and never with each other."""
    for item in items:
        group = "e2e" if "e2e" in item.path.parts else "unit"
        item.add_marker(pytest.mark.xdist_group(group))


def _missing_message(missing: list[str]) -> str:
    return (
        "e2e tests need real OBS/PulseAudio/espeak-ng and must never be skipped; missing: "
        + ", ".join(missing)
        + " (apt-get install obs-studio xvfb pulseaudio pulseaudio-utils libasound2-plugins nginx "
        "libnginx-mod-rtmp ffmpeg fonts-dejavu-core sox espeak-ng libportaudio2 chromium)"
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    missing = missing_requirements()
    return f"e2e: MISSING {', '.join(missing)}" if missing else None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("e2e") is not None:
        missing = missing_requirements()
        if missing:
            pytest.fail(_missing_message(missing), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    """Turn any skip of an e2e test (importorskip, skipif, pytest.skip ...) into a failure."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("e2e") is not None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"e2e test was skipped, which is not allowed: {reason}"


@pytest.fixture(scope="session")
def pulse_env() -> Iterator[PulseEnv]:
    """Private PulseAudio with null sink e2e_sink (default sink) and e2e_sink.monitor (default source)."""
    missing = missing_requirements()
    if missing:
        pytest.fail(_missing_message(missing), pytrace=False)
    with PulseEnv() as env:
        yield env


@pytest.fixture(scope="session")
def obs_env(pulse_env: PulseEnv) -> Iterator[ObsEnv]:
    """One headless OBS per session (free port, password e2e-pass, nginx-rtmp recording); restart it if you kill it."""
    with ObsEnv(pulse_env, ws_port=free_port(), password=E2E_PASSWORD, rtmp=True) as env:
        yield env


@pytest.fixture
def obs(obs_env: ObsEnv) -> Iterator[ObsEnv]:
    """obs_env, guaranteed running (thawed/restarted) before and after the test."""
    obs_env.ensure_running()
    yield obs_env
    obs_env.ensure_running()


@pytest.fixture
def threaded_fake() -> Iterator[Callable[..., FakeTranslator]]:
    """Factory: a fake translator on its own thread (the daemon under test is another process); stopped after."""
    started: list[FakeTranslator] = []

    def make(**kwargs: Any) -> FakeTranslator:
        server = FakeTranslator(**kwargs)
        server.start_in_thread()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop_thread()


@pytest.fixture
async def inloop_fake() -> AsyncIterator[Callable[..., Awaitable[FakeTranslator]]]:
    """Factory: a fake translator on the test's own event loop (for in-process sessions); stopped after."""
    started: list[FakeTranslator] = []

    async def make(**kwargs: Any) -> FakeTranslator:
        server = FakeTranslator(**kwargs)
        await server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One real headless Chromium per test module; no process may outlive it."""
    b = Browser()
    try:
        yield b
    finally:
        b.close()
    assert b.leftover_pids() == []


class TinyDisk:
    """A 64 KiB tmpfs: a real file system that really runs full (ENOSPC), no root tricks beyond mounting it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / "filler"

    def fill(self) -> None:
        """Take every free block; files already open keep the blocks they have."""
        with self._filler.open("ab", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[TinyDisk]:
    """A tmpfs of 64 KiB mounted under tmp_path (the tests run as root), unmounted after."""
    path = tmp_path / "tiny-disk"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)], check=True)
    try:
        yield TinyDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
