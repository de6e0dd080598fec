"""Metrics read back as plain numbers for /status: a latency's count, mean and quantiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

#: Quantiles /status shows for each latency histogram.
QUANTILES: tuple[tuple[str, float], ...] = (("p50_s", 0.5), ("p95_s", 0.95))


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The q-quantile estimated from cumulative buckets, as Prometheus' histogram_quantile() does.

    Linear inside the bucket the rank falls in, from 0 for the first; a rank in the +Inf bucket gives the highest
    finite bound (nothing better is known). None when there are no samples.
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank and count > below:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def summary(buckets: Sequence[tuple[float, float]], total: float) -> dict[str, Any]:
    """Count, mean and estimated quantiles from cumulative buckets and the sum of the samples (seconds)."""
    count = int(buckets[-1][1]) if buckets else 0
    out: dict[str, Any] = {"count": count, "avg_s": round(total / count, 6) if count else None}
    for key, q in QUANTILES:
        value = quantile(q, buckets)
        out[key] = None if value is None else round(value, 6)
    return out
