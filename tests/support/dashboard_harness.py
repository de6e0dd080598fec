"""The dashboard in real headless Chromium: the HTTP app on its own thread with test controls, and page helpers."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from captioner.status import Status
from captioner.web import server as http
from captioner.web.overlay import OverlayHub
from tests.support.browser import Browser

T = TypeVar("T")
TOKEN = "s3cret-token"


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
        self.speaks: dict[str, str] = {"Host": "en", "Guests": "ja"}
        self.st.control = lambda: {
            "paused": self.paused,
            "outputs": json.loads(json.dumps(self.outputs)),
            "source_languages": dict(self.speaks),
        }
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
            "source_language": self._source_language,
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

    def _source_language(self, body: dict[str, Any]) -> dict[str, Any]:
        self.speaks[body["input"]] = body["language"]
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
