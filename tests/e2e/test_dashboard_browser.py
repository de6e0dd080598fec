"""Dashboard at /: what an operator sees and does, in real headless Chromium."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from captioner.status import LinkState
from captioner.web.dashboard import RECENT_FINALS
from tests.support.browser import Browser
from tests.support.dashboard_harness import (
    LINKS,
    TOKEN,
    ThreadedDashboard,
    click,
    enter_token,
    next_poll,
    open_dashboard,
    text,
    visible,
    wait_captions,
    wait_meter,
    wait_text,
)

pytestmark = pytest.mark.timeout(90)


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


@pytest.mark.e2e
def test_links_level_gate_cost_and_latency_are_shown(page: Browser, server: ThreadedDashboard) -> None:
    st = server.st

    def fill() -> None:
        st.link("audio").set(LinkState.CONNECTED)
        st.link("obs").set(LinkState.FAILED, "connection refused <oops>")
        st.link("translator:ja").set(LinkState.RECONNECTING, "server closed the socket")
        st.metrics.audio_level.set(0.1)  # -20 dBFS: two thirds of the -60..0 dBFS bar
        st.audio_gate = lambda: {
            "state": "held",
            "held_by": ["budget", "obs_not_live"],
            "captured_s": 24.7,
            "speech_s": 9.6,
            "turns": "client",
            "trail_ms": 800,
            "sessions": {"ja": {"sent_s": 11.5, "sent_per_speech": 1.2, "turns": {}}},
        }
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
    billed = text(page, "#billed")
    assert "Captured\n24.7 s" in billed and "Speech\n9.6 s" in billed, billed
    assert "Sentence ends\nby the gate (commit)" in billed and "Sent to ja\n11.5 s (1.20× the speech)" in billed
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
def test_inputs_are_shown_and_one_inputs_language_switches(page: Browser, server: ThreadedDashboard) -> None:
    inputs = {
        "Host": {"device": None, "link": {"state": "connected"}, "audio_level": 0.1, "cost": 0.0123},
        "Guests": {"device": "Discord monitor", "link": {"state": "reconnecting"}, "audio_level": 0.0, "cost": 0},
    }
    server.call(lambda: setattr(server.st, "inputs", lambda: inputs))
    open_dashboard(page, server)
    enter_token(page, TOKEN)
    wait_text(page, "#inputs tr[data-input='Guests'] td:nth-child(2)", "Discord monitor")
    assert text(page, "#inputs tr[data-input='Guests'] td:nth-child(3)") == "reconnecting"
    assert text(page, "#inputs tr[data-input='Host'] td:nth-child(2)") == "default input"
    assert text(page, "#inputs tr[data-input='Host'] td:nth-child(4)") == "-20 dBFS"
    row = "#source-languages tr[data-source-input='Guests']"
    page.evaluate(f"""(() => {{ const s = document.querySelector("{row} select");
      s.focus(); s.value = 'ko'; s.dispatchEvent(new Event('change')); }})()""")
    page.wait_for("document.getElementById('control-msg').textContent === 'Done: source_language.'", timeout_s=10)
    assert [(c.path, json.loads(c.body)) for c in server.calls] == [
        ("/control/source_language", {"input": "Guests", "language": "ko"})
    ]
    page.wait_for(f"document.querySelector(\"{row} select\").value === 'ko'", timeout_s=10)
    assert server.speaks == {"Host": "en", "Guests": "ko"}


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
