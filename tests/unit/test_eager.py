"""captioner.eager: a coroutine run at once in the caller's step, finished in a task only if it has to wait."""

from __future__ import annotations

import asyncio
import gc

import pytest

from captioner import eager


async def test_a_coroutine_that_never_waits_is_done_when_start_returns() -> None:
    done: list[str] = []

    async def send() -> None:
        done.append("sent")

    assert eager.start(send()) is None
    assert done == ["sent"]  # no turn of the loop needed


async def test_one_that_waits_ran_up_to_the_wait_and_a_task_finishes_it_with_what_it_waited_for() -> None:
    loop = asyncio.get_running_loop()
    drained: asyncio.Future[str] = loop.create_future()
    steps: list[str] = []

    async def send() -> None:
        steps.append("frame written")
        steps.append(await drained)

    task = eager.start(send())
    assert task is not None and steps == ["frame written"]
    await asyncio.sleep(0)
    assert not task.done()
    drained.set_result("drained")
    await asyncio.wait_for(task, 5)  # hang guard
    assert steps == ["frame written", "drained"]


async def test_a_failure_before_the_wait_is_raised_by_start() -> None:
    async def send() -> None:
        raise ConnectionResetError("Cannot write to closing transport")

    with pytest.raises(ConnectionResetError, match="closing"):
        eager.start(send())


async def test_a_failure_after_the_wait_fails_the_task_and_the_coroutine_sees_its_future_fail() -> None:
    loop = asyncio.get_running_loop()
    drained: asyncio.Future[None] = loop.create_future()
    seen: list[str] = []

    async def send() -> None:
        try:
            await drained
        except ConnectionResetError as e:
            seen.append(str(e))
            raise

    task = eager.start(send())
    assert task is not None
    drained.set_exception(ConnectionResetError("peer gone"))
    with pytest.raises(ConnectionResetError, match="peer gone"):
        await asyncio.wait_for(task, 5)
    assert seen == ["peer gone"]


async def test_cancelling_the_task_cancels_what_the_coroutine_waits_on() -> None:
    loop = asyncio.get_running_loop()
    drained: asyncio.Future[None] = loop.create_future()
    cleaned: list[bool] = []

    async def send() -> None:
        try:
            await drained
        finally:
            cleaned.append(True)

    task = eager.start(send())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert drained.cancelled() and cleaned == [True]


async def test_a_bare_yield_resumes_on_a_later_turn_of_the_loop() -> None:
    steps: list[int] = []

    async def send() -> None:
        steps.append(1)
        await asyncio.sleep(0)
        steps.append(2)

    task = eager.start(send())
    assert task is not None and steps == [1]
    await asyncio.wait_for(task, 5)
    assert steps == [1, 2]


async def test_a_failure_nobody_awaits_is_not_reported_as_never_retrieved() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    drained: asyncio.Future[None] = loop.create_future()

    async def send() -> None:
        await drained

    task = eager.start(send())
    assert task is not None
    drained.set_exception(ConnectionResetError("peer gone"))
    await asyncio.wait((task,), timeout=5)
    del task
    gc.collect()
    await asyncio.sleep(0)
    assert reported == []
