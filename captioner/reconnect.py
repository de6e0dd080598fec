"""Reconnect policy, kept apart from the connections: capped backoff with jitter, a shared connect budget."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable

from .errors import describe
from .status import Link, LinkState

log = logging.getLogger(__name__)


class Backoff:
    """Capped exponential backoff with full jitter; reset after a connection stayed healthy."""

    def __init__(
        self,
        initial_s: float = 2.0,
        cap_s: float = 30.0,
        healthy_after_s: float = 60.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.initial_s = initial_s
        self.cap_s = cap_s
        self.healthy_after_s = healthy_after_s
        self._rng = rng
        self._attempt = 0

    def next_delay(self, connected_for_s: float | None = None) -> float:
        """The wait before the next attempt; `connected_for_s` is how long the last connection lasted."""
        if connected_for_s is not None and connected_for_s >= self.healthy_after_s:
            self._attempt = 0
        ceiling = min(self.cap_s, self.initial_s * float(2**self._attempt))
        self._attempt += 1
        # Half fixed, half random: never a tight loop, never several sessions in lock-step.
        return ceiling / 2 + self._rng() * ceiling / 2

    def reset(self) -> None:
        self._attempt = 0


class ConnectBudget:
    """At most `limit` new connections per `window_s`, shared by every session of one account.

    The service counts each WebSocket connection as a request against a per-minute limit
    (10 per account, translator-protocol.md §2); bursting past it gets sockets closed with 1007.
    """

    def __init__(self, limit: int = 8, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._stamps: deque[float] = deque()
        self._lock = asyncio.Lock()

    def wait_s(self) -> float:
        """How long until one more connection fits in the window (0 = now)."""
        now = self._clock()
        while self._stamps and now - self._stamps[0] >= self.window_s:
            self._stamps.popleft()
        if len(self._stamps) < self.limit:
            return 0.0
        return self._stamps[0] + self.window_s - now

    def take(self) -> None:
        self._stamps.append(self._clock())

    async def acquire(self) -> None:
        """Wait for a slot and take it."""
        async with self._lock:
            while (delay := self.wait_s()) > 0:
                await asyncio.sleep(delay)
            self.take()


async def supervise(
    attempt: Callable[[], Awaitable[None]],
    link: Link,
    backoff: Backoff,
    *,
    what: str,
    on_error: Callable[[BaseException], None] = lambda e: None,
    stopping: Callable[[], bool] = lambda: False,
) -> None:
    """Run one link's `attempt` again and again until cancelled (or `stopping()`): the loop every link shares.

    An attempt that returns is simply made again; one that fails sets the link `reconnecting` with why, waits the
    jittered, capped backoff (reset once an attempt stayed healthy) and tries again. The first failure of a run of
    them is a WARNING, the repeats DEBUG: a device unplugged for an hour is one line, not hundreds.
    """
    first = True
    while not stopping():
        link.set(LinkState.CONNECTING)
        started = time.monotonic()
        try:
            await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - devices and sockets raise many kinds; all mean "try again"
            lasted = time.monotonic() - started
            if lasted >= backoff.healthy_after_s:
                first = True
            delay = backoff.next_delay(lasted)
            link.set(LinkState.RECONNECTING, describe(e))
            on_error(e)
            (log.warning if first else log.debug)("%s failed: %s (retrying in %.1f s)", what, describe(e), delay)
            first = False
            await asyncio.sleep(delay)
        else:
            backoff.reset()
            first = True
