"""session.update bodies per dialect, and the reconnect policy."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from captioner.reconnect import Backoff, ConnectBudget
from captioner.translation.protocol import (
    Q3,
    Q35,
    SESSION_FINISH,
    Dialect,
    UnsupportedModel,
    audio_append,
    bills_transcript,
    dialect_for,
    encode,
    image_append,
    session_update,
    transcription_block,
)


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("qwen3-livetranslate-flash-realtime", Q3),
        ("qwen3-livetranslate-flash-realtime-2025-09-22", Q3),
        ("qwen3.5-livetranslate-flash-realtime", Q35),
        ("qwen3.5-livetranslate-flash-realtime-2026-05-19", Q35),
    ],
)
def test_dialects(model: str, family: object) -> None:
    assert dialect_for(model) is family


@pytest.mark.parametrize("model", ["qwen3.9-livetranslate-flash-realtime", "qwen3-livetranslate-flash-realtimeX", "x"])
def test_unsupported_models(model: str) -> None:
    with pytest.raises(UnsupportedModel):
        dialect_for(model)


def body(dialect: object, **kw: object) -> dict[str, object]:
    args: dict[str, object] = {
        "target": "ja",
        "source_language": "en",
        "transcribe_source": False,
        "voice": None,
        "audio_output": False,
    }
    args.update(kw)
    update = session_update(dialect, **args)  # type: ignore[arg-type]
    assert update["type"] == "session.update"
    return update["session"]  # type: ignore[return-value]


def test_always_complete_session_with_language_and_voice() -> None:
    s = body(Q3)
    assert s["translation"] == {"language": "ja"}
    assert s["voice"] == "Cherry"
    assert s["modalities"] == ["text"]
    assert "input_audio_transcription" not in s  # Q3: English source, no transcript wanted
    assert body(Q35)["voice"] == "Tina"
    assert body(Q3, voice="Ethan", audio_output=True)["modalities"] == ["text", "audio"]


ASR = "qwen3-asr-flash-realtime"


@pytest.mark.parametrize(
    ("dialect", "source", "transcribe", "pin", "expected", "billed"),
    [
        (Q3, "en", True, True, {"model": ASR, "language": "en"}, True),
        # Q3 learns a non-English source from the language alone; only the model turns the billed transcript on.
        (Q3, "ja", False, True, {"language": "ja"}, False),
        (Q3, "ja", False, False, {"language": "ja"}, False),
        (Q3, "ja", True, True, {"model": ASR, "language": "ja"}, True),
        (Q3, "en", False, True, "absent", False),
        # Q3.5: the language hint exists only in the (billed) transcription block; null switches both off.
        (Q35, "en", False, True, {"model": ASR, "language": "en"}, True),
        (Q35, "en", False, False, None, False),
        (Q35, None, False, True, None, False),  # auto-detect: nothing to pin, nothing to bill
        (Q35, None, True, True, {"model": ASR}, True),
        (Q35, "de", True, False, {"model": ASR, "language": "de"}, True),
    ],
)
def test_source_transcription(
    dialect: Dialect, source: str | None, transcribe: bool, pin: bool, expected: object, billed: bool
) -> None:
    s = body(dialect, source_language=source, transcribe_source=transcribe, pin_source=pin)
    assert s.get("input_audio_transcription", "absent") == expected
    block = transcription_block(dialect, source, transcribe_source=transcribe, pin_source=pin)
    assert bills_transcript(dialect, block) is billed


def test_backoff_grows_caps_and_resets_after_health() -> None:
    b = Backoff(initial_s=2, cap_s=30, healthy_after_s=60, rng=lambda: 1.0)
    assert [b.next_delay() for _ in range(6)] == [2, 4, 8, 16, 30, 30]
    assert b.next_delay(connected_for_s=120) == 2
    lo = Backoff(initial_s=2, cap_s=30, rng=lambda: 0.0)
    assert lo.next_delay() == 1  # jitter never goes below half


def test_connect_budget_window() -> None:
    now = [0.0]
    budget = ConnectBudget(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert budget.wait_s() == 0
        budget.take()
    assert budget.wait_s() == 60
    now[0] = 30
    assert budget.wait_s() == 30
    now[0] = 60
    assert budget.wait_s() == 0


async def test_connect_budget_acquire_waits() -> None:
    budget = ConnectBudget(limit=2, window_s=0.3)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(3):
        await budget.acquire()
    assert loop.time() - start >= 0.25


def test_glossary_goes_out_as_corpus_phrases_on_qwen35() -> None:
    phrases = {"人工智能": "Artificial Intelligence", "castle": "KASTEL"}
    s = body(Q35, phrases=phrases)
    assert s["translation"] == {"language": "ja", "corpus": {"phrases": phrases}}
    assert body(Q35, phrases={})["translation"] == {"language": "ja"}  # nothing to send: no corpus at all
    assert body(Q35, phrases=None)["translation"] == {"language": "ja"}


def test_glossary_is_refused_for_qwen3_not_dropped() -> None:
    assert Q35.corpus_phrases and not Q3.corpus_phrases
    assert body(Q3, phrases={})["translation"] == {"language": "ja"}
    with pytest.raises(ValueError, match="corpus"):
        body(Q3, phrases={"castle": "KASTEL"})


@pytest.mark.parametrize("payload", [b"", b"\x00\x01" * 1600, bytes(range(256))])
def test_hand_built_frames_are_the_json_events_they_stand_for(payload: bytes) -> None:
    b64 = base64.b64encode(payload).decode()
    assert json.loads(audio_append(payload)) == {"type": "input_audio_buffer.append", "audio": b64}
    assert json.loads(image_append(payload)) == {"type": "input_image_buffer.append", "image": b64}
    assert json.loads(SESSION_FINISH) == {"type": "session.finish"}


def test_session_update_frame_is_its_json() -> None:
    update = session_update(
        Q35, target="ja", source_language=None, transcribe_source=False, voice=None, audio_output=False
    )
    assert json.loads(encode(update)) == update
