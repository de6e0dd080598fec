"""The shared tick grid: periodic checks started at different moments come due at the same loop time."""

from __future__ import annotations

import pytest

from captioner.ticks import until_next


@pytest.mark.parametrize(
    ("now", "period", "expected"),
    [
        (10.0, 1.0, 1.0),  # on the grid: a whole period, never 0 (that would spin)
        (10.25, 1.0, 0.75),
        (10.98, 1.0, 0.02),
        (10.995, 1.0, 1.005),  # a timer that ran a little early: not that grid point again, the next one
        (3.0, 2.0, 1.0),
        (7.5, 5.0, 2.5),
    ],
)
def test_until_next(now: float, period: float, expected: float) -> None:
    assert until_next(now, period) == pytest.approx(expected)


def test_checks_started_apart_meet_on_the_grid() -> None:
    starts = [100.13, 100.52, 100.97]
    assert {round(t + until_next(t, 1.0), 9) for t in starts} == {101.0}
