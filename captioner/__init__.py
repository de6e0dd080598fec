"""captioner: live translated captions for OBS Studio, as a sidecar daemon."""

from __future__ import annotations

__version__ = "0.1.0"
