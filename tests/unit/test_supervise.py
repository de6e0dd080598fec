"""The loop every device link shares: retry with the capped, jittered backoff; one WARNING per run of failures."""

from __future__ import annotations

import asyncio
import logging

import pytest

from captioner.reconnect import Backoff, supervise
from captioner.status import LinkState, Status


async def test_failures_retry_with_backoff_and_only_the_first_of_a_run_warns(caplog: pytest.LogCaptureFixture) -> None:
    status = Status("test")
    link = status.link("audio")
    outcomes: list[BaseException | None] = [OSError("unplugged"), OSError("unplugged"), OSError("still"), None]
    seen_states: list[LinkState] = []
    errors: list[str] = []

    async def attempt() -> None:
        seen_states.append(link.state)
        outcome = outcomes.pop(0) if outcomes else None
        if outcome is not None:
            raise outcome
        if not outcomes:
            raise asyncio.CancelledError  # the test's way out once every outcome was played

    backoff = Backoff(initial_s=0.01, cap_s=0.02, healthy_after_s=60, rng=lambda: 0.0)
    with caplog.at_level(logging.DEBUG, "captioner.reconnect"), pytest.raises(asyncio.CancelledError):
        await supervise(attempt, link, backoff, what="audio device", on_error=lambda e: errors.append(str(e)))
    assert errors == ["unplugged", "unplugged", "still"]
    assert seen_states == [LinkState.CONNECTING] * 4
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines[0] == (logging.WARNING, "audio device failed: OSError: unplugged (retrying in 0.0 s)")
    assert [level for level, _ in lines[1:]] == [logging.DEBUG, logging.DEBUG]
    assert link.last_error == "OSError: still"


async def test_stopping_ends_the_loop() -> None:
    status = Status("test")
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1

    await supervise(attempt, status.link("voice:ja"), Backoff(), what="voice", stopping=lambda: calls >= 3)
    assert calls == 3
