"""Pure: what OBS is doing, as the capture gate and the outputs see it (filled in by obs.ObsSink)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ObsState:
    """What OBS is doing, as far as capture gating cares. OBS away counts as not streaming, not recording."""

    connected: bool = False
    streaming: bool = False
    recording: bool = False
    scene: str | None = None
    # The watched inputs (microphones) that are muted now.
    muted: frozenset[str] = frozenset()
