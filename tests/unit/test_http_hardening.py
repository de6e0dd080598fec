"""The HTTP server against hostile input, over real loopback sockets: bad headers, foreign Host names, exposure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from captioner.config import HttpConfig
from captioner.status import Status
from captioner.web import server as http

pytestmark = pytest.mark.timeout(60)


async def raw(port: int, request: bytes) -> bytes:
    """Send bytes as they are, return the whole answer (the server closes or answers with Connection: close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[int]:
    settings = HttpConfig(allowed_hosts=("captions.lan",))
    runner, port = await http.start(
        Status("t"), "127.0.0.1", 0, controls={"pause": lambda body: {}}, token="tok", settings=settings
    )
    yield port
    await runner.cleanup()


async def test_an_authorization_header_that_is_not_utf8_is_401(server: int) -> None:
    answer = await raw(
        server,
        b"POST /control/pause HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \xff\xfe\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 401"), answer
    ok = await raw(
        server,
        b"POST /control/pause HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer tok\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    assert ok.startswith(b"HTTP/1.1 200"), ok


@pytest.mark.parametrize(
    ("host", "status"),
    [
        (b"127.0.0.1:8765", b"200"),
        (b"localhost:8765", b"200"),
        (b"[::1]:8765", b"200"),
        (b"192.168.1.20:8765", b"200"),  # OBS on another machine, by address
        (b"captions.lan:8765", b"200"),  # http.allowed_hosts
        (b"CAPTIONS.LAN.", b"200"),
        (b"attacker.example:8765", b"403"),  # DNS rebinding: the page's own name
        (b"127.0.0.1.attacker.example", b"403"),
    ],
)
async def test_only_this_daemons_host_names_are_answered(server: int, host: bytes, status: bytes) -> None:
    answer = await raw(server, b"GET /status HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 " + status + (b" OK" if status == b"200" else b" Forbidden")
    if status == b"403":
        assert b"http.allowed_hosts" in answer and b"uptime_s" not in answer


async def test_a_malformed_request_is_one_warning_line(server: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await raw(server, b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header Line\r\n\r\n")
    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), answer
    records = [r for r in caplog.records if r.name.startswith("aiohttp")]
    assert [r.levelname for r in records] == ["WARNING"], records
    assert records[0].getMessage().startswith("bad HTTP request from 127.0.0.1: ")
    assert records[0].exc_info is None and "\n" not in records[0].getMessage()


async def test_listening_beyond_loopback_without_a_token_warns(caplog: pytest.LogCaptureFixture) -> None:
    for host, token, warned in [("0.0.0.0", "", True), ("0.0.0.0", "tok", False), ("127.0.0.1", "", False)]:
        caplog.clear()
        runner, _ = await http.start(Status("t"), host, 0, token=token)
        await runner.cleanup()
        assert any("without http.token" in r.getMessage() for r in caplog.records) == warned, (host, token)
