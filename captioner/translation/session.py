"""One Qwen livetranslate session per target over aiohttp WebSockets: audio in, caption events out."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp

from ..config import SOURCE, TranslatorConfig
from ..errors import AuthError, LinkError, describe
from ..metrics import Metrics, error_code_label
from ..pcm import SPEECH_RMS, rms
from ..reconnect import Backoff, ConnectBudget
from ..redaction import redact
from ..status import LinkState, Status
from . import protocol
from .interpreter import Caption, SessionInterpreter, UsageDelta, normalise_code
from .protocol import (
    AUDIO_EVENT_TYPES,
    SPEECH_STARTED,
    Dialect,
    bills_transcript,
    rate_allows,
    session_update,
    transcription_block,
)

log = logging.getLogger(__name__)

# Error codes after which retrying soon cannot help (§7), normalised.
_FATAL_CODES = frozenset(
    normalise_code(c) for c in ("InvalidApiKey", "AccessDenied", "Arrearage", "ModelNotFound", "insufficient_quota")
)
_AUTH_BACKOFF_S = 300.0
_RATE_LIMIT_BACKOFF_S = 30.0
# Audio kept while the socket is briefly slow (3 s); older audio is dropped, not sent late.
_SEND_QUEUE_CHUNKS = 30
_MAX_FRAME_BYTES = 4 * 1024 * 1024
# Rotation waits this long for a pause so no sentence is split between two sessions.
_ROTATE_PAUSE_WAIT_S = 20.0
_PAUSE_CHUNKS = 4
# Input tokens after which a session is rotated: the context holds 49,152 (§7).
_ROTATE_INPUT_TOKENS = 40_000
# Q3 sends no VAD events, so music or noise that opened the gate looks to the client like speech that went
# unanswered. After each watchdog replacement that did not help (the new session is silent too) the watchdog
# waits twice as long, up to _WATCHDOG_MAX_S: a long stretch of music costs a few reconnects, not one a minute.
_WATCHDOG_MAX_S = 300.0
# A model with VAD events (Q3.5) says when it heard speech; audio it never called speech is no sign of a hang,
# so without a `speech_started` the watchdog waits this many times longer, and at least _UNHEARD_MIN_S (only a
# service hung before its VAD is caught this way).
_UNHEARD_FACTOR = 3.0
_UNHEARD_MIN_S = 60.0
# A session that has answered nothing for this long is rotated before the service closes it (~300 s, §7):
# with the audio gate closed through a long break, nothing is sent, so nothing is answered.
_IDLE_ROTATE_S = 240.0
# The watchdog and rotation need no finer clock; a stop or a closed connection wakes the supervisor at once.
_SUPERVISE_TICK_S = 1.0
_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


_serials = itertools.count(1)


class SessionRejected(LinkError):
    """The service refused our session.update (bad language, modalities, ...)."""


class RateLimited(LinkError):
    """The service closed us for opening connections too fast."""


class Stalled(LinkError):
    """Speech was sent but the service stopped answering."""


class ModelNotFound(LinkError):
    """The service does not know the model (handshake 404): retrying cannot help until the config changes."""


class VoiceRejected(SessionRejected):
    """The service refused the voice: retrying the same session.update cannot help."""


class IdleClosed(LinkError):
    """The service closed a session that had generated no response for minutes (§7 idle timeout)."""


class _Meters:
    """One target's counters that its connections update, and the event types it received last (for logs)."""

    def __init__(self, metrics: Metrics, target: str) -> None:
        self.target = target
        self.sent_s = metrics.audio_sent_seconds.labels(target)
        self.skipped = metrics.audio_skipped_chunks.labels(target)
        self.events = metrics.translator_events.labels(target)
        self.latency = metrics.capture_to_wire_seconds.labels(target)
        self.trace = metrics.trace
        self.trace_key = f"capture_to_wire:{target}"
        self.images = metrics.vision_images.labels(target)
        self.image_bytes = metrics.vision_image_bytes.labels(target)
        self._bad_events = metrics.translator_bad_events
        self.recent_types: deque[str] = deque(maxlen=80)

    def decode(self, msg: aiohttp.WSMessage) -> dict[str, Any] | None:
        """A text frame as a JSON object; anything else is counted and skipped."""
        self.events.inc()
        if msg.type != aiohttp.WSMsgType.TEXT:
            self._bad_events.labels(self.target, "binary").inc()
            return None
        try:
            event = json.loads(msg.data)
        except (ValueError, RecursionError):
            self._bad_events.labels(self.target, "invalid_json").inc()
            return None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            self._bad_events.labels(self.target, "malformed").inc()
            return None
        self.recent_types.append(event["type"][:64])
        return event


class _Connection:
    """One live WebSocket session: its send queue, interpreter and sender/receiver tasks.

    It knows its owner only through what it is given: the dialect, the meters, and two callbacks, `on_event`
    for each server event it does not handle itself and `on_caption` for the captions left pending at its end.
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
        *,
        dialect: Dialect,
        meters: _Meters,
        usage_mode: str | None,
        on_event: Callable[[_Connection, dict[str, Any], float], None],
        on_caption: Callable[[Caption], None],
    ) -> None:
        self.http = http
        self.ws = ws
        self.dialect = dialect
        self.meters = meters
        self.target = meters.target
        self.on_event = on_event
        self.on_caption = on_caption
        self.interpreter = SessionInterpreter(self.target, SOURCE)
        # How the service reports usage does not change between connections: a new one starts knowing it.
        if usage_mode is not None:
            self.interpreter.usage.mode = usage_mode
        self.queue: deque[tuple[bytes, float, bool]] = deque(maxlen=_SEND_QUEUE_CHUNKS)
        self.has_audio = asyncio.Event()
        self.finishing = False
        self.opened_at = time.monotonic()
        self.audio_s = 0.0
        # When speech was first sent after the last server event; None while the service keeps up.
        self.unanswered_since: float | None = None
        # Seconds of speech-like audio sent since the last server event, and whether the service's VAD said it
        # heard speech that it has not answered yet (Q3.5 `speech_started`).
        self.unanswered_speech_s = 0.0
        self.speech_heard_at: float | None = None
        # Audio seconds sent when the last usage report came: the context grows by what was sent since.
        self.audio_s_at_usage = 0.0
        self.last_event_at = self.opened_at
        self.task: asyncio.Task[None] | None = None
        self.serial = next(_serials)
        # Screenshots waiting for the sender, as ready-made events with their JPEG size (send_image keeps the rate).
        self.images: deque[tuple[str, int]] = deque(maxlen=4)

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"translator:{self.target}:conn")

    def feed(self, chunk: bytes, captured_at: float, speech: bool) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.meters.skipped.inc()
        self.queue.append((chunk, captured_at, speech))
        self.has_audio.set()

    async def finish(self, timeout_s: float) -> None:
        """Send what is queued and `session.finish`; wait (bounded) for `session.finished`, then close."""
        self.finishing = True
        self.has_audio.set()
        assert self.task is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout_s)
        except TimeoutError:
            log.warning("translator %s: no session.finished within %.1f s", self.target, timeout_s)
        except Exception as e:  # noqa: BLE001 - the connection is over either way
            log.debug("translator %s: connection ended while finishing: %s", self.target, e)
        await self.close()

    async def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        await self.ws.close()
        await self.http.close()

    async def _run(self) -> None:
        sender = asyncio.create_task(self._send())
        try:
            await self._receive()
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, ConnectionError):
                await sender
            # What was on screen but never finalized is the best text there is: keep it.
            for caption in self.interpreter.pending():
                self.on_caption(Caption(caption.language, caption.item_id, caption.text, True))

    async def _send(self) -> None:
        meters = self.meters
        while True:
            while self.queue:
                chunk, captured_at, speech = self.queue.popleft()
                await self.ws.send_str(protocol.audio_append(chunk))
                now = time.monotonic()
                meters.latency.observe(now - captured_at)
                if meters.trace is not None:
                    meters.trace(meters.trace_key, now - captured_at)
                seconds = len(chunk) / protocol.INPUT_BYTES_PER_S
                self.audio_s += seconds
                self.interpreter.audio_tokens_sent = self.audio_s * self.dialect.input_tokens_per_s
                meters.sent_s.inc(seconds)
                if speech:
                    self.unanswered_speech_s += seconds
                    if self.unanswered_since is None:
                        self.unanswered_since = now
            if self.images:
                # After the audio queued before it: the service wants audio before any image (§4.3).
                frame, size = self.images.popleft()
                await self.ws.send_str(frame)
                meters.images.inc()
                meters.image_bytes.inc(size)
                continue  # audio queued meanwhile goes first
            if self.finishing:
                await self.ws.send_str(protocol.SESSION_FINISH)
                return
            self.has_audio.clear()
            await self.has_audio.wait()

    async def _receive(self) -> None:
        while True:
            msg = await self.ws.receive()
            received = time.perf_counter()
            if msg.type in _CLOSED:
                code, reason = self.ws.close_code, str(msg.extra or "")
                log.debug(
                    "translator %s: closed %s %s; recent events: %s",
                    self.target,
                    code,
                    reason,
                    list(self.meters.recent_types),
                )
                if code == 1007 and "rate" in reason.lower():
                    raise RateLimited(reason)
                raise LinkError(f"connection closed (code {code}{': ' + reason if reason else ''})")
            self.last_event_at = time.monotonic()
            event = self.meters.decode(msg)
            if event is None:
                continue
            self.unanswered_since, self.unanswered_speech_s = None, 0.0
            if event["type"] == SPEECH_STARTED:
                self.speech_heard_at = self.last_event_at
            elif self.speech_heard_at is not None and event["type"].startswith(("response.", "conversation.")):
                self.speech_heard_at = None
            if event["type"] == self.dialect.session_finished:
                return
            self.on_event(self, event, received)


class TranslatorSession:
    """Streams the shared capture to one target language and reports captions, reconnecting forever.

    A connection is rotated before the service's limits (120 min, the context window) and replaced when
    speech goes unanswered for `watchdog_s`; the switch waits for a pause, and the old connection is
    finished, not cut, so no utterance is lost.
    """

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
        on_usage: Callable[[str, UsageDelta], None] | None = None,
        audio_output: bool | None = None,
        voice: str | None = None,
        on_audio: Callable[[str, dict[str, Any]], None] | None = None,
        pin_source: bool = True,
    ) -> None:
        self.cfg = cfg
        # Whether this session is told the source language where that bills a transcript (qwen3.5).
        self.pin_source = pin_source
        self.on_usage = on_usage
        # Per target: only a language that is played asks for (costly) audio; None = translator.audio_output.
        self.audio_output = cfg.audio_output if audio_output is None else audio_output
        self.voice = voice or cfg.voice
        # Gets response.audio.delta / .done and response.done events (voice playback), before the captions.
        self.on_audio = on_audio
        self.target = target
        self.transcribe_source = transcribe_source
        self.status = status
        self.link = status.link(f"translator:{target}")
        self.on_caption = on_caption
        self.budget = budget
        self.chunk_s = chunk_ms / 1000
        self.backoff = backoff or Backoff()
        self.rotate_after_s = cfg.rotate_after_s
        self.rotate_after_tokens = _ROTATE_INPUT_TOKENS
        self.idle_rotate_s = _IDLE_ROTATE_S
        self.watchdog_s = cfg.watchdog_s
        # Watchdog replacements in a row that brought no answer: each doubles the next wait (music, not a hang).
        self._fruitless_watchdogs = 0
        self._active: _Connection | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._finished = asyncio.Event()
        self._quiet_chunks = 0
        self._meters = _Meters(status.metrics, target)
        self._image_times: deque[float] = deque(maxlen=8)
        # What the service changed or dropped of what we asked, reported once per difference (log and /status).
        self._echo_warned: set[str] = set()
        self.link.info.update(self.billing())

    def billing(self) -> dict[str, Any]:
        """What this session bills beyond the audio, and how its usage figures read (for /status)."""
        block = transcription_block(
            self.cfg.dialect,
            self.cfg.source_language,
            transcribe_source=self.transcribe_source,
            pin_source=self.pin_source,
        )
        billed = bills_transcript(self.cfg.dialect, block)
        told = isinstance(block, dict) and "language" in block
        if not told and self.cfg.source_language == "en" and not self.cfg.dialect.source_autodetect:
            told = True  # qwen3 assumes English
        return {
            "source_transcript": "shown" if self.transcribe_source else ("billed, not shown" if billed else "off"),
            "source_language": self.cfg.source_language if told else "auto-detected",
            "usage_reporting": "unknown",
        }

    # ---- audio in -------------------------------------------------------------------------------
    def feed(self, chunk: bytes, captured_at: float, level: float | None = None) -> None:
        """Hand one 16 kHz PCM16 chunk over; dropped (and counted) unless a session is streaming."""
        speech = (rms(chunk) if level is None else level) >= SPEECH_RMS
        self._quiet_chunks = 0 if speech else self._quiet_chunks + 1
        conn = self._active
        if conn is None or conn.finishing or self._stop.is_set():
            # Audio from before session.updated is never queued: sent later it gives stale captions.
            self._meters.skipped.inc()
            return
        conn.feed(chunk, captured_at, speech)

    # ---- images in (visual context, §4.3) ----------------------------------------------------------
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
        conn.images.append((protocol.image_append(jpeg), len(jpeg)))
        conn.has_audio.set()  # wakes the sender
        self._image_times.append(now)
        return True

    def feed_gap(self) -> None:
        """A chunk captured but kept back (audio gate closed, audio held): nothing in flight, so a pause."""
        self._quiet_chunks += 1

    @property
    def connected(self) -> bool:
        return self._active is not None

    # ---- lifecycle --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, stream, rotate, and reconnect with backoff until finish() or cancellation."""
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    await self.budget.acquire()
                    conn = await self._connect()
                    self._activate(conn)
                    lasted = await self._supervise(conn)
                    if self._stop.is_set():
                        break
                    raise LinkError(f"connection ended after {lasted:.0f} s")
                except asyncio.CancelledError:
                    raise
                except AuthError as e:
                    delay = _AUTH_BACKOFF_S
                    self._fail(LinkState.AUTH_FAILED, f"auth failed: {e}", delay, "auth_failed")
                except (ModelNotFound, VoiceRejected) as e:
                    # The same request can only fail the same way: stop this target until a reload changes it.
                    self._fail(LinkState.FAILED, f"{e}; not retrying until the config changes (SIGHUP)", 0, "fatal")
                    await self._stop.wait()
                    break
                except SessionRejected as e:
                    delay = max(self.backoff.next_delay(), 60.0)
                    self._fail(LinkState.FAILED, f"session rejected: {e}", delay, "rejected")
                except RateLimited as e:
                    delay = _RATE_LIMIT_BACKOFF_S + self.backoff.next_delay()
                    self._fail(LinkState.RECONNECTING, f"rate limited: {e}", delay, "rate_limited")
                except IdleClosed as e:
                    # Expected after a long silence: reconnect at once and quietly, unless it keeps happening.
                    lasted = time.monotonic() - started
                    delay = 0.0 if lasted >= self.backoff.healthy_after_s else self.backoff.next_delay(lasted)
                    self.link.set(LinkState.RECONNECTING)
                    self.status.metrics.translator_connects.labels(self.target, "idle_closed").inc()
                    log.info("translator %s: the service closed the idle session (%s); reconnecting", self.target, e)
                except (LinkError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
                    delay = self.backoff.next_delay(time.monotonic() - started)
                    self._fail(LinkState.RECONNECTING, describe(e), delay, "error")
                except Exception as e:
                    # A bug must cost one connection, never the target for the rest of the stream.
                    log.exception("translator %s: unexpected error", self.target)
                    delay = self.backoff.next_delay(time.monotonic() - started)
                    self._fail(LinkState.RECONNECTING, describe(e), delay, "error")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
        finally:
            if self._active is not None:
                await self._active.close()
                self._active = None
            self.link.set(LinkState.STOPPED)
            self._finished.set()

    def _activate(self, conn: _Connection) -> None:
        self._active = conn
        conn.start()
        self.link.set(LinkState.CONNECTED)
        self.status.metrics.translator_connects.labels(self.target, "ok").inc()
        log.info("translator %s: session ready (%s)", self.target, self.cfg.model)

    async def _supervise(self, conn: _Connection) -> float:
        """Watch the active connection: rotate it when due, replace it when stalled, finish it on stop."""
        next_rotation_try = 0.0
        stopping = asyncio.create_task(self._stop.wait())
        try:
            while True:
                assert conn.task is not None
                done, _ = await asyncio.wait(
                    {conn.task, stopping}, timeout=_SUPERVISE_TICK_S, return_when=asyncio.FIRST_COMPLETED
                )
                lasted = time.monotonic() - conn.opened_at
                if conn.task in done:
                    self._active = None
                    await conn.close()
                    conn.task.result()  # raises why it ended
                    return lasted
                if self._stop.is_set():
                    self._active = None
                    await conn.finish(self.cfg.finish_timeout_s)
                    return lasted
                now = time.monotonic()
                if (stalled := self._stalled(conn, now)) is not None:
                    self.status.metrics.translator_rotations.labels(self.target, "watchdog").inc()
                    self._fruitless_watchdogs += 1
                    self._active = None
                    await conn.close()
                    raise Stalled(stalled)
                reason = self._rotation_due(conn)
                if reason and now >= next_rotation_try:
                    new = await self._rotate(conn, reason)
                    if new is None:
                        next_rotation_try = now + 60.0
                    else:
                        conn = new
        finally:
            stopping.cancel()

    def _stalled(self, conn: _Connection, now: float) -> str | None:
        """Why the connection counts as hung, or None.

        Speech the service heard (Q3.5 `speech_started`) and never answered is a hang after watchdog_s. Otherwise
        it may only be sound the service does not take for speech (music, noise): Q3 needs several seconds of
        it unanswered, a model with VAD events waits longer still, and each replacement that changed nothing
        doubles the wait, so a long stretch of music costs a few reconnects, not one every watchdog_s.
        """
        wait_s = min(self.watchdog_s * 2**self._fruitless_watchdogs, max(self.watchdog_s, _WATCHDOG_MAX_S))
        if conn.speech_heard_at is not None and now - conn.speech_heard_at > wait_s:
            return f"speech heard by the service went unanswered for {wait_s:.0f} s"
        if conn.unanswered_since is None or conn.unanswered_speech_s < self.cfg.watchdog_speech_s:
            return None
        if self.cfg.dialect.vad_events:
            wait_s = max(wait_s * _UNHEARD_FACTOR, _UNHEARD_MIN_S)
        if now - conn.unanswered_since > wait_s:
            return f"no events for {wait_s:.0f} s while {conn.unanswered_speech_s:.0f} s of speech was sent"
        return None

    def _context_tokens(self, conn: _Connection) -> float:
        """Input tokens in the session's context: as the service reported them, plus the audio sent since."""
        rate = self.cfg.dialect.input_tokens_per_s
        reported = conn.interpreter.usage.input_tokens
        if reported == 0:
            return conn.audio_s * rate  # no usage yet: the estimate is all there is
        return reported + (conn.audio_s - conn.audio_s_at_usage) * rate

    def _rotation_due(self, conn: _Connection) -> str | None:
        if time.monotonic() - conn.opened_at >= self.rotate_after_s:
            return "age"
        if self._context_tokens(conn) >= self.rotate_after_tokens:
            return "context"
        if time.monotonic() - conn.last_event_at >= self.idle_rotate_s:
            return "idle"
        return None

    async def _rotate(self, old: _Connection, reason: str) -> _Connection | None:
        """Make before break: open the next session, switch at a pause, finish the old one in the background."""
        try:
            await self.budget.acquire()
            new = await self._connect()
        except (LinkError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
            log.warning("translator %s: rotation failed (%s); keeping the current session", self.target, describe(e))
            return None
        assert old.task is not None
        deadline = time.monotonic() + _ROTATE_PAUSE_WAIT_S
        while self._quiet_chunks < _PAUSE_CHUNKS and time.monotonic() < deadline and not old.task.done():
            await asyncio.sleep(self.chunk_s)
        self._active = new
        new.start()
        self.status.metrics.translator_rotations.labels(self.target, reason).inc()
        # Idle rotations repeat every few minutes through a long break: not news.
        (log.debug if reason == "idle" else log.info)("translator %s: rotated session (%s)", self.target, reason)
        retire = asyncio.create_task(old.finish(self.cfg.finish_timeout_s + 5))
        self._retiring.add(retire)
        retire.add_done_callback(self._retiring.discard)
        return new

    def _fail(self, state: LinkState, message: str, delay: float, result: str) -> None:
        first = self.link.state not in (LinkState.RECONNECTING, LinkState.FAILED, LinkState.AUTH_FAILED)
        self.link.set(state, message)
        self.status.metrics.translator_connects.labels(self.target, result).inc()
        # The first failure is news; repeats of it are noise.
        (log.warning if first or state == LinkState.AUTH_FAILED else log.debug)(
            "translator %s: %s; retrying in %.1f s", self.target, message, delay
        )

    async def finish(self) -> None:
        """Stop taking audio, send what is queued and `session.finish`, wait for the last captions."""
        self._stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finished.wait(), self.cfg.finish_timeout_s + 1)
        if self._retiring:
            await asyncio.wait(self._retiring, timeout=self.cfg.finish_timeout_s)

    # ---- connecting ----------------------------------------------------------------------------
    async def probe(self) -> None:
        """Connect and set the session up once, then close; raises what run() would retry on."""
        conn = await self._connect()
        await conn.close()

    async def _connect(self) -> _Connection:
        """Open the socket and set the session up; the caller starts streaming."""
        cfg = self.cfg
        url = f"{cfg.url}?model={cfg.model}"
        headers = {"Authorization": f"Bearer {cfg.api_key.get_secret_value()}"}
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=cfg.connect_timeout_s))
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
            await http.close()
            if e.status in (401, 403):
                raise AuthError(f"HTTP {e.status} at handshake") from None
            if e.status == 429:
                raise RateLimited(f"HTTP {e.status} at handshake") from None
            if e.status == 404:
                raise ModelNotFound(f"model not found: the service does not know {cfg.model!r} (HTTP 404)") from None
            raise LinkError(f"HTTP {e.status} at handshake") from None
        except BaseException:
            await http.close()
            raise
        conn = _Connection(
            http,
            ws,
            dialect=cfg.dialect,
            meters=self._meters,
            usage_mode=self.link.info.get("usage_reporting"),
            on_event=self._handle,
            on_caption=self._emit,
        )
        try:
            await self._setup(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _setup(self, conn: _Connection) -> None:
        """session.created -> our complete session.update -> session.updated (or a rejection)."""
        dialect = self.cfg.dialect
        await self._expect(conn, dialect.session_created)
        update = session_update(
            dialect,
            target=self.target,
            source_language=self.cfg.source_language,
            transcribe_source=self.transcribe_source,
            voice=self.voice,
            audio_output=self.audio_output,
            phrases=self.cfg.glossary.get(self.target),
            pin_source=self.pin_source,
        )
        await conn.ws.send_str(protocol.encode(update))
        echo = await self._expect(conn, dialect.session_updated)
        self._compare_echo(update["session"], echo.get("session"))  # type: ignore[arg-type]

    @property
    def _voice_name(self) -> str:
        return self.voice or self.cfg.dialect.default_voice

    def _compare_echo(self, asked: dict[str, Any], echo: Any) -> None:
        """Warn once per difference when session.updated does not hold what session.update asked for (§12.10)."""
        if not isinstance(echo, dict):
            return
        checks: list[tuple[str, Any, Any]] = [
            ("translation.language", asked["translation"]["language"], (echo.get("translation") or {}).get("language")),
            ("modalities", asked["modalities"], echo.get("modalities")),
            ("voice", asked["voice"], echo.get("voice")),
        ]
        if "input_audio_transcription" in asked:
            want, got = asked["input_audio_transcription"], echo.get("input_audio_transcription", "missing")
            if want is None or got is None or not isinstance(got, dict):
                checks.append(("input_audio_transcription", want, got))
            else:
                checks += [(f"input_audio_transcription.{k}", v, got.get(k)) for k, v in want.items()]
        for field, want, got in checks:
            if want == got or field in self._echo_warned:
                continue
            self._echo_warned.add(field)
            # The echo is the service's text: secrets are masked as in every other outside text.
            message = redact(f"the service changed {field}: asked {json.dumps(want)}, got {json.dumps(got)}")
            self.link.info.setdefault("session_warnings", []).append(message)
            log.warning("translator %s: %s", self.target, message)

    async def _expect(self, conn: _Connection, wanted: str) -> dict[str, Any]:
        """Read until `wanted` arrives during setup; an `error` here is a rejection."""
        deadline = time.monotonic() + self.cfg.connect_timeout_s
        while True:
            msg = await asyncio.wait_for(conn.ws.receive(), max(0.01, deadline - time.monotonic()))
            if msg.type in _CLOSED:
                code, reason = conn.ws.close_code, str(msg.extra or "")
                if code == 1007 and "rate" in reason.lower():
                    raise RateLimited(reason)
                if "voice" in reason.lower():  # seen: 1011 "... Voice 'Chelsie' is not supported." (§7)
                    raise VoiceRejected(f"voice {self._voice_name!r} refused: {reason[:200]}")
                raise LinkError(f"connection closed during setup (code {code})")
            event = self._meters.decode(msg)
            if event is None:
                continue
            if event.get("type") == wanted:
                return event
            result = conn.interpreter.feed(event)
            if result.error is not None:
                self._raise_for_error(result.error.code, result.error.message)
                if "voice" in f"{result.error.param} {result.error.message}".lower():
                    raise VoiceRejected(
                        f"voice {self._voice_name!r} refused: {result.error.message or result.error.code}"
                    )
                raise SessionRejected(result.error.message or result.error.code)

    # ---- events ----------------------------------------------------------------------------------
    def _handle(self, conn: _Connection, event: dict[str, Any], received: float = 0.0) -> None:
        if self.on_audio is not None and event["type"] in AUDIO_EVENT_TYPES:
            try:
                self.on_audio(self.target, event)
            except Exception:  # a consumer bug must not kill the session
                log.exception("voice consumer failed")
        result = conn.interpreter.feed(event)
        if event["type"].startswith("response.") or result.captions:
            self._fruitless_watchdogs = 0  # the service answers: replacing sessions was right, or not needed
        m = self.status.metrics
        if result.problem:
            m.translator_bad_events.labels(self.target, result.problem).inc()
            log.debug("translator %s: %s event %.80s", self.target, result.problem, event.get("type"))
        if result.usage is not None:
            conn.audio_s_at_usage = conn.audio_s
            self.link.info["usage_reporting"] = conn.interpreter.usage.mode
            m.usage_tokens.labels(self.target, "input").inc(result.usage.input_tokens)
            m.usage_tokens.labels(self.target, "output").inc(result.usage.output_tokens)
            if self.on_usage is not None:
                self.on_usage(self.target, result.usage)
        if result.error is not None:
            m.translator_errors.labels(self.target, error_code_label(result.error.code)).inc()
            if _is_idle_close(result.error.code, result.error.message):
                raise IdleClosed(result.error.message or result.error.code)
            self.link.last_error = f"{result.error.code}: {result.error.message}"
            log.warning("translator %s: service error %s: %s", self.target, result.error.code, result.error.message)
            self._raise_for_error(result.error.code, result.error.message)
            if normalise_code(result.error.code) == "commonerror":
                raise LinkError(result.error.message or "COMMON_ERROR")
        for caption in result.captions:
            self._emit(dataclasses.replace(caption, received_at=received))

    def _raise_for_error(self, code: str, message: str) -> None:
        if normalise_code(code) in _FATAL_CODES:
            raise AuthError(f"{code}: {message}")

    def _emit(self, caption: Caption) -> None:
        if caption.language == SOURCE and not self.transcribe_source:
            # Another session shows the source (or nobody asked for it): one sentence, one caption.
            return
        try:
            self.on_caption(caption)
        except Exception:  # a consumer bug must not kill the session
            log.exception("caption consumer failed")


def _is_idle_close(code: str, message: str) -> bool:
    # Seen as code response_idle_timeout, or only as the message text (§7).
    return normalise_code(code) == "responseidletimeout" or "no response was generated" in message.lower()
