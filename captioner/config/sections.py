"""Config sections for the input, the translator, OBS, HTTP, cost, pictures and voice; the key-path helpers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
)

from ..errors import ConfigError
from ..translation.protocol import Dialect, dialect_for

SOURCE = "source"


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
    # prefix padding, are in it (counted back from the first loud chunk, which is at or before where the
    # service hears speech begin). At most 2 s, so the burst fits a session's 3 s send queue.
    pre_roll_ms: int = Field(300, ge=100, le=2000)
    # Who says where a sentence ends. "server": the service's VAD, which must hear the silence after it (billed);
    # "client": this gate, after end_of_sentence_ms without speech, with input_audio_buffer.commit, so no
    # silence is sent at all (qwen3.5's manual mode, protocol §4.4); "auto": client where the model has it.
    turns: Literal["auto", "server", "client"] = "auto"
    # Client turns: a pause this long ends the sentence (measured here, not sent). Near the service's own 1 s,
    # so a sentence splits where its VAD would split it; shorter gives captions sooner but splits at commas.
    end_of_sentence_ms: int = Field(800, ge=200, le=6000)
    # Server turns: audio still sent after speech stops. The service ends a segment only after its VAD heard
    # silence_duration_ms of silence; null = that (1000 ms on qwen3.5, the same assumed on qwen3, which does not
    # document it) plus 100 ms. Less leaves the last words hanging until the next sentence.
    trail_ms: int | None = Field(None, ge=200, le=30000)
    # Server turns: the gate judges the sentence ended (end_of_sentence_ms, as client turns do) and sends the
    # trail as zeros at once, instead of the room's audio as it comes: digital silence every VAD hears as silence.
    end_with_zeros: bool = False
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
    # Translated-voice clone (qwen3.5, qwen3.8): voice_clone_options.frequency for every session with voice output;
    # once/always clone the speaker's own voice (voice must be "default"), never uses a pre-created clone id
    # (voice "qwen-translate-vc-..."). null = no clone. voice_outputs[].voice_clone overrides it per language.
    voice_clone: Literal["never", "once", "always"] | None = None
    # qwen3.5 translation.same_language_skip_options: a sentence already in the target language is not
    # translated again (nor billed as output); the vendor says it works for targets zh and en only.
    skip_same_language: bool = False
    # What such a skipped sentence shows in the target's captions: its source text (needs the session's source
    # transcript, billed on qwen3.5), or nothing.
    same_language_captions: Literal["source", "none"] = "source"
    # The vendor's recommended workspace endpoints: wss://{workspace_id}.<region host>/api-ws/v1/realtime plus the
    # X-DashScope-WorkSpace header. An explicit translator.url still wins (the header is sent with it too).
    workspace_id: str | None = Field(None, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
    # The region of the key and workspace (they are region-bound): the host the URL is built from.
    region: Literal["singapore", "beijing"] = "singapore"
    # Sent as the X-DashScope-DataInspection header when set (the vendor's data-inspection setting).
    data_inspection: str | None = Field(None, min_length=1, max_length=1000, pattern=r"^[^\x00-\x1f\x7f]+$")

    @property
    def dialect(self) -> Dialect:
        return dialect_for(self.model)

    @property
    def endpoint(self) -> str:
        """The WebSocket URL connected to (without ?model=): translator.url if given, else built from the region."""
        if "url" in self.model_fields_set:
            return self.url
        region = _REGION_HOSTS[self.region]
        if self.workspace_id:
            return f"wss://{self.workspace_id}.{region[0]}{_WS_PATH}"
        return f"wss://{region[1]}{_WS_PATH}"

    @property
    def endpoint_headers(self) -> dict[str, str]:
        """The optional headers the vendor's WebSocket docs list (neither is a secret)."""
        headers: dict[str, str] = {}
        if self.workspace_id:
            headers["X-DashScope-WorkSpace"] = self.workspace_id
        if self.data_inspection:
            headers["X-DashScope-DataInspection"] = self.data_inspection
        return headers

    @property
    def skip_shows_source(self) -> bool:
        """Whether a skipped same-language sentence shows its source text (which the session must transcribe)."""
        return self.skip_same_language and self.same_language_captions == "source"

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
                "use qwen3.5- or qwen3.8-livetranslate-flash-realtime, or remove translator.glossary",
            )
        for lang in self.glossary:
            if lang not in self.targets:
                raise ConfigError(f"translator.glossary.{lang}", f"{lang!r} is not one of translator.targets")


_WS_PATH = "/api-ws/v1/realtime"
# region -> (workspace host suffix, legacy host) (translator-protocol-3.8.md §1).
_REGION_HOSTS = {
    "singapore": ("ap-southeast-1.maas.aliyuncs.com", "dashscope-intl.aliyuncs.com"),
    "beijing": ("cn-beijing.maas.aliyuncs.com", "dashscope.aliyuncs.com"),
}


class ObsConfig(_Section):
    """obs-websocket connection."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(4455, ge=1, le=65535)
    password: SecretStr = SecretStr("")
    # Every request gets this limit; a frozen OBS must not freeze the caption writer.
    timeout_s: float = Field(3.0, gt=0, le=60)


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
    # None = translator.voice_clone; "off" = no clone for this language even if translator.voice_clone is set.
    voice_clone: Literal["never", "once", "always", "off"] | None = None
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


def key_path(loc: tuple[str | int, ...]) -> str:
    """('translator', 'targets', 1) -> 'translator.targets[1]'."""
    out = ""
    for i, part in enumerate(loc):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if i else str(part))
    return out or "(top level)"


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


@dataclass(frozen=True)
class GlossaryFile:
    """A glossary file as the loader read it, for the validator: its YAML, or why it could not be read."""

    path: Path
    terms: Any = None
    problem: str | None = None  # the whole message, naming the file
