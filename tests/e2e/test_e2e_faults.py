"""End to end under faults: OBS quits, is killed, freezes; the config is reloaded; the audio device goes away."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.daemonproc import DaemonProc, TextRecorder
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.speech import speech_wav
from tests.support.subtitles import parse_srt, parse_vtt

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
KEY = "sk-faults-secret"


@pytest.fixture
def fake(threaded_fake: Callable[..., FakeTranslator]) -> FakeTranslator:
    return threaded_fake(api_key=KEY)


@pytest.fixture(scope="module")
def phrase(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speech_wav("Good evening and welcome back to the show", tmp_path_factory.mktemp("faults") / "p.wav")


def make_config(fake: FakeTranslator, obs: ObsEnv, targets: list[str], sources: dict[str, str]) -> dict[str, Any]:
    return {
        "audio": {"device": "loopback"},
        "translator": {"url": fake.url, "api_key": "${DASHSCOPE_API_KEY}", "targets": targets},
        "obs": {"port": obs.ws_port, "password": "${OBS_WEBSOCKET_PASSWORD}", "timeout_s": 1},
        # One line that stays up: these tests check which caption OBS shows after each fault.
        "layout": {"max_lines": 1, "clear_after_s": 0},
        "outputs": [{"obs_source": name, "language": lang} for lang, name in sources.items()],
    }


def start_daemon(tmp: Path, cfg: dict[str, Any], pulse: PulseEnv, obs: ObsEnv) -> DaemonProc:
    env = pulse.child_env(DASHSCOPE_API_KEY=KEY, OBS_WEBSOCKET_PASSWORD=obs.password)
    daemon = DaemonProc(tmp, cfg, env).start()
    daemon.wait_connected("audio", "obs", *(f"translator:{t}" for t in cfg["translator"]["targets"]))
    return daemon


def wait_text(obs: ObsEnv, source: str, expected: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        try:
            seen = obs.text_of(source)
        except Exception:  # noqa: BLE001 - OBS may still be starting
            seen = None
        if seen == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"{source!r} shows {seen!r}, expected {expected!r}")


def test_obs_quits_is_killed_and_comes_back(
    obs: ObsEnv, pulse_env: PulseEnv, fake: FakeTranslator, phrase: Path, tmp_path: Path
) -> None:
    src = "E2E Faults JA"
    cfg = make_config(fake, obs, ["ja"], {"ja": src})
    cfg["transcripts"] = {"enabled": True, "folder": str(tmp_path / "subs")}
    daemon = start_daemon(tmp_path, cfg, pulse_env, obs)
    try:
        pulse_env.play(phrase)
        wait_text(obs, src, "[ja] utterance 1", 15)

        obs.stop_obs()  # a clean quit
        daemon.wait(lambda: daemon.link_state("obs") == "reconnecting", 20, "obs reconnecting")
        pulse_env.play(phrase)  # finalized while OBS is away
        daemon.wait(lambda: daemon.status()["outputs"]["ja"]["final_count"] == 2, 15, "second caption")
        obs.start_obs()
        wait_text(obs, src, "[ja] utterance 2", 20)  # re-applied after the restart

        obs.kill_obs()  # a crash: no goodbye at all
        daemon.wait(lambda: daemon.link_state("obs") == "reconnecting", 20, "obs reconnecting after kill")
        obs.start_obs()
        wait_text(obs, src, "[ja] utterance 2", 20)
        pulse_env.play(phrase)
        wait_text(obs, src, "[ja] utterance 3", 15)
        assert daemon.status()["outputs"]["ja"]["final_count"] == 3
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    # the caption finalized while OBS was away is in the files too, once, in order
    expected = [f"[ja] utterance {i}" for i in (1, 2, 3)]
    (srt,) = (tmp_path / "subs").glob("*_ja.srt")
    assert [c[3] for c in parse_srt(srt.read_text())] == expected
    (vtt,) = (tmp_path / "subs").glob("*_ja.vtt")
    assert [c[2] for c in parse_vtt(vtt.read_text())] == expected
    (txt,) = (tmp_path / "subs").glob("*_ja.txt")
    assert [line.split("] ", 1)[1] for line in txt.read_text().splitlines()] == expected


def test_obs_freezes_and_thaws(
    obs: ObsEnv, pulse_env: PulseEnv, fake: FakeTranslator, phrase: Path, tmp_path: Path
) -> None:
    src = "E2E Freeze JA"
    daemon = start_daemon(tmp_path, make_config(fake, obs, ["ja"], {"ja": src}), pulse_env, obs)
    try:
        obs.freeze_obs()
        pulse_env.play(phrase)
        daemon.wait(lambda: daemon.status()["outputs"]["ja"]["final_count"] == 1, 15, "caption while frozen")
        daemon.wait(lambda: daemon.link_state("obs") == "reconnecting", 20, "frozen OBS noticed")
        obs.thaw_obs()
        wait_text(obs, src, "[ja] utterance 1", 20)
        daemon.wait(lambda: daemon.link_state("obs") == "connected", 20, "obs connected again")
        assert daemon.stop() == 0
    finally:
        obs.thaw_obs()
        daemon.kill()


def test_sighup_applies_changes_and_refuses_an_invalid_config(
    obs: ObsEnv, pulse_env: PulseEnv, fake: FakeTranslator, phrase: Path, tmp_path: Path
) -> None:
    cfg = make_config(fake, obs, ["ja"], {"ja": "E2E Reload JA"})
    daemon = start_daemon(tmp_path, cfg, pulse_env, obs)
    try:
        pulse_env.play(phrase)
        wait_text(obs, "E2E Reload JA", "[ja] utterance 1", 15)

        changed = make_config(fake, obs, ["ja", "ko"], {"ja": "E2E Reload JA", "ko": "E2E Reload KO"})
        daemon.config_path.write_text(yaml.safe_dump({**changed, "http": {"port": daemon.http_port}}))
        daemon.send_signal(1)  # SIGHUP
        daemon.wait(lambda: daemon.link_state("translator:ko") == "connected", 20, "new target connected")
        pulse_env.play(phrase)
        wait_text(obs, "E2E Reload JA", "[ja] utterance 2", 15)
        wait_text(obs, "E2E Reload KO", "[ko] utterance 1", 15)
        ja_connections = [c for c in fake.connections if c.session and c.session["translation"]["language"] == "ja"]
        assert len(ja_connections) == 1, "the unchanged session was kept"

        broken = {**changed, "translator": {**changed["translator"], "targets": ["ja", "xx"]}}
        daemon.config_path.write_text(yaml.safe_dump({**broken, "http": {"port": daemon.http_port}}))
        daemon.send_signal(1)
        daemon.wait(
            lambda: (daemon.status()["reload_error"] or "").startswith("translator.targets[1]"), 10, "reload refused"
        )
        pulse_env.play(phrase)
        wait_text(obs, "E2E Reload KO", "[ko] utterance 2", 15)  # still running on the old config
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert "reload rejected, keeping the running config: translator.targets[1]" in daemon.log()


@pytest.mark.parametrize(("backend", "rate", "channels"), [("pulse", 16000, 1), ("portaudio", 44100, 2)])
def test_audio_device_disappears_and_returns(
    obs: ObsEnv, fake: FakeTranslator, phrase: Path, tmp_path: Path, backend: str, rate: int, channels: int
) -> None:
    # The daemon captures from its own PulseAudio server, which goes away like an unplugged USB device; natively
    # and through PortAudio's ALSA pulse device (whose default rate is 44.1 kHz: PulseAudio resamples either way).
    device = PulseEnv(base=tmp_path / "pulse").start()
    src = "E2E Device JA"
    daemon = None
    try:
        env = device.child_env(DASHSCOPE_API_KEY=KEY, OBS_WEBSOCKET_PASSWORD=obs.password)
        cfg = make_config(fake, obs, ["ja"], {"ja": src})
        cfg["audio"]["backend"] = backend
        daemon = DaemonProc(tmp_path, cfg, env).start()
        daemon.wait(lambda: daemon.link_state("audio") == "connected", 30, "audio connected")
        source = daemon.status()["audio_source"]
        assert (source["backend"], source["rate"], source["channels"]) == (backend, rate, channels)
        assert "e2e_sink.monitor" in source["device"]
        device.play(phrase)
        wait_text(obs, src, "[ja] utterance 1", 20)

        device.stop()
        daemon.wait(lambda: daemon.link_state("audio") == "reconnecting", 20, "device loss noticed")
        assert daemon.status()["links"]["audio"]["last_error"]
        device.start()
        daemon.wait(lambda: daemon.link_state("audio") == "connected", 30, "device reopened")
        device.play(phrase)
        wait_text(obs, src, "[ja] utterance 2", 20)
        assert daemon.stop() == 0
    finally:
        if daemon is not None:
            daemon.kill()
        device.stop()


def metric(daemon: DaemonProc, name: str, labels: str) -> float:
    for line in daemon.get("/metrics")[1].splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.split()[-1])
    return 0.0


def test_translator_drops_mid_utterance_and_later_hangs(
    obs: ObsEnv, pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    src = "E2E Drop JA"
    long_phrase = speech_wav(
        "We are now talking for a rather long time so that the link can drop in the middle", tmp_path / "long.wav"
    )
    short = speech_wav("Short again", tmp_path / "short.wav")
    cfg = make_config(fake, obs, ["ja"], {"ja": src})
    cfg["translator"]["watchdog_s"] = 3
    cfg["translator"]["watchdog_speech_s"] = 0.5  # one short sentence unanswered is enough here
    daemon = start_daemon(tmp_path, cfg, pulse_env, obs)
    try:
        with TextRecorder(obs, [src]) as rec:
            player = pulse_env.play_async(long_phrase)
            daemon.wait(
                lambda: (daemon.status()["outputs"]["ja"]["last_partial"] or "").startswith("[ja] "),
                15,
                "partial caption",
            )
            fake.drop_all()  # network drop in the middle of the sentence
            player.wait(30)
            # what was on screen becomes final instead of vanishing; the link comes back
            daemon.wait(lambda: daemon.status()["outputs"]["ja"]["final_count"] >= 1, 15, "kept caption")
            daemon.wait(lambda: daemon.link_state("translator:ja") == "connected", 30, "reconnected")
            assert len(fake.connections) >= 2
            time.sleep(1.5)
            pulse_env.play(short)
            daemon.wait(
                lambda: (
                    rec.seen[src]
                    and rec.seen[src][-1] == daemon.status()["outputs"]["ja"]["last_final"]
                    and len(fake.connections[-1].translations) >= 1
                ),
                15,
                "caption after reconnect",
            )

            fake.stall = True  # the service stops answering
            pulse_env.play_async(short)
            daemon.wait(
                lambda: (
                    metric(daemon, "captioner_translator_rotations_total", 'input="",reason="watchdog",target="ja"')
                    == 1
                ),
                20,
                "watchdog",
            )
            fake.stall = False
            daemon.wait(lambda: daemon.link_state("translator:ja") == "connected", 30, "replaced session")
            time.sleep(1.0)
            before = daemon.status()["outputs"]["ja"]["final_count"]
            pulse_env.play(short)
            daemon.wait(lambda: daemon.status()["outputs"]["ja"]["final_count"] == before + 1, 15, "captions again")
            time.sleep(0.5)
            finals = daemon.status()["outputs"]["ja"]["final_count"]
        # every final reached OBS exactly once, in order, none repeated
        assert len(rec.seen[src]) == finals, (rec.seen[src], finals)
        assert len(set(rec.seen[src])) == len(rec.seen[src])
        assert rec.seen[src][-1] == daemon.status()["outputs"]["ja"]["last_final"]
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_stop_waits_for_a_service_that_takes_seconds_to_finish(
    obs: ObsEnv, pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    """The service finishes the last utterance before `session.finished` (the vendor's SDK waits 20 s): stopped
    mid-sentence, the daemon waits for it, shows it in OBS, and exits 0 (#14)."""
    src = "E2E Slow Finish JA"
    cfg = make_config(fake, obs, ["ja"], {"ja": src})
    daemon = start_daemon(tmp_path, cfg, pulse_env, obs)
    try:
        fake.finish_delay_s = 8.0  # longer than the old 5 s default, well inside the new 15 s
        sentence = speech_wav("This sentence is still being spoken when the stream ends", tmp_path / "s.wav")
        player = pulse_env.play_async(sentence)
        daemon.wait(lambda: bool(daemon.status()["outputs"]["ja"]["last_partial"]), 15, "a partial")
        assert daemon.status()["outputs"]["ja"]["final_count"] == 0
        started = time.monotonic()
        assert daemon.stop(timeout=40) == 0
        assert time.monotonic() - started >= 8.0, "it waited for session.finished"
        player.wait(30)
        wait_text(obs, src, "[ja] utterance 1", 5)
        assert "no session.finished" not in daemon.log()
    finally:
        daemon.kill()
