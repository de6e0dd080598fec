"""Audio deltas as the translator sends them: base64 PCM16, for the voice tests."""

from __future__ import annotations

import base64

import numpy as np


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def secs(s: float, fill: int) -> str:
    """`s` seconds of 24 kHz PCM16 whose every sample is `fill`, as a delta."""
    return b64(np.full(int(s * 24000), fill, "<i2").tobytes())
