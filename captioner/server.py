"""Runs the daemon under signals: SIGHUP reloads, the first SIGTERM/SIGINT stops in order, a second forces."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from .app import Daemon
from .config import Config, load

log = logging.getLogger(__name__)
# The stop waits translator.finish_timeout_s for the last utterance; the rest (voice drain, OBS, files, HTTP)
# needs a few seconds more. The unit files' TimeoutStopSec must exceed the sum for the default.
_SHUTDOWN_MARGIN_S = 10.0


def shutdown_limit_s(cfg: Config) -> float:
    """How long a graceful stop may take before it is cut short."""
    return cfg.translator.finish_timeout_s + _SHUTDOWN_MARGIN_S


async def serve(
    cfg: Config, config_path: Path | None = None, *, loader: Callable[[Path | None], Config] = load, demo: bool = False
) -> int:
    """Run the daemon with signal handling; first SIGTERM/SIGINT stops gracefully, a second forces."""
    loop = asyncio.get_running_loop()
    stop, reload = asyncio.Event(), asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: forcing exit", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s received", signal.Signals(signum).name)
        stop.set()

    def on_hup() -> None:
        log.info("SIGHUP received: reloading %s", config_path or "built-in defaults")
        reload.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    daemon = Daemon(cfg, loader=loader, demo=demo)
    run = asyncio.create_task(daemon.run(stop, reload, config_path))
    try:
        await _until_stopped(run, stop, shutdown_limit_s(cfg))
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    return 0


async def _until_stopped(run: asyncio.Task[None], stop: asyncio.Event, limit_s: float) -> None:
    """Wait for the daemon; once a stop begins, give the shutdown a hard time limit."""
    stop_waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({run, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
    if run in done:
        stop_waiter.cancel()
        run.result()
        return
    try:
        await asyncio.wait_for(asyncio.shield(run), limit_s)
    except TimeoutError:
        log.error("shutdown took longer than %.0f s; exiting anyway", limit_s)
        run.cancel()
