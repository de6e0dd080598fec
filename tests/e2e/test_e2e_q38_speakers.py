"""Who said what, end to end on qwen3.8: espeak-ng speech -> PulseAudio -> `captioner run` -> the strict fake (which
tells two speakers apart, as the model's speaker_detection does) -> real OBS text, the stream's CEA-608 captions
decoded out of the real RTMP stream, and the subtitle files.

Speaker 1 says the first and third sentences, speaker 2 the second. One voice needs no label; once the second is
heard, every caption carries its speaker's configured name, and the stream's captions mark each change with `>> `.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.daemonproc import DaemonProc
from tests.support.fake_translator import Q38_MODEL, FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.speech import silence_padded_sequence
from tests.support.subtitles import parse_vtt

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

KEY = "sk-e2e-q38-speakers"
PHRASES = ["Hello everyone and welcome", "Today we build a castle", "Thank you all for watching"]


def test_two_speakers_on_qwen38_are_named_in_obs_the_stream_captions_and_the_files(
    obs: ObsEnv, pulse_env: PulseEnv, threaded_fake: Callable[..., FakeTranslator], tmp_path: Path
) -> None:
    fake = threaded_fake(api_key=KEY, script=PHRASES, speakers=[1, 2, 1])
    speech = silence_padded_sequence(PHRASES, 3.0, tmp_path / "speech.wav")
    config = {
        "audio": {"device": "loopback"},
        "translator": {
            "url": fake.url,
            "model": Q38_MODEL,
            "api_key": "${DASHSCOPE_API_KEY}",
            "source_language": None,
            "targets": ["de"],
        },
        "obs": {"port": obs.ws_port, "password": "${OBS_WEBSOCKET_PASSWORD}", "timeout_s": 2},
        "layout": {"max_width": 80, "max_lines": 3, "min_display_s": 0.2, "clear_after_s": 0},
        "outputs": [{"obs_source": "Q38 Speakers DE", "language": "de"}],
        "stream_captions": {"enabled": True, "language": "de", "rows": 2},
        "transcripts": {"enabled": True, "folder": str(tmp_path / "runs"), "follow_recording": False},
        "speakers": {"names": ["Host", "Guest"]},
    }
    env = pulse_env.child_env(DASHSCOPE_API_KEY=KEY, OBS_WEBSOCKET_PASSWORD=obs.password)
    daemon = DaemonProc(tmp_path, config, env).start()
    c = obs.client()
    before = set(obs.recordings())
    try:
        daemon.wait_connected("audio", "obs", "translator:de")
        c.start_stream()
        obs.wait_stream(True)
        time.sleep(1.0)  # the stream is up before the first caption
        pulse_env.play(speech)
        want = f"[de] {PHRASES[0]}\nGuest: [de] {PHRASES[1]}\nHost: [de] {PHRASES[2]}"
        daemon.wait(lambda: obs.text_of("Q38 Speakers DE") == want, 40, "three named captions in OBS")
        assert daemon.status()["outputs"]["de"]["last_speaker"] == "Host"
        time.sleep(2.5)  # stream captions are paced; the last page needs a video frame
        c.stop_stream()
        obs.wait_stream(False)
    finally:
        daemon.kill()
        if obs.client().send("GetStreamStatus", raw=True)["outputActive"]:
            obs.client().stop_stream()
    assert fake.connections[0].speakers == [1, 2, 1]

    # The viewer's player decodes the stream's 608 captions: ">> " at each change of speaker.
    new = [r for r in obs.wait_recordings_closed() if r not in before]
    assert len(new) == 1, new
    assert obs.extract_captions(new[0]) == [
        f"[de] {PHRASES[0]}",
        f">> [de] {PHRASES[1]}",
        f">> [de] {PHRASES[2]}",
    ]
    # The WebVTT file names each voice once there are two.
    (vtt,) = (tmp_path / "runs").glob("captioner_*_de.vtt")
    assert [t for *_, t in parse_vtt(vtt.read_text())] == [
        f"[de] {PHRASES[0]}",
        f"<v Guest>[de] {PHRASES[1]}",
        f"<v Host>[de] {PHRASES[2]}",
    ]
