"""The metrics /status reads as plain numbers (captioner.tallies) agree with their Prometheus series."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram

from captioner.metrics import CAPTURE_TO_WIRE_BUCKETS
from captioner.readout import summary
from captioner.tallies import Latency, Tally
from tests.support.metric_sum import metric_sum


def prometheus_summary(hist: Histogram) -> dict[str, object]:
    """The oracle: the same figures read the slow way, from what the Prometheus histogram exports."""
    counts: dict[float, float] = {}
    total = 0.0
    for family in hist.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                counts[bound] = counts.get(bound, 0.0) + sample.value
            elif sample.name.endswith("_sum"):
                total += sample.value
    return summary(sorted(counts.items()), total)


@pytest.mark.parametrize(
    "observations",
    [
        [],
        [("", "ja", 0.0)],
        [("", "ja", 0.005), ("", "ja", 0.01)],  # exactly on a bound: that bucket, as Prometheus' "le"
        [("", "ja", 0.0049), ("", "de", 0.0051), ("Guests", "ja", 0.02), ("", "ja", 0.7)],
        [("", "fr", 3.0), ("", "fr", 3.5), ("", "fr", 1e9)],  # past the last bound: the +Inf bucket
        [("", t, 0.001 * i) for i in range(200) for t in ("ja", "de", "fr")],
    ],
)
def test_latency_totals_read_as_the_prometheus_histogram(
    observations: list[tuple[str, str, float]],
) -> None:
    latency = Latency("lat_seconds", "test", ["input", "target"], CAPTURE_TO_WIRE_BUCKETS, CollectorRegistry())
    for name, target, seconds in observations:
        latency.labels(name, target).observe(seconds)
    assert summary(*latency.totals.cumulative()) == prometheus_summary(latency.histogram)
    assert summary(*latency.totals.cumulative())["count"] == len(observations)


def test_a_tally_counts_each_label_set_as_its_prometheus_series() -> None:
    registry = CollectorRegistry()
    sent = Tally("sent_seconds", "test", ["input", "target"], registry)
    for name, target, seconds in [("", "ja", 0.1), ("", "ja", 0.1), ("", "de", 2.5), ("Guests", "ja", 1.0)]:
        sent.labels(name, target).inc(seconds)
    for name, target in [("", "ja"), ("", "de"), ("Guests", "ja"), ("", "fr")]:
        series = metric_sum(registry, "sent_seconds_total", {"input": name, "target": target})
        assert sent.value(name, target) == pytest.approx(series), (name, target)
    assert sent.value("", "ja") == pytest.approx(0.2) and sent.value("", "fr") == 0
    with pytest.raises(ValueError):
        sent.labels("", "ja").inc(-1)  # refused by Prometheus, and not counted either
    assert sent.value("", "ja") == pytest.approx(0.2)
