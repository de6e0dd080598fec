"""Visual context: screenshots of an OBS source sent to every translator session while someone speaks."""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .config import VisionConfig
from .errors import describe
from .inputs.gate import GateState, SpeechGate
from .status import Status

log = logging.getLogger(__name__)

# The service takes ≤500 KB raw (§4.3), but other sources quote ≤190 KB: stay under the tighter one.
MAX_IMAGE_BYTES = 190 * 1024
MAX_WIDTH, MAX_HEIGHT = 1280, 720
# The thumbnail the change test compares: big enough that a changed line of text shows, small enough to be
# cheap. OBS (Qt) writes BMP slowly, in proportion to the pixels: 4 ms at 64 px wide, 20 ms at 160 px.
THUMB_WIDTH = 96
# A thumbnail pixel whose grey level moves less than this (of 255) has not changed: scaling and
# compression noise stay below it, a real change (text, a slide, a scene cut) goes far beyond.
PIXEL_DELTA = 24
# Speech counts as going on until this long after the last speech the gate heard: pauses between words are
# shorter, while the gate's trail (2 s of silence so the service ends the segment) is not speech.
SPEAKING_QUIET_S = 1.0
# When a JPEG comes out too big: retake at lower quality, then smaller (fractions of the configured values).
_RETAKES = ((1.0, 1.0), (0.6, 1.0), (0.6, 0.75), (0.4, 0.5))
_MIN_QUALITY = 10
# Smallest side obs-websocket accepts for imageWidth/imageHeight.
_OBS_MIN_SIDE = 8
SKIP_REASONS = ("no_speech", "not_connected", "no_audio_yet", "rate", "unchanged", "too_big", "obs_error")


# ---- pure parts ---------------------------------------------------------------------------------------------
def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame marker; ValueError if it is not a JPEG."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG (no SOI marker)")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError(f"not a JPEG (no marker at byte {i})")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            i += 2
            continue
        if marker == 0xD9:
            break
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            raise ValueError(f"not a JPEG (segment length {length} at byte {i})")
        # SOF0..SOF15 carry the size, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            if width == 0 or height == 0:
                raise ValueError("JPEG frame of size 0")
            return width, height
        if marker == 0xDA:  # entropy-coded data follows; a frame header must have come before
            break
        i += 2 + length
    raise ValueError("not a JPEG (no frame header)")


def decode_bmp(data: bytes) -> np.ndarray:
    """An uncompressed 24- or 32-bit BMP (what OBS writes) as an RGB array of shape (height, width, 3)."""
    if len(data) < 54 or data[:2] != b"BM":
        raise ValueError("not a BMP")
    offset, header_size = struct.unpack("<II", data[10:18])
    if header_size < 40:
        raise ValueError(f"unsupported BMP header of {header_size} bytes")
    width, height, planes, bpp, compression = struct.unpack("<iiHHI", data[18:34])
    if width <= 0 or height == 0 or planes != 1:
        raise ValueError(f"bad BMP size {width}x{height}")
    # BI_RGB; 32-bit files from Qt may say BI_BITFIELDS (3) with the usual BGRA masks.
    if bpp not in (24, 32) or compression not in (0, 3) or (compression == 3 and bpp != 32):
        raise ValueError(f"unsupported BMP: {bpp} bits, compression {compression}")
    rows = abs(height)
    channels = bpp // 8
    stride = (width * channels + 3) // 4 * 4  # rows are padded to 4 bytes
    end = offset + stride * rows
    if end > len(data):
        raise ValueError(f"BMP truncated: {len(data)} bytes, pixels need {end}")
    pixels = np.frombuffer(data, np.uint8, stride * rows, offset).reshape(rows, stride)
    bgr = pixels[:, : width * channels].reshape(rows, width, channels)[:, :, 2::-1]
    # A positive height means the rows are stored bottom-up.
    return np.ascontiguousarray(bgr[::-1] if height > 0 else bgr)


def grey(rgb: np.ndarray) -> np.ndarray:
    """Luma (ITU-R BT.601) of an RGB image, 0..255 as float32."""
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    result: np.ndarray = rgb.astype(np.float32) @ weights
    return result


def changed_fraction(before: np.ndarray | None, after: np.ndarray) -> float:
    """Fraction of pixels (0..1) whose grey level moved by more than PIXEL_DELTA; no or other-size picture: 1."""
    if before is None or before.shape != after.shape or after.size == 0:
        return 1.0
    return float(np.count_nonzero(np.abs(after - before) > PIXEL_DELTA)) / after.size


def fit_size(source_w: int, source_h: int, max_w: int, max_h: int) -> tuple[int, int]:
    """The largest size with the source's aspect ratio inside max_w x max_h (obs-websocket stretches otherwise)."""
    if source_w <= 0 or source_h <= 0:
        raise ValueError(f"bad source size {source_w}x{source_h}")
    scale = min(max_w / source_w, max_h / source_h)
    w = max(_OBS_MIN_SIDE, min(max_w, math.floor(source_w * scale + 1e-6)))
    h = max(_OBS_MIN_SIDE, min(max_h, math.floor(source_h * scale + 1e-6)))
    return w, h


def retakes(quality: int, width: int, height: int) -> list[tuple[int, int, int]]:
    """(quality, width, height) to try in turn until a JPEG is small enough: first as configured."""
    out: list[tuple[int, int, int]] = []
    for q_factor, s_factor in _RETAKES:
        step = (
            max(_MIN_QUALITY, min(quality, round(quality * q_factor))),
            max(_OBS_MIN_SIDE, round(width * s_factor)),
            max(_OBS_MIN_SIDE, round(height * s_factor)),
        )
        if step not in out:
            out.append(step)
    return out


def speaking(gate_open: bool, quiet_s: float) -> bool:
    """Whether someone speaks now: audio is going out and the last speech is less than a second ago."""
    return gate_open and quiet_s < SPEAKING_QUIET_S


def needs_image(last: np.ndarray | None, now: np.ndarray, *, only_changed: bool, threshold: float) -> bool:
    """Whether a session gets the current picture, given the thumbnail last sent on its connection (or None)."""
    if not only_changed or last is None:
        return True
    return changed_fraction(last, now) >= threshold


# ---- sampling -------------------------------------------------------------------------------------------------
class ImageTarget(Protocol):
    """What the sampler needs of a translator session."""

    target: str

    @property
    def connection_serial(self) -> int: ...

    def image_refusal(self, now: float | None = None) -> str | None: ...

    def send_image(self, jpeg: bytes) -> bool: ...


class Screenshotter(Protocol):
    """What the sampler needs of OBS (ObsSink)."""

    @property
    def connected(self) -> bool: ...

    async def screenshot(
        self, source: str | None, fmt: str, width: int | None = None, height: int | None = None, quality: int = -1
    ) -> bytes: ...


@dataclass
class _Sent:
    serial: int  # the connection it went to: a new connection has seen no picture yet
    thumb: np.ndarray


@dataclass
class VisionCounters:
    """What the sampler did since start, as /status shows it."""

    sent: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    last_sent_at: float | None = None
    last_size: tuple[int, int] | None = None
    last_bytes: int = 0


class VisionSampler:
    """Every `interval_s` while someone speaks: a thumbnail of the source; if it changed, a JPEG to each session."""

    def __init__(
        self,
        cfg: VisionConfig,
        obs: Screenshotter,
        sessions: Callable[[], Iterable[ImageTarget]],
        gates: Callable[[], Iterable[SpeechGate]],
        status: Status,
    ) -> None:
        self.cfg = cfg
        self.obs = obs
        self.sessions = sessions
        # Every input's gate, asked each round: someone speaks on any input (a reload may change the inputs).
        self.gates = gates
        self.status = status
        self.counters = VisionCounters()
        self._sent: dict[str, _Sent] = {}
        self._warned: set[str] = set()
        m = status.metrics
        self._m_skipped = m.vision_skipped
        self._m_shot = m.vision_screenshot_seconds

    async def run(self) -> None:
        """Sample until cancelled; a failed sample is logged and the next one tried."""
        while True:
            started = time.monotonic()
            try:
                await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop the captions
                log.exception("visual context sample failed")
            await asyncio.sleep(max(0.0, self.cfg.interval_s - (time.monotonic() - started)))

    async def sample(self) -> int:
        """One round; returns how many sessions were sent the picture."""
        if not any(speaking(g.state == GateState.OPEN, g.quiet_s) for g in self.gates()):
            self._skip("no_speech")
            return 0
        now = time.monotonic()
        ready: list[ImageTarget] = []
        for session in self.sessions():
            refusal = session.image_refusal(now)
            if refusal is None:
                ready.append(session)
            else:
                self._skip(refusal)
        if not ready:
            return 0
        if not self.obs.connected:
            self._skip("obs_error")
            return 0
        thumb_bmp = await self._shot("bmp", THUMB_WIDTH, None, -1)
        if thumb_bmp is None:
            return 0
        try:
            rgb = decode_bmp(thumb_bmp)
        except ValueError as e:
            self._skip("obs_error", f"OBS sent a thumbnail that is not a plain BMP: {e}")
            return 0
        thumb = grey(rgb)
        wanted: list[ImageTarget] = []
        for session in ready:
            last = self._sent.get(session.target)
            before = last.thumb if last is not None and last.serial == session.connection_serial else None
            if needs_image(before, thumb, only_changed=self.cfg.only_changed, threshold=self.cfg.change_threshold):
                wanted.append(session)
            else:
                self._skip("unchanged")
        if not wanted:
            return 0
        width, height = fit_size(rgb.shape[1], rgb.shape[0], self.cfg.width, self.cfg.height)
        jpeg = await self._jpeg(width, height)
        if jpeg is None:
            return 0
        sent = 0
        for session in wanted:
            serial = session.connection_serial
            if session.send_image(jpeg):
                self._sent[session.target] = _Sent(serial, thumb)
                sent += 1
            else:  # the connection went away while OBS worked
                self._skip("not_connected")
        if sent:
            c = self.counters
            c.sent += sent
            c.last_sent_at = time.time()
            c.last_size = jpeg_size(jpeg)
            c.last_bytes = len(jpeg)
        return sent

    async def _jpeg(self, width: int, height: int) -> bytes | None:
        """A JPEG within the size limits, retaken at lower quality and size when too big; None if impossible."""
        last = 0
        for quality, w, h in retakes(self.cfg.quality, width, height):
            data = await self._shot("jpg", w, h, quality)
            if data is None:
                return None
            try:
                size = jpeg_size(data)
            except ValueError as e:
                self._skip("obs_error", f"OBS sent a screenshot that is not a JPEG: {e}")
                return None
            if len(data) <= MAX_IMAGE_BYTES and size[0] <= MAX_WIDTH and size[1] <= MAX_HEIGHT:
                return data
            last = len(data)
            log.debug("screenshot %dx%d q%d is %d bytes: retaking smaller", w, h, quality, len(data))
        self._skip("too_big", f"every screenshot was over {MAX_IMAGE_BYTES} bytes (last {last}); none sent")
        return None

    async def _shot(self, fmt: str, width: int | None, height: int | None, quality: int) -> bytes | None:
        started = time.perf_counter()
        try:
            data = await self.obs.screenshot(self.cfg.source, fmt, width, height, quality)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - OBS away, the source missing, a timeout: skip this round
            self._skip("obs_error", f"OBS screenshot failed: {describe(e)}")
            return None
        self._m_shot.labels(fmt).observe(time.perf_counter() - started)
        return data

    def _skip(self, reason: str, warning: str | None = None) -> None:
        self._m_skipped.labels(reason).inc()
        c = self.counters
        c.skipped[reason] = c.skipped.get(reason, 0) + 1
        if warning is not None:
            # The first of each kind is news; the same again every second is noise.
            key = warning.split(":", 1)[0]
            (log.debug if key in self._warned else log.warning)("visual context: %s", warning)
            self._warned.add(key)

    def as_dict(self) -> dict[str, Any]:
        c = self.counters
        return {
            "source": self.cfg.source,
            "sent": c.sent,
            "skipped": dict(sorted(c.skipped.items())),
            "last_sent_at": round(c.last_sent_at, 3) if c.last_sent_at is not None else None,
            "last_size": list(c.last_size) if c.last_size is not None else None,
            "last_bytes": c.last_bytes,
        }
