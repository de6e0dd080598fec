"""Hypothesis settings shared by the property-based tests of the interpreter and the config parser."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# No example database: nothing is written into the work tree; print_blob makes any failure reproducible.
PROPS = settings(
    max_examples=200, deadline=None, database=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
