"""Config loading: every wrong shape is exit-2 material with the key path in the message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from captioner.config import (
    Config,
    config_warnings,
    expand_env,
    key_path,
    load,
    parse,
    resolve_path,
)
from captioner.errors import ConfigError
from tests.support.config_docs import ENV, base


def test_builtin_defaults_need_only_the_key() -> None:
    cfg = load(None, ENV)
    assert cfg.translator.api_key.get_secret_value() == "sk-test-secret"
    assert cfg.translator.targets == ("ja",)
    assert cfg.outputs[0].obs_source == "Captions JA"
    assert cfg.obs.password.get_secret_value() == ""
    assert cfg.http.host == "127.0.0.1"


def test_full_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "config" / "example.yaml"
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
            base(translator={"api_key": "k", "model": "qwen3.9-livetranslate-flash-realtime"}),
            "translator.model",
            "qwen3.8-livetranslate-flash-realtime, or a dated snapshot",
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
        (
            base(outputs=[{"obs_source": "A", "language": "ja", "with_source": True}]),
            "outputs[0].with_source",
            "transcribe_source: true",
        ),
        (
            base(outputs=[{"obs_source": "A", "language": "ja", "layout": {"max_lines": 0}}]),
            "outputs[0].layout.max_lines",
            "greater than or equal to 1",
        ),
        (
            base(layout={"min_display_s": 2, "clear_after_s": 1}, outputs=[{"obs_source": "A", "language": "ja"}]),
            "layout.clear_after_s",
            "at least min_display_s",
        ),
        (
            base(outputs=[{"obs_source": "A", "language": "ja", "layout": {"clear_after_s": 0.5}}]),
            "outputs[0].layout.clear_after_s",
            "at least min_display_s",
        ),
        (base(layout={"max_width": 4}), "layout.max_width", "greater than or equal to 8"),
        (base(stream_captions={"enabled": True, "language": "ja"}), "stream_captions.language", "CEA-608"),
        (
            base(stream_captions={"enabled": True, "language": "source"}),
            "stream_captions.language",
            "transcribe_source: true",
        ),
        (base(stream_captions={"enabled": True}), "stream_captions.language", "'ja' cannot be shown as CEA-608"),
        (base(stream_captions={"enabled": True, "language": "de"}), "stream_captions.language", "not a caption"),
        (base(stream_captions={"rows": 5}), "stream_captions.rows", "less than or equal to 4"),
        (base(outputs={"obs_source": "A"}), "outputs", "tuple"),
        (base(unknown_section={}), "unknown_section", "unknown key"),
        (base(log_level="loud"), "log_level", ""),
        (["a", "list"], "(top level)", "mapping"),
        (base(translator={"api_key": "${NOT_SET_ANYWHERE}"}), "translator.api_key", "NOT_SET_ANYWHERE is not set"),
        # qwen3's voices are listed in full (§9): another name would only be refused by every session.
        (base(translator={"api_key": "k", "voice": "Tina"}), "translator.voice", "not a qwen3-livetranslate"),
        (
            base(voice_outputs=[{"language": "ja", "voice": "Chelsie"}]),
            "voice_outputs[0].voice",
            "voices: Cherry, Dylan",
        ),
        (base(translator={"api_key": "k", "pin_source_language": "two"}), "translator.pin_source_language", ""),
        (base(translator={"api_key": "k", "watchdog_speech_s": -1}), "translator.watchdog_speech_s", ""),
    ],
)
def test_errors_name_the_key(raw: Any, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(raw, ENV)
    assert info.value.key == key
    assert fragment in str(info.value)


def test_voices_the_docs_list_or_clone_ids_pass() -> None:
    assert parse(base(translator={"api_key": "k", "voice": "Ethan"}), ENV).translator.voice == "Ethan"
    q35 = {"api_key": "k", "model": "qwen3.5-livetranslate-flash-realtime"}
    assert parse(base(translator={**q35, "voice": "qwen-translate-vc-7f3a"}), ENV).translator.voice
    # qwen3.5's full list is the (unread) Omni list: a name outside the seen ones is warned about, not refused.
    cfg = parse(base(translator={**q35, "voice": "Serena"}), ENV)
    assert [w for w in config_warnings(cfg) if w.startswith("translator.voice: 'Serena'")]
    voice_warnings = [w for w in config_warnings(parse(base(translator={**q35, "voice": "Tina"}), ENV)) if "voice" in w]
    assert voice_warnings == []


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


def test_a_file_that_is_not_utf8_is_a_config_error_naming_it(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_bytes(b"translator:\n  api_key: k\n  targets: [ja]  # Gr\xfc\xdfe in Latin-1\n")
    with pytest.raises(ConfigError) as info:
        load(p, ENV)
    assert info.value.key == str(p)
    assert "not UTF-8 text (byte 46" in info.value.problem


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
