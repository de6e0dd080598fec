"""Rules on what the service is asked for that span keys: voice clone, same-language skip, qwen3.8's source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..errors import ConfigError
from ..translation.protocol import CLONE_VOICE, SKIP_TARGETS
from .sections import TranslatorConfig, VoiceOutputConfig


class Config(Protocol):
    """The two sections these rules read (config.model.Config has them; importing it here would be a cycle)."""

    @property
    def translator(self) -> TranslatorConfig: ...

    @property
    def voice_outputs(self) -> tuple[VoiceOutputConfig, ...]: ...


@dataclass(frozen=True)
class SessionVoice:
    """One target's session voice settings, and the keys they came from (for errors)."""

    audio: bool
    voice: str | None
    clone: str | None
    voice_key: str
    clone_key: str


def session_voice(cfg: Config, target: str) -> SessionVoice:
    """Whether a target's session asks for audio, with which voice and clone: its voice output's, else translator's.

    Audio is billed high (§8), so only a played language asks for it; translator.audio_output keeps asking every
    target, as it always did.
    """
    tr = cfg.translator
    index = next((i for i, v in enumerate(cfg.voice_outputs) if v.language == target), None)
    if index is None:
        # A text-only session clones nothing: no clone is sent (and changing it restarts nothing).
        clone = tr.voice_clone if tr.audio_output else None
        return SessionVoice(tr.audio_output, tr.voice, clone, "translator.voice", "translator.voice_clone")
    played = cfg.voice_outputs[index]
    own = played.voice_clone
    return SessionVoice(
        True,
        played.voice or tr.voice,
        tr.voice_clone if own is None else None if own == "off" else own,
        f"voice_outputs[{index}].voice" if played.voice else "translator.voice",
        f"voice_outputs[{index}].voice_clone" if played.voice_clone is not None else "translator.voice_clone",
    )


def check_service(cfg: Config) -> None:
    """Refuse what the model does not document, and clone settings the service refuses (3.8 digest §5)."""
    tr = cfg.translator
    dialect = tr.dialect
    if tr.skip_same_language and not dialect.same_language_skip:
        # Documented for qwen3.5 only; for qwen3.8 one SDK refuses it and the service's answer is unknown: a
        # setting that may be silently ignored would bill translations the user believes are skipped.
        raise ConfigError(
            "translator.skip_same_language",
            f"{tr.model} does not document translation.same_language_skip_options (only qwen3.5 does); remove it",
        )
    for target in tr.targets:
        sv = session_voice(cfg, target)
        voice = sv.voice or dialect.default_voice
        if sv.clone is None or not sv.audio:
            if voice == CLONE_VOICE and sv.audio and dialect.voice_clone:
                raise ConfigError(sv.voice_key, '"default" is the cloned voice: it needs voice_clone once or always')
            continue
        if not dialect.voice_clone:
            raise ConfigError(sv.clone_key, f"{tr.model} has no voice clone (qwen3.5 and qwen3.8 have)")
        if sv.clone in ("once", "always") and voice != CLONE_VOICE:
            raise ConfigError(sv.voice_key, f'voice_clone {sv.clone} needs voice "default" (got {voice!r})')
        if sv.clone == "never" and not (dialect.clone_prefix and voice.startswith(dialect.clone_prefix)):
            raise ConfigError(
                sv.voice_key,
                f"voice_clone never needs a pre-created clone id ({dialect.clone_prefix}...) as the voice, "
                f"got {voice!r}",
            )


def service_warnings(cfg: Config) -> list[str]:
    """Settings that are not refused but do less than they seem to."""
    tr = cfg.translator
    out: list[str] = []
    if tr.skip_same_language:
        out += [
            f"translator.targets[{i}]: the vendor says translator.skip_same_language works only for targets "
            f"{' and '.join(sorted(SKIP_TARGETS))}; {t!r} is translated (and billed) as usual"
            for i, t in enumerate(tr.targets)
            if t not in SKIP_TARGETS
        ]
    if tr.dialect.asr_always_on and "source_language" in tr.model_fields_set and tr.source_language is not None:
        out.append(
            f"translator.source_language: {tr.model} detects the language itself and cannot be told it: "
            "it is not sent (stream_captions still reads it as the source's language)"
        )
    return out
