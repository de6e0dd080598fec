"""When the words of a caption were spoken, from the chunks a connection sent (pure)."""

from __future__ import annotations

import pytest

from captioner.translation.timeline import SpokenTimeline


def timeline(chunks: list[tuple[float, bool]]) -> SpokenTimeline:
    """Chunks of 0.1 s, each given as (wall-clock end of capture, speech?)."""
    t = SpokenTimeline()
    for end, speech in chunks:
        t.sent(end, 0.1, speech)
    return t


# The gate sent 0.3 s at 100.0-100.3, held back the pause, then 0.2 s at 105.0-105.2: the service counts 0.5 s.
GATED = [(100.1, True), (100.2, True), (100.3, False), (105.1, True), (105.2, True)]


@pytest.mark.parametrize(
    ("offset_s", "wall"),
    [(0.0, 100.0), (0.15, 100.15), (0.3, 105.0), (0.45, 105.15), (0.5, 105.2), (0.51, None), (-0.1, None)],
)
def test_the_services_count_maps_back_to_when_it_was_captured(offset_s: float, wall: float | None) -> None:
    got = timeline(GATED).at(offset_s)
    assert got == pytest.approx(wall) if wall is not None else got is None


def test_speech_started_gives_the_start_of_the_utterance_and_a_finished_one_forgets_it() -> None:
    t = timeline(GATED)
    assert t.utterance_start() == pytest.approx(100.0)  # no speech event: the first speech sent
    t.finished()
    assert t.utterance_start() is None
    t.speech_started(320)  # qwen3.5: speech began 0.32 s into what it received = 20 ms into the second burst
    assert t.utterance_start() == pytest.approx(105.02)
    t.speech_started("x")  # a malformed field changes nothing it should not
    assert t.utterance_start() == pytest.approx(105.02)
    t.finished()
    t.sent(106.1, 0.1, False)
    assert t.utterance_start() is None  # silence starts nothing
    t.sent(107.1, 0.1, True)
    assert t.utterance_start() == pytest.approx(107.0)
