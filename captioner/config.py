"""YAML config -> typed, frozen settings; ${VAR} expansion; errors that name the key path."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from . import cea608
from .errors import ConfigError
from .redaction import add_secrets, add_url_secrets
from .translation.protocol import Dialect, UnsupportedModel, dialect_for
from .vocabulary import compile_find

SOURCE = "source"
DEFAULT_PATH = Path("~/.config/captioner/config.yaml")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _device_value(v: Any) -> int | str | None:
    """An audio device setting: null, an index or a name."""
    if v is None or (isinstance(v, int | str) and not isinstance(v, bool)):
        return v
    raise ValueError(f"must be null, a device index or a name (got {v!r})")


# Checked after parsing as Any, by hand: a pydantic union would put its member names into the key path.
Device = Annotated[Any, AfterValidator(_device_value)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class AudioConfig(_Section):
    """Capture device and chunking."""

    # None = system default input; int = device index; str = name substring, or "loopback".
    device: Device = None
    # auto: record natively from PulseAudio/PipeWire when there is one (the default input, "loopback", or a source
    # named exactly), else PortAudio; the server resamples, and it costs a fraction of PortAudio's CPU and memory.
    backend: Literal["auto", "pulse", "portaudio"] = "auto"
    # Length of one audio chunk sent to the translator; the service recommends 100 ms.
    chunk_ms: int = Field(100, ge=20, le=1000)
    # Captured blocks waiting for the converter; when full the oldest is dropped (and counted).
    queue_chunks: int = Field(50, ge=2, le=10_000)


class GateConfig(_Section):
    """Local voice-activity gate: only audio around speech is sent, because every second sent is billed."""

    # On: silence is kept back (the bill shrinks with it); off: every captured second is streamed and billed.
    enabled: bool = True
    # Audio from before speech, sent when it starts: the first syllable, and the service VAD's own 300 ms
    # prefix padding, are in it. At most 2 s, so the burst fits a session's 3 s send queue.
    pre_roll_ms: int = Field(500, ge=100, le=2000)
    # Audio still sent after speech stops: the service ends a segment only after silence_duration_ms (1000 ms
    # by default) of silence, and the protocol notes advise that plus 1 s; less leaves the last words hanging.
    trail_ms: int = Field(2000, ge=1000, le=30000)
    # Loud audio needed within 300 ms to open: a click (5-20 ms) is shorter, a short word (a 60 ms vowel and
    # more) is longer. Higher saves on clicks and knocks but risks a quiet short word.
    min_speech_ms: int = Field(30, ge=10, le=300)
    # How far above the noise floor (the quiet between words over the last 5 s, 200 Hz and up) audio counts
    # as speech. Lower hears quieter speech in a noisy room but opens on the noise itself.
    threshold_db: float = Field(9.0, ge=3, le=40)
    # Audio quieter than this never opens the gate, however quiet the room (digital silence has no floor).
    min_level_dbfs: float = Field(-55.0, ge=-90, le=-10)
    # Send audio only while OBS does one of these (e.g. [streaming]): nobody reads captions otherwise.
    obs_outputs: tuple[Literal["streaming", "recording"], ...] = ()
    # OBS inputs (microphones): send audio only while at least one of them is unmuted in OBS.
    obs_unmuted: tuple[str, ...] = ()
    # Program scenes in which to caption (e.g. not "BRB"); empty = every scene.
    obs_scenes: tuple[str, ...] = ()


class TranslatorConfig(_Section):
    """The Qwen livetranslate service and what to ask of it."""

    url: str = "wss://dashscope-intl.aliyuncs.com/api-ws/v1/realtime"
    model: str = "qwen3-livetranslate-flash-realtime"
    api_key: SecretStr = SecretStr("")
    # None: auto-detect (qwen3.5 only); qwen3 assumes "en".
    source_language: str | None = "en"
    targets: tuple[str, ...] = Field(("ja",), min_length=1)
    transcribe_source: bool = False
    # qwen3.5 takes the source language only inside the (billed) source transcript: "all" tells every session
    # (each bills its transcript; translations follow the named language), "one" only the first target's
    # (the others auto-detect, and bill no transcript). qwen3 learns the language for free, so it is always told.
    pin_source_language: Literal["all", "one"] = "all"
    # None = the model's default voice; a voice is always sent because some models demand one.
    voice: str | None = None
    # Ask for translated speech too (text+audio modality); captions only need text.
    audio_output: bool = False
    connect_timeout_s: float = Field(10.0, gt=0)
    # How long a stop waits for `session.finished`, so the last utterance still arrives.
    # The vendor's SDK waits 20 s; clients 10-15 s. The shutdown limit and the unit files' stop timeout exceed it.
    finish_timeout_s: float = Field(15.0, gt=0, le=60)
    # Sessions are replaced (at a pause, without losing speech) before the service's 120-minute cap.
    rotate_after_s: float = Field(5400.0, ge=1, le=7000)
    # Speech sent but no event back for this long: the session is considered hung and replaced.
    watchdog_s: float = Field(20.0, ge=1)
    # ... but only once this much speech-like audio went unanswered: to qwen3, which reports no VAD events, music
    # or noise that opened the gate is unanswered "speech" too, and a reconnect would not help.
    watchdog_speech_s: float = Field(5.0, ge=0, le=600)
    # Per target language: source term -> forced translation, sent as translation.corpus.phrases (qwen3.5
    # only). Given as the mapping or as the path of a YAML file holding it; the loader reads the files when
    # the config is loaded (and on reload: read_glossary_files), so after validation every value is a mapping.
    glossary: dict[str, dict[str, str]] = {}

    @property
    def dialect(self) -> Dialect:
        return dialect_for(self.model)

    @field_validator("glossary", mode="before")
    @classmethod
    def _glossary(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            raise ValueError("must map target languages to term -> translation mappings or YAML files of them")
        return {lang: cls._glossary_terms(f"translator.glossary.{lang}", terms) for lang, terms in v.items()}

    @staticmethod
    def _glossary_terms(key: str, value: Any) -> dict[str, str]:
        """One language's glossary, checked; raised as ConfigError because pydantic would drop the language."""
        where = ""
        if isinstance(value, str):
            # Only a config validated without the loader (which reads every file first) gets here.
            raise ConfigError(key, f"glossary file {value} was not read: load the config with config.parse or load")
        if isinstance(value, GlossaryFile):
            if value.problem is not None:
                raise ConfigError(key, value.problem)
            where = f"{value.path}: "
            value = value.terms
        if not isinstance(value, dict):
            raise ConfigError(
                key, f"{where}must be a mapping of source term -> translation, or the path of a YAML file with one"
            )
        # The vendor guide recommends at most 1000 phrases per session.
        if len(value) > 1000:
            raise ConfigError(key, f"{where}{len(value)} terms; at most 1000 are allowed")
        terms: dict[str, str] = {}
        for term, translation in value.items():
            if not isinstance(term, str) or not term.strip():
                # YAML reads unquoted yes/no/on/off/null keys as booleans or null.
                hint = " (quote it)" if term is None or isinstance(term, bool | int | float) else ""
                raise ConfigError(key, f"{where}term {term!r} must be a non-empty string{hint}")
            if not isinstance(translation, str) or not translation.strip():
                raise ConfigError(key, f"{where}translation of {term!r} must be a non-empty string")
            terms[term] = translation
        return terms

    def check_glossary(self) -> None:
        """Glossary rules that need the model and targets; run by _check once those are valid."""
        if any(self.glossary.values()) and not self.dialect.corpus_phrases:
            raise ConfigError(
                "translator.glossary",
                f"{self.model} does not document a glossary (translation.corpus.phrases); "
                "use qwen3.5-livetranslate-flash-realtime or remove translator.glossary",
            )
        for lang in self.glossary:
            if lang not in self.targets:
                raise ConfigError(f"translator.glossary.{lang}", f"{lang!r} is not one of translator.targets")


class ObsConfig(_Section):
    """obs-websocket connection."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(4455, ge=1, le=65535)
    password: SecretStr = SecretStr("")
    # Every request gets this limit; a frozen OBS must not freeze the caption writer.
    timeout_s: float = Field(3.0, gt=0, le=60)


class LayoutConfig(_Section):
    """How captions are laid out in a text source; the defaults read well at 1080p with a 48 px font."""

    # Display columns per line: an East Asian wide character counts 2, so 42 = 21 Japanese characters.
    max_width: int = Field(42, ge=8, le=400)
    max_lines: int = Field(2, ge=1, le=20)
    # True: newest line at the bottom, older lines scroll off; False: each caption replaces the previous one.
    rolling: bool = True
    # A line stays at least this long before it scrolls off or is cleared.
    min_display_s: float = Field(1.0, ge=0, le=30)
    # Clear the source after this long without new captions; 0 = keep the last caption up.
    clear_after_s: float = Field(6.0, ge=0, le=3600)
    # Live captions: show the growing partial text (replaced by the final) instead of finals only.
    live: bool = False
    # Live captions update the source at most this often.
    live_interval_s: float = Field(0.25, ge=0.05, le=5)


class LayoutOverride(_Section):
    """Per-output changes to the top-level `layout`; keys left out keep the top-level value."""

    max_width: int | None = Field(None, ge=8, le=400)
    max_lines: int | None = Field(None, ge=1, le=20)
    rolling: bool | None = None
    min_display_s: float | None = Field(None, ge=0, le=30)
    clear_after_s: float | None = Field(None, ge=0, le=3600)
    live: bool | None = None
    live_interval_s: float | None = Field(None, ge=0.05, le=5)


class OutputConfig(_Section):
    """One OBS text source fed with one language's captions."""

    obs_source: str = Field(min_length=1)
    language: str
    layout: LayoutOverride = LayoutOverride()
    # Bilingual: show each translation with its source sentence above it (the first target only: its session
    # is the one that transcribes the source).
    with_source: bool = False


def _http_url(v: SecretStr) -> SecretStr:
    # The URL is a secret: the message never quotes it.
    if not v.get_secret_value().startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return v


HttpUrl = Annotated[SecretStr, AfterValidator(_http_url)]


class _PostOutputConfig(_Section):
    """What every output that POSTs finals to a URL shares."""

    language: str
    # A final still unsent this long after its words were spoken (the endpoint was down) is skipped and counted.
    max_age_s: float = Field(60.0, ge=1, le=86400)
    # Each POST gets this long for the whole answer; a slower one is retried.
    timeout_s: float = Field(10.0, gt=0, le=120)


class YoutubeOutputConfig(_PostOutputConfig):
    """One language's finals as YouTube Live closed captions, POSTed to the ingestion URL from YouTube Studio."""

    youtube_url: HttpUrl
    # Added to every stamp: positive shows the captions later on the video, negative earlier.
    offset_s: float = Field(0.0, ge=-60, le=60)

    @property
    def url(self) -> str:
        return self.youtube_url.get_secret_value()


class WebhookOutputConfig(_PostOutputConfig):
    """One language's finals POSTed as JSON to any URL."""

    webhook_url: HttpUrl
    # Sent with every POST (e.g. Authorization); values are secrets, so use ${VAR}.
    headers: dict[str, SecretStr] = {}
    max_age_s: float = Field(600.0, ge=1, le=86400)

    @property
    def url(self) -> str:
        return self.webhook_url.get_secret_value()


OutputEntry = OutputConfig | YoutubeOutputConfig | WebhookOutputConfig
PostOutputConfig = YoutubeOutputConfig | WebhookOutputConfig


def _output_entry(i: int, item: Any) -> Any:
    """One `outputs` entry, validated as the kind its URL key names, errors at `outputs[i]...`."""
    if not isinstance(item, dict):
        raise ConfigError(f"outputs[{i}]", "must be a mapping with obs_source:, youtube_url: or webhook_url:")
    kinds = [k for k in ("youtube_url", "webhook_url") if k in item]
    if len(kinds) > 1:
        raise ConfigError(f"outputs[{i}].{kinds[1]}", f"one kind per entry: this one already has {kinds[0]}")
    by_key: dict[str, type[_Section]] = {"youtube_url": YoutubeOutputConfig, "webhook_url": WebhookOutputConfig}
    kind = by_key[kinds[0]] if kinds else OutputConfig
    try:
        return kind.model_validate(item)
    except ValidationError as e:
        first = e.errors()[0]
        raise ConfigError(key_path(("outputs", i, *first["loc"])), _pydantic_problem(first)) from None


class HttpConfig(_Section):
    """Status / metrics endpoint."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    # Bearer token for the POST /control/... endpoints (also on loopback); empty = those endpoints are off.
    token: SecretStr = SecretStr("")
    # A connection must send a whole request head (and /control its body) within this long of opening or of its
    # last answer; half-sent and idle connections are closed after it.
    header_timeout_s: float = Field(10.0, gt=0, le=300)
    # Open connections besides overlay event streams; past it the oldest one not answering a request is closed.
    max_connections: int = Field(64, ge=2, le=10_000)
    # Overlay pages' event streams (/overlay/events) open at once; past it a new one is answered 503 (it retries).
    max_event_streams: int = Field(256, ge=1, le=10_000)
    # Host names besides localhost and IP literals that requests may name (Host header); against DNS rebinding.
    allowed_hosts: tuple[str, ...] = ()


class StreamCaptionsConfig(_Section):
    """Native CEA-608 captions in the stream (OBS SendStreamCaption), for one language."""

    enabled: bool = False
    # A target language or "source"; only languages the 608 character set can carry. Unset: the source
    # transcript when there is one, else the first target.
    language: str | None = None
    # Rows per caption (608 pop-on captions are 32 columns wide; OBS keeps at most 128 bytes).
    rows: int = Field(2, ge=1, le=4)
    # At most one caption per this interval, so a burst does not pile up in the stream.
    min_interval_s: float = Field(1.0, ge=0.1, le=10)


class TranscriptsConfig(_Section):
    """Subtitle/transcript files written as captions finalize."""

    enabled: bool = False
    # One set of files per run and language: captioner_<start time>_<language>.<format>
    folder: str = "~/captioner-transcripts"
    formats: tuple[Literal["srt", "vtt", "txt"], ...] = Field(("srt", "vtt", "txt"), min_length=1)
    # While OBS records, also write a set named after the recording, timed from its start, next to it.
    follow_recording: bool = True


class ReplacementConfig(_Section):
    """One find -> replace rule for displayed caption text."""

    find: str = Field(min_length=1)
    # Literal text; with `regex: true` a Python re template (\1, \g<name>).
    replace: str = ""
    # Caption languages it applies to (target codes, or "source"); empty = every language.
    languages: tuple[str, ...] = ()
    # `find` is a Python regular expression instead of literal text.
    regex: bool = False
    ignore_case: bool = True
    # Match whole words only; in CJK, Thai and Korean text, which has no word boundaries, it matches anywhere.
    whole_word: bool = True


class ProfanityConfig(_Section):
    """Masks swearing: a short built-in English list (with -s/-ed/-ing... forms) plus `words`."""

    enabled: bool = False
    # Replaces every character after the first: "shit" -> "s***".
    mask: str = Field("*", min_length=1, max_length=1)
    # More words, case-insensitive, exactly as written: whole words, or anywhere in CJK text.
    words: tuple[str, ...] = ()
    # Caption languages to mask (target codes, or "source"); empty = every language.
    languages: tuple[str, ...] = ()


class VocabularyConfig(_Section):
    """Clean-up of displayed caption text; the translation glossary is `translator.glossary`."""

    # Applied in order, each to the result of the one before, then the profanity mask.
    replacements: tuple[ReplacementConfig, ...] = ()
    profanity: ProfanityConfig = ProfanityConfig()

    def check(self, languages: tuple[str, ...]) -> None:
        """Rules pydantic cannot see, given the caption languages the config produces."""

        def known(key: str, lang: str) -> None:
            if lang not in languages:
                hint = " (set translator.transcribe_source: true)" if lang == SOURCE else ""
                raise ConfigError(key, f"{lang!r} is not a caption language{hint}")

        for i, r in enumerate(self.replacements):
            where = f"vocabulary.replacements[{i}]"
            try:
                pattern = compile_find(r.find, regex=r.regex, ignore_case=r.ignore_case, whole_word=r.whole_word)
            except re.error as e:
                raise ConfigError(f"{where}.find", f"not a valid regular expression: {e}") from None
            if r.regex:
                try:  # the template is parsed even without a match, so \2 without group 2 fails here
                    pattern.sub(r.replace, "")
                except (re.error, IndexError) as e:
                    raise ConfigError(f"{where}.replace", f"not a valid replacement: {e}") from None
            for j, lang in enumerate(r.languages):
                known(f"{where}.languages[{j}]", lang)
        p = self.profanity
        for j, word in enumerate(p.words):
            if not word.strip():
                raise ConfigError(f"vocabulary.profanity.words[{j}]", "must not be empty")
        for j, lang in enumerate(p.languages):
            known(f"vocabulary.profanity.languages[{j}]", lang)


class VoiceOutputConfig(_Section):
    """One language's translated voice, played to an output device (asks the service for text+audio)."""

    language: str
    # None = the system default output; int = device index; str = name substring (see `captioner devices`).
    device: Device = None
    # A PulseAudio/PipeWire sink to play into (e.g. a null sink OBS captures): opened through the ALSA "pulse"
    # device with PULSE_SINK set to it. None = the device above.
    sink: str | None = Field(None, min_length=1)
    # None = translator.voice, else the model's default voice.
    voice: str | None = Field(None, min_length=1)
    # When playback falls this far behind, whole oldest utterances are dropped (never one cut in the middle).
    max_buffer_s: float = Field(10.0, ge=1, le=300)
    # An utterance starts once this much of it has arrived (or all of it): the service sends speech at about
    # the pace it plays, so starting on the first packet would stutter.
    prebuffer_s: float = Field(0.8, ge=0, le=10)


class PricesConfig(_Section):
    """Price per million tokens of each kind, for the estimate. Defaults: the qwen3 international list in CNY
    (translator-protocol.md §8; qwen3.5 prices were not published, so set yours from the console)."""

    audio_in: float = Field(73.392, ge=0)
    text_in: float = Field(73.392, ge=0)
    image_in: float = Field(9.541, ge=0)
    text_out: float = Field(73.392, ge=0)
    audio_out: float = Field(278.891, ge=0)


class CostConfig(_Section):
    """The estimated bill and the budgets that pause captioning when reached."""

    currency: str = "CNY"
    prices: PricesConfig = PricesConfig()
    # Pause sending audio once this much was spent since OBS started streaming (or since start); 0 = no limit.
    budget_per_stream: float = Field(0.0, ge=0)
    # Pause once this much was spent today (local time; kept across restarts); 0 = no limit.
    budget_per_day: float = Field(0.0, ge=0)
    # Where today's spend is kept across restarts; empty = $STATE_DIRECTORY or ~/.local/state/captioner.
    state_file: str = ""


class VisionConfig(_Section):
    """Visual context: while someone speaks, screenshots of OBS go to the translator (billed as image tokens)."""

    enabled: bool = False
    # The OBS source or scene to capture; null = the current program scene (what viewers see).
    source: str | None = Field(None, min_length=1)
    # The largest image sent, in pixels; the picture keeps its aspect ratio inside this box. The service
    # recommends 480p or 720p; more is never sent. Smaller costs fewer image tokens.
    width: int = Field(1280, ge=64, le=1280)
    height: int = Field(720, ge=64, le=720)
    # Seconds between looks at the source; the service takes at most 2 images per second, so at least 0.5.
    interval_s: float = Field(1.0, ge=0.5, le=3600)
    # JPEG quality (10-100); a picture over 190 KB is taken again at lower quality, then smaller.
    quality: int = Field(70, ge=10, le=100)
    # Send a picture only when it differs from the last one sent on that session (a new session gets one).
    only_changed: bool = True
    # Fraction of the picture (compared on a 96 px wide thumbnail) that must have changed to count as changed.
    change_threshold: float = Field(0.01, gt=0, le=1)


class Config(_Section):
    """The whole daemon configuration."""

    audio: AudioConfig = AudioConfig()
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


# Used when no file is given: the key comes from the environment, OBS on its default port.
BUILTIN: dict[str, Any] = {
    "translator": {"api_key": "${DASHSCOPE_API_KEY}", "targets": ["ja"]},
    "obs": {"password": "${OBS_WEBSOCKET_PASSWORD:-}"},
    "outputs": [{"obs_source": "Captions JA", "language": "ja"}],
}


def key_path(loc: tuple[str | int, ...]) -> str:
    """('translator', 'targets', 1) -> 'translator.targets[1]'."""
    out = ""
    for i, part in enumerate(loc):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if i else str(part))
    return out or "(top level)"


def expand_env(value: Any, env: Mapping[str, str], loc: tuple[str | int, ...] = ()) -> Any:
    """Replace ${VAR} (and ${VAR:-default}) in every string; an unset VAR is an error at its key."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(key_path(loc), f"environment variable {name} is not set")

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise ConfigError(key_path((*loc, str(k))), f"key {k!r} must be a string")
        return {k: expand_env(v, env, (*loc, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, (*loc, i)) for i, v in enumerate(value)]
    return value


def _pydantic_problem(err: Any) -> str:
    """One pydantic error as the problem a user reads (the key path is said apart)."""
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "value_error":
        return str(err.get("ctx", {}).get("error", msg))
    value = err.get("input")
    if isinstance(value, str | int | float | bool) and "SecretStr" not in msg:
        return f"{msg} (got {value!r})"
    return msg


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
        raise ConfigError("translator.api_key", "is empty (set DASHSCOPE_API_KEY or put ${VAR} here)")
    if tr.source_language is None and not dialect.source_autodetect:
        raise ConfigError("translator.source_language", f"{tr.model} cannot auto-detect; name the language")
    if tr.source_language is not None and tr.source_language not in dialect.languages:
        raise ConfigError(
            "translator.source_language", f"{tr.source_language!r} is not a supported language for {tr.model}"
        )
    for i, lang in enumerate(tr.targets):
        if lang not in dialect.languages:
            raise ConfigError(f"translator.targets[{i}]", f"{lang!r} is not a supported language")
        if lang in tr.targets[:i]:
            raise ConfigError(f"translator.targets[{i}]", f"{lang!r} is listed twice")
        if tr.audio_output and lang not in dialect.audio_languages:
            raise ConfigError(
                f"translator.targets[{i}]",
                f"{lang!r} has no voice output; set translator.audio_output: false",
            )
    for i, out in enumerate(cfg.outputs):
        where = f"outputs[{i}]"
        if out.language == SOURCE and not tr.transcribe_source:
            raise ConfigError(f"{where}.language", "'source' needs translator.transcribe_source: true")
        if out.language != SOURCE and out.language not in tr.targets:
            raise ConfigError(f"{where}.language", f"{out.language!r} is not one of translator.targets")
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
        spoken = tr.source_language if language == SOURCE else language
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
    if cfg.vision.enabled and not cfg.obs.enabled:
        raise ConfigError("vision.enabled", "needs obs.enabled: true (the screenshots come from OBS)")
    tr.check_glossary()
    cfg.vocabulary.check(cfg.languages())
    _check_voice_outputs(cfg)


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
        if voice and (problem := dialect.voice_problem(voice)):
            # Only for a family whose list is incomplete: _check refuses the others.
            out.append(f"{key}: {problem}; the vendor's list may be incomplete, so the service will decide")
    return out


def parse(
    raw: Any,
    env: Mapping[str, str] | None = None,
    config_dir: Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Validate an already-loaded YAML document; `overrides` (section -> keys) replace keys before validation."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("(top level)", f"must be a mapping of sections, not {type(raw).__name__}")
    for section, values in (overrides or {}).items():
        # Before ${VAR} expansion, so an overridden key's variable need not be set (demo mode's api_key);
        # a section that is not a mapping is left for validation to report.
        if isinstance(raw.get(section) or {}, dict):
            raw = {**raw, section: {**(raw.get(section) or {}), **values}}
    try:
        raw = expand_env(raw, os.environ if env is None else env)
    except RecursionError:
        raise ConfigError("(top level)", "nested too deeply") from None
    # Files the config names (glossaries) are read here, found relative to the config file as users expect,
    # so that validation itself reads nothing.
    raw = read_glossary_files(raw, config_dir)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        raise ConfigError(key_path(tuple(first["loc"])), _pydantic_problem(first)) from None
    # Known from here on, so that no status, error or log line shows them, whatever text they turn up in.
    add_secrets(cfg.translator.api_key.get_secret_value(), cfg.obs.password.get_secret_value())
    add_secrets(cfg.http.token.get_secret_value())
    for out in cfg.post_outputs:
        add_url_secrets(out.url)
        if isinstance(out, WebhookOutputConfig):
            for value in (v.get_secret_value() for v in out.headers.values()):
                # "Bearer <token>": the token alone is masked too, wherever it turns up.
                add_secrets(value, *(word for word in value.split() if len(word) >= 8))
    _check(cfg)
    return cfg


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


def resolve_path(cli_path: str | None, env: Mapping[str, str] | None = None) -> Path | None:
    """--config, then $CAPTIONER_CONFIG, then ~/.config/captioner/config.yaml, else None (built-in)."""
    env = os.environ if env is None else env
    if cli_path:
        return Path(cli_path)
    if env.get("CAPTIONER_CONFIG"):
        return Path(env["CAPTIONER_CONFIG"])
    default = DEFAULT_PATH.expanduser()
    return default if default.exists() else None


@dataclass(frozen=True)
class GlossaryFile:
    """A glossary file as the loader read it, for the validator: its YAML, or why it could not be read."""

    path: Path
    terms: Any = None
    problem: str | None = None  # the whole message, naming the file


def read_glossary_file(value: str, base: Path) -> GlossaryFile:
    """The glossary file `value` names (relative to `base`), read and parsed but not yet checked."""
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    where = f"{path}: "
    try:
        terms = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        return GlossaryFile(path, problem=f"cannot read glossary file {path}: {e.strerror or e}")
    except UnicodeDecodeError as e:
        return GlossaryFile(path, problem=f"{where}{_not_utf8(e)}")
    except RecursionError:
        return GlossaryFile(path, problem=f"{where}not valid YAML: nested too deeply")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"{path}:{mark.line + 1}: " if mark is not None else where
        return GlossaryFile(path, problem=f"{at}not valid YAML: {getattr(e, 'problem', e)}")
    return GlossaryFile(path, {} if terms is None else terms)  # None: an empty file, or only comments


def read_glossary_files(raw: dict[str, Any], config_dir: Path | None) -> dict[str, Any]:
    """`raw` with every glossary given as a file path replaced by that file as read.

    Relative paths are found from `config_dir` (the config file's folder), else from the working directory.
    A file that cannot be read is not an error yet: the validator reports it at `translator.glossary.<lang>`,
    in the order it checks the languages, as it reports every other glossary problem.
    """
    tr = raw.get("translator")
    glossary = tr.get("glossary") if isinstance(tr, dict) else None
    if not isinstance(tr, dict) or not isinstance(glossary, dict):
        return raw  # nothing to read; validation reports a wrong shape
    base = config_dir or Path(".")
    read = {lang: read_glossary_file(v, base) if isinstance(v, str) else v for lang, v in glossary.items()}
    return {**raw, "translator": {**tr, "glossary": read}}


def _not_utf8(e: UnicodeDecodeError) -> str:
    # The byte offset is what an editor's "go to byte" or `xxd` needs; the codec's wording is not for users.
    return f"not UTF-8 text (byte {e.start}: {e.object[e.start : e.start + 1]!r}); save the file as UTF-8"


def load(
    path: Path | None, env: Mapping[str, str] | None = None, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> Config:
    """Read and validate the config file, or the built-in defaults when there is none."""
    if path is None:
        return parse(BUILTIN, env, overrides=overrides)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(str(path), f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), _not_utf8(e)) from None
    try:
        raw = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(str(path), "not valid YAML: nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(where, f"not valid YAML: {getattr(e, 'problem', e)}") from None
    return parse(raw, env, path.parent, overrides)
