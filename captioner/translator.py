"""One Qwen livetranslate session over an aiohttp WebSocket: audio in, caption events out."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from .captions import Caption, SessionInterpreter, normalise_code
from .config import SOURCE, TranslatorConfig
from .errors import AuthError, LinkError
from .protocol import session_update
from .reconnect import Backoff, ConnectBudget
from .status import LinkState, Status

log = logging.getLogger(__name__)

# Error codes after which retrying soon cannot help (§7), normalised.
_FATAL_CODES = frozenset(
    normalise_code(c) for c in ("InvalidApiKey", "AccessDenied", "Arrearage", "ModelNotFound", "insufficient_quota")
)
_AUTH_BACKOFF_S = 300.0
_RATE_LIMIT_BACKOFF_S = 30.0
# Seconds of audio kept while the socket is briefly slow; older audio is dropped, not sent late.
_SEND_QUEUE_CHUNKS = 30
_MAX_FRAME_BYTES = 4 * 1024 * 1024


class SessionRejected(LinkError):
    """The service refused our session.update (bad language, modalities, ...)."""


class RateLimited(LinkError):
    """The service closed us for opening connections too fast."""


class TranslatorSession:
    """Streams the shared capture to one target language and reports captions, reconnecting forever."""

    def __init__(
        self,
        cfg: TranslatorConfig,
        target: str,
        *,
        transcribe_source: bool,
        status: Status,
        on_caption: Callable[[Caption], None],
        budget: ConnectBudget,
        chunk_ms: int = 100,
        backoff: Backoff | None = None,
    ) -> None:
        self.cfg = cfg
        self.target = target
        self.transcribe_source = transcribe_source
        self.status = status
        self.link = status.link(f"translator:{target}")
        self.on_caption = on_caption
        self.budget = budget
        self.chunk_s = chunk_ms / 1000
        self.backoff = backoff or Backoff()
        self._queue: deque[tuple[bytes, float]] = deque(maxlen=_SEND_QUEUE_CHUNKS)
        self._has_audio = asyncio.Event()
        self._ready = False
        self._stop = asyncio.Event()
        self._finished = asyncio.Event()
        self._recent_types: deque[str] = deque(maxlen=80)
        m = status.metrics
        self._m_sent = m.audio_sent_seconds.labels(target)
        self._m_skipped = m.audio_skipped_chunks.labels(target)
        self._m_events = m.translator_events.labels(target)
        self.last_send_latency_s: deque[float] = deque(maxlen=10_000)

    # ---- audio in -------------------------------------------------------------------------------
    def feed(self, chunk: bytes, captured_at: float) -> None:
        """Hand one 16 kHz PCM16 chunk over; dropped (and counted) unless the session is streaming."""
        if not self._ready or self._stop.is_set():
            # Audio from before session.updated is never queued: sent later it gives stale captions.
            self._m_skipped.inc()
            return
        if len(self._queue) == self._queue.maxlen:
            self._m_skipped.inc()
        self._queue.append((chunk, captured_at))
        self._has_audio.set()

    # ---- lifecycle --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, stream, and reconnect with backoff until finish() completes or cancellation."""
        while not self._stop.is_set():
            started = time.monotonic()
            connected_for: float | None = None
            try:
                self.link.set(
                    LinkState.CONNECTING if self.link.state != LinkState.RECONNECTING else LinkState.RECONNECTING
                )
                await self.budget.acquire()
                connected_for = await self._connect_once()
                if self._stop.is_set():
                    break
                raise LinkError("the service closed the connection")
            except asyncio.CancelledError:
                raise
            except AuthError as e:
                delay = _AUTH_BACKOFF_S
                self._fail(LinkState.AUTH_FAILED, f"auth failed: {e}", delay, "auth_failed")
            except SessionRejected as e:
                delay = max(self.backoff.next_delay(), 60.0)
                self._fail(LinkState.FAILED, f"session rejected: {e}", delay, "rejected")
            except RateLimited as e:
                delay = _RATE_LIMIT_BACKOFF_S + self.backoff.next_delay()
                self._fail(LinkState.RECONNECTING, f"rate limited: {e}", delay, "rate_limited")
            except (LinkError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
                lasted = connected_for if connected_for is not None else time.monotonic() - started
                delay = self.backoff.next_delay(lasted)
                self._fail(
                    LinkState.RECONNECTING,
                    f"{type(e).__name__}: {e}" if str(e) else type(e).__name__,
                    delay,
                    "error",
                )
            else:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
        self.link.set(LinkState.STOPPED)
        self._finished.set()

    def _fail(self, state: LinkState, message: str, delay: float, result: str) -> None:
        self._ready = False
        first = self.link.state not in (LinkState.RECONNECTING, LinkState.FAILED, LinkState.AUTH_FAILED)
        self.link.set(state, message)
        self.status.metrics.translator_connects.labels(self.target, result).inc()
        # The first failure is news; repeats of it are noise.
        (log.warning if first or state == LinkState.AUTH_FAILED else log.debug)(
            "translator %s: %s; retrying in %.1f s", self.target, message, delay
        )

    async def finish(self) -> None:
        """Stop taking audio, send what is queued and `session.finish`, wait for `session.finished`."""
        self._stop.set()
        self._has_audio.set()
        try:
            await asyncio.wait_for(self._finished.wait(), self.cfg.finish_timeout_s)
        except TimeoutError:
            log.warning("translator %s: no session.finished within %.1f s", self.target, self.cfg.finish_timeout_s)

    # ---- one connection ------------------------------------------------------------------------
    async def probe(self) -> None:
        """Connect and set the session up once, then close; raises what run() would retry on."""
        async with self._open() as ws:
            await self._setup(ws, SessionInterpreter(self.target, SOURCE))

    @contextlib.asynccontextmanager
    async def _open(self) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        cfg = self.cfg
        url = f"{cfg.url}?model={cfg.model}"
        headers = {"Authorization": f"Bearer {cfg.api_key.get_secret_value()}"}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=cfg.connect_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            try:
                ws = await asyncio.wait_for(
                    http.ws_connect(
                        url,
                        headers=headers,
                        max_msg_size=_MAX_FRAME_BYTES,
                        # The server may never answer our close frame (§4.5): do not wait 10 s for it.
                        timeout=aiohttp.ClientWSTimeout(ws_close=1.5),
                    ),
                    cfg.connect_timeout_s,
                )
            except aiohttp.WSServerHandshakeError as e:
                if e.status in (401, 403):
                    raise AuthError(f"HTTP {e.status} at handshake") from None
                if e.status == 429:
                    raise RateLimited(f"HTTP {e.status} at handshake") from None
                raise LinkError(f"HTTP {e.status} at handshake") from None
            async with ws:
                yield ws

    async def _setup(self, ws: aiohttp.ClientWebSocketResponse, interpreter: SessionInterpreter) -> None:
        """session.created -> our complete session.update -> session.updated (or a rejection)."""
        await self._expect(ws, interpreter, {"session.created"})
        update = session_update(
            self.cfg.dialect,
            target=self.target,
            source_language=self.cfg.source_language,
            transcribe_source=self.transcribe_source,
            voice=self.cfg.voice,
            audio_output=self.cfg.audio_output,
        )
        await ws.send_str(json.dumps(update))
        await self._expect(ws, interpreter, {"session.updated"})

    async def _connect_once(self) -> float:
        """One connection's whole life; returns how long it streamed."""
        async with self._open() as ws:
            interpreter = SessionInterpreter(self.target, SOURCE)
            await self._setup(ws, interpreter)
            self._queue.clear()
            self._ready = True
            connected_at = time.monotonic()
            self.link.set(LinkState.CONNECTED)
            self.status.metrics.translator_connects.labels(self.target, "ok").inc()
            log.info("translator %s: session ready (%s)", self.target, self.cfg.model)
            sender = asyncio.create_task(self._send_audio(ws))
            try:
                await self._receive(ws, interpreter)
            finally:
                self._ready = False
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, ConnectionError):
                    await sender
                # What was on screen but never finalized is the best text there is: keep it.
                self._flush_pending(interpreter)
            return time.monotonic() - connected_at

    async def _expect(
        self, ws: aiohttp.ClientWebSocketResponse, interpreter: SessionInterpreter, wanted: set[str]
    ) -> None:
        """Read until one of `wanted` arrives during setup; an `error` here is a rejection."""
        deadline = time.monotonic() + self.cfg.connect_timeout_s
        while True:
            msg = await asyncio.wait_for(ws.receive(), max(0.01, deadline - time.monotonic()))
            event = self._decode(msg, ws)
            if event is None:
                continue
            if event.get("type") in wanted:
                return
            result = interpreter.feed(event)
            if result.error is not None:
                self._raise_for_error(result.error.code, result.error.message)
                raise SessionRejected(result.error.message or result.error.code)

    async def _send_audio(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            while self._queue:
                chunk, captured_at = self._queue.popleft()
                await ws.send_str(
                    '{"type":"input_audio_buffer.append","audio":"' + base64.b64encode(chunk).decode() + '"}'
                )
                self.last_send_latency_s.append(time.monotonic() - captured_at)
                self._m_sent.inc(len(chunk) / 32_000)
            if self._stop.is_set():
                await ws.send_str('{"type":"session.finish"}')
                return
            self._has_audio.clear()
            await self._has_audio.wait()

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse, interpreter: SessionInterpreter) -> None:
        while True:
            msg = await ws.receive()
            if msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            ):
                code, reason = ws.close_code, str(msg.extra or "")
                log.debug(
                    "translator %s: closed %s %s; recent events: %s",
                    self.target,
                    code,
                    reason,
                    list(self._recent_types),
                )
                if code == 1007 and "rate" in reason.lower():
                    raise RateLimited(reason)
                if self._stop.is_set():
                    return
                raise LinkError(f"connection closed (code {code}{': ' + reason if reason else ''})")
            event = self._decode(msg, ws)
            if event is None:
                continue
            if event.get("type") == "session.finished":
                return
            result = interpreter.feed(event)
            if result.problem:
                self.status.metrics.translator_bad_events.labels(self.target, result.problem).inc()
                log.debug("translator %s: %s event %.80s", self.target, result.problem, event.get("type"))
            if result.usage is not None:
                self.status.metrics.usage_tokens.labels(self.target, "input").inc(result.usage.input_tokens)
                self.status.metrics.usage_tokens.labels(self.target, "output").inc(result.usage.output_tokens)
            if result.error is not None:
                self.status.metrics.translator_errors.labels(self.target, result.error.code or "unknown").inc()
                self.link.last_error = f"{result.error.code}: {result.error.message}"
                log.warning(
                    "translator %s: service error %s: %s",
                    self.target,
                    result.error.code,
                    result.error.message,
                )
                self._raise_for_error(result.error.code, result.error.message)
                if normalise_code(result.error.code) == "commonerror":
                    raise LinkError(result.error.message or "COMMON_ERROR")
            for caption in result.captions:
                self._emit(caption)

    def _raise_for_error(self, code: str, message: str) -> None:
        if normalise_code(code) in _FATAL_CODES:
            raise AuthError(f"{code}: {message}")

    def _decode(self, msg: aiohttp.WSMessage, ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any] | None:
        """A text frame as a JSON object; anything else is counted and skipped."""
        if msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.ERROR,
        ):
            raise LinkError(f"connection closed during setup (code {ws.close_code})")
        self._m_events.inc()
        if msg.type != aiohttp.WSMsgType.TEXT:
            self.status.metrics.translator_bad_events.labels(self.target, "binary").inc()
            return None
        try:
            event = json.loads(msg.data)
        except ValueError:
            self.status.metrics.translator_bad_events.labels(self.target, "invalid_json").inc()
            return None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            self.status.metrics.translator_bad_events.labels(self.target, "malformed").inc()
            return None
        self._recent_types.append(event["type"][:64])
        return event

    def _emit(self, caption: Caption) -> None:
        try:
            self.on_caption(caption)
        except Exception:  # a consumer bug must not kill the session
            log.exception("caption consumer failed")

    def _flush_pending(self, interpreter: SessionInterpreter) -> None:
        for caption in interpreter.pending():
            self._emit(Caption(caption.language, caption.item_id, caption.text, True))
