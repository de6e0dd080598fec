"""The overlay tests' languages and a hand-moved clock for the hub (caption ages without sleeping)."""

from __future__ import annotations

LANGUAGES = ["ja", "en", "source"]


class FakeClock:
    """The hub's clock, moved by hand so caption ages need no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
