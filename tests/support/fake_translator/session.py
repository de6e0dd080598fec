"""The session of the fake: its defaults, session.update validation and the translation glossary. Pure."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from tests.support.fake_translator.vendor import ASR_MODEL, AUDIO_LANGUAGES, LANGUAGES, new_id


@dataclass(frozen=True)
class Glossary:
    """translation.corpus.phrases as the fake applies them: whole words, case-insensitive, longest first."""

    pattern: re.Pattern[str]
    translations: tuple[str, ...]  # by the index in the matching group's name

    @classmethod
    def of(cls, phrases: dict[str, str]) -> Glossary:
        terms = sorted(phrases, key=len, reverse=True)
        alternatives = [f"(?P<t{i}>{_whole(term)})" for i, term in enumerate(terms)]
        return cls(re.compile("|".join(alternatives), re.IGNORECASE), tuple(phrases[t] for t in terms))

    def apply(self, text: str) -> str:
        return self.pattern.sub(lambda m: self.translations[int(str(m.lastgroup)[1:])], text)


def _whole(term: str) -> str:
    """A term as a whole word where its ends are letters of a spaced script; CJK terms match anywhere."""

    def spaced(ch: str) -> bool:
        return ch.isalnum() and unicodedata.east_asian_width(ch) not in ("W", "F")

    left = r"(?<!\w)" if spaced(term[0]) else ""
    right = r"(?!\w)" if spaced(term[-1]) else ""
    return left + re.escape(term) + right


def phrases_problem(corpus: Any) -> bool:
    """True unless translation.corpus is {"phrases": {term: translation}}, as documented for Q3.5.

    How the service words its refusal is not known [INF]; it is an `error` like other bad session fields.
    """
    if not isinstance(corpus, dict) or not isinstance(corpus.get("phrases"), dict):
        return True
    return not all(isinstance(k, str) and k and isinstance(v, str) for k, v in corpus["phrases"].items())


def defaults(family: str, model: str, silence_ms: int) -> dict[str, Any]:
    """The session a new connection starts with (session.created), and the base every session.update merges onto."""
    q3 = family == "q3"
    s: dict[str, Any] = {
        "id": new_id("sess"),
        "object": "realtime.session",
        "model": model,
        "modalities": ["text", "audio"],
        "voice": "Cherry" if q3 else "Tina",
        "input_audio_format": "pcm16" if q3 else "pcm",
        "output_audio_format": "pcm24" if q3 else "pcm",
        "input_audio_transcription": None if q3 else {"model": ASR_MODEL},
        "translation": {"language": "en"},
    }
    if not q3:
        s["sample_rate"] = 16000
        s["turn_detection"] = {
            "type": "server_vad",
            "threshold": 0.2,
            "silence_duration_ms": silence_ms,
            "prefix_padding_ms": 300,
            "create_response": True,
            "interrupt_response": True,
        }
    return s


def validate(
    family: str, upd: dict[str, Any], eff: dict[str, Any], reject_audio_for_text_only_targets: bool
) -> tuple[str, str] | None:
    """Return (message, param) of the first problem, mirroring what the service rejects."""
    if "modalities" in upd and upd["modalities"] not in (["text"], ["text", "audio"]):
        return (
            f"Invalid modalities: {upd['modalities']!r}. Supported combinations are ['text'] and ['text', 'audio'].",
            "session.modalities",
        )
    tr = upd.get("translation")
    if "instructions" in upd or not isinstance(tr, dict) or not tr.get("language"):
        return "Invalid translation parameter.", "session.translation"
    lang = tr["language"]
    if lang not in LANGUAGES[family]:
        return f"Unsupported translation language: '{lang}'.", "session.translation.language"
    if "corpus" in tr and phrases_problem(tr["corpus"]):
        return (
            "Invalid corpus: 'phrases' must be an object of source term -> translation.",
            "session.translation.corpus.phrases",
        )
    if "audio" in eff["modalities"] and lang not in AUDIO_LANGUAGES[family] and reject_audio_for_text_only_targets:
        return f"Language '{lang}' does not support audio output.", "session.modalities"
    iat = upd.get("input_audio_transcription")
    if isinstance(iat, dict) and "model" in iat and iat["model"] != ASR_MODEL:
        # Q3 documents exactly one ASR model; Q3.5 names the same one (§4.1).
        return (
            f"Invalid input_audio_transcription.model: '{iat['model']}'.",
            "session.input_audio_transcription.model",
        )
    if eff.get("input_audio_format") not in ("pcm", "pcm16"):
        return "Only PCM input is supported by the fake.", "session.input_audio_format"
    if family == "q3.5":
        if eff.get("sample_rate") not in (8000, 16000):
            return "Invalid sample_rate.", "session.sample_rate"
        td = eff.get("turn_detection")
        if td is not None:
            sd = td.get("silence_duration_ms") if isinstance(td, dict) else None
            if not isinstance(sd, int) or not 200 <= sd <= 6000:
                return "Invalid silence_duration_ms.", "session.turn_detection.silence_duration_ms"
    return None
