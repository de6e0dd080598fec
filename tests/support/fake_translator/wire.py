"""The base of the fake's server: the knobs and shared state the protocol code reads, and sending to a connection."""

from __future__ import annotations

import json
import threading
from typing import Any

from tests.support.fake_translator.records import Conn
from tests.support.fake_translator.vendor import new_id


class Wire:
    """Sends events and closes connections; FakeTranslator sets the attributes below in its __init__."""

    script: list[str]
    renderings: dict[str, dict[str, str]]
    silence_ms: int
    speech_rms: float
    stall: bool
    reject_audio_for_text_only_targets: bool
    finish_delay_s: float
    usage_per_response: bool
    echo_override: dict[str, Any]
    hang_after_speech_started: bool
    refuse_updates: tuple[str, str] | None
    mixed_layout: str
    _lock: threading.Lock
    _segments_emitted: dict[str, int]
    _next_index: dict[str, int]

    async def _send(self, c: Conn, event: dict[str, Any]) -> None:
        if self.stall or c.closing or c.ws.closed:
            return
        event = {"event_id": new_id("event"), **event}
        try:
            async with c.lock:
                await c.ws.send_str(json.dumps(event))
        except ConnectionError:
            c.closing = True
            return
        with self._lock:
            c.rec.server_event_types.append(event["type"])
        c.sent += 1
        if c.close_after is not None and c.sent >= c.close_after[0]:
            await self._server_close(c, c.close_after[1], c.close_after[2])

    async def _server_close(self, c: Conn, code: int, reason: str) -> None:
        c.closing = True
        with self._lock:
            c.rec.server_close_code = code
        await c.ws.close(code=code, message=reason.encode())

    async def _error(self, c: Conn, code: str, message: str, param: str) -> None:
        err = {"type": "invalid_request_error", "code": code, "message": message, "param": param}
        await self._send(c, {"type": "error", "error": err})

    def _log_client(self, c: Conn, etype: str) -> None:
        with self._lock:
            c.rec.client_event_types.append(etype)
