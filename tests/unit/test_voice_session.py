"""Voice outputs: their config, and the session asking for audio and handing the deltas to playback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from captioner.config import VoiceOutputConfig, parse
from captioner.errors import ConfigError
from captioner.playout import BYTES_PER_S, PlayoutQueue, audio_event
from captioner.reconnect import Backoff, ConnectBudget
from captioner.reload import session_audio
from captioner.status import LinkState, Status
from captioner.translation.session import TranslatorSession
from captioner.voice import VoiceOutputs
from tests.support.fake_translator import FakeTranslator, tone_hz
from tests.support.translator_harness import KEY, TWO_UTTERANCES, chunks
from tests.support.voice_deltas import secs

pytestmark = pytest.mark.timeout(60)


Q3 = "qwen3-livetranslate-flash-realtime"
Q35 = "qwen3.5-livetranslate-flash-realtime"


# ---- config -----------------------------------------------------------------------------------------
def cfg(voice_outputs: Any, model: str = Q3, targets: tuple[str, ...] = ("ja", "zh", "th"), **tr: Any) -> Any:
    raw = {
        "translator": {"api_key": "k", "model": model, "targets": list(targets), **tr},
        "voice_outputs": voice_outputs,
    }
    return parse(raw, {})


@pytest.mark.parametrize(
    ("voice_outputs", "model", "key", "fragment"),
    [
        ([{"language": "th"}], Q3, "voice_outputs[0].language", "'th' has no voice output on qwen3"),
        ([{"language": "el"}], Q3, "voice_outputs[0].language", "not one of translator.targets"),
        ([{"language": "ko"}], Q3, "voice_outputs[0].language", "not one of translator.targets"),
        ([{"language": "ja"}, {"language": "ja", "device": 2}], Q3, "voice_outputs[1].language", "two voice outputs"),
        ([{"language": "ja"}, {"language": "zh"}], Q3, "voice_outputs[1].device", "default output is used by two"),
        ([{"language": "ja", "device": 2}, {"language": "zh", "device": 2}], Q3, "voice_outputs[1].device", "2"),
        (
            [{"language": "ja", "sink": "v"}, {"language": "zh", "sink": "v"}],
            Q3,
            "voice_outputs[1].sink",
            "sink 'v' is used by two",
        ),
        ([{"language": "ja", "device": True}], Q3, "voice_outputs[0].device", "must be null"),
        ([{"language": "ja", "max_buffer_s": 0.5}], Q3, "voice_outputs[0].max_buffer_s", ""),
        ([{"language": "ja", "max_buffer_s": 2, "prebuffer_s": 2}], Q3, "voice_outputs[0].prebuffer_s", "less"),
        ([{"language": "ja", "volume": 1}], Q3, "voice_outputs[0].volume", "unknown key"),
        ([{"device": 1}], Q3, "voice_outputs[0].language", "required"),
    ],
)
def test_voice_output_errors_name_the_key(voice_outputs: Any, model: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as e:
        cfg(voice_outputs, model)
    assert e.value.key == key
    assert fragment in str(e.value)


@pytest.mark.parametrize(
    ("voice_outputs", "model", "targets", "tr", "expected"),
    [
        # Only the languages played ask for audio (billed high), each with its own voice or the shared one.
        (
            [{"language": "ja", "voice": "Nofish"}],
            Q3,
            ("ja", "zh"),
            {},
            {"ja": (True, "Nofish"), "zh": (False, None)},
        ),
        ([{"language": "zh"}], Q3, ("ja", "zh"), {"voice": "Ethan"}, {"ja": (False, "Ethan"), "zh": (True, "Ethan")}),
        # translator.audio_output still asks every target (all must have voices).
        ([], Q3, ("ja", "zh"), {"audio_output": True}, {"ja": (True, None), "zh": (True, None)}),
        # th speaks on qwen3.5 (and el does not).
        ([{"language": "th"}], Q35, ("th", "el"), {}, {"th": (True, None), "el": (False, None)}),
        ([], Q3, ("yue",), {}, {"yue": (False, None)}),
    ],
)
def test_session_audio(voice_outputs: Any, model: str, targets: Any, tr: Any, expected: Any) -> None:
    c = cfg(voice_outputs, model, targets, **tr)
    assert {t: session_audio(c, t) for t in targets} == expected


@pytest.mark.parametrize(("model", "language"), [(Q3, "yue"), (Q35, "fil"), (Q35, "th")])
def test_voice_languages_accepted(model: str, language: str) -> None:
    c = cfg([{"language": language, "device": "pulse", "max_buffer_s": 5}], model, (language,))
    assert c.voice_outputs[0].language == language and c.voice_outputs[0].prebuffer_s == 0.8


def test_el_speaks_on_qwen3_but_not_on_qwen35() -> None:
    with pytest.raises(ConfigError, match=r"has no voice output on qwen3\.5"):
        cfg([{"language": "el"}], Q35, ("el",))


# ---- the session hands the audio over -----------------------------------------------------------------
async def test_session_asks_audio_per_target_and_hands_the_deltas_over() -> None:
    fake = FakeTranslator(api_key=KEY)
    await fake.start()
    status = Status("test")
    c = cfg([{"language": "ja", "voice": "Nofish"}], Q3, ("ja", "zh"), url=fake.url, api_key=KEY)
    got: dict[str, list[dict[str, Any]]] = {"ja": [], "zh": []}
    sessions = []
    for target in ("ja", "zh"):
        audio_output, voice = session_audio(c, target)
        sessions.append(
            TranslatorSession(
                c.translator,
                target,
                transcribe_source=False,
                status=status,
                on_caption=lambda caption: None,
                budget=ConnectBudget(limit=100),
                backoff=Backoff(initial_s=0.2, cap_s=0.5),
                audio_output=audio_output,
                voice=voice,
                on_audio=lambda t, event: got[t].append(event),
            )
        )
    tasks = [asyncio.create_task(s.run()) for s in sessions]
    try:
        while not all(s.connected for s in sessions):
            await asyncio.sleep(0.01)
        for chunk in chunks(TWO_UTTERANCES):
            for s in sessions:
                s.feed(chunk, 0.0)
            await asyncio.sleep(0.004)
        while len([e for e in got["ja"] if e["type"] == "response.done"]) < 2:
            await asyncio.sleep(0.02)
    finally:
        for s in sessions:
            await s.finish()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await fake.stop()
    updates = {u["translation"]["language"]: u for r in fake.connections if (u := r.session_update)}
    assert updates["ja"]["modalities"] == ["text", "audio"] and updates["ja"]["voice"] == "Nofish"
    assert updates["zh"]["modalities"] == ["text"] and updates["zh"]["voice"] == "Cherry"
    assert got["zh"] and not any(e["type"].startswith("response.audio") for e in got["zh"])  # text-only
    # The events reassemble into exactly the tones the fake sent, one per utterance, in order.
    q = PlayoutQueue(60, 0)
    for e in got["ja"]:
        parsed = audio_event(e)
        assert parsed is not None
        q.feed(parsed, 0)
    sent = next(r for r in fake.connections if r.session_update and r.session_update["translation"]["language"] == "ja")
    assert [hz for hz, _ in sent.tones] == [tone_hz(0), tone_hz(1)]
    total = sum(n for _, n in sent.tones)
    pcm = np.frombuffer(q.pull(total // 2 + 2400, 0), "<i2")
    assert q.stats.played_s * BYTES_PER_S == pytest.approx(total) and total / BYTES_PER_S > 1.0
    assert q.stats.bad_deltas == 0 and q.stats.utterances_played == 2
    first = sent.tones[0][1] // 2
    for x, hz in ((pcm[:first], tone_hz(0)), (pcm[first : total // 2], tone_hz(1))):
        spectrum = np.abs(np.fft.rfft(x.astype(np.float64)))
        assert np.argmax(spectrum) * 24000 / len(x) == pytest.approx(hz, abs=5)
    assert not pcm[total // 2 :].any()  # then silence


async def test_a_missing_device_is_retried_and_audio_still_queues_bounded() -> None:
    status = Status("test")
    voice = VoiceOutputs((VoiceOutputConfig(language="ja", device=99, max_buffer_s=2, prebuffer_s=0.5),), status)
    voice.start()
    try:
        link = status.links["voice:ja"]
        for _ in range(200):
            if link.state == LinkState.RECONNECTING:
                break
            await asyncio.sleep(0.01)
        assert link.state == LinkState.RECONNECTING and "99" in (link.last_error or "")
        # Audio keeps arriving while the device is away: it queues, bounded, whole utterances dropped.
        for k in range(4):
            voice.on_audio("ja", {"type": "response.audio.delta", "response_id": f"r{k}", "delta": secs(1.0, 1)})
            voice.on_audio("ja", {"type": "response.audio.done", "response_id": f"r{k}"})
        voice.on_audio("zh", {"type": "response.audio.delta", "response_id": "x", "delta": secs(1.0, 1)})  # not played
        state = voice.as_dict()["ja"]
        assert state["state"] == "reconnecting" and state["utterances_dropped"] == 2 and state["buffer_s"] == 2.0
        m = status.metrics.registry.get_sample_value
        assert m("captioner_voice_device_errors_total", {"language": "ja"}) == 1
        assert m("captioner_voice_utterances_total", {"language": "ja", "result": "dropped"}) == 2
        assert m("captioner_voice_buffer_seconds", {"language": "ja"}) == 2.0
    finally:
        await voice.stop(0.5)
    assert status.links["voice:ja"].state == LinkState.STOPPED
    assert voice.as_dict()["ja"]["queued"] == 0  # the rest was dropped on stop


def test_the_commented_example_entry_is_valid_and_shows_the_defaults() -> None:
    lines = (Path(__file__).parents[2] / "config" / "example.yaml").read_text().splitlines()
    start = lines.index(next(line for line in lines if line.startswith("voice_outputs: []")))
    block = []
    for line in lines[start + 1 :]:
        if not line.startswith("#"):
            break
        block.append(line[1:])
    entries = yaml.safe_load("voice_outputs:\n" + "\n".join(block))["voice_outputs"]
    c = cfg(entries, Q3, ("ja",))
    assert c.voice_outputs == (VoiceOutputConfig(language="ja"),)


async def test_reload_asks_audio_only_of_the_language_that_gained_a_voice() -> None:
    from tests.support.daemon_harness import GatedDaemon, ScriptedCapture, until

    fake = FakeTranslator(api_key=KEY)
    await fake.start()
    raw: dict[str, Any] = {
        "translator": {"url": fake.url, "api_key": KEY, "targets": ["ja", "zh"]},
        "obs": {"enabled": False},
        "http": {"enabled": False},
    }
    daemon = GatedDaemon(parse(raw), capture_factory=ScriptedCapture)  # type: ignore[arg-type]
    daemon.finals = []
    daemon.budget.limit = 100
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))

    def modalities() -> dict[str, list[str]]:
        """The newest open connection's modalities, per target."""
        updates = [r.session_update for r in fake.connections if r.open and r.session_update]
        return {u["translation"]["language"]: u["modalities"] for u in updates}

    try:
        await until(lambda: modalities() == {"ja": ["text"], "zh": ["text"]}, what="text-only sessions")
        assert daemon.status.as_dict()["voice"] == {}
        await daemon.apply(parse({**raw, "voice_outputs": [{"language": "ja", "device": 99}]}))
        await until(lambda: modalities() == {"ja": ["text", "audio"], "zh": ["text"]}, what="ja with audio")
        assert len(fake.connections) == 3  # ja reconnected, zh untouched
        await until(lambda: daemon.status.as_dict()["voice"]["ja"]["state"] == "reconnecting", what="voice:ja")
        await daemon.apply(parse(raw))
        await until(lambda: modalities() == {"ja": ["text"], "zh": ["text"]}, what="text-only again")
        assert daemon.status.as_dict()["voice"] == {} and len(fake.connections) == 4
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await fake.stop()
