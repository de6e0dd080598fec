"""End to end: several inputs (two null sinks), each caption marked with its input, an output narrowed to one input,
a live source-language switch without a lost caption, and one input's device vanishing while the other captions on."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest

from tests.support.daemonproc import DaemonProc
from tests.support.fake_translator import FakeTranslator
from tests.support.null_sinks import null_sinks
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.speech import speech_wav

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
KEY = "sk-inputs-key"
TOKEN = "inputs-token-abcdef"
ALL, HOST_ONLY = "E2E Inputs All", "E2E Inputs Host"


def post(daemon: DaemonProc, action: str, body: dict[str, Any]) -> tuple[int, Any]:
    req = Request(f"http://127.0.0.1:{daemon.http_port}/control/{action}", data=json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except OSError as e:
        return getattr(e, "code", 0), e.read().decode() if hasattr(e, "read") else str(e)


def recent(daemon: DaemonProc) -> list[dict[str, Any]]:
    return list(daemon.status()["recent_captions"])


def test_two_inputs_each_captioned_as_itself(
    obs: ObsEnv, pulse_env: PulseEnv, threaded_fake: Callable[..., FakeTranslator], tmp_path: Path
) -> None:
    fake = threaded_fake(api_key=KEY)
    phrase = speech_wav("Good evening and welcome to the show", tmp_path / "p.wav")
    with null_sinks(pulse_env, "e2e_host", "e2e_guest") as (host, guest):
        cfg = {
            "inputs": [
                {"name": "Host", "device": host.monitor, "source_language": "en"},
                {"name": "Guests", "device": guest.monitor, "source_language": "en"},
            ],
            "translator": {"url": fake.url, "api_key": "${DASHSCOPE_API_KEY}", "targets": ["ja"]},
            "obs": {"port": obs.ws_port, "password": "${OBS_WEBSOCKET_PASSWORD}", "timeout_s": 2},
            "outputs": [
                {"obs_source": ALL, "language": "ja"},
                {"obs_source": HOST_ONLY, "language": "ja", "inputs": ["Host"]},
            ],
            "layout": {"clear_after_s": 0, "max_lines": 6, "max_width": 60},
            "http": {"token": "${CONTROL}"},
        }
        env = pulse_env.child_env(DASHSCOPE_API_KEY=KEY, OBS_WEBSOCKET_PASSWORD=obs.password, CONTROL=TOKEN)
        daemon = DaemonProc(tmp_path, cfg, env).start()
        try:
            daemon.wait_connected("audio:Host", "audio:Guests", "translator:Host:ja", "translator:Guests:ja")

            def speak(sink: str, n: int) -> None:
                pulse_env.play(phrase, sink=sink)
                daemon.wait(lambda: len(recent(daemon)) >= n, 30, f"final {n}")

            # Speech into each input in turn: each final carries the input it was heard on, as input and label.
            speak(host.name, 1)
            speak(guest.name, 2)
            speak(host.name, 3)
            finals = recent(daemon)
            heard_on = [(c["input"], c["speaker"]) for c in finals]
            assert heard_on == [("Host", "Host"), ("Guests", "Guests"), ("Host", "Host")]
            texts = [c["text"] for c in finals]
            assert len(set(texts)) == 3
            # The shared source shows every input's sentences; the narrowed one only the Host's.
            daemon.wait(lambda: all(t in (obs.text_of(ALL) or "") for t in texts), 10, "every sentence in OBS")
            daemon.wait(lambda: texts[2] in (obs.text_of(HOST_ONLY) or ""), 10, "the Host's sentences in OBS")
            only = obs.text_of(HOST_ONLY) or ""
            assert texts[0] in only and texts[1] not in only
            # ... each under its input's name, as viewers read it.
            shared = obs.text_of(ALL) or ""
            assert [f"{c['speaker']}: {c['text']}" in shared for c in finals] == [True] * 3, shared
            assert f"Host: {texts[0]}" in only, only
            inputs = daemon.status()["inputs"]
            assert inputs["Host"]["device"] == host.monitor and inputs["Guests"]["device"] == guest.monitor
            assert inputs["Host"]["link"]["state"] == "connected" and inputs["Guests"]["sessions"] == {
                "ja": "connected"
            }
            metrics = daemon.get("/metrics")[1]
            assert 'captioner_audio_sent_seconds_total{input="Guests",target="ja"}' in metrics

            # A live switch of the Guests' language, asked mid-sentence: the sentence in flight still gets its
            # final (from the old session), only the Guests' session reconnects, with the new language.
            before = len(fake.connections)
            host_since = daemon.status()["links"]["translator:Host:ja"]["since"]
            answer: list[tuple[int, Any]] = []
            talking = pulse_env.play_async(phrase, sink=guest.name)
            time.sleep(1.0)
            switch = threading.Thread(
                target=lambda: answer.append(post(daemon, "source_language", {"input": "Guests", "language": "de"}))
            )
            switch.start()
            talking.wait(30)
            switch.join(60)
            assert answer and answer[0][0] == 200, answer
            assert answer[0][1]["source_languages"] == {"Host": "en", "Guests": "de"}
            daemon.wait(lambda: len(recent(daemon)) >= 4, 30, "the final of the sentence in flight")
            assert recent(daemon)[3]["input"] == "Guests"
            new = fake.connections[before:]
            assert len(new) == 1, "only the Guests' session reconnects"
            assert (new[0].session_update or {}).get("input_audio_transcription") == {"language": "de"}
            # The old Guests session was finished (session.finish, its last captions waited for), not cut.
            assert sum(c.finished for c in fake.connections[:before]) == 1
            assert daemon.status()["links"]["translator:Host:ja"]["since"] == host_since
            assert daemon.status()["inputs"]["Guests"]["source_language"] == "de"
            speak(guest.name, 5)  # the next sentence goes to the new session
            assert recent(daemon)[4]["input"] == "Guests" and new[0].translations

            # The Guests' device vanishes: its input reconnects on its own, the Host captions on.
            guest.remove()
            daemon.wait(lambda: daemon.link_state("audio:Guests") != "connected", 20, "the Guests' device lost")
            speak(host.name, 6)
            assert recent(daemon)[5]["input"] == "Host"
            assert daemon.link_state("audio:Host") == "connected"
            assert daemon.link_state("translator:Host:ja") == "connected"
            # Every sentence spoken has its final, from the input it was spoken into.
            assert [c["input"] for c in recent(daemon)] == ["Host", "Guests", "Host", "Guests", "Guests", "Host"]
        finally:
            assert daemon.stop() == 0
