"""Run a coroutine at once, in the caller's own step, and finish it in a task only if it has to wait (#21).

Python 3.12's eager tasks, for 3.11. A WebSocket send (aiohttp's `send_str`) writes its frame to the transport and
returns without waiting unless the socket is backed up: run eagerly, each chunk's send to each target costs no task
wake-up of its own (one per target per chunk otherwise, the largest part of what eight targets cost beyond the
sends themselves). Nothing of aiohttp is reached into: the coroutine runs as a task would run it, step by step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def start(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run `coro` until it finishes (None) or first waits (the task that finishes it). Its exception, if it fails
    before it waits, is raised here."""
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    task = asyncio.ensure_future(_finish(coro, waiting_on))
    task.add_done_callback(_retrieve)
    return task


async def _finish(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Go on where `start` left off, as asyncio's Task would: wait for what it waits on, then resume it."""
    while True:
        if asyncio.isfuture(waiting_on):
            try:
                await asyncio.wait((waiting_on,))  # the coroutine reads the outcome itself when it resumes
            except asyncio.CancelledError:
                waiting_on.cancel()  # as a task does: what it waits on is cancelled, and it sees that
        else:  # a bare yield (asyncio.sleep(0)): one turn of the loop
            await asyncio.sleep(0)
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return


def _retrieve(task: asyncio.Task[None]) -> None:
    # Whoever needed the outcome awaited the task; a failure nobody awaited (the connection closed) is not news.
    if not task.cancelled():
        task.exception()
