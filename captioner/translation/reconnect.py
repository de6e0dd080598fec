"""Reconnect policy, kept apart from the connections: capped backoff with jitter, a shared connect budget."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable


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
