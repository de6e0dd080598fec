"""Dashboard at /: latency read-outs (tables) and the page over plain HTTP; Chromium: test_dashboard_browser.py."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from typing import Any, TypeVar

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from captioner.readout import quantile, summary
from captioner.status import Status
from captioner.tallies import Latency
from captioner.web import server as http
from tests.support.metric_sum import metric_sum

pytestmark = pytest.mark.timeout(90)

T = TypeVar("T")
TOKEN = "s3cret-token"
INF = math.inf


# -- pure: quantiles from cumulative buckets, as Prometheus' histogram_quantile()


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, [], None),
        (0.5, [(0.1, 0), (1.0, 0), (INF, 0)], None),  # no samples yet
        (0.5, [(0.1, 4), (1.0, 4), (INF, 4)], 0.05),  # all in the first bucket: from 0 up to its bound
        (1.0, [(0.1, 4), (1.0, 4), (INF, 4)], 0.1),
        (0.5, [(0.1, 0), (1.0, 4), (INF, 4)], 0.55),  # linear inside (0.1, 1.0]
        (0.25, [(0.1, 1), (1.0, 3), (INF, 4)], 0.1),  # the rank lands exactly on a bucket's upper count
        (0.5, [(0.1, 1), (1.0, 3), (INF, 4)], 0.55),
        (0.95, [(0.1, 1), (1.0, 3), (INF, 4)], 1.0),  # in +Inf: the highest finite bound is all that is known
        (0.5, [(0.1, 0), (1.0, 0), (INF, 2)], 1.0),
        (0.5, [(0.001, 0), (0.002, 2), (0.005, 2), (INF, 2)], 0.0015),  # empty buckets above do not stretch it
    ],
)
def test_quantile(q: float, buckets: list[tuple[float, float]], expected: float | None) -> None:
    got = quantile(q, buckets)
    assert got == expected if expected is None else got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("observations", "expected"),
    [
        ([], {"count": 0, "avg_s": None, "p50_s": None, "p95_s": None}),
        # Quantiles are bucket estimates (linear inside (0.1, 1]); the mean is exact.
        ([("a", 0.5)], {"count": 1, "avg_s": 0.5, "p50_s": 0.55, "p95_s": 0.955}),
        # Label sets are summed: one target fast, one slow.
        ([("a", 0.05), ("a", 0.05), ("b", 3.0), ("b", 3.0)], {"count": 4, "avg_s": 1.525, "p50_s": 0.1, "p95_s": 4.6}),
    ],
)
def test_latency_summary_sums_label_sets(observations: list[tuple[str, float]], expected: dict[str, Any]) -> None:
    latency = Latency("h_seconds", "test", ["target"], (0.1, 1, 5), CollectorRegistry())
    for target, value in observations:
        latency.labels(target).observe(value)
    got = summary(*latency.totals.cumulative())
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == (value if value is None or key == "count" else pytest.approx(value)), key


def test_status_exposes_level_and_latency() -> None:
    st = Status("test")
    before = st.as_dict()
    assert before["audio_level"] == 0.0
    assert before["latency"]["final_to_screen"] == {"count": 0, "avg_s": None, "p50_s": None, "p95_s": None}
    st.metrics.audio_level.set(0.123456)
    st.metrics.final_to_screen_seconds.observe(0.004)
    st.metrics.capture_to_wire_seconds.labels("", "ja").observe(0.02)
    after = json.loads(json.dumps(st.as_dict()))  # what /status sends
    assert after["audio_level"] == 0.1235
    assert metric_sum(st.metrics.registry, "captioner_audio_level", {}) == pytest.approx(0.123456)
    assert after["latency"]["final_to_screen"]["count"] == 1
    assert after["latency"]["final_to_screen"]["avg_s"] == pytest.approx(0.004)
    assert after["latency"]["capture_to_wire"]["count"] == 1


# -- the page over plain HTTP


async def test_page_is_self_contained_and_its_csp_allows_exactly_its_own_script() -> None:
    runner, port = await http.start(Status("test"), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/") as r:
            body, headers = await r.text(), r.headers
            assert r.status == 200 and r.content_type == "text/html"
    finally:
        await runner.cleanup()
    for external in ("http://", "https://", "//cdn", "<link", " src=", "@import", "url(", "innerHTML"):
        assert external not in body
    assert headers["Cache-Control"] == "no-store"
    csp = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    (script,) = re.findall(r"<script>(.*?)</script>", body, re.S)
    (style,) = re.findall(r"<style>(.*?)</style>", body, re.S)

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert csp["script-src"] == digest(script) and csp["style-src"] == digest(style)
    assert csp["connect-src"] == "'self'" and csp["frame-ancestors"] == "'none'" and csp["form-action"] == "'none'"
    # The token field has no name: even a form submitted without the script could not put it in a URL.
    assert re.search(r'<input id="token" type="password"(?![^>]*name=)[^>]*>', body)
