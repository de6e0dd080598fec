"""End to end: real speech -> PulseAudio -> `captioner run` -> fake translator -> YouTube's caption ingestion and a
webhook, both played by a local aiohttp server that answers 503 now and then and goes away for a while.

What YouTube would receive is checked: every caption, in order, in the spec's exact format, CJK intact, `seq`
consecutive and kept by a retry, stamped with when its speech started (known: the test played it), nothing lost to
the outage, and the URL's secret nowhere in the daemon's log, /status or /metrics.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from tests.support.daemonproc import DaemonProc
from tests.support.fake_translator import FakeTranslator
from tests.support.procs import free_port
from tests.support.pulse_env import PulseEnv
from tests.support.speech import silence_padded_sequence

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

KEY = "sk-e2e-posting-key"
CID = "e2e-secret-cid-7f3a9c"
HOOK_TOKEN = "hook-token-5b8e1d2a"
HOOK_PATH_SECRET = "a1b2c3d4e5f60718"
GAP_S = 3.0
BEFORE = [
    "Hello everyone and welcome to the stream",
    "Today we are going to build a castle",
    "Thank you all for watching",
]
DURING = [  # spoken while the endpoint is down
    "The castle needs a tall tower",
    "See you again next week",
]
JAPANESE = {
    BEFORE[0]: "皆さん、こんにちは。配信へようこそ！",
    BEFORE[1]: "今日はみんなで大きなお城を作ります。",
    BEFORE[2]: "ご視聴ありがとうございました。",
    DURING[0]: "お城には高い塔が必要です。",
    DURING[1]: "また来週お会いしましょう。",
}
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}")


@dataclass
class Received:
    at: float  # time.time() when it arrived
    path: str
    query: dict[str, str]
    content_type: str
    headers: dict[str, str]
    body: str
    answered: int


class IngestStandIn:
    """YouTube's ingestion endpoint and a webhook on 127.0.0.1, on their own thread; can fail and go away."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.fail_next = {"/closedcaption": 0, "/hooks": 0}
        self.clock_ahead_s = 3.0  # YouTube's clock, as its answers tell it, is this far ahead of ours
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def youtube_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/closedcaption?cid={CID}&lang=ja"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{HOOK_PATH_SECRET}"

    def start(self) -> IngestStandIn:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def go_down(self) -> None:
        """The endpoint goes away: open connections are closed and new ones refused."""
        assert self._runner is not None
        self._call(self._runner.cleanup())
        self._runner = None

    def come_back(self) -> None:
        self._call(self._start())

    def posts(self, path: str) -> list[Received]:
        return [r for r in list(self.received) if r.path.startswith(path)]

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/closedcaption", self._handle)
        app.router.add_post("/hooks/{secret}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def _handle(self, request: web.Request) -> web.Response:
        key = "/closedcaption" if request.path == "/closedcaption" else "/hooks"
        status = 503 if self.fail_next[key] else 200
        self.fail_next[key] = max(0, self.fail_next[key] - 1)
        self.received.append(
            Received(
                time.time(),
                request.path,
                dict(request.query),
                request.content_type,
                dict(request.headers),
                await request.text(),
                status,
            )
        )
        if status != 200:
            return web.Response(status=status, text="Service Unavailable")
        # As YouTube does: the answer carries the server's time.
        now = datetime.fromtimestamp(time.time() + self.clock_ahead_s, UTC)
        return web.Response(text=f"{now:%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "\n")


@pytest.fixture
def stand_in() -> Iterator[IngestStandIn]:
    s = IngestStandIn().start()
    yield s
    s.stop()


@pytest.fixture
def fake(threaded_fake: Callable[..., FakeTranslator]) -> FakeTranslator:
    return threaded_fake(api_key=KEY, script=[*BEFORE, *DURING], renderings={"ja": JAPANESE})


def speech_onsets(path: Path) -> list[float]:
    """Where each phrase starts in the wav, s: the first loud 10 ms frame after at least 1 s of quiet."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768
    step = rate // 100
    loud = np.mean(x[: len(x) // step * step].reshape(-1, step) ** 2, axis=1) > 1e-5
    onsets, quiet = [], 100
    for i, on in enumerate(loud):
        if on and quiet >= 100:
            onsets.append(i / 100)
        quiet = 0 if on else quiet + 1
    return onsets


def youtube_captions(posts: list[Received]) -> tuple[list[int], list[tuple[float, str, float]]]:
    """The seq of each distinct post in arrival order, and every (stamp, text, arrival) they carried, once."""
    seqs: list[int] = []
    captions: list[tuple[float, str, float]] = []
    for p in posts:
        if p.answered != 200:
            continue
        seqs.append(int(p.query["seq"]))
        lines = p.body.split("\n")
        assert lines[-1] == "" and len(lines) % 2 == 1, p.body  # stamp line, text line, ... ending in a newline
        for stamp, text in zip(lines[:-1:2], lines[1:-1:2], strict=True):
            assert STAMP.fullmatch(stamp), p.body
            t = datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
            captions.append((t, text, p.at))
    return seqs, captions


def test_youtube_captions_and_a_webhook_arrive_whole_in_order_in_sync_and_through_an_outage(
    pulse_env: PulseEnv, fake: FakeTranslator, stand_in: IngestStandIn, tmp_path: Path
) -> None:
    before = silence_padded_sequence(BEFORE, GAP_S, tmp_path / "before.wav")
    during = silence_padded_sequence(DURING, GAP_S, tmp_path / "during.wav")
    cfg = {
        "audio": {"device": "loopback"},
        "translator": {
            "url": fake.url,
            "model": "qwen3.5-livetranslate-flash-realtime",
            "api_key": "${DASHSCOPE_API_KEY}",
            "source_language": "en",
            "targets": ["ja"],
            "transcribe_source": True,
        },
        "obs": {"enabled": False},
        "outputs": [
            {"youtube_url": "${YOUTUBE_CAPTIONS_URL}", "language": "ja", "timeout_s": 2},
            {
                "webhook_url": "${CAPTIONS_WEBHOOK_URL}",
                "language": "source",
                "timeout_s": 2,
                "headers": {"Authorization": "Bearer ${CAPTIONS_WEBHOOK_TOKEN}"},
            },
        ],
    }
    env = pulse_env.child_env(
        DASHSCOPE_API_KEY=KEY,
        YOUTUBE_CAPTIONS_URL=stand_in.youtube_url,
        CAPTIONS_WEBHOOK_URL=stand_in.webhook_url,
        CAPTIONS_WEBHOOK_TOKEN=HOOK_TOKEN,
    )
    stand_in.fail_next["/closedcaption"] = 3  # the first post is refused three times, then taken
    stand_in.fail_next["/hooks"] = 2
    daemon = DaemonProc(tmp_path, cfg, env).start()
    played_at: list[float] = []

    def delivered(path: str) -> int:
        return len({r.body for r in stand_in.posts(path) if r.answered == 200})

    try:
        for link in ("audio", "translator:ja"):
            daemon.wait(lambda link=link: daemon.link_state(link) == "connected", 30, f"{link} connected")
        time.sleep(1.0)
        played_at.append(time.time())
        pulse_env.play(before)
        daemon.wait(lambda: daemon.status()["outputs"]["ja"]["final_count"] == 3, 30, "three finals")
        daemon.wait(
            lambda: delivered("/hooks") == 3 and len(youtube_captions(stand_in.posts("/closedcaption"))[1]) == 3,
            20,
            "three delivered",
        )

        stand_in.go_down()
        played_at.append(time.time())
        pulse_env.play(during)
        daemon.wait(lambda: daemon.status()["outputs"]["ja"]["final_count"] == 5, 30, "five finals")
        posts = daemon.status()["post_outputs"]
        assert posts["youtube:ja"]["ok"] is False and posts["youtube:ja"]["queued"] >= 1, posts
        assert posts["webhook:source"]["failed"] >= 3, posts  # 2 refused + at least one while down
        stand_in.come_back()
        daemon.wait(lambda: daemon.status()["post_outputs"]["youtube:ja"]["posted"] == 5, 30, "YouTube catches up")
        daemon.wait(lambda: daemon.status()["post_outputs"]["webhook:source"]["posted"] == 5, 30, "webhook catches up")
        status_text = daemon.get("/status")[1]
        status = json.loads(status_text)
        metrics = daemon.get("/metrics")[1]
        assert daemon.stop(signal.SIGTERM) == 0
    finally:
        daemon.kill()

    # 1. YouTube: text/plain posts, seq 1, 2, 3 ... in order, each retry the same post with the same seq.
    yt = stand_in.posts("/closedcaption")
    assert {r.content_type for r in yt} == {"text/plain"}
    assert {r.query["cid"] for r in yt} == {CID} and {r.query["lang"] for r in yt} == {"ja"}
    assert [r.answered for r in yt[:4]] == [503, 503, 503, 200]
    assert len({(r.query["seq"], r.body) for r in yt[:4]}) == 1, "a retry is the same post with the same seq"
    seqs, captions = youtube_captions(yt)
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    for r in yt:  # every attempt of one seq carried the same captions
        assert all(o.body == r.body for o in yt if o.query["seq"] == r.query["seq"])
    # Every caption once, in order, CJK intact.
    assert [text for _, text, _ in captions] == [JAPANESE[p] for p in [*BEFORE, *DURING]]

    # 2. Each stamp is when its speech started (known: the test played it), not when the caption was made.
    onsets = [played_at[0] + t for t in speech_onsets(before)] + [played_at[1] + t for t in speech_onsets(during)]
    assert len(onsets) == 5, onsets
    for (stamp, text, _), onset in zip(captions, onsets, strict=True):
        assert abs(stamp - onset) < 1.0, (text, stamp - onset)
    for stamp, text, arrived in captions[:3]:  # sent as they were made: seconds after the speech began
        assert arrived - stamp > 1.0, (text, arrived - stamp)

    # 3. The webhook: one JSON object per final, in order, seq 1..5, the header sent, start at the speech onset.
    hooks = [r for r in stand_in.posts("/hooks") if r.answered == 200]
    objs = [json.loads(r.body) for r in hooks]
    assert [o["text"] for o in objs] == [*BEFORE, *DURING]
    assert [o["seq"] for o in objs] == [1, 2, 3, 4, 5]
    assert {o["language"] for o in objs} == {"source"}
    assert all(r.headers["Authorization"] == f"Bearer {HOOK_TOKEN}" for r in hooks)
    assert {r.content_type for r in hooks} == {"application/json"}
    for o, onset in zip(objs, onsets, strict=True):
        start = datetime.fromisoformat(o["start"]).timestamp()
        end = datetime.fromisoformat(o["end"]).timestamp()
        assert abs(start - onset) < 1.0 and start < end, o

    # 4. /status and /metrics tell the story; YouTube's clock, 3 s ahead in its answers, is warned about.
    yt_status = status["post_outputs"]["youtube:ja"]
    assert yt_status["posted"] == 5 and yt_status["skipped"] == 0 and yt_status["retried"] >= 3
    assert yt_status["clock_skew_s"] == pytest.approx(3.0, abs=0.5)
    assert "3.0 s behind YouTube's" in yt_status["warning"]
    assert re.search(r'^captioner_post_posted_captions_total\{output="youtube:ja"\} 5\.0$', metrics, re.M), metrics
    assert re.search(r'^captioner_post_retries_total\{output="webhook:source"\} [1-9]', metrics, re.M)

    # 5. No secret anywhere: not the URL, not its cid, not the webhook's path token or header.
    log = daemon.log()
    assert "caption [ja]" in log
    for text in (log, status_text, metrics):
        for secret in (CID, stand_in.youtube_url, HOOK_PATH_SECRET, HOOK_TOKEN, KEY):
            assert secret not in text
