"""The command line against real parts: `check --connect` with real OBS, `devices` with a real PulseAudio server."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.cli import captioner
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.procs import free_port
from tests.support.pulse_env import PulseEnv

pytestmark = pytest.mark.timeout(120)


@pytest.mark.e2e
def test_check_connect_reports_each_link(obs: ObsEnv, tmp_path: Path) -> None:
    fake = FakeTranslator(api_key="sk-check")
    fake.start_in_thread()
    try:
        cfg = {
            "translator": {"url": fake.url, "api_key": "${KEY}", "targets": ["ja", "ko"]},
            "obs": {"port": obs.ws_port, "password": "${PW}"},
        }
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(cfg))
        ok = captioner(
            "check",
            "--connect",
            "--config",
            str(path),
            env={"KEY": "sk-check", "PW": obs.password, "PATH": "/usr/bin:/bin"},
        )
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "obs: ok (OBS 29" in ok.stdout
        assert "translator ja: ok" in ok.stdout and "translator ko: ok" in ok.stdout

        bad = captioner(
            "check",
            "--connect",
            "--config",
            str(path),
            env={"KEY": "sk-nope", "PW": "wrong-pw", "PATH": "/usr/bin:/bin"},
        )
        assert bad.returncode == 1
        assert (
            "obs: failed: authentication failed: OBS refused the password; set obs.password" in bad.stdout
            and "translator ja: failed" in bad.stdout
            and "401" in bad.stdout
        )
        assert "sk-nope" not in bad.stdout + bad.stderr and "wrong-pw" not in bad.stdout + bad.stderr

        port = free_port()
        cfg["obs"] = {"port": port}
        path.write_text(yaml.safe_dump(cfg))
        down = captioner("check", "--connect", "--config", str(path), env={"KEY": "sk-check", "PATH": "/usr/bin:/bin"})
        # The address tried, and what to check in OBS.
        assert down.returncode == 1 and f"obs: failed: nothing answers at 127.0.0.1:{port}" in down.stdout
        assert "is OBS running, with Tools → WebSocket Server Settings → Enable WebSocket server?" in down.stdout
    finally:
        fake.stop_thread()


@pytest.mark.e2e
def test_check_connect_opens_the_session_the_daemon_would_a_cloned_voice_included(tmp_path: Path) -> None:
    fake = FakeTranslator(api_key="sk-check")
    fake.start_in_thread()
    try:
        cfg = {
            "translator": {
                "url": fake.url,
                "model": "qwen3.5-livetranslate-flash-realtime",
                "api_key": "${KEY}",
                "targets": ["ja"],
            },
            "obs": {"enabled": False},
            "voice_outputs": [{"language": "ja", "voice": "default", "voice_clone": "once"}],
        }
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(cfg))
        ok = captioner("check", "--connect", "--config", str(path), env={"KEY": "sk-check", "PATH": "/usr/bin:/bin"})
        assert ok.returncode == 0 and "translator ja: ok" in ok.stdout, ok.stdout + ok.stderr
        # The fake refuses voice "default" without a clone: the probe asked for the clone, as the daemon does.
        update = fake.connections[-1].session_update or {}
        assert (update.get("voice"), update.get("enable_voice_clone")) == ("default", True), update
    finally:
        fake.stop_thread()


@pytest.mark.e2e
def test_devices_lists_inputs_and_the_loopback_monitor(pulse_env: PulseEnv) -> None:
    r = captioner("devices", env=pulse_env.child_env())
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["index", "name", "host", "API", "ch", "rate"]
    pulse = [line for line in lines if " pulse " in line]
    assert pulse, r.stdout
    assert "ALSA" in pulse[0]
    assert f'"loopback" records {pulse_env.monitor}' in r.stdout
    # The source names that audio.device accepts for native capture.
    assert f"an exact name works as audio.device): {pulse_env.monitor}" in r.stdout


@pytest.mark.e2e
def test_devices_without_a_sound_server_says_why_the_list_is_empty(tmp_path: Path) -> None:
    conf = tmp_path / "client.conf"
    conf.write_text("autospawn = no\n")
    env = {"PATH": "/usr/bin:/bin", "PULSE_SERVER": f"unix:{tmp_path}/nothing-here", "PULSE_CLIENTCONFIG": str(conf)}
    r = captioner("devices", env=env)
    assert r.returncode == 0, r.stderr
    assert (
        "(no input devices: PortAudio found none, and the sound server did not answer "
        "(PulseAudio: Connection refused (source default)); start PulseAudio/PipeWire, check PULSE_SERVER"
    ) in r.stdout
