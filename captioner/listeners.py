"""Every input's Listener: made, held, released, reconfigured and stopped together, each on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from .config import Config, InputConfig, link_name
from .inputs.audio import AudioCapture
from .inputs.gate import SpeechGate
from .listener import Listener, SessionFactory
from .obs_state import ObsState
from .reload import ReloadPlan, SessionKey, SessionSpec
from .status import Status
from .translation.interpreter import Caption
from .translation.session import TranslatorSession


class Listeners:
    """The inputs by name ("" = the single audio: input), in config order; the first is the primary one."""

    def __init__(
        self,
        status: Status,
        *,
        capture_factory: Callable[..., AudioCapture],
        session_factory: SessionFactory,
        on_caption: Callable[[Caption], None],
    ) -> None:
        self.status = status
        self._capture_factory = capture_factory
        self._session_factory = session_factory
        self._on_caption = on_caption
        self.by_name: dict[str, Listener] = {}
        self._held: set[str] = set()  # hold reasons in force: a new input starts held by them too
        self._obs = ObsState()  # until OBS says otherwise, it is not streaming

    @property
    def primary(self) -> Listener:
        """The first input (the only one without `inputs:`)."""
        return next(iter(self.by_name.values()))

    def gates(self) -> list[SpeechGate]:
        return [listener.feed.gate for listener in self.by_name.values()]

    def sessions(self) -> list[TranslatorSession]:
        return [s for listener in self.by_name.values() for s in listener.sessions.values()]

    def running(self) -> dict[SessionKey, SessionSpec]:
        return {(n, t): spec for n, li in self.by_name.items() for t, spec in li.specs.items()}

    def add(self, cfg: Config, inp: InputConfig) -> Listener:
        listener = Listener(
            cfg,
            inp,
            self.status,
            capture_factory=self._capture_factory,
            session_factory=self._session_factory,
            on_caption=self._on_caption,
        )
        self.by_name[inp.name] = listener
        self.status.audio_gate = self.primary.feed.as_dict  # the top-level gate is the first input's
        listener.feed.follow_obs(self._obs)
        for reason in self._held:
            listener.feed.hold(reason, True)
        return listener

    def hold(self, reason: str, held: bool) -> None:
        """Hold or release every input's audio for one reason (budget, pause): the budgets hold every input."""
        (self._held.add if held else self._held.discard)(reason)
        for listener in self.by_name.values():
            listener.feed.hold(reason, held)

    def follow_obs(self, state: ObsState) -> None:
        self._obs = state
        for listener in self.by_name.values():
            listener.feed.follow_obs(state)

    def start(self, cfg: Config) -> None:
        for listener in self.by_name.values():
            listener.start(cfg)

    async def apply(self, new: Config, plan: ReloadPlan, obs: ObsState, at_pause: bool) -> None:
        """An input gone stops, a new one starts, and each other input restarts only the parts of it that changed."""
        for name in plan.stop_inputs:
            await self.by_name.pop(name).stop()
            # An input gone leaves no links behind in /status (its name may come back as another device).
            gone = [
                n
                for n in self.status.links
                if name and (n == link_name("audio", name) or n.startswith(link_name("translator", name) + ":"))
            ]
            for link in gone:
                del self.status.links[link]
        inputs = {i.name: i for i in new.input_list()}
        for name in plan.capture:
            await self.by_name[name].restart_capture(new, inputs[name])
        for name, listener in self.by_name.items():
            listener.configure(new, inputs[name], obs, gate=name in plan.gate)
        for name, listener in self.by_name.items():
            stop = tuple(t for n, t in plan.stop_sessions if n == name)
            start = tuple(t for n, t in plan.start_sessions if n == name)
            if at_pause and (stop or start):
                await listener.switch_sessions(new, stop, start)
                continue
            for target in stop:
                await listener.stop_session(target)
            for target in start:
                listener.start_session(new, target)
        for name in plan.start_inputs:
            self.add(new, inputs[name]).start(new)
        self.status.audio_gate = self.primary.feed.as_dict  # the first input may be another one now

    async def stop_capture(self) -> None:
        for listener in self.by_name.values():
            await listener.stop_capture()

    async def finish(self) -> None:
        await asyncio.gather(*(listener.finish() for listener in self.by_name.values()))

    def as_dict(self, cost: Mapping[str, float]) -> dict[str, Any]:
        """/status `inputs`: each named input's parts and its estimated cost since start."""
        return {n: {**li.as_dict(), "cost": round(cost.get(n, 0.0), 6)} for n, li in self.by_name.items() if n}
