"""What every output that POSTs finals to a URL shares: a bounded queue, `seq`, in-order retries, age limits.

YouTube's caption ingestion and webhooks differ only in the request they build from a post and in what they read from
the answer; the queue, the numbering, the retries, the skipping of stale finals and the drain at stop are here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from ..config import Config, PostOutputConfig
from ..errors import describe
from ..reconnect import Backoff
from ..redaction import redact
from ..status import Status
from ..translation.interpreter import Caption
from .base import CaptionSink

log = logging.getLogger(__name__)
# Finals waiting per output; past it the oldest is skipped (counted). Hours of speech: an outage ages them out first.
QUEUE_LIMIT = 1000
# At stop, what still waits gets this long to go out (the shutdown has ~10 s beyond the translator's finish).
DRAIN_S = 3.0
# Read of an answer (YouTube's is one line); shown in /status, its start.
_ANSWER_BYTES = 4096
_ANSWER_CHARS = 200
# Tries again soon after a blip, then at most every 10 s: a caption is worth little once it is late.
_RETRY_INITIAL_S = 0.5
_RETRY_CAP_S = 10.0


def utc_ms(t: float) -> str:
    """time.time() as UTC date and time to the millisecond, no zone suffix: `2026-12-24T00:00:06.873`."""
    seconds, ms = divmod(round(t * 1000), 1000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{ms:03d}"


@dataclass(frozen=True)
class Final:
    """One final caption waiting to be posted."""

    caption: Caption
    # time.time() when its words began to be heard (the caption's spoken_at, else when it arrived).
    spoken_at: float
    # time.time() when the final arrived.
    final_at: float


@dataclass(frozen=True)
class Post:
    """One POST: its number and its finals, fixed when first sent so that a retry sends exactly the same."""

    seq: int
    finals: tuple[Final, ...]


@dataclass(frozen=True)
class Request:
    """What a post becomes on the wire."""

    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class PostQueue:
    """The finals in order, numbered posts and their retries; no I/O, so every rule is tested as a table.

    `count(what, n)` hears every event: posted (finals delivered), retried, failed (attempts), and skipped finals
    by reason: too_old, queue_full, stopped.
    """

    def __init__(
        self,
        max_age_s: float,
        count: Callable[[str, int], None],
        max_batch: int = 1,
        limit: int = QUEUE_LIMIT,
        first_seq: int = 1,
    ) -> None:
        self.max_age_s = max_age_s
        self.max_batch = max_batch
        self.limit = limit
        self._count = count
        self._waiting: deque[Final] = deque()
        self._in_flight: Post | None = None
        self._attempts = 0
        # The seq the next new post gets: one more for each new post, the same for a retry.
        self.next_seq = first_seq

    def __len__(self) -> int:
        return len(self._waiting) + (len(self._in_flight.finals) if self._in_flight else 0)

    def add(self, final: Final) -> None:
        self._waiting.append(final)
        if len(self) > self.limit and self._waiting:
            self._waiting.popleft()
            self._count("queue_full", 1)

    def next_post(self, now: float) -> Post | None:
        """The post to send now: the one that failed (unchanged), else a new one; None when nothing waits.

        A failed post whose newest final has grown too old is given up; older finals at the head are skipped.
        """
        post = self._in_flight
        if post is not None and now - post.finals[-1].spoken_at > self.max_age_s:
            self._count("too_old", len(post.finals))
            self._in_flight, post = None, None
        if post is not None:
            self._attempts += 1
            self._count("retried", 1)
            return post
        stale = 0
        while self._waiting and now - self._waiting[0].spoken_at > self.max_age_s:
            self._waiting.popleft()
            stale += 1
        if stale:
            self._count("too_old", stale)
        if not self._waiting:
            return None
        take = min(self.max_batch, len(self._waiting))
        post = Post(self.next_seq, tuple(self._waiting.popleft() for _ in range(take)))
        self.next_seq += 1
        self._in_flight, self._attempts = post, 1
        return post

    def delivered(self) -> None:
        """The post in flight was answered 2xx."""
        if self._in_flight is not None:
            self._count("posted", len(self._in_flight.finals))
        self._in_flight = None

    def failed(self) -> None:
        """The post in flight failed; next_post sends it again."""
        self._count("failed", 1)

    def abandon(self) -> int:
        """Give up on everything (the stop's time is up); returns how many finals were skipped."""
        n = len(self)
        self._waiting.clear()
        self._in_flight = None
        if n:
            self._count("stopped", n)
        return n


class PostingOutput(CaptionSink):
    """One output that POSTs one language's finals to a URL, from its own task, never blocking the event loop.

    A kind says which config entries it takes (`config_type`), builds each request (`request`) and may read the
    answer (`answered`).
    """

    kind: ClassVar[str] = "post"
    config_type: ClassVar[type[Any]]
    max_batch: ClassVar[int] = 1

    def __init__(self, name: str, entry: PostOutputConfig, status: Status, first_seq: int = 1) -> None:
        self.name = name
        self.entry = entry
        self.url = entry.url  # a secret
        self.status = status
        # speakers.label, for kinds whose text shows the speaker (PostingOutputs.configure keeps it current).
        self.speaker_label = ""
        m = status.metrics
        self._metrics = {
            "posted": m.post_posted.labels(name),
            "retried": m.post_retries.labels(name),
            "failed": m.post_failed.labels(name),
        }
        self._skipped_metric = m.post_skipped
        self._last_status_metric = m.post_last_status.labels(name)
        self.counts: dict[str, int] = {"posted": 0, "retried": 0, "failed": 0, "skipped": 0}
        self.skipped: dict[str, int] = {}
        self.queue = PostQueue(entry.max_age_s, self._count, self.max_batch, first_seq=first_seq)
        self._backoff = Backoff(_RETRY_INITIAL_S, _RETRY_CAP_S)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_answer: dict[str, Any] | None = None
        self.last_error: str | None = None
        self.failing_since: float | None = None

    @property
    def host(self) -> str:
        """Where the posts go, for the log (the URL itself is a secret)."""
        return urlsplit(self.url).hostname or "?"

    # ---- what a kind provides -----------------------------------------------------------------------------
    def request(self, post: Post) -> Request:
        raise NotImplementedError

    def answered(self, text: str, sent_at: float, received_at: float) -> None:
        """A 2xx answer's body, with when the request went out and when the answer came (time.time())."""

    # ---- the sink -------------------------------------------------------------------------------------------
    def caption(self, caption: Caption) -> None:
        if not caption.final or caption.language != self.entry.language or not caption.text.strip():
            return
        if not self.entry.takes(caption.input):
            return
        now = time.time()
        self.queue.add(Final(caption, caption.spoken_at or now, now))
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"output:{self.name}")

    async def close(self) -> None:
        """Send what waits for up to DRAIN_S, then stop; what is left is counted as skipped."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), DRAIN_S)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if n := self.queue.abandon():
            log.warning("%s: stopped with %d final(s) unsent", self.name, n)

    def as_dict(self) -> dict[str, Any]:
        since = None if self.failing_since is None else round(self.failing_since, 3)
        return {
            "kind": self.kind,
            "language": self.entry.language,
            "ok": since is None,
            "failing_since": since,
            **self.counts,
            "skipped_by_reason": dict(self.skipped),
            "queued": len(self.queue),
            "next_seq": self.queue.next_seq,
            "last_answer": self.last_answer,
            "last_error": self.last_error,
        }

    # ---- the task -------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.entry.timeout_s)) as http:
            while True:
                post = self.queue.next_post(time.time())
                if post is None:
                    self._wake.clear()
                    self._idle.set()
                    await self._wake.wait()
                    continue
                if await self._send(http, post):
                    self.queue.delivered()
                    self._backoff.reset()
                else:
                    self.queue.failed()
                    await asyncio.sleep(self._backoff.next_delay())

    async def _send(self, http: aiohttp.ClientSession, post: Post) -> bool:
        req = self.request(post)
        sent_at = time.time()
        try:
            # encoded=True: the URL goes out exactly as YouTube Studio wrote it (its signature must not be re-quoted).
            async with http.post(URL(req.url, encoded=True), data=req.body, headers=dict(req.headers)) as r:
                text = (await r.content.read(_ANSWER_BYTES)).decode("utf-8", errors="replace")
                status = r.status
        except Exception as e:  # noqa: BLE001 - whatever the failure, the post is retried; the task must not die
            why = f"no answer within {self.entry.timeout_s:g} s" if isinstance(e, TimeoutError) else describe(e)
            self._failing(0, why, post)
            return False
        received_at = time.time()
        self.last_answer = {"status": status, "body": redact(text[:_ANSWER_CHARS]), "at": round(received_at, 3)}
        self._last_status_metric.set(status)
        if not 200 <= status < 300:
            self._failing(status, f"HTTP {status}", post)
            return False
        if self.failing_since is not None:
            log.info("%s: delivering again (seq %d)", self.name, post.seq)
        self.failing_since, self.last_error = None, None
        self.answered(text, sent_at, received_at)
        return True

    def _failing(self, status: int, why: str, post: Post) -> None:
        first = self.failing_since is None
        self.failing_since = self.failing_since or time.time()
        self.last_error = redact(why)
        if status == 0:
            self._last_status_metric.set(0)
        (log.warning if first else log.debug)(
            "%s: POST seq %d failed: %s; retrying (finals waiting: %d)",
            self.name,
            post.seq,
            self.last_error,
            len(self.queue),
        )

    def _count(self, what: str, n: int) -> None:
        if what in self._metrics:
            self.counts[what] += n
            self._metrics[what].inc(n)
            return
        self.counts["skipped"] += n
        self.skipped[what] = self.skipped.get(what, 0) + n
        self._skipped_metric.labels(self.name, what).inc(n)
        if what != "stopped":
            log.warning("%s: skipped %d final(s): %s", self.name, n, what.replace("_", " "))


class PostingOutputs:
    """The YouTube and webhook entries of `outputs`, each a PostingOutput in the router under its own name.

    `configure` follows the config: an unchanged entry keeps its output (its queue and seq), a changed or removed
    one drains and goes, a new one starts.
    """

    def __init__(
        self,
        status: Status,
        set_output: Callable[[str, CaptionSink | None], None],
        kinds: tuple[type[PostingOutput], ...],
    ) -> None:
        self.status = status
        self._set_output = set_output
        self._kinds = kinds
        self.outputs: dict[str, PostingOutput] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # By URL, the seq an output that went (a reload) would have used next: one that takes the same URL goes on
        # from there, for the endpoint may take a seq it saw before as a retry and drop the caption.
        self._next_seq: dict[str, int] = {}
        status.post_outputs = self.as_dict

    def configure(self, cfg: Config) -> None:
        wanted = self._named(cfg)
        for name, output in list(self.outputs.items()):
            if wanted.get(name) != output.entry:
                self._set_output(name, None)
                del self.outputs[name]
                self._next_seq[output.url] = output.queue.next_seq
                log.info("%s: %s", name, "changed: starting again" if name in wanted else "removed")
                task = asyncio.create_task(output.close(), name=f"close:{name}")
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        for name, entry in wanted.items():
            if name not in self.outputs:
                kind = next(k for k in self._kinds if isinstance(entry, k.config_type))
                self.outputs[name] = kind(name, entry, self.status, self._next_seq.pop(entry.url, 1))
                self._set_output(name, self.outputs[name])
                log.info("%s: posting %s finals to %s", name, entry.language, self.outputs[name].host)
        for output in self.outputs.values():
            output.speaker_label = cfg.speakers.label

    def _named(self, cfg: Config) -> dict[str, PostOutputConfig]:
        """Each entry under a name for /status and /metrics: kind:language, then kind:language:2 ... (no URL)."""
        named: dict[str, PostOutputConfig] = {}
        for entry in cfg.post_outputs:
            kind = next(k for k in self._kinds if isinstance(entry, k.config_type)).kind
            name, n = f"{kind}:{entry.language}", 1
            while name in named:
                n += 1
                name = f"{kind}:{entry.language}:{n}"
            named[name] = entry
        return named

    def as_dict(self) -> dict[str, Any]:
        return {name: output.as_dict() for name, output in self.outputs.items()}
