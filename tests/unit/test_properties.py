"""Property-based tests: the interpreter and config parser never raise on garbage; a live session survives it."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from captioner.config import Config, load, parse
from captioner.errors import ConfigError
from captioner.status import LinkState
from captioner.translation.interpreter import Caption, Interpretation, SessionInterpreter
from captioner.translation.protocol import Q3, Q35, dialect_for
from tests.support.fake_translator import FakeTranslator
from tests.support.translator_harness import KEY, TWO_UTTERANCES, Harness

# No example database: nothing is written into the work tree; print_blob makes any failure reproducible.
PROPS = settings(
    max_examples=200, deadline=None, database=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)

# ---- strategies: JSON-like values and server events ----------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)

EVENT_TYPES = [
    "response.text.text",
    "response.text.done",
    "response.audio_transcript.text",
    "response.audio_transcript.done",
    "conversation.item.input_audio_transcription.text",
    "conversation.item.input_audio_transcription.completed",
    "conversation.item.input_audio_transcription.failed",
    "response.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.created",
    "response.output_item.added",
    "response.content_part.added",
    "response.audio.delta",
    "error",
    "session.created",
    "session.updated",
    "session.finished",
]
FIELDS = [
    "text",
    "stash",
    "transcript",
    "delta",
    "item_id",
    "response_id",
    "part",
    "item",
    "response",
    "error",
    "usage",
    "content",
    "id",
    "code",
    "message",
    "type",
    "input_tokens",
    "output_tokens",
]
# Few ids, so that partials, finals and response.done really meet the same items.
IDS = st.sampled_from(["i1", "i2", "r1", "r2", "", "?"])
SMALL_TEXT = st.sampled_from(["", " ", "a", "hello", " world", "\x00", "\ud800", "日本語"]) | st.text(max_size=6)

# A field value that is usually of the right shape, often of a wrong one.
FIELD_VALUE = st.deferred(
    lambda: (
        IDS
        | SMALL_TEXT
        | SCALARS
        | st.lists(FIELD_VALUE, max_size=3)
        | st.dictionaries(st.sampled_from(FIELDS), FIELD_VALUE, max_size=4)
    )
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(EVENT_TYPES) | st.text(max_size=12))
    ev: dict[str, Any] = draw(st.dictionaries(st.sampled_from(FIELDS), FIELD_VALUE, max_size=6))
    ev["type"] = kind
    return ev


@st.composite
def plausible_events(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly right-shaped events over a handful of ids: these exercise the caption state machine itself."""
    kind = draw(st.sampled_from(EVENT_TYPES[:10]))
    ev: dict[str, Any] = {"type": kind}
    if draw(st.booleans()):
        ev["item_id"] = draw(IDS)
    if draw(st.booleans()):
        ev["response_id"] = draw(IDS)
    if kind.endswith(".text"):
        ev["text"], ev["stash"] = draw(SMALL_TEXT), draw(SMALL_TEXT)
    elif kind.endswith((".done", ".completed")) and kind != "response.done":
        ev[draw(st.sampled_from(["text", "transcript"]))] = draw(SMALL_TEXT)
    if kind == "response.content_part.done":
        ev["part"] = {"type": draw(st.sampled_from(["text", "audio"])), "text": draw(SMALL_TEXT)}
    elif kind == "response.output_item.done":
        ev["item"] = {"id": draw(IDS), "content": [{"text": draw(SMALL_TEXT)}]}
    elif kind == "response.done":
        tokens = st.integers(min_value=0, max_value=10**6)
        ev["response"] = {"id": draw(IDS), "usage": {"input_tokens": draw(tokens), "output_tokens": draw(tokens)}}
    return ev


ANY_EVENT = JSON_LIKE | events() | plausible_events()


def check_well_formed(target: str, result: Interpretation, finals: set[tuple[str, str]]) -> None:
    assert isinstance(result, Interpretation)
    assert result.problem in (None, "unknown", "malformed")
    for c in result.captions:
        assert isinstance(c, Caption)
        assert c.language in (target, "source")
        assert isinstance(c.item_id, str) and c.item_id
        assert isinstance(c.text, str) and c.text.strip() and c.text == c.text.strip()
        assert isinstance(c.final, bool)
        if c.final:
            assert (c.language, c.item_id) not in finals, f"second final for {(c.language, c.item_id)}"
            finals.add((c.language, c.item_id))
        else:
            assert (c.language, c.item_id) not in finals, f"partial after final for {(c.language, c.item_id)}"
    if result.error is not None:
        assert isinstance(result.error.code, str) and isinstance(result.error.message, str)
    if result.usage is not None:
        assert type(result.usage.input_tokens) is int and type(result.usage.output_tokens) is int


# ---- 1. SessionInterpreter.feed never raises; its outputs are well-formed ------------------------------------------


@PROPS
@given(st.lists(ANY_EVENT, max_size=30))
def test_feed_never_raises_and_outputs_are_well_formed(evs: list[Any]) -> None:
    interp = SessionInterpreter("ja", "source")
    finals: set[tuple[str, str]] = set()
    for ev in evs:
        check_well_formed("ja", interp.feed(ev), finals)
    for c in interp.pending():
        assert not c.final and c.text.strip() and (c.language, c.item_id) not in finals


@PROPS
@given(st.lists(plausible_events(), min_size=1, max_size=40))
def test_plausible_event_streams_finalize_each_item_at_most_once(evs: list[dict[str, Any]]) -> None:
    interp = SessionInterpreter("ja", "source")
    finals: set[tuple[str, str]] = set()
    for ev in evs:
        result = interp.feed(ev)
        assert result.problem is None, ev
        check_well_formed("ja", result, finals)


USAGE_VALUE = st.integers(min_value=-(10**6), max_value=10**6) | SCALARS


@PROPS
@given(st.lists(st.tuples(USAGE_VALUE, USAGE_VALUE), max_size=10))
@example([(-1, 0)])  # the smallest failing case: a negative counter
def test_usage_deltas_are_never_negative(totals: list[tuple[Any, Any]]) -> None:
    """Counters may go backwards (reset) or be garbage; a delta must still be a non-negative int."""
    interp = SessionInterpreter("ja")
    for n, (tin, tout) in enumerate(totals):
        usage = interp.feed(
            {
                "type": "response.done",
                "response": {"id": f"r{n}", "usage": {"input_tokens": tin, "output_tokens": tout}},
            }
        ).usage
        assert usage is not None
        assert usage.input_tokens >= 0 and usage.output_tokens >= 0, (tin, tout, usage)


def test_negative_usage_total_gives_negative_delta() -> None:
    """Minimal case of the bug above: translator.py then calls Counter.inc(-1), which raises ValueError."""
    usage = (
        SessionInterpreter("ja")
        .feed({"type": "response.done", "response": {"id": "r", "usage": {"input_tokens": -1, "output_tokens": 0}}})
        .usage
    )
    assert usage is not None and usage.input_tokens >= 0


# ---- 2. text/stash: the partial is text+stash; confirmed text survives an empty `text` -----------------------------

PIECE = st.text(alphabet=st.sampled_from("ab .\t\n語"), max_size=5)


@PROPS
@given(
    st.sampled_from(
        ["response.text.text", "response.audio_transcript.text", "conversation.item.input_audio_transcription.text"]
    ),
    st.lists(st.tuples(st.booleans(), PIECE, PIECE), min_size=1, max_size=15),
    st.sampled_from(["text", "transcript"]),
)
def test_partial_is_confirmed_plus_stash_and_confirmed_is_never_lost(
    kind: str, steps: list[tuple[bool, str, str]], done_field: str
) -> None:
    language = "source" if kind.startswith("conversation.") else "ja"
    interp = SessionInterpreter("ja", "source")
    confirmed, display = "", ""
    for grow, extension, stash in steps:
        text = confirmed + extension if grow else ""
        if text:
            confirmed = text
        display = confirmed + stash
        result = interp.feed({"type": kind, "item_id": "it", "response_id": "rs", "text": text, "stash": stash})
        assert result.problem is None
        expected = [Caption(language, "it", display.strip(), False)] if display.strip() else []
        assert result.captions == expected, (text, stash)
        assert interp.pending() == expected
    # A `.done` without text finalizes what was on screen, confirmed prefix included.
    done = {
        "response.text.text": "response.text.done",
        "response.audio_transcript.text": "response.audio_transcript.done",
        "conversation.item.input_audio_transcription.text": "conversation.item.input_audio_transcription.completed",
    }[kind]
    result = interp.feed({"type": done, "item_id": "it", done_field: ""})
    assert result.captions == ([Caption(language, "it", display.strip(), True)] if display.strip() else [])
    assert interp.pending() == []
    # A late partial never reopens it.
    assert interp.feed({"type": kind, "item_id": "it", "text": confirmed + "late", "stash": ""}).captions == []


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


# ---- 4. a live session survives a flood of garbage frames ---------------------------------------------------------

KNOWN_SHAPES: dict[str, dict[str, Any]] = {
    "response.text.text": {"response_id": "junk_r1", "item_id": "junk_i1", "text": "a", "stash": "b"},
    "response.audio_transcript.text": {"response_id": "junk_r1", "item_id": "junk_i2", "text": "a", "stash": "b"},
    "response.text.done": {"response_id": "junk_r1", "item_id": "junk_i1", "text": "t"},
    "response.audio_transcript.done": {"response_id": "junk_r1", "item_id": "junk_i2", "transcript": "t"},
    "conversation.item.input_audio_transcription.text": {"item_id": "junk_s1", "text": "", "stash": "s"},
    "conversation.item.input_audio_transcription.completed": {"item_id": "junk_s1", "transcript": "s"},
    "conversation.item.input_audio_transcription.failed": {"item_id": "junk_s2", "error": {"message": "m"}},
    "response.content_part.done": {"response_id": "junk_r2", "item_id": "junk_i3", "part": {"type": "text"}},
    "response.output_item.done": {"response_id": "junk_r2", "item": {"id": "junk_i4", "content": [{"text": "c"}]}},
    "response.done": {"response": {"id": "junk_r1", "usage": {"input_tokens": 1, "output_tokens": 1}}},
    "error": {"error": {"code": "junk_code", "message": "m", "param": "p"}},
    "session.updated": {"session": {"modalities": ["text"]}},
    "response.created": {"response": {"id": "junk_r3"}},
}
WRONG_VALUES: list[Any] = [None, True, -7, 1.5e308, "", [], [1, "x"], {}, {"text": 1}, "\x00\x01\ufffd\ud800"]


def garbage_frames(rng: random.Random) -> tuple[list[dict[str, Any] | str], int]:
    """~200 nasty frames (and how many of them the client must count as not-JSON / not-an-event)."""
    rejected: list[str] = [
        "{not json",
        "",
        " ",
        "\ufeff{}",
        "{'type': 'error'}",
        '{"type": "response.text.text",',
        "\x00\x01\x02\xff",
        "null",
        "[]",
        '"response.done"',
        "42",
        "NaN",
        "Infinity",
        "[" * 500 + "]" * 500,  # deep, but within what json.loads handles
        json.dumps({"no_type": True}),
        json.dumps({"type": None}),
        json.dumps({"type": ["error"]}),
        json.dumps({"type": {"x": 1}}),
        json.dumps({"type": 7}),
        json.dumps([{"type": "response.done"}]),
    ]
    frames: list[dict[str, Any] | str] = list(rejected)
    deep: dict[str, Any] = {"type": "response.output_item.done"}
    node = deep
    for _ in range(499):
        node["item"] = {"content": []}
        node = node["item"]
    frames.append(deep)
    frames.append({"type": "response.text.text", "item_id": "junk_big", "text": "x" * (1 << 20), "stash": "y"})
    frames.append({"type": "response.text.done", "item_id": "junk_big", "text": "z" * (1 << 20)})
    frames.append({"type": "error", "error": {"code": "e" * (1 << 20), "message": "m" * (1 << 20)}})
    # Every field of every known event, one at a time, with a wrong type.
    for kind, shape in KNOWN_SHAPES.items():
        for key in shape:
            for wrong in rng.sample(WRONG_VALUES, 5):
                frames.append({"type": kind, **shape, key: wrong})
    # Ids that match nothing on this connection, and done events for them.
    for n in range(10):
        frames.append({"type": "response.done", "response": {"id": f"junk_unknown_{n}"}})
        frames.append({"type": "response.text.done", "response_id": f"junk_unknown_{n}", "item_id": f"junk_u{n}"})
    frames += [{"type": f"junk.unknown.{n}", "x": n} for n in range(10)]
    # Usage that goes backwards, negative, or beyond what a float can hold.
    for tokens in (10**6, 5, -3, 0, 10**30, 10**400, 1.5, "100", None, True):
        frames.append({"type": "response.done", "response": {"id": "junk_u", "usage": {"input_tokens": tokens}}})
        frames.append({"type": "response.done", "response": {"usage": {"output_tokens": tokens}}})
    rng.shuffle(frames)
    return frames, len(rejected)


async def drain(h: Harness, fake: FakeTranslator, n_frames: int, within: float = 15) -> None:
    """Wait until the client has read `n_frames` more server events, or its session has died."""
    start = h.metric("captioner_translator_events_total", target="ja")
    for _ in range(int(within / 0.02)):
        if h.metric("captioner_translator_events_total", target="ja") - start >= n_frames:
            return
        if h.task is None or h.task.done() or len(fake.connections) > 1:
            return
        await asyncio.sleep(0.02)


def assert_alive_on_first_connection(h: Harness, fake: FakeTranslator) -> None:
    assert h.task is not None
    if h.task.done():
        exc = None if h.task.cancelled() else h.task.exception()
        raise AssertionError(f"TranslatorSession.run() died: {exc!r}") from exc
    assert len(fake.connections) == 1, f"reconnected: {h.session.link.as_dict()}"
    assert h.session.link.state == LinkState.CONNECTED, h.session.link.as_dict()


def real_finals(h: Harness) -> list[str]:
    """Finals of the fake's own items (ids `item_...`); garbage frames never use such ids."""
    return [c.text for c in h.captions if c.final and c.language == "ja" and c.item_id.startswith("item_")]


@pytest.fixture
async def fake() -> Any:
    server = FakeTranslator(api_key=KEY)
    await server.start()
    yield server
    await server.stop()


@pytest.mark.timeout(60)
async def test_session_survives_a_flood_of_garbage_frames(
    fake: FakeTranslator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(
        logging.ERROR, logger="captioner.translation.session"
    )  # 1 MB error messages are logged as warnings
    frames, rejected = garbage_frames(random.Random(20240601))
    assert len(frames) >= 200
    async with Harness(fake) as h:
        await h.connected()
        for frame in frames:
            fake.inject(frame)
        await drain(h, fake, len(frames))
        assert_alive_on_first_connection(h, fake)
        await h.stream(TWO_UTTERANCES)
        for _ in range(500):
            if len(real_finals(h)) >= 2 or h.task is None or h.task.done() or len(fake.connections) > 1:
                break
            await asyncio.sleep(0.02)
        assert_alive_on_first_connection(h, fake)
        assert real_finals(h) == ["[ja] utterance 1", "[ja] utterance 2"]
        bad = {
            reason: h.metric("captioner_translator_bad_events_total", target="ja", reason=reason)
            for reason in ("invalid_json", "malformed", "unknown", "binary")
        }
        assert sum(bad.values()) >= rejected, bad
        assert bad["unknown"] >= 10, bad


# Minimal reproductions of what kills the session above: one frame each.
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(
            {"type": "response.done", "response": {"id": "r", "usage": {"input_tokens": -1}}}, id="negative-usage"
        ),
        pytest.param(
            {"type": "response.done", "response": {"id": "r", "usage": {"input_tokens": 10**400}}}, id="huge-usage"
        ),
        pytest.param("[" * 100_000 + "]" * 100_000, id="json-nested-100000-deep"),
    ],
)
async def test_one_bad_frame_does_not_end_the_connection(fake: FakeTranslator, frame: dict[str, Any] | str) -> None:
    async with Harness(fake) as h:
        await h.connected()
        fake.inject(frame)
        await drain(h, fake, 1, within=5)
        await asyncio.sleep(0.2)
        assert_alive_on_first_connection(h, fake)
