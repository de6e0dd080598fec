"""Property-based tests of the interpreter: feed never raises on garbage and its outputs are well-formed."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from captioner.translation.interpreter import Caption, Interpretation, SessionInterpreter
from tests.support.property_settings import PROPS

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
