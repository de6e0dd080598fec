"""Dashboard at /: latency read-outs (tables), the page over plain HTTP, and what an operator sees in real Chromium."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram

from captioner import http
from captioner.dashboard import RECENT_FINALS
from captioner.overlay import OverlayHub
from captioner.readout import gauge_value, histogram_summary, quantile
from captioner.status import LinkState, Status
from tests.browser import Browser

pytestmark = pytest.mark.timeout(90)

T = TypeVar("T")
TOKEN = "s3cret-token"
INF = math.inf


# -- pure: quantiles from cumulative buckets, as Prometheus' histogram_quantile()


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, [], None),
        (0.5, [(0.1, 0), (1.0, 0), (INF, 0)], None),  # no samples yet
        (0.5, [(0.1, 4), (1.0, 4), (INF, 4)], 0.05),  # all in the first bucket: from 0 up to its bound
        (1.0, [(0.1, 4), (1.0, 4), (INF, 4)], 0.1),
        (0.5, [(0.1, 0), (1.0, 4), (INF, 4)], 0.55),  # linear inside (0.1, 1.0]
        (0.25, [(0.1, 1), (1.0, 3), (INF, 4)], 0.1),  # the rank lands exactly on a bucket's upper count
        (0.5, [(0.1, 1), (1.0, 3), (INF, 4)], 0.55),
        (0.95, [(0.1, 1), (1.0, 3), (INF, 4)], 1.0),  # in +Inf: the highest finite bound is all that is known
        (0.5, [(0.1, 0), (1.0, 0), (INF, 2)], 1.0),
        (0.5, [(0.001, 0), (0.002, 2), (0.005, 2), (INF, 2)], 0.0015),  # empty buckets above do not stretch it
    ],
)
def test_quantile(q: float, buckets: list[tuple[float, float]], expected: float | None) -> None:
    got = quantile(q, buckets)
    assert got == expected if expected is None else got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("observations", "expected"),
    [
        ([], {"count": 0, "avg_s": None, "p50_s": None, "p95_s": None}),
        # Quantiles are bucket estimates (linear inside (0.1, 1]); the mean is exact.
        ([("a", 0.5)], {"count": 1, "avg_s": 0.5, "p50_s": 0.55, "p95_s": 0.955}),
        # Label sets are summed: one target fast, one slow.
        ([("a", 0.05), ("a", 0.05), ("b", 3.0), ("b", 3.0)], {"count": 4, "avg_s": 1.525, "p50_s": 0.1, "p95_s": 4.6}),
    ],
)
def test_histogram_summary_sums_label_sets(observations: list[tuple[str, float]], expected: dict[str, Any]) -> None:
    hist = Histogram("h_seconds", "test", ["target"], buckets=(0.1, 1, 5), registry=CollectorRegistry())
    for target, value in observations:
        hist.labels(target).observe(value)
    got = histogram_summary(hist)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == (value if value is None or key == "count" else pytest.approx(value)), key


def test_status_exposes_level_and_latency() -> None:
    st = Status("test")
    before = st.as_dict()
    assert before["audio_level"] == 0.0
    assert before["latency"]["final_to_screen"] == {"count": 0, "avg_s": None, "p50_s": None, "p95_s": None}
    st.metrics.audio_level.set(0.123456)
    st.metrics.final_to_screen_seconds.observe(0.004)
    st.metrics.capture_to_wire_seconds.labels("ja").observe(0.02)
    after = json.loads(json.dumps(st.as_dict()))  # what /status sends
    assert after["audio_level"] == 0.1235 and gauge_value(st.metrics.audio_level) == pytest.approx(0.123456)
    assert after["latency"]["final_to_screen"]["count"] == 1
    assert after["latency"]["final_to_screen"]["avg_s"] == pytest.approx(0.004)
    assert after["latency"]["capture_to_wire"]["count"] == 1


# -- the page over plain HTTP


async def test_page_is_self_contained_and_its_csp_allows_exactly_its_own_script() -> None:
    runner, port = await http.start(Status("test"), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/") as r:
            body, headers = await r.text(), r.headers
            assert r.status == 200 and r.content_type == "text/html"
    finally:
        await runner.cleanup()
    for external in ("http://", "https://", "//cdn", "<link", " src=", "@import", "url(", "innerHTML"):
        assert external not in body
    assert headers["Cache-Control"] == "no-store"
    csp = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    (script,) = re.findall(r"<script>(.*?)</script>", body, re.S)
    (style,) = re.findall(r"<style>(.*?)</style>", body, re.S)

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert csp["script-src"] == digest(script) and csp["style-src"] == digest(style)
    assert csp["connect-src"] == "'self'" and csp["frame-ancestors"] == "'none'" and csp["form-action"] == "'none'"
    # The token field has no name: even a form submitted without the script could not put it in a URL.
    assert re.search(r'<input id="token" type="password"(?![^>]*name=)[^>]*>', body)


# -- what an operator sees, in real headless Chromium


@dataclass
class ControlCall:
    path: str
    authorization: str | None
    body: bytes
    status: int


class ThreadedDashboard:
    """The real HTTP app on its own loop thread (the CDP harness blocks the test's thread), with test controls.

    The controls are plain callables that change what /status reports, standing in for the daemon's own.
    """

    def __init__(self, *, token: str = TOKEN, hub: bool = True) -> None:
        self.st = Status("9.9-test")
        self.hub = OverlayHub() if hub else None
        self.paused = False
        self.outputs: dict[str, dict[str, Any]] = {
            "Captions JA": {"language": "ja", "visible": True},
            "Captions EN": {"language": "en", "visible": True},
        }
        self.cleared: list[str | None] = []
        self.calls: list[ControlCall] = []
        self.st.control = lambda: {"paused": self.paused, "outputs": json.loads(json.dumps(self.outputs))}
        self.st.languages_available = ("en", "ja", "ko", "zh")
        for lang in ("ja", "en"):
            self.st.language(lang)
        if self.hub is not None:
            self.hub.set_languages(["ja", "en"])
        controls: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "pause": self._pause,
            "resume": self._resume,
            "clear": self._clear,
            "language": self._language,
            "show": self._show,
            "hide": self._hide,
        }
        app = http.make_app(self.st, self.hub, controls, token)
        app.on_response_prepare.append(self._record)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="dashboard-http", daemon=True)
        self.thread.start()
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.port = self.run(self._start())

    async def _start(self) -> int:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return int(self.runner.addresses[0][1])

    async def _record(self, request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/control/"):
            body = await request.read()  # already read by the handler: the cached bytes
            self.calls.append(ControlCall(request.path, request.headers.get("Authorization"), body, response.status))

    def _pause(self, body: dict[str, Any]) -> dict[str, Any]:
        self.paused = True
        return {"paused": True}

    def _resume(self, body: dict[str, Any]) -> dict[str, Any]:
        self.paused = False
        return {"paused": False}

    def _clear(self, body: dict[str, Any]) -> dict[str, Any]:
        self.cleared.append(body.get("output"))
        return {}

    def _language(self, body: dict[str, Any]) -> dict[str, Any]:
        self.outputs[body["output"]]["language"] = body["language"]
        return {}

    def _show(self, body: dict[str, Any]) -> dict[str, Any]:
        self.outputs[body["output"]]["visible"] = True
        return {}

    def _hide(self, body: dict[str, Any]) -> dict[str, Any]:
        self.outputs[body["output"]]["visible"] = False
        return {}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=15)

    def call(self, fn: Callable[[], None]) -> None:
        """Run fn on the loop thread, where the daemon changes its state (never under a /status read)."""

        async def go() -> None:
            fn()

        self.run(go())

    def caption(self, language: str, text: str, final: bool = True) -> None:
        """What the daemon's on_caption does for the dashboard: the overlay hub and /status's outputs."""

        def go() -> None:
            if self.hub is not None:
                self.hub.publish(language, "final" if final else "partial", text)
            if final:
                self.st.record_final(language, text)
            else:
                self.st.language(language).last_partial = text

        self.call(go)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def close(self) -> None:
        self.run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def server() -> Iterator[ThreadedDashboard]:
    srv = ThreadedDashboard()
    yield srv
    srv.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Browser]:
    browser.dialogs.clear()
    browser.exceptions.clear()
    yield browser
    assert browser.exceptions == []
    assert browser.dialogs == []
    browser.navigate("about:blank")  # stops the page's polls and streams before its server goes


def polls(b: Browser) -> int:
    return int(b.evaluate("Number(document.documentElement.dataset.polls || 0)"))


def open_dashboard(b: Browser, srv: ThreadedDashboard) -> None:
    b.navigate(srv.url)
    b.evaluate("sessionStorage.clear()")
    b.wait_for("document.getElementById('conn').textContent === 'live'", timeout_s=10)


def next_poll(b: Browser) -> None:
    """Wait until the page has read /status at least once more (a change made before this call is shown)."""
    seen = polls(b)
    b.wait_for(f"Number(document.documentElement.dataset.polls) >= {seen + 2}", timeout_s=10)


def text(b: Browser, selector: str) -> str:
    return str(b.evaluate(f"document.querySelector({json.dumps(selector)}).innerText"))


def wait_text(b: Browser, selector: str, expected: str, timeout_s: float = 10.0) -> None:
    js = f"document.querySelector({json.dumps(selector)})?.innerText"
    deadline = time.monotonic() + timeout_s
    while (shown := b.evaluate(js)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} shows {shown!r}, expected {expected!r}")
        time.sleep(0.05)


def click(b: Browser, selector: str) -> None:
    """A real mouse click in the middle of the element; fails when it is hidden or something else is on top."""
    box = b.evaluate(f"""(() => {{
      const e = document.querySelector({json.dumps(selector)});
      e.scrollIntoView({{block: 'center'}});
      const r = e.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
      return {{x, y, hit: r.width > 0 && r.height > 0 && e.contains(document.elementFromPoint(x, y))}};
    }})()""")
    assert box["hit"], f"{selector} is not visible to click"
    for kind in ("mousePressed", "mouseReleased"):
        event = {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1}
        b.send("Input.dispatchMouseEvent", event)


def enter_token(b: Browser, token: str) -> None:
    click(b, "#token")
    b.send("Input.insertText", {"text": token})
    click(b, "#token-form button[type=submit]")


def visible(b: Browser, selector: str) -> bool:
    return bool(b.evaluate(f"document.querySelector({json.dumps(selector)}).getClientRects().length > 0"))


LINKS = """Object.fromEntries([...document.querySelectorAll('#links li')].map((li) => {
  const s = li.querySelector('.state');
  return [li.dataset.link, [s.textContent, getComputedStyle(s).color, li.querySelector('.err').textContent]];
}))"""
METER = """(() => { const m = document.getElementById('meter'), b = document.getElementById('meter-bar');
  return [b.getBoundingClientRect().width / m.clientWidth, document.getElementById('level-text').textContent]; })()"""


def wait_meter(b: Browser, fraction: float, label: str) -> None:
    """The bar settles at `fraction` of the meter (it glides there) and the label reads `label`."""
    deadline = time.monotonic() + 10
    while True:
        width, shown = b.evaluate(METER)
        if abs(width - fraction) < 0.01 and shown == label:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"meter at {width:.3f} with {shown!r}, expected {fraction:.3f} with {label!r}")
        time.sleep(0.05)


def captions(b: Browser, lang: str) -> list[str]:
    got = b.evaluate(f"[...document.querySelectorAll('.lang[data-lang={lang}] li')].map((e) => e.textContent)")
    return list(got)


def wait_captions(b: Browser, lang: str, expected: list[str], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (shown := captions(b, lang)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{lang} shows {shown!r}, expected {expected!r}")
        time.sleep(0.05)


@pytest.mark.e2e
def test_links_level_gate_cost_and_latency_are_shown(page: Browser, server: ThreadedDashboard) -> None:
    st = server.st

    def fill() -> None:
        st.link("audio").set(LinkState.CONNECTED)
        st.link("obs").set(LinkState.FAILED, "connection refused <oops>")
        st.link("translator:ja").set(LinkState.RECONNECTING, "server closed the socket")
        st.metrics.audio_level.set(0.1)  # -20 dBFS: two thirds of the -60..0 dBFS bar
        st.audio_gate = lambda: {"state": "held", "held_by": ["budget", "obs_not_live"]}
        st.cost = lambda: {
            "currency": "CNY",
            "per_stream": 5.0,
            "per_day": None,
            "stream_spent": 0.0456,
            "day_spent": 0.1234,
            "total_spent": 0.1234,
            "reached": None,
        }
        for seconds in (0.003, 0.004, 0.03):
            st.metrics.final_to_screen_seconds.observe(seconds)

    server.call(fill)
    open_dashboard(page, server)
    links = page.evaluate(LINKS)
    assert links["audio"][0] == "connected" and links["audio"][2] == ""
    assert links["obs"][0] == "failed" and links["obs"][2] == "connection refused <oops>"
    assert links["translator:ja"][0] == "reconnecting" and links["translator:ja"][2] == "server closed the socket"
    assert len({links[n][1] for n in ("audio", "obs", "translator:ja")}) == 3  # three states, three colours
    wait_meter(page, 2 / 3, "-20 dBFS")
    assert text(page, "#gate") == "held (budget, obs_not_live)"
    assert text(page, "#version") == "v9.9-test"
    cost = text(page, "#cost")
    assert "Total so far\n0.1234 CNY" in cost and "This stream\n0.0456 CNY of 5.0000 CNY" in cost
    assert "Today\n0.1234 CNY" in cost
    assert not visible(page, "#budget-reached")
    p50 = json.loads(page.evaluate("fetch('status').then((r) => r.text())"))["latency"]["final_to_screen"]["p50_s"]
    latency = text(page, "#latency")
    assert f"Final → on screen\nmedian ≈ {round(p50 * 1000)} ms" in latency and "(3)" in latency
    assert "Capture → sent\nno samples yet" in latency

    def move() -> None:
        st.metrics.audio_level.set(1.0)
        st.link("obs").set(LinkState.CONNECTED)
        st.cost = lambda: {"currency": "CNY", "per_stream": 5.0, "per_day": None, "stream_spent": 5.01,
                           "day_spent": 5.01, "total_spent": 5.01, "reached": "stream"}  # fmt: skip

    server.call(move)
    next_poll(page)
    wait_meter(page, 1.0, "0 dBFS")
    assert page.evaluate(LINKS)["obs"][:1] == ["connected"]
    assert visible(page, "#budget-reached") and "stream budget is reached" in text(page, "#budget-reached")
    server.call(lambda: st.metrics.audio_level.set(0.0))
    wait_meter(page, 0.0, "silence")
    server.call(lambda: st.metrics.audio_level.set(0.5))
    wait_meter(page, 1 - 6.02 / 60, "-6 dBFS")
    # The device is lost: the last level captured is stale, the meter must not keep showing it.
    server.call(lambda: st.link("audio").set(LinkState.RECONNECTING, "device vanished"))
    wait_meter(page, 0.0, "no input (audio reconnecting)")


@pytest.mark.e2e
def test_recent_captions_per_language_last_five_escaped(page: Browser, server: ThreadedDashboard) -> None:
    server.caption("ja", "前の字幕")  # before the page opens: the stream's replay brings it
    open_dashboard(page, server)
    wait_captions(page, "ja", ["前の字幕"])
    assert page.evaluate("document.querySelector('.lang[data-lang=ja] ol').getAttribute('aria-live')") == "polite"
    evil = ["<b>x</b>", '<img src=x onerror="alert(1)">', "a & b", "four", "five", "six"]
    for line in evil:
        server.caption("ja", line)
    wait_captions(page, "ja", evil[-RECENT_FINALS:])
    # A new final is appended (a screen reader then reads just it), the lines already there stay as they are.
    page.evaluate("document.querySelector('.lang[data-lang=ja] li:last-child').dataset.mark = 'kept'")
    server.caption("ja", "seven")
    wait_captions(page, "ja", [*evil, "seven"][-RECENT_FINALS:])
    assert page.evaluate("document.querySelector('.lang[data-lang=ja] li:nth-last-child(2)').dataset.mark") == "kept"
    server.caption("en", "<b>x</b>")
    server.caption("en", "partial words", final=False)
    wait_captions(page, "en", ["<b>x</b>"])
    wait_text(page, ".lang[data-lang=en] .partial", "partial words")
    assert page.evaluate("document.querySelectorAll('#captions b, #captions img, #captions script').length") == 0
    server.caption("en", "partial words, finished.")
    wait_captions(page, "en", ["<b>x</b>", "partial words, finished."])
    assert text(page, ".lang[data-lang=en] .partial") == ""


@pytest.mark.e2e
def test_without_the_overlay_captions_follow_status_and_say_what_was_missed(page: Browser) -> None:
    srv = ThreadedDashboard(hub=False)  # no event stream to subscribe to: /status is all there is
    try:
        srv.caption("ja", "firs", final=False)
        srv.caption("ja", "first")  # /status still says last_partial "firs"
        open_dashboard(page, srv)
        wait_captions(page, "ja", ["first"])
        next_poll(page)

        def three() -> None:  # in one go on the daemon's loop: all between two polls
            for line in ("second", "third", "fourth"):
                srv.st.record_final("ja", line)

        srv.call(three)
        wait_captions(page, "ja", ["first", "… 2 more not shown", "fourth"])
        assert text(page, ".lang[data-lang=ja] .partial") == ""  # /status's last_partial may be long stale
    finally:
        page.navigate("about:blank")
        srv.close()


@pytest.mark.e2e
def test_demo_banner_only_while_status_says_demo(page: Browser, server: ThreadedDashboard) -> None:
    open_dashboard(page, server)
    assert not visible(page, "#demo")
    server.call(lambda: setattr(server.st, "demo", True))
    page.wait_for("document.getElementById('demo').getClientRects().length > 0", timeout_s=10)
    assert text(page, "#demo") == "DEMO — captions come from a built-in stand-in, not the real translator"
    server.call(lambda: setattr(server.st, "demo", False))
    page.wait_for("document.getElementById('demo').getClientRects().length === 0", timeout_s=10)


@pytest.mark.e2e
def test_pause_and_resume_with_the_token(page: Browser, server: ThreadedDashboard) -> None:
    open_dashboard(page, server)
    wait_text(page, "#run-state", "running")
    click(page, "#pause")  # no token yet: nothing is sent
    wait_text(page, "#control-msg", "Enter the control token first (http.token in the daemon's config).")
    assert server.calls == []
    enter_token(page, TOKEN)
    assert page.evaluate("sessionStorage.getItem('captioner.token')") == TOKEN
    assert page.evaluate("document.getElementById('token').value") == ""  # not left in the field
    click(page, "#pause")
    wait_text(page, "#run-state", "paused")
    assert server.paused
    assert [(c.path, c.authorization, c.status) for c in server.calls] == [("/control/pause", f"Bearer {TOKEN}", 200)]
    assert text(page, "#control-msg") == "Done: pause."
    assert page.evaluate("[document.getElementById('pause').disabled, document.getElementById('resume').disabled]") == [
        True,
        False,
    ]
    click(page, "#resume")
    wait_text(page, "#run-state", "running")
    assert [c.path for c in server.calls] == ["/control/pause", "/control/resume"]
    assert TOKEN not in page.evaluate("location.href + document.body.innerText")


@pytest.mark.e2e
def test_a_wrong_token_shows_the_401_message(page: Browser, server: ThreadedDashboard) -> None:
    open_dashboard(page, server)
    enter_token(page, "not-the-token")
    click(page, "#pause")
    wait_text(
        page, "#control-msg", "Wrong control token (401): the daemon refused it. Enter the token from http.token again."
    )
    assert [(c.authorization, c.status) for c in server.calls] == [("Bearer not-the-token", 401)]
    assert not server.paused and text(page, "#run-state") == "running"
    assert page.evaluate("sessionStorage.getItem('captioner.token')") is None  # asks again instead of retrying it
    assert text(page, "#token-state") == "no token set"


@pytest.mark.e2e
def test_control_off_shows_the_403_message(page: Browser) -> None:
    srv = ThreadedDashboard(token="")
    try:
        open_dashboard(page, srv)
        enter_token(page, "anything")
        click(page, "#clear-all")
        wait_text(page, "#control-msg", "Control is switched off on this daemon (403): set http.token in its config.")
        assert [c.status for c in srv.calls] == [403] and srv.cleared == []
    finally:
        page.navigate("about:blank")
        srv.close()


@pytest.mark.e2e
def test_output_rows_switch_language_hide_and_clear(page: Browser, server: ThreadedDashboard) -> None:
    open_dashboard(page, server)
    enter_token(page, TOKEN)
    row = "#outputs tr[data-output='Captions JA']"
    wait_text(page, f"{row} td:nth-child(3)", "shown")
    options = page.evaluate(f'[...document.querySelectorAll("{row} option")].map((o) => o.value)')
    assert options == ["ja", "en", "ko", "zh"]
    # Picking from the menu as a user does: focus, choose, and the change event fires.
    page.evaluate(f"""(() => {{ const s = document.querySelector("{row} select");
      s.focus(); s.value = 'ko'; s.dispatchEvent(new Event('change')); }})()""")
    page.wait_for(f"document.querySelector(\"{row} select\").value === 'ko' && "
                  "document.getElementById('control-msg').textContent === 'Done: language.'", timeout_s=10)  # fmt: skip
    assert server.outputs["Captions JA"]["language"] == "ko"
    click(page, f"{row} button[aria-label='Hide Captions JA']")
    wait_text(page, f"{row} td:nth-child(3)", "hidden")
    click(page, f"{row} button[aria-label='Show Captions JA']")
    wait_text(page, f"{row} td:nth-child(3)", "shown")
    click(page, f"{row} button[aria-label='Clear Captions JA']")
    page.wait_for("document.getElementById('control-msg').textContent === 'Done: clear.'", timeout_s=10)
    click(page, "#clear-all")
    deadline = time.monotonic() + 10
    while len(server.calls) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    bodies = [(c.path, json.loads(c.body) if c.body else None) for c in server.calls]
    assert bodies == [
        ("/control/language", {"output": "Captions JA", "language": "ko"}),
        ("/control/hide", {"output": "Captions JA"}),
        ("/control/show", {"output": "Captions JA"}),
        ("/control/clear", {"output": "Captions JA"}),
        ("/control/clear", None),  # no body: every output
    ]
    assert server.cleared == ["Captions JA", None]
    assert {c.authorization for c in server.calls} == {f"Bearer {TOKEN}"}


@pytest.mark.e2e
def test_an_unreachable_daemon_is_shown(page: Browser) -> None:
    srv = ThreadedDashboard()
    try:
        open_dashboard(page, srv)
        srv.run(srv.runner.cleanup())
        wait_text(page, "#conn", "daemon unreachable")
    finally:
        page.navigate("about:blank")
        srv.loop.call_soon_threadsafe(srv.loop.stop)
        srv.thread.join(5)
        srv.loop.close()


@pytest.mark.e2e
def test_youtube_and_webhook_outputs_have_a_small_section_only_when_configured(
    page: Browser, server: ThreadedDashboard
) -> None:
    open_dashboard(page, server)
    assert not visible(page, "#posts-card")
    row = {"posted": 4, "retried": 3, "failed": 3, "skipped": 1, "queued": 0, "last_answer": {"status": 200}}
    posts = {
        "youtube:ja": {**row, "ok": True, "last_error": None, "warning": "this computer's clock is 2.0 s behind <b>"},
        "webhook:source": {**row, "ok": False, "queued": 2, "last_answer": None, "last_error": "HTTP 503"},
    }
    server.call(lambda: setattr(server.st, "post_outputs", lambda: posts))
    next_poll(page)
    assert visible(page, "#posts-card")
    shown = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#posts li')].map((li) => "
        "[li.dataset.post, [...li.children].map((c) => c.textContent)]))"
    )
    assert shown == {
        "youtube:ja": [
            "youtube:ja",
            "ok",
            "posted 4, retried 3, failed 3, skipped 1, waiting 0; last answer 200",
            "this computer's clock is 2.0 s behind <b>",  # text, never markup
        ],
        "webhook:source": [
            "webhook:source",
            "failing",
            "posted 4, retried 3, failed 3, skipped 1, waiting 2",
            "HTTP 503",
        ],
    }
