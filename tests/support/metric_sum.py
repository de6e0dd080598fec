"""A metric's value over the series whose labels include the given ones (the `input` label may be left out)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry


def metric_sum(registry: CollectorRegistry, name: str, labels: Mapping[str, str]) -> float:
    """The sum over the samples named `name` whose labels hold `labels` (0.0 when none does)."""
    return sum(
        sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )
