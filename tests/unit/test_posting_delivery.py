"""YouTube and webhook posting against a real local HTTP server: retries, outages, stop, reload."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from captioner.config import Config, parse
from captioner.outputs import posting
from captioner.outputs.posting import PostingOutputs, utc_ms
from captioner.outputs.webhook import WebhookOutput
from captioner.outputs.youtube import YoutubeOutput
from captioner.status import Status
from captioner.translation.interpreter import Caption

pytestmark = pytest.mark.timeout(30)


# ---- against a real HTTP server --------------------------------------------------------------------------------


class Endpoint:
    """A local stand-in for YouTube's ingestion endpoint (or a webhook): records every request, fails on demand."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], str, str]] = []  # (query, content type, body)
        self.fail_next = 0
        self.down = False
        self.answer: Callable[[], str] = lambda: utc_ms(time.time())
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.requests.append((dict(request.query), request.content_type, body))
        if self.down or self.fail_next:
            self.fail_next = max(0, self.fail_next - 1)
            return web.Response(status=503, text="Service Unavailable")
        return web.Response(text=self.answer())


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    ep = Endpoint()
    app = web.Application()
    app.router.add_post("/closedcaption", ep.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    ep.url = f"http://127.0.0.1:{port}/closedcaption?cid=sekrit-cid-1234"
    yield ep
    await runner.cleanup()


def config(**entry: Any) -> Config:
    raw = {"translator": {"api_key": "sk-unit", "targets": ["ja"]}, "outputs": [{"language": "ja", **entry}]}
    return parse(raw, {})


async def until(pred: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not pred():
            await asyncio.sleep(0.01)


async def test_youtube_retries_in_order_with_the_same_seq_and_reads_the_clock_skew(endpoint: Endpoint) -> None:
    status = Status("test")
    outputs = PostingOutputs(status, lambda name, sink: None, (YoutubeOutput, WebhookOutput))
    outputs.configure(config(youtube_url=endpoint.url, offset_s=0.5))
    (yt,) = outputs.outputs.values()
    assert yt.name == "youtube:ja"
    endpoint.fail_next = 3
    endpoint.answer = lambda: utc_ms(time.time() + 2.5)  # YouTube's clock is 2.5 s ahead
    spoken = time.time() - 3
    yt.caption(Caption("ja", "1", "皆さん、こんにちは", False))  # a partial: never posted
    yt.caption(Caption("ja", "1", "皆さん、こんにちは", True, spoken_at=spoken))
    yt.caption(Caption("zh", "1", "大家好", True, spoken_at=spoken))  # another language
    yt.caption(Caption("ja", "2", "  ", True, spoken_at=spoken))  # nothing to show
    await until(lambda: yt.counts["posted"] == 1)
    yt.caption(Caption("ja", "3", "ご視聴\nありがとう", True))
    await until(lambda: yt.counts["posted"] == 2)
    await outputs.outputs["youtube:ja"].close()

    assert [q["seq"] for q, _, _ in endpoint.requests] == ["1", "1", "1", "1", "2"]
    assert {q["cid"] for q, _, _ in endpoint.requests} == {"sekrit-cid-1234"}
    assert {ct for _, ct, _ in endpoint.requests} == {"text/plain"}
    assert len({body for _, _, body in endpoint.requests[:4]}) == 1  # a retry is the same post
    assert endpoint.requests[0][2] == f"{utc_ms(spoken + 0.5)}\n皆さん、こんにちは\n"
    assert endpoint.requests[4][2].endswith("\nご視聴<br>ありがとう\n")
    st = status.as_dict()["post_outputs"]["youtube:ja"]
    assert st["posted"] == 2 and st["retried"] == 3 and st["failed"] == 3 and st["skipped"] == 0
    assert st["ok"] and st["last_answer"]["status"] == 200 and st["next_seq"] == 3
    assert st["clock_skew_s"] == pytest.approx(2.5, abs=0.3)
    assert "2.5 s behind YouTube's" in st["warning"] and "offset_s: 3.0" in st["warning"]
    assert "sekrit" not in json.dumps(status.as_dict())


async def test_an_outage_loses_no_final_and_stale_ones_are_skipped(
    endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(posting, "_RETRY_CAP_S", 0.2)
    status = Status("test")
    outputs = PostingOutputs(status, lambda name, sink: None, (YoutubeOutput, WebhookOutput))
    outputs.configure(config(webhook_url=endpoint.url, max_age_s=30, headers={"Authorization": "Bearer tok-123456"}))
    (hook,) = outputs.outputs.values()
    endpoint.down = True
    now = time.time()
    hook.caption(Caption("ja", "old", "too late", True, spoken_at=now - 40))
    for i in range(5):
        hook.caption(Caption("ja", f"i{i}", f"caption {i}", True, spoken_at=now + i, speaker="Bob" if i else ""))
    await until(lambda: hook.counts["failed"] >= 3)
    endpoint.down = False
    await until(lambda: hook.counts["posted"] == 5)
    await hook.close()

    delivered = [json.loads(body) for q, _, body in endpoint.requests[-5:]]
    assert [d["text"] for d in delivered] == [f"caption {i}" for i in range(5)]
    assert [d["seq"] for d in delivered] == [1, 2, 3, 4, 5]
    assert "speaker" not in delivered[0] and delivered[1]["speaker"] == "Bob"
    assert {json.loads(body)["seq"] for _, _, body in endpoint.requests[:-5]} == {1}  # the outage: retries of 1
    st = status.as_dict()["post_outputs"]["webhook:ja"]
    assert st["skipped_by_reason"] == {"too_old": 1} and st["queued"] == 0
    assert st["failed"] == st["retried"] == len(endpoint.requests) - 5
    metrics = status.metrics.post_posted.labels("webhook:ja")._value.get()
    assert metrics == 5


async def test_a_stop_drains_what_waits_and_counts_what_could_not_go(
    endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(posting, "DRAIN_S", 0.5)
    status = Status("test")
    outputs = PostingOutputs(status, lambda name, sink: None, (YoutubeOutput, WebhookOutput))
    outputs.configure(config(youtube_url=endpoint.url))
    (yt,) = outputs.outputs.values()
    endpoint.down = True
    yt.caption(Caption("ja", "1", "one", True))
    yt.caption(Caption("ja", "2", "two", True))
    started = time.monotonic()
    await yt.close()
    assert time.monotonic() - started < 2
    assert yt.skipped == {"stopped": 2}


async def test_a_reload_keeps_an_unchanged_output_and_replaces_a_changed_one(endpoint: Endpoint) -> None:
    routed: dict[str, Any] = {}
    status = Status("test")
    outputs = PostingOutputs(status, lambda name, sink: routed.__setitem__(name, sink), (YoutubeOutput, WebhookOutput))
    two = {
        "translator": {"api_key": "sk-unit", "targets": ["ja"]},
        "outputs": [
            {"youtube_url": endpoint.url, "language": "ja"},
            {"youtube_url": endpoint.url + "&second", "language": "ja"},
        ],
    }
    outputs.configure(parse(two, {}))
    first, second = routed["youtube:ja"], routed["youtube:ja:2"]
    first.caption(Caption("ja", "1", "one", True))
    second.caption(Caption("ja", "1", "one", True))
    await until(lambda: first.counts["posted"] == second.counts["posted"] == 1)
    two["outputs"][1]["offset_s"] = 1.0
    outputs.configure(parse(two, {}))
    assert routed["youtube:ja"] is first and first.queue.next_seq == 2  # unchanged: the same output goes on
    # Changed, but the same URL: the new output goes on from the old one's seq (YouTube would drop a repeat).
    assert routed["youtube:ja:2"] is not second and routed["youtube:ja:2"].queue.next_seq == 2
    outputs.configure(parse({**two, "outputs": []}, {}))
    assert routed == {"youtube:ja": None, "youtube:ja:2": None} and outputs.as_dict() == {}
    await first.close()
