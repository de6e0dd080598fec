"""Browser-source overlay: what a viewer sees, in real headless Chromium."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from aiohttp import web

from captioner.status import Status
from captioner.web import server as http
from captioner.web.overlay import OverlayHub
from tests.support.browser import Browser
from tests.support.overlay_clock import LANGUAGES, FakeClock

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")


class ThreadedOverlay:
    """The real HTTP app with a hub on its own loop thread, since the CDP harness blocks the test's thread."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.hub = OverlayHub(clock=self.clock)
        self.hub.set_languages(LANGUAGES)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="overlay-http", daemon=True)
        self.thread.start()
        self.port = 0
        self.runner: web.AppRunner | None = None
        self.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=15)

    def start(self) -> None:
        self.runner, self.port = self.run(http.start(Status("test"), "127.0.0.1", self.port, self.hub))

    def publish(self, language: str, kind: str, text: str = "") -> None:
        async def publish() -> None:  # on the loop thread, as the daemon does
            self.hub.publish(language, kind, text)

        self.run(publish())

    def url(self, query: str) -> str:
        return f"http://127.0.0.1:{self.port}/overlay?{query}"

    def cleanup(self) -> float:
        """runner.cleanup() (the page may still be connected); returns how long it took."""
        t0 = time.monotonic()
        if self.runner is not None:
            self.run(self.runner.cleanup())
            self.runner = None
        return time.monotonic() - t0

    def close(self) -> float:
        took = self.cleanup()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
        return took


@pytest.fixture
def server() -> Iterator[ThreadedOverlay]:
    srv = ThreadedOverlay()
    yield srv
    took = srv.close()
    assert took < 2.0, f"runner.cleanup() took {took:.2f}s with a page connected"


@pytest.fixture
def page(browser: Browser) -> Iterator[Browser]:
    browser.dialogs.clear()
    browser.exceptions.clear()
    yield browser
    assert browser.exceptions == []
    browser.navigate("about:blank")  # the server has gone (with the page connected): stop its reconnect attempts


CAPTIONS = "[...document.querySelectorAll('#captions .caption')].map((e) => e.textContent)"
VISIBLE = """(() => {
  const box = document.getElementById('captions').getBoundingClientRect();
  return [...document.querySelectorAll('#captions .caption')]
    .filter((e) => { const r = e.getBoundingClientRect(); return r.bottom > box.top + 1 && r.top < box.bottom - 1; })
    .map((e) => e.textContent);
})()"""
# Every distinct state of the caption texts, as the page went through them.
RECORD = """window.seen = [];
new MutationObserver(() => {
  const now = JSON.stringify([...document.querySelectorAll('#captions .caption')].map((e) => e.textContent));
  if (window.seen[window.seen.length - 1] !== now) window.seen.push(now);
}).observe(document.getElementById('captions'), {childList: true, subtree: true, characterData: true});"""


def open_overlay(b: Browser, srv: ThreadedOverlay, query: str) -> None:
    b.navigate(srv.url(query))
    b.wait_for("document.documentElement.dataset.state === 'live'")


def wait_texts(b: Browser, expected: list[str], js: str = CAPTIONS, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (shown := b.evaluate(js)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"page shows {shown!r}, expected {expected!r}")
        time.sleep(0.03)


@pytest.mark.e2e
def test_finals_appear_in_order_at_the_bottom_over_transparency(page: Browser, server: ThreadedOverlay) -> None:
    open_overlay(page, server, "lang=ja")
    server.publish("ja", "final", "first caption")
    server.publish("ja", "final", "second caption")
    wait_texts(page, ["first caption", "second caption"])
    geo = page.evaluate("""(() => {
      const [a, b] = document.querySelectorAll('#captions .caption');
      const box = document.getElementById('captions');
      const cs = getComputedStyle(b);
      return {html: getComputedStyle(document.documentElement).backgroundColor,
              body: getComputedStyle(document.body).backgroundColor,
              gap: innerHeight - box.getBoundingClientRect().bottom, newestBelow: b.getBoundingClientRect().top
                >= a.getBoundingClientRect().bottom - 1,
              size: cs.fontSize, color: cs.color, shadow: cs.textShadow, align: cs.textAlign,
              wrap: [getComputedStyle(box).lineBreak, getComputedStyle(box).overflowWrap]};
    })()""")
    assert geo["html"] == geo["body"] == "rgba(0, 0, 0, 0)"
    assert 0 <= geo["gap"] < 48 and geo["newestBelow"]
    assert (geo["size"], geo["color"], geo["align"]) == ("48px", "rgb(255, 255, 255)", "center")
    assert "rgb(0, 0, 0) 3px 0px 0px" in geo["shadow"]
    assert geo["wrap"] == ["strict", "anywhere"]
    assert page.pixel(3, 3)[3] == 0  # composited: nothing painted above the captions
    page.screenshot(page.tmp / "finals.png")


@pytest.mark.e2e
def test_partial_grows_and_is_replaced_in_place_by_its_final(page: Browser, server: ThreadedOverlay) -> None:
    open_overlay(page, server, "lang=ja&lines=3")
    server.publish("ja", "final", "前の文。")
    wait_texts(page, ["前の文。"])
    page.evaluate(RECORD)
    server.publish("ja", "partial", "今日は")
    wait_texts(page, ["前の文。", "今日は"])
    page.evaluate("document.querySelector('#captions .partial').dataset.mark = 'same'")
    server.publish("ja", "partial", "今日はいい天気")
    wait_texts(page, ["前の文。", "今日はいい天気"])
    server.publish("ja", "final", "今日はいい天気ですね。")
    wait_texts(page, ["前の文。", "今日はいい天気ですね。"])
    last = page.evaluate("""(() => { const e = document.querySelector('#captions .caption:last-child');
      return [e.dataset.mark, e.dataset.kind, e.classList.contains('partial')]; })()""")
    assert last == ["same", "final", False]
    assert page.evaluate("document.querySelectorAll('#captions .partial').length") == 0
    seen = [json.loads(s) for s in page.evaluate("window.seen")]
    assert seen == [["前の文。", "今日は"], ["前の文。", "今日はいい天気"], ["前の文。", "今日はいい天気ですね。"]]


@pytest.mark.e2e
def test_only_lines_lines_are_visible_older_ones_scroll_off(page: Browser, server: ThreadedOverlay) -> None:
    open_overlay(page, server, "lang=ja&lines=2&size=20")
    for i in range(1, 6):
        server.publish("ja", "final", f"line {i}")
    wait_texts(page, ["line 4", "line 5"], VISIBLE)
    wait_texts(page, ["line 4", "line 5"])  # the ones above were removed, not just hidden
    box = page.evaluate("""(() => { const b = document.getElementById('captions');
      return [b.clientHeight, parseFloat(getComputedStyle(b).lineHeight)]; })()""")
    assert box[0] <= 2 * box[1] + 1
    long_text = "字幕は下から上へ流れます。" * 25  # wraps to many lines at 20 px
    server.publish("ja", "final", long_text)
    wait_texts(page, [long_text])
    fit = page.evaluate("""(() => { const b = document.getElementById('captions');
      const c = b.lastElementChild.getBoundingClientRect(), r = b.getBoundingClientRect();
      const lh = parseFloat(getComputedStyle(b).lineHeight);
      return [Math.abs(c.bottom - r.bottom) < 1, c.top < r.top - 2 * lh]; })()""")
    assert fit == [True, True]  # its last two lines show, its start is cut off at the top


@pytest.mark.e2e
def test_markup_in_a_caption_is_shown_as_text(page: Browser, server: ThreadedOverlay) -> None:
    open_overlay(page, server, "lang=en&lines=3&size=24")
    evil = ["<script>alert(1)</script>", '<img src=x onerror="alert(2)">', "<b>bold</b> & &amp;"]
    for text in evil:
        server.publish("en", "final", text)
    wait_texts(page, evil)
    assert page.evaluate("document.querySelectorAll('#captions script, #captions img, #captions b').length") == 0
    assert page.dialogs == []


@pytest.mark.e2e
def test_clear_empties_the_page(page: Browser, server: ThreadedOverlay) -> None:
    open_overlay(page, server, "lang=ja")
    server.publish("ja", "final", "一")
    server.publish("ja", "partial", "二")
    wait_texts(page, ["一", "二"])
    server.publish("ja", "clear")
    wait_texts(page, [])
    server.publish("ja", "final", "三")
    wait_texts(page, ["三"])


@pytest.mark.e2e
def test_a_page_loaded_later_replays_recent_captions(page: Browser, server: ThreadedOverlay) -> None:
    server.publish("ja", "final", "old")
    server.clock.now += 100  # "old" is now 100 s old: past any clear delay below
    for text in ["a", "b", "c"]:
        server.publish("ja", "final", text)
    server.publish("ja", "partial", "d")
    open_overlay(page, server, "lang=ja&lines=2&clear=6")
    wait_texts(page, ["c", "d"], VISIBLE)
    assert "old" not in page.evaluate(CAPTIONS)
    open_overlay(page, server, "lang=ja&lines=10&clear=0")  # never fades: every recent final counts
    wait_texts(page, ["old", "a", "b", "c", "d"])
    open_overlay(page, server, "lang=ja&lines=10&clear=0&partials=0")
    wait_texts(page, ["old", "a", "b", "c"])
    server.publish("ja", "clear")
    open_overlay(page, server, "lang=ja")
    assert page.evaluate(CAPTIONS) == []


@pytest.mark.e2e
def test_captions_fade_out_after_clear_seconds_and_come_back(page: Browser, server: ThreadedOverlay) -> None:
    open_overlay(page, server, "lang=ja&clear=0.5&fade=0.1")
    server.publish("ja", "final", "消える字幕")
    wait_texts(page, ["消える字幕"])
    t0 = time.monotonic()
    wait_texts(page, [], timeout_s=5)
    assert time.monotonic() - t0 > 0.3
    server.publish("ja", "final", "新しい字幕")
    wait_texts(page, ["新しい字幕"])
    page.wait_for("getComputedStyle(document.getElementById('captions')).opacity === '1'")


@pytest.mark.e2e
def test_style_parameters_apply(page: Browser, server: ThreadedOverlay) -> None:
    query = "lang=en&size=30&color=%23ff0000&outline=0&bg=lime&align=left&font=DejaVu%20Sans%20Mono,monospace"
    open_overlay(page, server, query)
    server.publish("en", "final", "Styled")
    wait_texts(page, ["Styled"])
    page.wait_for("document.getAnimations().length === 0")  # fade-in done
    got = page.evaluate("""(() => { const e = document.querySelector('#captions .caption');
      const cs = getComputedStyle(e), span = e.firstElementChild.getBoundingClientRect();
      return {size: cs.fontSize, color: cs.color, align: cs.textAlign, font: cs.fontFamily, shadow: cs.textShadow,
              bg: getComputedStyle(e.firstElementChild).backgroundColor,
              x: span.left + 1, y: span.top + span.height / 2}; })()""")
    assert (got["size"], got["color"], got["align"], got["shadow"]) == ("30px", "rgb(255, 0, 0)", "left", "none")
    assert got["font"] == '"DejaVu Sans Mono", monospace' and got["bg"] == "rgb(0, 255, 0)"
    assert page.pixel(got["x"], got["y"]) == (0, 255, 0, 255)  # the box is really painted, left of the text


@pytest.mark.e2e
def test_partials_off_shows_only_finals(page: Browser, server: ThreadedOverlay) -> None:
    open_overlay(page, server, "lang=ja&partials=0")
    page.evaluate(RECORD)
    server.publish("ja", "partial", "途中")
    server.publish("ja", "final", "完成")
    wait_texts(page, ["完成"])
    assert [json.loads(s) for s in page.evaluate("window.seen")] == [["完成"]]


@pytest.mark.e2e
def test_page_reconnects_after_the_server_restarts(page: Browser, server: ThreadedOverlay) -> None:
    open_overlay(page, server, "lang=ja&clear=0")
    server.publish("ja", "final", "before")
    wait_texts(page, ["before"])
    took = server.cleanup()  # with the page's stream open
    assert took < 2.0, f"runner.cleanup() took {took:.2f}s with a page connected"
    page.wait_for("document.documentElement.dataset.state === 'connecting'")
    server.start()  # same port, same hub
    page.wait_for("document.documentElement.dataset.state === 'live'", timeout_s=10)
    server.publish("ja", "final", "after")
    wait_texts(page, ["before", "after"])
