"""A session's final goes out before its own later events are handled (#21: eight languages' finals of one moment
reach OBS in one write instead of waiting behind each session's usage bookkeeping). Real WebSocket, local server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from captioner.errors import LinkError
from captioner.status import Status
from captioner.translation.connection import Connection
from captioner.translation.meters import Meters
from captioner.translation.protocol import Q35

FINAL = {"type": "response.text.done", "text": "Bonjour"}
USAGE = {"type": "response.done", "response": {"usage": {"input_tokens": 10, "output_tokens": 2}}}


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    """A service that sends a final and its response.done back to back in one write, then closes."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for event in (FINAL, USAGE, FINAL, USAGE):
            await ws.send_str(json.dumps(event))
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/"
    await runner.cleanup()


async def test_others_run_between_a_final_and_the_sessions_next_event(server_url: str) -> None:
    order: list[str] = []

    def on_event(conn: Connection, event: dict[str, Any], received: float) -> bool:
        order.append(event["type"])
        if event["type"] == FINAL["type"]:
            # What another session's final (or the OBS writer) would do in this moment: it is already waiting.
            asyncio.get_running_loop().call_soon(order.append, "others")
            return True
        return False

    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server_url)
        await asyncio.sleep(0.2)  # every frame is in the socket before the first is read: one burst
        conn = Connection(
            http,
            ws,
            dialect=Q35,
            meters=Meters(Status("test").metrics, "fr"),
            usage_mode=None,
            on_event=on_event,
            on_caption=lambda caption: None,
        )
        with pytest.raises(LinkError):
            await asyncio.wait_for(conn._receive(), 5)
    assert order == ["response.text.done", "others", "response.done"] * 2
