"""The fake speaks qwen3.8 as the 3.8 digest says, refuses what it says the service refuses, and models the
voice clone rules and both readings of the same-language skip."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.support import fake_translator_client
from tests.support.fake_translator import Q35_MODEL, Q38_MODEL, FakeTranslator
from tests.support.fake_translator_client import TWO_BURSTS, configure, connect, recv, recv_until, send_audio

http = fake_translator_client.http

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]

NESTED: dict[str, Any] = {
    "output_modalities": ["text"],
    "audio": {
        "input": {
            "format": {"type": "pcm", "sample_rate": 16000},
            "turn_detection": {"type": "speaker_detection", "threshold": 0.5},
        },
        "output": {"voice": "Tina"},
    },
    "voice": "Tina",
    "translation": {"language": "ja"},
}


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeTranslator]:
    ft = FakeTranslator(script=["hello world", "good morning everyone"], speakers=[1, 2])
    await ft.start()
    yield ft
    await ft.stop()


async def refused(ws: aiohttp.ClientWebSocketResponse, session: dict[str, Any]) -> dict[str, Any]:
    assert (await recv(ws))["type"] == "session.created"
    await ws.send_json({"type": "session.update", "session": session})
    return await recv(ws)


async def test_session_created_has_the_nested_shape(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, fake, model=Q38_MODEL)
    created = (await recv(ws))["session"]
    assert created["input_modalities"] == ["audio"] and "modalities" not in created
    assert created["audio"]["output"]["voice"] == "Tina"
    assert created["audio"]["input"]["turn_detection"]["type"] == "speaker_detection"


@pytest.mark.parametrize(
    ("session", "message", "param"),
    [
        ({"voice": "Tina", "output_modalities": ["text"]}, "Invalid translation parameter.", "session.translation"),
        ({**NESTED, "modalities": ["text"]}, "do not mix field hierarchies", "session.modalities"),
        ({**NESTED, "input_audio_transcription": None}, "do not mix", "session.input_audio_transcription"),
        ({**NESTED, "output_modalities": ["audio"]}, "Invalid output_modalities", "session.output_modalities"),
        (
            {**NESTED, "translation": {"language": "en", "same_language_skip_options": {"skip_text": True}}},
            "Invalid translation parameter.",
            "session.translation.same_language_skip_options",
        ),
        (
            {**NESTED, "voice": "Tina", "enable_voice_clone": True, "voice_clone_options": {"frequency": "once"}},
            "Voice must be 'default'",
            "session.voice",
        ),
        (
            {**NESTED, "voice": "Tina", "enable_voice_clone": True, "voice_clone_options": {"frequency": "never"}},
            "cloned voice id",
            "session.voice",
        ),
    ],
)
async def test_refusals_are_error_events(
    fake: FakeTranslator, http: aiohttp.ClientSession, session: dict[str, Any], message: str, param: str
) -> None:
    ev = await refused(await connect(http, fake, model=Q38_MODEL), session)
    assert ev["type"] == "error"
    assert ev["error"]["code"] == "invalid_value" and message in ev["error"]["message"], ev
    assert ev["error"]["param"] == param


@pytest.mark.parametrize(
    ("session", "voice"),
    [({k: v for k, v in NESTED.items() if k != "voice"}, "Chelsie"), ({**NESTED, "voice": "default"}, "default")],
)
async def test_a_missing_or_default_voice_closes_1011(
    fake: FakeTranslator, http: aiohttp.ClientSession, session: dict[str, Any], voice: str
) -> None:
    ws = await connect(http, fake, model=Q38_MODEL)
    assert (await recv(ws))["type"] == "session.created"
    await ws.send_json({"type": "session.update", "session": session})
    msg = await ws.receive(timeout=3)
    assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1011
    assert msg.extra == f"InternalError.Algo.InvalidParameter: Voice '{voice}' is not supported."


@pytest.mark.parametrize("model", [Q38_MODEL, Q35_MODEL])
async def test_a_clone_session_with_voice_default_is_accepted(
    fake: FakeTranslator, http: aiohttp.ClientSession, model: str
) -> None:
    clone = {"voice": "default", "enable_voice_clone": True, "voice_clone_options": {"frequency": "always"}}
    if model == Q38_MODEL:
        session = {**NESTED, **clone, "output_modalities": ["text", "audio"]}
    else:
        session = {"modalities": ["text", "audio"], **clone, "translation": {"language": "ja"}}
    updated = await configure(await connect(http, fake, model=model), **session)
    assert updated["session"]["voice_clone_options"] == {"frequency": "always"}


async def test_mixed_fields_are_ignored_when_told(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    fake.mixed_layout = "ignore"
    await configure(await connect(http, fake, model=Q38_MODEL), **NESTED, modalities=["text"])


async def test_nested_voice_echoes_the_default_unless_sent(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    session = {**NESTED, "voice": "Cindy", "audio": {"input": NESTED["audio"]["input"]}}
    updated = await configure(await connect(http, fake, model=Q38_MODEL), **session)
    assert updated["session"]["audio"]["output"]["voice"] == "Tina"  # the observed quirk


async def test_commit_is_refused(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, fake, model=Q38_MODEL)
    await configure(ws, **NESTED)
    await ws.send_json({"type": "input_audio_buffer.commit"})
    assert (await recv(ws))["error"]["message"] == "Invalid value: 'input_audio_buffer.commit'"


@pytest.mark.parametrize("usage", [False, True])
async def test_event_flow_speakers_items_and_deltas(
    fake: FakeTranslator, http: aiohttp.ClientSession, usage: bool
) -> None:
    fake.q38_usage = usage
    ws = await connect(http, fake, model=Q38_MODEL)
    await configure(ws, **NESTED)
    await send_audio(ws, TWO_BURSTS)
    events = await recv_until(ws, "response.done", 2)
    started = [e for e in events if e["type"] == "input_audio_buffer.speech_started"]
    assert [e["speaker_id"] for e in started] == [1, 2]
    created = [e for e in events if e["type"] == "conversation.item.created"]
    sources = [e for e in created if e["item"]["content"] == [{"type": "input_audio"}]]
    translations = [e for e in created if e["item"]["content"] == []]
    assert [e["previous_item_id"] for e in translations] == [e["item_id"] for e in started]
    assert [e["item"]["id"] for e in sources] == [e["item_id"] for e in started]
    for item, text in zip(
        [t["item"]["id"] for t in translations], ["[ja] hello world", "[ja] good morning everyone"], strict=True
    ):
        deltas = [e["delta"] for e in events if e["type"] == "response.text.delta" and e["item_id"] == item]
        done = [e["text"] for e in events if e["type"] == "response.text.done" and e["item_id"] == item]
        assert len(deltas) > 1 and "".join(deltas) == text and done == [text]
    asr = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert [e["transcript"] for e in asr] == ["hello world", "good morning everyone"]
    assert not [e for e in events if e["type"].endswith((".text.text", "transcription.text"))]
    dones = [e["response"] for e in events if e["type"] == "response.done"]
    assert all(("usage" in r) == usage for r in dones)
    assert fake.connections[0].speakers == [1, 2]


@pytest.mark.parametrize("reading", ["no_response", "empty"])
async def test_same_language_skip_readings(fake: FakeTranslator, http: aiohttp.ClientSession, reading: str) -> None:
    fake.skip_reading, fake.spoken = reading, ["en", "ja"]
    ws = await connect(http, fake, model=Q35_MODEL)
    skip = {"skip_text": True, "skip_audio": True}
    asr = {"model": "qwen3-asr-flash-realtime"}
    await configure(
        ws,
        modalities=["text"],
        voice="Tina",
        input_audio_transcription=asr,
        translation={"language": "en", "same_language_skip_options": skip},
    )
    await send_audio(ws, TWO_BURSTS)
    events = await recv_until(ws, "response.done", 2 if reading == "empty" else 1)
    first_completed = next(
        i for i, e in enumerate(events) if e["type"] == "conversation.item.input_audio_transcription.completed"
    )
    first = events[: first_completed + 1]
    texts = [e["text"].strip() for e in events if e["type"] == "response.text.done"]
    if reading == "no_response":
        assert not [e for e in first if e["type"].startswith("response.")]
        assert texts == ["[en] good morning everyone"]
    else:
        assert texts == ["", "[en] good morning everyone"]
    assert fake.connections[0].skipped == ["hello world"]
