"""Property-based: the config parser raises only ConfigError, at a real key, on garbage; valid configs parse."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from captioner.config import Config, load, parse
from captioner.errors import ConfigError
from captioner.translation.protocol import Q3, Q35, dialect_for
from tests.support.property_settings import PROPS

# ---- 3. config: only ConfigError, at a sensible key; valid configs parse ------------------------------------------

SECTION_KEYS: dict[str, list[str]] = {
    "audio": ["device", "chunk_ms", "queue_chunks"],
    "translator": [
        "url",
        "model",
        "api_key",
        "source_language",
        "targets",
        "transcribe_source",
        "voice",
        "audio_output",
        "connect_timeout_s",
        "finish_timeout_s",
        "rotate_after_s",
        "watchdog_s",
    ],
    "obs": ["enabled", "host", "port", "password", "timeout_s"],
    "outputs": ["obs_source", "language"],
    "http": ["enabled", "host", "port"],
    "log_level": [],
}
ALL_KEYS = sorted({k for keys in SECTION_KEYS.values() for k in keys} | set(SECTION_KEYS))
ENV = {"K": "x", "EMPTY": ""}
CONFIG_TEXT = st.sampled_from(
    ["", "ja", "en", "source", "${K}", "${EMPTY}", "${UNSET}", "${UNSET:-d}", "${", "ws://h", "info"]
) | st.text(max_size=10)
CONFIG_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | CONFIG_TEXT
    | st.dates()
    | st.binary(max_size=4)
)
CONFIG_KEY = st.sampled_from(ALL_KEYS) | st.text(max_size=8)
CONFIG_VALUE = st.recursive(
    CONFIG_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(CONFIG_KEY, inner, max_size=5),
    max_leaves=25,
)


@st.composite
def config_documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    # Unknown section names are non-empty strings; "" and non-string keys have their own tests below.
    for section in draw(st.lists(st.sampled_from(list(SECTION_KEYS)) | st.text(min_size=1, max_size=8), max_size=7)):
        keys = SECTION_KEYS.get(section) or []
        fields = (
            st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), CONFIG_VALUE, max_size=6)
            if keys
            else CONFIG_VALUE
        )
        if section == "outputs":
            doc[section] = draw(st.lists(fields, max_size=3) | CONFIG_VALUE)
        else:
            doc[section] = draw(fields | CONFIG_VALUE)
    if draw(st.booleans()):  # often a usable translator, so the cross-key checks get reached
        tr = doc.get("translator")
        doc["translator"] = {"api_key": "${K}", **(tr if isinstance(tr, dict) else {})}
    return doc


def first_segment_ok(key: str, raw: dict[str, Any]) -> bool:
    allowed = {*SECTION_KEYS, "(top level)", *(k for k in raw if isinstance(k, str))}
    return any(key == a or key.startswith((a + ".", a + "[")) for a in allowed)


@PROPS
@given(config_documents() | CONFIG_VALUE)
def test_parse_raises_only_config_error_at_a_real_key(raw: Any) -> None:
    try:
        cfg = parse(raw, ENV)
    except ConfigError as e:
        assert isinstance(e.key, str) and isinstance(e.problem, str) and e.problem
        assert first_segment_ok(e.key, raw if isinstance(raw, dict) else {}), (e.key, raw)
    else:
        assert isinstance(cfg, Config)


MODELS = [
    (Q3, "qwen3-livetranslate-flash-realtime"),
    (Q3, "qwen3-livetranslate-flash-realtime-2025-09-22"),
    (Q35, "qwen3.5-livetranslate-flash-realtime"),
    (Q35, "qwen3.5-livetranslate-flash-realtime-2026-05-19"),
]


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    dialect, model = draw(st.sampled_from(MODELS))
    audio_output = draw(st.booleans())
    pool = sorted(dialect.audio_languages if audio_output else dialect.languages)
    targets = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=5, unique=True))
    transcribe = draw(st.booleans())
    sources = [None, *sorted(dialect.languages)] if dialect.source_autodetect else sorted(dialect.languages)
    langs = [*targets, "source"] if transcribe else targets
    outputs = draw(
        st.lists(
            st.fixed_dictionaries({"obs_source": st.text(min_size=1, max_size=10), "language": st.sampled_from(langs)}),
            max_size=4,
            unique_by=lambda o: o["obs_source"],
        )
    )
    return {
        "audio": {
            "device": draw(st.none() | st.integers(0, 64) | st.text(max_size=10)),
            "chunk_ms": draw(st.integers(20, 1000)),
            "queue_chunks": draw(st.integers(2, 10_000)),
        },
        "translator": {
            "url": draw(st.sampled_from(["ws://", "wss://"])) + draw(st.text(max_size=10)),
            "model": model,
            "api_key": draw(st.sampled_from(["${K}", "${UNSET:-k}", "literal"])),
            "source_language": draw(st.sampled_from(sources)),
            "targets": targets,
            "transcribe_source": transcribe,
            "voice": draw(st.none() | st.sampled_from(sorted(dialect_for(model).voices))),
            "audio_output": audio_output,
            "connect_timeout_s": draw(st.floats(0.001, 1e6)),
            "finish_timeout_s": draw(st.floats(0.001, 60)),
            "rotate_after_s": draw(st.floats(1, 7000)),
            "watchdog_s": draw(st.floats(1, 1e6)),
        },
        "obs": {"enabled": draw(st.booleans()), "port": draw(st.integers(1, 65535)), "password": "${EMPTY}"},
        "outputs": outputs,
        "http": {"enabled": draw(st.booleans()), "port": draw(st.integers(0, 65535))},
        "log_level": draw(st.sampled_from(["debug", "info", "warning", "error"])),
    }


@PROPS
@given(valid_configs())
def test_valid_configs_always_parse(raw: dict[str, Any]) -> None:
    cfg = parse(raw, ENV)
    assert cfg.translator.targets == tuple(raw["translator"]["targets"])
    assert cfg.translator.api_key.get_secret_value() in ("x", "k", "literal")
    assert [o.language for o in cfg.outputs] == [o["language"] for o in raw["outputs"]]
    assert cfg.languages()[: len(cfg.translator.targets)] == cfg.translator.targets


VAR_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
VAR_REF = st.builds(
    lambda name, default, braces: (
        (f"${{{name}:-{default}}}" if default is not None else f"${{{name}}}") if braces else f"${name}"
    ),
    VAR_NAME | st.text(max_size=5),
    st.none() | st.text(max_size=5),
    st.booleans(),
)


@PROPS
@given(
    st.lists(VAR_REF | st.text(max_size=5), min_size=1, max_size=4).map("".join),
    st.dictionaries(VAR_NAME, st.text(max_size=6) | st.just("${K}"), max_size=4),
    st.sampled_from(["api_key", "url", "voice", "model", "source_language"]),
)
def test_env_expansion_raises_only_config_error(value: str, env: dict[str, str], field: str) -> None:
    raw = {"translator": {"api_key": "k", field: value}, "outputs": [{"obs_source": value, "language": "ja"}]}
    try:
        cfg = parse(raw, env)
    except ConfigError as e:
        assert e.key.startswith(("translator.", "outputs[0].")), e.key
        return
    if field == "api_key" and re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value):
        name = value[2:-1]
        # Single pass: a value that itself looks like ${K} is not expanded again.
        assert cfg.translator.api_key.get_secret_value() == env[name]


def test_non_string_top_level_key_is_reported_as_itself() -> None:
    """YAML `1: foo` at the top level: the key path reads like a list index ("[1]") instead of naming key 1."""
    with pytest.raises(ConfigError) as e:
        parse({"translator": {"api_key": "k"}, 1: "foo"}, ENV)
    assert first_segment_ok(e.value.key, {"1": None}), e.value.key


def test_empty_top_level_key_is_not_dropped_from_the_key_path() -> None:
    """key_path(("", "api_key")) == "api_key": the error then seems to be about a top-level key `api_key`."""
    with pytest.raises(ConfigError) as e:
        parse({"translator": {"api_key": "k"}, "": {"api_key": "${UNSET}"}}, ENV)
    assert e.value.key != "api_key", e.value.key
    assert first_segment_ok(e.value.key, {"": None}), e.value.key


def nested_list(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def test_deeply_nested_value_is_a_config_error_not_recursion_error() -> None:
    """expand_env recurses twice per level: ~500 levels of nesting raise RecursionError out of parse()."""
    with pytest.raises(ConfigError):
        parse({"translator": {"api_key": "k"}, "audio": {"device": nested_list(600)}}, ENV)


def test_deeply_nested_yaml_file_is_a_config_error_not_recursion_error(tmp_path: Path) -> None:
    """load(): PyYAML itself raises RecursionError (not yaml.YAMLError) on ~500 levels of flow nesting."""
    path = tmp_path / "deep.yaml"
    path.write_text("translator: {api_key: k}\naudio: {device: " + "[" * 600 + "x" + "]" * 600 + "}\n")
    with pytest.raises(ConfigError):
        load(path, ENV)
