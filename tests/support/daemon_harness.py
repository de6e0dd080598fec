"""The daemon in process with scripted capture (the test pushes the chunks), keeping every final caption."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np

from captioner.app import Daemon
from captioner.config import Config
from captioner.status import Status
from captioner.translation.interpreter import Caption
from tests.support.metric_sum import metric_sum


def chunks(pattern: list[tuple[str, float]]) -> list[bytes]:
    """('tone'|'noise'|'silence', seconds) -> 100 ms chunks of 16 kHz PCM16; noise is a -36 dBFS hiss."""
    out: list[bytes] = []
    rng = np.random.default_rng(3)
    for kind, seconds in pattern:
        n = round(seconds * 16000)
        t = np.arange(n) / 16000
        x = 0.3 * np.sin(2 * np.pi * 440 * t) if kind == "tone" else np.zeros(n)
        if kind == "noise":
            x = rng.normal(0, 10 ** (-36 / 20), n)
        pcm = (x * 32767).astype("<i2").tobytes()
        out += [pcm[i : i + 3200] for i in range(0, len(pcm), 3200)]
    return out


class ScriptedCapture:
    """Stands in for AudioCapture: the test pushes the chunks."""

    def __init__(
        self, device: Any, chunk_ms: int, queue_chunks: int, on_chunk: Callable[..., None], _: Status, **__: Any
    ):
        self.on_chunk = on_chunk
        self.device = device

    async def run(self) -> None:
        await asyncio.Event().wait()

    def stop(self) -> None:
        pass

    async def play(self, pattern: list[tuple[str, float]], pace_s: float = 0.005) -> None:
        for chunk in chunks(pattern):
            self.on_chunk(chunk, time.monotonic())
            await asyncio.sleep(pace_s)


class GatedDaemon(Daemon):
    """The daemon, keeping every final caption."""

    finals: list[Caption]

    def on_caption(self, caption: Caption) -> None:
        if caption.final:
            self.finals.append(caption)
        super().on_caption(caption)

    @property
    def player(self) -> ScriptedCapture:
        assert isinstance(self.capture, ScriptedCapture)
        return self.capture

    def texts(self, language: str = "ja") -> list[str]:
        return [c.text for c in self.finals if c.language == language]

    async def wait_finals(self, n: int, language: str = "ja", within: float = 10) -> list[str]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and len(self.texts(language)) < n:
            await asyncio.sleep(0.02)
        return self.texts(language)

    def metric(self, name: str, **labels: str) -> float:
        return metric_sum(self.status.metrics.registry, name, labels)


async def until(pred: Callable[[], bool], within: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def all_connected(d: GatedDaemon) -> bool:
    """Every input's session of every target is up."""
    sessions = d.listeners.sessions()
    expected = len(d.listeners.by_name) * len(d.cfg.translator.targets)
    return len(sessions) == expected and all(s.connected for s in sessions)


@asynccontextmanager
async def running_daemon(cfg: Config) -> AsyncIterator[GatedDaemon]:
    """The daemon on scripted capture, run on this loop (budget guard 100 connections) until the block ends;
    yielded once all its sessions are connected, stopped as SIGTERM would."""
    daemon = GatedDaemon(cfg, capture_factory=ScriptedCapture)  # type: ignore[arg-type]
    daemon.finals = []
    daemon.budget.limit = 100
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await until(lambda: all_connected(daemon), what="every session connected")
        yield daemon
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
