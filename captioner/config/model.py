"""The whole config (`Config`), the rules that span sections, warnings, and live language switches."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    field_validator,
)

from .. import cea608
from ..errors import ConfigError
from ..translation.protocol import CLONE_VOICE, UnsupportedModel
from .hints import DEMO_HINT, language_hint
from .inputs import InputConfig, check_inputs
from .outputs import (
    LayoutConfig,
    OutputConfig,
    OutputEntry,
    PostOutputConfig,
    SpeakersConfig,
    StreamCaptionsConfig,
    TranscriptsConfig,
    VocabularyConfig,
    WebhookOutputConfig,
    YoutubeOutputConfig,
    _output_entry,
)
from .sections import (
    SOURCE,
    AudioConfig,
    CostConfig,
    GateConfig,
    HttpConfig,
    ObsConfig,
    TranslatorConfig,
    VisionConfig,
    VoiceOutputConfig,
    _Section,
)
from .service import check_service, service_warnings


class Config(_Section):
    """The whole daemon configuration."""

    audio: AudioConfig = AudioConfig()
    # Several capture devices, each named (its captions' label) with its own language, gate and sessions;
    # empty = `audio:` is the one (unnamed) input.
    inputs: tuple[InputConfig, ...] = ()
    gate: GateConfig = GateConfig()
    translator: TranslatorConfig = TranslatorConfig()
    obs: ObsConfig = ObsConfig()
    layout: LayoutConfig = LayoutConfig()
    # OBS text sources, YouTube caption ingestion and webhooks, in the order written (see obs_outputs, post_outputs).
    outputs: tuple[OutputEntry, ...] = ()
    stream_captions: StreamCaptionsConfig = StreamCaptionsConfig()
    http: HttpConfig = HttpConfig()
    transcripts: TranscriptsConfig = TranscriptsConfig()
    vocabulary: VocabularyConfig = VocabularyConfig()
    speakers: SpeakersConfig = SpeakersConfig()
    cost: CostConfig = CostConfig()
    vision: VisionConfig = VisionConfig()
    voice_outputs: tuple[VoiceOutputConfig, ...] = ()
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("outputs", mode="before")
    @classmethod
    def _outputs(cls, v: Any) -> Any:
        # By hand: a pydantic union would report every kind's errors, with the kinds' names in the key path.
        return [_output_entry(i, item) for i, item in enumerate(v)] if isinstance(v, list) else v

    @property
    def obs_outputs(self) -> tuple[OutputConfig, ...]:
        """The outputs that are OBS text sources."""
        return tuple(o for o in self.outputs if isinstance(o, OutputConfig))

    @property
    def post_outputs(self) -> tuple[PostOutputConfig, ...]:
        """The outputs that POST finals to a URL (YouTube captions, webhooks)."""
        return tuple(o for o in self.outputs if isinstance(o, YoutubeOutputConfig | WebhookOutputConfig))

    def layout_for(self, output: OutputConfig) -> LayoutConfig:
        """The top-level layout with this output's overrides applied."""
        changes = {k: v for k, v in output.layout.model_dump().items() if v is not None}
        return self.layout.model_copy(update=changes)

    def stream_caption_language(self) -> str:
        """The language of the CEA-608 stream captions."""
        if self.stream_captions.language is not None:
            return self.stream_captions.language
        return SOURCE if self.translator.transcribe_source else self.translator.targets[0]

    def languages(self) -> tuple[str, ...]:
        """Every caption language produced: the targets, then "source" if transcribed."""
        return self.translator.targets + ((SOURCE,) if self.translator.transcribe_source else ())

    def input_list(self) -> tuple[InputConfig, ...]:
        """The inputs to capture: `inputs:`, or `audio:` as one unnamed input (name "")."""
        if self.inputs:
            return self.inputs
        # Not validated (its name is empty on purpose): the single input of a config written before `inputs:`.
        return (InputConfig.model_construct(name="", device=self.audio.device),)

    def input_audio(self, inp: InputConfig) -> AudioConfig:
        """One input's capture settings: its device and backend, the top-level chunking."""
        return self.audio.model_copy(update={"device": inp.device, "backend": inp.backend or self.audio.backend})

    def input_gate(self, inp: InputConfig) -> GateConfig:
        """The top-level gate with this input's overrides applied."""
        return self.gate.model_copy(update={k: v for k, v in inp.gate.model_dump().items() if v is not None})

    def input_translator(self, inp: InputConfig) -> TranslatorConfig:
        """The translator settings of this input's sessions: the top-level ones in its source language."""
        if inp.source_language is None:
            return self.translator
        return self.translator.model_copy(update={"source_language": inp.source_language})


# Used when no file is given: the key comes from the environment, OBS on its default port.
BUILTIN: dict[str, Any] = {
    "translator": {"api_key": "${DASHSCOPE_API_KEY}", "targets": ["ja"]},
    "obs": {"password": "${OBS_WEBSOCKET_PASSWORD:-}"},
    "outputs": [{"obs_source": "Captions JA", "language": "ja"}],
}


def _check(cfg: Config) -> None:
    """Rules that span keys, each reported at the key the user has to change."""
    tr = cfg.translator
    try:
        dialect = tr.dialect
    except UnsupportedModel as e:
        raise ConfigError("translator.model", str(e)) from None
    voices = [("translator.voice", tr.voice)] + [
        (f"voice_outputs[{i}].voice", v.voice) for i, v in enumerate(cfg.voice_outputs) if v.voice
    ]
    for key, voice in voices:
        problem = dialect.voice_problem(voice) if voice else None
        if problem and dialect.voices_complete:
            raise ConfigError(key, problem)
    if not tr.url.startswith(("ws://", "wss://")):
        raise ConfigError("translator.url", f"{tr.url!r} is not a ws:// or wss:// URL")
    if not tr.api_key.get_secret_value():
        raise ConfigError("translator.api_key", f"is empty (set DASHSCOPE_API_KEY or put ${{VAR}} here); {DEMO_HINT}")
    if tr.source_language is None and not dialect.source_autodetect:
        raise ConfigError("translator.source_language", f"{tr.model} cannot auto-detect; name the language")
    if tr.source_language is not None and tr.source_language not in dialect.languages:
        raise ConfigError(
            "translator.source_language",
            f"{tr.source_language!r} is not a supported language for {tr.model}"
            + language_hint(tr.source_language, dialect.languages),
        )
    for i, lang in enumerate(tr.targets):
        if lang not in dialect.languages:
            hint = language_hint(lang, dialect.languages)
            raise ConfigError(f"translator.targets[{i}]", f"{lang!r} is not a supported language{hint}")
        if lang in tr.targets[:i]:
            raise ConfigError(f"translator.targets[{i}]", f"{lang!r} is listed twice")
        if tr.audio_output and lang not in dialect.audio_languages:
            raise ConfigError(
                f"translator.targets[{i}]",
                f"{lang!r} has no voice output; set translator.audio_output: false",
            )
    check_inputs(cfg.inputs, cfg.audio, dialect, tr.model, cfg.outputs)
    for i, out in enumerate(cfg.outputs):
        where = f"outputs[{i}]"
        if out.language == SOURCE and not tr.transcribe_source:
            raise ConfigError(f"{where}.language", "'source' needs translator.transcribe_source: true")
        if out.language != SOURCE and out.language not in tr.targets:
            hint = language_hint(out.language, [*tr.targets, SOURCE])
            raise ConfigError(f"{where}.language", f"{out.language!r} is not one of translator.targets{hint}")
        if not isinstance(out, OutputConfig):
            continue
        if any(isinstance(o, OutputConfig) and o.obs_source == out.obs_source for o in cfg.outputs[:i]):
            raise ConfigError(f"{where}.obs_source", f"{out.obs_source!r} is used by two outputs")
        if out.with_source and (not tr.transcribe_source or out.language != tr.targets[0]):
            raise ConfigError(
                f"{where}.with_source",
                f"needs translator.transcribe_source: true and language {tr.targets[0]!r} (the first target)",
            )
        layout = cfg.layout_for(out)
        overridden = out.layout.clear_after_s is not None or out.layout.min_display_s is not None
        if overridden and layout.clear_after_s and layout.clear_after_s < layout.min_display_s:
            raise ConfigError(f"{where}.layout.clear_after_s", "must be 0 or at least min_display_s")
    if cfg.layout.clear_after_s and cfg.layout.clear_after_s < cfg.layout.min_display_s:
        raise ConfigError("layout.clear_after_s", "must be 0 or at least min_display_s")
    sc = cfg.stream_captions
    if sc.enabled:
        language = cfg.stream_caption_language()
        if language not in cfg.languages():
            hint = " (set translator.transcribe_source: true)" if language == SOURCE else ""
            raise ConfigError("stream_captions.language", f"{language!r} is not a caption language{hint}")
        # The source transcript is in every input's own language.
        spoken_all = [cfg.input_translator(i).source_language for i in cfg.input_list()] if language == SOURCE else []
        for spoken in spoken_all or [language]:
            if spoken is None or not cea608.supports(spoken):
                raise ConfigError(
                    "stream_captions.language",
                    f"{spoken or 'auto-detected source'!r} cannot be shown as CEA-608 captions, which carry only "
                    "Latin-script languages (e.g. en, es, fr, de, it, pt)",
                )
    g = cfg.gate
    for key in ("obs_outputs", "obs_unmuted", "obs_scenes"):
        if getattr(g, key) and not cfg.obs.enabled:
            raise ConfigError(f"gate.{key}", "needs obs.enabled: true (the state comes from OBS)")
    if g.turns == "client" and not (g.enabled and dialect.manual_turns):
        why = "gate.enabled: true" if dialect.manual_turns else f"a model with manual turns (not {tr.model})"
        raise ConfigError("gate.turns", f"'client' needs {why}; 'auto' picks what the model can do")
    if cfg.vision.enabled and not cfg.obs.enabled:
        raise ConfigError("vision.enabled", "needs obs.enabled: true (the screenshots come from OBS)")
    tr.check_glossary()
    cfg.vocabulary.check(cfg.languages())
    cfg.speakers.check()
    _check_voice_outputs(cfg)
    check_service(cfg)


def _check_voice_outputs(cfg: Config) -> None:
    tr = cfg.translator
    audio = tr.dialect.audio_languages
    for i, v in enumerate(cfg.voice_outputs):
        where = f"voice_outputs[{i}]"
        if v.language not in tr.targets:
            raise ConfigError(f"{where}.language", f"{v.language!r} is not one of translator.targets")
        if v.language not in audio:
            raise ConfigError(
                f"{where}.language",
                f"{v.language!r} has no voice output on {tr.model} (voice languages: {' '.join(sorted(audio))})",
            )
        earlier = cfg.voice_outputs[:i]
        if any(o.language == v.language for o in earlier):
            raise ConfigError(f"{where}.language", f"{v.language!r} is played by two voice outputs")
        if v.prebuffer_s >= v.max_buffer_s:
            raise ConfigError(f"{where}.prebuffer_s", "must be less than max_buffer_s")
        if any((o.device, o.sink) == (v.device, v.sink) for o in earlier):
            what = f"sink {v.sink!r}" if v.sink else "the default output" if v.device is None else repr(v.device)
            raise ConfigError(f"{where}.sink" if v.sink else f"{where}.device", f"{what} is used by two voice outputs")


def config_warnings(cfg: Config) -> list[str]:
    """What may be wrong but is not refused: each a key path and why (logged at start and by `captioner check`)."""
    out: list[str] = []
    dialect = cfg.translator.dialect
    voices = [("translator.voice", cfg.translator.voice)] + [
        (f"voice_outputs[{i}].voice", v.voice) for i, v in enumerate(cfg.voice_outputs)
    ]
    for key, voice in voices:
        if voice == CLONE_VOICE and dialect.voice_clone:
            continue  # the cloned voice: check_service made sure a clone goes with it
        if voice and (problem := dialect.voice_problem(voice)):
            # Only for a family whose list is incomplete: _check refuses the others.
            out.append(f"{key}: {problem}; the vendor's list may be incomplete, so the service will decide")
    live = [
        f"outputs[{i}]" for i, o in enumerate(cfg.outputs) if isinstance(o, OutputConfig) and cfg.layout_for(o).live
    ]
    if cfg.gate.turns == "client" and live:
        out.append(
            f"gate.turns: 'client' shows nothing of a sentence until it ends, so {live[0]}'s live captions "
            "come with the final; 'auto' keeps the service's turns while captions are live"
        )
    return out + service_warnings(cfg) + _unshown_warnings(cfg)


def _unshown_warnings(cfg: Config) -> list[str]:
    """Languages translated (and billed) that no output shows: nothing listed, or a target no entry names."""
    shown = {o.language for o in cfg.outputs} | {v.language for v in cfg.voice_outputs}
    if cfg.stream_captions.enabled:
        shown.add(cfg.stream_caption_language())
    if not shown:
        return [
            "outputs: none: captions are translated (and billed) but no OBS source, stream or webhook shows them; "
            "list one per language (see config/example.yaml), unless the overlay page is all you use"
        ]
    return [
        f"translator.targets[{i}]: {lang!r} has no output: it is translated (and billed) but shown nowhere "
        f"except the overlay page; add an outputs entry with language: {lang}, or drop it from targets"
        for i, lang in enumerate(cfg.translator.targets)
        if lang not in shown
    ]


def with_output_language(cfg: Config, obs_source: str, language: str) -> Config:
    """The config with one output switched to another language (the live "switch language" control).

    A language no session translates yet becomes a new target; the old language stops being translated when nothing
    else shows it (that is what saves its cost). Errors are ConfigErrors at the key the request names.
    """
    index = next(
        (i for i, o in enumerate(cfg.outputs) if isinstance(o, OutputConfig) and o.obs_source == obs_source), None
    )
    out = cfg.outputs[index] if index is not None else None
    if index is None or not isinstance(out, OutputConfig):
        raise ConfigError("output", f"no output shows in OBS source {obs_source!r}")
    tr = cfg.translator
    if language != SOURCE and language not in tr.dialect.languages:
        raise ConfigError("language", f"{language!r} is not a supported language for {tr.model}")
    if language == SOURCE and out.with_source:
        raise ConfigError("language", "a bilingual output already shows the source; pick a translation")
    outputs = list(cfg.outputs)
    outputs[index] = out.model_copy(update={"language": language})
    targets = list(tr.targets)
    old = out.language
    still_used = (
        any(o.language == old for o in outputs)
        or (cfg.stream_captions.enabled and cfg.stream_caption_language() == old)
        or any(v.language == old for v in cfg.voice_outputs)
    )
    if old != SOURCE and old != language and not still_used:
        targets.remove(old)  # nothing else shows it: stop paying for it
    if language != SOURCE and language not in targets:
        targets.append(language)
    if out.with_source:
        # A bilingual output pairs with the first target (the session that also transcribes the source).
        targets = [language, *(t for t in targets if t != language)]
    if not targets:  # switched to the source transcript: its session still has to run
        targets = [old]
    new = cfg.model_copy(
        update={"outputs": tuple(outputs), "translator": tr.model_copy(update={"targets": tuple(targets)})}
    )
    _check(new)
    return new


def with_source_language(cfg: Config, name: str | None, language: str) -> Config:
    """The config with one input's source language switched (the live control); ConfigErrors name the request key.

    `name` may be left out when there is one input.
    """
    inputs = cfg.input_list()
    inp = inputs[0] if name is None and len(inputs) == 1 else next((i for i in inputs if name and i.name == name), None)
    if inp is None:
        names = ", ".join(i.name for i in cfg.inputs) or "none (audio: is the one unnamed input)"
        raise ConfigError("input", f'name the input as {{"input": ...}}, one of: {names}')
    tr = cfg.translator
    if language not in tr.dialect.languages:
        hint = language_hint(language, tr.dialect.languages)
        raise ConfigError("language", f"{language!r} is not a supported language for {tr.model}{hint}")
    if not cfg.inputs:
        new = cfg.model_copy(update={"translator": tr.model_copy(update={"source_language": language})})
    else:
        changed = tuple(i.model_copy(update={"source_language": language}) if i is inp else i for i in cfg.inputs)
        new = cfg.model_copy(update={"inputs": changed})
    _check(new)  # e.g. stream captions of the source cannot carry every language
    return new
