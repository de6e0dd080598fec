"""OBS over obsws-python: caption text sources, kept alive across OBS restarts; calls run off the loop."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from .config import ObsConfig
from .errors import describe
from .obs_state import ObsState
from .reconnect import Backoff
from .status import LinkState, Status

log = logging.getLogger(__name__)
T = TypeVar("T")

# Text input kinds by preference: FreeType on Linux/macOS, GDI+ on Windows.
TEXT_KINDS = ("text_ft2_source_v2", "text_gdiplus_v3", "text_gdiplus_v2", "text_ft2_source")
# Defaults for a source we create: readable at 1080p, wrapping instead of running off screen.
_NEW_SOURCE_SETTINGS: dict[str, dict[str, Any]] = {
    "text_ft2_source": {
        "text": "",
        "font": {"face": "Sans Serif", "size": 48, "style": "Regular", "flags": 0},
        "word_wrap": True,
        "custom_width": 1600,
        "outline": True,
    },
    "text_gdiplus": {
        "text": "",
        "font": {"face": "Arial", "size": 48, "style": "Regular", "flags": 0},
        "outline": True,
        "outline_size": 4,
        "extents": True,
        "extents_cx": 1600,
        "extents_cy": 240,
        "extents_wrap": True,
    },
}
_IDLE_PING_S = 2.0
# obs-websocket EventSubscription bits: Scenes (program scene), Inputs (mute), Outputs (stream, record).
_WATCH_EVENTS = (1 << 2) | (1 << 3) | (1 << 6)
_NOT_LIVE = 501  # OutputNotRunning: SendStreamCaption while OBS is not streaming
# Stream captions waiting while OBS is away; older ones are stale by the time it returns.
_STREAM_CAPTION_BACKLOG = 4


@dataclass(frozen=True)
class Recording:
    """OBS started or stopped recording; `started_at` is wall time of the recording's first frame."""

    active: bool
    path: str | None
    started_at: float


def quiet_obsws_logger() -> None:
    """obsws-python logs the password at INFO and a traceback for every failed request."""
    logging.getLogger("obsws_python").setLevel(logging.CRITICAL)


class ObsSink:
    """Writes each output's current text into its OBS text source; creates missing sources."""

    def __init__(
        self,
        cfg: ObsConfig,
        sources: list[str],
        status: Status,
        backoff: Backoff | None = None,
        client_factory: Callable[[ObsConfig], Any] | None = None,
        on_recording: Callable[[Recording], None] | None = None,
        on_state: Callable[[ObsState], None] | None = None,
        watch_inputs: Sequence[str] = (),
    ) -> None:
        self.cfg = cfg
        self.sources = list(sources)
        self.status = status
        self.link = status.link("obs")
        # OBS is local and cheap to ask: retry often so captions return soon after OBS does.
        self.backoff = backoff or Backoff(initial_s=1.0, cap_s=5.0, healthy_after_s=30.0)
        self._factory = client_factory or _new_client
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
        self._on_recording = on_recording
        self._on_state = on_state
        self._watch_inputs = tuple(watch_inputs)
        self._watching = on_recording is not None or on_state is not None
        self.state = ObsState()
        self._missing_inputs: set[str] = set()
        self._events: Any = None
        # Not state.recording: that turns False while OBS is away, but the recording files stay open until OBS,
        # back again, says the recording really ended (a websocket hiccup must not split them).
        self._recording = False
        self._loop: asyncio.AbstractEventLoop | None = None
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
        call = functools.partial(_screenshot, source=source, fmt=fmt, width=width, height=height, quality=quality)
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
        self._loop = asyncio.get_running_loop()
        while True:
            connected_at: float | None = None
            try:
                await self._call(self._connect, needs_client=False)
                connected_at = time.monotonic()
                await self._call(self._prepare_sources)
                await self._sync_state()
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
                reason = describe_error(e)
                auth = reason.startswith("authentication failed")
                self.link.set(LinkState.AUTH_FAILED if auth else LinkState.RECONNECTING, reason)
                self._update(connected=False, streaming=False, recording=False)
                (log.warning if first else log.debug)(
                    "OBS unavailable (%s); retrying in %.1f s", describe_error(e), delay
                )
                await self._discard()
                await asyncio.sleep(delay)

    def set_sources(self, sources: list[str]) -> None:
        """A reload changed the outputs: find or create the new sources."""
        self.sources = list(sources)
        self._sources_changed = True
        self._wake.set()

    async def _serve(self) -> None:
        while True:
            if self._broken is not None:
                raise self._broken
            if self._sources_changed:
                self._sources_changed = False
                await self._call(self._prepare_sources)
            await self._write_dirty()
            await self._send_stream_captions()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), _IDLE_PING_S)
            except TimeoutError:
                # Nothing to write: make sure OBS is still there so /status tells the truth; the record state
                # is asked too in case the event connection missed a change.
                if self._watching:
                    await self._sync_state()
                else:
                    await self._call(lambda c: c.send("GetVersion", raw=True))

    async def _send_stream_captions(self) -> None:
        m = self.status.metrics.stream_captions
        while self._stream_captions:
            text = self._stream_captions[0]
            try:
                await self._call(functools.partial(_send_stream_caption, text=text))
            except Exception as e:
                if getattr(e, "code", None) != _NOT_LIVE:
                    raise
                m.labels("not_live").inc()  # captions only exist in a live stream: nothing to keep
            else:
                m.labels("sent").inc()
            self._stream_captions.popleft()

    async def _sync_state(self) -> None:
        """Ask OBS what it is doing (on connect, and when idle in case the event connection missed a change)."""
        if not self._watching:
            return
        record = await self._call(lambda c: c.send("GetRecordStatus", raw=True))
        stream = await self._call(lambda c: c.send("GetStreamStatus", raw=True))
        scene = await self._call(lambda c: c.send("GetCurrentProgramScene", raw=True))
        muted = set()
        for name in self._watch_inputs:
            try:
                reply = await self._call(functools.partial(_input_muted, name=name))
            except Exception as e:  # a missing input (request error) must not take the OBS link down
                if getattr(e, "code", None) is None:
                    raise
                if name not in self._missing_inputs:
                    log.warning("OBS has no input %r to watch for mute (%s); it counts as unmuted", name, e)
                    self._missing_inputs.add(name)
                continue
            if reply:
                muted.add(name)
        active = bool(record.get("outputActive"))
        if active != self._recording:
            duration_s = float(record.get("outputDuration") or 0) / 1000
            self._record_changed(active, None, time.time() - (duration_s if active else 0))
        self._update(
            connected=True,
            streaming=bool(stream.get("outputActive")),
            recording=active,
            scene=scene.get("currentProgramSceneName"),
            muted=frozenset(muted),
        )

    def _update(self, **changes: Any) -> None:
        new = replace(self.state, **changes)
        if new != self.state:
            self.state = new
            if self._on_state is not None:
                self._on_state(new)

    def _record_changed(self, active: bool, path: str | None, at: float) -> None:
        self._update(recording=active)
        if active == self._recording and not (active and path):
            return
        self._recording = active
        if self._on_recording is not None:
            self._on_recording(Recording(active, path or None, at))

    def _on_event(self, kind: str, data: Any) -> None:
        """EventClient thread: hand the event to the loop."""
        loop = self._loop
        if loop is None:
            return
        if kind in ("record", "stream"):
            state = getattr(data, "output_state", "")
            if state not in ("OBS_WEBSOCKET_OUTPUT_STARTED", "OBS_WEBSOCKET_OUTPUT_STOPPED"):
                return
            active = state.endswith("STARTED")
            if kind == "record":
                path = getattr(data, "output_path", None)
                loop.call_soon_threadsafe(self._record_changed, active, path, time.time())
            else:
                loop.call_soon_threadsafe(functools.partial(self._update, streaming=active))
        elif kind == "scene":
            loop.call_soon_threadsafe(functools.partial(self._update, scene=getattr(data, "scene_name", None)))
        elif kind == "mute":
            name, muted = getattr(data, "input_name", ""), bool(getattr(data, "input_muted", False))
            if name in self._watch_inputs:
                loop.call_soon_threadsafe(self._set_muted, name, muted)

    def _set_muted(self, name: str, muted: bool) -> None:
        now = set(self.state.muted)
        (now.add if muted else now.discard)(name)
        self._update(muted=frozenset(now))

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
                await self._call(functools.partial(_write_texts, texts=texts, written=written))
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
        if self._watching:
            # A second connection: obsws-python's request client cannot receive events on its own socket.
            self._events = _new_event_client(self.cfg)
            handler = self._on_event

            # obsws-python dispatches on the function's name.
            def on_record_state_changed(data: Any) -> None:
                handler("record", data)

            def on_stream_state_changed(data: Any) -> None:
                handler("stream", data)

            def on_current_program_scene_changed(data: Any) -> None:
                handler("scene", data)

            def on_input_mute_state_changed(data: Any) -> None:
                handler("mute", data)

            self._events.callback.register(
                [
                    on_record_state_changed,
                    on_stream_state_changed,
                    on_current_program_scene_changed,
                    on_input_mute_state_changed,
                ]
            )

    def _prepare_sources(self, client: Any) -> None:
        """Find each output's source; create missing ones in the current program scene."""
        existing = {i["inputName"] for i in client.send("GetInputList", {}, raw=True)["inputs"]}
        missing = [s for s in self.sources if s not in existing]
        if not missing:
            return
        kinds = set(client.send("GetInputKindList", {"unversioned": False}, raw=True)["inputKinds"])
        kind = next((k for k in TEXT_KINDS if k in kinds), None)
        if kind is None:
            raise RuntimeError(f"OBS offers no text input kind (looked for {', '.join(TEXT_KINDS)})")
        scene = client.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"]
        settings = _NEW_SOURCE_SETTINGS["text_gdiplus" if kind.startswith("text_gdiplus") else "text_ft2_source"]
        for source in missing:
            client.send(
                "CreateInput",
                {
                    "sceneName": scene,
                    "inputName": source,
                    "inputKind": kind,
                    "inputSettings": settings,
                    "sceneItemEnabled": True,
                },
            )
            log.info("created OBS text source %r (%s) in scene %r", source, kind, scene)

    async def _discard(self) -> None:
        """Throw the client away: after an error or timeout its socket may hold a stale reply."""
        client, self._client = self._client, None
        events, self._events = self._events, None
        for c in (client, events):
            if c is not None:
                await asyncio.get_running_loop().run_in_executor(None, _disconnect, c)

    async def close(self) -> None:
        """Write what is still wanted (bounded), then disconnect."""
        if self._client is not None and self._dirty:
            try:
                await asyncio.wait_for(self._write_dirty(), self.cfg.timeout_s)
            except Exception as e:  # noqa: BLE001 - best effort at shutdown
                log.debug("final OBS write failed: %s", e)
        await self._discard()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _write_texts(client: Any, texts: dict[str, str], written: dict[str, float]) -> None:
    for source, text in texts.items():
        # overlay=True changes only the text; the user's font, size and colours stay.
        client.send("SetInputSettings", {"inputName": source, "inputSettings": {"text": text}, "overlay": True})
        written[source] = time.perf_counter()


def _input_muted(client: Any, name: str) -> bool:
    return bool(client.send("GetInputMute", {"inputName": name}, raw=True).get("inputMuted"))


def _send_stream_caption(client: Any, text: str) -> None:
    client.send("SendStreamCaption", {"captionText": text})


def _screenshot(
    client: Any, source: str | None, fmt: str, width: int | None, height: int | None, quality: int
) -> bytes:
    if source is None:
        source = client.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"]
    request: dict[str, Any] = {"sourceName": source, "imageFormat": fmt}
    # Only one side given: OBS keeps the aspect ratio; both: OBS stretches to exactly that size.
    if width is not None:
        request["imageWidth"] = width
    if height is not None:
        request["imageHeight"] = height
    if quality >= 0:
        request["imageCompressionQuality"] = quality
    uri = client.send("GetSourceScreenshot", request, raw=True)["imageData"]
    # A data URI: "data:image/jpg;base64,...".
    return base64.b64decode(uri.partition(",")[2], validate=True)


def _new_client(cfg: ObsConfig) -> Any:
    import obsws_python

    quiet_obsws_logger()
    # host/port/password always explicit: otherwise obsws-python reads a config.toml from the CWD.
    return obsws_python.ReqClient(
        host=cfg.host, port=cfg.port, password=cfg.password.get_secret_value(), timeout=cfg.timeout_s
    )


def _new_event_client(cfg: ObsConfig) -> Any:
    import obsws_python

    return obsws_python.EventClient(
        host=cfg.host,
        port=cfg.port,
        password=cfg.password.get_secret_value(),
        timeout=cfg.timeout_s,
        subs=_WATCH_EVENTS,
    )


def _disconnect(client: Any) -> None:
    with contextlib.suppress(Exception):
        client.disconnect()


def describe_error(e: BaseException) -> str:
    """errors.describe, but a wrong password says so."""
    text = str(e)
    if type(e).__name__ == "OBSSDKError" and ("auth" in text or "identify" in text):
        # obs-websocket closes on a wrong password; obsws-python reports it as "failed to identify".
        return "authentication failed (check obs.password)"
    return describe(e)
