"""The translator session's supervision rules, table by table: hang, context size, rotation, echo, billing."""

from __future__ import annotations

from typing import Any

import pytest

from captioner.translation.policy import (
    billing,
    context_tokens,
    echo_differences,
    is_fatal,
    is_idle_close,
    rotation_due,
    stall_reason,
)
from captioner.translation.protocol import Q3, Q35

# now, watchdog_s 20, speech_s 5; (fruitless, heard_at, unanswered_since, unanswered_speech_s, vad) -> reason
STALLS: list[tuple[str, tuple[int, float | None, float | None, float, bool], str | None]] = [
    ("answered: nothing unanswered", (0, None, None, 0.0, False), None),
    (
        "speech heard, 21 s unanswered",
        (0, 79.0, None, 0.0, True),
        "speech heard by the service went unanswered for 20 s",
    ),
    ("speech heard, 19 s unanswered", (0, 81.0, None, 0.0, True), None),
    ("heard, after one fruitless watchdog: 40 s", (1, 70.0, None, 0.0, True), None),
    (
        "heard, after one fruitless watchdog, 41 s",
        (1, 59.0, None, 0.0, True),
        "speech heard by the service went unanswered for 40 s",
    ),
    ("too little speech sent to judge", (0, None, 0.0, 4.9, False), None),
    (
        "q3: 6 s of speech, 21 s unanswered",
        (0, None, 79.0, 6.0, False),
        "no events for 20 s while 6 s of speech was sent",
    ),
    ("q3: 6 s of speech, 19 s unanswered", (0, None, 81.0, 6.0, False), None),
    ("vad model, speech it never heard: 60 s", (0, None, 41.0, 6.0, True), None),
    (
        "vad model, speech it never heard: 61 s",
        (0, None, 39.0, 6.0, True),
        "no events for 60 s while 6 s of speech was sent",
    ),
    ("doubling stops at 300 s", (10, None, -201.0, 6.0, False), "no events for 300 s while 6 s of speech was sent"),
    ("doubling stops at 300 s, not before", (10, None, -199.0, 6.0, False), None),
]


@pytest.mark.parametrize(("case", "reason"), [c[1:] for c in STALLS], ids=[c[0] for c in STALLS])
def test_stall_reason(case: tuple[int, float | None, float | None, float, bool], reason: str | None) -> None:
    fruitless, heard_at, since, speech_s, vad = case
    got = stall_reason(
        100.0,
        watchdog_s=20.0,
        fruitless_watchdogs=fruitless,
        speech_heard_at=heard_at,
        unanswered_since=since,
        unanswered_speech_s=speech_s,
        watchdog_speech_s=5.0,
        vad_events=vad,
    )
    assert got == reason


def test_a_watchdog_longer_than_the_cap_is_not_shortened() -> None:
    kw: dict[str, Any] = dict(unanswered_since=None, unanswered_speech_s=0.0, watchdog_speech_s=5.0, vad_events=True)
    assert stall_reason(500.0, watchdog_s=400.0, fruitless_watchdogs=3, speech_heard_at=100.0, **kw) is None
    assert stall_reason(500.0, watchdog_s=400.0, fruitless_watchdogs=3, speech_heard_at=99.0, **kw) is not None


@pytest.mark.parametrize(
    ("reported", "audio_s", "at_usage", "tokens"),
    [
        (0, 10.0, 0.0, 125.0),  # no usage report yet: all estimated
        (0, 10.0, 4.0, 125.0),  # (a report of zero tokens is no report)
        (1000, 10.0, 10.0, 1000.0),  # just reported
        (1000, 12.0, 10.0, 1025.0),  # reported, plus the audio sent since
    ],
)
def test_context_tokens(reported: int, audio_s: float, at_usage: float, tokens: float) -> None:
    assert context_tokens(reported, audio_s, at_usage, 12.5) == tokens


@pytest.mark.parametrize(
    ("age_s", "tokens", "silent_s", "reason"),
    [
        (10.0, 100.0, 1.0, None),
        (7000.0, 100.0, 1.0, "age"),
        (7000.0, 50_000.0, 500.0, "age"),  # the first reason that holds
        (10.0, 40_000.0, 1.0, "context"),
        (10.0, 39_999.0, 1.0, None),
        (10.0, 100.0, 240.0, "idle"),
        (10.0, 100.0, 239.0, None),
    ],
)
def test_rotation_due(age_s: float, tokens: float, silent_s: float, reason: str | None) -> None:
    got = rotation_due(
        age_s=age_s,
        tokens=tokens,
        silent_s=silent_s,
        rotate_after_s=7000.0,
        rotate_after_tokens=40_000,
        idle_rotate_s=240.0,
    )
    assert got == reason


ASKED: dict[str, Any] = {
    "translation": {"language": "ja"},
    "modalities": ["text"],
    "voice": "Cherry",
    "input_audio_transcription": {"model": "qwen3-asr-flash-realtime", "language": "en"},
}
SAME: dict[str, Any] = {k: v for k, v in ASKED.items()}
ECHOES: list[tuple[str, Any, list[str]]] = [
    ("the same", SAME, []),
    ("not an object: nothing to compare", "garbage", []),
    ("the language changed", {**SAME, "translation": {"language": "zh"}}, ["translation.language"]),
    ("no translation block", {**SAME, "translation": None}, ["translation.language"]),
    ("modalities and voice", {**SAME, "modalities": ["text", "audio"], "voice": "Ethan"}, ["modalities", "voice"]),
    ("transcription dropped", {**SAME, "input_audio_transcription": None}, ["input_audio_transcription"]),
    (
        "transcription missing",
        {k: v for k, v in SAME.items() if k != "input_audio_transcription"},
        ["input_audio_transcription"],
    ),
    (
        "transcription language changed",
        {**SAME, "input_audio_transcription": {"model": "qwen3-asr-flash-realtime", "language": "ja"}},
        ["input_audio_transcription.language"],
    ),
]


@pytest.mark.parametrize(("echo", "fields"), [c[1:] for c in ECHOES], ids=[c[0] for c in ECHOES])
def test_echo_differences(echo: Any, fields: list[str]) -> None:
    assert [field for field, _ in echo_differences(ASKED, echo)] == fields


def test_echo_difference_says_what_was_asked_and_got() -> None:
    [(_, message)] = echo_differences(ASKED, {**SAME, "voice": "Ethan"})
    assert message == 'the service changed voice: asked "Cherry", got "Ethan"'


def test_no_transcription_asked_is_not_compared() -> None:
    asked = {k: v for k, v in ASKED.items() if k != "input_audio_transcription"}
    assert echo_differences(asked, {**asked, "input_audio_transcription": {"model": "x"}}) == []


def test_manual_turns_the_service_ignored_are_reported() -> None:
    asked = {**ASKED, "turn_detection": None}
    assert echo_differences(asked, {**SAME, "turn_detection": None}) == []
    vad = {"type": "server_vad", "silence_duration_ms": 1000}
    assert [f for f, _ in echo_differences(asked, {**SAME, "turn_detection": vad})] == ["turn_detection"]
    assert [f for f, _ in echo_differences(asked, SAME)] == ["turn_detection"]  # not echoed: not known to be off
    assert echo_differences(ASKED, {**SAME, "turn_detection": vad}) == []  # server turns ask nothing of it


# (dialect, source language, transcribe_source, pin_source) -> (source_transcript, source_language)
BILLING = [
    (Q3, "en", True, True, "shown", "en"),
    (Q3, "en", False, True, "off", "en"),  # qwen3 assumes English without being told
    (Q3, "ja", False, False, "off", "ja"),
    (Q35, "en", False, True, "billed, not shown", "en"),
    (Q35, "en", False, False, "off", "auto-detected"),
    (Q35, "ja", True, False, "shown", "ja"),
    (Q35, None, True, True, "shown", "auto-detected"),
    (Q35, None, False, True, "off", "auto-detected"),
]


@pytest.mark.parametrize(("dialect", "source", "shown", "pin", "transcript", "language"), BILLING)
def test_billing(dialect: Any, source: str | None, shown: bool, pin: bool, transcript: str, language: str) -> None:
    assert billing(dialect, source, transcribe_source=shown, pin_source=pin) == {
        "source_transcript": transcript,
        "source_language": language,
        "usage_reporting": "unknown",
    }


@pytest.mark.parametrize(
    ("code", "fatal"),
    [("InvalidApiKey", True), ("invalid_api_key", True), ("Arrearage", True), ("Throttling", False), ("", False)],
)
def test_is_fatal(code: str, fatal: bool) -> None:
    assert is_fatal(code) is fatal


@pytest.mark.parametrize(
    ("code", "message", "idle"),
    [
        ("response_idle_timeout", "", True),
        ("", "Session closed: No response was generated for 300s", True),
        ("InternalError", "boom", False),
    ],
)
def test_is_idle_close(code: str, message: str, idle: bool) -> None:
    assert is_idle_close(code, message) is idle
