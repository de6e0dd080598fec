"""The fake's qwen3.8 session (3.8 digest §2.1): its defaults, its nested session.update validation, and the voice
clone rules it shares with qwen3.5 (§5). Pure."""

from __future__ import annotations

from typing import Any

from tests.support.fake_translator.vendor import (
    AUDIO_LANGUAGES,
    CLONE_FREQUENCIES,
    CLONE_PREFIX,
    CLONE_VOICE,
    LANGUAGES,
    new_id,
)

# Q3.5's field names; the guide says not to mix the two layouts (certain), a public client mixed them and it
# worked (observed). The fake refuses them unless told to ignore them as that client saw (mixed_layout).
FLAT_FIELDS = ("modalities", "input_audio_format", "output_audio_format", "sample_rate", "turn_detection")
FLAT_FIELDS += ("input_audio_transcription",)


def defaults_q38(model: str, silence_ms: int) -> dict[str, Any]:
    """session.created on Q3.8 (observed shape): no `modalities`, the voice reported under audio.output."""
    return {
        "id": new_id("sess"),
        "object": "realtime.session",
        "model": model,
        "input_modalities": ["audio"],
        "output_modalities": ["text", "audio"],
        "audio": {
            "input": {
                "format": {"type": "pcm", "sample_rate": 16000},
                "turn_detection": {"type": "speaker_detection", "threshold": 0.5, "silence_duration_ms": silence_ms},
            },
            "output": {"format": {"type": "pcm", "sample_rate": 24000}, "voice": "Tina"},
        },
        "translation": {"language": "en"},
    }


def validate_q38(upd: dict[str, Any], eff: dict[str, Any], mixed_layout: str, text_only_reject: bool) -> Any:
    """(message, param) of the first problem of a Q3.8 session.update, or None."""
    if mixed_layout == "reject":
        for key in FLAT_FIELDS:
            if key in upd:
                return f"Unknown parameter: '{key}' (do not mix field hierarchies).", f"session.{key}"
    tr = upd.get("translation")
    if not isinstance(tr, dict) or not tr.get("language"):
        return "Invalid translation parameter.", "session.translation"  # observed for partial updates
    lang = tr["language"]
    if lang not in LANGUAGES["q3.8"]:
        return f"Unsupported translation language: '{lang}'.", "session.translation.language"
    if "same_language_skip_options" in tr:
        # Documented for Q3.5 only [uncertain for Q3.8]: the strict fake refuses it.
        return "Invalid translation parameter.", "session.translation.same_language_skip_options"
    modalities = upd.get("output_modalities", eff["output_modalities"])
    if modalities not in (["text"], ["text", "audio"]):
        return f"Invalid output_modalities: {modalities!r}.", "session.output_modalities"
    if "audio" in modalities and lang not in AUDIO_LANGUAGES["q3.8"] and text_only_reject:
        return f"Language '{lang}' does not support audio output.", "session.output_modalities"
    audio_in = (eff.get("audio") or {}).get("input") or {}
    fmt = audio_in.get("format") or {}
    if fmt.get("type", "pcm") != "pcm" or fmt.get("sample_rate", 16000) != 16000:
        return "Invalid audio.input.format: only pcm at 16000 Hz.", "session.audio.input.format"
    td = audio_in.get("turn_detection")
    if not isinstance(td, dict) or td.get("type") != "speaker_detection":
        return "Invalid turn_detection type.", "session.audio.input.turn_detection.type"
    return None


def clone_problem(upd: dict[str, Any], voice: Any) -> tuple[str, str] | None:
    """The voice clone rules of §5: once/always need voice "default", never a pre-created clone id."""
    if not upd.get("enable_voice_clone"):
        return None
    options = upd.get("voice_clone_options") or {}
    frequency = options.get("frequency", "once") if isinstance(options, dict) else None  # the API page's default
    if frequency not in CLONE_FREQUENCIES:
        return f"Invalid voice_clone_options.frequency: {frequency!r}.", "session.voice_clone_options.frequency"
    if frequency in ("once", "always") and voice != CLONE_VOICE:
        return f"Voice must be 'default' when voice clone frequency is '{frequency}'.", "session.voice"
    if frequency == "never" and not (isinstance(voice, str) and voice.startswith(CLONE_PREFIX)):
        return "Voice must be a cloned voice id when voice clone frequency is 'never'.", "session.voice"
    return None


def clone_voice_ok(upd: dict[str, Any], voice: Any) -> bool:
    """ "default" is a voice only while cloning once/always (clone_problem checked the rest)."""
    return voice == CLONE_VOICE and bool(upd.get("enable_voice_clone"))
