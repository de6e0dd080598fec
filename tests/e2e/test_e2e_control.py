"""End to end: live control over HTTP changes what real OBS shows (hide/show, clear, pause/resume, switch language)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest

from tests.support.browser import Browser
from tests.support.daemonproc import DaemonProc
from tests.support.dashboard_harness import click, enter_token
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.speech import speech_wav

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
KEY = "sk-control-key"
TOKEN = "control-token-abcdef"
A, B = "E2E Control A", "E2E Control B"
PHRASES = ["Good evening and welcome", "Tonight we build a castle", "Thanks for watching", "See you soon"]


def post(daemon: DaemonProc, action: str, body: dict[str, Any] | None = None, token: str = TOKEN) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = Request(f"http://127.0.0.1:{daemon.http_port}/control/{action}", data=data, method="POST")
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except OSError as e:
        body_text = e.read().decode() if hasattr(e, "read") else ""
        return getattr(e, "code", 0), json.loads(body_text) if body_text.startswith("{") else body_text


def becomes_true(pred: Callable[[], bool], within: float) -> bool:
    """Whether `pred` turns true within `within` seconds (for things that must NOT happen)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


def test_control_endpoints_change_what_obs_shows(
    obs: ObsEnv, pulse_env: PulseEnv, threaded_fake: Callable[..., FakeTranslator], tmp_path: Path
) -> None:
    fake = threaded_fake(api_key=KEY, script=PHRASES)
    phrase = speech_wav("Good evening and welcome to the show", tmp_path / "p.wav")
    cfg = {
        "audio": {"device": "loopback"},
        "translator": {"url": fake.url, "api_key": "${DASHSCOPE_API_KEY}", "targets": ["ja", "zh"]},
        "obs": {"port": obs.ws_port, "password": "${OBS_WEBSOCKET_PASSWORD}", "timeout_s": 2},
        "outputs": [{"obs_source": A, "language": "ja"}, {"obs_source": B, "language": "zh"}],
        "layout": {"clear_after_s": 0},  # captions stay, so every change below comes from a control
        "http": {"token": "${CONTROL}"},
    }
    env = pulse_env.child_env(DASHSCOPE_API_KEY=KEY, OBS_WEBSOCKET_PASSWORD=obs.password, CONTROL=TOKEN)
    daemon = DaemonProc(tmp_path, cfg, env).start()

    def finals(lang: str) -> int:
        return int((daemon.status()["outputs"].get(lang) or {}).get("final_count", 0))

    def control() -> dict[str, Any]:
        return dict(daemon.status()["control"])

    try:
        daemon.wait(lambda: daemon.link_state("translator:zh") == "connected", 30, "translators connected")
        pulse_env.play(phrase)
        daemon.wait(lambda: bool(obs.text_of(A)) and bool(obs.text_of(B)), 20, "captions in both sources")
        shown_a, shown_b = obs.text_of(A), obs.text_of(B)
        assert shown_a and shown_a.startswith("[ja]") and shown_b and shown_b.startswith("[zh]")

        # Hide B: its source goes blank while A keeps its caption; show B: its caption comes back.
        assert post(daemon, "hide", {"output": B})[0] == 200
        daemon.wait(lambda: obs.text_of(B) == "", 10, "B hidden")
        assert obs.text_of(A) == shown_a
        assert control()["outputs"][B] == {"language": "zh", "visible": False}
        assert daemon.status()["screens"][B] == ""
        assert post(daemon, "show", {"output": B})[0] == 200
        daemon.wait(lambda: obs.text_of(B) == shown_b, 10, "B shown again")
        assert control()["outputs"][B]["visible"] is True

        # Clear A only.
        assert post(daemon, "clear", {"output": A})[0] == 200
        daemon.wait(lambda: obs.text_of(A) == "", 10, "A cleared")
        assert obs.text_of(B) == shown_b

        # Pause: speech is not sent, so no caption; resume: captions again.
        code, body = post(daemon, "pause")
        assert code == 200 and body["paused"] is True
        status = daemon.status()
        assert status["control"]["paused"] is True and "paused" in status["audio_gate"]["held_by"]
        before = finals("ja")
        pulse_env.play(phrase)
        # The segment that was in flight may still end; nothing new is heard while paused.
        assert not becomes_true(lambda: finals("ja") > before, within=4.0)
        assert obs.text_of(A) == ""
        assert post(daemon, "resume")[1]["paused"] is False
        pulse_env.play(phrase)
        daemon.wait(lambda: finals("ja") > before, 20, "a caption after resume")
        daemon.wait(lambda: (obs.text_of(A) or "").startswith("[ja]"), 10, "A shows ja again")

        # Switch A to Korean: a ko session starts, the ja session (nothing else shows ja) stops.
        code, body = post(daemon, "language", {"output": A, "language": "ko"})
        assert code == 200 and body["outputs"][A]["language"] == "ko"
        daemon.wait(lambda: daemon.link_state("translator:ko") == "connected", 30, "ko session")
        assert "translator:ja" not in daemon.status()["links"] or daemon.link_state("translator:ja") != "connected"
        pulse_env.play(phrase)
        daemon.wait(lambda: (obs.text_of(A) or "").startswith("[ko]"), 20, "A shows Korean")
        assert (obs.text_of(B) or "").startswith("[zh]")

        # The dashboard drives the same endpoints: hiding B there blanks it in OBS, showing it brings it back.
        browser = Browser()
        try:
            browser.navigate(f"http://127.0.0.1:{daemon.http_port}/")
            browser.wait_for("document.getElementById('conn').textContent === 'live'", timeout_s=15)
            enter_token(browser, TOKEN)
            row = f"#outputs tr[data-output='{B}']"
            browser.wait_for(f'document.querySelector("{row}") !== null', timeout_s=10)
            click(browser, f"{row} button[aria-label='Hide {B}']")
            daemon.wait(lambda: obs.text_of(B) == "", 10, "B hidden from the dashboard")
            browser.wait_for(f"document.querySelector(\"{row} button[aria-label='Show {B}']\") !== null", 10)
            click(browser, f"{row} button[aria-label='Show {B}']")
            daemon.wait(lambda: (obs.text_of(B) or "").startswith("[zh]"), 10, "B shown from the dashboard")
            assert browser.exceptions == []
        finally:
            browser.close()

        # Requests that cannot be done are refused with the reason, and change nothing.
        code, body = post(daemon, "language", {"output": A, "language": "xx"})
        assert code == 400 and "'xx' is not a supported language" in body["error"]
        code, body = post(daemon, "hide", {"output": "Nope"})
        assert code == 400 and A in body["error"]
        assert post(daemon, "pause", token="wrong")[0] == 401
        assert control() == {
            "paused": False,
            "outputs": {A: {"language": "ko", "visible": True}, B: {"language": "zh", "visible": True}},
            "source_languages": {"": "en"},  # the single audio: input is unnamed
        }
        assert daemon.stop(signal.SIGTERM) == 0
    finally:
        daemon.kill()
    log = daemon.log()
    assert "captioning paused by the operator" in log and "switched to ko" in log
    assert TOKEN not in log and KEY not in log
