"""Config loading: every wrong shape is exit-2 material with the key path in the message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from captioner.config import Config, expand_env, key_path, load, parse, resolve_path
from captioner.errors import ConfigError

ENV = {"DASHSCOPE_API_KEY": "sk-test-secret", "OBS_PW": "obs-secret"}


def base(**sections: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"translator": {"api_key": "${DASHSCOPE_API_KEY}", "targets": ["ja"]}}
    for name, value in sections.items():
        raw[name] = value
    return raw


def test_builtin_defaults_need_only_the_key() -> None:
    cfg = load(None, ENV)
    assert cfg.translator.api_key.get_secret_value() == "sk-test-secret"
    assert cfg.translator.targets == ("ja",)
    assert cfg.outputs[0].obs_source == "Captions JA"
    assert cfg.obs.password.get_secret_value() == ""
    assert cfg.http.host == "127.0.0.1"


def test_full_example_config_is_valid() -> None:
    example = Path(__file__).parent.parent / "config" / "example.yaml"
    cfg = load(example, {"DASHSCOPE_API_KEY": "k", "OBS_WEBSOCKET_PASSWORD": "p"})
    assert cfg.languages()[-1] == "source"


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        (
            base(translator={"api_key": "k", "targets": ["ja", "xx"]}),
            "translator.targets[1]",
            "'xx' is not a supported",
        ),
        (base(translator={"api_key": "k", "targets": ["ja", "ja"]}), "translator.targets[1]", "twice"),
        (base(translator={"api_key": "k", "targets": []}), "translator.targets", "at least 1"),
        (
            base(translator={"api_key": "k", "model": "qwen3.8-livetranslate-flash-realtime"}),
            "translator.model",
            "different protocol",
        ),
        (base(translator={"api_key": "k", "model": "gpt-4o"}), "translator.model", "not a Qwen"),
        (base(translator={"api_key": "k", "url": "https://x"}), "translator.url", "ws://"),
        (base(translator={"api_key": ""}), "translator.api_key", "empty"),
        (base(translator={"api_key": "k", "source_language": None}), "translator.source_language", "auto-detect"),
        (
            base(translator={"api_key": "k", "targets": ["el"], "audio_output": True}),
            "translator.targets[0]",
            "no voice",
        ),
        (base(translator={"api_key": "k", "tragets": ["ja"]}), "translator.tragets", "unknown key"),
        (base(audio={"device": 1.5}), "audio.device", ""),
        (base(audio={"chunk_ms": 5}), "audio.chunk_ms", "greater than or equal to 20"),
        (base(obs={"port": "abc"}), "obs.port", "integer"),
        (base(obs={"port": 70000}), "obs.port", "65535"),
        (base(http={"port": -1}), "http.port", ""),
        (base(outputs=[{"obs_source": "A", "language": "zh"}]), "outputs[0].language", "not one of translator.targets"),
        (base(outputs=[{"obs_source": "A", "language": "source"}]), "outputs[0].language", "transcribe_source"),
        (
            base(outputs=[{"obs_source": "A", "language": "ja"}, {"obs_source": "A", "language": "ja"}]),
            "outputs[1].obs_source",
            "two outputs",
        ),
        (base(outputs=[{"language": "ja"}]), "outputs[0].obs_source", "required"),
        (base(outputs={"obs_source": "A"}), "outputs", "tuple"),
        (base(unknown_section={}), "unknown_section", "unknown key"),
        (base(log_level="loud"), "log_level", ""),
        (["a", "list"], "(top level)", "mapping"),
        (base(translator={"api_key": "${NOT_SET_ANYWHERE}"}), "translator.api_key", "NOT_SET_ANYWHERE is not set"),
    ],
)
def test_errors_name_the_key(raw: Any, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(raw, ENV)
    assert info.value.key == key
    assert fragment in str(info.value)


def test_qwen35_allows_autodetect_and_more_languages() -> None:
    cfg = parse(
        base(
            translator={
                "api_key": "k",
                "model": "qwen3.5-livetranslate-flash-realtime-2026-05-19",
                "source_language": None,
                "targets": ["uk", "fil"],
            }
        ),
        ENV,
    )
    assert cfg.translator.dialect.default_voice == "Tina"


def test_secrets_never_in_repr_or_errors() -> None:
    cfg = parse(base(obs={"password": "${OBS_PW}"}), ENV)
    assert "obs-secret" not in repr(cfg) and "sk-test-secret" not in repr(cfg)
    with pytest.raises(ConfigError) as info:
        parse(base(obs={"password": "${OBS_PW}", "port": "x"}), ENV)
    assert "obs-secret" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${A}", {"A": "1"}, "1"),
        ("x-${A}-${B}", {"A": "1", "B": "2"}, "x-1-2"),
        ("${A:-fallback}", {}, "fallback"),
        ("${A:-}", {}, ""),
        ("$A {A}", {}, "$A {A}"),
        ({"k": ["${A}"]}, {"A": "v"}, {"k": ["v"]}),
        (3, {}, 3),
    ],
)
def test_expand_env(value: Any, env: dict[str, str], expected: Any) -> None:
    assert expand_env(value, env) == expected


def test_key_path_format() -> None:
    assert key_path(("translator", "targets", 1)) == "translator.targets[1]"
    assert key_path(("outputs", 0, "language")) == "outputs[0].language"


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("translator:\n  targets: [ja\n")
    with pytest.raises(ConfigError) as info:
        load(p, ENV)
    assert str(p) in info.value.key and "YAML" in info.value.problem


def test_config_path_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_path("x.yaml", {}) == Path("x.yaml")
    assert resolve_path(None, {"CAPTIONER_CONFIG": "/etc/c.yaml"}) == Path("/etc/c.yaml")
    assert resolve_path(None, {}) is None
    home_cfg = tmp_path / ".config" / "captioner" / "config.yaml"
    home_cfg.parent.mkdir(parents=True)
    home_cfg.write_text("{}")
    assert resolve_path(None, {}) == home_cfg


def test_config_is_frozen() -> None:
    cfg = parse(base(), ENV)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type is an implementation detail
        cfg.translator.targets = ("zh",)  # type: ignore[misc]
    assert isinstance(cfg, Config)
