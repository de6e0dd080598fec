"""One live translator WebSocket: its send queue and sender/receiver tasks, and the meters it updates."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from .. import eager
from ..config import SOURCE, TranslatorConfig
from ..errors import AuthError, LinkError
from . import policy, protocol
from .failures import RateLimited, SessionRejected, VoiceRejected
from .handshake import open_socket
from .interpreter import Caption, SessionInterpreter
from .meters import CLEAR, COMMIT, Meters
from .protocol import SPEECH_STARTED, Dialect
from .timeline import SpokenTimeline

log = logging.getLogger(__name__)

# Items whose start time is kept: more than are ever on screen or in flight.
_SPOKEN_ITEMS = 512
# Audio kept while the socket is briefly slow (3 s); older audio is dropped, not sent late.
SEND_QUEUE_CHUNKS = 30
# Client turns: the longest sentence a new connection is given again (replay): a minute of 100 ms chunks.
REPLAY_CHUNKS = 600
# Frames that mean the socket is gone, in setup (the session's handshake) as while streaming.
CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)

# Each connection gets its own number: visual context starts again on a new one.
_serials = itertools.count(1)


async def connect(
    cfg: TranslatorConfig,
    update: dict[str, object],
    *,
    voice: str,
    meters: Meters,
    usage_mode: str | None,
    on_event: Callable[[Connection, dict[str, Any], float], bool],
    on_caption: Callable[[Caption], None],
    manual: bool = False,
) -> tuple[Connection, dict[str, Any]]:
    """Open the socket and set the session up: session.created -> `update` -> session.updated (returned).

    `voice` is the one `update` asks for, named in a refusal; the connection is closed if setup fails.
    `manual`: `update` asks for client turns (the connection commits the sentences).
    """
    key = cfg.api_key.get_secret_value()
    http, ws = await open_socket(cfg.endpoint, cfg.model, key, cfg.connect_timeout_s, cfg.endpoint_headers)
    conn = Connection(
        http, ws, dialect=cfg.dialect, meters=meters, usage_mode=usage_mode, on_event=on_event, on_caption=on_caption
    )
    conn.manual = manual
    conn.interpreter.skip_fill = cfg.skip_shows_source
    conn.interpreter.estimate_usage = cfg.dialect.usage_optional
    try:
        await conn.expect(cfg.dialect.session_created, cfg.connect_timeout_s, voice)
        await ws.send_str(protocol.encode(update))
        echo = await conn.expect(cfg.dialect.session_updated, cfg.connect_timeout_s, voice)
    except BaseException:
        await conn.close()
        raise
    return conn, echo


def raise_if_fatal(code: str, message: str) -> None:
    """A service error after which retrying soon cannot help is an AuthError (a long back-off)."""
    if policy.is_fatal(code):
        raise AuthError(f"{code}: {message}")


class Connection:
    """One live WebSocket session: its send queue, interpreter and sender/receiver tasks.

    It knows its owner only through what it is given: the dialect, the meters, and two callbacks, `on_event`
    for each server event it does not handle itself (True when the event brought a final caption) and
    `on_caption` for the captions left pending at its end.
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
        *,
        dialect: Dialect,
        meters: Meters,
        usage_mode: str | None,
        on_event: Callable[[Connection, dict[str, Any], float], bool],
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
        # Audio chunks (at most SEND_QUEUE_CHUNKS) and the sentence ends between them (COMMIT, CLEAR); a chunk is
        # (pcm, captured_at, speech, held).
        self.queue: deque[tuple[bytes, float, bool, bool] | str] = deque()
        # A sentence begun on another connection (client turns), sent before the queue: apart from it, so the
        # queue's 3 s limit drops the oldest live audio, never the start of the replayed sentence.
        self._replay: deque[tuple[bytes, float, bool, bool]] = deque()
        self._queued_audio = 0
        # Client turns: the client commits each sentence; audio sent since the last commit or clear, and its speech.
        self.manual = False
        self._uncommitted = False
        self._turn_speech_s = 0.0
        self.has_audio = asyncio.Event()
        # The sender waits for audio (feed() may then send a chunk itself), and a send feed() began that waits on
        # a backed-up socket (everything after it waits too).
        self._idle = False
        self._sending: asyncio.Task[None] | None = None
        self.finishing = False
        self.opened_at = time.monotonic()
        self.audio_s = 0.0
        # When speech was first sent after the last server event; None while the service keeps up.
        self.unanswered_since: float | None = None
        # Seconds of speech-like audio sent since the last server event, and whether the service's VAD said it
        # heard speech that it has not answered yet (Q3.5 `speech_started`).
        self.unanswered_speech_s = 0.0
        self.speech_heard_at: float | None = None
        # When the words of each caption began (wall clock), from the audio this connection sent.
        self.timeline = SpokenTimeline()
        self._spoken: OrderedDict[tuple[str, str], float] = OrderedDict()
        # Audio seconds sent when the last usage report came: the context grows by what was sent since.
        self.audio_s_at_usage = 0.0
        self.last_event_at = self.opened_at
        self.task: asyncio.Task[None] | None = None
        self.serial = next(_serials)
        # Screenshots waiting for the sender, as ready-made events with their JPEG size (send_image keeps the rate).
        self.images: deque[tuple[str, int]] = deque(maxlen=4)

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"translator:{self.target}:conn")

    def feed(self, chunk: bytes, captured_at: float, speech: bool, held: bool = False) -> None:
        entry = (chunk, captured_at, speech, held)
        if self._idle and not (self.queue or self._replay or self.images or self.finishing) and self._caught_up():
            # Nothing before it: sent now, in the capture's own step, not by waking the sender (#21).
            try:
                self._sending = eager.start(self.ws.send_str(protocol.audio_append(chunk)))
            except Exception:  # noqa: BLE001 - the socket is closing: queued below, the sender meets the same error
                pass
            else:
                self._sent(entry, queued=False)
                return
        if self._queued_audio >= SEND_QUEUE_CHUNKS:
            # The oldest audio goes; a sentence end never does (it would leave the sentence uncommitted).
            self.meters.skipped.inc()
            self.queue.remove(next(e for e in self.queue if isinstance(e, tuple)))
            self._queued_audio -= 1
        self.queue.append(entry)
        self._queued_audio += 1
        self.has_audio.set()

    def _caught_up(self) -> bool:
        """No send still waiting on a backed-up socket (the next must go after it)."""
        if self._sending is not None and self._sending.done():
            self._sending = None
        return self._sending is None

    def replay(self, chunks: Iterable[tuple[bytes, float, bool, bool]]) -> None:
        """Before any new audio: a sentence begun on another connection (client turns), beyond the queue's limit."""
        self._replay.extend(chunks)
        self.has_audio.set()

    def end_turn(self, commit: bool) -> None:
        """After the audio queued so far: commit the sentence (translate it) or clear it (no speech in it)."""
        self.queue.append(COMMIT if commit else CLEAR)
        self.has_audio.set()

    def queue_image(self, jpeg: bytes) -> None:
        """Send one JPEG after the audio queued before it (the caller keeps the service's image rate)."""
        self.images.append((protocol.image_append(jpeg), len(jpeg)))
        self.has_audio.set()  # wakes the sender

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
        if self._sending is not None:
            self._sending.cancel()
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        await self.ws.close()
        await self.http.close()

    async def expect(self, wanted: str, timeout_s: float, voice: str) -> dict[str, Any]:
        """Read until `wanted` arrives during setup; an `error` here is a rejection (`voice` names what we asked)."""
        deadline = time.monotonic() + timeout_s
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), max(0.01, deadline - time.monotonic()))
            if msg.type in CLOSED:
                code, reason = self.ws.close_code, str(msg.extra or "")
                if code == 1007 and "rate" in reason.lower():
                    raise RateLimited(reason)
                if "voice" in reason.lower():  # seen: 1011 "... Voice 'Chelsie' is not supported." (§7)
                    raise VoiceRejected(f"voice {voice!r} refused: {reason[:200]}")
                raise LinkError(f"connection closed during setup (code {code})")
            event = self.meters.decode(msg)
            if event is None:
                continue
            if event.get("type") == wanted:
                return event
            result = self.interpreter.feed(event)
            if result.error is not None:
                raise_if_fatal(result.error.code, result.error.message)
                if "voice" in f"{result.error.param} {result.error.message}".lower():
                    raise VoiceRejected(f"voice {voice!r} refused: {result.error.message or result.error.code}")
                raise SessionRejected(result.error.message or result.error.code)

    def spoken_at(self, caption: Caption) -> float:
        """When the words of `caption` began (time.time()), or 0 when this connection cannot tell."""
        key = (caption.language, caption.item_id)
        if key not in self._spoken:
            self._spoken[key] = self.timeline.utterance_start() or 0.0
            while len(self._spoken) > _SPOKEN_ITEMS:
                self._spoken.popitem(last=False)
        return self._spoken[key]

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
                final = dataclasses.replace(caption, final=True)
                self.on_caption(dataclasses.replace(final, spoken_at=self.spoken_at(final)))

    async def _send(self) -> None:
        meters = self.meters
        while True:
            if self._sending is not None:  # a send begun by feed() on a backed-up socket goes first
                await self._sending
                self._sending = None
            while self._replay or self.queue:
                replayed = bool(self._replay)
                entry = self._replay.popleft() if replayed else self.queue.popleft()
                if isinstance(entry, str):
                    await self._end_turn(entry == COMMIT)
                    continue
                await self.ws.send_str(protocol.audio_append(entry[0]))
                self._sent(entry, queued=not replayed)
            if self.images:
                # After the audio queued before it: the service wants audio before any image (§4.3).
                frame, size = self.images.popleft()
                await self.ws.send_str(frame)
                meters.images.inc()
                meters.image_bytes.inc(size)
                continue  # audio queued meanwhile goes first
            if self.finishing:
                if self._uncommitted:
                    # Uncommitted audio is not translated at the finish: a sentence the stop or a rotation cut
                    # off is committed, or cleared when it held no speech.
                    await self._end_turn(self._turn_speech_s > 0)
                await self.ws.send_str(protocol.SESSION_FINISH)
                return
            self.has_audio.clear()
            self._idle = True
            try:
                await self.has_audio.wait()
            finally:
                self._idle = False

    def _sent(self, entry: tuple[bytes, float, bool, bool], queued: bool) -> None:
        """What a chunk's send counts (it is on the socket now); `queued`: it came from the send queue."""
        chunk, captured_at, speech, held = entry
        meters = self.meters
        if queued:
            self._queued_audio -= 1
        now = time.monotonic()
        meters.latency.observe(now - captured_at)
        if meters.trace is not None:
            meters.trace(meters.trace_key_held if held else meters.trace_key, now - captured_at)
        seconds = len(chunk) / protocol.INPUT_BYTES_PER_S
        self.timeline.sent(time.time() - (now - captured_at), seconds, speech)
        self.audio_s += seconds
        self.interpreter.audio_tokens_sent = self.audio_s * self.dialect.input_tokens_per_s
        meters.sent_s.inc(seconds)
        if self.manual:
            # Nothing is answered before the commit: the watchdog counts from there (_end_turn).
            self._uncommitted = True
            self._turn_speech_s += seconds if speech else 0.0
        elif speech:
            self.unanswered_speech_s += seconds
            if self.unanswered_since is None:
                self.unanswered_since = now

    async def _end_turn(self, commit: bool) -> None:
        """Send a sentence end; none when this connection has no audio of the sentence (it joined later)."""
        if not self._uncommitted:
            self.meters.turns["skipped"].inc()
            return  # the service refuses to commit an empty buffer (§4.4)
        self._uncommitted = False
        await self.ws.send_str(protocol.AUDIO_COMMIT if commit else protocol.AUDIO_CLEAR)
        self.meters.turns[COMMIT if commit else CLEAR].inc()
        if commit and self.speech_heard_at is None:
            # The service was handed a sentence and owes its answer, as after its own `speech_started`.
            self.speech_heard_at = time.monotonic()
        self._turn_speech_s = 0.0

    async def _receive(self) -> None:
        while True:
            msg = await self.ws.receive()
            received = time.perf_counter()
            if msg.type in CLOSED:
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
                self.timeline.speech_started(event.get("audio_start_ms"))
            elif self.speech_heard_at is not None and event["type"].startswith(("response.", "conversation.")):
                self.speech_heard_at = None
            if event["type"] == self.dialect.session_finished:
                return
            if self.on_event(self, event, received):
                # A final went to the outputs. With several languages the others' finals of this moment are
                # usually waiting too: they, and the OBS write of all of them, go before this session's next event
                # (its usage report, say), so the last language is not on screen later than it must be (#21).
                await asyncio.sleep(0)
            if event["type"] == "response.done":
                self.timeline.finished()  # the next caption's words start with the next speech
