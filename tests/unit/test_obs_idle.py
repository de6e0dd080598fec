"""ObsSink's idle wait: woken by a write, or told that the time ran out (then it asks OBS whether it is there)."""

from __future__ import annotations

import asyncio

import pytest

from captioner.obs import _woken_within


async def test_a_set_event_wakes_it_before_the_time_runs_out() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await asyncio.wait_for(_woken_within(event, 30.0), 5) is True


async def test_an_event_already_set_returns_at_once() -> None:
    event = asyncio.Event()
    event.set()
    assert await asyncio.wait_for(_woken_within(event, 30.0), 5) is True


async def test_without_a_wake_the_time_runs_out_then_the_next_wait_is_woken_by_a_write() -> None:
    event = asyncio.Event()
    assert await asyncio.wait_for(_woken_within(event, 0.01), 5) is False
    event.clear()
    asyncio.get_running_loop().call_later(0.05, event.set)
    assert await asyncio.wait_for(_woken_within(event, 30.0), 5) is True


async def test_cancelled_it_cancels_its_timer() -> None:
    event = asyncio.Event()
    task = asyncio.create_task(_woken_within(event, 0.05))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    assert not event.is_set()  # the timer would have set it
