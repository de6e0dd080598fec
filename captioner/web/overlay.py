"""OBS browser-source overlay: the caption hub, and the HTTP handlers for its page and Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from aiohttp import web

from .overlay_page import RETRY_MS, OverlayParamError, OverlayStyle, render_page

log = logging.getLogger(__name__)

KINDS: Final = frozenset({"final", "partial", "clear"})
HISTORY: Final = 20


@dataclass(frozen=True, slots=True)
class Speaker:
    """Who said a caption, as the page shows it: the name, the label before the text, its number for the colour."""

    name: str
    label: str  # "" when labels are off (speakers.label: ""): the page shows the text alone
    number: int  # the speaker's number, counted from 1 in the order heard (CSS .speaker-<n>); 0 = none


@dataclass(frozen=True, slots=True)
class CaptionEvent:
    """One caption change for one language; `at` is on the hub's clock (monotonic seconds)."""

    kind: str
    text: str
    at: float
    speaker: Speaker | None = None


class OverlaySubscription:
    """One connected page: a bounded queue of events for one language."""

    def __init__(self, language: str, partials: bool, maxsize: int) -> None:
        self.language = language
        self.partials = partials
        self.maxsize = maxsize
        self.closed = False
        self.dropped = False  # closed because it fell behind, not because the server stops
        self.writing = False
        self.abort: Callable[[], None] | None = None  # breaks a write stuck on a client that stopped reading
        self._events: deque[CaptionEvent] = deque()
        self._wakeup = asyncio.Event()

    def offer(self, ev: CaptionEvent) -> bool:
        """Queue ev; False when the queue is full of finals (the caller drops this subscriber)."""
        q = self._events
        if ev.kind == "clear":
            q.clear()  # everything before a clear would be wiped from the page anyway
        elif ev.kind == "partial" and q and q[-1].kind == "partial":
            q[-1] = ev  # a partial replaces the previous one on the page, so only the newest matters
            return True
        q.append(ev)
        self._wakeup.set()
        if len(q) <= self.maxsize:
            return True
        for i, old in enumerate(q):
            if old.kind == "partial":
                del q[i]
                return True
        return False

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()
        if self.writing and self.abort is not None:
            self.abort()

    async def next_batch(self, timeout_s: float) -> list[CaptionEvent]:
        """Wait up to timeout_s for events; return and remove all queued ones ([] on timeout or close)."""
        if not self._events and not self.closed:
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._wakeup.wait()
        batch = list(self._events)
        self._events.clear()
        return batch


class OverlayHub:
    """Fans caption events out to overlay pages and keeps recent finals for pages that connect later."""

    def __init__(
        self,
        *,
        queue_size: int = 64,
        heartbeat_s: float = 15.0,
        write_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue_size = queue_size
        self.heartbeat_s = heartbeat_s
        self.write_timeout_s = write_timeout_s
        self.dropped_subscribers = 0
        self._clock = clock
        self._languages: tuple[str, ...] = ()
        self._finals: dict[str, deque[CaptionEvent]] = {}
        self._partial: dict[str, CaptionEvent] = {}
        self._subs: dict[str, set[OverlaySubscription]] = {}

    @property
    def languages(self) -> tuple[str, ...]:
        return self._languages

    def set_languages(self, languages: Iterable[str]) -> None:
        self._languages = tuple(dict.fromkeys(languages))

    def publish(self, language: str, kind: str, text: str, speaker: Speaker | None = None) -> None:
        """Record and fan out one event; never waits (call on the loop thread)."""
        if kind not in KINDS:
            raise ValueError(f"unknown caption kind {kind!r}")
        ev = CaptionEvent(kind, "" if kind == "clear" else text, self._clock(), None if kind == "clear" else speaker)
        if kind == "final":
            self._finals.setdefault(language, deque(maxlen=HISTORY)).append(ev)
            self._partial.pop(language, None)
        elif kind == "partial" and text:
            self._partial[language] = ev
        else:  # a clear, or an emptied partial
            self._partial.pop(language, None)
            if kind == "clear":
                self._finals.pop(language, None)
        for sub in list(self._subs.get(language, ())):
            if (kind != "partial" or sub.partials) and not sub.offer(ev):
                self.dropped_subscribers += 1
                log.warning("overlay page for %s fell behind; disconnecting it (it reconnects)", language)
                sub.dropped = True
                self.unsubscribe(sub)
                sub.close()

    def subscribe(self, language: str, *, partials: bool = True) -> tuple[OverlaySubscription, dict[str, Any]]:
        """A new subscription and, taken at the same moment, the replay event for it."""
        sub = OverlaySubscription(language, partials, self.queue_size)
        self._subs.setdefault(language, set()).add(sub)
        return sub, self.replay(language, partials=partials)

    def unsubscribe(self, sub: OverlaySubscription) -> None:
        subs = self._subs.get(sub.language)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.language]

    def subscriber_count(self, language: str | None = None) -> int:
        if language is not None:
            return len(self._subs.get(language, ()))
        return sum(len(s) for s in self._subs.values())

    def replay(self, language: str, *, partials: bool = True) -> dict[str, Any]:
        """Recent finals (oldest first) and the current partial, with their ages; the page decides what is stale."""
        now = self._clock()
        partial = self._partial.get(language) if partials else None
        return {
            "kind": "replay",
            "captions": [_caption(ev, now) for ev in self._finals.get(language, ())],
            "partial": _caption(partial, now) if partial is not None else None,
        }

    def event_json(self, ev: CaptionEvent) -> dict[str, Any]:
        return {"kind": ev.kind, **_caption(ev, self._clock())}


def _caption(ev: CaptionEvent, now: float) -> dict[str, Any]:
    out: dict[str, Any] = {"text": ev.text, "age_s": round(max(0.0, now - ev.at), 3)}
    if ev.speaker is not None:
        out["speaker"] = {"name": ev.speaker.name, "label": ev.speaker.label, "number": ev.speaker.number}
    return out


# -- HTTP handlers

HUB_KEY: Final = web.AppKey("overlay_hub", OverlayHub)


class _Streams:
    """The open event streams of one app, so shutdown can end them instead of waiting out the handler timeout."""

    def __init__(self, limit: int) -> None:
        self.open: set[OverlaySubscription] = set()
        self.closing = False
        self.limit = limit


STREAMS_KEY: Final = web.AppKey("overlay_streams", _Streams)


def _language(request: web.Request) -> str:
    hub = request.app[HUB_KEY]
    known = ", ".join(hub.languages) or "(none configured)"
    lang = request.query.get("lang")
    if not lang:
        raise web.HTTPBadRequest(text=f"missing lang: add ?lang=<language> (known languages: {known})\n")
    if lang not in hub.languages:
        raise web.HTTPNotFound(text=f"unknown lang {lang[:40]!r}; known languages: {known}\n")
    return lang


def _style(query: Mapping[str, str], allowed: Iterable[str] | None = None) -> OverlayStyle:
    try:
        return OverlayStyle.from_query(query, allowed)
    except OverlayParamError as e:
        raise web.HTTPBadRequest(text=f"bad overlay parameter: {e}\n") from None


async def overlay_page(request: web.Request) -> web.Response:
    lang = _language(request)
    style = _style(request.query)
    events = "overlay/events?" + urlencode({"lang": lang, "partials": int(style.partials)})
    return web.Response(
        text=render_page(lang, style, events),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


async def overlay_events(request: web.Request) -> web.StreamResponse:
    lang = _language(request)
    style = _style(request.query, allowed=("lang", "partials"))
    hub, streams = request.app[HUB_KEY], request.app[STREAMS_KEY]
    if streams.closing:
        raise web.HTTPServiceUnavailable(text="shutting down\n")
    if len(streams.open) >= streams.limit:
        # Each stream holds a socket for hours; EventSource retries after `retry` on its own.
        raise web.HTTPServiceUnavailable(text="too many overlay pages open (http.max_event_streams)\n")
    # Subscribe before the first await: no event can fall between the replay snapshot and the queue.
    sub, replay = hub.subscribe(lang, partials=style.partials)
    streams.open.add(sub)
    transport = request.transport
    if transport is not None:
        sub.abort = transport.abort
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # a reverse proxy must not buffer the stream
        }
    )
    try:
        await resp.prepare(request)
        out = f"retry: {RETRY_MS}\n\n" + _sse(replay)
        while not sub.closed:
            sub.writing = True
            async with asyncio.timeout(hub.write_timeout_s):
                await resp.write(out.encode())
            sub.writing = False
            batch = await sub.next_batch(hub.heartbeat_s)
            # A comment line keeps proxies and OBS from timing out an idle stream.
            out = "".join(_sse(hub.event_json(ev)) for ev in batch) or ": keepalive\n\n"
    except (ConnectionError, TimeoutError):
        log.debug("overlay stream for %s ended by the client or a stalled write", lang)
        if transport is not None:
            transport.abort()
    finally:
        hub.unsubscribe(sub)
        streams.open.discard(sub)
    return resp


def _sse(data: Mapping[str, Any]) -> str:
    # json.dumps escapes newlines, so every event is one data: line.
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _close_streams(app: web.Application) -> None:
    streams = app[STREAMS_KEY]
    streams.closing = True
    for sub in list(streams.open):
        sub.close()


def add_routes(app: web.Application, hub: OverlayHub, max_streams: int = 256) -> None:
    """Register GET /overlay and GET /overlay/events on app, serving hub (at most `max_streams` event streams)."""
    app[HUB_KEY] = hub
    app[STREAMS_KEY] = _Streams(max_streams)
    app.router.add_get("/overlay", overlay_page)
    app.router.add_get("/overlay/events", overlay_events)
    app.on_shutdown.append(_close_streams)
