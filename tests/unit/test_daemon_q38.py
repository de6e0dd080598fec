"""The daemon in process against the strict fake: qwen3.8 speaker ids on every caption, its missing usage still
billed, a voice-clone session accepted, and the same-language skip's captions under both wire readings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from captioner.config import parse
from tests.support.daemon_harness import GatedDaemon, ScriptedCapture, until
from tests.support.fake_translator import Q35_MODEL, Q38_MODEL, FakeTranslator

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

KEY = "sk-q38-secret"
THREE = [("silence", 1.0), ("tone", 1.0), ("silence", 3.0), ("tone", 0.8), ("silence", 3.0), ("tone", 1.2)]
THREE += [("silence", 3.0)]


@asynccontextmanager
async def running(fake: FakeTranslator, **translator: Any) -> AsyncIterator[GatedDaemon]:
    tr = {"url": fake.url, "api_key": KEY, "targets": ["ja"], "model": Q38_MODEL, **translator}
    cfg = parse({"translator": tr, "obs": {"enabled": False}, "http": {"enabled": False}})
    daemon = GatedDaemon(cfg, capture_factory=ScriptedCapture)  # type: ignore[arg-type]
    daemon.finals = []
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await until(lambda: bool(daemon.sessions) and all(s.connected for s in daemon.sessions.values()))
        yield daemon
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def test_speaker_ids_reach_every_caption_and_missing_usage_is_estimated(
    inloop_fake: Callable[..., Awaitable[FakeTranslator]],
) -> None:
    fake = await inloop_fake(api_key=KEY, speakers=[1, 2, 1])
    async with running(fake, transcribe_source=True, source_language=None) as d:
        await d.player.play(THREE)
        await d.wait_finals(3)
        await until(lambda: len(d.texts("source")) == 3, what="three source finals")
        by_language = {
            lang: [(c.text, c.speaker_id) for c in d.finals if c.language == lang] for lang in ("ja", "source")
        }
        billed = d.metric("captioner_usage_tokens_total", target="ja", direction="input")
    assert by_language["ja"] == [("[ja] utterance 1", "1"), ("[ja] utterance 2", "2"), ("[ja] utterance 3", "1")]
    assert by_language["source"] == [("utterance 1", "1"), ("utterance 2", "2"), ("utterance 3", "1")]
    update = fake.connections[0].session_update
    assert update is not None and update["audio"]["input"]["turn_detection"]["type"] == "speaker_detection"
    assert "input_audio_transcription" not in update
    # no usage came: the audio sent is billed at 7 tokens/s (the gate sent at least the 3 s of tone)
    assert billed >= 3 * 7


@pytest.mark.parametrize("model", [Q38_MODEL, Q35_MODEL])
async def test_a_voice_clone_session_is_accepted(
    inloop_fake: Callable[..., Awaitable[FakeTranslator]], model: str
) -> None:
    fake = await inloop_fake(api_key=KEY)
    async with running(fake, model=model, audio_output=True, voice="default", voice_clone="always") as d:
        await d.player.play(THREE[:3])
        assert await d.wait_finals(1) == ["[ja] utterance 1"]
        assert d.sessions["ja"].link.info.get("session_warnings") is None  # the echo held what was asked
    update = fake.connections[0].session_update
    assert update is not None
    assert (update["voice"], update["enable_voice_clone"], update["voice_clone_options"]) == (
        "default",
        True,
        {"frequency": "always"},
    )
    assert fake.connections[0].server_close_code is None


@pytest.mark.parametrize("reading", ["no_response", "empty"])
@pytest.mark.parametrize("shown", ["source", "none"])
async def test_same_language_skip_captions(
    inloop_fake: Callable[..., Awaitable[FakeTranslator]], reading: str, shown: str
) -> None:
    fake = await inloop_fake(api_key=KEY, script=["Hello there", "Bonjour", "Goodbye"], spoken=["en", "fr", "en"])
    fake.skip_reading = reading
    skip = {"skip_same_language": True, "same_language_captions": shown}
    async with running(fake, model=Q35_MODEL, targets=["en"], **skip) as d:
        await d.player.play(THREE)
        await d.wait_finals(3 if shown == "source" else 1, language="en")
        await asyncio.sleep(0.5)  # nothing more comes
        texts = d.texts("en")
    assert fake.connections[0].skipped == ["Hello there", "Goodbye"]
    if shown == "source":
        assert texts == ["Hello there", "[en] Bonjour", "Goodbye"]
        # the source text needs the session's transcript (billed on qwen3.5)
        update = fake.connections[0].session_update
        assert update is not None and update["input_audio_transcription"]["model"] == "qwen3-asr-flash-realtime"
    else:
        assert texts == ["[en] Bonjour"]
