"""Wires capture, translator sessions, OBS and HTTP; supervises them; ordered shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable

from aiohttp import web

from . import __version__
from . import http as http_api
from .audio import AudioCapture
from .captions import Caption
from .config import Config
from .obs import ObsSink
from .reconnect import ConnectBudget
from .status import LinkState, Status
from .translator import TranslatorSession

log = logging.getLogger(__name__)
_SHUTDOWN_LIMIT_S = 15.0


class Daemon:
    """One running captioner: a capture feeding N translator sessions feeding OBS text sources."""

    def __init__(self, cfg: Config, capture_factory: Callable[..., AudioCapture] = AudioCapture) -> None:
        self.cfg = cfg
        self.status = Status(__version__)
        self.budget = ConnectBudget()
        tr = cfg.translator
        self.sessions = [
            TranslatorSession(
                tr,
                target,
                # One session is enough to transcribe the source; more would bill it twice.
                transcribe_source=tr.transcribe_source and i == 0,
                status=self.status,
                on_caption=self.on_caption,
                budget=self.budget,
                chunk_ms=cfg.audio.chunk_ms,
            )
            for i, target in enumerate(tr.targets)
        ]
        for lang in cfg.languages():
            self.status.language(lang)
        self.obs: ObsSink | None = None
        if cfg.obs.enabled and cfg.outputs:
            self.obs = ObsSink(cfg.obs, [o.obs_source for o in cfg.outputs], self.status)
        else:
            self.status.link("obs").set(LinkState.DISABLED)
        self.capture = capture_factory(
            cfg.audio.device, cfg.audio.chunk_ms, cfg.audio.queue_chunks, self.on_chunk, self.status
        )
        self.http_port: int | None = None

    def on_chunk(self, chunk: bytes, captured_at: float) -> None:
        level = self.capture.level
        for session in self.sessions:
            session.feed(chunk, captured_at, level)
        self.status.metrics.audio_level.set(level)

    def on_caption(self, caption: Caption) -> None:
        lang = caption.language
        if caption.final:
            self.status.record_final(lang, caption.text)
            log.info("caption [%s] %s", lang, caption.text)
        else:
            self.status.language(lang).last_partial = caption.text
            self.status.metrics.captions_partial.labels(lang).inc()
            return
        if self.obs is not None:
            for out in self.cfg.outputs:
                if out.language == lang:
                    self.obs.set_text(out.obs_source, caption.text)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then shut down in order: audio, sessions (finish), OBS, HTTP."""
        runner: web.AppRunner | None = None
        if self.cfg.http.enabled:
            runner, self.http_port = await http_api.start(self.status, self.cfg.http.host, self.cfg.http.port)
            log.info("HTTP on http://%s:%d/status", self.cfg.http.host, self.http_port)
        capture = asyncio.create_task(self.capture.run(), name="audio")
        sessions = [asyncio.create_task(s.run(), name=f"translator:{s.target}") for s in self.sessions]
        obs = asyncio.create_task(self.obs.run(), name="obs") if self.obs else None
        notify("READY=1\nSTATUS=running")
        log.info(
            "captioner %s running: %s -> %s",
            __version__,
            self.cfg.translator.source_language or "auto",
            ", ".join(self.cfg.translator.targets),
        )
        await stop.wait()
        log.info("stopping")
        notify("STOPPING=1")
        # 1. no new audio; 2. sessions send what they have and wait for their last captions;
        # 3. OBS gets those captions; 4. HTTP last, so /status answers during the stop.
        self.capture.stop()
        await _cancel(capture)
        await asyncio.gather(*(s.finish() for s in self.sessions))
        for task in sessions:
            await _cancel(task)
        if self.obs is not None and obs is not None:
            await _cancel(obs)
            await self.obs.close()
        if runner is not None:
            await runner.cleanup()
        log.info("stopped")


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("task %s failed", task.get_name())


def notify(message: str) -> None:
    """sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET, if systemd gave us one."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(message.encode())
    except OSError as e:
        log.debug("sd_notify failed: %s", e)


async def serve(cfg: Config) -> int:
    """Run the daemon with signal handling; first SIGTERM/SIGINT stops gracefully, a second forces."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: forcing exit", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s received", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    daemon = Daemon(cfg)
    run = asyncio.create_task(daemon.run(stop))
    try:
        await _until_stopped(run, stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0


async def _until_stopped(run: asyncio.Task[None], stop: asyncio.Event) -> None:
    """Wait for the daemon; once a stop begins, give the shutdown a hard time limit."""
    stop_waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({run, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
    if run in done:
        stop_waiter.cancel()
        run.result()
        return
    try:
        await asyncio.wait_for(asyncio.shield(run), _SHUTDOWN_LIMIT_S)
    except TimeoutError:
        log.error("shutdown took longer than %.0f s; exiting anyway", _SHUTDOWN_LIMIT_S)
        run.cancel()
