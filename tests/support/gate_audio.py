"""Synthetic 16 kHz audio for the SpeechGate tests: speech-like buzz and white noise."""

from __future__ import annotations

import numpy as np

from captioner.config import GateConfig

RATE = 16_000
# The gate's mechanics are tabled with round, explicit lengths (the config's defaults are tested apart).
DEFAULT = GateConfig(pre_roll_ms=500, trail_ms=2000)


def voice(seconds: float, dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """Speech-like sound: a 140 Hz buzz with harmonics to 3 kHz, syllable-modulated, at an RMS of `dbfs`."""
    t = np.arange(round(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * 140 * k * t + rng.uniform(0, 6)) / k for k in range(1, 22))
    x = x * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)))
    return np.asarray(x / np.sqrt(np.mean(x**2)) * 10 ** (dbfs / 20))


def white(seconds: float, dbfs: float, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0, 10 ** (dbfs / 20), round(seconds * RATE))
