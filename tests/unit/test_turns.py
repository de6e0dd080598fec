"""Pure: where sentences end (inputs/turns.py): the turn plan per model, what the shaper sends of the gate's output."""

from __future__ import annotations

import pytest

from captioner.config import GateConfig, config_warnings, parse
from captioner.inputs.gate import GateChunk, SpeechGate
from captioner.inputs.turns import TurnEnd, TurnPlan, TurnShaper, plan, plan_for
from captioner.translation.protocol import Q3, Q35
from tests.support.daemon_harness import chunks


@pytest.mark.parametrize(
    ("gate", "dialect", "expected"),
    [
        ({}, Q35, TurnPlan(True, 800)),
        ({}, Q3, TurnPlan(False, 1100)),
        ({"turns": "server"}, Q35, TurnPlan(False, 1100)),
        ({"turns": "server", "trail_ms": 700}, Q35, TurnPlan(False, 700)),
        ({"turns": "client", "end_of_sentence_ms": 1000}, Q35, TurnPlan(True, 1000)),
        ({"trail_ms": 700}, Q3, TurnPlan(False, 700)),
        ({"end_with_zeros": True}, Q3, TurnPlan(False, 800, 1100)),
        ({"end_with_zeros": True, "trail_ms": 700, "end_of_sentence_ms": 500}, Q3, TurnPlan(False, 500, 700)),
        ({"end_with_zeros": True}, Q35, TurnPlan(True, 800)),
        ({"end_with_zeros": True, "enabled": False}, Q3, TurnPlan(False, 1100)),
        # ungated, everything streams: only the service can tell where sentences end
        ({"enabled": False}, Q35, TurnPlan(False, 1100)),
    ],
)
def test_plan(gate: dict[str, object], dialect: object, expected: TurnPlan) -> None:
    assert plan(GateConfig.model_validate(gate), dialect) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outputs", "turns", "client", "warned"),
    [
        ([{"obs_source": "A", "language": "ja"}], "auto", True, False),
        # the service answers a committed sentence only: live captions keep the service's turns
        ([{"obs_source": "A", "language": "ja", "layout": {"live": True}}], "auto", False, False),
        ([{"obs_source": "A", "language": "ja", "layout": {"live": True}}], "client", True, True),
    ],
)
def test_live_captions_keep_server_turns_unless_asked(
    outputs: list[dict[str, object]], turns: str, client: bool, warned: bool
) -> None:
    raw = {"model": "qwen3.5-livetranslate-flash-realtime", "api_key": "k", "targets": ["ja"]}
    cfg = parse({"translator": raw, "outputs": outputs, "gate": {"turns": turns}}, env={})
    assert plan_for(cfg).client is client
    assert any(w.startswith("gate.turns:") for w in config_warnings(cfg)) is warned


def _chunk(i: int, padding: bool = False) -> GateChunk:
    return GateChunk(bytes(3200), float(i), 0.0, padding)


# Each step: (what the gate let through (chunk numbers; "p" = padding), speech?, gate open after it) -> sent.
# A sent item is a chunk number, "C" (commit) or "X" (clear).
_Step = tuple[list[int | str], bool, bool]


@pytest.mark.parametrize(
    ("steps", "sent"),
    [
        pytest.param(
            [([0, 1, 2, 3], True, True), ([4], True, True), ([5], False, True), ([6], False, False)],
            [0, 1, 2, 3, 4, "C"],
            id="a sentence: pre-roll and speech, the quiet after it is dropped, commit when the gate closes",
        ),
        pytest.param(
            [
                ([0, 1], True, True),
                ([2], True, True),
                ([3], False, True),
                ([4], False, True),
                ([5], True, True),
                ([6], False, False),
            ],
            [0, 1, 2, 3, 4, 5, "C"],
            id="a pause inside the sentence is sent once speech follows it",
        ),
        pytest.param(
            [([0, 1, 2], True, True), ([3], False, True), ([4], False, False)],
            [0, 1, 2, "X"],
            id="one chunk of speech (a click): cleared, not committed",
        ),
        pytest.param(
            [([0, 1], True, True), ([2], True, True), ([], False, False), (["p"], False, False)],
            [0, 1, 2, "C"],
            id="a hold cuts the sentence: committed at once, the gate's closing zeros are not sent",
        ),
        pytest.param(
            [([], False, False), ([], False, False)],
            [],
            id="silence: nothing",
        ),
    ],
)
def test_client_turns(steps: list[_Step], sent: list[int | str]) -> None:
    shaper = TurnShaper(client=True)
    got: list[int | str] = []
    for out, speech, is_open in steps:
        chunks_out = [_chunk(-1, True) if c == "p" else _chunk(int(c)) for c in out]
        for item in shaper.take(chunks_out, speech, is_open):
            got.append(("C" if item.commit else "X") if isinstance(item, TurnEnd) else int(item.captured_at))
    assert got == sent
    assert not shaper.in_turn


def test_server_turns_pass_everything_through() -> None:
    shaper = TurnShaper(client=False)
    out = [_chunk(0), _chunk(1, True)]
    assert shaper.take(out, False, False) == out
    assert shaper.end() == []


def test_server_turns_ended_with_zeros() -> None:
    shaper = TurnShaper(client=False, zeros_ms=1200)
    assert shaper.take([_chunk(0), _chunk(1)], True, True) == [_chunk(0), _chunk(1)]
    assert shaper.take([_chunk(2)], False, True) == []  # held: a pause, or the end
    # The pause goes out once speech follows it, marked as held back (its delay is the shaper's, traced apart).
    assert shaper.take([_chunk(3)], True, True) == [_chunk(2)._replace(held=True), _chunk(3)]
    assert shaper.take([_chunk(4)], False, True) == []
    zeros = shaper.take([_chunk(5)], False, False)
    assert zeros == [GateChunk(bytes(3200), 5.0, 0.0, True)] * 12
    assert shaper.take([], False, False) == []


def test_end_without_a_sentence_sends_nothing() -> None:
    shaper = TurnShaper(client=True)
    assert shaper.end() == []
    assert shaper.take([_chunk(0), _chunk(1)], True, True) == [_chunk(0), _chunk(1)]
    assert shaper.end() == [TurnEnd(False)]  # 100 ms of speech is no sentence
    assert shaper.end() == []


@pytest.mark.parametrize(
    ("pattern", "sent_s", "ends"),
    [
        ([("silence", 1.0), ("tone", 1.0), ("silence", 3.0)], 1.3, [True]),
        ([("silence", 1.0), ("tone", 1.0), ("silence", 0.5), ("tone", 1.0), ("silence", 3.0)], 2.8, [True]),
        # the second sentence's pre-roll is what the gate heard since it closed: 100 ms
        ([("silence", 1.0), ("tone", 1.0), ("silence", 0.9), ("tone", 1.0), ("silence", 3.0)], 2.4, [True, True]),
        ([("silence", 1.0), ("tone", 0.1), ("silence", 3.0)], 0.4, [False]),
    ],
    ids=["one sentence", "a 0.5 s pause inside it", "a 0.9 s pause ends it", "a click"],
)
def test_client_turns_through_the_gate(pattern: list[tuple[str, float]], sent_s: float, ends: list[bool]) -> None:
    """The real gate and the shaper, as the feed joins them: only pre-roll and speech are sent."""
    cfg = GateConfig()
    turns = plan(cfg, Q35)
    gate, shaper = SpeechGate(cfg, turns.trail_ms), TurnShaper(turns.client)
    sent, got_ends = 0.0, []
    for i, pcm in enumerate(chunks(pattern)):
        out = gate.feed(pcm, None, i / 10)
        for item in shaper.take(out, gate.quiet_s == 0, gate.state.value == "open"):
            if isinstance(item, TurnEnd):
                got_ends.append(item.commit)
            else:
                sent += len(item.pcm) / 32000
    assert got_ends == ends
    assert sent == pytest.approx(sent_s)
