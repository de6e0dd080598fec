"""Reading the config: ${VAR} expansion, YAML files, glossary files, and errors that name the key path."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from ..errors import ConfigError
from ..redaction import add_secrets, add_url_secrets
from .hints import DEMO_HINT, config_error
from .model import BUILTIN, Config, _check
from .outputs import (
    WebhookOutputConfig,
)
from .sections import (
    GlossaryFile,
    key_path,
)

DEFAULT_PATH = Path("~/.config/captioner/config.yaml")


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, env: Mapping[str, str], loc: tuple[str | int, ...] = ()) -> Any:
    """Replace ${VAR} (and ${VAR:-default}) in every string; an unset VAR is an error at its key."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            hint = f"; {DEMO_HINT}" if loc == ("translator", "api_key") else ""
            raise ConfigError(key_path(loc), f"environment variable {name} is not set{hint}")

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise ConfigError(key_path((*loc, str(k))), f"key {k!r} must be a string")
        return {k: expand_env(v, env, (*loc, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, (*loc, i)) for i, v in enumerate(value)]
    return value


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
        raise config_error(e, Config) from None
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


def resolve_path(cli_path: str | None, env: Mapping[str, str] | None = None) -> Path | None:
    """--config, then $CAPTIONER_CONFIG, then ~/.config/captioner/config.yaml, else None (built-in)."""
    env = os.environ if env is None else env
    if cli_path:
        return Path(cli_path)
    if env.get("CAPTIONER_CONFIG"):
        return Path(env["CAPTIONER_CONFIG"])
    default = DEFAULT_PATH.expanduser()
    return default if default.exists() else None


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
