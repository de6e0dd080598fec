"""aiohttp app: /healthz, /status, /metrics, the dashboard at / and, given a hub, the OBS browser-source overlay."""

from __future__ import annotations

import asyncio
import hmac
import inspect
import ipaddress
import json
import logging
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..config import HttpConfig
from ..status import Status
from . import dashboard, overlay

log = logging.getLogger(__name__)
# A failing accept() (out of file descriptors) is logged once per this many seconds, and counted always.
_ACCEPT_LOG_EVERY_S = 60.0
# File descriptors the daemon needs besides HTTP: audio, OBS, translator sessions, log, transcripts.
_OTHER_FDS = 128

STATUS_KEY = web.AppKey("status", Status)
# An operator action: gets the request's JSON body ({} when empty), returns what to answer (or raises ControlError).
Control = Callable[[dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]
CONTROLS_KEY: web.AppKey[dict[str, Control]] = web.AppKey("controls")
TOKEN_KEY = web.AppKey("token", str)
SETTINGS_KEY = web.AppKey("http_settings", HttpConfig)


class ControlError(Exception):
    """An operator request that cannot be done as asked (unknown output, unsupported language ...): a 400."""


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def status(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATUS_KEY].as_dict())


async def metrics(request: web.Request) -> web.Response:
    st = request.app[STATUS_KEY]
    st.metrics.uptime.set(time.time() - st.started)
    body = generate_latest(st.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def control(request: web.Request) -> web.Response:
    """POST /control/<action>: an operator action, allowed only with the configured bearer token."""
    token = request.app[TOKEN_KEY]
    if not token:
        return web.json_response({"error": "control endpoints are off: set http.token"}, status=403)
    # Header bytes that are not UTF-8 arrive as surrogates: encoded back as they came, they simply do not match.
    given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
    # Compared in constant time; also on loopback, where any local program could otherwise steer the daemon.
    if not hmac.compare_digest(given, f"Bearer {token}".encode()):
        return web.json_response({"error": "missing or wrong bearer token"}, status=401)
    controls = request.app[CONTROLS_KEY]
    action = controls.get(request.match_info["action"])
    if action is None:
        known = sorted(controls)
        return web.json_response({"error": f"unknown action; known: {', '.join(known)}"}, status=404)
    try:
        async with asyncio.timeout(request.app[SETTINGS_KEY].header_timeout_s):
            raw = await request.read()
    except TimeoutError:
        return web.json_response({"error": "the body came too slowly"}, status=408)
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return web.json_response({"error": "the body must be JSON"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "the body must be a JSON object"}, status=400)
    try:
        result = action(body)
        if inspect.isawaitable(result):
            result = await result
    except ControlError as e:
        return web.json_response({"error": str(e)}, status=400)
    return web.json_response({"ok": True, **result})


def host_allowed(header: str | None, allowed: frozenset[str]) -> bool:
    """Whether a Host header names this daemon: an IP literal, localhost, or a name in `allowed`.

    A page in the streamer's browser can point a name it owns at 127.0.0.1 (DNS rebinding) and then read /status as
    same-origin; its requests still carry its own name, which is refused here.
    """
    if not header:
        return True  # HTTP/1.0 without Host: no browser, nothing to rebind
    name = header.strip()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    name = name.rstrip(".").lower()
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return name == "localhost" or name.endswith(".localhost") or name in allowed


def _allowed_hosts(settings: HttpConfig) -> frozenset[str]:
    names = {h.rstrip(".").lower() for h in settings.allowed_hosts}
    if settings.host not in ("", "0.0.0.0", "::"):
        names.add(settings.host.lower())
    return frozenset(names)


def make_app(
    st: Status,
    hub: overlay.OverlayHub | None = None,
    controls: Mapping[str, Control] | None = None,
    token: str = "",
    settings: HttpConfig | None = None,
    guard: ConnectionGuard | None = None,
) -> web.Application:
    settings = settings or HttpConfig()
    allowed = _allowed_hosts(settings)

    @web.middleware
    async def checked(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
        if not host_allowed(request.headers.get("Host"), allowed):
            st.metrics.http_refused.labels("host").inc()
            text = "this Host is not allowed: add it to http.allowed_hosts\n"
            return web.Response(status=403, text=text)
        conn = guard.get(request.transport) if guard is not None else None
        if conn is None:
            return await handler(request)
        conn.busy += 1
        conn.stream = conn.stream or request.path == "/overlay/events"
        try:
            return await handler(request)
        finally:
            conn.busy -= 1
            conn.idle_since = time.monotonic()

    app = web.Application(middlewares=[checked])
    app[STATUS_KEY] = st
    app[CONTROLS_KEY] = dict(controls or {})
    app[TOKEN_KEY] = token
    app[SETTINGS_KEY] = settings
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/status", status)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/control/{action:.+}", control)
    dashboard.add_routes(app)
    if hub is not None:
        overlay.add_routes(app, hub, max_streams=settings.max_event_streams)
    return app


@dataclass
class _Conn:
    transport: asyncio.Transport
    idle_since: float
    busy: int = 0  # requests being answered on it
    stream: bool = False  # an overlay event stream: capped apart (http.max_event_streams), never idle
    timer: asyncio.TimerHandle | None = None


class ConnectionGuard:
    """Caps open connections and closes those that send no complete request in time (half-sent, idle).

    At the cap the oldest connection that is not answering a request is closed for the new one, so a pile of
    half-sent requests cannot lock /healthz out; if all are busy, the new one is closed.
    """

    def __init__(self, max_connections: int, header_timeout_s: float, st: Status) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self._metrics = st.metrics
        self._conns: dict[asyncio.BaseTransport, _Conn] = {}  # in order of arrival

    def get(self, transport: asyncio.BaseTransport | None) -> _Conn | None:
        return self._conns.get(transport) if transport is not None else None

    def opened(self, transport: asyncio.Transport) -> None:
        counted = [c for c in self._conns.values() if not c.stream]
        if len(counted) >= self.max_connections:
            idle = next((c for c in counted if not c.busy), None)
            self._metrics.http_refused.labels("max_connections").inc()
            if idle is None:
                transport.abort()
                return
            idle.transport.abort()
            self._forget(idle.transport)
        conn = self._conns[transport] = _Conn(transport, time.monotonic())
        self._arm(conn, self.header_timeout_s)

    def closed(self, transport: asyncio.BaseTransport) -> None:
        self._forget(transport)

    def _forget(self, transport: asyncio.BaseTransport) -> None:
        conn = self._conns.pop(transport, None)
        if conn is not None and conn.timer is not None:
            conn.timer.cancel()

    def _arm(self, conn: _Conn, delay: float) -> None:
        conn.timer = asyncio.get_running_loop().call_later(delay, self._expire, conn)

    def _expire(self, conn: _Conn) -> None:
        if conn.busy or conn.stream:
            self._arm(conn, self.header_timeout_s)
            return
        left = conn.idle_since + self.header_timeout_s - time.monotonic()
        if left > 0:
            self._arm(conn, left)
            return
        self._metrics.http_refused.labels("timeout").inc()
        conn.transport.abort()
        self._forget(conn.transport)


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, reporting its opening and closing to the guard."""

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._guard.opened(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard.closed(self._transport)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class _ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log: a malformed request is one WARNING line, not an ERROR with a traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            # What the client sent is quoted in the message: keep it short.
            self.warning("bad HTTP request from %s: %.200s", args[0] if args else "?", " ".join(str(exc).split()))
        else:
            self.error(msg, *args, exc_info=exc_info, **kwargs)


class _Runner(web.AppRunner):
    """An AppRunner whose listening socket hands every connection through the guard."""

    listener: asyncio.Server | None = None

    async def cleanup(self) -> None:
        if self.listener is not None:
            self.listener.close()
        await super().cleanup()


def _quiet_accept_errors(st: Status) -> None:
    """Count failing accept()s (no file descriptors left) and log them once a minute, not a traceback each."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    next_log = 0.0

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        nonlocal next_log
        exc = context.get("exception")
        where = f"{context.get('message', '')} {context.get('handle', '')}"
        if not (isinstance(exc, OSError) and "accept" in where):
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        st.metrics.http_accept_errors.inc()
        if time.monotonic() >= next_log:
            next_log = time.monotonic() + _ACCEPT_LOG_EVERY_S
            log.warning(
                "cannot accept HTTP connections: %s (open-file limit %d); logged once a minute, "
                "counted in captioner_http_accept_errors_total",
                exc,
                resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            )

    loop.set_exception_handler(handler)


async def start(
    st: Status,
    host: str,
    port: int,
    hub: overlay.OverlayHub | None = None,
    controls: Mapping[str, Control] | None = None,
    token: str = "",
    settings: HttpConfig | None = None,
) -> tuple[web.AppRunner, int]:
    """Serve until the runner is cleaned up; returns the runner and the bound port."""
    settings = settings or HttpConfig(host=host, port=port)
    guard = ConnectionGuard(settings.max_connections, settings.header_timeout_s, st)
    app = make_app(st, hub, controls, token, settings, guard)
    runner = _Runner(app, access_log=None, handle_signals=False, logger=_ServerLog(logging.getLogger("aiohttp.server")))
    await runner.setup()
    assert runner.server is not None
    factory = runner.server
    loop = asyncio.get_running_loop()
    runner.listener = await loop.create_server(lambda: _Guarded(factory(), guard), host, port, reuse_address=True)
    _quiet_accept_errors(st)
    _warn_about_exposure(host, token, settings)
    bound = runner.listener.sockets[0].getsockname()[1] if runner.listener.sockets else port
    return runner, int(bound)


def _warn_about_exposure(host: str, token: str, settings: HttpConfig) -> None:
    loopback = host == "localhost" or (_is_ip(host) and ipaddress.ip_address(host).is_loopback)
    if not loopback and not token:
        log.warning(
            "HTTP listens on %s without http.token: anyone who can reach the port reads /status and the captions "
            "(control stays off); keep http.host on 127.0.0.1 unless the network is trusted",
            host,
        )
    needed = settings.max_connections + settings.max_event_streams + _OTHER_FDS
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "open-file limit %d is below the %d that http.max_connections + http.max_event_streams need: "
            "raise it (LimitNOFILE= in the unit, ulimit -n) or lower them",
            soft,
            needed,
        )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False
