"""Tests for the fake LiveTranslate server, driven by a real aiohttp WebSocket client over loopback."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np
import pytest
import pytest_asyncio

from tests.support.fake_translator import Q3_MODEL, Q35_MODEL, RATE_LIMIT_REASON, FakeTranslator

SCRIPT = ["hello world", "good morning everyone"]
Event = dict[str, Any]


def tone(seconds: float, amp: float = 0.3) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    return (np.sin(2 * np.pi * 440 * t) * amp * 32767).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return bytes(int(16000 * seconds) * 2)


TWO_BURSTS = tone(1.0) + silence(1.0) + tone(1.0) + silence(1.0)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeTranslator]:
    ft = FakeTranslator(script=SCRIPT)
    await ft.start()
    yield ft
    await ft.stop()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def connect(
    http: aiohttp.ClientSession, fake: FakeTranslator, model: str = Q35_MODEL, key: str | None = "test-key"
) -> aiohttp.ClientWebSocketResponse:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return await http.ws_connect(f"{fake.url}?model={model}", headers=headers)


async def recv(ws: aiohttp.ClientWebSocketResponse) -> Event:
    msg = await ws.receive(timeout=3.0)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    ev: Event = json.loads(msg.data)
    return ev


async def recv_until(ws: aiohttp.ClientWebSocketResponse, etype: str, count: int = 1) -> list[Event]:
    out: list[Event] = []
    while sum(e["type"] == etype for e in out) < count:
        out.append(await recv(ws))
    return out


async def send_audio(ws: aiohttp.ClientWebSocketResponse, pcm: bytes) -> None:
    for i in range(0, len(pcm), 3200):  # 100 ms chunks, faster than real time (§6)
        await ws.send_json({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i : i + 3200]).decode()})


async def configure(ws: aiohttp.ClientWebSocketResponse, **session: Any) -> Event:
    assert (await recv(ws))["type"] == "session.created"
    await ws.send_json({"type": "session.update", "session": session})
    ev = await recv(ws)
    assert ev["type"] == "session.updated", ev
    return ev


def displays(events: list[Event], etype: str) -> list[str]:
    return [e["text"] + e["stash"] for e in events if e["type"] == etype]


def has_retraction(shown: list[str]) -> bool:
    return any(not b.startswith(a) for a, b in itertools.pairwise(shown))


def per_response(events: list[Event]) -> list[list[Event]]:
    """Split a stream at response.done, keeping the events that led up to each."""
    groups: list[list[Event]] = [[]]
    for e in events:
        groups[-1].append(e)
        if e["type"] == "response.done":
            groups.append([])
    return [g for g in groups if any(e["type"] == "response.done" for e in g)]


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_bad_key_and_unknown_model_rejected_before_upgrade(
    fake: FakeTranslator, http: aiohttp.ClientSession
) -> None:
    for key in ("wrong", None):
        with pytest.raises(aiohttp.WSServerHandshakeError) as ei:
            await connect(http, fake, key=key)
        assert ei.value.status == 401
        assert ei.value.headers is not None and ei.value.headers.get("x-request-id")
    with pytest.raises(aiohttp.WSServerHandshakeError) as ei:
        await connect(http, fake, model="qwen3.8-livetranslate-flash-realtime")
    assert ei.value.status == 404
    assert fake.handshakes_rejected == 3
    assert fake.connections == []


@pytest.mark.asyncio
@pytest.mark.timeout(30)
@pytest.mark.parametrize(("model", "voice"), [(Q3_MODEL + "-2025-09-22", "Cherry"), (Q35_MODEL, "Tina")])
async def test_created_then_update_then_updated(
    fake: FakeTranslator, http: aiohttp.ClientSession, model: str, voice: str
) -> None:
    ws = await connect(http, fake, model=model)
    created = await recv(ws)
    assert created["type"] == "session.created"
    s = created["session"]
    assert (s["object"], s["model"], s["voice"], s["modalities"]) == (
        "realtime.session",
        model,
        voice,
        ["text", "audio"],
    )
    assert s["id"]
    await ws.send_json(
        {"type": "session.update", "session": {"modalities": ["text"], "translation": {"language": "fr"}}}
    )
    updated = await recv(ws)
    assert updated["type"] == "session.updated"
    eff = updated["session"]
    assert eff["modalities"] == ["text"] and eff["translation"]["language"] == "fr"
    assert eff["voice"] == voice and eff["id"] == s["id"]  # merged with defaults
    rec = fake.connections[0]
    assert rec.model == model and rec.session_update == {"modalities": ["text"], "translation": {"language": "fr"}}
    assert rec.headers["Authorization"] == "Bearer test-key"
    await ws.close()


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
async def test_two_segments_text_only_q35(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, fake)
    await configure(ws, modalities=["text"], voice="Tina", translation={"language": "de"})
    await send_audio(ws, TWO_BURSTS)
    events = await recv_until(ws, "response.done", 2)
    groups = per_response(events)
    finals = ["[de] hello world", "[de] good morning everyone"]
    assert [next(e["text"] for e in g if e["type"] == "response.text.done").strip() for g in groups] == finals
    assert not any(e["type"].startswith("response.audio") for e in events)
    for g, final, src in zip(groups, finals, SCRIPT, strict=True):
        types = [e["type"] for e in g]
        order = [
            "input_audio_buffer.speech_started",
            "conversation.item.input_audio_transcription.text",
            "response.created",
            "response.output_item.added",
            "conversation.item.created",
            "response.content_part.added",
            "response.text.text",
            "input_audio_buffer.speech_stopped",
            "response.text.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.input_audio_transcription.completed",
            "response.done",
        ]
        assert [types.index(t) for t in order] == sorted(types.index(t) for t in order)
        started = next(e for e in g if e["type"] == "input_audio_buffer.speech_started")
        created = next(e for e in g if e["type"] == "conversation.item.created")
        assert created["previous_item_id"] == started["item_id"]
        tt = [e for e in g if e["type"] == "response.text.text"]
        assert tt[0]["text"] == "" and tt[0]["stash"]
        assert all(final.startswith(e["text"]) for e in tt)
        assert has_retraction(displays(g, "response.text.text"))
        asr = [e for e in g if e["type"] == "conversation.item.input_audio_transcription.text"]
        assert all(e["text"] == "" and "emotion" in e and e["language"] for e in asr)
        assert has_retraction([e["stash"] for e in asr])
        done = next(e for e in g if e["type"] == "conversation.item.input_audio_transcription.completed")
        assert done["transcript"] == src and done["emotion"] == ""
        resp = g[-1]["response"]
        assert resp["status"] == "completed" and resp["output"][0]["content"][0]["text"] == final
    u1, u2 = (g[-1]["response"]["usage"] for g in groups)
    assert u1["input_tokens_details"]["audio_tokens"] == round(1.6 * 7)  # 1.6 s received by the first end
    assert u2["input_tokens"] > u1["input_tokens"] and u2["total_tokens"] > u1["total_tokens"]
    assert "audio_tokens" not in u1["output_tokens_details"]
    await ws.close()
    await fake.await_until(lambda f: not f.connections[0].open)
    rec = fake.connections[0]
    assert rec.translations == finals and fake.segments_emitted == {"de": 2}
    assert rec.audio_bytes == len(TWO_BURSTS) and rec.audio_before_update_bytes == 0


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_two_segments_text_audio_q3(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, fake, model=Q3_MODEL)
    await configure(
        ws,
        modalities=["text", "audio"],
        voice="Cherry",
        translation={"language": "ja"},
        input_audio_transcription={"model": "qwen3-asr-flash-realtime", "language": "en"},
    )
    await send_audio(ws, TWO_BURSTS)
    events = await recv_until(ws, "response.done", 2)
    types = {e["type"] for e in events}
    assert "response.text.text" not in types and "response.text.done" not in types
    assert not any(t.startswith("input_audio_buffer.speech") for t in types)  # Q3.5-only events
    assert "conversation.item.created" not in types
    groups = per_response(events)
    finals = [next(e for e in g if e["type"] == "response.audio_transcript.done")["transcript"] for g in groups]
    assert finals == ["[ja] hello world", "[ja] good morning everyone"]
    for g in groups:
        tt = [e for e in g if e["type"] == "response.audio_transcript.text"]
        assert tt[0]["text"] == "" and tt[0]["stash"] and has_retraction(displays(g, tt[0]["type"]))
        deltas = [base64.b64decode(e["delta"]) for e in g if e["type"] == "response.audio.delta"]
        assert any(len(d) % 2 for d in deltas) and sum(map(len, deltas)) % 2 == 0
        types_g = [e["type"] for e in g]
        assert types_g.index("response.audio_transcript.done") < types_g.index("response.audio.done")
        asr = [e for e in g if e["type"] == "conversation.item.input_audio_transcription.text"]
        assert asr and all("emotion" not in e for e in asr)
    u1, u2 = (g[-1]["response"]["usage"] for g in groups)
    assert u1["input_tokens_details"]["audio_tokens"] == 20  # 1.6 s × 12.5
    assert u1["output_tokens_details"]["audio_tokens"] > 0
    assert u2["output_tokens"] > u1["output_tokens"]
    await ws.close()


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_q3_asr_is_opt_in_and_q35_asr_can_be_disabled(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    for model, extra in ((Q3_MODEL, {}), (Q35_MODEL, {"input_audio_transcription": None})):
        ws = await connect(http, fake, model=model)
        await configure(ws, modalities=["text"], translation={"language": "en"}, **extra)
        await send_audio(ws, tone(0.5) + silence(0.7))
        events = await recv_until(ws, "response.done")
        assert not any("transcription" in e["type"] for e in events)
        await ws.close()


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_finish_mid_segment_flushes_then_finished_and_stays_open(
    fake: FakeTranslator, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, fake)
    await configure(ws, modalities=["text"], translation={"language": "en"})
    await send_audio(ws, tone(0.5))  # no trailing silence: VAD alone would never end it
    await ws.send_json({"type": "session.finish"})
    events = await recv_until(ws, "session.finished")
    types = [e["type"] for e in events]
    assert types[-1] == "session.finished"
    assert types.index("response.text.done") < types.index("response.done") < len(types) - 1
    assert next(e for e in events if e["type"] == "response.text.done")["text"].strip() == "[en] hello world"
    # The server must not close after session.finished (§4.5): it still answers.
    await ws.send_json({"type": "session.finish"})
    assert (await recv(ws))["type"] == "session.finished"
    assert not ws.closed
    await ws.close()
    assert await fake.await_until(lambda f: f.connections[0].closed_by_client)
    assert fake.connections[0].finished


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_noise_and_short_segments_are_ignored(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, fake)
    await configure(ws, modalities=["text"], translation={"language": "en"})
    await send_audio(ws, tone(2.0, amp=0.01) + tone(0.1) + silence(1.0) + tone(0.1))
    await ws.send_json({"type": "session.finish"})
    assert [e["type"] for e in await recv_until(ws, "session.finished")] == ["session.finished"]
    await ws.close()


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_turn_detection_silence_overrides_default(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, fake)
    await configure(
        ws,
        modalities=["text"],
        translation={"language": "en"},
        turn_detection={"type": "server_vad", "silence_duration_ms": 300},
    )
    await send_audio(ws, tone(0.5) + silence(0.3))  # < the fake's 600 ms default
    events = await recv_until(ws, "response.done")
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    assert stopped["audio_end_ms"] == 500
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
async def test_manual_mode_commit_q35(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, fake)
    await configure(ws, modalities=["text"], translation={"language": "en"}, turn_detection=None)
    await send_audio(ws, tone(0.5) + silence(2.0))
    await ws.send_json({"type": "input_audio_buffer.commit"})
    events = await recv_until(ws, "response.done")
    assert events[0]["type"] == "input_audio_buffer.committed"
    assert "input_audio_buffer.speech_started" not in [e["type"] for e in events]
    await ws.send_json({"type": "input_audio_buffer.commit"})
    assert (await recv(ws))["type"] == "error"  # empty buffer
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
async def test_thread_mode_and_script_continues_across_connections(http: aiohttp.ClientSession) -> None:
    ft = FakeTranslator(script=SCRIPT)
    ft.start_in_thread()
    try:
        for expected in ("[en] hello world", "[en] good morning everyone", "[en] utterance 3"):
            ws = await connect(http, ft)
            await configure(ws, modalities=["text"], translation={"language": "en"})
            await send_audio(ws, tone(0.5) + silence(0.7))
            events = await recv_until(ws, "response.done")
            assert next(e for e in events if e["type"] == "response.text.done")["text"].strip() == expected
            ft.drop_all()  # from another thread: must be marshalled onto the server loop
            await ws.receive(timeout=3)
        assert ft.wait_until(lambda f: len(f.connections) == 3 and not any(r.open for r in f.snapshot()))
        assert ft.segments_emitted == {"en": 3}
    finally:
        ft.stop_thread()


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_corpus_phrases_force_translations_q35(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    fake.script = ["the Castle and the castles", "the old castle"]
    phrases = {"castle": "KASTEL", "old castle": "ALTBURG"}
    ws = await connect(http, fake)
    updated = await configure(ws, modalities=["text"], translation={"language": "de", "corpus": {"phrases": phrases}})
    assert updated["session"]["translation"]["corpus"] == {"phrases": phrases}
    await send_audio(ws, TWO_BURSTS)
    events = await recv_until(ws, "response.done", 2)
    finals = [e["text"].strip() for e in events if e["type"] == "response.text.done"]
    # whole words, case-insensitive, the longest term first
    assert finals == ["[de] the KASTEL and the castles", "[de] the ALTBURG"]
    shown = displays(events, "response.text.text")
    assert any("KASTEL" in s for s in shown) and not any("Castle" in s for s in shown)
    # the source transcript is what was said
    asr = [e["transcript"] for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert asr == fake.script
    await ws.close()
    rec = fake.connections[0]
    assert rec.phrases == phrases and rec.translations == finals


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_corpus_phrases_are_ignored_on_q3(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    fake.script = ["the old castle"]
    ws = await connect(http, fake, model=Q3_MODEL)
    await configure(ws, modalities=["text"], translation={"language": "ja", "corpus": {"phrases": {"castle": "X"}}})
    await send_audio(ws, tone(0.5) + silence(0.7))
    events = await recv_until(ws, "response.done")
    assert [e["text"].strip() for e in events if e["type"] == "response.text.done"] == ["[ja] the old castle"]
    await ws.close()
    assert fake.connections[0].phrases == {}


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
