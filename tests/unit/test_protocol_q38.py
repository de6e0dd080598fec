"""qwen3.8's dialect and nested session.update; the same-language skip and voice clone fields (3.8 digest)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from captioner.standin import DemoSession
from captioner.translation import policy
from captioner.translation.protocol import Q3, Q35, Q38, audio_append, dialect_for, session_update


@pytest.mark.parametrize(
    "model", ["qwen3.8-livetranslate-flash-realtime", "qwen3.8-livetranslate-flash-realtime-2026-11-01"]
)
def test_qwen38_and_its_snapshots_are_the_third_dialect(model: str) -> None:
    assert dialect_for(model) is Q38


def update(dialect: Any = Q38, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "target": "ja",
        "source_language": "en",
        "transcribe_source": False,
        "voice": None,
        "audio_output": False,
    }
    body = session_update(dialect, **{**args, **kw})
    assert body["type"] == "session.update"
    session = body["session"]
    assert isinstance(session, dict)
    return session


def test_qwen38_update_is_the_nested_layout_with_a_voice_in_both_places() -> None:
    assert update() == {
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


@pytest.mark.parametrize(("source", "transcribe"), [("en", False), ("de", True), (None, True), (None, False)])
def test_qwen38_never_gets_a_flat_field_nor_the_source_language(source: str | None, transcribe: bool) -> None:
    session = update(source_language=source, transcribe_source=transcribe, pin_source=True)
    flat = {"modalities", "input_audio_format", "output_audio_format", "sample_rate", "turn_detection"}
    assert not flat & set(session)
    assert "input_audio_transcription" not in session  # always on, and the language cannot be told


def test_qwen38_full_object_with_glossary_audio_and_clone() -> None:
    session = update(audio_output=True, voice="default", clone="always", phrases={"OBS": "OBS Studio"})
    assert session["output_modalities"] == ["text", "audio"]
    assert session["voice"] == session["audio"]["output"]["voice"] == "default"
    assert session["enable_voice_clone"] is True
    assert session["voice_clone_options"] == {"frequency": "always"}
    assert session["translation"] == {"language": "ja", "corpus": {"phrases": {"OBS": "OBS Studio"}}}


def test_clone_is_not_sent_without_audio() -> None:
    assert "enable_voice_clone" not in update(Q35, voice="default", clone="once", audio_output=False)


def test_qwen35_skip_options_and_clone_use_the_flat_layout() -> None:
    session = update(Q35, target="en", skip_same_language=True, audio_output=True, clone="once", voice="default")
    assert session["modalities"] == ["text", "audio"]
    assert session["translation"] == {
        "language": "en",
        "same_language_skip_options": {"skip_text": True, "skip_audio": True},
    }
    assert session["voice_clone_options"] == {"frequency": "once"}


@pytest.mark.parametrize(
    ("dialect", "kw"),
    [
        (Q38, {"skip_same_language": True}),  # undocumented for qwen3.8: refused, never silently sent
        (Q3, {"skip_same_language": True}),
        (Q3, {"clone": "once", "audio_output": True}),
        (Q35, {"clone": "sometimes", "audio_output": True}),
    ],
)
def test_fields_a_dialect_lacks_are_refused(dialect: Any, kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        update(dialect, **kw)


def test_billing_on_qwen38_says_the_transcript_is_always_on() -> None:
    assert policy.billing(Q38, "en", transcribe_source=False, pin_source=True) == {
        "source_transcript": "always on, not shown",
        "source_language": "auto-detected",
        "usage_reporting": "unknown",
    }


@pytest.mark.parametrize(
    ("echo", "fields"),
    [
        (
            {"output_modalities": ["text"], "audio": {"output": {"voice": "Tina"}}, "translation": {"language": "ja"}},
            [],
        ),
        (  # the observed quirk: the nested voice kept the default
            {"output_modalities": ["text"], "audio": {"output": {"voice": "Cindy"}}, "translation": {"language": "ja"}},
            ["audio.output.voice"],
        ),
        (
            {"output_modalities": ["text", "audio"], "translation": {"language": "ja"}},
            ["output_modalities", "audio.output.voice"],
        ),
    ],
)
def test_echo_check_reads_the_nested_layout(echo: dict[str, Any], fields: list[str]) -> None:
    assert [f for f, _ in policy.echo_differences(update(), echo)] == fields


def test_demo_stand_in_takes_the_nested_update_and_always_transcribes() -> None:
    session = DemoSession({}, model="qwen3.8-livetranslate-flash-realtime")
    body = session_update(
        Q38, target="ja", source_language=None, transcribe_source=False, voice=None, audio_output=True
    )
    assert [e["type"] for e in session.handle(body)] == ["session.updated"]
    loud = (np.sin(np.arange(1600) * 0.3) * 0.3 * 32767).astype("<i2").tobytes()
    chunks = [loud] * 3 + [bytes(3200)] * 8
    kinds = [e["type"] for pcm in chunks for e in session.handle(json.loads(audio_append(pcm)))]
    assert "conversation.item.input_audio_transcription.completed" in kinds
    assert "response.audio_transcript.done" in kinds
