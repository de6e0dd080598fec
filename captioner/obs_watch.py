"""What OBS is doing (stream, recording, program scene, watched inputs' mute), from its events and replies."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from .obs_client import pipeline, refusal
from .obs_state import ObsState

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Recording:
    """OBS started or stopped recording; `started_at` is wall time of the recording's first frame."""

    active: bool
    path: str | None
    started_at: float


class Call(Protocol):
    """Runs a request `fn(client)` on the OBS thread (ObsSink._call)."""

    def __call__(self, fn: Callable[[Any], T], /) -> Awaitable[T]: ...


class ObsWatch:
    """Keeps `state` and reports recordings: events arrive on the EventClient's thread, replies through `call`."""

    def __init__(
        self,
        on_recording: Callable[[Recording], None] | None,
        on_state: Callable[[ObsState], None] | None,
        watch_inputs: Sequence[str],
    ) -> None:
        self._on_recording = on_recording
        self._on_state = on_state
        self._watch_inputs = tuple(watch_inputs)
        # Nobody listening: no event connection, no state requests.
        self.enabled = on_recording is not None or on_state is not None
        self.state = ObsState()
        self._missing_inputs: set[str] = set()
        # Not state.recording: that turns False while OBS is away, but the recording files stay open until OBS,
        # back again, says the recording really ended (a websocket hiccup must not split them).
        self._recording = False
        # The loop that events are handed to; set when the sink runs.
        self.loop: asyncio.AbstractEventLoop | None = None

    async def sync(self, call: Call) -> None:
        """Ask OBS what it is doing (on connect, and when idle in case the event connection missed a change)."""
        if not self.enabled:
            return
        # One trip to the OBS thread and one round trip to OBS for every question (#21: this runs every 2 s).
        asks: list[tuple[str, dict[str, Any] | None]] = [
            ("GetRecordStatus", None),
            ("GetStreamStatus", None),
            ("GetCurrentProgramScene", None),
        ]
        asks += [("GetInputMute", {"inputName": name}) for name in self._watch_inputs]
        replies = await call(functools.partial(pipeline, requests=asks))
        for reply in replies[:3]:
            if (error := refusal(reply)) is not None:
                raise error
        record, stream, scene = (reply.get("responseData") or {} for reply in replies[:3])
        muted = set()
        for name, reply in zip(self._watch_inputs, replies[3:], strict=True):
            if (error := refusal(reply)) is not None:  # a missing input must not take the OBS link down
                if name not in self._missing_inputs:
                    log.warning("OBS has no input %r to watch for mute (%s); it counts as unmuted", name, error)
                    self._missing_inputs.add(name)
                continue
            if (reply.get("responseData") or {}).get("inputMuted"):
                muted.add(name)
        active = bool(record.get("outputActive"))
        if active != self._recording:
            duration_s = float(record.get("outputDuration") or 0) / 1000
            self._record_changed(active, None, time.time() - (duration_s if active else 0))
        self.update(
            connected=True,
            streaming=bool(stream.get("outputActive")),
            recording=active,
            scene=scene.get("currentProgramSceneName"),
            muted=frozenset(muted),
        )

    def update(self, **changes: Any) -> None:
        new = replace(self.state, **changes)
        if new != self.state:
            self.state = new
            if self._on_state is not None:
                self._on_state(new)

    def _record_changed(self, active: bool, path: str | None, at: float) -> None:
        self.update(recording=active)
        if active == self._recording and not (active and path):
            return
        self._recording = active
        if self._on_recording is not None:
            self._on_recording(Recording(active, path or None, at))

    def on_event(self, kind: str, data: Any) -> None:
        """EventClient thread: hand the event to the loop."""
        loop = self.loop
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
                loop.call_soon_threadsafe(functools.partial(self.update, streaming=active))
        elif kind == "scene":
            loop.call_soon_threadsafe(functools.partial(self.update, scene=getattr(data, "scene_name", None)))
        elif kind == "mute":
            name, muted = getattr(data, "input_name", ""), bool(getattr(data, "input_muted", False))
            if name in self._watch_inputs:
                loop.call_soon_threadsafe(self._set_muted, name, muted)

    def _set_muted(self, name: str, muted: bool) -> None:
        now = set(self.state.muted)
        (now.add if muted else now.discard)(name)
        self.update(muted=frozenset(now))
