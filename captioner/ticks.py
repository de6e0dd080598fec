"""Pure: a shared grid for the daemon's periodic checks, so that they wake the event loop together.

Every wake-up of an idle process costs ~200 µs of CPU on a busy machine, whatever it does (#5). Each session's
supervisor, the capture's stall check, OBS's idle ping and the heartbeat each ticked on their own phase; with eight
targets that was a dozen wake-ups a second. Timers due at the same loop time run in one wake-up (#21).
"""

from __future__ import annotations

# A timer may run a little before its time (the loop's clock resolution, the poll's rounding): a grid point this
# close ahead is the one that just ran, and the next one is meant.
_MARGIN_S = 0.01


def until_next(now: float, period_s: float) -> float:
    """Seconds from `now` (the event loop's clock) to the next multiple of `period_s` more than 10 ms ahead."""
    return period_s - (now + _MARGIN_S) % period_s + _MARGIN_S
