"""TranslatorSession against the fake translator over real loopback WebSockets (no OBS, synthetic audio)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from captioner.config import TranslatorConfig
from captioner.reconnect import ConnectBudget
from captioner.status import LinkState, Status
from captioner.translation.session import TranslatorSession
from tests.support.fake_translator import FakeTranslator
from tests.support.translator_harness import KEY, TWO_UTTERANCES, Harness

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def fake(inloop_fake: Callable[..., Awaitable[FakeTranslator]]) -> FakeTranslator:
    return await inloop_fake(api_key=KEY)


async def test_text_only_q3_two_utterances_in_order(fake: FakeTranslator) -> None:
    async with Harness(fake) as h:
        await h.connected()
        await h.stream(TWO_UTTERANCES)
        assert await h.wait_finals(2) == ["[ja] utterance 1", "[ja] utterance 2"]
        partials = [c.text for c in h.captions if not c.final]
        assert partials, "partials (text+stash) were shown"
    conn = fake.connections[0]
    assert conn.session_update is not None
    assert conn.session_update["translation"]["language"] == "ja"
    assert conn.session_update["voice"] == "Cherry"
    assert conn.session_update["modalities"] == ["text"]
    assert conn.audio_before_update_bytes == 0
    assert conn.headers.get("Authorization") == f"Bearer {KEY}"
    assert conn.finished and conn.closed_by_client
    assert h.metric("captioner_usage_tokens_total", target="ja", direction="input") > 0


async def test_qwen35_with_source_transcript_and_audio_output(fake: FakeTranslator) -> None:
    async with Harness(
        fake,
        model="qwen3.5-livetranslate-flash-realtime",
        transcribe_source=True,
        audio_output=True,
        targets=("ja",),
    ) as h:
        await h.connected()
        await h.stream(TWO_UTTERANCES)
        assert await h.wait_finals(2) == ["[ja] utterance 1", "[ja] utterance 2"]
        assert await h.wait_finals(2, "source") == ["utterance 1", "utterance 2"]
    update = fake.connections[0].session_update
    assert update is not None and update["modalities"] == ["text", "audio"] and update["voice"] == "Tina"


async def test_finish_during_speech_delivers_the_last_caption(fake: FakeTranslator) -> None:
    h = Harness(fake)
    async with h:
        await h.connected()
        await h.stream([("tone", 1.0)])  # no trailing silence: the segment is still open
        await asyncio.sleep(0.2)
        assert h.finals() == []
        await h.session.finish()
        assert h.finals() == ["[ja] utterance 1"]
    assert fake.connections[0].finished


async def test_wrong_key_is_auth_failed_without_a_tight_loop(fake: FakeTranslator) -> None:
    fake.api_key = "another-key"
    async with Harness(fake) as h:
        await asyncio.sleep(1.5)
        assert h.session.link.state == LinkState.AUTH_FAILED
        assert "401" in (h.session.link.last_error or "")
        assert fake.handshakes_rejected == 1
        assert KEY not in (h.session.link.last_error or "")


async def test_connection_drop_keeps_text_and_reconnects(fake: FakeTranslator) -> None:
    async with Harness(fake) as h:
        await h.connected()
        await h.stream([("tone", 1.2)])  # mid-utterance: partials on screen
        await asyncio.sleep(0.3)
        fake.drop_all()
        # the partial on screen becomes final rather than vanishing
        finals = await h.wait_finals(1)
        assert finals and finals[0].startswith("[ja]")
        await h.connected()
        assert len(fake.connections) == 2
        await h.stream([("silence", 0.2), ("tone", 1.0), ("silence", 1.0)])
        assert (await h.wait_finals(2))[1] == "[ja] utterance 2"


async def test_bad_frames_are_counted_and_survived(fake: FakeTranslator) -> None:
    async with Harness(fake) as h:
        await h.connected()
        fake.inject("{not json")
        fake.inject({"type": "brand.new.event", "x": 1})
        fake.inject({"type": "response.text.text", "item_id": 7, "text": ["wrong"]})
        fake.inject({"no_type": True})
        fake.inject({"type": "response.done", "response": {"id": "zzz", "usage": "lots"}})
        await h.stream(TWO_UTTERANCES)
        assert await h.wait_finals(2) == ["[ja] utterance 1", "[ja] utterance 2"]
        assert h.metric("captioner_translator_bad_events_total", target="ja", reason="invalid_json") == 1
        assert h.metric("captioner_translator_bad_events_total", target="ja", reason="unknown") == 1
        assert h.metric("captioner_translator_bad_events_total", target="ja", reason="malformed") == 2
        assert len(fake.connections) == 1


async def test_audio_before_ready_is_dropped_not_replayed(fake: FakeTranslator) -> None:
    fake.reject_next(1, 503)
    async with Harness(fake) as h:
        # while the first attempt fails, captured audio is counted and thrown away
        await h.stream([("tone", 0.5)])
        await h.connected()
        await asyncio.sleep(0.2)
        assert fake.connections[0].audio_bytes == 0
        assert h.metric("captioner_audio_skipped_chunks_total", target="ja") >= 5


async def test_rotation_switches_at_a_pause_without_losing_or_repeating_speech(fake: FakeTranslator) -> None:
    async with Harness(fake) as h:
        h.session.rotate_after_s = 1.5
        await h.connected()
        # continuous talk: utterances with short pauses, across several planned rotations
        for _ in range(4):
            await h.stream([("tone", 0.8), ("silence", 0.9)], pace_s=0.05)
        finals = await h.wait_finals(4)
        await asyncio.sleep(0.5)
        assert h.finals() == [f"[ja] utterance {i}" for i in range(1, 5)]
        assert len(fake.connections) >= 2
        assert h.metric("captioner_translator_rotations_total", target="ja", reason="age") >= 1
        assert finals == h.finals()
    # the retired sessions were finished and closed by us, not cut
    for conn in fake.connections[:-1]:
        assert conn.finished and conn.closed_by_client, conn


async def test_rotation_by_context_size(fake: FakeTranslator) -> None:
    async with Harness(fake) as h:
        h.session.rotate_after_tokens = 20  # ~1.6 s of audio on qwen3
        await h.connected()
        await h.stream([("tone", 0.8), ("silence", 1.2), ("tone", 0.8), ("silence", 1.2)], pace_s=0.03)
        assert await h.wait_finals(2) == ["[ja] utterance 1", "[ja] utterance 2"]
        # The supervisor looks on the shared 1 s tick grid, at a pause: the rotation may follow the last final.
        for _ in range(250):
            if h.metric("captioner_translator_rotations_total", target="ja", reason="context") >= 1:
                break
            await asyncio.sleep(0.02)
        assert h.metric("captioner_translator_rotations_total", target="ja", reason="context") >= 1
        assert len(fake.connections) >= 2
        assert h.finals() == ["[ja] utterance 1", "[ja] utterance 2"]  # the switch neither lost nor repeated anything


async def test_watchdog_replaces_a_hung_session(fake: FakeTranslator) -> None:
    async with Harness(fake) as h:
        h.session.watchdog_s = 1.0
        await h.connected()
        fake.stall = True
        await h.stream([("tone", 5.5)])  # past translator.watchdog_speech_s of unanswered speech
        for _ in range(300):
            if h.metric("captioner_translator_rotations_total", target="ja", reason="watchdog"):
                break
            await asyncio.sleep(0.01)
        assert h.metric("captioner_translator_rotations_total", target="ja", reason="watchdog") == 1
        fake.stall = False
        # the link reads "connected" until the hung session is closed: wait for its replacement
        assert await fake.await_until(lambda f: len(f.connections) >= 2)
        await h.connected()
        await h.stream([("silence", 0.2), ("tone", 0.8), ("silence", 1.0)])
        assert (await h.wait_finals(1))[-1].startswith("[ja] utterance")
        assert len(fake.connections) >= 2


async def test_refused_first_connections_then_streaming(fake: FakeTranslator) -> None:
    fake.reject_next(2, 503)
    async with Harness(fake) as h:
        await h.connected(within=10)
        assert fake.handshakes_rejected == 2
        assert h.metric("captioner_translator_connects_total", target="ja", result="error") == 2
        await h.stream(TWO_UTTERANCES)
        assert await h.wait_finals(2) == ["[ja] utterance 1", "[ja] utterance 2"]


async def test_rate_limit_close_waits_instead_of_hammering(fake: FakeTranslator) -> None:
    fake.rate_limit_per_minute = 1
    async with Harness(fake) as h:
        await h.connected()
        fake.drop_all()  # the reconnect is over the limit: the service closes it with 1007
        for _ in range(300):
            if h.session.link.state == LinkState.RECONNECTING and "rate limited" in (h.session.link.last_error or ""):
                break
            await asyncio.sleep(0.01)
        assert "rate limited" in (h.session.link.last_error or "")
        attempts = len(fake.connections)
        await asyncio.sleep(1.5)
        assert len(fake.connections) == attempts, "no new connection while the rate limit wait runs"


def test_shared_budget_spaces_out_connections() -> None:
    async def scenario() -> float:
        server = FakeTranslator(api_key=KEY)
        await server.start()
        budget = ConnectBudget(limit=2, window_s=1.0)
        status = Status("t")
        cfg = TranslatorConfig(url=server.url, api_key=KEY, targets=("ja", "zh", "ko"))
        sessions = [
            TranslatorSession(cfg, t, transcribe_source=False, status=status, on_caption=lambda c: None, budget=budget)
            for t in cfg.targets
        ]
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = [asyncio.create_task(s.run()) for s in sessions]
        while not all(s.connected for s in sessions):
            await asyncio.sleep(0.01)
        took = loop.time() - start
        for s in sessions:
            await s.finish()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop()
        return took

    # three sessions, two connections per second allowed: the third waits for the window
    assert asyncio.run(scenario()) >= 0.9


async def test_glossary_reaches_the_service_and_changes_the_caption() -> None:
    server = FakeTranslator(api_key=KEY, script=["welcome to the castle", "the castles are old"])
    await server.start()
    try:
        async with Harness(
            server, model="qwen3.5-livetranslate-flash-realtime", glossary={"ja": {"Castle": "KASTEL"}}
        ) as h:
            await h.connected()
            await h.stream(TWO_UTTERANCES)
            assert await h.wait_finals(2) == ["[ja] welcome to the KASTEL", "[ja] the castles are old"]
        update = server.connections[0].session_update
        assert update is not None
        assert update["translation"] == {"language": "ja", "corpus": {"phrases": {"Castle": "KASTEL"}}}
        assert server.connections[0].phrases == {"Castle": "KASTEL"}
    finally:
        await server.stop()


async def test_glossary_of_another_target_is_not_sent(fake: FakeTranslator) -> None:
    async with Harness(
        fake, model="qwen3.5-livetranslate-flash-realtime", targets=("ja", "zh"), glossary={"zh": {"castle": "城堡"}}
    ) as h:
        await h.connected()
    update = fake.connections[0].session_update
    assert update is not None and update["translation"] == {"language": "ja"}
