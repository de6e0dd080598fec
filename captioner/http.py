"""aiohttp app: /healthz, /status, /metrics, the dashboard at / and, given a hub, the OBS browser-source overlay."""

from __future__ import annotations

import hmac
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import dashboard, overlay
from .status import Status

STATUS_KEY = web.AppKey("status", Status)
# An operator action: gets the request's JSON body ({} when empty), returns what to answer (or raises ControlError).
Control = Callable[[dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]
CONTROLS_KEY: web.AppKey[dict[str, Control]] = web.AppKey("controls")
TOKEN_KEY = web.AppKey("token", str)


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
    given = request.headers.get("Authorization", "")
    # Compared in constant time; also on loopback, where any local program could otherwise steer the daemon.
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return web.json_response({"error": "missing or wrong bearer token"}, status=401)
    controls = request.app[CONTROLS_KEY]
    action = controls.get(request.match_info["action"])
    if action is None:
        known = sorted(controls)
        return web.json_response({"error": f"unknown action; known: {', '.join(known)}"}, status=404)
    raw = await request.read()
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


def make_app(
    st: Status,
    hub: overlay.OverlayHub | None = None,
    controls: Mapping[str, Control] | None = None,
    token: str = "",
) -> web.Application:
    app = web.Application()
    app[STATUS_KEY] = st
    app[CONTROLS_KEY] = dict(controls or {})
    app[TOKEN_KEY] = token
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/status", status)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/control/{action:.+}", control)
    dashboard.add_routes(app)
    if hub is not None:
        overlay.add_routes(app, hub)
    return app


async def start(
    st: Status,
    host: str,
    port: int,
    hub: overlay.OverlayHub | None = None,
    controls: Mapping[str, Control] | None = None,
    token: str = "",
) -> tuple[web.AppRunner, int]:
    """Serve until the runner is cleaned up; returns the runner and the bound port."""
    runner = web.AppRunner(make_app(st, hub, controls, token), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
