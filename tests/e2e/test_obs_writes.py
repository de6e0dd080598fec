"""Writing several text sources at once to real OBS: one trip to the OBS thread, each source confirmed and timed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest
from pydantic import SecretStr

from captioner.config import ObsConfig
from captioner.obs import ObsSink
from captioner.status import LinkState, Status
from tests.support.obs_env import ObsEnv
from tests.support.obs_events import until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]
SOURCES = ["E2E Batch JA", "E2E Batch ZH", "E2E Batch KO"]


def text_of(c: Any, source: str) -> str | None:
    try:
        return c.send("GetInputSettings", {"inputName": source}, raw=True)["inputSettings"].get("text")
    except Exception:  # noqa: BLE001 - a source that is not there (yet) shows nothing
        return None


def sample(status: Status, name: str, **labels: str) -> float:
    return status.metrics.registry.get_sample_value(name, labels) or 0.0


async def shown(c: Any, wanted: dict[str, str]) -> bool:
    return all([await asyncio.to_thread(text_of, c, s) == t for s, t in wanted.items()])


async def test_finals_for_several_sources_reach_obs_together(obs: ObsEnv) -> None:
    c = obs.client()
    status = Status("test")
    cfg = ObsConfig(port=obs.ws_port, password=SecretStr(obs.password), timeout_s=2)
    sink = ObsSink(cfg, SOURCES, status)
    task = asyncio.create_task(sink.run())
    try:
        await until(lambda: status.link("obs").state == LinkState.CONNECTED, "connected")
        first = {s: f"first {s[-2:]}" for s in SOURCES}
        for source, text in first.items():
            sink.set_text(source, text, received_at=time.perf_counter())
        deadline = time.monotonic() + 10
        while not await shown(c, first):
            assert time.monotonic() < deadline, "the three texts never all showed in OBS"
            await asyncio.sleep(0.05)
        assert sample(status, "captioner_obs_writes_total", result="ok") == 3
        assert sample(status, "captioner_final_to_screen_seconds_count") == 3

    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sink.close()
