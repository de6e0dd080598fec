"""Writing several text sources at once to real OBS: one request batch, each confirmed; a refusal is per source."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest
from obsws_python.error import OBSSDKRequestError
from pydantic import SecretStr

from captioner.config import ObsConfig
from captioner.obs import ObsSink, _write_texts
from captioner.status import LinkState, Status
from tests.realenv import ObsEnv
from tests.test_obs_watch import until

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


def test_a_batch_refused_for_one_source_still_writes_the_others(obs: ObsEnv) -> None:
    c = obs.client()
    scene = c.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"]
    existing = {i["inputName"] for i in c.send("GetInputList", {}, raw=True)["inputs"]}
    for source in ("E2E Refusal A", "E2E Refusal B"):
        if source not in existing:
            c.send("CreateInput", {"sceneName": scene, "inputName": source, "inputKind": "text_ft2_source_v2"})
    written: dict[str, float] = {}
    texts = {"E2E Refusal A": "a text", "E2E No Such Source": "lost", "E2E Refusal B": "b text"}
    with pytest.raises(OBSSDKRequestError) as refused:
        _write_texts(c, texts, written)
    assert refused.value.code == 600  # ResourceNotFound
    assert set(written) == {"E2E Refusal A", "E2E Refusal B"}  # the rest of the batch went through
    assert text_of(c, "E2E Refusal A") == "a text"
    assert text_of(c, "E2E Refusal B") == "b text"
    # The client is still in step: the next request gets its own reply.
    _write_texts(c, {"E2E Refusal A": "again"}, written)
    assert text_of(c, "E2E Refusal A") == "again"
