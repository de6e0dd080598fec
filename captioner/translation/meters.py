"""One target's counters that its connections update (the series labelled by input and target), and the event
types it received last, for the log of a connection that ends."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import aiohttp

from ..metrics import Metrics

# A sentence end in the send queue, after the audio it ends (client turns, §4.4).
COMMIT, CLEAR = "commit", "clear"


class Meters:
    """One target's counters that its connections update, and the event types it received last (for logs)."""

    def __init__(self, metrics: Metrics, target: str, input_name: str = "") -> None:
        self.target = target
        # The labels of every per-session series: the input ("" for the single audio: input), then the target.
        self.key = key = (input_name, target)
        self.sent_s = metrics.audio_sent_seconds.labels(*key)
        self.skipped = metrics.audio_skipped_chunks.labels(*key)
        self.events = metrics.translator_events.labels(*key)
        self.latency = metrics.capture_to_wire_seconds.labels(*key)
        self.trace = metrics.trace
        self.trace_key = ":".join(("capture_to_wire", *((input_name,) if input_name else ()), target))
        # Chunks the gate kept back on purpose (its pre-roll and onset, a held pause): traced apart.
        self.trace_key_held = self.trace_key.replace("capture_to_wire", "capture_to_wire_held", 1)
        self.turns = {k: metrics.translator_turns.labels(*key, k) for k in (COMMIT, CLEAR, "skipped")}
        self.images = metrics.vision_images.labels(*key)
        self.image_bytes = metrics.vision_image_bytes.labels(*key)
        self._bad_events = metrics.translator_bad_events
        self.recent_types: deque[str] = deque(maxlen=80)

    def decode(self, msg: aiohttp.WSMessage) -> dict[str, Any] | None:
        """A text frame as a JSON object; anything else is counted and skipped."""
        self.events.inc()
        if msg.type != aiohttp.WSMsgType.TEXT:
            self._bad_events.labels(*self.key, "binary").inc()
            return None
        try:
            event = json.loads(msg.data)
        except (ValueError, RecursionError):
            self._bad_events.labels(*self.key, "invalid_json").inc()
            return None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            self._bad_events.labels(*self.key, "malformed").inc()
            return None
        self.recent_types.append(event["type"][:64])
        return event
