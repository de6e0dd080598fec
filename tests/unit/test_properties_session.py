"""Property-based: a live session over real sockets survives a flood of garbage frames, and any one bad frame."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from typing import Any

import pytest

from captioner.status import LinkState
from tests.support.fake_translator import FakeTranslator
from tests.support.translator_harness import KEY, TWO_UTTERANCES, Harness

# ---- 4. a live session survives a flood of garbage frames ---------------------------------------------------------

KNOWN_SHAPES: dict[str, dict[str, Any]] = {
    "response.text.text": {"response_id": "junk_r1", "item_id": "junk_i1", "text": "a", "stash": "b"},
    "response.audio_transcript.text": {"response_id": "junk_r1", "item_id": "junk_i2", "text": "a", "stash": "b"},
    "response.text.done": {"response_id": "junk_r1", "item_id": "junk_i1", "text": "t"},
    "response.audio_transcript.done": {"response_id": "junk_r1", "item_id": "junk_i2", "transcript": "t"},
    "conversation.item.input_audio_transcription.text": {"item_id": "junk_s1", "text": "", "stash": "s"},
    "conversation.item.input_audio_transcription.completed": {"item_id": "junk_s1", "transcript": "s"},
    "conversation.item.input_audio_transcription.failed": {"item_id": "junk_s2", "error": {"message": "m"}},
    "response.content_part.done": {"response_id": "junk_r2", "item_id": "junk_i3", "part": {"type": "text"}},
    "response.output_item.done": {"response_id": "junk_r2", "item": {"id": "junk_i4", "content": [{"text": "c"}]}},
    "response.done": {"response": {"id": "junk_r1", "usage": {"input_tokens": 1, "output_tokens": 1}}},
    "error": {"error": {"code": "junk_code", "message": "m", "param": "p"}},
    "session.updated": {"session": {"modalities": ["text"]}},
    "response.created": {"response": {"id": "junk_r3"}},
}
WRONG_VALUES: list[Any] = [None, True, -7, 1.5e308, "", [], [1, "x"], {}, {"text": 1}, "\x00\x01\ufffd\ud800"]


def garbage_frames(rng: random.Random) -> tuple[list[dict[str, Any] | str], int]:
    """~200 nasty frames (and how many of them the client must count as not-JSON / not-an-event)."""
    rejected: list[str] = [
        "{not json",
        "",
        " ",
        "\ufeff{}",
        "{'type': 'error'}",
        '{"type": "response.text.text",',
        "\x00\x01\x02\xff",
        "null",
        "[]",
        '"response.done"',
        "42",
        "NaN",
        "Infinity",
        "[" * 500 + "]" * 500,  # deep, but within what json.loads handles
        json.dumps({"no_type": True}),
        json.dumps({"type": None}),
        json.dumps({"type": ["error"]}),
        json.dumps({"type": {"x": 1}}),
        json.dumps({"type": 7}),
        json.dumps([{"type": "response.done"}]),
    ]
    frames: list[dict[str, Any] | str] = list(rejected)
    deep: dict[str, Any] = {"type": "response.output_item.done"}
    node = deep
    for _ in range(499):
        node["item"] = {"content": []}
        node = node["item"]
    frames.append(deep)
    frames.append({"type": "response.text.text", "item_id": "junk_big", "text": "x" * (1 << 20), "stash": "y"})
    frames.append({"type": "response.text.done", "item_id": "junk_big", "text": "z" * (1 << 20)})
    frames.append({"type": "error", "error": {"code": "e" * (1 << 20), "message": "m" * (1 << 20)}})
    # Every field of every known event, one at a time, with a wrong type.
    for kind, shape in KNOWN_SHAPES.items():
        for key in shape:
            for wrong in rng.sample(WRONG_VALUES, 5):
                frames.append({"type": kind, **shape, key: wrong})
    # Ids that match nothing on this connection, and done events for them.
    for n in range(10):
        frames.append({"type": "response.done", "response": {"id": f"junk_unknown_{n}"}})
        frames.append({"type": "response.text.done", "response_id": f"junk_unknown_{n}", "item_id": f"junk_u{n}"})
    frames += [{"type": f"junk.unknown.{n}", "x": n} for n in range(10)]
    # Usage that goes backwards, negative, or beyond what a float can hold.
    for tokens in (10**6, 5, -3, 0, 10**30, 10**400, 1.5, "100", None, True):
        frames.append({"type": "response.done", "response": {"id": "junk_u", "usage": {"input_tokens": tokens}}})
        frames.append({"type": "response.done", "response": {"usage": {"output_tokens": tokens}}})
    rng.shuffle(frames)
    return frames, len(rejected)


async def drain(h: Harness, fake: FakeTranslator, n_frames: int, within: float = 15) -> None:
    """Wait until the client has read `n_frames` more server events, or its session has died."""
    start = h.metric("captioner_translator_events_total", target="ja")
    for _ in range(int(within / 0.02)):
        if h.metric("captioner_translator_events_total", target="ja") - start >= n_frames:
            return
        if h.task is None or h.task.done() or len(fake.connections) > 1:
            return
        await asyncio.sleep(0.02)


def assert_alive_on_first_connection(h: Harness, fake: FakeTranslator) -> None:
    assert h.task is not None
    if h.task.done():
        exc = None if h.task.cancelled() else h.task.exception()
        raise AssertionError(f"TranslatorSession.run() died: {exc!r}") from exc
    assert len(fake.connections) == 1, f"reconnected: {h.session.link.as_dict()}"
    assert h.session.link.state == LinkState.CONNECTED, h.session.link.as_dict()


def real_finals(h: Harness) -> list[str]:
    """Finals of the fake's own items (ids `item_...`); garbage frames never use such ids."""
    return [c.text for c in h.captions if c.final and c.language == "ja" and c.item_id.startswith("item_")]


@pytest.fixture
async def fake() -> Any:
    server = FakeTranslator(api_key=KEY)
    await server.start()
    yield server
    await server.stop()


@pytest.mark.timeout(60)
async def test_session_survives_a_flood_of_garbage_frames(
    fake: FakeTranslator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(
        logging.ERROR, logger="captioner.translation.session"
    )  # 1 MB error messages are logged as warnings
    frames, rejected = garbage_frames(random.Random(20240601))
    assert len(frames) >= 200
    async with Harness(fake) as h:
        # The flood reports up to 10**30 input tokens: the context looks full, and a planned rotation (its own
        # tests cover it) would race this test's count of connections on the supervisor's 1 s tick.
        h.session.rotate_after_tokens = math.inf
        await h.connected()
        for frame in frames:
            fake.inject(frame)
        await drain(h, fake, len(frames))
        assert_alive_on_first_connection(h, fake)
        await h.stream(TWO_UTTERANCES)
        for _ in range(500):
            if len(real_finals(h)) >= 2 or h.task is None or h.task.done() or len(fake.connections) > 1:
                break
            await asyncio.sleep(0.02)
        assert_alive_on_first_connection(h, fake)
        assert real_finals(h) == ["[ja] utterance 1", "[ja] utterance 2"]
        bad = {
            reason: h.metric("captioner_translator_bad_events_total", target="ja", reason=reason)
            for reason in ("invalid_json", "malformed", "unknown", "binary")
        }
        assert sum(bad.values()) >= rejected, bad
        assert bad["unknown"] >= 10, bad


# Minimal reproductions of what kills the session above: one frame each.
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(
            {"type": "response.done", "response": {"id": "r", "usage": {"input_tokens": -1}}}, id="negative-usage"
        ),
        pytest.param(
            {"type": "response.done", "response": {"id": "r", "usage": {"input_tokens": 10**400}}}, id="huge-usage"
        ),
        pytest.param("[" * 100_000 + "]" * 100_000, id="json-nested-100000-deep"),
    ],
)
async def test_one_bad_frame_does_not_end_the_connection(fake: FakeTranslator, frame: dict[str, Any] | str) -> None:
    async with Harness(fake) as h:
        await h.connected()
        fake.inject(frame)
        await drain(h, fake, 1, within=5)
        await asyncio.sleep(0.2)
        assert_alive_on_first_connection(h, fake)
