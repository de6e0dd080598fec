"""Local fake of the Qwen LiveTranslate realtime WebSocket API (see docs/translator-protocol.md): the server, its
fault knobs and what it recorded."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import WSMsgType, web

from tests.support.fake_translator.client_events import ClientEvents
from tests.support.fake_translator.q38_session import defaults_q38
from tests.support.fake_translator.records import Conn, ConnectionRecord
from tests.support.fake_translator.session import defaults
from tests.support.fake_translator.vendor import HTTP_ERROR_CODES, MODELS, PATH, RATE_LIMIT_REASON


class FakeTranslator(ClientEvents):
    """Real aiohttp WebSocket server speaking the Q3 / Q3.5 LiveTranslate dialects."""

    def __init__(
        self,
        api_key: str = "test-key",
        script: list[str] | None = None,
        silence_ms: int = 600,
        renderings: dict[str, dict[str, str]] | None = None,
        speech_rms: float = 0.02,
        host: str = "127.0.0.1",
        port: int = 0,
        speakers: list[int] | None = None,
        spoken: list[str] | None = None,
    ) -> None:
        self.api_key = api_key
        # Q3.8: the speaker_id of utterance i of each language (default: all speaker 1).
        self.speakers = list(speakers or [])
        # The language utterance i is spoken in, for the same-language skip (default: the session's source, or en).
        self.spoken = list(spoken or [])
        # The skip's wire result is not documented (3.8 digest §6): "no_response" or "empty" (a response, no text).
        self.skip_reading = "no_response"
        # Q3.8's response.done was recorded without usage: True adds it (cumulative, as on Q3.5).
        self.q38_usage = False
        # Q3.5 field names in a Q3.8 update: "reject" (the guide: do not mix) or "ignore" (what one client saw).
        self.mixed_layout = "reject"
        # The TLS context to serve wss:// with (a test CA's certificate), or None for ws://.
        self.ssl_context: ssl.SSLContext | None = None
        self.script = list(script or [])
        # Real-looking translations for chosen sentences, by language; others are "[lang] sentence".
        self.renderings = renderings or {}
        self.silence_ms = silence_ms
        self.speech_rms = speech_rms
        self.host = host
        self.port = port
        self.stall = False
        # §7: the service closes a session that generated no response for this long (300 s seen on Omni).
        self.idle_timeout_s: float | None = None
        self.rate_limit_per_minute: int | None = None
        self.rate_window_s = 60.0  # tests may shrink the window
        self.reject_audio_for_text_only_targets = True  # §4.1 "[?] whole session is rejected"
        # §4.5: the service finishes the last utterance's recognition and translation before `session.finished`;
        # the SDK waits up to 20 s for it. This delays the answer to `session.finish` (the results and the event).
        self.finish_delay_s = 0.0
        # §8 [?]: usage observed as cumulative per session; True reports each response's own tokens instead.
        self.usage_per_response = False
        # Fields of the session.updated echo to overwrite (the service changed or dropped what was asked, §12.10).
        self.echo_override: dict[str, Any] = {}
        # A hung model on Q3.5: after `speech_started` nothing more is sent (stall), as a stuck service would.
        self.hang_after_speech_started = False
        # (code, message): answer every session.update with this `error`, as a service refusing the session does.
        self.refuse_updates: tuple[str, str] | None = None
        self._lock = threading.Lock()
        self._connections: list[ConnectionRecord] = []
        self._handshakes_rejected = 0
        self._segments_emitted: dict[str, int] = {}
        self._next_index: dict[str, int] = {}
        self._reject: tuple[int, int] = (0, 401)
        self._close_after: tuple[int, int, str] | None = None
        self._attempts: deque[float] = deque()
        self._open: set[Conn] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl_context else 'ws'}://{self.host}:{self.port}{PATH}"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        app = web.Application()
        app.router.add_get(PATH, self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._drop_now(mark=False)  # otherwise cleanup waits for open handlers
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start_in_thread(self) -> None:
        """Run the server on its own event loop in a daemon thread (for subprocess e2e tests)."""
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="fake-translator", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.start(), loop).result(10)

    def stop_thread(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._thread = None

    # ---- recorded state (thread-safe copies) -----------------------------------------------
    @property
    def connections(self) -> list[ConnectionRecord]:
        with self._lock:
            return list(self._connections)

    @property
    def handshakes_rejected(self) -> int:
        with self._lock:
            return self._handshakes_rejected

    @property
    def segments_emitted(self) -> dict[str, int]:
        with self._lock:
            return dict(self._segments_emitted)

    def snapshot(self) -> list[ConnectionRecord]:
        """Deep copies of all connection records, consistent even while the server runs."""
        with self._lock:
            return copy.deepcopy(self._connections)

    def wait_until(self, pred: Callable[[FakeTranslator], bool], timeout: float = 5.0) -> bool:
        """Blocking poll; only for use when the server runs in its own thread."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self):
                return True
            time.sleep(0.02)
        return pred(self)

    async def await_until(self, pred: Callable[[FakeTranslator], bool], within: float = 5.0) -> bool:
        """Async poll for tests that share the server's event loop."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if pred(self):
                return True
            await asyncio.sleep(0.01)
        return pred(self)

    # ---- fault injection -------------------------------------------------------------------
    def reject_next(self, n: int, status: int = 401) -> None:
        with self._lock:
            self._reject = (n, status)

    def close_after_events(self, n: int, code: int = 1011, reason: str = "InternalError") -> None:
        with self._lock:
            self._close_after = (n, code, reason)

    def drop_all(self) -> None:
        """Abort every open TCP connection without a close frame (network drop)."""

        async def drop() -> None:
            self._drop_now()

        self._call(drop)

    def inject(self, event: dict[str, Any] | str) -> None:
        """Send a raw frame (dict -> JSON, str -> verbatim) to every open connection, even when stalled."""
        data = event if isinstance(event, str) else json.dumps(event)

        async def send_all() -> None:
            for c in list(self._open):
                async with c.lock:
                    if not c.ws.closed:
                        with contextlib.suppress(ConnectionError):
                            await c.ws.send_str(data)

        self._call(send_all)

    def _call(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run fn on the server loop: scheduled if called on it, else wait (called from another thread)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("FakeTranslator is not started")
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:  # keep a reference so the task is not garbage-collected mid-flight
            task = loop.create_task(fn())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            asyncio.run_coroutine_threadsafe(fn(), loop).result(5)

    def _drop_now(self, mark: bool = True) -> None:
        for c in list(self._open):
            c.closing = True
            with self._lock:
                c.rec.dropped = mark
            if c.transport is not None:
                c.transport.abort()

    # ---- handshake -------------------------------------------------------------------------
    def _refuse(self, status: int, message: str) -> web.Response:
        rid = str(uuid.uuid4())
        with self._lock:
            self._handshakes_rejected += 1
        body = {"request_id": rid, "code": HTTP_ERROR_CODES.get(status, "Error"), "message": message}
        return web.json_response(body, status=status, headers={"x-request-id": rid})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            n, forced = self._reject
            if n > 0:
                self._reject = (n - 1, forced)
        if n > 0:
            return self._refuse(forced, "Injected handshake failure.")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._refuse(401, "Invalid API-key provided.")
        model = request.query.get("model", "")
        family = MODELS.get(model)
        if family is None:
            return self._refuse(404, f"Model not found ({model})!")
        ws = web.WebSocketResponse(timeout=1.5, compress=False)
        if not ws.can_prepare(request).ok:
            return self._refuse(400, "WebSocket upgrade required.")
        await ws.prepare(request)
        rec = ConnectionRecord(model=model, family=family, headers=dict(request.headers))
        c = Conn(ws=ws, transport=request.transport, rec=rec, silence_ms=self.silence_ms)
        q38 = family == "q3.8"
        c.session = defaults_q38(model, self.silence_ms) if q38 else defaults(family, model, self.silence_ms)
        rec.session = copy.deepcopy(c.session)
        now = time.monotonic()
        with self._lock:
            self._connections.append(rec)
            while self._attempts and now - self._attempts[0] > self.rate_window_s:
                self._attempts.popleft()
            limit = self.rate_limit_per_minute
            limited = limit is not None and len(self._attempts) >= limit
            self._attempts.append(now)  # every connection counts as a request (§2)
            if not limited:
                c.close_after, self._close_after = self._close_after, None
        self._open.add(c)
        try:
            if limited:
                await self._server_close(c, 1007, RATE_LIMIT_REASON)
            elif c.close_after is not None and c.close_after[0] <= 0:
                await self._server_close(c, c.close_after[1], c.close_after[2])
            else:
                await self._send(c, {"type": "session.created", "session": c.session})
            while True:
                try:
                    msg = await ws.receive(timeout=self._idle_left(c))
                except TimeoutError:
                    await self._idle_close(c)
                    break
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(c, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._log_client(c, "<binary>")
                    await self._error(c, "invalid_value", "Binary frames are not supported.", "")
                else:
                    if msg.type == WSMsgType.CLOSE and not c.closing:
                        with self._lock:
                            rec.closed_by_client = True
                    break
        finally:
            self._open.discard(c)
            with self._lock:
                rec.open = False
        return ws

    def _idle_left(self, c: Conn) -> float | None:
        if self.idle_timeout_s is None:
            return None
        return max(0.01, c.last_response_at + self.idle_timeout_s - time.monotonic())

    async def _idle_close(self, c: Conn) -> None:
        seconds = self.idle_timeout_s or 0
        message = f"Your session was closed because no response was generated for {seconds:g} seconds."
        err = {"type": "invalid_request_error", "code": "response_idle_timeout", "message": message, "param": ""}
        await self._send(c, {"type": "error", "error": err})
        with self._lock:
            c.rec.idle_closed = True
        await self._server_close(c, 1000, "idle")
