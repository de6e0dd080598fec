"""Pure: the rules that supervise a translator session (hang, rotation, refused settings, what it bills)."""

from __future__ import annotations

import json
from typing import Any

from ..redaction import redact
from .interpreter import normalise_code
from .protocol import Dialect, bills_transcript, transcription_block

# Error codes after which retrying soon cannot help (§7), normalised.
FATAL_CODES = frozenset(
    normalise_code(c) for c in ("InvalidApiKey", "AccessDenied", "Arrearage", "ModelNotFound", "insufficient_quota")
)
# Input tokens after which a session is rotated: the context holds 49,152 (§7).
ROTATE_INPUT_TOKENS = 40_000
# Q3 sends no VAD events, so music or noise that opened the gate looks to the client like speech that went
# unanswered. After each watchdog replacement that did not help (the new session is silent too) the watchdog
# waits twice as long, up to WATCHDOG_MAX_S: a long stretch of music costs a few reconnects, not one a minute.
WATCHDOG_MAX_S = 300.0
# A model with VAD events (Q3.5) says when it heard speech; audio it never called speech is no sign of a hang,
# so without a `speech_started` the watchdog waits this many times longer, and at least UNHEARD_MIN_S (only a
# service hung before its VAD is caught this way).
UNHEARD_FACTOR = 3.0
UNHEARD_MIN_S = 60.0
# A session that has answered nothing for this long is rotated before the service closes it (~300 s, §7):
# with the audio gate closed through a long break, nothing is sent, so nothing is answered.
IDLE_ROTATE_S = 240.0


def stall_reason(
    now: float,
    *,
    watchdog_s: float,
    fruitless_watchdogs: int,
    speech_heard_at: float | None,
    unanswered_since: float | None,
    unanswered_speech_s: float,
    watchdog_speech_s: float,
    vad_events: bool,
) -> str | None:
    """Why the connection counts as hung, or None.

    Speech the service heard (Q3.5 `speech_started`) and never answered is a hang after watchdog_s. Otherwise
    it may only be sound the service does not take for speech (music, noise): Q3 needs several seconds of
    it unanswered, a model with VAD events waits longer still, and each replacement that changed nothing
    doubles the wait, so a long stretch of music costs a few reconnects, not one every watchdog_s.
    """
    wait_s = min(watchdog_s * 2**fruitless_watchdogs, max(watchdog_s, WATCHDOG_MAX_S))
    if speech_heard_at is not None and now - speech_heard_at > wait_s:
        return f"speech heard by the service went unanswered for {wait_s:.0f} s"
    if unanswered_since is None or unanswered_speech_s < watchdog_speech_s:
        return None
    if vad_events:
        wait_s = max(wait_s * UNHEARD_FACTOR, UNHEARD_MIN_S)
    if now - unanswered_since > wait_s:
        return f"no events for {wait_s:.0f} s while {unanswered_speech_s:.0f} s of speech was sent"
    return None


def context_tokens(reported: int, audio_s: float, audio_s_at_usage: float, tokens_per_s: float) -> float:
    """Input tokens in the session's context: as the service reported them, plus the audio sent since."""
    if reported == 0:
        return audio_s * tokens_per_s  # no usage yet: the estimate is all there is
    return reported + (audio_s - audio_s_at_usage) * tokens_per_s


def rotation_due(
    *,
    age_s: float,
    tokens: float,
    silent_s: float,
    rotate_after_s: float,
    rotate_after_tokens: float,
    idle_rotate_s: float,
) -> str | None:
    """Why the session should be replaced now ("age", "context", "idle"), or None."""
    if age_s >= rotate_after_s:
        return "age"
    if tokens >= rotate_after_tokens:
        return "context"
    if silent_s >= idle_rotate_s:
        return "idle"
    return None


def echo_differences(asked: dict[str, Any], echo: Any) -> list[tuple[str, str]]:
    """(field, warning) for each setting session.updated does not hold as session.update asked for it (§12.10)."""
    if not isinstance(echo, dict):
        return []
    checks: list[tuple[str, Any, Any]] = [
        ("translation.language", asked["translation"]["language"], (echo.get("translation") or {}).get("language")),
    ]
    if "output_modalities" in asked:
        # qwen3.8's nested layout: the voice is reported under audio.output (3.8 digest §2.1, §9 step 3).
        voice = ((echo.get("audio") or {}).get("output") or {}).get("voice")
        checks += [
            ("output_modalities", asked["output_modalities"], echo.get("output_modalities")),
            ("audio.output.voice", asked["voice"], voice),
        ]
    else:
        checks += [
            ("modalities", asked["modalities"], echo.get("modalities")),
            ("voice", asked["voice"], echo.get("voice")),
        ]
    if "enable_voice_clone" in asked:
        frequency = (echo.get("voice_clone_options") or {}).get("frequency")
        checks += [
            ("enable_voice_clone", True, echo.get("enable_voice_clone")),
            ("voice_clone_options.frequency", asked["voice_clone_options"]["frequency"], frequency),
        ]
    if "input_audio_transcription" in asked:
        want, got = asked["input_audio_transcription"], echo.get("input_audio_transcription", "missing")
        if want is None or got is None or not isinstance(got, dict):
            checks.append(("input_audio_transcription", want, got))
        else:
            checks += [(f"input_audio_transcription.{k}", v, got.get(k)) for k, v in want.items()]
    if "turn_detection" in asked:
        # Manual turns (null): a service still on its VAD would refuse every commit.
        checks.append(("turn_detection", asked["turn_detection"], echo.get("turn_detection", "missing")))
    # The echo is the service's text: secrets are masked as in every other outside text.
    return [
        (field, redact(f"the service changed {field}: asked {json.dumps(want)}, got {json.dumps(got)}"))
        for field, want, got in checks
        if want != got
    ]


def billing(
    dialect: Dialect, source_language: str | None, *, transcribe_source: bool, pin_source: bool
) -> dict[str, Any]:
    """What a session bills beyond the audio, and how its usage figures read (for /status)."""
    block = transcription_block(dialect, source_language, transcribe_source=transcribe_source, pin_source=pin_source)
    billed = bills_transcript(dialect, block)
    told = isinstance(block, dict) and "language" in block
    if not told and source_language == "en" and not dialect.source_autodetect:
        told = True  # qwen3 assumes English
    return {
        "source_transcript": "shown"
        if transcribe_source
        else ("always on, not shown" if dialect.asr_always_on else "billed, not shown" if billed else "off"),
        "source_language": source_language if told else "auto-detected",
        "usage_reporting": "unknown",
    }


def is_fatal(code: str) -> bool:
    """Whether a service error code means retrying soon cannot help (bad key, no money, unknown model)."""
    return normalise_code(code) in FATAL_CODES


def is_idle_close(code: str, message: str) -> bool:
    """Whether a service error is its idle timeout. Seen as code response_idle_timeout, or only as the text (§7)."""
    return normalise_code(code) == "responseidletimeout" or "no response was generated" in message.lower()
