"""End to end on qwen3.8 and the newer service options: espeak-ng speech -> PulseAudio -> `captioner run` -> the
strict fake -> real OBS.

* qwen3.8 through the workspace endpoint: the daemon connects to wss://{workspace}.ap-southeast-1.maas.aliyuncs.com
  (through an HTTP CONNECT proxy from the environment, TLS checked against a test CA), sends the nested
  session.update, and the translations and the always-on source transcript reach OBS.
* The same-language skip on qwen3.5: sentences already in the target language show their source text, or nothing,
  as configured, whichever way the service answers a skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemonproc import DaemonProc
from tests.support.fake_translator import Q35_MODEL, Q38_MODEL, FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.speech import silence_padded_sequence
from tests.support.tls_proxy import ConnectProxy, make_certificate

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

KEY = "sk-e2e-q38-secret"
WORKSPACE = "llm-e2eq38"
HOST = f"{WORKSPACE}.ap-southeast-1.maas.aliyuncs.com"
PHRASES = ["Hello everyone and welcome to the stream", "Today we build a castle", "Thank you all for watching"]
LAYOUT = {"max_width": 80, "max_lines": 3, "min_display_s": 0.2, "clear_after_s": 0}


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return silence_padded_sequence(PHRASES, 2.0, tmp_path_factory.mktemp("speech") / "three.wav")


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[FakeTranslator, ConnectProxy, Path]]:
    ca, context = make_certificate([HOST], tmp_path)
    fake = FakeTranslator(api_key=KEY, script=PHRASES, speakers=[1, 2, 1])
    fake.ssl_context = context
    fake.start_in_thread()
    proxy = ConnectProxy(fake.port).start()
    yield fake, proxy, ca
    proxy.stop()
    fake.stop_thread()


def obs_config(obs: ObsEnv) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": obs.ws_port, "password": "${OBS_WEBSOCKET_PASSWORD}", "timeout_s": 2}


def test_qwen38_over_the_workspace_endpoint_captions_into_obs(
    obs: ObsEnv,
    pulse_env: PulseEnv,
    workspace: tuple[FakeTranslator, ConnectProxy, Path],
    speech: Path,
    tmp_path: Path,
) -> None:
    fake, proxy, ca = workspace
    config = {
        "audio": {"device": "loopback"},
        "translator": {
            "model": Q38_MODEL,
            "workspace_id": WORKSPACE,
            "region": "singapore",
            "api_key": "${DASHSCOPE_API_KEY}",
            "source_language": None,
            "targets": ["ja"],
            "transcribe_source": True,
        },
        "obs": obs_config(obs),
        "layout": LAYOUT,
        "outputs": [
            {"obs_source": "Q38 JA", "language": "ja"},
            {"obs_source": "Q38 Source", "language": "source"},
        ],
    }
    env = pulse_env.child_env(
        DASHSCOPE_API_KEY=KEY,
        OBS_WEBSOCKET_PASSWORD=obs.password,
        HTTPS_PROXY=f"http://127.0.0.1:{proxy.port}",
        NO_PROXY="127.0.0.1,localhost",
        SSL_CERT_FILE=str(ca),
    )
    daemon = DaemonProc(tmp_path, config, env).start()
    try:
        daemon.wait_connected("audio", "obs", "translator:ja")
        pulse_env.play(speech)
        # The fake's speakers 1, 2, 1: labels from the second voice on, named by default (no speakers.names).
        labels = ["", "Speaker 2: ", "Speaker 1: "]
        want_ja = "\n".join(f"{who}[ja] {p}" for who, p in zip(labels, PHRASES, strict=True))
        want_source = "\n".join(f"{who}{p}" for who, p in zip(labels, PHRASES, strict=True))
        daemon.wait(lambda: obs.text_of("Q38 JA") == want_ja, 30, "three translations in OBS")
        daemon.wait(lambda: obs.text_of("Q38 Source") == want_source, 10, "the source transcript in OBS")
        link = daemon.status()["links"]["translator:ja"]
        assert link["source_transcript"] == "shown" and link["source_language"] == "auto-detected"
    finally:
        daemon.kill()
        log = daemon.log()
    assert set(proxy.requests) == {f"{HOST}:443"}
    conn = fake.connections[0]
    assert conn.model == Q38_MODEL and conn.headers["X-DashScope-WorkSpace"] == WORKSPACE
    update = conn.session_update
    assert update is not None
    assert update["output_modalities"] == ["text"]
    assert update["audio"]["input"]["turn_detection"] == {"type": "speaker_detection", "threshold": 0.5}
    assert update["voice"] == update["audio"]["output"]["voice"] == "Tina"
    assert not {"modalities", "input_audio_transcription", "turn_detection"} & set(update)
    assert conn.speakers == [1, 2, 1]
    assert KEY not in log


@pytest.mark.parametrize(("reading", "shown"), [("no_response", "source"), ("empty", "source"), ("empty", "none")])
def test_same_language_skip_shows_the_configured_captions(
    obs: ObsEnv,
    pulse_env: PulseEnv,
    threaded_fake: Callable[..., FakeTranslator],
    speech: Path,
    tmp_path: Path,
    reading: str,
    shown: str,
) -> None:
    # The streamer's first and last sentences are already English; the middle one is taken as French.
    fake = threaded_fake(api_key=KEY, script=PHRASES, spoken=["en", "fr", "en"])
    fake.skip_reading = reading
    config = {
        "audio": {"device": "loopback"},
        "translator": {
            "url": fake.url,
            "model": Q35_MODEL,
            "api_key": "${DASHSCOPE_API_KEY}",
            "source_language": "en",
            "targets": ["en"],
            "skip_same_language": True,
            "same_language_captions": shown,
        },
        "obs": obs_config(obs),
        "layout": LAYOUT,
        "outputs": [{"obs_source": "Skip EN", "language": "en"}],
    }
    env = pulse_env.child_env(DASHSCOPE_API_KEY=KEY, OBS_WEBSOCKET_PASSWORD=obs.password)
    daemon = DaemonProc(tmp_path, config, env).start()
    try:
        daemon.wait_connected("audio", "obs", "translator:en")
        pulse_env.play(speech)
        daemon.wait(lambda: fake.connections[0].skipped == [PHRASES[0], PHRASES[2]], 30, "two skipped sentences")
        want = f"{PHRASES[0]}\n[en] {PHRASES[1]}\n{PHRASES[2]}" if shown == "source" else f"[en] {PHRASES[1]}"
        daemon.wait(lambda: obs.text_of("Skip EN") == want, 10, f"OBS to show {want!r}")
        assert daemon.status()["outputs"]["en"]["final_count"] == (3 if shown == "source" else 1)
    finally:
        daemon.kill()
    skip = fake.connections[0].session_update["translation"]["same_language_skip_options"]  # type: ignore[index]
    assert skip == {"skip_text": True, "skip_audio": True}


def test_qwen38_voice_clone_session_is_accepted_and_plays(
    obs: ObsEnv,
    pulse_env: PulseEnv,
    threaded_fake: Callable[..., FakeTranslator],
    speech: Path,
    tmp_path: Path,
) -> None:
    fake = threaded_fake(api_key=KEY, script=PHRASES)
    module = pulse_env.load_module("module-null-sink", "sink_name=clone_sink")
    config = {
        "audio": {"device": "loopback"},
        "translator": {
            "url": fake.url,
            "model": Q38_MODEL,
            "api_key": "${DASHSCOPE_API_KEY}",
            "source_language": None,
            "targets": ["ja"],
        },
        "obs": obs_config(obs),
        "layout": LAYOUT,
        "outputs": [{"obs_source": "Clone JA", "language": "ja"}],
        # The translation speaks in the speaker's own voice, taken again before every sentence.
        "voice_outputs": [{"language": "ja", "sink": "clone_sink", "voice": "default", "voice_clone": "always"}],
    }
    env = pulse_env.child_env(DASHSCOPE_API_KEY=KEY, OBS_WEBSOCKET_PASSWORD=obs.password)
    daemon = DaemonProc(tmp_path, config, env).start()
    try:
        daemon.wait_connected("audio", "obs", "translator:ja")
        pulse_env.play(speech)
        want = "\n".join(f"[ja] {p}" for p in PHRASES)
        daemon.wait(lambda: obs.text_of("Clone JA") == want, 30, "three translations in OBS")
        daemon.wait(lambda: daemon.status()["voice"]["ja"]["utterances_played"] >= 3, 20, "the voice played")
        assert "session_warnings" not in daemon.status()["links"]["translator:ja"]  # the echo held the clone
    finally:
        daemon.kill()
        pulse_env.unload_module(module)
    conn = fake.connections[0]
    assert conn.server_close_code is None
    update = conn.session_update
    assert update is not None
    assert update["output_modalities"] == ["text", "audio"]
    assert (update["voice"], update["audio"]["output"]["voice"]) == ("default", "default")
    assert (update["enable_voice_clone"], update["voice_clone_options"]) == (True, {"frequency": "always"})
