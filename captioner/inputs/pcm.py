"""Pure PCM16 levels: the loudness of a chunk, and the level that counts as speech."""

from __future__ import annotations

import math

import numpy as np

# A chunk louder than this counts as speech: for the translator's watchdog and rotation points, and the stand-in.
SPEECH_RMS = 0.01


def rms(chunk: bytes) -> float:
    """Root mean square level of PCM16 bytes, 0..1."""
    if not chunk:
        return 0.0
    x = np.frombuffer(chunk, "<i2").astype(np.float32)
    return math.sqrt(float(np.dot(x, x)) / x.size) / 32768.0
