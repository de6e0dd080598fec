"""The fake LiveTranslate server's protocol basics, driven by a real aiohttp WebSocket client over loopback."""

from __future__ import annotations

import base64

import aiohttp
import pytest

from tests.support import fake_translator_client
from tests.support.fake_translator import Q3_MODEL, Q35_MODEL, FakeTranslator
from tests.support.fake_translator_client import (
    SCRIPT,
    TWO_BURSTS,
    configure,
    connect,
    displays,
    has_retraction,
    per_response,
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
async def test_bad_key_and_unknown_model_rejected_before_upgrade(
    fake: FakeTranslator, http: aiohttp.ClientSession
) -> None:
    for key in ("wrong", None):
        with pytest.raises(aiohttp.WSServerHandshakeError) as ei:
            await connect(http, fake, key=key)
        assert ei.value.status == 401
        assert ei.value.headers is not None and ei.value.headers.get("x-request-id")
    with pytest.raises(aiohttp.WSServerHandshakeError) as ei:
        await connect(http, fake, model="qwen3.9-livetranslate-flash-realtime")
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
async def test_manual_mode_commit_q35(fake: FakeTranslator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, fake)
    await configure(ws, modalities=["text"], translation={"language": "en"}, turn_detection=None)
    await send_audio(ws, tone(0.5) + silence(2.0))  # 2 s of silence ends nothing: the client does
    await ws.send_json({"type": "input_audio_buffer.commit"})
    events = await recv_until(ws, "response.done")
    assert events[0]["type"] == "input_audio_buffer.committed"
    types = [e["type"] for e in events]
    assert "input_audio_buffer.speech_started" not in types and "input_audio_buffer.speech_stopped" not in types
    # the user's audio item (§5), then the translation item that names it as its source
    user, translation = (e for e in events if e["type"] == "conversation.item.created")
    assert user["item"]["role"] == "user" and user["item"]["content"] == [{"type": "input_audio"}]
    assert user["item"]["id"] == events[0]["item_id"] == translation["previous_item_id"]
    await ws.send_json({"type": "input_audio_buffer.commit"})
    assert (await recv(ws))["type"] == "error"  # empty buffer
    await send_audio(ws, tone(0.5))
    await ws.send_json({"type": "input_audio_buffer.clear"})
    assert (await recv(ws))["type"] == "input_audio_buffer.cleared"
    await ws.send_json({"type": "input_audio_buffer.commit"})
    assert (await recv(ws))["type"] == "error"  # cleared: empty again
    await ws.close()


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_manual_mode_finish_drops_what_was_never_committed(
    fake: FakeTranslator, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, fake)
    await configure(ws, modalities=["text"], translation={"language": "en"}, turn_detection=None)
    await send_audio(ws, tone(1.0) + silence(0.5))
    await ws.send_json({"type": "session.finish"})
    assert [e["type"] for e in await recv_until(ws, "session.finished")] == ["session.finished"]
    assert fake.connections[0].translations == []
    await ws.close()


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_commit_and_clear_are_refused_in_vad_mode_and_on_q3(
    fake: FakeTranslator, http: aiohttp.ClientSession
) -> None:
    for model in (Q35_MODEL, Q3_MODEL):  # qwen3.5 with its default turn_detection: the VAD
        ws = await connect(http, fake, model)
        await configure(ws, modalities=["text"], translation={"language": "en"})
        await send_audio(ws, tone(0.3))
        for etype in ("input_audio_buffer.commit", "input_audio_buffer.clear"):
            await ws.send_json({"type": etype})
            ev = await recv(ws)
            while ev["type"] != "error":  # the VAD's own events for the tone may come first
                ev = await recv(ws)
            assert ev["error"]["message"] == f"Invalid value: '{etype}'"
        await ws.close()


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
