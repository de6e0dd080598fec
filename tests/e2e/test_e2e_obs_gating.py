"""End to end: audio goes to the (billed) translator only while OBS streams and shows a captioned scene."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.daemonproc import DaemonProc
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.speech import speech_wav

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
KEY = "sk-gating-key"
BRB = "E2E Gating BRB"


@pytest.fixture
def fake(threaded_fake: Callable[..., FakeTranslator]) -> FakeTranslator:
    return threaded_fake(api_key=KEY)


def sent_seconds(daemon: DaemonProc) -> float:
    found = re.search(
        r'^captioner_audio_sent_seconds_total\{input="",target="ja"\} ([0-9.e+-]+)$', daemon.get("/metrics")[1], re.M
    )
    return float(found.group(1)) if found else 0.0


def test_captions_only_while_streaming_and_not_on_brb(
    obs: ObsEnv, pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    phrase = speech_wav("Good evening and welcome to the show", tmp_path / "p.wav")
    c = obs.client()
    home = c.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"]
    if BRB not in {s["sceneName"] for s in c.send("GetSceneList", raw=True)["scenes"]}:
        c.send("CreateScene", {"sceneName": BRB})
    cfg = {
        "audio": {"device": "loopback"},
        "translator": {"url": fake.url, "api_key": "${DASHSCOPE_API_KEY}", "targets": ["ja"]},
        "obs": {"port": obs.ws_port, "password": "${OBS_WEBSOCKET_PASSWORD}", "timeout_s": 2},
        "outputs": [{"obs_source": "E2E Gating JA", "language": "ja"}],
        "gate": {"obs_outputs": ["streaming"], "obs_scenes": [home]},
    }
    env = pulse_env.child_env(DASHSCOPE_API_KEY=KEY, OBS_WEBSOCKET_PASSWORD=obs.password)
    daemon = DaemonProc(tmp_path, cfg, env).start()
    try:
        daemon.wait(lambda: daemon.link_state("obs") == "connected", 30, "obs connected")
        daemon.wait(lambda: "obs_not_live" in daemon.status()["audio_gate"]["held_by"], 10, "held: not live")

        pulse_env.play(phrase)  # OBS is not streaming: nothing is sent or billed
        time.sleep(1.0)
        assert sent_seconds(daemon) == 0.0
        assert daemon.status()["outputs"]["ja"]["final_count"] == 0

        c.start_stream()
        obs.wait_stream(True)
        daemon.wait(lambda: daemon.status()["audio_gate"]["held_by"] == [], 10, "released when live")
        pulse_env.play(phrase)
        daemon.wait(lambda: daemon.status()["outputs"]["ja"]["final_count"] == 1, 15, "a caption while live")
        assert obs.text_of("E2E Gating JA") == "[ja] utterance 1"

        c.send("SetCurrentProgramScene", {"sceneName": BRB})
        daemon.wait(lambda: "obs_scene" in daemon.status()["audio_gate"]["held_by"], 10, "held on BRB")
        time.sleep(2.5)  # the trailing audio after the last words has gone out
        before = sent_seconds(daemon)
        pulse_env.play(phrase)
        time.sleep(1.0)
        assert sent_seconds(daemon) == before
        assert daemon.status()["outputs"]["ja"]["final_count"] == 1
        assert daemon.stop(signal.SIGTERM) == 0
    finally:
        daemon.kill()
        c.send("SetCurrentProgramScene", {"sceneName": home})
        if c.send("GetStreamStatus", raw=True)["outputActive"]:
            c.stop_stream()
            obs.wait_stream(False)
    assert "audio held" in daemon.log()
