"""The first-run errors a streamer meets, as /status shows them: each says what was tried and what to do (#18)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.daemonproc import DaemonProc
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.procs import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
KEY = "sk-errors-secret"
OBS_HINT = "is OBS running, with Tools → WebSocket Server Settings → Enable WebSocket server?"


def no_sound_server(tmp_path: Path) -> dict[str, str]:
    """An environment whose PULSE_SERVER points at a socket nobody listens on (and libpulse may not spawn one)."""
    conf = tmp_path / "client.conf"
    conf.write_text("autospawn = no\n")
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PULSE_SERVER": f"unix:{tmp_path}/nothing-here",
        "PULSE_CLIENTCONFIG": str(conf),
        "DASHSCOPE_API_KEY": KEY,
    }


def test_no_obs_and_no_sound_server_say_what_was_tried_and_what_to_do(
    threaded_fake: Callable[..., FakeTranslator], tmp_path: Path
) -> None:
    fake = threaded_fake(api_key=KEY)
    port = free_port()  # nothing listens here
    cfg = {
        "translator": {"url": fake.url, "api_key": "${DASHSCOPE_API_KEY}", "targets": ["ja"]},
        "obs": {"host": "127.0.0.1", "port": port, "timeout_s": 1},
        "outputs": [{"obs_source": "Captions JA", "language": "ja"}],
    }
    daemon = DaemonProc(tmp_path, cfg, no_sound_server(tmp_path)).start()
    try:
        daemon.wait(lambda: daemon.status()["links"]["obs"]["last_error"], 20, "obs last_error")
        daemon.wait(lambda: daemon.status()["links"]["audio"]["last_error"], 20, "audio last_error")
        links = daemon.status()["links"]
        assert links["obs"]["state"] == "reconnecting"
        assert links["obs"]["last_error"].startswith(f"nothing answers at 127.0.0.1:{port} (ConnectionRefusedError")
        assert links["obs"]["last_error"].endswith(OBS_HINT)
        audio = links["audio"]["last_error"]
        assert audio.startswith(
            "NoAudioInput: no audio input device: the sound server did not answer "
            "(PulseAudio: Connection refused (source default)) and PortAudio lists no input devices"
        ), audio
        assert f"PULSE_SERVER=unix:{tmp_path}/nothing-here" in audio and "run `captioner devices`" in audio
        # The log says the same once.
        assert OBS_HINT in daemon.log() and "run `captioner devices`" in daemon.log()
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_a_wrong_obs_password_names_the_key(
    threaded_fake: Callable[..., FakeTranslator], obs: ObsEnv, tmp_path: Path
) -> None:
    fake = threaded_fake(api_key=KEY)
    cfg = {
        "translator": {"url": fake.url, "api_key": "${DASHSCOPE_API_KEY}", "targets": ["ja"]},
        "obs": {"port": obs.ws_port, "password": "${OBS_WEBSOCKET_PASSWORD}", "timeout_s": 1},
        "outputs": [{"obs_source": "Captions JA", "language": "ja"}],
    }
    env = {**no_sound_server(tmp_path), "OBS_WEBSOCKET_PASSWORD": "not-the-password"}
    daemon = DaemonProc(tmp_path, cfg, env).start()
    try:
        daemon.wait(lambda: daemon.link_state("obs") == "auth_failed", 20, "obs auth_failed")
        assert daemon.status()["links"]["obs"]["last_error"] == (
            "authentication failed: OBS refused the password; set obs.password to the one in OBS's "
            "Tools → WebSocket Server Settings (Show Connect Info)"
        )
        assert "not-the-password" not in daemon.log()
        assert daemon.stop() == 0
    finally:
        daemon.kill()
