"""Pure: what one target's session asks the service for (its session.update) and what that bills."""

from __future__ import annotations

from typing import Any

from ..config import TranslatorConfig
from . import policy
from .protocol import session_update


def transcribes(cfg: TranslatorConfig, transcribe_source: bool) -> bool:
    """Whether the session asks for the source transcript: to show it, or for a skipped same-language sentence's
    captions (translator.same_language_captions: source), which show that sentence's source text."""
    return transcribe_source or cfg.skip_shows_source


def update_for(
    cfg: TranslatorConfig,
    target: str,
    *,
    transcribe_source: bool,
    voice: str | None,
    audio_output: bool,
    pin_source: bool,
    clone: str | None,
) -> dict[str, object]:
    """The complete session.update of one target's session."""
    return session_update(
        cfg.dialect,
        target=target,
        source_language=cfg.source_language,
        transcribe_source=transcribes(cfg, transcribe_source),
        voice=voice,
        audio_output=audio_output,
        phrases=cfg.glossary.get(target),
        pin_source=pin_source,
        skip_same_language=cfg.skip_same_language,
        clone=clone,
    )


def billing(cfg: TranslatorConfig, *, transcribe_source: bool, pin_source: bool) -> dict[str, Any]:
    """What the session bills beyond the audio, and how its usage figures read (for /status)."""
    return policy.billing(
        cfg.dialect, cfg.source_language, transcribe_source=transcribes(cfg, transcribe_source), pin_source=pin_source
    )
