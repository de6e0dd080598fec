"""The fake LiveTranslate server's faults and strictness: bad input refused as the service does, injected failures."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
import pytest

from tests.support import fake_translator_client
from tests.support.fake_translator import Q3_MODEL, Q35_MODEL, RATE_LIMIT_REASON, FakeTranslator
from tests.support.fake_translator_client import (
    TWO_BURSTS,
    configure,
    connect,
    recv,
    recv_until,
    send_audio,
    silence,
    tone,
)

# The shared fixtures, bound by name: imported, they would be flagged F811 at every test that asks for one.
fake = fake_translator_client.fake
http = fake_translator_client.http


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_invalid_updates_give_nested_errors(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, fake, model=Q3_MODEL)
    await recv(ws)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"modalities": ["audio"], "translation": {"language": "en"}}, "session.modalities", ""),
        ({"modalities": ["text"]}, "session.translation", "Invalid translation parameter."),
        ({"modalities": ["text"], "translation": {"language": "uk"}}, "session.translation.language", ""),
        # Q3 "ar" is text-only, so asking for audio is refused.
        ({"modalities": ["text", "audio"], "translation": {"language": "ar"}}, "session.modalities", ""),
    ]
    for session, param, message in cases:
        await ws.send_json({"type": "session.update", "session": session})
        ev = await recv(ws)
        assert ev["type"] == "error", ev
        err = ev["error"]
        assert (err["type"], err["code"], err["param"]) == ("invalid_request_error", "invalid_value", param)
        assert message in err["message"]
    await ws.send_json(
        {"type": "session.update", "session": {"translation": {"language": "ar"}, "modalities": ["text"]}}
    )
    assert (await recv(ws))["type"] == "session.updated"
    await ws.close()


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_bad_client_events_give_errors_and_connection_survives(
    fake: FakeTranslator, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, fake)
    await recv(ws)
    await send_audio(ws, silence(0.2))  # before session.updated: the client should not do this
    for raw in (
        json.dumps({"type": "response.create"}),
        "{not json",
        json.dumps({"type": "input_audio_buffer.append", "audio": "***"}),
        json.dumps({"type": "input_audio_buffer.commit"}),
    ):  # VAD mode: commit is invalid
        await ws.send_str(raw)
        ev = await recv(ws)
        assert ev["type"] == "error" and ev["error"]["type"] == "invalid_request_error", ev
    await ws.send_json({"type": "session.update", "session": {"translation": {"language": "en"}}})
    assert (await recv(ws))["type"] == "session.updated"
    rec = fake.connections[0]
    assert rec.audio_before_update_bytes == 6400 and rec.audio_bytes == 6400
    assert rec.client_event_types[:4] == ["input_audio_buffer.append"] * 2 + ["response.create", "<invalid-json>"]
    await ws.close()


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_reject_next_then_recover(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    fake.reject_next(2, status=429)
    for _ in range(2):
        with pytest.raises(aiohttp.WSServerHandshakeError) as ei:
            await connect(http, fake)
        assert ei.value.status == 429
    ws = await connect(http, fake)
    assert (await recv(ws))["type"] == "session.created"
    assert fake.handshakes_rejected == 2
    await ws.close()


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_stall_receives_audio_but_sends_nothing(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, fake)
    await configure(ws, modalities=["text"], translation={"language": "en"})
    fake.stall = True
    await send_audio(ws, TWO_BURSTS)
    await ws.send_json({"type": "session.finish"})
    with pytest.raises(asyncio.TimeoutError):
        await ws.receive(timeout=0.3)
    assert fake.connections[0].audio_bytes == len(TWO_BURSTS)
    fake.stall = False
    await send_audio(ws, tone(0.5) + silence(0.7))
    events = await recv_until(ws, "response.done")
    # Stalled audio consumed no script lines.
    assert next(e for e in events if e["type"] == "response.text.done")["text"].strip() == "[en] hello world"
    await ws.close()


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_close_after_events_only_hits_next_connection(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    fake.close_after_events(2, code=1011, reason="InternalError")
    ws = await connect(http, fake)
    await configure(ws, modalities=["text"], translation={"language": "en"})
    msg = await ws.receive(timeout=3)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1011 and msg.extra == "InternalError"
    ws2 = await connect(http, fake)
    await configure(ws2, modalities=["text"], translation={"language": "en"})
    await ws2.close()
    assert fake.connections[0].server_close_code == 1011 and fake.connections[1].server_close_code is None


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_rate_limit_closes_with_1007(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    fake.rate_limit_per_minute = 1
    ws = await connect(http, fake)
    assert (await recv(ws))["type"] == "session.created"
    ws2 = await connect(http, fake)  # accepted, then closed at once
    msg = await ws2.receive(timeout=3)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1007 and msg.extra == RATE_LIMIT_REASON
    await ws.close()


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_inject_and_drop_all(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, fake)
    await recv(ws)
    fake.inject({"type": "some.future.event", "x": 1})
    fake.inject("{broken")
    assert (await recv(ws))["type"] == "some.future.event"
    assert (await ws.receive(timeout=3)).data == "{broken"
    fake.drop_all()
    msg = await ws.receive(timeout=3)
    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert await fake.await_until(lambda f: not f.connections[0].open)
    assert fake.connections[0].dropped and not fake.connections[0].closed_by_client


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_invalid_corpus_gives_an_error_and_changes_nothing(
    fake: FakeTranslator, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, fake)
    await configure(ws, modalities=["text"], translation={"language": "de", "corpus": {"phrases": {"a": "b"}}})
    for corpus in (["castle"], None, {}, {"phrases": ["castle"]}, {"phrases": {"castle": 5}}, {"phrases": {"": "x"}}):
        await ws.send_json(
            {
                "type": "session.update",
                "session": {"modalities": ["text"], "translation": {"language": "de", "corpus": corpus}},
            }
        )
        ev = await recv(ws)
        assert ev["type"] == "error", (corpus, ev)
        assert (ev["error"]["code"], ev["error"]["param"]) == ("invalid_value", "session.translation.corpus.phrases")
    assert fake.connections[0].phrases == {"a": "b"}
    await ws.close()


# ---- as strict as the docs (#14) -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "voice", "accepted"),
    [
        (Q3_MODEL, "Cherry", True),
        (Q3_MODEL, "Tina", False),  # a Q3.5 voice
        (Q35_MODEL, "Tina", True),
        (Q35_MODEL, "qwen-translate-vc-abc123", True),  # a pre-created clone id
        (Q35_MODEL, "Chelsie", False),
    ],
)
async def test_voices_per_model(
    fake: FakeTranslator, http: aiohttp.ClientSession, model: str, voice: str, accepted: bool
) -> None:
    ws = await connect(http, fake, model)
    assert (await recv(ws))["type"] == "session.created"
    await ws.send_json({"type": "session.update", "session": {"voice": voice, "translation": {"language": "ja"}}})
    msg = await ws.receive(timeout=3.0)
    if accepted:
        assert json.loads(msg.data)["type"] == "session.updated"
    else:  # observed: close 1011 "InternalError.Algo.InvalidParameter: Voice '...' is not supported." (§7)
        assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1011
        assert f"Voice '{voice}' is not supported" in str(msg.extra)
    await ws.close()


async def test_q3_takes_only_its_asr_model_and_the_language_alone(
    fake: FakeTranslator, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, fake, Q3_MODEL)
    assert (await recv(ws))["type"] == "session.created"
    wrong = {"model": "paraformer-realtime-v2", "language": "ja"}
    await ws.send_json(
        {"type": "session.update", "session": {"input_audio_transcription": wrong, "translation": {"language": "en"}}}
    )
    err = await recv(ws)
    assert err["type"] == "error" and err["error"]["param"] == "session.input_audio_transcription.model"
    # The language alone (Q3 guide: source language and transcript output are separate settings): no transcript.
    await ws.send_json(
        {
            "type": "session.update",
            "session": {"input_audio_transcription": {"language": "ja"}, "translation": {"language": "en"}},
        }
    )
    assert (await recv(ws))["type"] == "session.updated"
    await send_audio(ws, tone(1.0) + silence(1.0))
    events = await recv_until(ws, "response.done")
    assert not any(e["type"].startswith("conversation.item.input_audio_transcription") for e in events)
    await ws.close()


async def test_audio_with_an_odd_byte_count_is_refused(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, fake)
    await configure(ws, translation={"language": "ja"})
    await ws.send_json({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x00\x01\x02").decode()})
    err = await recv(ws)
    assert err["type"] == "error" and err["error"]["param"] == "audio"
    assert fake.connections[0].audio_bytes == 0
    await ws.close()


async def test_finish_can_take_seconds_like_the_service(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    fake.finish_delay_s = 1.0
    ws = await connect(http, fake)
    await configure(ws, translation={"language": "ja"})
    await send_audio(ws, tone(0.8))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await ws.send_json({"type": "session.finish"})
    events = await recv_until(ws, "session.finished")
    assert loop.time() - started >= 1.0
    assert "response.done" in [e["type"] for e in events]  # the last utterance still came, then finished
    await ws.close()


@pytest.mark.parametrize("per_response", [False, True])
async def test_usage_cumulative_or_per_response_with_documented_details_only(
    fake: FakeTranslator, http: aiohttp.ClientSession, per_response: bool
) -> None:
    fake.usage_per_response = per_response
    ws = await connect(http, fake)
    await configure(ws, translation={"language": "ja"}, modalities=["text"])
    await send_audio(ws, TWO_BURSTS)
    dones = [e for e in await recv_until(ws, "response.done", 2) if e["type"] == "response.done"]
    first, second = (d["response"]["usage"] for d in dones)
    for usage in (first, second):
        assert set(usage["input_tokens_details"]) == {"text_tokens", "audio_tokens"}
        assert set(usage["output_tokens_details"]) == {"text_tokens"}
    if per_response:  # each response counts its own audio: about the same for two equal bursts
        assert abs(second["input_tokens"] - first["input_tokens"]) <= first["input_tokens"] // 2
    else:  # cumulative: the second includes the first
        assert second["input_tokens"] >= first["input_tokens"] + first["input_tokens"] // 2
    await ws.close()


async def test_echo_override_changes_what_session_updated_says(
    fake: FakeTranslator, http: aiohttp.ClientSession
) -> None:
    fake.echo_override = {"voice": "Cindy"}
    ws = await connect(http, fake)
    updated = await configure(ws, translation={"language": "ja"}, voice="Tina")
    assert updated["session"]["voice"] == "Cindy"
    await ws.close()
