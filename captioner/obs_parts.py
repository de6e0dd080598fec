"""What runs while OBS is wanted: the obs-websocket link, its text and stream-caption outputs, screenshots."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from .config import Config
from .inputs.gate import SpeechGate
from .obs import ObsSink
from .obs_state import ObsState
from .obs_watch import Recording
from .outputs.base import CaptionSink
from .outputs.obs_text import ObsTextOutput
from .outputs.stream_captions import StreamCaptionOutput
from .placement import plans
from .reload import wants_obs
from .status import LinkState, Status
from .translation.session import TranslatorSession
from .vision import VisionSampler

log = logging.getLogger(__name__)


class ObsParts:
    """Started and stopped as one: a change of OBS settings restarts them together.

    Its outputs enter the router through `set_output(name, sink)`; OBS's recording and state reach the daemon
    through `on_recording` and `on_state`.
    """

    def __init__(
        self,
        status: Status,
        set_output: Callable[[str, CaptionSink | None], None],
        *,
        on_recording: Callable[[Recording], None],
        on_state: Callable[[ObsState], None],
        hidden: set[str],
        sessions: Callable[[], Iterable[TranslatorSession]],
        gates: Callable[[], Iterable[SpeechGate]],
        label: Callable[[str], str] = lambda name: "",
    ) -> None:
        self.status = status
        self._set_output = set_output
        self._on_recording = on_recording
        self._on_state = on_state
        self._hidden = hidden
        self._sessions = sessions
        self._gates = gates
        # A speaker's name -> the label shown before that speaker's captions (speakers.label, read live).
        self._label = label
        self.obs: ObsSink | None = None
        self.text: ObsTextOutput | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return self.obs is not None

    @property
    def state(self) -> ObsState:
        return self.obs.state if self.obs is not None else ObsState()

    def start(self, cfg: Config) -> None:
        self.status.vision = None
        if not wants_obs(cfg):
            self.status.link("obs").set(LinkState.DISABLED)
            return
        follow = cfg.transcripts.enabled and cfg.transcripts.follow_recording
        obs = self.obs = ObsSink(
            cfg.obs,
            plans(cfg),
            self.status,
            on_recording=self._on_recording if follow else None,
            on_state=self._on_state,
            watch_inputs=cfg.gate.obs_unmuted,
        )
        self._tasks = [asyncio.create_task(obs.run(), name="obs")]
        self.text = ObsTextOutput(cfg, obs, self.status, self._hidden, self._label)
        self._set_output("obs_text", self.text)
        self._tasks.append(asyncio.create_task(self.text.run(), name="presenter"))
        if cfg.stream_captions.enabled:
            stream = StreamCaptionOutput(
                cfg.stream_captions, cfg.stream_caption_language, obs.send_stream_caption, self.status, self._label
            )
            self._set_output("stream_captions", stream)
            self._tasks.append(asyncio.create_task(stream.run(), name="stream-captions"))
        if cfg.vision.enabled:
            vision = VisionSampler(cfg.vision, obs, self._sessions, self._gates, self.status)
            self.status.vision = vision.as_dict
            self._tasks.append(asyncio.create_task(vision.run(), name="vision"))

    def set_outputs(self, cfg: Config) -> None:
        """New outputs or layout, same OBS: the sources are (created and) written, the screens rebuilt."""
        if self.obs is not None:
            self.obs.set_sources(plans(cfg))
        if self.text is not None:
            self.text.set_outputs(cfg)

    def refresh(self, source: str) -> None:
        """Write again what `source` should show now (after live control hid or showed it)."""
        if self.text is not None:
            self.text.refresh(source)
        else:
            self.status.screens[source] = ""

    async def stop(self) -> None:
        if self.text is not None:
            await self.text.close()  # the last captions are laid out before the link goes
        for task in reversed(self._tasks):
            await cancel(task)
        if self.obs is not None:
            await self.obs.close()
        self._set_output("obs_text", None)
        self._set_output("stream_captions", None)
        self.obs, self.text, self._tasks = None, None, []
        self._on_recording(Recording(False, None, time.time()))


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel a task and wait for it; its failure is logged, never raised into a stop."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("task %s failed", task.get_name())
