"""Visual context: the pure parts (JPEG size, BMP decode, change, fitting, rate), its config, the fake's image rules,
and TranslatorSession.send_image against the fake over real loopback WebSockets."""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import numpy as np
import pytest

from captioner.config import parse
from captioner.errors import ConfigError
from captioner.translation.interpreter import UsageDelta
from captioner.translation.protocol import rate_allows
from captioner.vision import (
    PIXEL_DELTA,
    changed_fraction,
    decode_bmp,
    fit_size,
    grey,
    jpeg_size,
    needs_image,
    retakes,
    speaking,
)
from tests.support.fake_translator import Q3_MODEL, Q35_MODEL, FakeTranslator, image_tokens, jpeg_dimensions
from tests.support.images import bmp, jpeg
from tests.support.translator_harness import KEY, Harness

pytestmark = pytest.mark.timeout(60)


# ---- building test images -------------------------------------------------------------------------------------

RGB_2x3 = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]], [[10, 20, 30], [40, 50, 60], [70, 80, 90]]], np.uint8)


# ---- pure parts ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "size"),
    [
        (jpeg(1280, 720), (1280, 720)),
        (jpeg(640, 360, sof=0xC2), (640, 360)),  # progressive
        (jpeg(1, 65535, sof=0xC1), (1, 65535)),
        # a DHT (C4) before the frame is not a frame; neither is a comment
        (jpeg(320, 180, before_sof=b"\xff\xc4\x00\x04\x00\x00" + b"\xff\xfe\x00\x05abc"), (320, 180)),
        (jpeg(800, 600, before_sof=b"\xff\xff"), (800, 600)),  # fill byte before a marker
    ],
)
def test_jpeg_size_reads_the_frame_header(data: bytes, size: tuple[int, int]) -> None:
    assert jpeg_size(data) == size
    assert jpeg_dimensions(data) == size  # the fake's own parser agrees


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PNG\r\n\x1a\n" + bytes(40),
        b"BM" + bytes(60),
        b"\xff\xd8",  # SOI only
        b"\xff\xd8\xff\xda\x00\x08" + bytes(20),  # scan before any frame header
        jpeg(0, 720),
        b"\xff\xd8\x00\x00\x00\x00",  # no marker after SOI
        b"\xff\xd8\xff\xe0\x00\x01",  # segment length below 2
    ],
)
def test_jpeg_size_rejects_what_is_not_a_jpeg(data: bytes) -> None:
    with pytest.raises(ValueError):
        jpeg_size(data)
    assert jpeg_dimensions(data) is None


@pytest.mark.parametrize(
    ("bpp", "top_down"), [(24, False), (24, True), (32, False), (32, True)], ids=["24up", "24down", "32up", "32down"]
)
@pytest.mark.parametrize("shape", [(2, 3), (5, 7), (90, 160)])
def test_decode_bmp_round_trips(bpp: int, top_down: bool, shape: tuple[int, int]) -> None:
    rgb = np.random.default_rng(sum(shape) + bpp).integers(0, 256, (*shape, 3), dtype=np.uint8)
    out = decode_bmp(bmp(rgb, bpp, top_down))
    assert out.shape == (*shape, 3) and out.dtype == np.uint8
    assert np.array_equal(out, rgb)


def test_decode_bmp_keeps_pixel_order() -> None:
    out = decode_bmp(bmp(RGB_2x3))
    assert out[0].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]  # top row first, red first
    assert out[1, 1].tolist() == [40, 50, 60]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "not a BMP"),
        (b"PNG" + bytes(60), "not a BMP"),
        (bmp(RGB_2x3)[:-4], "truncated"),
        (bmp(RGB_2x3)[:28] + struct.pack("<H", 8) + bmp(RGB_2x3)[30:], "8 bits"),
        (bmp(RGB_2x3)[:30] + struct.pack("<I", 1) + bmp(RGB_2x3)[34:], "compression 1"),
        (bmp(RGB_2x3)[:18] + struct.pack("<i", 0) + bmp(RGB_2x3)[22:], "bad BMP size"),
    ],
)
def test_decode_bmp_rejects_other_files(data: bytes, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        decode_bmp(data)


def test_grey_weights() -> None:
    g = grey(RGB_2x3)
    assert g.shape == (2, 3)
    assert g[0].tolist() == pytest.approx([76.245, 149.685, 29.07], abs=1e-3)


FLAT = np.full((10, 10), 100.0, np.float32)


def _with(block: tuple[slice, slice], value: float, base: np.ndarray = FLAT) -> np.ndarray:
    out = base.copy()
    out[block] = value
    return out


@pytest.mark.parametrize(
    ("before", "after", "fraction"),
    [
        (FLAT, FLAT, 0.0),
        (None, FLAT, 1.0),  # nothing sent yet: everything is new
        (FLAT, np.full((10, 20), 100.0, np.float32), 1.0),  # another size (the source changed shape)
        (FLAT, FLAT + PIXEL_DELTA, 0.0),  # noise up to the delta is no change
        (FLAT, FLAT + PIXEL_DELTA + 1, 1.0),
        (FLAT, _with((slice(0, 1), slice(0, 5)), 255.0), 0.05),  # a word of text in one line
        (FLAT, _with((slice(0, 10), slice(0, 5)), 0.0), 0.5),
    ],
)
def test_changed_fraction(before: np.ndarray | None, after: np.ndarray, fraction: float) -> None:
    assert changed_fraction(before, after) == pytest.approx(fraction)


@pytest.mark.parametrize(
    ("last", "only_changed", "threshold", "wanted"),
    [
        (None, True, 0.01, True),  # a new connection gets the picture
        (FLAT, True, 0.01, False),  # unchanged
        (_with((slice(0, 1), slice(0, 1)), 0.0), True, 0.01, True),  # 1 % changed: at the threshold
        (_with((slice(0, 1), slice(0, 1)), 0.0), True, 0.02, False),
        (FLAT, False, 0.01, True),  # every look is sent
    ],
)
def test_needs_image(last: np.ndarray | None, only_changed: bool, threshold: float, wanted: bool) -> None:
    assert needs_image(last, FLAT, only_changed=only_changed, threshold=threshold) is wanted


@pytest.mark.parametrize(
    ("source", "box", "fitted"),
    [
        ((160, 90), (1280, 720), (1280, 720)),
        ((1920, 1080), (854, 480), (853, 480)),
        ((160, 120), (1280, 720), (960, 720)),  # 4:3 inside 16:9: height-bound
        ((90, 160), (1280, 720), (405, 720)),  # portrait
        ((1000, 100), (1280, 720), (1280, 128)),  # a wide banner: width-bound
        ((4000, 10), (1280, 720), (1280, 8)),  # never below OBS's 8 px minimum
        ((100, 100), (64, 64), (64, 64)),
    ],
)
def test_fit_size_keeps_aspect_inside_the_box(
    source: tuple[int, int], box: tuple[int, int], fitted: tuple[int, int]
) -> None:
    assert fit_size(*source, *box) == fitted


def test_fit_size_rejects_an_empty_source() -> None:
    with pytest.raises(ValueError):
        fit_size(0, 90, 1280, 720)


@pytest.mark.parametrize(
    ("quality", "size", "steps"),
    [
        (70, (1280, 720), [(70, 1280, 720), (42, 1280, 720), (42, 960, 540), (28, 640, 360)]),
        (10, (640, 360), [(10, 640, 360), (10, 480, 270), (10, 320, 180)]),  # no lower quality: only smaller
        (100, (64, 36), [(100, 64, 36), (60, 64, 36), (60, 48, 27), (40, 32, 18)]),
    ],
)
def test_retakes_lower_quality_then_size(
    quality: int, size: tuple[int, int], steps: list[tuple[int, int, int]]
) -> None:
    assert retakes(quality, *size) == steps


@pytest.mark.parametrize(
    ("sent_at", "now", "allowed"),
    [
        ([], 10.0, True),
        ([9.5], 10.0, True),
        ([9.0, 9.5], 10.0, False),  # a third within 1.1 s: 3 could land inside one second at the service
        ([8.89, 9.5], 10.0, True),
        ([8.0, 8.5, 9.5], 10.0, True),
        ([9.6, 9.7], 10.0, False),
    ],
)
def test_rate_allows_two_per_second_with_margin(sent_at: list[float], now: float, allowed: bool) -> None:
    assert rate_allows(sent_at, now) is allowed


@pytest.mark.parametrize(
    ("gate_open", "quiet_s", "result"),
    [
        (True, 0.0, True),
        (True, 0.9, True),  # a pause between words
        (True, 1.0, False),  # the gate's trailing silence is not speech
        (False, 0.0, False),  # held (budget, OBS not live) or closed: nothing goes out
    ],
)
def test_speaking(gate_open: bool, quiet_s: float, result: bool) -> None:
    assert speaking(gate_open, quiet_s) is result


# ---- config ------------------------------------------------------------------------------------------------------
def raw(**vision: Any) -> dict[str, Any]:
    return {"translator": {"api_key": "k", "targets": ["ja"]}, "vision": vision}


def test_vision_defaults() -> None:
    v = parse(raw()).vision
    assert (v.enabled, v.source, v.width, v.height, v.interval_s, v.quality, v.only_changed) == (
        False,
        None,
        1280,
        720,
        1.0,
        70,
        True,
    )
    assert 0 < v.change_threshold < 0.1


def test_vision_accepts_a_named_source_and_smaller_pictures() -> None:
    v = parse(raw(enabled=True, source="Slides", width=854, height=480, interval_s=0.5, quality=40)).vision
    assert (v.source, v.width, v.height, v.interval_s, v.quality) == ("Slides", 854, 480, 0.5, 40)


@pytest.mark.parametrize(
    ("vision", "obs", "key"),
    [
        ({"width": 1281}, {}, "vision.width"),
        ({"height": 1080}, {}, "vision.height"),
        ({"width": 10}, {}, "vision.width"),
        ({"interval_s": 0.4}, {}, "vision.interval_s"),
        ({"quality": 101}, {}, "vision.quality"),
        ({"quality": 5}, {}, "vision.quality"),
        ({"change_threshold": 0}, {}, "vision.change_threshold"),
        ({"change_threshold": 1.5}, {}, "vision.change_threshold"),
        ({"source": ""}, {}, "vision.source"),
        ({"only_changed": "sometimes"}, {}, "vision.only_changed"),
        ({"colour": True}, {}, "vision.colour"),
        ({"enabled": True}, {"enabled": False}, "vision.enabled"),  # screenshots need OBS
    ],
)
def test_vision_config_errors_name_the_key(vision: dict[str, Any], obs: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse({**raw(**vision), "obs": obs})
    assert info.value.key == key


def test_vision_off_needs_no_obs() -> None:
    assert not parse({**raw(enabled=False), "obs": {"enabled": False}}).vision.enabled


# ---- the fake's image rules (§4.3, §8) -----------------------------------------------------------------------------
@pytest.fixture
async def fake(inloop_fake: Callable[..., Awaitable[FakeTranslator]]) -> FakeTranslator:
    return await inloop_fake(api_key=KEY)


def tone(seconds: float) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    return (np.sin(2 * np.pi * 440 * t) * 0.3 * 32767).astype("<i2").tobytes()


async def _recv_type(ws: aiohttp.ClientWebSocketResponse, etype: str) -> dict[str, Any]:
    while True:
        msg = await ws.receive(timeout=3)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        ev: dict[str, Any] = msg.json()
        if ev["type"] == etype:
            return ev


async def _send_audio(ws: aiohttp.ClientWebSocketResponse, pcm: bytes) -> None:
    for i in range(0, len(pcm), 3200):
        await ws.send_json({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i : i + 3200]).decode()})


async def _send_image(ws: aiohttp.ClientWebSocketResponse, data: bytes) -> None:
    await ws.send_json({"type": "input_image_buffer.append", "image": base64.b64encode(data).decode()})


@pytest.mark.parametrize(("model", "family"), [(Q3_MODEL, "q3"), (Q35_MODEL, "q3.5")])
async def test_fake_enforces_the_image_rules_and_bills_image_tokens(
    fake: FakeTranslator, model: str, family: str
) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{fake.url}?model={model}", headers={"Authorization": f"Bearer {KEY}"})
        await _recv_type(ws, "session.created")
        update = {"modalities": ["text"], "translation": {"language": "ja"}}
        await ws.send_json({"type": "session.update", "session": update})
        await _recv_type(ws, "session.updated")
        await _send_image(ws, jpeg(640, 360))
        err = await _recv_type(ws, "error")
        assert err["error"]["message"] == "Error append image before append audio."
        await _send_audio(ws, tone(0.4))
        refused = [
            (b"\x89PNG\r\n\x1a\n" + bytes(100), "only JPG"),
            (jpeg(640, 360, pad=500 * 1024), "too large"),
            (jpeg(2560, 1440), "exceeds 1080p"),
        ]
        for data, fragment in refused:
            await _send_image(ws, data)
            assert fragment in (await _recv_type(ws, "error"))["error"]["message"]
        await ws.send_json({"type": "input_image_buffer.append", "image": "***"})
        assert "only JPG" in (await _recv_type(ws, "error"))["error"]["message"]
        for size in ((1280, 720), (1080, 1920)):  # 720p, and portrait 1080p: both allowed
            await _send_image(ws, jpeg(*size))
        await _send_image(ws, jpeg(640, 360))  # the third within a second
        assert "Too many images" in (await _recv_type(ws, "error"))["error"]["message"]
        # The segment ends: response.done bills the two accepted images as input image tokens.
        await _send_audio(ws, bytes(32000))
        usage = (await _recv_type(ws, "response.done"))["response"]["usage"]
        await ws.close()
    rec = fake.connections[0]
    assert [(i.width, i.height) for i in rec.images] == [(1280, 720), (1080, 1920)]
    assert all(i.audio_bytes_before > 0 and i.size_bytes == len(i.jpeg) for i in rec.images)
    assert len(rec.images_rejected) == 6
    billed = image_tokens(family, 1280, 720) + image_tokens(family, 1080, 1920)
    # The documented details are text and audio only (§8): images show in the input total alone.
    assert "image_tokens" not in usage["input_tokens_details"]
    assert usage["input_tokens"] == usage["input_tokens_details"]["audio_tokens"] + billed
    # §8: 0.5 token per 28x28 (Q3) or 32x32 (Q3.5) pixels
    assert image_tokens(family, 1280, 720) == {"q3": 598, "q3.5": 460}[family]


# ---- TranslatorSession.send_image ----------------------------------------------------------------------------------
async def test_session_sends_images_only_after_audio_within_the_rate_and_again_after_reconnect(
    fake: FakeTranslator,
) -> None:
    picture = jpeg(640, 360, pad=1000)
    async with Harness(fake, model=Q35_MODEL) as h:
        usages: list[UsageDelta] = []
        h.session.on_usage = lambda _target, usage: usages.append(usage)
        await h.connected()
        serial = h.session.connection_serial
        assert h.session.image_refusal() == "no_audio_yet"
        assert not h.session.send_image(picture)
        await h.stream([("tone", 0.3)])
        for _ in range(200):
            if h.session.image_refusal() is None:
                break
            await asyncio.sleep(0.01)
        assert h.session.send_image(picture) and h.session.send_image(picture)
        assert h.session.image_refusal() == "rate" and not h.session.send_image(picture)
        assert await fake.await_until(lambda f: len(f.connections[0].images) == 2)
        await h.stream([("tone", 0.5), ("silence", 1.0)])
        assert await h.wait_finals(1)
        for _ in range(100):
            if usages and sum(u.tokens.image_in for u in usages) > 0:
                break
            await asyncio.sleep(0.02)
        assert sum(u.tokens.image_in for u in usages) == 2 * image_tokens("q3.5", 640, 360)
        assert h.metric("captioner_vision_images_sent_total", target="ja") == 2
        assert h.metric("captioner_vision_image_bytes_total", target="ja") == 2 * len(picture)

        fake.drop_all()  # a new connection has sent no audio: no image until it has
        for _ in range(500):
            if h.session.connected and h.session.connection_serial != serial:
                break
            await asyncio.sleep(0.01)
        assert h.session.connection_serial != serial
        assert h.session.image_refusal() == "no_audio_yet"
        await asyncio.sleep(1.2)  # past the rate window of the images on the old connection
        await h.stream([("tone", 0.2)])
        for _ in range(200):
            if h.session.image_refusal() is None:
                break
            await asyncio.sleep(0.01)
        assert h.session.send_image(picture)
        assert await fake.await_until(lambda f: len(f.connections) == 2 and len(f.connections[1].images) == 1)
    for rec in fake.connections:
        assert rec.images_rejected == []
        assert all(i.audio_bytes_before > 0 and i.size_bytes == len(picture) for i in rec.images)
        # the image went out behind the audio queued before it
        first_image = rec.client_event_types.index("input_image_buffer.append")
        assert "input_audio_buffer.append" in rec.client_event_types[:first_image]
