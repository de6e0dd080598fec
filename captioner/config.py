"""YAML config -> typed, frozen settings; ${VAR} expansion; errors that name the key path."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .errors import ConfigError
from .protocol import Dialect, UnsupportedModel, dialect_for

SOURCE = "source"
DEFAULT_PATH = Path("~/.config/captioner/config.yaml")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class AudioConfig(_Section):
    """Capture device and chunking."""

    # None = system default input; int = device index; str = name substring, or "loopback".
    device: Any = None
    # Length of one audio chunk sent to the translator; the service recommends 100 ms.
    chunk_ms: int = Field(100, ge=20, le=1000)
    # Captured blocks waiting for the converter; when full the oldest is dropped (and counted).
    queue_chunks: int = Field(50, ge=2, le=10_000)

    @field_validator("device")
    @classmethod
    def _device(cls, v: Any) -> int | str | None:
        # Checked by hand: a pydantic union would put its member names into the key path.
        if v is None or (isinstance(v, int | str) and not isinstance(v, bool)):
            return v
        raise ValueError(f"must be null, a device index or a name (got {v!r})")


class TranslatorConfig(_Section):
    """The Qwen livetranslate service and what to ask of it."""

    url: str = "wss://dashscope-intl.aliyuncs.com/api-ws/v1/realtime"
    model: str = "qwen3-livetranslate-flash-realtime"
    api_key: SecretStr = SecretStr("")
    # None: auto-detect (qwen3.5 only); qwen3 assumes "en".
    source_language: str | None = "en"
    targets: tuple[str, ...] = Field(("ja",), min_length=1)
    transcribe_source: bool = False
    # None = the model's default voice; a voice is always sent because some models demand one.
    voice: str | None = None
    # Ask for translated speech too (text+audio modality); captions only need text.
    audio_output: bool = False
    connect_timeout_s: float = Field(10.0, gt=0)
    # How long a stop waits for `session.finished`, so the last utterance still arrives.
    finish_timeout_s: float = Field(5.0, gt=0, le=60)
    # Sessions are replaced (at a pause, without losing speech) before the service's 120-minute cap.
    rotate_after_s: float = Field(5400.0, ge=1, le=7000)
    # Speech sent but no event back for this long: the session is considered hung and replaced.
    watchdog_s: float = Field(20.0, ge=1)

    @property
    def dialect(self) -> Dialect:
        return dialect_for(self.model)


class ObsConfig(_Section):
    """obs-websocket connection."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(4455, ge=1, le=65535)
    password: SecretStr = SecretStr("")
    # Every request gets this limit; a frozen OBS must not freeze the caption writer.
    timeout_s: float = Field(3.0, gt=0, le=60)


class OutputConfig(_Section):
    """One OBS text source fed with one language's captions."""

    obs_source: str = Field(min_length=1)
    language: str


class HttpConfig(_Section):
    """Status / metrics endpoint."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)


class TranscriptsConfig(_Section):
    """Subtitle/transcript files written as captions finalize."""

    enabled: bool = False
    # One set of files per run and language: captioner_<start time>_<language>.<format>
    folder: str = "~/captioner-transcripts"
    formats: tuple[Literal["srt", "vtt", "txt"], ...] = Field(("srt", "vtt", "txt"), min_length=1)


class Config(_Section):
    """The whole daemon configuration."""

    audio: AudioConfig = AudioConfig()
    translator: TranslatorConfig = TranslatorConfig()
    obs: ObsConfig = ObsConfig()
    outputs: tuple[OutputConfig, ...] = ()
    http: HttpConfig = HttpConfig()
    transcripts: TranscriptsConfig = TranscriptsConfig()
    log_level: Literal["debug", "info", "warning", "error"] = "info"

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


def _describe(err: Any) -> str:
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
        if any(o.obs_source == out.obs_source for o in cfg.outputs[:i]):
            raise ConfigError(f"{where}.obs_source", f"{out.obs_source!r} is used by two outputs")


def parse(raw: Any, env: Mapping[str, str] | None = None) -> Config:
    """Validate an already-loaded YAML document."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("(top level)", f"must be a mapping of sections, not {type(raw).__name__}")
    try:
        raw = expand_env(raw, os.environ if env is None else env)
    except RecursionError:
        raise ConfigError("(top level)", "nested too deeply") from None
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        raise ConfigError(key_path(tuple(first["loc"])), _describe(first)) from None
    _check(cfg)
    return cfg


def resolve_path(cli_path: str | None, env: Mapping[str, str] | None = None) -> Path | None:
    """--config, then $CAPTIONER_CONFIG, then ~/.config/captioner/config.yaml, else None (built-in)."""
    env = os.environ if env is None else env
    if cli_path:
        return Path(cli_path)
    if env.get("CAPTIONER_CONFIG"):
        return Path(env["CAPTIONER_CONFIG"])
    default = DEFAULT_PATH.expanduser()
    return default if default.exists() else None


def load(path: Path | None, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file, or the built-in defaults when there is none."""
    if path is None:
        return parse(BUILTIN, env)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(str(path), f"cannot read: {e.strerror or e}") from None
    try:
        raw = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(str(path), "not valid YAML: nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(where, f"not valid YAML: {getattr(e, 'problem', e)}") from None
    return parse(raw, env)
