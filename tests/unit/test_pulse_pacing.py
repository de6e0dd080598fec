"""When the native capture reads next (captioner.inputs.pulse_stream.next_poll_s): pure, table-tested."""

from __future__ import annotations

import pytest

from captioner.inputs.pulse_stream import next_poll_s

BPS = 32000  # 16 kHz PCM16 mono: 32 bytes a millisecond
MS = 0.001

CASES = [
    # what, missing bytes, packet bytes, misses, late_s -> seconds
    ("chunk-sized packets: the next one completes it", 3200, 3200, 0, 0.0, 102 * MS),
    ("80 ms packets, nothing left over: two are needed", 3200, 2560, 0, 0.0, 162 * MS),
    ("80 ms packets, 60 ms left over: one is enough", 1280, 2560, 0, 0.0, 82 * MS),
    ("a packet boundary exactly: not one more", 2560, 2560, 0, 0.0, 82 * MS),
    ("32 ms packets (a sink shared with a low-latency recorder)", 3200, 1024, 0, 0.0, 130 * MS),
    ("read 2 ms after the packet: that much sooner", 3200, 3200, 0, 2 * MS, 100 * MS),
    ("never sooner than a retry", 32, 3200, 0, 0.2, 2 * MS),
    ("too early once: look again in 2 ms", 3200, 3200, 1, 0.0, 2 * MS),
    ("then twice as late each time", 3200, 3200, 3, 0.0, 8 * MS),
    ("a frozen server: at most once a packet", 3200, 1024, 9, 0.0, 32 * MS),
]


@pytest.mark.parametrize(
    ("what", "missing", "packet", "misses", "late_s", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_next_poll(what: str, missing: int, packet: int, misses: int, late_s: float, expected: float) -> None:
    assert next_poll_s(missing, packet, BPS, misses, late_s) == pytest.approx(expected)
