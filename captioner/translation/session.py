"""One Qwen livetranslate session per target over aiohttp WebSockets: audio in, caption events out."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp

from ..config import SOURCE, TranslatorConfig, link_name
from ..errors import AuthError, LinkError, describe
from ..inputs.pcm import SPEECH_RMS, rms
from ..metrics import error_code_label
from ..reconnect import Backoff, ConnectBudget
from ..status import LinkState, Status
from ..ticks import until_next
from . import policy, setup
from .connection import REPLAY_CHUNKS, Connection, connect, raise_if_fatal
from .failures import IdleClosed, ModelNotFound, RateLimited, SessionRejected, Stalled, VoiceRejected
from .images import ImageSending
from .interpreter import Caption, UsageDelta, normalise_code
from .meters import Meters
from .protocol import AUDIO_EVENT_TYPES

log = logging.getLogger(__name__)

_AUTH_BACKOFF_S = 300.0
_RATE_LIMIT_BACKOFF_S = 30.0
# Rotation waits this long for a pause so no sentence is split between two sessions.
_ROTATE_PAUSE_WAIT_S = 20.0
_PAUSE_CHUNKS = 4
# The watchdog and rotation need no finer clock; a stop or a closed connection wakes the supervisor at once.
_SUPERVISE_TICK_S = 1.0


class TranslatorSession(ImageSending):
    """Streams the shared capture to one target language and reports captions, reconnecting forever.

    A connection is rotated before the service's limits (120 min, the context window) and replaced when speech goes
    unanswered for `watchdog_s`; the switch waits for a pause, and the old connection is finished, not cut.
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
        manual_turns: bool = False,
        clone: str | None = None,
        input_name: str = "",  # inputs[].name: in the link's name and the metrics' `input` label
    ) -> None:
        self.cfg = cfg
        # Client turns (gate.turns): the service's VAD is off, the audio feed says where each sentence ends.
        self.manual_turns = manual_turns
        # The audio of the sentence in flight (sent, its end not yet): a connection that replaces a dead one
        # mid-sentence gets it again, whole. Empty between sentences.
        self._turn_audio: deque[tuple[bytes, float, bool, bool]] = deque(maxlen=REPLAY_CHUNKS)
        # Whether this session is told the source language where that bills a transcript (qwen3.5).
        self.pin_source = pin_source
        self.on_usage = on_usage
        # Per target: only a language that is played asks for (costly) audio; None = translator.audio_output.
        self.audio_output = cfg.audio_output if audio_output is None else audio_output
        self.voice = voice or cfg.voice
        self.clone = clone  # voice_clone_options.frequency (with audio only)
        # Gets response.audio.delta / .done and response.done events (voice playback), before the captions.
        self.on_audio = on_audio
        self.target = target
        self.transcribe_source = transcribe_source
        self.status = status
        self.link = status.link(link_name("translator", input_name, target))
        self.on_caption = on_caption
        self.budget = budget
        self.chunk_s = chunk_ms / 1000
        self.backoff = backoff or Backoff()
        self.rotate_after_s = cfg.rotate_after_s
        self.rotate_after_tokens = policy.ROTATE_INPUT_TOKENS
        self.idle_rotate_s = policy.IDLE_ROTATE_S
        self.watchdog_s = cfg.watchdog_s
        # Watchdog replacements in a row that brought no answer: each doubles the next wait (music, not a hang).
        self._fruitless_watchdogs = 0
        self._active: Connection | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._finished = asyncio.Event()
        self._quiet_chunks = 0
        self._meters = Meters(status.metrics, target, input_name)
        self._image_times: deque[float] = deque(maxlen=8)
        # What the service changed or dropped of what we asked, reported once per difference (log and /status).
        self._echo_warned: set[str] = set()
        self.link.info.update(self.billing())

    def billing(self) -> dict[str, Any]:
        """What this session bills beyond the audio, and how its usage figures read (for /status)."""
        return setup.billing(self.cfg, transcribe_source=self.transcribe_source, pin_source=self.pin_source)

    # ---- audio in -------------------------------------------------------------------------------
    def feed(self, chunk: bytes, captured_at: float, level: float | None = None, held: bool = False) -> None:
        """Hand one 16 kHz PCM16 chunk over (`held`: see GateChunk); dropped (and counted) unless one streams."""
        speech = (rms(chunk) if level is None else level) >= SPEECH_RMS
        self._quiet_chunks = 0 if speech else self._quiet_chunks + 1
        if self.manual_turns:
            self._turn_audio.append((chunk, captured_at, speech, True))  # sent again, it is late by design
        conn = self._active
        if conn is None or conn.finishing or self._stop.is_set():
            # Audio from before session.updated is never queued: sent later it gives stale captions.
            self._meters.skipped.inc()
            return
        conn.feed(chunk, captured_at, speech, held)

    def end_turn(self, commit: bool) -> None:
        """Client turns: the sentence fed so far ended; commit it (translate) or, without speech, clear it."""
        self._turn_audio.clear()
        conn = self._active
        if conn is not None and not conn.finishing and not self._stop.is_set():
            conn.end_turn(commit)

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
                    self.status.metrics.translator_connects.labels(*self._meters.key, "idle_closed").inc()
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

    def _activate(self, conn: Connection) -> None:
        self._active = conn
        conn.replay(self._turn_audio)  # the sentence the last connection died in, if any
        conn.start()
        self.link.set(LinkState.CONNECTED)
        self.status.metrics.translator_connects.labels(*self._meters.key, "ok").inc()
        log.info("translator %s: session ready (%s)", self.target, self.cfg.model)

    async def _supervise(self, conn: Connection) -> float:
        """Watch the active connection: rotate it when due, replace it when stalled, finish it on stop."""
        next_rotation_try = 0.0
        stopping = asyncio.create_task(self._stop.wait())
        try:
            while True:
                assert conn.task is not None
                # On the shared tick grid (one wake-up for every session); an idle rotation due sooner is not late.
                now, tick = time.monotonic(), until_next(time.monotonic(), _SUPERVISE_TICK_S)
                tick = min(tick, max(0.0, conn.last_event_at + self.idle_rotate_s - now) or tick)
                done, _ = await asyncio.wait({conn.task, stopping}, timeout=tick, return_when=asyncio.FIRST_COMPLETED)
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
                    self.status.metrics.translator_rotations.labels(*self._meters.key, "watchdog").inc()
                    self._fruitless_watchdogs += 1
                    self._active = None
                    await conn.close()
                    raise Stalled(stalled)
                reason = self._rotation_due(conn, now)
                if reason and now >= next_rotation_try:
                    new = await self._rotate(conn, reason)
                    if new is None:
                        next_rotation_try = now + 60.0
                    else:
                        conn = new
        finally:
            stopping.cancel()

    def _stalled(self, conn: Connection, now: float) -> str | None:
        """Why the connection counts as hung (policy.stall_reason), or None."""
        return policy.stall_reason(
            now,
            watchdog_s=self.watchdog_s,
            fruitless_watchdogs=self._fruitless_watchdogs,
            speech_heard_at=conn.speech_heard_at,
            unanswered_since=conn.unanswered_since,
            unanswered_speech_s=conn.unanswered_speech_s,
            watchdog_speech_s=self.cfg.watchdog_speech_s,
            vad_events=self.cfg.dialect.vad_events,
        )

    def _rotation_due(self, conn: Connection, now: float) -> str | None:
        tokens = policy.context_tokens(
            conn.interpreter.usage.input_tokens,
            conn.audio_s,
            conn.audio_s_at_usage,
            self.cfg.dialect.input_tokens_per_s,
        )
        return policy.rotation_due(
            age_s=now - conn.opened_at,
            tokens=tokens,
            silent_s=now - conn.last_event_at,
            rotate_after_s=self.rotate_after_s,
            rotate_after_tokens=self.rotate_after_tokens,
            idle_rotate_s=self.idle_rotate_s,
        )

    async def _rotate(self, old: Connection, reason: str) -> Connection | None:
        """Make before break: open the next session, switch at a pause, finish the old one in the background."""
        try:
            await self.budget.acquire()
            new = await self._connect()
        except (LinkError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
            log.warning("translator %s: rotation failed (%s); keeping the current session", self.target, describe(e))
            return None
        assert old.task is not None
        deadline = time.monotonic() + _ROTATE_PAUSE_WAIT_S
        # With client turns, the pause must also be between sentences: the old connection's last one is committed.
        while (
            (self._quiet_chunks < _PAUSE_CHUNKS or self._turn_audio)
            and time.monotonic() < deadline
            and not old.task.done()
        ):
            await asyncio.sleep(self.chunk_s)
        self._active = new
        new.start()
        self.status.metrics.translator_rotations.labels(*self._meters.key, reason).inc()
        # Idle rotations repeat every few minutes through a long break: not news.
        (log.debug if reason == "idle" else log.info)("translator %s: rotated session (%s)", self.target, reason)
        retire = asyncio.create_task(old.finish(self.cfg.finish_timeout_s + 5))
        self._retiring.add(retire)
        retire.add_done_callback(self._retiring.discard)
        return new

    def _fail(self, state: LinkState, message: str, delay: float, result: str) -> None:
        first = self.link.state not in (LinkState.RECONNECTING, LinkState.FAILED, LinkState.AUTH_FAILED)
        self.link.set(state, message)
        self.status.metrics.translator_connects.labels(*self._meters.key, result).inc()
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

    async def _connect(self) -> Connection:
        """A connection set up with this session's complete session.update; the caller starts streaming."""
        update = setup.update_for(
            self.cfg,
            self.target,
            transcribe_source=self.transcribe_source,
            voice=self.voice,
            audio_output=self.audio_output,
            pin_source=self.pin_source,
            clone=self.clone,
        )
        if self.manual_turns:
            update["session"]["turn_detection"] = None  # type: ignore[index]  # manual mode (§4.4)
        conn, echo = await connect(
            self.cfg,
            update,
            voice=self.voice or self.cfg.dialect.default_voice,
            meters=self._meters,
            usage_mode=self.link.info.get("usage_reporting"),
            on_event=self._handle,
            on_caption=self._emit,
            manual=self.manual_turns,
        )
        self._compare_echo(update["session"], echo.get("session"))  # type: ignore[arg-type]
        return conn

    def _compare_echo(self, asked: dict[str, Any], echo: Any) -> None:
        """Warn once per difference when session.updated does not hold what session.update asked for (§12.10)."""
        for field, message in policy.echo_differences(asked, echo):
            if field in self._echo_warned:
                continue
            self._echo_warned.add(field)
            self.link.info.setdefault("session_warnings", []).append(message)
            log.warning("translator %s: %s", self.target, message)

    # ---- events ----------------------------------------------------------------------------------
    def _handle(self, conn: Connection, event: dict[str, Any], received: float = 0.0) -> bool:
        """One event from the service; True when it brought a final caption."""
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
            m.translator_bad_events.labels(*self._meters.key, result.problem).inc()
            log.debug("translator %s: %s event %.80s", self.target, result.problem, event.get("type"))
        if result.usage is not None:
            conn.audio_s_at_usage = conn.audio_s
            self.link.info["usage_reporting"] = conn.interpreter.usage.mode
            m.usage_tokens.labels(*self._meters.key, "input").inc(result.usage.input_tokens)
            m.usage_tokens.labels(*self._meters.key, "output").inc(result.usage.output_tokens)
            if self.on_usage is not None:
                self.on_usage(self.target, result.usage)
        if result.error is not None:
            m.translator_errors.labels(*self._meters.key, error_code_label(result.error.code)).inc()
            if policy.is_idle_close(result.error.code, result.error.message):
                raise IdleClosed(result.error.message or result.error.code)
            self.link.last_error = f"{result.error.code}: {result.error.message}"
            log.warning("translator %s: service error %s: %s", self.target, result.error.code, result.error.message)
            raise_if_fatal(result.error.code, result.error.message)
            if normalise_code(result.error.code) == "commonerror":
                raise LinkError(result.error.message or "COMMON_ERROR")
        for caption in result.captions:
            self._emit(dataclasses.replace(caption, received_at=received, spoken_at=conn.spoken_at(caption)))
        return any(caption.final for caption in result.captions)

    def _emit(self, caption: Caption) -> None:
        if caption.language == SOURCE and not self.transcribe_source:
            # Another session shows the source (or nobody asked for it): one sentence, one caption.
            return
        try:
            self.on_caption(caption)
        except Exception:  # a consumer bug must not kill the session
            log.exception("caption consumer failed")
