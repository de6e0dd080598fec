"""Right with the real service and the real bill (#14): translator sessions against the strict fake, over real
loopback WebSockets: who bills and shows the source transcript, usage read either way, rotation on reported
tokens, fatal refusals, the service's echo, and a watchdog that music does not trip."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import pytest

from captioner.status import LinkState, Status
from captioner.translation.interpreter import Caption, UsageDelta
from tests.support.fake_translator import AUDIO_TOKENS_PER_S, Q3_MODEL, Q35_MODEL, FakeTranslator, image_tokens
from tests.support.images import jpeg
from tests.support.translator_harness import KEY, TWO_UTTERANCES, Harness, chunks

pytestmark = pytest.mark.timeout(90)
ASR = "qwen3-asr-flash-realtime"


@pytest.fixture
async def fake(inloop_fake: Callable[..., Awaitable[FakeTranslator]]) -> FakeTranslator:
    return await inloop_fake(api_key=KEY)


async def until(pred: Callable[[], bool], within: float = 10.0) -> bool:
    for _ in range(int(within / 0.02)):
        if pred():
            return True
        await asyncio.sleep(0.02)
    return pred()


# ---- 1, 2: one source transcript on screen; the source language reaches every session -------------------------
@pytest.mark.parametrize(
    ("model", "pin", "second_block", "second_billing"),
    [
        # Q3 is told a non-English source without the ASR model, so the second session bills no transcript.
        (Q3_MODEL, "all", {"language": "de"}, "off"),
        # Q3.5 can only be told inside the (billed) transcript block: every session by default ...
        (Q35_MODEL, "all", {"model": ASR, "language": "de"}, "billed, not shown"),
        # ... or, to save that, all but the first auto-detect.
        (Q35_MODEL, "one", None, "off"),
    ],
)
async def test_two_targets_show_each_source_sentence_once_and_every_session_knows_the_language(
    fake: FakeTranslator, model: str, pin: str, second_block: object, second_billing: str
) -> None:
    status, captions = Status("test"), list[Caption]()
    cfg = {
        "model": model,
        "source_language": "de",
        "targets": ("ja", "fr"),
        "transcribe_source": True,
        "pin_source_language": pin,
    }
    first = Harness(fake, status=status, captions=captions, **cfg)
    second = Harness(
        fake, target="fr", status=status, captions=captions, session_kw={"pin_source": pin == "all"}, **cfg
    )
    async with first, second:
        await first.connected()
        await second.connected()
        for chunk_pattern in (TWO_UTTERANCES,):
            first.feed_only(chunk_pattern)
            second.feed_only(chunk_pattern)
        assert len(await first.wait_finals(2, "ja")) == 2
        assert len(await first.wait_finals(2, "fr")) == 2
        await asyncio.sleep(0.3)  # any duplicate source caption from the second session would be here by now
    sources = [c.text for c in captions if c.final and c.language == "source"]
    assert sources == ["utterance 1", "utterance 2"]
    by_target = {rec.session["translation"]["language"]: rec.session_update for rec in fake.connections}
    assert by_target["ja"]["input_audio_transcription"] == {"model": ASR, "language": "de"}  # type: ignore[index]
    assert by_target["fr"].get("input_audio_transcription") == second_block  # type: ignore[union-attr]
    links = status.as_dict()["links"]
    assert links["translator:ja"]["source_transcript"] == "shown"
    assert links["translator:fr"]["source_transcript"] == second_billing
    assert links["translator:fr"]["source_language"] == ("auto-detected" if pin == "one" else "de")


async def test_the_source_transcript_a_session_bills_is_in_its_usage(fake: FakeTranslator) -> None:
    """Q3.5 bills the transcript as output text (§8): a session told the language pays for it, and the estimate
    sees it, even though that session's source captions are not shown."""
    billed: dict[bool, int] = {}
    for pin in (True, False):
        billed[pin] = await _text_out_billed(fake, pin)
    assert billed[True] > billed[False]


async def _text_out_billed(fake: FakeTranslator, pin: bool) -> int:
    usages: list[UsageDelta] = []
    async with Harness(fake, model=Q35_MODEL, source_language="en", session_kw={"pin_source": pin}) as h:
        h.session.on_usage = lambda _t, u: usages.append(u)
        await h.connected()
        await h.stream(TWO_UTTERANCES)
        await h.wait_finals(2)
        assert await until(lambda: len(usages) == 2)
        assert h.finals("source") == []  # not shown: nobody asked for it
    return sum(u.tokens.text_out for u in usages)


# ---- 3: rotation on the input tokens the service reports (images fill the context too) ----------------------------
async def test_rotation_counts_the_image_tokens_the_service_reports(fake: FakeTranslator) -> None:
    picture = jpeg(1280, 720, pad=2000)
    async with Harness(fake, model=Q35_MODEL) as h:
        h.session.rotate_after_tokens = 2 * image_tokens("q3.5", 1280, 720)  # ~130 s of audio, or two frames
        await h.connected()
        await h.stream([("tone", 0.3)])
        assert await until(lambda: h.session.image_refusal() is None)
        assert h.session.send_image(picture)
        await asyncio.sleep(0.6)
        assert h.session.send_image(picture)
        await h.stream([("tone", 0.6), ("silence", 1.0)])
        await h.wait_finals(1)
        assert await until(
            lambda: h.metric("captioner_translator_rotations_total", target="ja", reason="context") >= 1
        ), "rotated once the reported tokens (audio + images) reached the limit"
        assert len(fake.connections) >= 2


# ---- 4: usage reported per response or cumulatively: the bill is right either way --------------------------------
@pytest.mark.parametrize("per_response", [False, True], ids=["cumulative", "per_response"])
async def test_billed_tokens_are_right_whether_usage_is_cumulative_or_per_response(
    fake: FakeTranslator, per_response: bool
) -> None:
    fake.usage_per_response = per_response
    async with Harness(fake) as h:
        await h.connected()
        for _ in range(3):
            await h.stream([("tone", 0.8), ("silence", 1.0)])
        await h.wait_finals(3)
        assert await until(lambda: h.session.link.info["usage_reporting"] != "unknown")
        assert h.session.link.info["usage_reporting"] == ("per_response" if per_response else "cumulative")
        rec = fake.connections[0]
        sent_tokens = round(rec.audio_bytes / 32_000 * AUDIO_TOKENS_PER_S["q3"])
        billed = h.metric("captioner_usage_tokens_total", target="ja", direction="input")
        # The last response's figure covers the audio up to it; the silence after it is not billed yet.
        assert sent_tokens - 15 <= billed <= sent_tokens
        assert h.status.as_dict()["links"]["translator:ja"]["usage_reporting"] == h.session.link.info["usage_reporting"]


# ---- 6: a model or voice the service does not have stops that session, with one clear line ----------------------
async def test_unknown_model_is_fatal_for_the_session_not_a_retry_loop(
    fake: FakeTranslator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "captioner")
    async with Harness(fake, model=Q3_MODEL + "-2031-01-01") as h:  # a snapshot this service does not serve
        assert await until(lambda: h.session.link.state == LinkState.FAILED, 5)
        await asyncio.sleep(1.5)  # the harness backoff is 0.2-0.5 s: a retry loop would have tried again
        assert fake.handshakes_rejected == 1
        assert "model not found" in (h.session.link.last_error or "")
        assert h.metric("captioner_translator_connects_total", target="ja", result="fatal") == 1
    lines = [r for r in caplog.records if "model not found" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING


async def test_a_voice_the_service_refuses_stops_the_session(fake: FakeTranslator) -> None:
    async with Harness(fake, model=Q35_MODEL, voice="Nobody Here") as h:
        assert await until(lambda: h.session.link.state == LinkState.FAILED, 5)
        await asyncio.sleep(1.5)
        assert len(fake.connections) == 1
        assert "Nobody Here" in (h.session.link.last_error or "")


# ---- 7: what the service changed of what was asked is said once ------------------------------------------------------
async def test_a_changed_echo_is_warned_once_in_log_and_status(
    fake: FakeTranslator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "captioner")
    fake.echo_override = {"voice": "Cherry", "translation": {"language": "en"}}
    async with Harness(fake, model=Q35_MODEL, transcribe_source=True) as h:
        await h.connected()
        fake.drop_all()  # a reconnect gets the same echo: not news again
        assert await until(lambda: len(fake.connections) == 2 and h.session.link.state == LinkState.CONNECTED)
        warnings = h.status.as_dict()["links"]["translator:ja"]["session_warnings"]
    assert sorted(w.split(":")[0] for w in warnings) == [
        "the service changed translation.language",
        "the service changed voice",
    ]
    assert 'asked "ja", got "en"' in " ".join(warnings)
    assert len([r for r in caplog.records if "the service changed" in r.getMessage()]) == 2


# ---- 8: music is not a hang; a hang still is ---------------------------------------------------------------
async def test_q3_sound_the_service_does_not_hear_as_speech_costs_few_reconnects(fake: FakeTranslator) -> None:
    fake.speech_rms = 2.0  # the service hears no speech in it (music, noise); the client sends it all the same
    async with Harness(fake, watchdog_speech_s=2.0) as h:
        h.session.watchdog_s = 1.0
        await h.connected()
        await h.stream([("tone", 12.0)], pace_s=0.1)  # 12 s of it, in real time
        rotations = h.metric("captioner_translator_rotations_total", target="ja", reason="watchdog")
    # A watchdog every second after 2 s of sound would be ~9; waiting twice as long after each fruitless one: 2.
    assert 1 <= rotations <= 3, rotations


async def test_q35_sound_without_speech_started_is_not_a_hang(fake: FakeTranslator) -> None:
    fake.speech_rms = 2.0
    async with Harness(fake, model=Q35_MODEL, watchdog_speech_s=1.0) as h:
        h.session.watchdog_s = 1.0
        await h.connected()
        await h.stream([("tone", 6.0)], pace_s=0.1)
        assert h.metric("captioner_translator_rotations_total", target="ja", reason="watchdog") == 0
        assert len(fake.connections) == 1


async def test_q35_speech_heard_and_never_answered_is_a_hang(fake: FakeTranslator) -> None:
    fake.hang_after_speech_started = True
    async with Harness(fake, model=Q35_MODEL) as h:
        h.session.watchdog_s = 1.0
        await h.connected()
        await h.stream([("tone", 0.6)], pace_s=0.02)  # far below watchdog_speech_s: speech_started decides
        assert await until(
            lambda: h.metric("captioner_translator_rotations_total", target="ja", reason="watchdog") == 1, 5
        )
        fake.hang_after_speech_started = fake.stall = False
        assert await fake.await_until(lambda f: len(f.connections) >= 2)
        await h.connected()
        await h.stream([("silence", 0.2), ("tone", 0.8), ("silence", 1.0)])
        assert (await h.wait_finals(1))[-1].startswith("[ja] utterance")


# ---- when the words began: from the audio sent, not from when the caption came (#19 stamps) ----------------------
@pytest.mark.parametrize("model", [Q3_MODEL, Q35_MODEL])
async def test_a_caption_is_stamped_with_when_its_words_were_captured(fake: FakeTranslator, model: str) -> None:
    """Audio captured 30 s ago (a slow link, a backlog): the caption's spoken_at is when the tone began, on the
    capture clock, not when the translation arrived. qwen3.5 says it (audio_start_ms); qwen3 by the first speech."""
    async with Harness(fake, model=model) as h:
        await h.connected()
        loop = asyncio.get_running_loop()
        wall_minus_mono = time.time() - time.monotonic()
        t0 = loop.time() - 30.0  # the first chunk was captured 30 s ago
        pattern = chunks([("silence", 1.0), ("tone", 0.8), ("silence", 1.0)])
        for i, chunk in enumerate(pattern):
            h.session.feed(chunk, t0 + (i + 1) * 0.1)  # a chunk's time is when its last sample was captured
            await asyncio.sleep(0.004)
        assert await h.wait_finals(1)
    final = next(c for c in h.captions if c.final and c.language == "ja")
    tone_began = t0 + 1.0 + wall_minus_mono
    assert abs(final.spoken_at - tone_began) < 0.35, final.spoken_at - tone_began
