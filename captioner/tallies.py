"""Prometheus metrics kept as plain numbers: counted with one addition, exported when /metrics is read (pure).

Two readers made prometheus_client's own objects too dear on the hot path (#21):
- /status, asked every second while a dashboard is open: reading a figure back from prometheus_client means
  collecting (a registry-wide `get_sample_value` built every series of every metric for one number, 55 ms of CPU
  a /status with 8 targets). These keep their totals as numbers /status reads in microseconds.
- the audio itself: ten chunks a second each counted into half a dozen series, and every translator event into
  one. A prometheus_client counter takes a lock and three Python calls an increment, a histogram a Python loop over
  its buckets; with cold caches ten times a second that was a tenth of the capture's cost. Here an increment is an
  addition; the series are built when /metrics is read (`collect`, the custom-collector interface of
  prometheus_client), in the same form prometheus_client's Counter, Gauge and Histogram export.

Not locked: each series is written from one thread (the event loop, or OBS's worker) and a reader sees at worst a
sample a moment early.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, utils
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

# A bucket bound as prometheus_client writes it in `le` (0.005, 1.0, +Inf); the library's own function, untyped.
_bound_label: Callable[[float], str] = utils.floatToGoString


class Totals:
    """A histogram's observations: per bucket and their sum."""

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


class _Family(Collector):
    """What every metric here shares: its name, help, label names and series, and how it registers."""

    def __init__(self, name: str, doc: str, labels: Sequence[str], registry: CollectorRegistry) -> None:
        self.name, self.doc, self.label_names = name, doc, tuple(labels)
        registry.register(self)

    def _check(self, values: tuple[str, ...]) -> None:
        if len(values) != len(self.label_names):
            raise ValueError(f"{self.name}: {len(values)} label value(s) for {len(self.label_names)} label(s)")

    def _empty(self) -> Metric:
        raise NotImplementedError

    def describe(self) -> Iterator[Metric]:
        """The family without samples: what the registry checks names against when this registers."""
        yield self._empty()


class Count:
    """One label set of a Tally: a running total."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:  # as prometheus_client refuses: a counter never goes down
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount


class Tally(_Family):
    """A Prometheus counter: `name_total` (and `name_created`) per label set counted so far."""

    def __init__(self, name: str, doc: str, labels: Sequence[str], registry: CollectorRegistry) -> None:
        super().__init__(name, doc, labels, registry)
        self._counts: dict[tuple[str, ...], Count] = {}
        if not labels:
            self._only = self.labels()  # an unlabelled counter is exported from the start, at 0

    def labels(self, *values: str) -> Count:
        """The series of these label values (made on first use, as prometheus_client does)."""
        count = self._counts.get(values)
        if count is None:
            self._check(values)
            count = self._counts[values] = Count()
        return count

    def inc(self, amount: float = 1.0) -> None:
        """Count into the unlabelled series."""
        self._only.inc(amount)

    def value(self, *values: str) -> float:
        """The total counted for this label set (0 before anything was)."""
        count = self._counts.get(values)
        return count.value if count is not None else 0.0

    def _empty(self) -> Metric:
        return CounterMetricFamily(self.name, self.doc, labels=self.label_names)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.doc, labels=self.label_names)
        for values, count in list(self._counts.items()):
            family.add_metric(values, count.value, created=count.created)
        yield family


class Observations:
    """One label set of a Latency: its own buckets, and the totals over every label set."""

    __slots__ = ("_all", "created", "own")

    def __init__(self, bounds: Sequence[float], totals: Totals) -> None:
        self.own = Totals(bounds)
        self._all = totals
        self.created = time.time()

    def observe(self, seconds: float) -> None:
        # Totals.observe twice over, with one bisection: the bounds are the same.
        own, every = self.own, self._all
        i = bisect.bisect_left(own.bounds, seconds)
        own.counts[i] += 1
        own.sum += seconds
        every.counts[i] += 1
        every.sum += seconds


class Latency(_Family):
    """A Prometheus histogram for /metrics, and its totals over every label set for /status."""

    def __init__(
        self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        super().__init__(name, doc, labels, registry)
        self._bounds = tuple(buckets)
        self.totals = Totals(buckets)
        self._series: dict[tuple[str, ...], Observations] = {}
        if not labels:
            self._only = self.labels()

    def labels(self, *values: str) -> Observations:
        series = self._series.get(values)
        if series is None:
            self._check(values)
            series = self._series[values] = Observations(self._bounds, self.totals)
        return series

    def observe(self, seconds: float) -> None:
        """Observe into the unlabelled series."""
        self._only.observe(seconds)

    def _empty(self) -> Metric:
        return HistogramMetricFamily(self.name, self.doc, labels=self.label_names)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.label_names)
        for values, series in list(self._series.items()):
            buckets, total = series.own.cumulative()
            family.add_metric(values, [(_bound_label(b), n) for b, n in buckets], total)
            labels = dict(zip(self.label_names, values, strict=True))
            family.samples.append(Sample(f"{self.name}_created", labels, series.created))
        yield family


class Level(_Family):
    """An unlabelled Prometheus gauge: the last value set."""

    def __init__(self, name: str, doc: str, registry: CollectorRegistry) -> None:
        super().__init__(name, doc, (), registry)
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)

    def _empty(self) -> Metric:
        return GaugeMetricFamily(self.name, self.doc)

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.name, self.doc, value=self.value)
