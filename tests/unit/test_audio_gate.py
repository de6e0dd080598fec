"""The audio gate in the daemon: one decision for all sessions, holds, idle sessions (fake translator, real sockets)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from captioner.config import parse
from captioner.status import LinkState
from tests.support.daemon_harness import GatedDaemon, running_daemon, until
from tests.support.fake_translator import FakeTranslator

pytestmark = pytest.mark.timeout(60)
KEY = "sk-gate-secret"


@pytest.fixture
async def fake(inloop_fake: Callable[..., Awaitable[FakeTranslator]]) -> FakeTranslator:
    return await inloop_fake(api_key=KEY)


@asynccontextmanager
async def running(fake: FakeTranslator, targets: tuple[str, ...] = ("ja",), **gate: Any) -> AsyncIterator[GatedDaemon]:
    cfg = parse(
        {
            "translator": {"url": fake.url, "api_key": KEY, "targets": list(targets)},
            "obs": {"enabled": False},
            "http": {"enabled": False},
            "gate": gate,
        }
    )
    async with running_daemon(cfg) as daemon:
        yield daemon


THREE_PHRASES = [
    ("silence", 1.0),
    ("tone", 1.0),
    ("silence", 6.0),
    ("tone", 0.8),
    ("silence", 6.0),
    ("tone", 1.2),
    ("silence", 4.0),
]


async def test_same_captions_for_fewer_billed_seconds() -> None:
    results: dict[bool, tuple[list[str], list[str], float, float, list[int]]] = {}
    for enabled in (False, True):
        server = FakeTranslator(api_key=KEY)
        await server.start()
        try:
            async with running(server, ("ja", "zh"), enabled=enabled) as d:
                await d.player.play(THREE_PHRASES)
                await d.wait_finals(3)
                await d.wait_finals(3, "zh")
                sent = d.metric("captioner_audio_sent_seconds_total", target="ja")
                captured = d.metric("captioner_audio_captured_seconds_total")
                received = [c.audio_bytes for c in server.connections]
                results[enabled] = (d.texts(), d.texts("zh"), sent, captured, received)
        finally:
            await server.stop()
    ungated, gated = results[False], results[True]
    assert (
        gated[:2]
        == ungated[:2]
        == (
            ["[ja] utterance 1", "[ja] utterance 2", "[ja] utterance 3"],
            ["[zh] utterance 1", "[zh] utterance 2", "[zh] utterance 3"],
        )
    )
    assert gated[3] == ungated[3] == pytest.approx(20.0)
    assert ungated[2] == pytest.approx(20.0)
    # each phrase: 0.3 s pre-roll + the phrase + 1.2 s trail (qwen3's VAD silence, assumed 1 s, + 100 ms)
    assert gated[2] == pytest.approx(3 * 1.4 + 3.0)
    # both sessions got the same audio from the one gate, and the service got what the metric says
    assert gated[4] == [round(gated[2] * 32000)] * 2


async def test_hold_sends_nothing_but_ends_the_segment_in_flight(fake: FakeTranslator) -> None:
    async with running(fake) as d:
        await d.player.play([("silence", 1.0), ("tone", 0.5)])
        d.feed.hold("operator_pause", True)
        d.feed.hold("obs_not_streaming", True)
        gate = d.status.as_dict()["audio_gate"]
        assert gate["state"] == "held" and gate["held_by"] == ["obs_not_streaming", "operator_pause"]
        # the speech goes on while held: none of it is sent, but the segment cut off still ends
        await d.player.play([("tone", 1.0), ("silence", 3.0)])
        assert await d.wait_finals(1) == ["[ja] utterance 1"]
        conn = fake.connections[0]
        assert conn.audio_bytes == round((0.3 + 0.5 + 1.1) * 32000)  # pre-roll, speech, then the trail in zeros
        assert d.metric("captioner_audio_held_seconds_total", reason="operator_pause") == pytest.approx(4.0)
        assert d.metric("captioner_audio_gate_transitions_total", to="held") == 1

        d.feed.hold("operator_pause", False)
        assert d.status.as_dict()["audio_gate"]["held_by"] == ["obs_not_streaming"]
        await d.player.play([("tone", 1.0)])
        assert conn.audio_bytes == round(1.9 * 32000)
        d.feed.hold("obs_not_streaming", False)
        assert d.status.as_dict()["audio_gate"]["state"] == "closed"
        # speech right at the release is sent from its first chunk
        await d.player.play([("tone", 1.0), ("silence", 3.0)])
        assert await d.wait_finals(2) == ["[ja] utterance 1", "[ja] utterance 2"]
        assert conn.audio_bytes == round((1.9 + 1.0 + 1.1) * 32000)
        assert d.metric("captioner_audio_gate_transitions_total", to="closed") == 2


async def test_stop_mid_phrase_still_delivers_it(fake: FakeTranslator) -> None:
    async with running(fake) as d:
        await d.player.play([("silence", 1.0), ("tone", 1.0)])
        assert d.gate.state.value == "open"
    assert d.texts() == ["[ja] utterance 1"]
    assert fake.connections[0].finished


async def test_long_closed_gate_rotates_idle_sessions_before_the_service_closes_them(
    fake: FakeTranslator, caplog: pytest.LogCaptureFixture
) -> None:
    fake.idle_timeout_s = 1.5
    caplog.set_level(logging.INFO, "captioner")
    async with running(fake) as d:
        d.sessions["ja"].idle_rotate_s = 0.8
        await d.player.play([("silence", 4.0)], pace_s=0.1)  # real time: the gate stays closed
        assert d.metric("captioner_translator_rotations_total", target="ja", reason="idle") >= 3
        assert not any(c.idle_closed for c in fake.connections)
        assert d.sessions["ja"].link.state == LinkState.CONNECTED
        await d.player.play([("tone", 1.0), ("silence", 3.0)])
        assert await d.wait_finals(1) == ["[ja] utterance 1"]
    assert d.metric("captioner_translator_connects_total", target="ja", result="error") == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "rotated session (idle)" not in caplog.text  # debug only: it repeats all through a break


async def test_idle_close_by_the_service_reconnects_quietly(
    fake: FakeTranslator, caplog: pytest.LogCaptureFixture
) -> None:
    fake.idle_timeout_s = 0.7
    caplog.set_level(logging.INFO, "captioner")
    async with running(fake) as d:
        session = d.sessions["ja"]
        session.idle_rotate_s = 1000  # as if the service's limit were shorter than ours
        session.backoff.healthy_after_s = 0.5
        states: set[LinkState] = set()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            states.add(session.link.state)
            await asyncio.sleep(0.01)
        closes = d.metric("captioner_translator_connects_total", target="ja", result="idle_closed")
        assert 2 <= closes <= 5, closes
        assert states <= {LinkState.CONNECTED, LinkState.RECONNECTING}
        await until(lambda: session.connected)
        fake.idle_timeout_s = None
        await d.player.play([("tone", 1.0), ("silence", 3.0)])
        assert await d.wait_finals(1) == ["[ja] utterance 1"]
    assert d.metric("captioner_translator_connects_total", target="ja", result="error") == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "closed the idle session" in caplog.text


async def test_reload_changes_the_gate_without_losing_the_segment(fake: FakeTranslator) -> None:
    async with running(fake) as d:
        await d.player.play([("silence", 1.0), ("tone", 1.0)])
        await d.apply(d.cfg.model_copy(update={"gate": d.cfg.gate.model_copy(update={"enabled": False})}))
        assert d.gate.state.value == "open"
        await d.player.play([("silence", 5.0)])
        assert d.gate.state.value == "open"
        assert await d.wait_finals(1) == ["[ja] utterance 1"]
        assert fake.connections[0].audio_bytes == int((0.3 + 1.0 + 5.0) * 32000)


async def test_rotation_in_a_noisy_room_uses_the_closed_gate_as_its_pause(fake: FakeTranslator) -> None:
    # A hiss above the sessions' own speech level (SPEECH_RMS) but learned by the gate as the room's noise:
    # while the gate is closed nothing is in flight, so a due rotation happens at once instead of after 20 s.
    async with running(fake) as d:
        session = d.sessions["ja"]
        await d.player.play([("noise", 9.0)])
        assert d.gate.state.value == "closed"
        session.rotate_after_s = 0.1
        await d.player.play([("noise", 1.5)], pace_s=0.1)
        assert d.metric("captioner_translator_rotations_total", target="ja", reason="age") >= 1
        session.rotate_after_s = 5400
