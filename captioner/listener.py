"""One input's parts: its capture, its gate and feed, its translator session per target, and its captions' label."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from .config import Config, InputConfig, link_name
from .inputs.audio import AudioCapture
from .inputs.feed import AudioFeed
from .inputs.gate import GateState
from .obs_parts import cancel
from .obs_state import ObsState
from .reload import SessionSpec, session_spec
from .status import Status
from .translation.interpreter import Caption
from .translation.session import TranslatorSession

log = logging.getLogger(__name__)

# A live source-language switch waits this long for the new sessions to be ready, then this long for a pause.
_SWITCH_CONNECT_S = 10.0
_SWITCH_PAUSE_S = 15.0
_SWITCH_TICK_S = 0.05

# (config of this input's sessions, input name, target, what it starts with, the caption callback) -> a session,
# not yet running.
SessionFactory = Callable[[Config, str, str, SessionSpec, Callable[[Caption], None]], TranslatorSession]


def own_config(cfg: Config, inp: InputConfig) -> Config:
    """The config as this input's parts see it: its gate and its source language in place of the top-level ones."""
    return cfg.model_copy(update={"gate": cfg.input_gate(inp), "translator": cfg.input_translator(inp)})


class Listener:
    """Everything that exists once per input; one input failing (its device, its sessions) never touches another."""

    def __init__(
        self,
        cfg: Config,
        inp: InputConfig,
        status: Status,
        *,
        capture_factory: Callable[..., AudioCapture],
        session_factory: SessionFactory,
        on_caption: Callable[[Caption], None],
    ) -> None:
        self.name = inp.name
        self.input = inp
        self.status = status
        self._capture_factory = capture_factory
        self._session_factory = session_factory
        self._on_caption = on_caption
        self.sessions: dict[str, TranslatorSession] = {}
        self.specs: dict[str, SessionSpec] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.feed = AudioFeed(own_config(cfg, inp), status, self.sessions, inp.name)
        self.capture = self._new_capture(cfg)
        self._capture_task: asyncio.Task[None] | None = None

    # ---- parts ------------------------------------------------------------------------------------
    def _new_capture(self, cfg: Config) -> AudioCapture:
        a = cfg.input_audio(self.input)
        # Only a named input passes its link name: stand-in captures (tests, benchmarks) take the old arguments.
        named = {"link": link_name("audio", self.name)} if self.name else {}
        return self._capture_factory(
            a.device, a.chunk_ms, a.queue_chunks, self.feed.on_chunk, self.status, backend=a.backend, **named
        )

    def caption(self, caption: Caption) -> None:
        """A session's caption, marked with this input; a named input's name is its speaker label unless one is set."""
        if self.name:
            caption = dataclasses.replace(caption, input=self.name, speaker=caption.speaker or self.name)
        self._on_caption(caption)

    def start(self, cfg: Config) -> None:
        self._capture_task = asyncio.create_task(self.capture.run(), name=link_name("audio", self.name))
        for target in cfg.translator.targets:
            self.start_session(cfg, target)

    def _new_session(self, cfg: Config, target: str) -> tuple[TranslatorSession, SessionSpec]:
        spec = session_spec(cfg, target, self.input)
        return self._session_factory(own_config(cfg, self.input), self.name, target, spec, self.caption), spec

    def _run(self, target: str, session: TranslatorSession) -> asyncio.Task[None]:
        return asyncio.create_task(session.run(), name=link_name("translator", self.name, target))

    def start_session(self, cfg: Config, target: str) -> None:
        session, spec = self._new_session(cfg, target)
        self.sessions[target], self.specs[target] = session, spec
        self._tasks[target] = self._run(target, session)

    async def stop_session(self, target: str) -> None:
        session = self.sessions.pop(target)
        del self.specs[target]
        await session.finish()
        await cancel(self._tasks.pop(target))

    async def switch_sessions(self, cfg: Config, stop: tuple[str, ...], start: tuple[str, ...]) -> None:
        """Replace sessions without losing the sentence in flight (a live language switch).

        The new sessions connect while the old ones still take the audio; the audio moves over at a pause (the
        gate closed, or after _SWITCH_PAUSE_S), and only then are the old ones finished: session.finish waits for
        the captions of what they were sent.
        """
        fresh = {t: self._new_session(cfg, t) for t in start}
        tasks = {t: self._run(t, session) for t, (session, _) in fresh.items()}
        await _until(lambda: all(s.connected for s, _ in fresh.values()), _SWITCH_CONNECT_S)
        await _until(lambda: self.feed.gate.state != GateState.OPEN, _SWITCH_PAUSE_S)
        old = [(self.sessions.pop(t), self._tasks.pop(t)) for t in stop]
        for t in stop:
            del self.specs[t]
        for t, (session, spec) in fresh.items():
            self.sessions[t], self.specs[t], self._tasks[t] = session, spec, tasks[t]
        log.info("input %s: sessions switched over (%s)", self.name or "audio", ", ".join(start) or "none")
        await asyncio.gather(*(session.finish() for session, _ in old))
        for _, task in old:
            await cancel(task)

    async def restart_capture(self, cfg: Config, inp: InputConfig) -> None:
        """Reopen the capture with this input's new device or settings; the gate and sessions go on."""
        self.input = inp
        self.capture.stop()
        await cancel(self._capture_task)
        self.capture = self._new_capture(cfg)
        self._capture_task = asyncio.create_task(self.capture.run(), name=link_name("audio", self.name))

    def configure(self, cfg: Config, inp: InputConfig, obs: ObsState, gate: bool) -> None:
        """The new config's settings for this input (its gate when `gate`); parts restart elsewhere."""
        self.input = inp
        if gate:
            self.feed.configure(own_config(cfg, inp), obs)
        self.feed.cfg = own_config(cfg, inp)

    # ---- stopping -----------------------------------------------------------------------------------
    async def stop_capture(self) -> None:
        """No new audio; what the gate kept back of speech that had just begun still goes out."""
        self.capture.stop()
        await cancel(self._capture_task)
        self.feed.flush()

    async def finish(self) -> None:
        """The sessions send what they have and wait for their last captions."""
        await asyncio.gather(*(s.finish() for s in self.sessions.values()))
        for task in self._tasks.values():
            await cancel(task)

    async def stop(self) -> None:
        await self.stop_capture()
        await self.finish()
        self.sessions.clear()
        self.specs.clear()
        self._tasks.clear()

    # ---- status -------------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        link = self.status.links.get(link_name("audio", self.name))
        return {
            "device": self.input.device,
            "source_language": self.feed.cfg.translator.source_language,
            "link": link.as_dict() if link is not None else None,
            "audio_source": self.capture.source if isinstance(self.capture, AudioCapture) else None,
            "audio_level": round(self.feed.gate.last_level, 4),
            "audio_gate": self.feed.as_dict(),
            "sessions": {t: s.link.state.value for t, s in self.sessions.items()},
        }


async def _until(done: Callable[[], bool], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(_SWITCH_TICK_S)
