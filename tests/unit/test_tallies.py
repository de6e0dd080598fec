"""The metrics kept as plain numbers (captioner.tallies) export what prometheus_client's own would, and /status
reads the same figures from them."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from captioner.metrics import CAPTURE_TO_WIRE_BUCKETS
from captioner.readout import summary
from captioner.tallies import Latency, Level, Tally
from tests.support.metric_sum import metric_sum


def exported(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float | None]]:
    """Every sample of a registry as (name, labels, value); a `_created` sample's value (a clock reading) left out."""
    out = []
    for family in registry.collect():
        for s in family.samples:
            out.append((s.name, s.labels, None if s.name.endswith("_created") else s.value))
    return sorted(out, key=repr)


def exposition(registry: CollectorRegistry) -> list[str]:
    """The /metrics text without the `_created` lines (clock readings)."""
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


OBSERVATIONS = [
    [],
    [("", "ja", 0.0)],
    [("", "ja", 0.005), ("", "ja", 0.01)],  # exactly on a bound: that bucket, as Prometheus' "le"
    [("", "ja", 0.0049), ("", "de", 0.0051), ("Guests", "ja", 0.02), ("", "ja", 0.7)],
    [("", "fr", 3.0), ("", "fr", 3.5), ("", "fr", 1e9)],  # past the last bound: the +Inf bucket
    [("", t, 0.001 * i) for i in range(200) for t in ("ja", "de", "fr")],
]


@pytest.mark.parametrize("observations", OBSERVATIONS)
def test_a_latency_exports_what_a_prometheus_histogram_would(observations: list[tuple[str, str, float]]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    latency = Latency("lat_seconds", "test", ["input", "target"], CAPTURE_TO_WIRE_BUCKETS, ours)
    oracle = Histogram("lat_seconds", "test", ["input", "target"], buckets=CAPTURE_TO_WIRE_BUCKETS, registry=theirs)
    for name, target, seconds in observations:
        latency.labels(name, target).observe(seconds)
        oracle.labels(name, target).observe(seconds)
    assert exported(ours) == exported(theirs)
    assert exposition(ours) == exposition(theirs)


@pytest.mark.parametrize("observations", OBSERVATIONS)
def test_latency_totals_read_as_the_exported_histogram(observations: list[tuple[str, str, float]]) -> None:
    registry = CollectorRegistry()
    latency = Latency("lat_seconds", "test", ["input", "target"], CAPTURE_TO_WIRE_BUCKETS, registry)
    for name, target, seconds in observations:
        latency.labels(name, target).observe(seconds)
    counts: dict[float, float] = {}
    for family in registry.collect():
        for s in family.samples:
            if s.name == "lat_seconds_bucket":
                counts[float(s.labels["le"])] = counts.get(float(s.labels["le"]), 0.0) + s.value
    total = metric_sum(registry, "lat_seconds_sum", {})
    assert summary(*latency.totals.cumulative()) == summary(sorted(counts.items()), total)
    assert summary(*latency.totals.cumulative())["count"] == len(observations)


def test_an_unlabelled_latency_is_exported_from_the_start_as_a_prometheus_histogram_is() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    latency = Latency("f_seconds", "test", [], (0.001, 0.01), ours)
    oracle = Histogram("f_seconds", "test", buckets=(0.001, 0.01), registry=theirs)
    assert exported(ours) == exported(theirs)
    latency.observe(0.002)
    oracle.observe(0.002)
    assert exported(ours) == exported(theirs)


def test_a_tally_exports_what_a_prometheus_counter_would_and_reads_back_per_label_set() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    sent = Tally("sent_seconds", "test", ["input", "target"], ours)
    oracle = Counter("sent_seconds", "test", ["input", "target"], registry=theirs)
    for name, target, seconds in [("", "ja", 0.1), ("", "ja", 0.1), ("", "de", 2.5), ("Guests", "ja", 1.0)]:
        sent.labels(name, target).inc(seconds)
        oracle.labels(name, target).inc(seconds)
    assert exported(ours) == exported(theirs)
    assert exposition(ours) == exposition(theirs)
    assert sent.value("", "ja") == pytest.approx(0.2) and sent.value("", "fr") == 0
    with pytest.raises(ValueError):
        sent.labels("", "ja").inc(-1)  # refused as by Prometheus, and not counted either
    assert sent.value("", "ja") == pytest.approx(0.2)
    with pytest.raises(ValueError):
        sent.labels("ja")  # one label value for two labels, as prometheus_client refuses
    assert exported(ours) == exported(theirs)


def test_an_unlabelled_tally_and_a_level_export_as_a_counter_and_a_gauge() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    chunks, level = Tally("chunks", "test", [], ours), Level("level", "test", ours)
    oracle_chunks, oracle_level = Counter("chunks", "test", registry=theirs), Gauge("level", "test", registry=theirs)
    assert exported(ours) == exported(theirs)  # both at 0 before anything counts
    for _ in range(3):
        chunks.inc()
        oracle_chunks.inc()
    level.set(0.25)
    oracle_level.set(0.25)
    assert exported(ours) == exported(theirs)
    assert exposition(ours) == exposition(theirs)
    assert level.value == 0.25 and chunks.value() == 3


@pytest.mark.parametrize(
    "make",
    [
        lambda r: Tally("dup", "x", [], r),
        lambda r: Latency("dup", "x", [], (1.0,), r),
        lambda r: Level("dup_total", "x", r),  # a gauge named like the counter's sample
    ],
)
def test_a_name_taken_in_the_registry_is_refused_as_for_prometheus_client(make: Any) -> None:
    registry = CollectorRegistry()
    Counter("dup", "x", registry=registry)
    with pytest.raises(ValueError):
        make(registry)
