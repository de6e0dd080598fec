"""End to end: the estimated bill in /metrics and /status, a day budget that pauses captioning, and a resume."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable
from pathlib import Path
from urllib.request import Request, urlopen

import pytest

from tests.support.daemonproc import DaemonProc
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.speech import speech_wav

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
KEY = "sk-budget-key"
TOKEN = "control-token-123456"


@pytest.fixture
def fake(threaded_fake: Callable[..., FakeTranslator]) -> FakeTranslator:
    return threaded_fake(api_key=KEY)


def post(daemon: DaemonProc, path: str, token: str) -> tuple[int, dict[str, object]]:
    req = Request(f"http://127.0.0.1:{daemon.http_port}{path}", method="POST")
    req.add_header("Authorization", f"Bearer {token}")
    try:
        with urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except OSError as e:
        return getattr(e, "code", 0), {}


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
    assert found, name
    return float(found.group(1))


def test_day_budget_pauses_and_resumes_on_request(
    obs: ObsEnv, pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    phrase = speech_wav("Good evening and welcome to the show", tmp_path / "p.wav")
    cfg = {
        "audio": {"device": "loopback"},
        "translator": {"url": fake.url, "api_key": "${DASHSCOPE_API_KEY}", "targets": ["ja"]},
        "obs": {"port": obs.ws_port, "password": "${OBS_WEBSOCKET_PASSWORD}", "timeout_s": 2},
        "outputs": [{"obs_source": "E2E Budget JA", "language": "ja"}],
        # 0.1 per audio token: the first utterance alone uses up a budget of 1.
        "cost": {
            "currency": "EUR",
            "prices": {"audio_in": 100_000, "text_out": 0},
            "budget_per_day": 1.0,
            "state_file": str(tmp_path / "state" / "spend.json"),
        },
    }
    env = pulse_env.child_env(DASHSCOPE_API_KEY=KEY, OBS_WEBSOCKET_PASSWORD=obs.password, CONTROL=TOKEN)
    cfg_http = {"token": "${CONTROL}"}
    daemon = DaemonProc(tmp_path, {**cfg, "http": cfg_http}, env)
    daemon.start()
    try:
        daemon.wait(lambda: daemon.link_state("translator:ja") == "connected", 30, "translator connected")
        pulse_env.play(phrase)
        daemon.wait(lambda: daemon.status()["outputs"]["ja"]["final_count"] == 1, 15, "first caption")
        daemon.wait(lambda: (daemon.status()["cost"] or {}).get("reached") == "day", 10, "the budget reached")
        status = daemon.status()
        assert status["cost"]["currency"] == "EUR" and status["cost"]["day_spent"] >= 1.0
        assert "budget" in status["audio_gate"]["held_by"]
        metrics = daemon.get("/metrics")[1]
        assert metric(metrics, r'captioner_cost_estimated_total\{input="",target="ja"\}') >= 1.0
        assert metric(metrics, "captioner_budget_paused") == 1.0
        assert metric(metrics, r'captioner_billed_tokens_total\{input="",kind="audio_in",target="ja"\}') > 0
        sent = metric(metrics, r'captioner_audio_sent_seconds_total\{input="",target="ja"\}')

        pulse_env.play(phrase)  # paused: nothing is sent, nothing is billed, no caption
        assert daemon.status()["outputs"]["ja"]["final_count"] == 1
        later = daemon.get("/metrics")[1]
        assert metric(later, r'captioner_audio_sent_seconds_total\{input="",target="ja"\}') - sent < 3.0  # trailing pad

        assert post(daemon, "/control/budget/resume", "wrong")[0] == 401
        code, body = post(daemon, "/control/budget/resume", TOKEN)
        assert code == 200 and body["reached"] is None
        pulse_env.play(phrase)
        daemon.wait(lambda: daemon.status()["outputs"]["ja"]["final_count"] == 2, 15, "caption after resume")
        assert daemon.stop(signal.SIGTERM) == 0
    finally:
        daemon.kill()
    saved = json.loads((tmp_path / "state" / "spend.json").read_text())
    assert saved["spent"] >= 1.0  # a restart today still counts what was spent
    log = daemon.log()
    assert "day budget of 1.00 EUR reached" in log
    assert TOKEN not in log and KEY not in log
