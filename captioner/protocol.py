"""Qwen livetranslate wire dialects: model families, languages, session.update bodies, event names."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Languages per family (translator-protocol.md §9).
_Q3_LANGUAGES = frozenset("en zh ru fr de pt es it id ko ja vi th ar yue hi el tr".split())
_Q3_AUDIO = frozenset("en zh ru fr de pt es it ko ja yue".split())
_Q35_AUDIO = frozenset(
    "zh en ar de fr es pt id it ko ru th vi ja tr hi ms nl ur nb sv da he fi pl is cs fil fa".split()
)
_Q35_TEXT_ONLY = frozenset(
    "yue el af ast be bg bn bs ca ceb et gl gu hr hu jv kk kn ky lv mk ml mr pa ro sk sl sw tg az uk".split()
)


@dataclass(frozen=True)
class Dialect:
    """What differs between model families on the wire."""

    family: str
    default_voice: str
    languages: frozenset[str]
    audio_languages: frozenset[str]
    # Q3 needs ASR switched on explicitly; Q3.5 runs it unless told `null` (and bills it).
    asr_on_by_default: bool
    # Q3.5 auto-detects the source when the language is omitted; Q3 assumes "en".
    source_autodetect: bool
    input_tokens_per_s: float
    # translation.corpus.phrases (glossary / hotwords) is on Q3.5's API page; Q3's API page does not have it
    # and nobody has observed what Q3 does with it (§4.1, §10), so it is never sent there.
    corpus_phrases: bool


Q3 = Dialect(
    family="qwen3-livetranslate-flash-realtime",
    default_voice="Cherry",
    languages=_Q3_LANGUAGES,
    audio_languages=_Q3_AUDIO,
    asr_on_by_default=False,
    source_autodetect=False,
    input_tokens_per_s=12.5,
    corpus_phrases=False,
)
Q35 = Dialect(
    family="qwen3.5-livetranslate-flash-realtime",
    default_voice="Tina",
    languages=_Q35_AUDIO | _Q35_TEXT_ONLY,
    audio_languages=_Q35_AUDIO,
    asr_on_by_default=True,
    source_autodetect=True,
    input_tokens_per_s=7.0,
    corpus_phrases=True,
)
DIALECTS = (Q35, Q3)
ASR_MODEL = "qwen3-asr-flash-realtime"
_SNAPSHOT = re.compile(r"^(?:-\d{4}-\d{2}-\d{2})?$")


class UnsupportedModel(ValueError):
    """The model id names no family this client speaks."""


def dialect_for(model: str) -> Dialect:
    """The dialect of a model id or one of its dated snapshots."""
    for dialect in DIALECTS:
        if model.startswith(dialect.family) and _SNAPSHOT.match(model[len(dialect.family) :]):
            return dialect
    if "livetranslate" in model:
        raise UnsupportedModel(
            f"{model!r} is not supported (supported: {Q3.family}, {Q35.family}; qwen3.8 uses a different protocol)"
        )
    raise UnsupportedModel(f"{model!r} is not a Qwen livetranslate model")


def session_update(
    dialect: Dialect,
    *,
    target: str,
    source_language: str | None,
    transcribe_source: bool,
    voice: str | None,
    audio_output: bool,
    phrases: dict[str, str] | None = None,
) -> dict[str, object]:
    """The complete session.update event: the service does not merge partial updates (§4.1).

    `phrases` (source term -> forced translation) goes out as translation.corpus.phrases; config refuses
    a glossary for a dialect without it, and this refuses too rather than dropping it unnoticed.
    """
    if phrases and not dialect.corpus_phrases:
        raise ValueError(f"{dialect.family} does not take translation.corpus.phrases")
    session: dict[str, object] = {
        "modalities": ["text", "audio"] if audio_output else ["text"],
        # Always sent: some models reject a session without one even when text-only.
        "voice": voice or dialect.default_voice,
    }
    translation: dict[str, object] = {"language": target}
    if phrases:
        translation["corpus"] = {"phrases": dict(phrases)}
    session["translation"] = translation
    asr: dict[str, object] = {"model": ASR_MODEL}
    if source_language:
        asr["language"] = source_language
    if transcribe_source:
        session["input_audio_transcription"] = asr
    elif dialect.asr_on_by_default:
        # Q3.5 bills the transcript it makes by default; switch it off when nobody reads it
        # (the source language is then auto-detected).
        session["input_audio_transcription"] = None
    elif source_language and source_language != "en":
        # Q3 only learns a non-English source through the ASR block (it assumes "en").
        session["input_audio_transcription"] = asr
    return {"type": "session.update", "session": session}
