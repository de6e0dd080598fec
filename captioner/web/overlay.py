"""OBS browser-source overlay: a caption hub, the self-contained HTML page and its Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from aiohttp import web

from . import assets

log = logging.getLogger(__name__)

KINDS: Final = frozenset({"final", "partial", "clear"})
HISTORY: Final = 20
#: What a reconnecting EventSource waits; short, as a blank caption layer on stream is worse than a retry.
RETRY_MS: Final = 1000


@dataclass(frozen=True, slots=True)
class CaptionEvent:
    """One caption change for one language; `at` is on the hub's clock (monotonic seconds)."""

    kind: str
    text: str
    at: float


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

    def publish(self, language: str, kind: str, text: str) -> None:
        """Record and fan out one event; never waits (call on the loop thread)."""
        if kind not in KINDS:
            raise ValueError(f"unknown caption kind {kind!r}")
        ev = CaptionEvent(kind, "" if kind == "clear" else text, self._clock())
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
    return {"text": ev.text, "age_s": round(max(0.0, now - ev.at), 3)}


# -- style parameters

CSS_COLOR_NAMES: Final = frozenset(
    """aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue blueviolet brown burlywood
    cadetblue chartreuse chocolate coral cornflowerblue cornsilk crimson cyan darkblue darkcyan darkgoldenrod darkgray
    darkgreen darkgrey darkkhaki darkmagenta darkolivegreen darkorange darkorchid darkred darksalmon darkseagreen
    darkslateblue darkslategray darkslategrey darkturquoise darkviolet deeppink deepskyblue dimgray dimgrey dodgerblue
    firebrick floralwhite forestgreen fuchsia gainsboro ghostwhite gold goldenrod gray green greenyellow grey honeydew
    hotpink indianred indigo ivory khaki lavender lavenderblush lawngreen lemonchiffon lightblue lightcoral lightcyan
    lightgoldenrodyellow lightgray lightgreen lightgrey lightpink lightsalmon lightseagreen lightskyblue
    lightslategray lightslategrey lightsteelblue lightyellow lime limegreen linen magenta maroon mediumaquamarine
    mediumblue mediumorchid mediumpurple mediumseagreen mediumslateblue mediumspringgreen mediumturquoise
    mediumvioletred midnightblue mintcream mistyrose moccasin navajowhite navy oldlace olive olivedrab orange
    orangered orchid palegoldenrod palegreen paleturquoise palevioletred papayawhip peachpuff peru pink plum
    powderblue purple rebeccapurple red rosybrown royalblue saddlebrown salmon sandybrown seagreen seashell sienna
    silver skyblue slateblue slategray slategrey snow springgreen steelblue tan teal thistle tomato turquoise violet
    wheat white whitesmoke yellow yellowgreen transparent""".split()
)
GENERIC_FONTS: Final = frozenset(
    "serif sans-serif monospace cursive fantasy system-ui ui-serif ui-sans-serif ui-monospace ui-rounded emoji "
    "math fangsong".split()
)
_HEX = re.compile(r"#?([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
_NUMBER = re.compile(r"[0-9]{1,4}(\.[0-9]{1,3})?")
# Letters (any script), digits, space, - _ . and commas between families: nothing that can leave a quoted CSS string.
_FONT = re.compile(r"[\w .\-]+(,[\w .\-]+)*")
_HTML_LANG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


class OverlayParamError(ValueError):
    """A query parameter of an overlay URL is missing or invalid; str() names the parameter."""


@dataclass(frozen=True)
class OverlayStyle:
    """How the page draws captions; every field is one query parameter of the overlay URL."""

    font: str = "sans-serif"  # CSS font-family list, families quoted unless generic
    size: float = 48  # font size, px
    color: str = "white"  # text colour
    outline: float = 3  # outline width, px (0 = none)
    outline_color: str = "black"
    bg: str = "transparent"  # box colour behind each caption
    lines: int = 2  # text lines visible at most; older ones scroll off the top
    align: str = "center"  # left | center | right
    clear: float = 6  # seconds without captions before fading out (0 = never)
    fade: float = 0.4  # fade in/out duration, seconds
    partials: bool = True  # show live partial text

    @classmethod
    def from_query(cls, query: Mapping[str, str], allowed: Iterable[str] | None = None) -> OverlayStyle:
        """Parse and validate; raises OverlayParamError naming the parameter."""
        known = set(allowed) if allowed is not None else {*STYLE_PARAMS, "lang"}
        for key in query:
            if key not in known:
                raise OverlayParamError(f"unknown parameter {key!r}; known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for key, parse in STYLE_PARAMS.items():
            raw = query.get(key)
            if raw is not None:
                values[key] = parse(key, raw.strip())
        return cls(**values)


def _number(lo: float, hi: float, integer: bool = False) -> Callable[[str, str], float]:
    def parse(key: str, raw: str) -> float:
        if _NUMBER.fullmatch(raw) and (not integer or "." not in raw) and lo <= float(raw) <= hi:
            return int(raw) if integer else float(raw)
        kind = "an integer" if integer else "a number"
        raise OverlayParamError(f"{key} must be {kind} from {lo:g} to {hi:g}, got {raw[:40]!r}")

    return parse


def _color(key: str, raw: str) -> str:
    if not raw:
        raise OverlayParamError(f"{key} is empty (write '#' as %23 in a URL, or leave the '#' out: {key}=ff0000)")
    if m := _HEX.fullmatch(raw):
        return "#" + m.group(1).lower()
    if raw.lower() in CSS_COLOR_NAMES:
        return raw.lower()
    raise OverlayParamError(f"{key} must be #rgb, #rrggbb, #rrggbbaa or a CSS colour name, got {raw[:40]!r}")


def _font(key: str, raw: str) -> str:
    if len(raw) > 100 or not _FONT.fullmatch(raw):
        raise OverlayParamError(f"{key} must be font family names (letters, digits, space - _ . ,), got {raw[:40]!r}")
    families = [f.strip() for f in raw.split(",") if f.strip()]
    if not families:
        raise OverlayParamError(f"{key} is empty")
    return ", ".join(f if f.lower() in GENERIC_FONTS else f'"{f}"' for f in families)


def _choice(*options: str) -> Callable[[str, str], str]:
    def parse(key: str, raw: str) -> str:
        if raw in options:
            return raw
        raise OverlayParamError(f"{key} must be one of {'|'.join(options)}, got {raw[:40]!r}")

    return parse


def _flag(key: str, raw: str) -> bool:
    if raw in ("1", "0"):
        return raw == "1"
    raise OverlayParamError(f"{key} must be 1 or 0, got {raw[:40]!r}")


STYLE_PARAMS: Final[dict[str, Callable[[str, str], Any]]] = {
    "font": _font,
    "size": _number(8, 200),
    "color": _color,
    "outline": _number(0, 20),
    "outline_color": _color,
    "bg": _color,
    "lines": _number(1, 10, integer=True),
    "align": _choice("left", "center", "right"),
    "clear": _number(0, 3600),
    "fade": _number(0, 10),
    "partials": _flag,
}


# -- the page

# static/overlay.html with its CSS and JS inlined: OBS's browser source gets everything in one response. The
# @@NAME@@ placeholders are filled per page (render_page); the CSS has one of its own, @@VARS@@.
_HTML: Final = assets.text("overlay.html")
_STYLE: Final = assets.inline("overlay.css")
_SCRIPT: Final = assets.inline("overlay.js")


def _shadow(width: float, color: str) -> str:
    """A ring of hard text-shadows: an outline every browser engine (also OBS's older CEF) draws the same."""
    if width <= 0:
        return "none"
    steps = 16 if width > 2 else 8
    rings = [
        f"{width * math.cos(2 * math.pi * i / steps):.2f}px {width * math.sin(2 * math.pi * i / steps):.2f}px 0 {color}"
        for i in range(steps)
    ]
    return ", ".join(rings)


def render_page(language: str, style: OverlayStyle, events_url: str) -> str:
    """The self-contained overlay page (inline CSS and JS, no external resources)."""
    css_vars = {
        "--font": style.font,
        "--size": f"{style.size:g}px",
        "--lh": f"{style.size * 1.3:.2f}px",
        "--color": style.color,
        "--shadow": _shadow(style.outline, style.outline_color),
        "--bg": style.bg,
        "--lines": str(style.lines),
        "--align": style.align,
        "--fade": f"{style.fade:g}s",
    }
    config = {
        "events": events_url,
        "lines": style.lines,
        "clear": style.clear,
        "fade": style.fade,
        "partials": style.partials,
        "retry_ms": RETRY_MS,
    }
    # The config sits inside <script>: escape what could end the element or open a comment.
    config_json = json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    lang_attr = f' lang="{language}"' if _HTML_LANG.fullmatch(language) else ""
    style_text = assets.fill(_STYLE, {"VARS": " ".join(f"{k}: {v};" for k, v in css_vars.items())})
    values = {
        "LANG": lang_attr,
        "TITLE": html.escape(f"captions: {language}"),
        "STYLE": style_text,
        "SCRIPT": _SCRIPT,
        "CONFIG": config_json,
    }
    return assets.fill(_HTML, values)


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
