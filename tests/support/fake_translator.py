"""Local fake of the Qwen LiveTranslate realtime WebSocket API (see docs/translator-protocol.md)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import json
import math
import re
import threading
import time
import unicodedata
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

PATH = "/api-ws/v1/realtime"
Q3_MODEL = "qwen3-livetranslate-flash-realtime"
Q35_MODEL = "qwen3.5-livetranslate-flash-realtime"
MODELS = {
    Q3_MODEL: "q3",
    Q3_MODEL + "-2025-09-22": "q3",
    Q35_MODEL: "q3.5",
    Q35_MODEL + "-2026-05-19": "q3.5",
}
ASR_MODEL = "qwen3-asr-flash-realtime"
RATE_LIMIT_REASON = "Requests rate limit exceeded, please try again later."


def _codes(words: str) -> frozenset[str]:
    return frozenset(words.split())


# §9 language tables: every valid target, and the subset that can also output audio.
_Q3_AUDIO = _codes("en zh ru fr de pt es it ko ja yue")
_Q35_AUDIO = _codes("zh en ar de fr es pt id it ko ru th vi ja tr hi ms nl ur nb sv da he fi pl is cs fil fa")
LANGUAGES = {
    "q3": _Q3_AUDIO | _codes("id vi th ar hi el tr"),
    "q3.5": _Q35_AUDIO
    | _codes("yue el af ast be bg bn bs ca ceb et gl gu hr hu jv kk kn ky lv mk ml mr pa ro sk sl sw tg az uk"),
}
AUDIO_LANGUAGES = {"q3": _Q3_AUDIO, "q3.5": _Q35_AUDIO}
AUDIO_TOKENS_PER_S = {"q3": 12.5, "q3.5": 7.0}  # §8
# §8: 0.5 token per 28x28 px (Q3) or 32x32 px (Q3.5). How partial tiles round is not documented; the fake
# bills every started tile [INF].
IMAGE_TILE_PX = {"q3": 28, "q3.5": 32}
# §4.3 limits, enforced with an `error` each: JPEG only, <= 500 KB before base64, <= 1080p, <= 2 per second.
IMAGE_MAX_BYTES = 500 * 1024
IMAGE_MAX_SIDES = (1920, 1080)  # long side, short side
IMAGE_RATE_MAX = 2
IMAGE_RATE_WINDOW_S = 1.0
HTTP_ERROR_CODES = {
    401: "InvalidApiKey",
    403: "AccessDenied",
    404: "ModelNotFound",
    429: "Throttling.RateQuota",
    503: "ServiceUnavailable",
}

# §9: Q3's voices are listed in full. Q3.5's guide links the Omni list, which nobody has read: the fake knows the
# names seen on Q3.5 and the pre-created clone ids, and refuses the rest as the service did for an unknown voice
# (observed on Q3.8, close 1011, §7).
VOICES = {
    "q3": frozenset({"Cherry", "Nofish", "Jada", "Dylan", "Sunny", "Peter", "Kiki", "Eric", "Ethan"}),
    "q3.5": frozenset({"Tina", "Cindy", "Liora Mira", "Sunnybobi", "Raymond", "Ethan", "Theo Calm"}),
}
CLONE_PREFIX = "qwen-translate-vc-"

FRAME_MS = 100
MIN_SPEECH_FRAMES = 2  # segments with < 200 ms of speech are noise
STEP_FRAMES = 3  # one progressive snapshot per 300 ms of segment
WRONG_WORD = "um"  # provisional translation word that the next snapshot retracts
OUT_BYTES_PER_MS = 48  # PCM16 mono 24 kHz
# The voice of segment k of a connection is a tone of 500 + 150 * k Hz at 0.3 FS, so a recording of what was
# played tells the segments apart; the step wraps before the frequencies crowd the 12 kHz Nyquist limit.
TONE_AMPLITUDE = 0.3
_TONE_STEPS = 40


def tone_hz(k: int) -> float:
    """The frequency of the voice tone of segment k (0-based) of one connection."""
    return 500.0 + 150.0 * (k % _TONE_STEPS)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _tone(hz: float, start: int, end: int) -> bytes:
    """Bytes [start, end) of an endless 24 kHz PCM16 tone, so deltas may split samples (odd lengths)."""
    first = start // 2
    n = (end + 1) // 2 - first
    t = np.arange(first, first + n)
    pcm = (np.sin(2 * np.pi * hz * t / 24000) * TONE_AMPLITUDE * 32767).astype("<i2").tobytes()
    return pcm[start - 2 * first : end - 2 * first]


@dataclass(frozen=True)
class _Glossary:
    """translation.corpus.phrases as the fake applies them: whole words, case-insensitive, longest first."""

    pattern: re.Pattern[str]
    translations: tuple[str, ...]  # by the index in the matching group's name

    @classmethod
    def of(cls, phrases: dict[str, str]) -> _Glossary:
        terms = sorted(phrases, key=len, reverse=True)
        alternatives = [f"(?P<t{i}>{_whole(term)})" for i, term in enumerate(terms)]
        return cls(re.compile("|".join(alternatives), re.IGNORECASE), tuple(phrases[t] for t in terms))

    def apply(self, text: str) -> str:
        return self.pattern.sub(lambda m: self.translations[int(str(m.lastgroup)[1:])], text)


def _whole(term: str) -> str:
    """A term as a whole word where its ends are letters of a spaced script; CJK terms match anywhere."""

    def spaced(ch: str) -> bool:
        return ch.isalnum() and unicodedata.east_asian_width(ch) not in ("W", "F")

    left = r"(?<!\w)" if spaced(term[0]) else ""
    right = r"(?!\w)" if spaced(term[-1]) else ""
    return left + re.escape(term) + right


def _phrases_problem(corpus: Any) -> bool:
    """True unless translation.corpus is {"phrases": {term: translation}}, as documented for Q3.5.

    How the service words its refusal is not known [INF]; it is an `error` like other bad session fields.
    """
    if not isinstance(corpus, dict) or not isinstance(corpus.get("phrases"), dict):
        return True
    return not all(isinstance(k, str) and k and isinstance(v, str) for k, v in corpus["phrases"].items())


def image_tokens(family: str, width: int, height: int) -> int:
    """What the fake bills for one image (§8)."""
    tile = IMAGE_TILE_PX[family]
    return math.ceil(math.ceil(width / tile) * math.ceil(height / tile) / 2)


def jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a baseline/progressive JPEG from its SOFn segment; None if it is not a JPEG."""
    if not data.startswith(b"\xff\xd8\xff"):
        return None
    pos = 2
    while pos + 9 <= len(data):
        if data[pos] != 0xFF:
            return None
        kind = data[pos + 1]
        if kind in (0xFF, 0x01) or 0xD0 <= kind <= 0xD7:
            pos += 1 if kind == 0xFF else 2
            continue
        size = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if kind in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = int.from_bytes(data[pos + 5 : pos + 7], "big"), int.from_bytes(data[pos + 7 : pos + 9], "big")
            return (w, h) if w and h else None
        if kind in (0xD9, 0xDA) or size < 2:
            return None
        pos += 2 + size
    return None


@dataclass
class ImageRecord:
    """One `input_image_buffer.append` the fake accepted."""

    at: float  # time.monotonic() when it arrived
    size_bytes: int  # the JPEG before base64
    width: int
    height: int
    audio_bytes_before: int  # audio appended on this connection before it (the service demands some)
    tokens: int  # billed in response.done usage as input image tokens
    jpeg: bytes = field(repr=False)


@dataclass
class ConnectionRecord:
    """What one accepted WebSocket connection did; read it from tests."""

    model: str
    family: str
    headers: dict[str, str]
    session_update: dict[str, Any] | None = None  # `session` object of the last session.update
    session: dict[str, Any] = field(default_factory=dict)  # effective config
    client_event_types: list[str] = field(default_factory=list)
    server_event_types: list[str] = field(default_factory=list)
    audio_bytes: int = 0
    audio_before_update_bytes: int = 0
    translations: list[str] = field(default_factory=list)  # finals, in order
    tones: list[tuple[float, int]] = field(default_factory=list)  # voice of each final: (Hz, PCM bytes), in order
    phrases: dict[str, str] = field(default_factory=dict)  # translation.corpus.phrases in effect (Q3.5)
    finished: bool = False
    closed_by_client: bool = False
    server_close_code: int | None = None  # set when the fake closed it (knobs, rate limit)
    dropped: bool = False
    idle_closed: bool = False  # closed by the fake's idle timeout
    open: bool = True
    images: list[ImageRecord] = field(default_factory=list)  # accepted, in order
    images_rejected: list[str] = field(default_factory=list)  # the error message of each refused image


@dataclass
class _Segment:
    start_frame: int
    frames: int = 0
    speech_frames: int = 0
    silence_run: int = 0
    last_speech_end: int = 0  # frame index just after the last speech frame
    confirmed: bool = False
    opened: bool = False
    open_frame: int = 0
    index: int = 0
    lang: str = "en"
    sentence: str = ""
    final: str = ""
    audio: bool = False
    asr_on: bool = False
    asr_lang: str = "en"
    src_item: str = ""
    resp_id: str = ""
    out_item: str = ""
    asr_snaps: list[str] = field(default_factory=list)
    tr_snaps: list[tuple[str, str]] = field(default_factory=list)
    asr_pos: int = 0
    tr_pos: int = 0
    audio_sent: int = 0
    tone_hz: float = 0.0


@dataclass(eq=False)  # identity hashing: kept in a set of open connections
class _Conn:
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    rec: ConnectionRecord
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: dict[str, Any] = field(default_factory=dict)
    updated_sent: bool = False
    silence_ms: int = 600
    manual: bool = False  # Q3.5 turn_detection null: segments end only on commit
    frame_bytes: int = 3200
    buf: bytearray = field(default_factory=bytearray)
    frame_idx: int = 0
    seg: _Segment | None = None
    any_audio: bool = False
    uncommitted: bool = False
    sent: int = 0
    close_after: tuple[int, int, str] | None = None
    closing: bool = False
    text_tokens: int = 0
    audio_out_bytes: int = 0
    voiced_segments: int = 0
    image_tokens: int = 0
    glossary: _Glossary | None = None
    usage_reported: tuple[int, ...] = (0, 0, 0, 0)  # what the last usage said, for per-response reports
    last_response_at: float = field(default_factory=time.monotonic)


class FakeTranslator:
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
    ) -> None:
        self.api_key = api_key
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
        self._open: set[_Conn] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{PATH}"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        app = web.Application()
        app.router.add_get(PATH, self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
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
        c = _Conn(ws=ws, transport=request.transport, rec=rec, silence_ms=self.silence_ms)
        c.session = self._defaults(family, model)
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

    def _defaults(self, family: str, model: str) -> dict[str, Any]:
        q3 = family == "q3"
        s: dict[str, Any] = {
            "id": _new_id("sess"),
            "object": "realtime.session",
            "model": model,
            "modalities": ["text", "audio"],
            "voice": "Cherry" if q3 else "Tina",
            "input_audio_format": "pcm16" if q3 else "pcm",
            "output_audio_format": "pcm24" if q3 else "pcm",
            "input_audio_transcription": None if q3 else {"model": ASR_MODEL},
            "translation": {"language": "en"},
        }
        if not q3:
            s["sample_rate"] = 16000
            s["turn_detection"] = {
                "type": "server_vad",
                "threshold": 0.2,
                "silence_duration_ms": self.silence_ms,
                "prefix_padding_ms": 300,
                "create_response": True,
                "interrupt_response": True,
            }
        return s

    def _idle_left(self, c: _Conn) -> float | None:
        if self.idle_timeout_s is None:
            return None
        return max(0.01, c.last_response_at + self.idle_timeout_s - time.monotonic())

    async def _idle_close(self, c: _Conn) -> None:
        seconds = self.idle_timeout_s or 0
        message = f"Your session was closed because no response was generated for {seconds:g} seconds."
        err = {"type": "invalid_request_error", "code": "response_idle_timeout", "message": message, "param": ""}
        await self._send(c, {"type": "error", "error": err})
        with self._lock:
            c.rec.idle_closed = True
        await self._server_close(c, 1000, "idle")

    # ---- sending ---------------------------------------------------------------------------
    async def _send(self, c: _Conn, event: dict[str, Any]) -> None:
        if self.stall or c.closing or c.ws.closed:
            return
        event = {"event_id": _new_id("event"), **event}
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

    async def _server_close(self, c: _Conn, code: int, reason: str) -> None:
        c.closing = True
        with self._lock:
            c.rec.server_close_code = code
        await c.ws.close(code=code, message=reason.encode())

    async def _error(self, c: _Conn, code: str, message: str, param: str) -> None:
        err = {"type": "invalid_request_error", "code": code, "message": message, "param": param}
        await self._send(c, {"type": "error", "error": err})

    def _log_client(self, c: _Conn, etype: str) -> None:
        with self._lock:
            c.rec.client_event_types.append(etype)

    # ---- client events ---------------------------------------------------------------------
    async def _on_text(self, c: _Conn, data: str) -> None:
        try:
            ev = json.loads(data)
            if not isinstance(ev, dict):
                raise ValueError("not an object")
        except ValueError:
            self._log_client(c, "<invalid-json>")
            await self._error(c, "invalid_json", "Failed to parse client event as JSON object.", "")
            return
        etype = str(ev.get("type", ""))
        self._log_client(c, etype)
        q35 = c.rec.family == "q3.5"
        if etype == "session.update":
            await self._on_update(c, ev.get("session"))
        elif etype == "input_audio_buffer.append":
            await self._on_append(c, ev.get("audio"))
        elif etype == "input_image_buffer.append":
            await self._on_image(c, ev.get("image"))
        elif etype == "session.finish":
            with self._lock:
                c.rec.finished = True
            if self.finish_delay_s:
                await asyncio.sleep(self.finish_delay_s)
            if not self.stall:
                await self._end_segment(c)
            await self._send(c, {"type": "session.finished"})
        elif etype == "input_audio_buffer.commit" and q35 and c.manual:
            if not c.uncommitted:
                await self._error(c, "invalid_value", "Error committing input audio buffer: empty.", "")
                return
            c.uncommitted = False
            await self._send(c, {"type": "input_audio_buffer.committed", "item_id": _new_id("item")})
            await self._end_segment(c)
        elif etype == "input_audio_buffer.clear" and q35 and c.manual:
            c.buf.clear()
            c.uncommitted = False
            if c.seg is not None and not c.seg.opened:
                c.seg = None
            await self._send(c, {"type": "input_audio_buffer.cleared"})
        else:
            # Covers Q3 commit/clear too: Q3 answered "Invalid value: 'input_audio_buffer.commit'" (§4.4).
            await self._error(c, "invalid_value", f"Invalid value: '{etype}'", "type")

    def _validate(self, family: str, upd: dict[str, Any], eff: dict[str, Any]) -> tuple[str, str] | None:
        """Return (message, param) of the first problem, mirroring what the service rejects."""
        if "modalities" in upd and upd["modalities"] not in (["text"], ["text", "audio"]):
            return (
                f"Invalid modalities: {upd['modalities']!r}. Supported combinations are "
                "['text'] and ['text', 'audio'].",
                "session.modalities",
            )
        tr = upd.get("translation")
        if "instructions" in upd or not isinstance(tr, dict) or not tr.get("language"):
            return "Invalid translation parameter.", "session.translation"
        lang = tr["language"]
        if lang not in LANGUAGES[family]:
            return f"Unsupported translation language: '{lang}'.", "session.translation.language"
        if "corpus" in tr and _phrases_problem(tr["corpus"]):
            return (
                "Invalid corpus: 'phrases' must be an object of source term -> translation.",
                "session.translation.corpus.phrases",
            )
        if (
            "audio" in eff["modalities"]
            and lang not in AUDIO_LANGUAGES[family]
            and self.reject_audio_for_text_only_targets
        ):
            return f"Language '{lang}' does not support audio output.", "session.modalities"
        iat = upd.get("input_audio_transcription")
        if isinstance(iat, dict) and "model" in iat and iat["model"] != ASR_MODEL:
            # Q3 documents exactly one ASR model; Q3.5 names the same one (§4.1).
            return (
                f"Invalid input_audio_transcription.model: '{iat['model']}'.",
                "session.input_audio_transcription.model",
            )
        if eff.get("input_audio_format") not in ("pcm", "pcm16"):
            return "Only PCM input is supported by the fake.", "session.input_audio_format"
        if family == "q3.5":
            if eff.get("sample_rate") not in (8000, 16000):
                return "Invalid sample_rate.", "session.sample_rate"
            td = eff.get("turn_detection")
            if td is not None:
                sd = td.get("silence_duration_ms") if isinstance(td, dict) else None
                if not isinstance(sd, int) or not 200 <= sd <= 6000:
                    return "Invalid silence_duration_ms.", "session.turn_detection.silence_duration_ms"
        return None

    async def _on_update(self, c: _Conn, upd: Any) -> None:
        with self._lock:
            c.rec.session_update = copy.deepcopy(upd) if isinstance(upd, dict) else None
        if not isinstance(upd, dict):
            await self._error(c, "invalid_value", "Missing or invalid 'session' object.", "session")
            return
        family = c.rec.family
        # Merge onto the defaults, not onto the previous update: the service does not merge (§4.1).
        eff = self._defaults(family, c.rec.model)
        eff["id"] = c.session["id"]
        for k, v in upd.items():
            if k in ("id", "object", "model"):
                continue
            eff[k] = {**eff[k], **v} if isinstance(v, dict) and isinstance(eff.get(k), dict) else v
        if self.refuse_updates is not None:
            await self._error(c, self.refuse_updates[0], self.refuse_updates[1], "")
            return
        problem = self._validate(family, upd, eff)
        if problem is not None:
            await self._error(c, "invalid_value", problem[0], problem[1])
            return
        voice = eff.get("voice")
        if not isinstance(voice, str) or not (voice in VOICES[family] or voice.startswith(CLONE_PREFIX)):
            await self._server_close(c, 1011, f"InternalError.Algo.InvalidParameter: Voice '{voice}' is not supported.")
            return
        c.session = eff
        td = eff.get("turn_detection")
        c.manual = family == "q3.5" and td is None
        c.silence_ms = self.silence_ms
        if family == "q3.5" and isinstance(td, dict):
            c.silence_ms = td["silence_duration_ms"]
        c.frame_bytes = int(eff.get("sample_rate", 16000)) * FRAME_MS // 1000 * 2
        # Only Q3.5 documents the corpus (§4.1); on Q3 the fake accepts and ignores it.
        corpus = upd["translation"].get("corpus") or {}
        phrases: dict[str, str] = dict(corpus["phrases"]) if corpus and family == "q3.5" else {}
        c.glossary = _Glossary.of(phrases) if phrases else None
        with self._lock:
            c.rec.session = copy.deepcopy(eff)
            c.rec.phrases = phrases
        if not self.stall:
            echo = {**copy.deepcopy(eff), **self.echo_override}
            await self._send(c, {"type": "session.updated", "session": echo})
            c.updated_sent = not c.closing

    async def _on_append(self, c: _Conn, audio: Any) -> None:
        try:
            if not isinstance(audio, str):
                raise ValueError("missing audio")
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            await self._error(c, "invalid_value", "Invalid base64 audio data.", "audio")
            return
        if len(pcm) % 2:
            # PCM16 is two bytes a sample (§4.2): half a sample is not audio.
            await self._error(c, "invalid_value", "Invalid audio data: PCM16 needs an even number of bytes.", "audio")
            return
        with self._lock:
            c.rec.audio_bytes += len(pcm)
            if not c.updated_sent:
                c.rec.audio_before_update_bytes += len(pcm)
        c.any_audio = c.uncommitted = True
        if self.stall:
            return  # swallow audio without consuming script lines
        c.buf.extend(pcm)
        while len(c.buf) >= c.frame_bytes and not c.closing:
            frame = bytes(c.buf[: c.frame_bytes])
            del c.buf[: c.frame_bytes]
            await self._frame(c, frame)

    async def _on_image(self, c: _Conn, image: Any) -> None:
        """§4.3: audio first, JPEG only, <= 500 KB raw, <= 1080p, <= 2 per second; the wording of all but the
        first error is not documented [INF]."""
        now = time.monotonic()
        problem: str | None = None
        data, size = b"", None
        if not c.any_audio:
            problem = "Error append image before append audio."
        else:
            try:
                data = base64.b64decode(image if isinstance(image, str) else "", validate=True)
            except (binascii.Error, ValueError):
                data = b""
            size = jpeg_dimensions(data)
            recent = [i for i in c.rec.images if now - i.at < IMAGE_RATE_WINDOW_S]
            if size is None:
                problem = "Invalid image: only JPG/JPEG images are supported."
            elif len(data) > IMAGE_MAX_BYTES:
                problem = f"Image too large: {len(data)} bytes; at most {IMAGE_MAX_BYTES} bytes are allowed."
            elif max(size) > IMAGE_MAX_SIDES[0] or min(size) > IMAGE_MAX_SIDES[1]:
                problem = f"Image resolution {size[0]}x{size[1]} exceeds 1080p."
            elif len(recent) >= IMAGE_RATE_MAX:
                problem = f"Too many images: at most {IMAGE_RATE_MAX} per second."
        if problem is not None or size is None:
            with self._lock:
                c.rec.images_rejected.append(problem or "")
            await self._error(c, "invalid_value", problem or "", "image" if c.any_audio else "")
            return
        tokens = image_tokens(c.rec.family, *size)
        c.image_tokens += tokens
        record = ImageRecord(now, len(data), size[0], size[1], c.rec.audio_bytes, tokens, data)
        with self._lock:
            c.rec.images.append(record)

    # ---- VAD and response generation ------------------------------------------------------
    async def _frame(self, c: _Conn, frame: bytes) -> None:
        x = np.frombuffer(frame, "<i2").astype(np.float64) / 32768.0
        speech = float(np.sqrt(np.mean(x * x))) > self.speech_rms
        idx = c.frame_idx
        c.frame_idx += 1
        seg = c.seg
        if seg is None:
            if not speech:
                return
            seg = c.seg = _Segment(start_frame=idx)
        seg.frames += 1
        if speech:
            seg.speech_frames += 1
            seg.silence_run = 0
            seg.last_speech_end = idx + 1
        else:
            seg.silence_run += 1
        if not seg.confirmed and seg.speech_frames >= MIN_SPEECH_FRAMES:
            self._confirm(c, seg)
            if not c.manual:  # manual mode answers only after commit
                await self._open_segment(c, seg)
        elif seg.opened and (seg.frames - seg.open_frame) % STEP_FRAMES == 0:
            await self._step(c, seg)
        if not c.manual and seg.silence_run * FRAME_MS >= max(c.silence_ms, FRAME_MS):
            await self._end_segment(c)

    def _confirm(self, c: _Conn, seg: _Segment) -> None:
        s = c.session
        lang = s["translation"]["language"]
        with self._lock:  # shared per language so reconnects continue the script
            seg.index = self._next_index.get(lang, 0)
            self._next_index[lang] = seg.index + 1
        seg.confirmed = True
        seg.lang = lang
        i = seg.index
        seg.sentence = self.script[i] if i < len(self.script) else f"utterance {i + 1}"
        translated = seg.sentence if c.glossary is None else c.glossary.apply(seg.sentence)
        rendering = self.renderings.get(lang, {}).get(seg.sentence)
        seg.final = rendering or f"[{lang}] {translated}"
        seg.audio = "audio" in s["modalities"]
        if seg.audio:
            seg.tone_hz = tone_hz(c.voiced_segments)
            c.voiced_segments += 1
        iat = s.get("input_audio_transcription")
        if c.rec.family == "q3":
            seg.asr_on = isinstance(iat, dict) and iat.get("model") == ASR_MODEL
        else:
            seg.asr_on = iat is not None
        seg.asr_lang = (iat or {}).get("language") or "en"
        seg.src_item, seg.resp_id, seg.out_item = _new_id("item"), _new_id("resp"), _new_id("item")
        # ASR stash grows with one retraction ("w0" -> "w0." -> "w0 w1"), like 今天 -> 今天。 -> 今天天气.
        sw = seg.sentence.split()
        seg.asr_snaps = [sw[0], sw[0] + "."] + [" ".join(sw[:k]) for k in range(2, len(sw) + 1)]
        if len(sw) == 1:
            seg.asr_snaps.append(sw[0])
        # Translation: text is the confirmed prefix, stash the provisional tail; WRONG_WORD gets retracted.
        # Text without spaces (Japanese, Chinese) grows four characters at a time.
        sep = " " if " " in seg.final.strip() or not rendering else ""
        tw = seg.final.split() if sep else [seg.final[i : i + 4] for i in range(0, len(seg.final), 4)]
        seg.tr_snaps = [("", tw[0]), ("", f"{tw[0]}{sep or ' '}{WRONG_WORD}")]
        n = len(tw)
        seg.tr_snaps += [(sep.join(tw[:k]), f"{sep}{tw[k]}" if k < n else "") for k in range(1, n + 1)]

    def _response(self, c: _Conn, seg: _Segment, status: str, output: list[Any]) -> dict[str, Any]:
        s = c.session
        return {
            "id": seg.resp_id,
            "object": "realtime.response",
            "conversation_id": "",
            "status": status,
            "modalities": s["modalities"],
            "voice": s["voice"],
            "output_audio_format": s["output_audio_format"],
            "output": output,
        }

    def _item(self, seg: _Segment, status: str, content: list[Any]) -> dict[str, Any]:
        return {
            "id": seg.out_item,
            "object": "realtime.item",
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def _part(self, seg: _Segment, text: str) -> dict[str, Any]:
        return {"type": "audio", "transcript": text} if seg.audio else {"type": "text", "text": text}

    def _ids(self, seg: _Segment) -> dict[str, Any]:
        return {"response_id": seg.resp_id, "item_id": seg.out_item, "output_index": 0, "content_index": 0}

    async def _open_segment(self, c: _Conn, seg: _Segment) -> None:
        seg.opened = True
        seg.open_frame = seg.frames
        q35 = c.rec.family == "q3.5"
        if q35 and not c.manual:
            await self._send(
                c,
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": seg.start_frame * FRAME_MS,
                    "item_id": seg.src_item,
                },
            )
            if self.hang_after_speech_started:
                self.stall = True
        await self._asr_step(c, seg)
        item = self._item(seg, "in_progress", [])
        resp = self._response(c, seg, "in_progress", [])
        await self._send(c, {"type": "response.created", "response": resp})
        await self._send(
            c, {"type": "response.output_item.added", "response_id": seg.resp_id, "output_index": 0, "item": item}
        )
        if q35:
            await self._send(c, {"type": "conversation.item.created", "previous_item_id": seg.src_item, "item": item})
        await self._send(c, {"type": "response.content_part.added", **self._ids(seg), "part": self._part(seg, "")})
        await self._tr_step(c, seg)

    async def _asr_step(self, c: _Conn, seg: _Segment) -> None:
        if not seg.asr_on or seg.asr_pos >= len(seg.asr_snaps):
            return
        ev = {
            "type": "conversation.item.input_audio_transcription.text",
            "item_id": seg.src_item,
            "content_index": 0,
            "text": "",
            "stash": seg.asr_snaps[seg.asr_pos],
            "language": seg.asr_lang,
        }
        if c.rec.family == "q3.5":
            ev["emotion"] = "neutral"
        seg.asr_pos += 1
        await self._send(c, ev)

    async def _tr_step(self, c: _Conn, seg: _Segment) -> None:
        if seg.tr_pos >= len(seg.tr_snaps):
            return
        text, stash = seg.tr_snaps[seg.tr_pos]
        seg.tr_pos += 1
        etype = "response.audio_transcript.text" if seg.audio else "response.text.text"
        await self._send(c, {"type": etype, **self._ids(seg), "text": text, "stash": stash})

    async def _audio_delta(self, c: _Conn, seg: _Segment, end: int) -> None:
        if end <= seg.audio_sent:
            return
        data = _tone(seg.tone_hz, seg.audio_sent, end)
        seg.audio_sent = end
        c.audio_out_bytes += len(data)
        await self._send(
            c, {"type": "response.audio.delta", **self._ids(seg), "delta": base64.b64encode(data).decode()}
        )

    async def _step(self, c: _Conn, seg: _Segment) -> None:
        await self._asr_step(c, seg)
        await self._tr_step(c, seg)
        if seg.audio:
            target = (seg.frames - seg.open_frame) * FRAME_MS * OUT_BYTES_PER_MS
            # The first delta ends one byte short so it (and the next) has an odd length (§6).
            await self._audio_delta(c, seg, target - 1 if seg.audio_sent == 0 else target)

    async def _end_segment(self, c: _Conn) -> None:
        """Finish the in-progress segment (VAD silence, session.finish or commit); drop noise."""
        seg, c.seg = c.seg, None
        if seg is None or not seg.confirmed or c.closing:
            return
        if not seg.opened:
            await self._open_segment(c, seg)
        q35 = c.rec.family == "q3.5"
        final = seg.final
        if q35 and not c.manual:
            await self._send(
                c,
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": seg.last_speech_end * FRAME_MS,
                    "item_id": seg.src_item,
                },
            )
        if seg.audio:
            end = max(seg.frames - seg.open_frame, 1) * FRAME_MS * OUT_BYTES_PER_MS
            await self._audio_delta(c, seg, max(end, seg.audio_sent + (seg.audio_sent % 2)))
            await self._send(c, {"type": "response.audio_transcript.done", **self._ids(seg), "transcript": final})
            await self._send(c, {"type": "response.audio.done", **self._ids(seg)})
        else:
            await self._send(c, {"type": "response.text.done", **self._ids(seg), "text": final + " "})
        part = self._part(seg, final)
        await self._send(c, {"type": "response.content_part.done", **self._ids(seg), "part": part})
        done_item = self._item(seg, "completed", [part])
        await self._send(
            c, {"type": "response.output_item.done", "response_id": seg.resp_id, "output_index": 0, "item": done_item}
        )
        if seg.asr_on:  # observed after the translation's .done (§5.2)
            await self._send(
                c,
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": seg.src_item,
                    "content_index": 0,
                    "transcript": seg.sentence,
                    "language": seg.asr_lang,
                    "emotion": "",
                },
            )
        c.text_tokens += max(1, len(final) // 3)
        if seg.asr_on:  # the source transcript bills at the output-text rate (§8)
            c.text_tokens += max(1, len(seg.sentence) // 3)
        resp = self._response(c, seg, "completed", [done_item])
        resp["usage"] = self._usage(c)
        await self._send(c, {"type": "response.done", "response": resp})
        c.last_response_at = time.monotonic()
        if c.closing or self.stall:
            return  # never delivered, so it does not count
        with self._lock:
            c.rec.translations.append(final)
            if seg.audio:
                c.rec.tones.append((seg.tone_hz, seg.audio_sent))
            self._segments_emitted[seg.lang] = self._segments_emitted.get(seg.lang, 0) + 1

    def _usage(self, c: _Conn) -> dict[str, Any]:
        """Cumulative for the connection, as observed (§8); or each response's own, if told to."""
        rate = int(c.session.get("sample_rate", 16000))
        audio_in = round(c.rec.audio_bytes / (2 * rate) * AUDIO_TOKENS_PER_S[c.rec.family])
        audio_out = round(c.audio_out_bytes / (OUT_BYTES_PER_MS * 1000) * 12.5)
        now = (audio_in, c.image_tokens, c.text_tokens, audio_out)
        if self.usage_per_response:
            now, c.usage_reported = tuple(a - b for a, b in zip(now, c.usage_reported, strict=True)), now
        audio_in, image_in, text_out, audio_out = now
        out_details: dict[str, int] = {"text_tokens": text_out}
        if "audio" in c.session["modalities"]:
            out_details["audio_tokens"] = audio_out
        out = sum(out_details.values())
        # The documented details are text and audio only: image tokens show in the input total alone.
        return {
            "total_tokens": audio_in + image_in + out,
            "input_tokens": audio_in + image_in,
            "output_tokens": out,
            "input_tokens_details": {"text_tokens": 0, "audio_tokens": audio_in},
            "output_tokens_details": out_details,
        }
