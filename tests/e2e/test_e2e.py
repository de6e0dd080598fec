"""End to end: espeak-ng speech -> PulseAudio -> `captioner run` (loopback) -> fake translator -> real OBS."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import Browser
from tests.support.daemonproc import DaemonProc, TextRecorder
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.procs import free_port
from tests.support.pulse_env import PulseEnv
from tests.support.speech import silence_padded_sequence, speech_wav

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

KEY = "sk-e2e-very-secret-key"
PHRASES = [
    "Hello everyone and welcome to the stream",
    "Today we are going to build a castle",
    "Thank you all for watching",
]
LAST_PHRASE = "This sentence is cut short by a stop signal while it is still being spoken"
# The fake answers these in Japanese; the second puts "。" right after a full line, where a naive wrap would
# start the next line with it (kinsoku forbids that: "る" is pulled down with it).
JAPANESE = {
    PHRASES[0]: "皆さん、こんにちは。配信へようこそ！",
    PHRASES[1]: "今日はみんなで大きなお城を作る。",
    PHRASES[2]: "ご視聴ありがとうございました。",
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTranslator]:
    server = FakeTranslator(api_key=KEY, script=[*PHRASES, LAST_PHRASE], renderings={"ja": JAPANESE})
    server.start_in_thread()
    yield server
    server.stop_thread()


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("speech")
    return {
        "three": silence_padded_sequence(PHRASES, 2.0, d / "three.wav"),
        "last": speech_wav(LAST_PHRASE, d / "last.wav"),
    }


def config(fake: FakeTranslator, obs: ObsEnv | None, obs_port: int | None = None) -> dict[str, Any]:
    return {
        "audio": {"device": "loopback"},
        "translator": {
            "url": fake.url,
            "model": "qwen3.5-livetranslate-flash-realtime",
            "api_key": "${DASHSCOPE_API_KEY}",
            "source_language": "en",
            "targets": ["ja", "zh"],
            "transcribe_source": True,
        },
        "obs": {
            "host": "127.0.0.1",
            "port": obs.ws_port if obs else obs_port,
            "password": "${OBS_WEBSOCKET_PASSWORD}",
            "timeout_s": 2,
        },
        # Narrow lines so the captions visibly wrap and roll; a clear soon after the speech stops.
        "layout": {"max_width": 30, "max_lines": 2, "min_display_s": 0.5, "clear_after_s": 7},
        "outputs": [
            {"obs_source": "E2E Captions JA", "language": "ja"},
            {"obs_source": "E2E Captions ZH", "language": "zh", "layout": {"max_width": 42, "live": True}},
            {"obs_source": "E2E Captions EN", "language": "source", "layout": {"max_width": 42}},
            # Bilingual: each translation under its own source sentence, one line each.
            {
                "obs_source": "E2E Captions JA+EN",
                "language": "ja",
                "with_source": True,
                "layout": {"max_width": 42, "max_lines": 1},
            },
        ],
    }


# What each OBS source shows after each phrase: wrapped to its width, newest line at the bottom (written out by hand).
JA_SCREENS = [  # 30 columns = 15 Japanese characters
    "皆さん、こんにちは。配信へよう\nこそ！",
    "今日はみんなで大きなお城を作\nる。",
    "る。\nご視聴ありがとうございました。",
]
ZH_SCREENS = [
    "[zh] Hello everyone and welcome to the\nstream",
    "stream\n[zh] Today we are going to build a castle",
    "[zh] Today we are going to build a castle\n[zh] Thank you all for watching",
]
EN_SCREENS = [
    "Hello everyone and welcome to the stream",
    "Hello everyone and welcome to the stream\nToday we are going to build a castle",
    "Today we are going to build a castle\nThank you all for watching",
]


def test_speech_becomes_captions_in_obs_and_sigterm_delivers_the_last(
    obs: ObsEnv, pulse_env: PulseEnv, fake: FakeTranslator, speech: dict[str, Path], tmp_path: Path
) -> None:
    env = pulse_env.child_env(DASHSCOPE_API_KEY=KEY, OBS_WEBSOCKET_PASSWORD=obs.password)
    daemon = DaemonProc(tmp_path, config(fake, obs), env).start()
    sources = ["E2E Captions JA", "E2E Captions ZH", "E2E Captions EN", "E2E Captions JA+EN"]
    try:
        daemon.wait_connected("audio", "obs", "translator:ja", "translator:zh")
        # the daemon created the missing text sources in the program scene
        scene = obs.client().send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"]
        items = obs.client().send("GetSceneItemList", {"sceneName": scene}, raw=True)["sceneItems"]
        assert set(sources) <= {i["sourceName"] for i in items}

        with TextRecorder(obs, sources) as rec, Browser() as browser:
            # The browser-source overlay, as OBS would load it, follows the same captions. Room for 6 lines: with a
            # real CJK font each Japanese caption wraps to 2 lines in the 780 px page, and all 3 must stay up.
            browser.navigate(f"http://127.0.0.1:{daemon.http_port}/overlay?lang=ja&lines=6&clear=0&partials=0")
            pulse_env.play(speech["three"])
            ja = rec.wait_for("E2E Captions JA", 3, 20)
            en = rec.wait_for("E2E Captions EN", 3, 5)
            both = rec.wait_for("E2E Captions JA+EN", 3, 5)
            overlay = browser.wait_for(
                f"(() => {{ const c = {OVERLAY_CAPTIONS}; return c.length === 3 && c; }})()", timeout_s=10
            )
            assert overlay == list(JAPANESE.values())
            daemon.wait(lambda: rec.seen["E2E Captions ZH"][-1:] == ZH_SCREENS[-1:], 5, "the last zh caption")
            zh = list(rec.seen["E2E Captions ZH"])
            # Silence: every source clears after clear_after_s, not before.
            try:
                daemon.wait(lambda: all(obs.text_of(s) == "" for s in sources), 15, "the sources to clear")
            except AssertionError as e:
                shown = {s: obs.text_of(s) for s in sources}
                raise AssertionError(f"OBS shows {shown}; /status screens {daemon.status()['screens']}") from e
        assert ja == JA_SCREENS
        assert en == EN_SCREENS
        assert both == [f"{p}\n{JAPANESE[p]}" for p in PHRASES]  # never a translation under the wrong sentence
        # Live captions: the growing text shows before each final, and the final replaces it; after a final
        # appears, no older partial text ever comes back.
        finals_at = [zh.index(screen) for screen in ZH_SCREENS]
        assert finals_at == sorted(finals_at), zh
        assert finals_at[0] > 0, f"no live text before the first final: {zh}"
        partials = [v for v in zh if v not in ZH_SCREENS]
        assert any(v.startswith("[zh] Hello") and "stream" not in v for v in partials), zh
        for i, at in enumerate(finals_at):
            older = {v for v in zh[:at] if v not in ZH_SCREENS}
            assert not older & set(zh[at + 1 :]), f"partial text came back after final {i}: {zh}"

        # what the operator sees
        status = daemon.status()
        assert status["outputs"]["ja"]["final_count"] == 3
        assert status["outputs"]["ja"]["last_final"] == JAPANESE[PHRASES[-1]]
        assert status["outputs"]["source"]["last_final"] == PHRASES[-1]
        code, metrics = daemon.get("/metrics")
        assert code == 200
        assert re.search(r'^captioner_captions_final_total\{language="zh"\} 3\.0$', metrics, re.M)
        assert re.search(r'^captioner_link_up\{link="obs"\} 1\.0$', metrics, re.M)
        sent = re.search(r'^captioner_audio_sent_seconds_total\{input="",target="ja"\} ([0-9.e+]+)$', metrics, re.M)
        assert sent and float(sent.group(1)) > 5
        for name in [n for n in set(re.findall(r"^([a-z_]+)", metrics, re.M))]:
            assert name.startswith("captioner_"), name

        # SIGTERM in the middle of a sentence: the sentence still reaches OBS, then a clean exit
        player = pulse_env.play_async(speech["last"])
        daemon.wait(
            lambda: (daemon.status()["outputs"]["ja"]["last_partial"] or "").startswith("[ja] This"),
            10,
            "the last phrase to be under way",
        )
        assert player.poll() is None, "the phrase should still be playing when the stop arrives"
        assert daemon.stop(signal.SIGTERM) == 0
        # The stop shows the caption's last lines at once instead of waiting for its scroll.
        assert obs.text_of("E2E Captions JA") == "short by a stop signal while\nit is still being spoken"
        assert obs.text_of("E2E Captions ZH") == (
            "[zh] This sentence is cut short by a stop\nsignal while it is still being spoken"
        )
        for conn in fake.connections:
            if conn.session_update and conn.session_update["translation"]["language"] in ("ja", "zh"):
                assert conn.audio_before_update_bytes == 0
        finished = [c for c in fake.connections if c.finished]
        assert len(finished) >= 2, "each session sent session.finish"
    finally:
        daemon.kill()
        log = daemon.log()
    assert KEY not in log and obs.password not in log
    assert "captioning" in log or "capturing from" in log


OVERLAY_CAPTIONS = "[...document.querySelectorAll('#captions .caption')].map((e) => e.textContent)"


def test_runs_and_reports_without_obs_and_with_a_wrong_key(
    pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    cfg = config(fake, None, obs_port=free_port())
    env = pulse_env.child_env(DASHSCOPE_API_KEY="sk-wrong-key-1234", OBS_WEBSOCKET_PASSWORD="pw-secret-5678")
    daemon = DaemonProc(tmp_path, cfg, env).start()
    try:
        daemon.wait(lambda: daemon.link_state("translator:ja") == "auth_failed", 20, "auth_failed")
        daemon.wait(lambda: daemon.link_state("obs") == "reconnecting", 20, "obs reconnecting")
        # The capture opens on its own, unhurried by the other two failing (under load it may finish after them).
        daemon.wait(lambda: daemon.link_state("audio") == "connected", 20, "audio captured all the same")
        status = daemon.status()
        assert "401" in status["links"]["translator:ja"]["last_error"]
        assert status["links"]["audio"]["state"] == "connected"
        assert daemon.get("/healthz")[0] == 200
        body = daemon.get("/status")[1] + daemon.get("/metrics")[1]
        assert "sk-wrong-key-1234" not in body and "pw-secret-5678" not in body
        assert daemon.stop(signal.SIGINT) == 0
    finally:
        daemon.kill()
    log = daemon.log()
    assert "sk-wrong-key-1234" not in log and "pw-secret-5678" not in log
    assert "auth failed" in log
