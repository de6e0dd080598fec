"""The text/stash rules of translator-protocol.md §5.1, table by table."""

from __future__ import annotations

from typing import Any

import pytest

from captioner.translation.interpreter import Caption, SessionInterpreter, UsageDelta, normalise_code


def run(events: list[Any], target: str = "ja") -> list[Caption]:
    interp = SessionInterpreter(target)
    out: list[Caption] = []
    for ev in events:
        out += interp.feed(ev).captions
    return out


def t(text: str, stash: str = "", item: str = "i1", kind: str = "response.text.text") -> dict[str, Any]:
    return {"type": kind, "response_id": "r1", "item_id": item, "text": text, "stash": stash}


CASES: list[tuple[str, list[Any], list[tuple[str, bool]]]] = [
    (
        "display is text+stash and replaces, never appends",
        [t("", "Today"), t("The weather is nice today,"), t("The weather is nice today,", " let's walk")],
        [("Today", False), ("The weather is nice today,", False), ("The weather is nice today, let's walk", False)],
    ),
    (
        "a retracted stash disappears",
        [t("", "今天"), t("", "今天。"), t("", "今天天气")],
        [("今天", False), ("今天。", False), ("今天天气", False)],
    ),
    (
        "empty text later never retracts confirmed text",
        [t("Hello there,"), t("", " friend")],
        [("Hello there,", False), ("Hello there, friend", False)],
    ),
    (
        "final from response.text.done, trailing spaces trimmed",
        [t("", "Hi"), {"type": "response.text.done", "item_id": "i1", "text": "Hi all.  "}],
        [("Hi", False), ("Hi all.", True)],
    ),
    (
        "final from audio_transcript.done uses `transcript`",
        [
            t("", "Hi", kind="response.audio_transcript.text"),
            {"type": "response.audio_transcript.done", "item_id": "i1", "transcript": "Hi all."},
        ],
        [("Hi", False), ("Hi all.", True)],
    ),
    (
        "empty final falls back to the last snapshot",
        [t("Bye", " now"), {"type": "response.text.done", "item_id": "i1", "text": ""}],
        [("Bye now", False), ("Bye now", True)],
    ),
    (
        "missing stash is treated as empty",
        [{"type": "response.text.text", "item_id": "i1", "text": "Only text"}],
        [("Only text", False)],
    ),
    (
        "content_part.done after the text done does not repeat the final",
        [
            t("A"),
            {"type": "response.text.done", "item_id": "i1", "text": "A."},
            {"type": "response.content_part.done", "item_id": "i1", "part": {"type": "text", "text": "A."}},
        ],
        [("A", False), ("A.", True)],
    ),
    (
        "a response cut short finalizes what it showed at response.done",
        [t("Half a sent"), {"type": "response.done", "response": {"id": "r1", "status": "incomplete"}}],
        [("Half a sent", False), ("Half a sent", True)],
    ),
    (
        "late partial after the final is ignored",
        [t("A"), {"type": "response.text.done", "item_id": "i1", "text": "A."}, t("A", " late")],
        [("A", False), ("A.", True)],
    ),
    (
        "two items are independent",
        [
            t("One", item="a"),
            t("Two", item="b"),
            {"type": "response.text.done", "item_id": "b", "text": "Two."},
            {"type": "response.text.done", "item_id": "a", "text": "One."},
        ],
        [("One", False), ("Two", False), ("Two.", True), ("One.", True)],
    ),
    (
        "source transcript: stash grows in ASR events, final from completed",
        [
            {"type": "conversation.item.input_audio_transcription.text", "item_id": "s1", "text": "", "stash": "Hel"},
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": "s1",
                "transcript": "Hello.",
                "language": "en",
                "emotion": "",
            },
        ],
        [("Hel", False), ("Hello.", True)],
    ),
]


@pytest.mark.parametrize(("name", "events", "expected"), CASES, ids=[c[0] for c in CASES])
def test_text_stash_rules(name: str, events: list[Any], expected: list[tuple[str, bool]]) -> None:
    assert [(c.text, c.final) for c in run(events)] == expected


def test_source_captions_are_labelled_source() -> None:
    captions = run(
        [{"type": "conversation.item.input_audio_transcription.completed", "item_id": "s", "transcript": "Hi"}]
    )
    assert captions[0].language == "source"


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ("not a dict", "malformed"),
        ({"no": "type"}, "malformed"),
        ({"type": 5}, "malformed"),
        ({"type": "response.text.text", "item_id": "x", "text": 5}, "malformed"),
        ({"type": "response.text.text", "item_id": "x", "text": "a", "stash": ["b"]}, "malformed"),
        ({"type": "response.done", "response": "nope"}, "malformed"),
        ({"type": "brand.new.event"}, "unknown"),
        ({"type": "response.created", "response": {}}, None),
        ({"type": "response.text.done"}, None),
    ],
)
def test_bad_events_are_survived_and_classified(event: Any, problem: str | None) -> None:
    interp = SessionInterpreter("ja")
    assert interp.feed(event).problem == problem
    # and the interpreter still works afterwards
    assert interp.feed(t("ok")).captions[0].text == "ok"


def test_usage_is_cumulative_so_deltas_are_reported() -> None:
    interp = SessionInterpreter("ja")
    deltas = []
    for total_in, total_out in [(85, 84), (200, 100), (300, 150)]:
        ev = {
            "type": "response.done",
            "response": {"id": "r", "usage": {"input_tokens": total_in, "output_tokens": total_out}},
        }
        deltas.append(interp.feed(ev).usage)
    assert deltas == [UsageDelta(85, 84), UsageDelta(115, 16), UsageDelta(100, 50)]


def test_error_events_nested_or_flat() -> None:
    interp = SessionInterpreter("ja")
    nested = interp.feed(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "invalid_value",
                "message": "bad",
                "param": "session.modalities",
            },
        }
    )
    assert nested.error is not None and nested.error.code == "invalid_value" and nested.error.param
    flat = interp.feed({"type": "error", "code": "InvalidApiKey", "message": "no"})
    assert flat.error is not None and normalise_code(flat.error.code) == "invalidapikey"


def test_pending_returns_unfinished_partials() -> None:
    interp = SessionInterpreter("ja")
    interp.feed(t("done", item="a"))
    interp.feed({"type": "response.text.done", "item_id": "a", "text": "done."})
    interp.feed(t("half", " way", item="b"))
    assert [(c.item_id, c.text) for c in interp.pending()] == [("b", "half way")]


def test_pending_is_only_the_item_in_flight_not_every_stale_partial() -> None:
    """A dropped connection flushes the sentence in flight; partials the service abandoned long ago stay gone."""
    interp = SessionInterpreter("ja")
    for n in range(300):  # items the service never finalized
        interp.feed(t(f"stale {n}", item=f"old{n}"))
    interp.feed(t("in flight", item="now"))
    interp.feed({"type": "conversation.item.input_audio_transcription.text", "item_id": "src", "stash": "spoken"})
    assert [(c.language, c.item_id, c.text) for c in interp.pending()] == [
        ("ja", "now", "in flight"),
        ("source", "src", "spoken"),
    ]


def _done(item: str, text: str) -> dict[str, Any]:
    return {"type": "response.text.done", "response_id": "r", "item_id": item, "text": text}


def _asr_done(item: str, text: str) -> dict[str, Any]:
    return {"type": "conversation.item.input_audio_transcription.completed", "item_id": item, "transcript": text}


def _created(source_item: str, item: str) -> dict[str, Any]:
    return {"type": "conversation.item.created", "previous_item_id": source_item, "item": {"id": item}}


PAIRING: list[tuple[str, list[dict[str, Any]], list[tuple[str, str, str]]]] = [
    (
        "qwen3.5 names the pair: either order works",
        [
            _created("s1", "t1"),
            _done("t1", "こんにちは"),
            _asr_done("s1", "Hello"),
            _created("s2", "t2"),
            _asr_done("s2", "Bye"),
            _done("t2", "さようなら"),
        ],
        [("t1", "こんにちは", "s1"), ("s1", "Hello", "t1"), ("s2", "Bye", "t2"), ("t2", "さようなら", "s2")],
    ),
    (
        "qwen3 names nothing: finals pair in order",
        [_done("t1", "こんにちは"), _asr_done("s1", "Hello"), _done("t2", "さようなら"), _asr_done("s2", "Bye")],
        [("t1", "こんにちは", ""), ("s1", "Hello", "t1"), ("t2", "さようなら", ""), ("s2", "Bye", "t2")],
    ),
    (
        "a translation without a transcript leaves the next pair intact",
        [_created("s1", "t1"), _done("t1", "一"), _created("s2", "t2"), _done("t2", "二"), _asr_done("s2", "two")],
        [("t1", "一", "s1"), ("t2", "二", "s2"), ("s2", "two", "t2")],
    ),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in PAIRING], ids=[c[0] for c in PAIRING])
def test_finals_know_their_other_half(events: list[dict[str, Any]], expected: list[tuple[str, str, str]]) -> None:
    assert [(c.item_id, c.text, c.pair_id) for c in run(events) if c.final] == expected


def _kinds(*usages: dict[str, Any]) -> list[dict[str, int]]:
    interp = SessionInterpreter("ja")
    out = []
    for usage in usages:
        result = interp.feed({"type": "response.done", "response": {"id": "r", "usage": usage}})
        assert result.usage is not None
        out.append(result.usage.tokens.as_dict())
    return out


def test_usage_by_kind_for_the_cost_estimate() -> None:
    observed = {  # §8, cumulative
        "input_tokens": 85,
        "output_tokens": 84,
        "input_tokens_details": {"text_tokens": 50, "audio_tokens": 35},
        "output_tokens_details": {"text_tokens": 33, "audio_tokens": 51},
    }
    later = {
        "input_tokens": 185,
        "output_tokens": 104,
        "input_tokens_details": {"text_tokens": 50, "audio_tokens": 135},
        "output_tokens_details": {"text_tokens": 53, "audio_tokens": 51},
    }
    assert _kinds(observed, later) == [
        {"audio_in": 35, "text_in": 50, "image_in": 0, "text_out": 33, "audio_out": 51},
        {"audio_in": 100, "text_in": 0, "image_in": 0, "text_out": 20, "audio_out": 0},
    ]
    # details missing (they may be): input is audio, output is text
    assert _kinds({"input_tokens": 70, "output_tokens": 9}) == [
        {"audio_in": 70, "text_in": 0, "image_in": 0, "text_out": 9, "audio_out": 0}
    ]
