"""Prometheus metrics that /status also reads, kept beside their series as plain numbers (pure: no I/O).

/status is asked every second while a dashboard is open (an OBS dock, all stream long). Reading a figure back from
prometheus_client means collecting: a registry-wide `get_sample_value` built every series of every metric for one
number (55 ms of CPU a /status with 8 targets), and even one series' `collect()` formats its samples. These count
into the Prometheus series and into plain totals that /status reads in microseconds (#21). They are not locked:
each is written from one thread (the event loop, or OBS's worker); a reader sees at worst a sample a moment early.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram


class Totals:
    """A histogram's observations over all its label sets: per bucket and their sum."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = (*bounds, math.inf)
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # bounds are "less or equal", as Prometheus' le
        self.sum += value

    def cumulative(self) -> tuple[list[tuple[float, float]], float]:
        """(upper bound, observations at or below it) per bucket, and the sum of all observations."""
        out, running = [], 0
        for bound, n in zip(self.bounds, self.counts, strict=True):
            running += n
            out.append((bound, float(running)))
        return out, self.sum


class _Observation:
    """One label set of a Latency."""

    def __init__(self, series: Histogram, totals: Totals) -> None:
        self._series = series
        self._totals = totals

    def observe(self, seconds: float) -> None:
        self._series.observe(seconds)
        self._totals.observe(seconds)


class Latency:
    """A Prometheus histogram for /metrics, and its totals over every label set for /status."""

    def __init__(
        self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.histogram = Histogram(name, doc, labels, buckets=buckets, registry=registry)
        self.totals = Totals(buckets)

    def labels(self, *values: str) -> _Observation:
        return _Observation(self.histogram.labels(*values), self.totals)

    def observe(self, seconds: float) -> None:
        self.histogram.observe(seconds)
        self.totals.observe(seconds)


class _Increment:
    """One label set of a Tally."""

    def __init__(self, series: Counter, totals: dict[tuple[str, ...], float], key: tuple[str, ...]) -> None:
        self._series = series
        self._totals = totals
        self._key = key

    def inc(self, amount: float = 1.0) -> None:
        self._series.inc(amount)  # first: it refuses a negative amount
        self._totals[self._key] += amount


class Tally:
    """A Prometheus counter for /metrics, and its total per label set for /status."""

    def __init__(self, name: str, doc: str, labels: Sequence[str], registry: CollectorRegistry) -> None:
        self.counter = Counter(name, doc, labels, registry=registry)
        self._totals: dict[tuple[str, ...], float] = {}

    def labels(self, *values: str) -> _Increment:
        self._totals.setdefault(values, 0.0)
        return _Increment(self.counter.labels(*values), self._totals, values)

    def value(self, *values: str) -> float:
        """The total counted for this label set (0 before anything was)."""
        return self._totals.get(values, 0.0)
