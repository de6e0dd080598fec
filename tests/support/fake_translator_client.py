"""A real aiohttp WebSocket client for testing the fake LiveTranslate server over loopback, with its fixtures."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np
import pytest_asyncio

from tests.support.fake_translator import Q35_MODEL, FakeTranslator

SCRIPT = ["hello world", "good morning everyone"]
Event = dict[str, Any]


def tone(seconds: float, amp: float = 0.3) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    return (np.sin(2 * np.pi * 440 * t) * amp * 32767).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return bytes(int(16000 * seconds) * 2)


TWO_BURSTS = tone(1.0) + silence(1.0) + tone(1.0) + silence(1.0)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeTranslator]:
    ft = FakeTranslator(script=SCRIPT)
    await ft.start()
    yield ft
    await ft.stop()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def connect(
    http: aiohttp.ClientSession, fake: FakeTranslator, model: str = Q35_MODEL, key: str | None = "test-key"
) -> aiohttp.ClientWebSocketResponse:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return await http.ws_connect(f"{fake.url}?model={model}", headers=headers)


async def recv(ws: aiohttp.ClientWebSocketResponse) -> Event:
    msg = await ws.receive(timeout=3.0)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    ev: Event = json.loads(msg.data)
    return ev


async def recv_until(ws: aiohttp.ClientWebSocketResponse, etype: str, count: int = 1) -> list[Event]:
    out: list[Event] = []
    while sum(e["type"] == etype for e in out) < count:
        out.append(await recv(ws))
    return out


async def send_audio(ws: aiohttp.ClientWebSocketResponse, pcm: bytes) -> None:
    for i in range(0, len(pcm), 3200):  # 100 ms chunks, faster than real time (§6)
        await ws.send_json({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i : i + 3200]).decode()})


async def configure(ws: aiohttp.ClientWebSocketResponse, **session: Any) -> Event:
    assert (await recv(ws))["type"] == "session.created"
    await ws.send_json({"type": "session.update", "session": session})
    ev = await recv(ws)
    assert ev["type"] == "session.updated", ev
    return ev


def displays(events: list[Event], etype: str) -> list[str]:
    return [e["text"] + e["stash"] for e in events if e["type"] == etype]


def has_retraction(shown: list[str]) -> bool:
    return any(not b.startswith(a) for a, b in itertools.pairwise(shown))


def per_response(events: list[Event]) -> list[list[Event]]:
    """Split a stream at response.done, keeping the events that led up to each."""
    groups: list[list[Event]] = [[]]
    for e in events:
        groups[-1].append(e)
        if e["type"] == "response.done":
            groups.append([])
    return [g for g in groups if any(e["type"] == "response.done" for e in g)]
