"""Config of the capture inputs: `inputs:` (named devices, each with its language and gate) or the single `audio:`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..errors import ConfigError
from ..translation.protocol import Dialect
from .hints import language_hint
from .sections import AudioConfig, Device, _Section


class GateOverride(_Section):
    """One input's changes to the top-level `gate`; keys left out keep the top-level value.

    The OBS-driven keys (obs_outputs, obs_unmuted, obs_scenes) stay top-level: OBS's state is one for every input.
    """

    enabled: bool | None = None
    pre_roll_ms: int | None = Field(None, ge=100, le=2000)
    trail_ms: int | None = Field(None, ge=1000, le=30000)
    min_speech_ms: int | None = Field(None, ge=10, le=300)
    threshold_db: float | None = Field(None, ge=3, le=40)
    min_level_dbfs: float | None = Field(None, ge=-90, le=-10)


class InputConfig(_Section):
    """One capture device, its speaker's name (the caption label), language and gate; its own sessions per target."""

    # Unique; the caption label, the `input` of /status, /metrics and POST /control/source_language.
    name: str = Field(min_length=1)
    # As audio.device: null = the default input, an index, a name substring, or "loopback".
    device: Device = None
    # As audio.backend; unset = audio.backend.
    backend: Literal["auto", "pulse", "portaudio"] | None = None
    # What this input's speaker speaks; unset = translator.source_language.
    source_language: str | None = None
    gate: GateOverride = GateOverride()


def check_inputs(
    inputs: tuple[InputConfig, ...], audio: AudioConfig, dialect: Dialect, model: str, outputs: tuple[Any, ...]
) -> None:
    """Rules for `inputs` and `outputs[].inputs` that span sections, each at the key the user has to change."""
    if inputs:
        for key in ("device", "backend"):
            if key in audio.model_fields_set:
                raise ConfigError(
                    f"audio.{key}",
                    f"with inputs: each input names its own {key} (inputs[].{key}); "
                    "audio: keeps only chunk_ms and queue_chunks",
                )
    for i, inp in enumerate(inputs):
        if any(o.name == inp.name for o in inputs[:i]):
            raise ConfigError(f"inputs[{i}].name", f"{inp.name!r} names two inputs")
        lang = inp.source_language
        if lang is not None and lang not in dialect.languages:
            raise ConfigError(
                f"inputs[{i}].source_language",
                f"{lang!r} is not a supported language for {model}" + language_hint(lang, dialect.languages),
            )
    names = {i.name for i in inputs}
    for i, out in enumerate(outputs):
        for j, name in enumerate(out.inputs):
            if name not in names:
                known = ", ".join(sorted(names)) or "none: there is no inputs: list"
                raise ConfigError(f"outputs[{i}].inputs[{j}]", f"{name!r} is not an input (inputs: {known})")


def link_name(kind: str, input_name: str, *rest: str) -> str:
    """A part's name in /status links and the log: `translator:ja` for the single `audio:` input, else
    `translator:Host:ja` (the names a config without `inputs:` had stay as they were)."""
    return ":".join((kind, *((input_name,) if input_name else ()), *rest))
