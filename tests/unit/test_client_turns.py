"""Client turns in the daemon (qwen3.5 manual mode): the gate commits each sentence, silence is never sent
(the strict fake translator over real sockets; it refuses a commit of an empty buffer and drops uncommitted audio at
session.finish)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest

from captioner.config import parse
from captioner.standin import DemoSession
from tests.support.daemon_harness import GatedDaemon, running_daemon, until
from tests.support.fake_translator import FakeTranslator

pytestmark = pytest.mark.timeout(60)
KEY = "sk-turns-secret"
Q35 = "qwen3.5-livetranslate-flash-realtime"
THREE_PHRASES = [
    ("silence", 1.0),
    ("tone", 1.0),
    ("silence", 6.0),
    ("tone", 0.8),
    ("silence", 0.5),  # a pause inside the second sentence
    ("tone", 0.4),
    ("silence", 6.0),
    ("tone", 1.2),
    ("silence", 4.0),
]


@pytest.fixture
async def fake(inloop_fake: Callable[..., Awaitable[FakeTranslator]]) -> FakeTranslator:
    return await inloop_fake(api_key=KEY)


@asynccontextmanager
async def running(
    fake: FakeTranslator, targets: tuple[str, ...] = ("ja",), model: str = Q35, **gate: Any
) -> AsyncIterator[GatedDaemon]:
    cfg = parse(
        {
            "translator": {"url": fake.url, "api_key": KEY, "targets": list(targets), "model": model},
            "obs": {"enabled": False},
            "http": {"enabled": False},
            "gate": gate,
        }
    )
    async with running_daemon(cfg) as daemon:
        yield daemon


def errors(fake: FakeTranslator) -> int:
    return sum(c.server_event_types.count("error") for c in fake.connections)


async def test_same_captions_as_ungated_and_only_the_speech_is_billed() -> None:
    results: dict[bool, tuple[list[str], list[str], float]] = {}
    records = {}
    for enabled in (False, True):
        server = FakeTranslator(api_key=KEY)
        await server.start()
        try:
            async with running(server, ("ja", "zh"), enabled=enabled) as d:
                await d.player.play(THREE_PHRASES)
                await d.wait_finals(3)
                await d.wait_finals(3, "zh")
                sent = d.metric("captioner_audio_sent_seconds_total", target="ja")
                results[enabled] = (d.texts(), d.texts("zh"), sent)
                assert d.status.as_dict()["audio_gate"]["turns"] == ("client" if enabled else "server")
                commits = d.metric("captioner_translator_turns_total", target="zh", kind="commit")
            records[enabled] = list(server.connections)
            assert errors(server) == 0
        finally:
            await server.stop()
    ungated, client = results[False], results[True]
    expected = [[f"[{lang}] utterance {i}" for i in (1, 2, 3)] for lang in ("ja", "zh")]
    assert [ungated[0], ungated[1]] == [client[0], client[1]] == expected
    # each sentence: 0.3 s of pre-roll and its speech; the 0.5 s pause inside one is sent, no silence after any
    assert client[2] == pytest.approx(3 * 0.3 + 3.4 + 0.5)
    assert commits == 3
    for rec in records[True]:  # every session got the same audio and the same three commits
        assert rec.session_update is not None and rec.session_update["turn_detection"] is None
        assert rec.commits == 3 and rec.clears == 0
        assert rec.audio_bytes == round(client[2] * 32000)
        assert "input_audio_buffer.speech_started" not in rec.server_event_types
    for rec in records[False]:
        assert "turn_detection" not in (rec.session_update or {}) and rec.commits == 0


async def test_a_click_is_cleared_not_committed(fake: FakeTranslator) -> None:
    async with running(fake) as d:
        await d.player.play([("silence", 1.0), ("tone", 0.1), ("silence", 2.0)])
        await until(lambda: fake.connections[0].clears == 1)
        await d.player.play([("tone", 1.0), ("silence", 2.0)])
        assert await d.wait_finals(1) == ["[ja] utterance 1"]
        assert d.metric("captioner_translator_turns_total", target="ja", kind="clear") == 1
    rec = fake.connections[0]
    assert rec.commits == 1 and rec.clears == 1 and errors(fake) == 0


async def test_stop_mid_sentence_commits_before_finishing(fake: FakeTranslator) -> None:
    async with running(fake) as d:
        await d.player.play([("silence", 1.0), ("tone", 1.0)])
        assert d.gate.state.value == "open"
    # the fake drops audio never committed at session.finish: the caption proves the commit came first
    assert d.texts() == ["[ja] utterance 1"]
    rec = fake.connections[0]
    assert rec.commits == 1 and rec.finished
    assert rec.client_event_types[-2:] == ["input_audio_buffer.commit", "session.finish"]


async def test_hold_mid_sentence_commits_it_at_once_without_zeros(fake: FakeTranslator) -> None:
    async with running(fake) as d:
        await d.player.play([("silence", 1.0), ("tone", 0.5)])
        d.feed.hold("operator_pause", True)
        assert await d.wait_finals(1) == ["[ja] utterance 1"]
        await d.player.play([("tone", 1.0), ("silence", 3.0)])
        assert fake.connections[0].audio_bytes == round((0.3 + 0.5) * 32000)
        assert d.gate.as_dict()["padded_s"] > 0  # what a server-VAD model would have been sent
        shown = d.status.as_dict()["audio_gate"]  # what the sessions were handed
        assert shown["padded_s"] == 0 and shown["sent_s"] == 0.8 == shown["sessions"]["ja"]["sent_s"]


# 4 s: a sentence longer than the 3 s send queue is replayed whole too (the replay is kept apart from that queue).
@pytest.mark.parametrize("spoken_s", [1.0, 4.0])
async def test_a_sentence_whose_connection_died_is_sent_again_on_the_next(
    fake: FakeTranslator, spoken_s: float
) -> None:
    async with running(fake) as d:
        session = d.sessions["ja"]
        await d.player.play([("silence", 1.0), ("tone", spoken_s)])
        first = session.connection_serial
        fake.drop_all()  # the uncommitted sentence dies with the connection
        await d.player.play([("tone", 0.5)])  # spoken while reconnecting
        await until(lambda: session.connected and session.connection_serial != first)
        await d.player.play([("silence", 1.0)])  # the gate ends the sentence
        texts = await d.wait_finals(1)
        assert len(texts) == 1 and texts[0].startswith("[ja] utterance")
        # the new connection got the whole sentence: pre-roll, the speech before and during the reconnect
        assert fake.connections[-1].audio_bytes == round((0.3 + spoken_s + 0.5) * 32000)
        assert fake.connections[-1].commits == 1
        await d.player.play([("tone", 1.0), ("silence", 1.0)])
        assert len(await d.wait_finals(2)) == 2
    assert errors(fake) == 0


async def test_a_connection_that_has_nothing_of_the_sentence_commits_nothing(fake: FakeTranslator) -> None:
    async with running(fake) as d:
        session = d.sessions["ja"]
        await d.player.play([("silence", 1.0), ("tone", 1.0), ("silence", 0.3)])
        session.end_turn(True)  # as if the sentence had ended (the feed's shaper does not know)
        first = session.connection_serial
        fake.drop_all()
        await until(lambda: session.connected and session.connection_serial != first)
        await d.player.play([("silence", 1.0)])  # the gate ends the sentence: the new connection has none of it
        assert d.metric("captioner_translator_turns_total", target="ja", kind="skipped") == 1
    assert errors(fake) == 0


async def test_rotation_waits_for_the_end_of_the_sentence(fake: FakeTranslator) -> None:
    async with running(fake) as d:
        session = d.sessions["ja"]
        await d.player.play([("silence", 1.0), ("tone", 1.0), ("silence", 0.5)])
        session.rotate_after_s = 0.1  # due now, but a sentence is in flight on this connection
        await asyncio.sleep(1.5)
        assert d.metric("captioner_translator_rotations_total", target="ja", reason="age") == 0
        session.rotate_after_s = 5400
        await d.player.play([("silence", 0.5)])  # the sentence ends: committed on the connection that has it
        session.rotate_after_s = 0.1
        await until(lambda: d.metric("captioner_translator_rotations_total", target="ja", reason="age") >= 1)
        session.rotate_after_s = 5400
        assert await d.wait_finals(1) == ["[ja] utterance 1"]
    assert fake.connections[0].commits == 1 and errors(fake) == 0


def test_the_demo_stand_in_ends_an_utterance_at_a_commit() -> None:
    """`captioner demo` with a qwen3.5 config: the stand-in answers client turns as the service does."""
    session = DemoSession({}, model=Q35)
    list(session.handle({"type": "session.update", "session": {"translation": {"language": "ja"}}}))
    loud = base64.b64encode((np.full(1600, 8000, "<i2")).tobytes()).decode()
    for _ in range(3):
        list(session.handle({"type": "input_audio_buffer.append", "audio": loud}))
    kinds = [e["type"] for e in session.handle({"type": "input_audio_buffer.commit"})]
    assert kinds[0] == "input_audio_buffer.committed" and kinds[-1] == "response.done"
    list(session.handle({"type": "input_audio_buffer.append", "audio": loud}))
    assert [e["type"] for e in session.handle({"type": "input_audio_buffer.clear"})] == ["input_audio_buffer.cleared"]
    assert [e["type"] for e in session.handle({"type": "session.finish"})] == ["session.finished"]


async def test_a_committed_sentence_never_answered_is_a_hang(fake: FakeTranslator) -> None:
    async with running(fake) as d:
        session = d.sessions["ja"]
        session.watchdog_s = 1.0
        fake.stall = True  # takes the audio and the commit, answers nothing
        await d.player.play([("silence", 1.0), ("tone", 1.0), ("silence", 1.0)])
        await until(lambda: d.metric("captioner_translator_rotations_total", target="ja", reason="watchdog") >= 1)
        assert fake.connections[0].commits == 1
