"""Browser-source overlay: hub queues, parameter checks and the SSE stream; Chromium: test_overlay_browser.py."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web

from captioner.status import Status
from captioner.web import server as http
from captioner.web.overlay import OverlayHub
from tests.support.overlay_clock import LANGUAGES, FakeClock

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")


# -- the hub on its own


def test_history_keeps_last_20_finals_with_ages_and_clear_wipes_it() -> None:
    clock = FakeClock()
    hub = OverlayHub(clock=clock)
    for i in range(25):
        hub.publish("ja", "final", f"f{i}")
        clock.now += 1
    hub.publish("ja", "partial", "p")
    replay = hub.replay("ja")
    assert [c["text"] for c in replay["captions"]] == [f"f{i}" for i in range(5, 25)]
    assert replay["captions"][-1]["age_s"] == 1.0 and replay["captions"][0]["age_s"] == 20.0
    assert replay["partial"] == {"text": "p", "age_s": 0.0}
    assert hub.replay("ja", partials=False)["partial"] is None
    assert hub.replay("en") == {"kind": "replay", "captions": [], "partial": None}
    hub.publish("ja", "partial", "")  # the stash emptied: no partial to replay
    assert hub.replay("ja")["partial"] is None
    hub.publish("ja", "clear", "")
    assert hub.replay("ja") == {"kind": "replay", "captions": [], "partial": None}


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        OverlayHub().publish("ja", "shout", "x")


def test_queue_coalesces_partials_and_clear_discards_what_it_wipes() -> None:
    hub = OverlayHub()
    sub, _ = hub.subscribe("ja")
    quiet, _ = hub.subscribe("ja", partials=False)
    for text in ["p1", "p1 p2", "p1 p2 p3"]:
        hub.publish("ja", "partial", text)
    hub.publish("ja", "final", "F1")
    hub.publish("ja", "partial", "q1")
    assert [(e.kind, e.text) for e in sub._events] == [("partial", "p1 p2 p3"), ("final", "F1"), ("partial", "q1")]
    assert [(e.kind, e.text) for e in quiet._events] == [("final", "F1")]
    hub.publish("ja", "clear", "ignored")
    assert [(e.kind, e.text) for e in sub._events] == [("clear", "")]


def test_slow_subscriber_loses_partials_first_then_is_disconnected() -> None:
    hub = OverlayHub(queue_size=3)
    slow, _ = hub.subscribe("ja")
    other, _ = hub.subscribe("en")
    hub.publish("ja", "partial", "p")
    hub.publish("ja", "final", "f1")
    hub.publish("ja", "final", "f2")
    hub.publish("ja", "final", "f3")  # full: the partial goes, the finals stay
    assert [e.text for e in slow._events] == ["f1", "f2", "f3"] and not slow.closed
    hub.publish("ja", "final", "f4")  # full of finals: drop the subscriber, never wait for it
    assert slow.closed and slow.dropped
    assert hub.subscriber_count("ja") == 0 and hub.subscriber_count() == 1 and hub.dropped_subscribers == 1
    hub.publish("ja", "final", "f5")  # publishing goes on for everyone else
    assert not other.closed and [c["text"] for c in hub.replay("ja")["captions"]][-1] == "f5"


async def test_next_batch_waits_for_events_and_times_out_empty() -> None:
    hub = OverlayHub()
    sub, _ = hub.subscribe("ja")
    assert await sub.next_batch(0.01) == []
    asyncio.get_running_loop().call_later(0.01, hub.publish, "ja", "final", "late")
    assert [e.text for e in await sub.next_batch(5)] == ["late"]


# -- HTTP without a browser, in the test's own loop


class AppUnderTest:
    def __init__(self, runner: web.AppRunner, port: int, hub: OverlayHub) -> None:
        self.runner, self.port, self.hub = runner, port, hub
        self.cleaned = False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def cleanup(self) -> float:
        t0 = time.monotonic()
        if not self.cleaned:
            self.cleaned = True
            await self.runner.cleanup()
        return time.monotonic() - t0


@pytest.fixture
async def app() -> AsyncIterator[AppUnderTest]:
    hub = OverlayHub(heartbeat_s=0.2)
    hub.set_languages(LANGUAGES)
    runner, port = await http.start(Status("test"), "127.0.0.1", 0, hub)
    a = AppUnderTest(runner, port, hub)
    yield a
    await a.cleanup()


async def _get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


BAD_PARAMS = [
    ("size", "abc"),
    ("size", "7"),
    ("size", "201"),
    ("size", "-5"),
    ("color", "red;background:url(x)"),
    ("color", ""),
    ("color", "#12345"),
    ("color", "rgb(1,2,3)"),
    ("outline", "21"),
    ("outline_color", "nosuchcolour"),
    ("bg", "javascript:alert(1)"),
    ("lines", "0"),
    ("lines", "11"),
    ("lines", "1.5"),
    ("align", "justify"),
    ("clear", "3601"),
    ("clear", "1e3"),
    ("fade", "x"),
    ("fade", "11"),
    ("partials", "yes"),
    ("font", 'Arial";}body{color:red'),
    ("font", "a<b"),
    ("font", "x" * 101),
    ("colour", "red"),  # a typo must not be ignored silently
]


@pytest.mark.parametrize(("param", "value"), BAD_PARAMS)
async def test_bad_style_parameter_is_400_naming_it(app: AppUnderTest, param: str, value: str) -> None:
    status, _, body = await _get(app.url(f"/overlay?lang=ja&{param}={quote(value)}"))
    assert status == 400, body
    assert param in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "",
            ["--size: 48px;", "--color: white;", "--lines: 2;", "--align: center;", '"clear": 6', "--bg: transparent"],
        ),
        ("color=%23FF0000&bg=%23000a&outline_color=Navy", ["--color: #ff0000;", "--bg: #000a;", "0 navy"]),
        ("color=ff0000", ["--color: #ff0000;"]),  # '#' left out, as the 400 message suggests
        ("font=" + quote("ヒラギノ角ゴ Pro, sans-serif"), ['--font: "ヒラギノ角ゴ Pro", sans-serif;']),
        ("size=12.5&lines=10&align=right&clear=0&fade=0&partials=0&outline=0", ["--size: 12.5px;", "--shadow: none;"]),
    ],
)
async def test_good_parameters_shape_the_page(app: AppUnderTest, query: str, expected: list[str]) -> None:
    status, ctype, body = await _get(app.url(f"/overlay?lang=ja&{query}"))
    assert status == 200 and ctype.startswith("text/html")
    for part in expected:
        assert part in body


async def test_page_is_self_contained(app: AppUnderTest) -> None:
    status, _, body = await _get(app.url("/overlay?lang=ja"))
    assert status == 200
    for external in ("http://", "https://", "//cdn", "<link", " src=", "@import", "url("):
        assert external not in body
    assert "innerHTML" not in body and "textContent" in body


@pytest.mark.parametrize("path", ["/overlay", "/overlay/events"])
async def test_missing_lang_is_400_and_unknown_lang_404_listing_known(app: AppUnderTest, path: str) -> None:
    status, _, body = await _get(app.url(path))
    assert status == 400 and "lang" in body and "ja, en, source" in body
    status, _, body = await _get(app.url(path + "?lang=fr"))
    assert status == 404 and "'fr'" in body and "ja, en, source" in body


async def test_sse_stream_over_plain_http(app: AppUnderTest) -> None:
    app.hub.publish("ja", "final", "前の字幕")
    async with (
        aiohttp.ClientSession() as s,
        s.get(app.url("/overlay/events?lang=ja"), timeout=aiohttp.ClientTimeout(total=10)) as r,
    ):
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        assert r.headers["Cache-Control"] == "no-store"

        async def line() -> str:
            return (await r.content.readline()).decode().rstrip("\n")

        assert await line() == "retry: 1000"
        assert await line() == ""
        replay = await line()
        assert replay.startswith("data: ")
        assert json.loads(replay[6:])["captions"][0]["text"] == "前の字幕"
        assert await line() == ""
        app.hub.publish("ja", "partial", "こんに")
        app.hub.publish("en", "final", "not for this stream")
        app.hub.publish("ja", "final", "こんにちは")
        got: list[dict[str, Any]] = []
        while len(got) < 2:
            text = await line()
            if text.startswith("data: "):
                got.append(json.loads(text[6:]))
        assert [(e["kind"], e["text"]) for e in got] == [("partial", "こんに"), ("final", "こんにちは")]
        # Idle: a comment heartbeat (every 0.2 s here, 15 s by default).
        while (text := await line()) == "":
            pass
        assert text == ": keepalive"


async def test_cleanup_with_open_sse_stream_is_prompt(app: AppUnderTest) -> None:
    async with aiohttp.ClientSession() as s, s.get(app.url("/overlay/events?lang=ja&partials=0")) as r:
        assert (await r.content.readline()).startswith(b"retry:")
        assert app.hub.subscriber_count("ja") == 1
        took = await asyncio.wait_for(app.cleanup(), 10)
        assert took < 1.0, f"runner.cleanup() took {took:.2f}s with an open stream"
        # The stream ends properly (last chunk sent), not by a reset.
        rest = await asyncio.wait_for(r.content.read(), 5)
        assert rest.startswith(b"\ndata: ") and r.content.at_eof()
    assert app.hub.subscriber_count() == 0


async def test_a_client_that_stops_reading_is_cut_off_without_stalling_publish(app: AppUnderTest) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
    writer.write(f"GET /overlay/events?lang=ja HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\n\r\n".encode())
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    # From here on nothing is read: the socket buffers fill, the server's write stalls, its queue fills.
    for i in range(5000):
        app.hub.publish("ja", "final", f"{i:05d} " + "字幕" * 2000)
        await asyncio.sleep(0.001)  # time enough for the server to write while the client's buffers take it
        if app.hub.dropped_subscribers:
            break
    assert app.hub.dropped_subscribers == 1 and i > 100, i
    for _ in range(100):
        if app.hub.subscriber_count() == 0:
            break
        await asyncio.sleep(0.02)
    assert app.hub.subscriber_count() == 0
    assert await asyncio.wait_for(app.cleanup(), 10) < 1.0
    writer.close()


async def test_existing_endpoints_unchanged_with_and_without_hub(app: AppUnderTest) -> None:
    assert (await _get(app.url("/healthz")))[::2] == (200, "ok\n")
    status, _, body = await _get(app.url("/status"))
    assert status == 200 and json.loads(body)["version"] == "test"
    assert (await _get(app.url("/metrics")))[0] == 200
    runner, port = await http.start(Status("test"), "127.0.0.1", 0)  # the daemon's existing call
    try:
        assert (await _get(f"http://127.0.0.1:{port}/healthz"))[0] == 200
        assert (await _get(f"http://127.0.0.1:{port}/overlay?lang=ja"))[0] == 404
    finally:
        await runner.cleanup()
