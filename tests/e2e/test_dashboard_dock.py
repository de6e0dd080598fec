"""The dashboard as an OBS custom browser dock: in a narrow real Chromium viewport, one column, nothing off screen."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from captioner.status import LinkState
from tests.support.browser import Browser
from tests.support.dashboard_harness import TOKEN, ThreadedDashboard, click, enter_token, open_dashboard, wait_text

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

# Every element a user reads or works in the dock, with what is wide in it (long names, errors, captions).
CONTROLS = "#token, #token-form button[type=submit], #pause, #resume, #clear-all, #outputs select, #outputs button"
# Elements whose right edge is past the viewport (or that have no box at all): each would need a sideways scroll.
OFF_SCREEN = f"""[...document.querySelectorAll({CONTROLS!r} + ', section.card, #links li, #posts li')]
  .filter((e) => {{ const r = e.getBoundingClientRect();
                    return r.width === 0 || r.left < 0 || r.right > window.innerWidth + 0.5; }})
  .map((e) => e.id || e.tagName + '.' + (e.parentElement.dataset.output || e.className))"""


@pytest.fixture
def server() -> Iterator[ThreadedDashboard]:
    srv = ThreadedDashboard()
    srv.outputs["Captions with a long OBS source name for the Korean stream"] = {"language": "ko", "visible": False}
    yield srv
    srv.close()


@pytest.fixture
def dock(browser: Browser) -> Iterator[Browser]:
    browser.exceptions.clear()
    yield browser
    assert browser.exceptions == []
    browser.send("Emulation.clearDeviceMetricsOverride")
    browser.navigate("about:blank")


def fill(server: ThreadedDashboard) -> None:
    def go() -> None:
        st = server.st
        st.link("audio").set(LinkState.CONNECTED)
        st.link("translator:ja").set(LinkState.RECONNECTING, "server closed the socket: " + "x" * 120)
        st.link("obs").set(LinkState.RECONNECTING, "nothing answers at 127.0.0.1:4455 (ConnectionRefusedError)")
        row = {"posted": 4, "retried": 3, "failed": 3, "skipped": 1, "queued": 0, "last_answer": {"status": 200}}
        st.post_outputs = lambda: {"youtube:ja": {**row, "ok": True, "last_error": None, "warning": None}}

    server.call(go)
    server.caption("ja", "日本語の字幕がここに出ます。" * 6)
    server.caption("en", "A long caption line without many breaks " * 4)


@pytest.mark.parametrize("width", [300, 400])
def test_the_dashboard_fits_a_narrow_dock(dock: Browser, server: ThreadedDashboard, width: int) -> None:
    dock.send(
        "Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    )
    fill(server)
    open_dashboard(dock, server)
    dock.wait_for("document.querySelectorAll('#outputs tr').length === 3 && !!document.querySelector('#posts li')")
    assert dock.evaluate("window.innerWidth") == width
    widths = dock.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth]")
    assert max(widths) <= width, f"the page is {max(widths)} px wide in a {width} px dock: it scrolls sideways"
    assert dock.evaluate(OFF_SCREEN) == []
    # One column: the cards sit one under the other, each as wide as the others.
    lefts = dock.evaluate(
        "[...new Set([...document.querySelectorAll('main > section.card, main > .stack')]"
        ".map((e) => Math.round(e.getBoundingClientRect().left)))]"
    )
    assert len(lefts) == 1, f"cards side by side at {lefts}"
    # In a dock the controls come first, pause within the first screenful.
    top = "[...document.querySelectorAll('main > section.card, main > .stack')].filter((e) => e.offsetParent)"
    top += ".sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)[0].id"
    assert dock.evaluate(top) == "control-card"
    assert dock.evaluate("document.getElementById('pause').getBoundingClientRect().bottom") < 600
    # The controls work where they are: a real click on each of them hits it.
    enter_token(dock, TOKEN)
    click(dock, "#pause")
    wait_text(dock, "#run-state", "paused")
    click(dock, "#outputs tr:last-child button[aria-label^='Show']")
    dock.wait_for("document.querySelector('#outputs tr:last-child td:nth-child(3)').textContent === 'shown'")
