"""Qwen livetranslate wire dialects and client events: model families, languages, every frame we send."""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

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
    # The voices the vendor lists for the family (§9). `voices_complete`: the list is the whole set, so any other
    # name is refused at load; qwen3.5's guide points to the (unread) Omni list, so there a name outside it is
    # only warned about, and a refusal by the service stops that session instead of retrying it forever.
    voices: frozenset[str]
    voices_complete: bool
    # Whether the model's VAD reports `input_audio_buffer.speech_started` (§5): it says when it heard speech.
    vad_events: bool = False
    # Pre-created cloned voices (qwen3.5: "qwen-translate-vc-…", §9), accepted as a voice name.
    clone_prefix: str | None = None
    # qwen3.5's manual turns (§4.4): `turn_detection: null`, then `input_audio_buffer.commit` ends a sentence.
    # qwen3 refuses commit ("Invalid value").
    manual_turns: bool = False
    # How much silence the service's VAD must hear before it ends a sentence (§6): qwen3.5 documents 1000 ms;
    # qwen3 documents nothing, so the same is assumed.
    vad_silence_ms: int = 1000
    # The setup handshake (§4.1): the server's greeting, then our complete session.update, then its echo.
    # And the server's last event after our session.finish (§4.5). Both families use the same names.
    session_created: str = "session.created"
    session_updated: str = "session.updated"
    session_finished: str = "session.finished"
    # The session.update layout: "flat" (qwen3, qwen3.5: `modalities`, top-level fields) or "nested" (qwen3.8:
    # `output_modalities`, `audio.input` / `audio.output`); the 3.8 guide says never to mix the two.
    layout: Literal["flat", "nested"] = "flat"
    # qwen3.8 always transcribes the source (it cannot be turned off) and always detects its language (it cannot be
    # told): no input_audio_transcription is sent, and a shown source transcript costs nothing extra.
    asr_always_on: bool = False
    # translation.same_language_skip_options (qwen3.5 only; effective for targets zh and en).
    same_language_skip: bool = False
    # enable_voice_clone + voice_clone_options.frequency (qwen3.5 and qwen3.8, identical fields).
    voice_clone: bool = False
    # Speaker diarization: `speaker_id` on input_audio_buffer.speech_started (qwen3.8).
    speaker_ids: bool = False
    # qwen3.8's response.done was recorded without `usage` (3.8 digest §4): until a session reports usage, its
    # audio input is estimated from the seconds sent (7 tokens/s), so budgets still hold.
    usage_optional: bool = False

    def voice_problem(self, voice: str) -> str | None:
        """Why `voice` is not one of this family's voices, or None when it is (or may be)."""
        if voice in self.voices or (self.clone_prefix and voice.startswith(self.clone_prefix)):
            return None
        return f"{voice!r} is not a {self.family} voice (voices: {', '.join(sorted(self.voices))})"


Q3 = Dialect(
    family="qwen3-livetranslate-flash-realtime",
    default_voice="Cherry",
    languages=_Q3_LANGUAGES,
    audio_languages=_Q3_AUDIO,
    asr_on_by_default=False,
    source_autodetect=False,
    input_tokens_per_s=12.5,
    corpus_phrases=False,
    voices=frozenset({"Cherry", "Nofish", "Jada", "Dylan", "Sunny", "Peter", "Kiki", "Eric", "Ethan"}),
    voices_complete=True,
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
    voices=frozenset({"Tina", "Cindy", "Liora Mira", "Sunnybobi", "Raymond", "Ethan", "Theo Calm"}),
    voices_complete=False,
    vad_events=True,
    clone_prefix="qwen-translate-vc-",
    manual_turns=True,
    same_language_skip=True,
    voice_clone=True,
)
# qwen3.8 shares qwen3.5's languages, voices, rates and clone ids (3.8 digest §4, §7); what differs is below.
Q38 = dataclasses.replace(
    Q35,
    family="qwen3.8-livetranslate-flash-realtime",
    layout="nested",
    # The source transcript is always on, and its language always detected, never told (3.8 digest §2.1).
    asr_always_on=True,
    # No commit on qwen3.8: it always detects turns on the server ("no need to submit sentence by sentence", §2).
    manual_turns=False,
    # translation.same_language_skip_options is documented for qwen3.5 only (§6).
    same_language_skip=False,
    speaker_ids=True,
    usage_optional=True,
    # Not documented; session.created reported turn_detection.silence_duration_ms 2500 (3.8 digest §2.1).
    vad_silence_ms=2500,
)
DIALECTS = (Q38, Q35, Q3)
# Targets for which the vendor says same_language_skip_options takes effect (Q3.5 client events page).
SKIP_TARGETS = frozenset({"zh", "en"})
# voice_clone_options.frequency values; once/always need voice "default", never a pre-created clone id (§5).
CLONE_FREQUENCIES = ("never", "once", "always")
CLONE_VOICE = "default"

# What input_audio_buffer.append carries: 16 kHz mono PCM16 (§4.2).
INPUT_BYTES_PER_S = 32_000
# Server events.
SPEECH_STARTED = "input_audio_buffer.speech_started"
AUDIO_DELTA = "response.audio.delta"
# Generation of a response's audio is over: its own `.done`, or the whole response's (in case `.done` is missing).
AUDIO_EVENT_TYPES = frozenset({AUDIO_DELTA, "response.audio.done", "response.done"})

# The service takes at most 2 images per second (§4.3). A little margin on the 1 s window, because two
# images sent exactly 0.5 s apart may arrive closer than that.
RATE_MAX_IMAGES = 2
RATE_WINDOW_S = 1.0
RATE_MARGIN_S = 0.1
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
        supported = ", ".join(d.family for d in (Q3, Q35, Q38))
        raise UnsupportedModel(f"{model!r} is not supported (supported: {supported}, or a dated snapshot of one)")
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
    pin_source: bool = True,
    skip_same_language: bool = False,
    clone: str | None = None,
) -> dict[str, object]:
    """The complete session.update event: the service does not merge partial updates (§4.1).

    `transcribe_source` asks for the (billed) source transcript. `pin_source` says whether this session is told
    the source language when that costs a transcript (qwen3.5: the language lives only in the transcription
    block, which bills once on; see translator.pin_source_language). `phrases` (source term -> forced
    translation) goes out as translation.corpus.phrases; config refuses a glossary for a dialect without it,
    and this refuses too rather than dropping it unnoticed (so for the same-language skip and the voice clone).
    `clone` is voice_clone_options.frequency; it goes out only with audio (a clone of a voice nobody hears is
    meaningless, and whether text-only sessions refuse it is not documented).
    """
    if phrases and not dialect.corpus_phrases:
        raise ValueError(f"{dialect.family} does not take translation.corpus.phrases")
    if skip_same_language and not dialect.same_language_skip:
        raise ValueError(f"{dialect.family} does not take translation.same_language_skip_options")
    if clone and (not dialect.voice_clone or clone not in CLONE_FREQUENCIES):
        raise ValueError(f"{dialect.family} does not take voice_clone_options.frequency {clone!r}")
    # Always sent: some models reject a session without one even when text-only.
    chosen = voice or dialect.default_voice
    translation: dict[str, object] = {"language": target}
    if phrases:
        translation["corpus"] = {"phrases": dict(phrases)}
    if skip_same_language:
        translation["same_language_skip_options"] = {"skip_text": True, "skip_audio": True}
    modalities = ["text", "audio"] if audio_output else ["text"]
    session: dict[str, object]
    if dialect.layout == "nested":
        session = {
            "output_modalities": modalities,
            "audio": {
                "input": {
                    "format": {"type": "pcm", "sample_rate": 16000},
                    # Documented as fixed at 0.5; speaker_detection is what makes the model report speaker_id.
                    "turn_detection": {"type": "speaker_detection", "threshold": 0.5},
                },
                # Both places: with the top-level voice alone the nested echo kept "Tina" (3.8 digest §2.1).
                "output": {"voice": chosen},
            },
            "voice": chosen,
        }
    else:
        session = {"modalities": modalities, "voice": chosen}
    if clone and audio_output:
        session["enable_voice_clone"] = True
        session["voice_clone_options"] = {"frequency": clone}
    session["translation"] = translation
    if dialect.layout == "flat":
        block = transcription_block(
            dialect, source_language, transcribe_source=transcribe_source, pin_source=pin_source
        )
        if block != OMIT:
            session["input_audio_transcription"] = block
    return {"type": "session.update", "session": session}


# The service's default is right: send no input_audio_transcription at all.
OMIT: Literal["omit"] = "omit"


def transcription_block(
    dialect: Dialect, source_language: str | None, *, transcribe_source: bool, pin_source: bool
) -> dict[str, str] | Literal["omit"] | None:
    """`input_audio_transcription` for one session, or OMIT when the field is best left out.

    qwen3 (Japanese guide, step 2 "言語、出力モダリティ、音声の構成"): the source language is
    `input_audio_transcription.language` (default en), and only `model: qwen3-asr-flash-realtime` turns the
    transcript on, which is what is billed (課金: "ソース言語の音声認識機能を有効にすると…出力テキストの標準トークン
    レートに基づいて課金"). So a non-English source is told without a model, and no session pays for a
    transcript nobody reads. qwen3.5 runs the (billed) transcript unless the block is `null`, and the language
    can only be said inside it: every session that is told the language pays for its transcript.
    """
    if dialect.asr_always_on:
        return OMIT  # qwen3.8: always on, and neither its model nor its language can be set
    asr: dict[str, str] = {"model": ASR_MODEL}
    if source_language:
        asr["language"] = source_language
    if transcribe_source:
        return asr
    if dialect.asr_on_by_default:
        return asr if source_language and pin_source else None
    if source_language and source_language != "en":
        return {"language": source_language}
    return OMIT


def bills_transcript(dialect: Dialect, block: dict[str, str] | Literal["omit"] | None) -> bool:
    """Whether a session with this transcription block is billed for a source transcript."""
    if dialect.asr_always_on:
        return True  # whether qwen3.8 bills it is not restated (3.8 digest §4); it runs either way
    if block is None or block == OMIT:
        return False
    return dialect.asr_on_by_default or block.get("model") == ASR_MODEL


def rate_allows(sent_at: Sequence[float], now: float) -> bool:
    """True if one more image now keeps a session within 2 images in any 1 s window (plus the margin)."""
    recent = [t for t in sent_at if now - t < RATE_WINDOW_S + RATE_MARGIN_S]
    return len(recent) < RATE_MAX_IMAGES


# ---- client events: every frame the session sends is built here ----------------------------------------
# The per-chunk frames are concatenated, not json.dumps'd: base64 needs no escaping, and these run for every
# 100 ms chunk of every target (benchmarks/hotpath.py measures the cost).


@functools.lru_cache(maxsize=4)  # every target's session sends the same chunk: encoded once, not once each (#21)
def audio_append(pcm16: bytes) -> str:
    """input_audio_buffer.append with one chunk of 16 kHz mono PCM16."""
    return '{"type":"input_audio_buffer.append","audio":"' + base64.b64encode(pcm16).decode() + '"}'


def image_append(jpeg: bytes) -> str:
    """input_image_buffer.append with one JPEG (§4.3)."""
    return '{"type":"input_image_buffer.append","image":"' + base64.b64encode(jpeg).decode() + '"}'


SESSION_FINISH = '{"type":"session.finish"}'
# Manual turns (§4.4): end the sentence in the buffer (translate it), or drop the buffer (no speech in it).
AUDIO_COMMIT = '{"type":"input_audio_buffer.commit"}'
AUDIO_CLEAR = '{"type":"input_audio_buffer.clear"}'


def encode(event: dict[str, object]) -> str:
    """A client event built as a mapping (session_update) as the text frame that carries it."""
    return json.dumps(event)
