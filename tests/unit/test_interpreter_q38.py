"""qwen3.8 server events -> captions: append-only deltas, finals, speaker_id through the item links, skips."""

from __future__ import annotations

from typing import Any

import pytest

from captioner.translation.interpreter import Caption, SessionInterpreter

SRC, TR, PREV = "item_src", "item_tr", "item_prev_tr"


def started(speaker: Any = 1, item: str = SRC) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": "input_audio_buffer.speech_started", "item_id": item, "audio_start_ms": 0}
    if speaker is not None:
        ev["speaker_id"] = speaker
    return ev


def created(item: str, previous: str, heard: bool) -> dict[str, Any]:
    content = [{"type": "input_audio"}] if heard else []
    return {"type": "conversation.item.created", "previous_item_id": previous, "item": {"id": item, "content": content}}


def asr_delta(text: str, item: str = SRC) -> dict[str, Any]:
    return {
        "type": "conversation.item.input_audio_transcription.delta",
        "item_id": item,
        "content_index": 0,
        "delta": text,
        "obfuscation": "x9",  # seen live; meaningless to a client
    }


def asr_done(text: str, item: str = SRC) -> dict[str, Any]:
    return {"type": "conversation.item.input_audio_transcription.completed", "item_id": item, "transcript": text}


def tr_delta(text: str, item: str = TR, audio: bool = False) -> dict[str, Any]:
    kind = "response.audio_transcript.delta" if audio else "response.text.delta"
    return {
        "type": kind,
        "response_id": "resp_1",
        "item_id": item,
        "output_index": 0,
        "content_index": 0,
        "delta": text,
    }


def tr_done(text: str, item: str = TR, audio: bool = False) -> dict[str, Any]:
    if audio:
        return {"type": "response.audio_transcript.done", "response_id": "resp_1", "item_id": item, "transcript": text}
    return {"type": "response.text.done", "response_id": "resp_1", "item_id": item, "text": text}


def done(usage: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"id": "resp_1", "status": "completed", "output": []}
    if usage is not None:
        response["usage"] = usage
    return {"type": "response.done", "response": response}


def run(events: list[dict[str, Any]], **kw: Any) -> list[Caption]:
    interpreter = SessionInterpreter("ja", "source", **kw)
    out: list[Caption] = []
    for ev in events:
        result = interpreter.feed(ev)
        assert result.problem is None, ev
        out += result.captions
    return out


def shown(captions: list[Caption]) -> list[tuple[str, str, bool, str]]:
    return [(c.language, c.text, c.final, c.speaker_id) for c in captions]


DOCUMENTED = [  # §3's order for one utterance in text-only mode
    started(2),
    created(SRC, PREV, heard=True),  # the source item: its previous_item_id is the previous utterance's
    {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}},
    created(TR, SRC, heard=False),
    asr_delta("Hello"),
    tr_delta("こんにちは"),
    asr_delta(" world"),
    tr_delta("、世界"),
    {"type": "input_audio_buffer.speech_stopped", "item_id": SRC, "audio_end_ms": 900},
    asr_done("Hello world."),
    tr_done("こんにちは、世界。"),
    done(),
]


def test_deltas_grow_partials_and_finals_replace_them_with_the_speaker_on_both_sides() -> None:
    assert shown(run(DOCUMENTED)) == [
        ("source", "Hello", False, "2"),
        ("ja", "こんにちは", False, "2"),
        ("source", "Hello world", False, "2"),
        ("ja", "こんにちは、世界", False, "2"),
        ("source", "Hello world.", True, "2"),
        ("ja", "こんにちは、世界。", True, "2"),
    ]
    finals = [c for c in run(DOCUMENTED) if c.final]
    assert [c.pair_id for c in finals] == [TR, SRC]  # never paired with the previous utterance


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # no speaker_id on speech_started: unknown, not an error
        (
            [started(None), created(TR, SRC, False), tr_delta("a"), tr_done("ab")],
            [("ja", "a", False, ""), ("ja", "ab", True, "")],
        ),
        # no speech_started at all
        ([created(TR, SRC, False), tr_done("ab")], [("ja", "ab", True, "")]),
        # a string id is kept as given; a boolean is no id
        ([started("7"), created(TR, SRC, False), tr_done("ab")], [("ja", "ab", True, "7")]),
        ([started(True), created(TR, SRC, False), tr_done("ab")], [("ja", "ab", True, "")]),
        # out of order: the translation's deltas before its item is linked; the final after the link has the speaker
        (
            [started(3), tr_delta("a"), created(TR, SRC, False), tr_done("ab")],
            [("ja", "a", False, ""), ("ja", "ab", True, "3")],
        ),
        # text+audio mode: audio_transcript deltas and the final in `transcript`
        (
            [started(1), created(TR, SRC, False), tr_delta("a", audio=True), tr_done("ab", audio=True)],
            [("ja", "a", False, "1"), ("ja", "ab", True, "1")],
        ),
        # an empty .done keeps what the deltas built
        (
            [created(TR, SRC, False), tr_delta("a"), tr_delta("b"), tr_done("")],
            [("ja", "a", False, ""), ("ja", "ab", False, ""), ("ja", "ab", True, "")],
        ),
        # a late delta never reopens a final
        ([tr_done("ab"), tr_delta("c")], [("ja", "ab", True, "")]),
        # response.done without usage: nothing billed, nothing wrong
        ([tr_delta("a"), done()], [("ja", "a", False, ""), ("ja", "a", True, "")]),
    ],
)
def test_event_sequences(events: list[dict[str, Any]], expected: list[tuple[str, str, bool, str]]) -> None:
    assert shown(run(events)) == expected


def test_usage_is_read_when_present() -> None:
    interpreter = SessionInterpreter("ja")
    usage = {"total_tokens": 30, "input_tokens": 21, "output_tokens": 9, "input_tokens_details": {"audio_tokens": 21}}
    assert interpreter.feed(done(usage)).usage is not None
    assert interpreter.feed(done()).usage is None


def test_two_speakers_keep_their_ids() -> None:
    events = [started(1, "s1"), created("t1", "s1", False), started(2, "s2"), created("t2", "s2", False)]
    events += [tr_done("one", "t1"), asr_done("two src", "s2"), tr_done("two", "t2"), asr_done("one src", "s1")]
    assert {(c.language, c.text, c.speaker_id) for c in run(events)} == {
        ("ja", "one", "1"),
        ("source", "two src", "2"),
        ("ja", "two", "2"),
        ("source", "one src", "1"),
    }


def test_bad_delta_is_malformed_not_a_crash() -> None:
    assert SessionInterpreter("ja").feed({**tr_delta("a"), "delta": 5}).problem == "malformed"


# Same-language skip: the wire result is not documented; both readings are handled.
NO_RESPONSE = [started(1), created(SRC, PREV, True), asr_delta("こんにちは"), asr_done("こんにちは。")]
EMPTY_RESPONSE = [
    started(1),
    created(SRC, PREV, True),
    created(TR, SRC, False),
    asr_done("こんにちは。"),
    tr_done(""),
    done(),
]
EMPTY_FIRST = [started(1), created(TR, SRC, False), tr_done(""), done(), asr_done("こんにちは。")]


@pytest.mark.parametrize("events", [NO_RESPONSE, EMPTY_RESPONSE, EMPTY_FIRST])
def test_a_skipped_sentence_shows_its_source_text_when_asked(events: list[dict[str, Any]]) -> None:
    finals = [(c.language, c.text, c.speaker_id) for c in run(events, skip_fill=True) if c.final]
    assert sorted(finals) == [("ja", "こんにちは。", "1"), ("source", "こんにちは。", "1")]
    assert ("ja", "こんにちは。", "1") not in [(c.language, c.text, c.speaker_id) for c in run(events) if c.final]


def test_a_translated_sentence_is_not_filled() -> None:
    finals = [(c.language, c.text) for c in run(DOCUMENTED, skip_fill=True) if c.final]
    assert finals == [("source", "Hello world."), ("ja", "こんにちは、世界。")]


def test_missing_usage_bills_the_audio_sent_until_usage_is_reported() -> None:
    interpreter = SessionInterpreter("ja")
    interpreter.estimate_usage = True
    interpreter.audio_tokens_sent = 70.0  # 10 s at 7 tokens/s
    first = interpreter.feed(done()).usage
    assert first is not None and (first.input_tokens, first.tokens.audio_in) == (70, 70)
    interpreter.audio_tokens_sent = 105.0
    second = interpreter.feed(done()).usage
    assert second is not None and second.input_tokens == 35
    assert interpreter.feed(done()).usage is None  # nothing new was sent
