"""OBS over obsws-python: caption text sources, kept alive across OBS restarts; calls run off the loop."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .config import ObsConfig
from .obs_client import (
    AUTH_FAILED,
    describe_error,
    disconnect,
    new_client,
    new_event_client,
    prepare_sources,
    quiet_obsws_logger,
    screenshot,
    send_stream_caption,
    subscribe,
    write_texts,
)
from .obs_state import ObsState
from .obs_watch import ObsWatch, Recording
from .placement import SourcePlan, as_plans
from .reconnect import Backoff
from .status import LinkState, Status
from .ticks import until_next

log = logging.getLogger(__name__)
T = TypeVar("T")

# Asked of OBS when nothing was written for a while, on the heartbeat's grid: that it is still there (for /status)
# and, with the state watch, what it does in case an event was missed. Every 2 s this was the largest share of an
# idle daemon's wake-ups (a round trip through the OBS thread: #21); OBS quitting is seen at once by the event
# connection, and a frozen OBS by the next write.
_IDLE_CHECK_S = 5.0
_NOT_LIVE = 501  # OutputNotRunning: SendStreamCaption while OBS is not streaming
# Stream captions waiting while OBS is away; older ones are stale by the time it returns.
_STREAM_CAPTION_BACKLOG = 4


class ObsSink:
    """Writes each output's current text into its OBS text source; creates missing sources."""

    def __init__(
        self,
        cfg: ObsConfig,
        sources: Sequence[SourcePlan | str],
        status: Status,
        backoff: Backoff | None = None,
        client_factory: Callable[[ObsConfig], Any] | None = None,
        on_recording: Callable[[Recording], None] | None = None,
        on_state: Callable[[ObsState], None] | None = None,
        watch_inputs: Sequence[str] = (),
    ) -> None:
        self.cfg = cfg
        self.sources = as_plans(sources)
        self.status = status
        self.link = status.link("obs")
        # OBS is local and cheap to ask: retry often so captions return soon after OBS does.
        self.backoff = backoff or Backoff(initial_s=1.0, cap_s=5.0, healthy_after_s=30.0)
        self._factory = client_factory or new_client
        # One thread owns the client: obsws-python reads the next frame as the reply to any request.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="obs")
        self._client: Any = None
        self._wanted: dict[str, str] = {}
        self._shown: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._received_at: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._sources_changed = False
        self._stream_captions: deque[str] = deque(maxlen=_STREAM_CAPTION_BACKLOG)
        self._watch = ObsWatch(on_recording, on_state, watch_inputs)
        self._events: Any = None
        # A screenshot call failed below the request level: the client may hold its stale reply, so _serve
        # drops it and connects anew (the screenshot caller only skips its picture).
        self._broken: BaseException | None = None

    def set_text(self, source: str, text: str, received_at: float | None = None) -> None:
        """Show `text` in `source` as soon as OBS allows; only the newest text per source is kept.

        `received_at` (perf_counter when the final's frame arrived) times final-to-screen once OBS confirms.
        """
        self._wanted[source] = text
        if received_at is not None:
            self._received_at[source] = received_at
        self._dirty.add(source)
        self._wake.set()

    def send_stream_caption(self, text: str) -> None:
        """Send one CEA-608 caption (already folded and paced) into the stream, if OBS is streaming."""
        if len(self._stream_captions) == self._stream_captions.maxlen:
            self.status.metrics.stream_captions.labels("dropped").inc()
        self._stream_captions.append(text)
        self._wake.set()

    @property
    def state(self) -> ObsState:
        """What OBS is doing, as last seen (not connected, streaming or recording while OBS is away)."""
        return self._watch.state

    @property
    def connected(self) -> bool:
        return self._client is not None and self.link.state == LinkState.CONNECTED

    async def screenshot(
        self, source: str | None, fmt: str, width: int | None = None, height: int | None = None, quality: int = -1
    ) -> bytes:
        """One GetSourceScreenshot of `source` (None = the current program scene) as image file bytes.

        Runs on the OBS thread between caption writes. Raises when OBS is away or refuses (a missing source);
        after a failure of the connection itself the client is replaced.
        """
        if not self.connected:
            raise ConnectionError("OBS is not connected")
        call = functools.partial(screenshot, source=source, fmt=fmt, width=width, height=height, quality=quality)
        try:
            return await self._call(call)
        except Exception as e:
            if getattr(e, "code", None) is None and self._broken is None:  # not a request error: OBS answered
                self._broken = e
                self._wake.set()
            raise

    async def run(self) -> None:
        """Connect, prepare sources, write texts; on any failure drop the client and retry."""
        quiet_obsws_logger()
        self._watch.loop = asyncio.get_running_loop()
        while True:
            connected_at: float | None = None
            try:
                await self._call(self._connect, needs_client=False)
                connected_at = time.monotonic()
                await self._call(functools.partial(prepare_sources, sources=self.sources))
                await self._watch.sync(self._call)
                self.link.set(LinkState.CONNECTED)
                log.info("OBS connected at %s:%d", self.cfg.host, self.cfg.port)
                # Re-apply what OBS should show: it may have restarted and lost it.
                self._dirty |= set(self._wanted)
                await self._serve()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every failure means the same: new client, retry
                lasted = time.monotonic() - connected_at if connected_at else None
                delay = self.backoff.next_delay(lasted)
                first = self.link.state not in (LinkState.RECONNECTING, LinkState.AUTH_FAILED)
                reason = describe_error(e, self.cfg.host, self.cfg.port)
                auth = reason.startswith(AUTH_FAILED)
                self.link.set(LinkState.AUTH_FAILED if auth else LinkState.RECONNECTING, reason)
                self._watch.update(connected=False, streaming=False, recording=False)
                (log.warning if first else log.debug)("OBS unavailable (%s); retrying in %.1f s", reason, delay)
                await self._discard()
                await asyncio.sleep(delay)

    def set_sources(self, sources: Sequence[SourcePlan | str]) -> None:
        """A reload changed the outputs: find or create the new sources."""
        self.sources = as_plans(sources)
        self._sources_changed = True
        self._wake.set()

    async def _serve(self) -> None:
        while True:
            if self._broken is not None:
                raise self._broken
            if self._sources_changed:
                self._sources_changed = False
                await self._call(functools.partial(prepare_sources, sources=self.sources))
            await self._write_dirty()
            await self._send_stream_captions()
            self._wake.clear()
            if not await _woken_within(self._wake, until_next(asyncio.get_running_loop().time(), _IDLE_CHECK_S)):
                # Nothing to write: make sure OBS is still there so /status tells the truth; the record state
                # is asked too in case the event connection missed a change.
                if self._watch.enabled:
                    await self._watch.sync(self._call)
                else:
                    await self._call(lambda c: c.send("GetVersion", raw=True))

    async def _send_stream_captions(self) -> None:
        m = self.status.metrics.stream_captions
        while self._stream_captions:
            text = self._stream_captions[0]
            try:
                await self._call(functools.partial(send_stream_caption, text=text))
            except Exception as e:
                if getattr(e, "code", None) != _NOT_LIVE:
                    raise
                m.labels("not_live").inc()  # captions only exist in a live stream: nothing to keep
            else:
                m.labels("sent").inc()
            self._stream_captions.popleft()

    async def _write_dirty(self) -> None:
        while self._dirty:
            # Every source due now in one trip to the OBS thread: with several languages their finals arrive
            # together, and a loop <-> thread hop per source made the last one wait for all the hops before it (#5).
            texts: dict[str, str] = {}
            while self._dirty:
                source = self._dirty.pop()
                if self._shown.get(source) == self._wanted[source]:
                    self._received_at.pop(source, None)
                else:
                    texts[source] = self._wanted[source]
            if not texts:
                return
            written: dict[str, float] = {}  # filled by the OBS thread: when OBS confirmed each source
            started = time.perf_counter()
            try:
                await self._call(functools.partial(write_texts, texts=texts, written=written))
            except BaseException:
                # Cancelled or failed mid-way: what OBS did not confirm is still owed to it.
                self._dirty.update(source for source in texts if source not in written)
                self.status.metrics.obs_writes.labels("error").inc()
                raise
            finally:
                for source, confirmed in list(written.items()):
                    self._written(source, texts[source], confirmed - started, confirmed)
                    started = confirmed

    def _written(self, source: str, text: str, took_s: float, confirmed: float) -> None:
        """OBS confirmed `text` in `source` at `confirmed` (perf_counter): count it, time final-to-screen."""
        self._shown[source] = text
        m = self.status.metrics
        m.obs_writes.labels("ok").inc()
        m.obs_write_seconds.observe(took_s)
        # A newer text that arrived meanwhile keeps its own arrival time for its own write.
        if self._wanted.get(source) == text and (received := self._received_at.pop(source, None)) is not None:
            m.final_to_screen_seconds.observe(confirmed - received)
            if (trace := m.trace) is not None:
                trace("final_to_screen", confirmed - received)

    async def _call(self, fn: Callable[[Any], T], *, needs_client: bool = True) -> T:
        """Run `fn(client)` on the OBS thread, with a time limit beyond the client's own."""
        loop = asyncio.get_running_loop()

        def job() -> T:
            if needs_client and self._client is None:
                raise ConnectionError("not connected")
            return fn(self._client)

        return await asyncio.wait_for(loop.run_in_executor(self._executor, job), self.cfg.timeout_s + 2)

    def _connect(self, _: Any) -> None:
        self._client = self._factory(self.cfg)
        self._broken = None
        self._shown.clear()
        if self._watch.enabled:
            # A second connection: obsws-python's request client cannot receive events on its own socket.
            self._events = new_event_client(self.cfg)
            subscribe(self._events, self._watch.on_event)

    async def _discard(self) -> None:
        """Throw the client away: after an error or timeout its socket may hold a stale reply."""
        client, self._client = self._client, None
        events, self._events = self._events, None
        for c in (client, events):
            if c is not None:
                await asyncio.get_running_loop().run_in_executor(None, disconnect, c)

    async def close(self) -> None:
        """Write what is still wanted (bounded), then disconnect."""
        if self._client is not None and self._dirty:
            try:
                await asyncio.wait_for(self._write_dirty(), self.cfg.timeout_s)
            except Exception as e:  # noqa: BLE001 - best effort at shutdown
                log.debug("final OBS write failed: %s", e)
        await self._discard()
        self._executor.shutdown(wait=False, cancel_futures=True)


async def _woken_within(event: asyncio.Event, delay_s: float) -> bool:
    """Wait until `event` is set, at most `delay_s`; False when the time ran out.

    asyncio.wait_for would start a task for every wait and take another step to cancel it on time-out: a timer
    that sets the event costs neither (#21).
    """
    rang = False

    def ring() -> None:
        nonlocal rang
        rang = True
        event.set()

    timer = asyncio.get_running_loop().call_later(delay_s, ring)
    try:
        await event.wait()
    finally:
        timer.cancel()
    return not rang
