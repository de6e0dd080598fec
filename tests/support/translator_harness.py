"""One TranslatorSession against the fake translator over real loopback WebSockets, and the audio to feed it."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from captioner.config import TranslatorConfig
from captioner.reconnect import Backoff, ConnectBudget
from captioner.status import LinkState, Status
from captioner.translation.interpreter import Caption
from captioner.translation.session import TranslatorSession
from tests.support.fake_translator import FakeTranslator
from tests.support.metric_sum import metric_sum

KEY = "sk-unit-secret"


def chunks(pattern: list[tuple[str, float]]) -> list[bytes]:
    """('tone'|'silence', seconds) -> 100 ms chunks of 16 kHz PCM16."""
    out: list[bytes] = []
    for kind, seconds in pattern:
        n = int(seconds * 16000)
        t = np.arange(n) / 16000
        x = 0.3 * np.sin(2 * np.pi * 440 * t) if kind == "tone" else np.zeros(n)
        pcm = (x * 32767).astype("<i2").tobytes()
        out += [pcm[i : i + 3200] for i in range(0, len(pcm), 3200)]
    return out


TWO_UTTERANCES = [("silence", 0.3), ("tone", 1.0), ("silence", 1.0), ("tone", 0.8), ("silence", 1.0)]


class Harness:
    def __init__(
        self,
        fake: FakeTranslator,
        *,
        target: str | None = None,
        status: Status | None = None,
        captions: list[Caption] | None = None,
        session_kw: dict[str, Any] | None = None,
        **cfg: Any,
    ) -> None:
        self.status = status or Status("test")
        self.captions = [] if captions is None else captions
        self.cfg = TranslatorConfig(url=fake.url, api_key=KEY, **{"targets": ("ja",), **cfg})
        target = target or self.cfg.targets[0]
        self.session = TranslatorSession(
            self.cfg,
            target,
            **{"transcribe_source": self.cfg.transcribe_source and target == self.cfg.targets[0], **(session_kw or {})},
            status=self.status,
            on_caption=self.captions.append,
            budget=ConnectBudget(limit=100),
            backoff=Backoff(initial_s=0.2, cap_s=0.5),
        )
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Harness:
        self.task = asyncio.create_task(self.session.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        await self.session.finish()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def connected(self, within: float = 5) -> None:
        for _ in range(int(within / 0.01)):
            if self.session.link.state == LinkState.CONNECTED:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"not connected: {self.session.link.as_dict()}")

    async def stream(self, pattern: list[tuple[str, float]], pace_s: float = 0.004) -> None:
        # Faster than real time works with the service (§6); tests that need wall time pace it.
        for chunk in chunks(pattern):
            self.session.feed(chunk, asyncio.get_running_loop().time())
            await asyncio.sleep(pace_s)

    def feed_only(self, pattern: list[tuple[str, float]]) -> None:
        """Hand the chunks over at once (several sessions fed from one capture)."""
        for chunk in chunks(pattern):
            self.session.feed(chunk, asyncio.get_running_loop().time())

    def finals(self, language: str = "ja") -> list[str]:
        return [c.text for c in self.captions if c.final and c.language == language]

    async def wait_finals(self, n: int, language: str = "ja", within: float = 10) -> list[str]:
        for _ in range(int(within / 0.02)):
            if len(self.finals(language)) >= n:
                break
            await asyncio.sleep(0.02)
        return self.finals(language)

    def metric(self, name: str, **labels: str) -> float:
        return metric_sum(self.status.metrics.registry, name, labels)
