"""The capture thread -> event loop hand-over: order, a bounded queue, stalls, failures and consumer bugs."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from captioner.inputs import audio
from captioner.inputs.audio import _HandOver
from captioner.metrics import Metrics
from captioner.status import Status
from tests.support.metric_sum import metric_sum


def dropped(metrics: Metrics) -> float:
    return float(metrics.audio_dropped._value.get())


async def hand_over(maxlen: int = 10) -> tuple[_HandOver, list[tuple[bytes, float]], Metrics]:
    got: list[tuple[bytes, float]] = []
    metrics = Metrics()
    h = _HandOver(asyncio.get_running_loop(), maxlen, None, lambda c, t: got.append((c, t)), metrics)  # chunks already
    return h, got, metrics


async def test_blocks_from_a_thread_arrive_in_order_with_their_times() -> None:
    h, got, metrics = await hand_over()

    def capture() -> None:
        for i in range(50):
            h.put(bytes([i]), 1000.0 + i)
            time.sleep(0.001)

    thread = threading.Thread(target=capture)
    thread.start()
    await asyncio.to_thread(thread.join)
    await asyncio.sleep(0.05)
    h.close()
    assert got == [(bytes([i]), 1000.0 + i) for i in range(50)]
    assert dropped(metrics) == 0


async def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    h, got, metrics = await hand_over(maxlen=3)
    # The loop is busy (this coroutine does not yield): five blocks arrive before any drain runs.
    for i in range(5):
        h.put(bytes([i]), float(i))
    await asyncio.sleep(0.01)
    h.close()
    assert [c for c, _ in got] == [b"\x02", b"\x03", b"\x04"]
    assert dropped(metrics) == 2


async def test_a_conversion_that_yields_several_chunks_emits_each() -> None:
    got: list[bytes] = []
    h = _HandOver(asyncio.get_running_loop(), 4, lambda b: [b[:1], b[1:]], lambda c, t: got.append(c), Metrics())
    h.put(b"ab", 0.0)
    await asyncio.sleep(0.01)
    h.close()
    assert got == [b"a", b"b"]


async def test_a_failure_from_the_capture_thread_ends_the_wait_with_its_reason() -> None:
    h, _, _ = await hand_over()
    threading.Thread(target=h.fail, args=("PulseAudio: Connection terminated",)).start()
    with pytest.raises(OSError, match="Connection terminated"):
        await asyncio.wait_for(h.ended(), 5)
    h.close()


async def test_blocks_after_the_end_are_not_emitted() -> None:
    h, got, _ = await hand_over()
    h.fail("gone")
    with pytest.raises(OSError, match="gone"):
        await asyncio.wait_for(h.ended(), 5)
    h.put(b"late", 0.0)
    await asyncio.sleep(0.01)
    assert got == []


async def test_a_device_that_delivers_nothing_is_declared_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio, "_STALL_S", 0.05)
    h, _, _ = await hand_over()
    started = time.monotonic()
    with pytest.raises(OSError, match="no audio from the device"):
        await asyncio.wait_for(h.ended(), 5)  # checked once a second
    assert time.monotonic() - started < 3
    h.close()


async def test_a_device_that_keeps_delivering_is_not_declared_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio, "_STALL_S", 0.6)
    h, got, _ = await hand_over()
    waiting = asyncio.create_task(h.ended())
    for i in range(25):  # 2.5 s of blocks every 100 ms: past two stall checks
        h.put(bytes([i]), 0.0)
        await asyncio.sleep(0.1)
    assert not waiting.done()
    assert len(got) == 25
    h.close()
    with pytest.raises(OSError, match="closed"):
        await waiting


def test_a_consumer_bug_costs_the_chunk_not_the_capture(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[bytes] = []

    def consumer(chunk: bytes, captured_at: float) -> None:
        seen.append(chunk)
        if chunk != b"ok":
            raise ValueError("bug")

    capture = audio.AudioCapture(None, 100, 10, consumer, Status("t"))
    for chunk in (b"bad", b"bad", b"ok"):
        capture._emit(chunk, 0.0)
    assert seen == [b"bad", b"bad", b"ok"]
    assert metric_sum(capture.status.metrics.registry, "captioner_audio_chunks_total", {}) == 3
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1  # said once, not for every chunk
