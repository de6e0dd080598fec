"""YouTube caption ingestion and webhooks: the body formats, the queue's rules as tables, and the retries against a
real local HTTP server (the daemon-level test is tests/test_e2e_posting.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from captioner.config import Config, parse
from captioner.outputs import posting
from captioner.outputs.posting import Final, PostingOutputs, PostQueue, utc_ms
from captioner.outputs.webhook import WebhookOutput, caption_json
from captioner.outputs.youtube import YoutubeOutput, caption_body, server_time, with_seq
from captioner.status import Status
from captioner.translation.interpreter import Caption

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2026, 12, 24, 20, 0, 6, 873000, tzinfo=UTC).timestamp()


def final(text: str, spoken_at: float, item: str = "i", speaker: str = "", language: str = "ja") -> Final:
    c = Caption(language, item, text, True, spoken_at=spoken_at, speaker=speaker)
    return Final(c, spoken_at, spoken_at + 2.25)


# ---- formats ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "stamp"),
    [
        (T0, "2026-12-24T20:00:06.873"),
        (T0 + 0.0004, "2026-12-24T20:00:06.873"),  # to the nearest millisecond
        (T0 + 0.0006, "2026-12-24T20:00:06.874"),
        (T0 + 0.1266, "2026-12-24T20:00:07.000"),  # .9996 rounds up into the next second
        (datetime(2027, 1, 1, tzinfo=UTC).timestamp() - 0.0001, "2027-01-01T00:00:00.000"),
        (0.0, "1970-01-01T00:00:00.000"),
    ],
)
def test_stamps_are_utc_to_the_millisecond(t: float, stamp: str) -> None:
    assert utc_ms(t) == stamp


@pytest.mark.parametrize(
    ("lines", "body"),
    [
        ([(T0, "Hello everyone")], "2026-12-24T20:00:06.873\nHello everyone\n"),
        (
            [(T0, "皆さん、こんにちは。配信へようこそ！")],
            "2026-12-24T20:00:06.873\n皆さん、こんにちは。配信へようこそ！\n",
        ),
        ([(T0, "안녕하세요\n여러분")], "2026-12-24T20:00:06.873\n안녕하세요<br>여러분\n"),
        ([(T0, "一行目\r\n二行目\r三行目")], "2026-12-24T20:00:06.873\n一行目<br>二行目<br>三行目\n"),
        ([(T0, "  padded \n")], "2026-12-24T20:00:06.873\npadded\n"),
        (
            [(T0, "I'M"), (T0 + 0.101, "SENDING"), (T0 + 1.5, "大家好")],
            "2026-12-24T20:00:06.873\nI'M\n2026-12-24T20:00:06.974\nSENDING\n2026-12-24T20:00:08.373\n大家好\n",
        ),
    ],
)
def test_youtube_body_is_stamp_lines_then_text_lines(lines: list[tuple[float, str]], body: str) -> None:
    assert caption_body(lines) == body


@pytest.mark.parametrize(
    ("url", "seq", "sent"),
    [
        (
            "http://upload.youtube.com/closedcaption?cid=abcd-efgh",
            1,
            "http://upload.youtube.com/closedcaption?cid=abcd-efgh&seq=1",
        ),
        ("https://example.test/cc", 42, "https://example.test/cc?seq=42"),
        ("http://h/cc?id=x&sparams=id%2Cns&signature=A.B", 7, "http://h/cc?id=x&sparams=id%2Cns&signature=A.B&seq=7"),
    ],
)
def test_seq_is_added_and_the_rest_of_the_url_kept_exactly(url: str, seq: int, sent: str) -> None:
    assert with_seq(url, seq) == sent


@pytest.mark.parametrize(
    ("answer", "t"),
    [
        ("2026-12-24T20:00:06.873", T0),
        ("2026-12-24T20:00:06.873\n", T0),
        ("  2026-12-24T20:00:06\r\n", T0 - 0.873),
        ("OK", None),
        ("", None),
        ("2026-13-45T99:00:00.000", None),
    ],
)
def test_the_servers_time_is_read_from_its_answer(answer: str, t: float | None) -> None:
    got = server_time(answer)
    assert got == pytest.approx(t) if t is not None else got is None


def test_webhook_json_has_the_final_its_times_and_seq() -> None:
    f = final("皆さん\nこんにちは", T0, item="item_1", speaker="Alice")
    assert caption_json(f, 5) == {
        "seq": 5,
        "language": "ja",
        "text": "皆さん\nこんにちは",
        "start": "2026-12-24T20:00:06.873Z",
        "end": "2026-12-24T20:00:09.123Z",
        "item_id": "item_1",
        "speaker": "Alice",
    }
    assert "speaker" not in caption_json(final("x", T0), 1)


# ---- the queue's rules -----------------------------------------------------------------------------------------

# Steps: ("add", text, spoken_at) | ("next", now) -> expect (seq, texts) or None | ("ok",) | ("fail",) | ("stop",)
Step = tuple[Any, ...]


@dataclass
class Case:
    steps: list[tuple[Step, Any]]
    counts: dict[str, int] = field(default_factory=dict)
    max_age_s: float = 60.0
    max_batch: int = 1
    limit: int = 100


CASES = {
    "each final its own post, seq from 1": Case(
        [
            (("add", "a", 0), None),
            (("add", "b", 1), None),
            (("next", 2), (1, ["a"])),
            (("ok",), None),
            (("next", 3), (2, ["b"])),
            (("ok",), None),
            (("next", 4), None),
        ],
        {"posted": 2},
    ),
    "a retry is the same post with the same seq; the next one waits behind it": Case(
        [
            (("add", "a", 0), None),
            (("add", "b", 0), None),
            (("next", 1), (1, ["a"])),
            (("fail",), None),
            (("next", 2), (1, ["a"])),
            (("fail",), None),
            (("next", 3), (1, ["a"])),
            (("ok",), None),
            (("next", 4), (2, ["b"])),
            (("ok",), None),
        ],
        {"posted": 2, "failed": 2, "retried": 2},
    ),
    "waiting finals go out in one post, in order, up to max_batch": Case(
        [
            (("add", "a", 0), None),
            (("add", "b", 1), None),
            (("add", "c", 2), None),
            (("next", 3), (1, ["a", "b"])),
            (("fail",), None),
            (("add", "d", 4), None),
            (("next", 5), (1, ["a", "b"])),  # a retry does not grow
            (("ok",), None),
            (("next", 6), (2, ["c", "d"])),
            (("ok",), None),
        ],
        {"posted": 4, "failed": 1, "retried": 1},
        max_batch=2,
    ),
    "after a long outage the stale finals are skipped; the fresh ones go, seq unbroken": Case(
        [
            (("add", "a", 0), None),
            (("add", "b", 5), None),
            (("add", "c", 50), None),
            (("next", 1), (1, ["a"])),
            (("fail",), None),
            (("next", 30), (1, ["a"])),
            (("fail",), None),
            (("next", 100), (2, ["c"])),  # a (in flight) and b are older than 60 s; c is 50 s old
            (("ok",), None),
        ],
        {"posted": 1, "failed": 2, "retried": 1, "too_old": 2},
    ),
    "a stale final never sent uses no seq": Case(
        [
            (("add", "a", 0), None),
            (("add", "b", 90), None),
            (("next", 100), (1, ["b"])),
            (("ok",), None),
        ],
        {"posted": 1, "too_old": 1},
    ),
    "past the limit the oldest waiting final is skipped, never the one in flight": Case(
        [
            (("add", "a", 0), None),
            (("next", 0), (1, ["a"])),
            (("fail",), None),
            (("add", "b", 1), None),
            (("add", "c", 2), None),
            (("add", "d", 3), None),
            (("next", 4), (1, ["a"])),
            (("ok",), None),
            (("next", 4), (2, ["c"])),
            (("ok",), None),
            (("next", 4), (3, ["d"])),
            (("ok",), None),
        ],
        {"posted": 3, "failed": 1, "retried": 1, "queue_full": 1},
        limit=3,
    ),
    "at stop what is left is counted": Case(
        [
            (("add", "a", 0), None),
            (("add", "b", 0), None),
            (("next", 0), (1, ["a"])),
            (("fail",), None),
            (("stop",), 2),
            (("next", 1), None),
        ],
        {"failed": 1, "stopped": 2},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_queue_rules(case: Case) -> None:
    counts: Counter[str] = Counter()
    q = PostQueue(case.max_age_s, lambda what, n: counts.update({what: n}), case.max_batch, case.limit)
    for step, expected in case.steps:
        match step:
            case ("add", text, spoken_at):
                q.add(final(text, spoken_at))
            case ("next", now):
                post = q.next_post(now)
                got = None if post is None else (post.seq, [f.caption.text for f in post.finals])
                assert got == expected, step
            case ("ok",):
                q.delivered()
            case ("fail",):
                q.failed()
            case ("stop",):
                assert q.abandon() == expected
    assert dict(counts) == case.counts


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
