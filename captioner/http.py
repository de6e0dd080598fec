"""aiohttp app: /healthz, /status, /metrics and, given a hub, the OBS browser-source overlay."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import overlay
from .status import Status

STATUS_KEY = web.AppKey("status", Status)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def status(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATUS_KEY].as_dict())


async def metrics(request: web.Request) -> web.Response:
    st = request.app[STATUS_KEY]
    st.metrics.uptime.set(time.time() - st.started)
    body = generate_latest(st.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(st: Status, hub: overlay.OverlayHub | None = None) -> web.Application:
    app = web.Application()
    app[STATUS_KEY] = st
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/status", status)
    app.router.add_get("/metrics", metrics)
    if hub is not None:
        overlay.add_routes(app, hub)
    return app


async def start(st: Status, host: str, port: int, hub: overlay.OverlayHub | None = None) -> tuple[web.AppRunner, int]:
    """Serve until the runner is cleaned up; returns the runner and the bound port."""
    runner = web.AppRunner(make_app(st, hub), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
