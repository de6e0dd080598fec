"""A session's visual context (§4.3): whether a screenshot may go out now, and queueing it behind the audio."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from .connection import Connection
from .protocol import rate_allows


class ImageSending:
    """Part of TranslatorSession: its images, kept within the service's rules (audio first, 2 per second)."""

    _active: Connection | None
    _stop: asyncio.Event
    _image_times: deque[float]

    @property
    def connection_serial(self) -> int:
        """Changes with every new connection (reconnect, rotation): each starts without any picture."""
        return self._active.serial if self._active is not None else 0

    def image_refusal(self, now: float | None = None) -> str | None:
        """Why an image cannot go out now ("not_connected", "no_audio_yet", "rate"), or None if it can."""
        conn = self._active
        if conn is None or conn.finishing or self._stop.is_set():
            return "not_connected"
        if conn.audio_s <= 0:
            # The service refuses an image before any audio on the connection, also after a reconnect.
            return "no_audio_yet"
        if not rate_allows(self._image_times, time.monotonic() if now is None else now):
            return "rate"
        return None

    def send_image(self, jpeg: bytes) -> bool:
        """Queue one JPEG behind the audio already queued; False (nothing sent) if image_refusal() says no."""
        now = time.monotonic()
        conn = self._active
        if conn is None or self.image_refusal(now) is not None:
            return False
        conn.queue_image(jpeg)
        self._image_times.append(now)
        return True
