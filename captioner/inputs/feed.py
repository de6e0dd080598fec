"""Captured audio through the gate to every translator session; the reasons that hold it back (OBS, budget, pause)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..config import Config
from ..obs_state import ObsState
from ..status import Status
from ..translation.session import TranslatorSession
from .gate import BYTES_PER_S, GateState, SpeechGate, obs_holds
from .turns import Item, TurnEnd, TurnShaper, plan_for

# Sentence ends as the sessions count them (translation.connection): committed, cleared, nothing to commit.
KINDS = ("commit", "clear", "skipped")

log = logging.getLogger(__name__)


class AudioFeed:
    """One gate for every session: they share the capture, so whether it is speech is decided once."""

    def __init__(
        self, cfg: Config, status: Status, sessions: Mapping[str, TranslatorSession], input_name: str = ""
    ) -> None:
        self.cfg = cfg
        self.input_name = input_name  # its sessions' `input` label ("" for the single audio: input)
        self.status = status
        self.sessions = sessions
        self.turns = plan_for(cfg)
        self.gate = SpeechGate(cfg.gate, self.turns.trail_ms)
        self.shaper = TurnShaper(self.turns.client, self.turns.zeros_ms)
        self._handed = {False: 0.0, True: 0.0}  # seconds of captured audio / of zeros handed to the sessions

    def on_chunk(self, chunk: bytes, captured_at: float) -> None:
        """The capture's callback: one chunk of 16 kHz PCM16, on the event loop."""
        m = self.status.metrics
        before = self.gate.state
        out = self.gate.feed(chunk, None, captured_at)
        level = self.gate.last_level  # the gate's analysis measures it anyway
        seconds = len(chunk) / BYTES_PER_S
        speech = self.gate.quiet_s == 0
        m.audio_captured_seconds.inc(seconds)
        if speech:
            m.audio_speech_seconds.inc(seconds)
        for reason in self.gate.held_by:
            m.audio_held_seconds.labels(reason).inc(seconds)
        self._moved(before)
        self.send(self.shaper.take(out, speech, self.gate.state == GateState.OPEN))
        m.audio_level.set(level)

    def send(self, items: list[Item]) -> None:
        """The same chunks and sentence ends to every session, in the same order."""
        for item in items:
            if not isinstance(item, TurnEnd):
                # What the sessions were handed, after the shaper: the gate's own counters include quiet it held.
                self._handed[item.padding] += len(item.pcm) / BYTES_PER_S
        for session in self.sessions.values():
            if not items:
                session.feed_gap()  # nothing in flight: a pause, as far as rotation is concerned
            for item in items:
                if isinstance(item, TurnEnd):
                    session.end_turn(item.commit)
                else:
                    session.feed(item.pcm, item.captured_at, item.level, item.held)

    def flush(self) -> None:
        """At stop: speech that had just begun, before the gate opened for it, still goes out; in client turns the
        sentence in flight is committed (before each session's session.finish)."""
        out = self.gate.flush()
        self.send(self.shaper.take(out, False, True) + self.shaper.end())

    def as_dict(self) -> dict[str, Any]:
        """The gate's figures for /status, with how sentences end and what each session was sent (what it bills)."""
        t = self.turns
        m = self.status.metrics
        speech_s = self.gate.counters.speech_s
        sessions = {}
        for target in self.sessions:
            key = (self.input_name, target)
            sent_s = m.audio_sent_seconds.value(*key)
            turns = {k: int(m.translator_turns.value(*key, k)) for k in KINDS}
            sessions[target] = {
                "sent_s": round(sent_s, 1),
                # The bill against its physical limit: 1.0 would be the speech alone.
                "sent_per_speech": round(sent_s / speech_s, 2) if speech_s else None,
                "turns": turns,
            }
        handed = {"sent_s": round(self._handed[False], 1), "padded_s": round(self._handed[True], 1)}
        gate = {**self.gate.as_dict(), **handed}
        return {**gate, "turns": t.mode, "trail_ms": t.zeros_ms or t.trail_ms, "sessions": sessions}

    def hold(self, reason: str, held: bool) -> None:
        """Stop (held=True) or allow sending audio for one reason (OBS not streaming, muted, budget, pause ...).

        Audio goes out only while no reason holds it; a segment cut off mid-speech still gets the silence that
        ends it, and speech starting right at the release is sent from its start. Call from the event loop.
        """
        before = self.gate.state
        if self.gate.hold(reason, held):
            log.info("audio %s (%s)", "held: nothing is sent" if held else "released", reason)
        else:
            log.debug("audio hold %s %s; held by %s", reason, "on" if held else "off", self.gate.held_by)
        self._moved(before)
        # A sentence cut off by the hold ends here; the gate owes no closing silence in client turns. Nothing to
        # end sends nothing: an empty send would count a pause the capture never had.
        if self.gate.state != GateState.OPEN and (ends := self.shaper.end()):
            self.send(ends)

    def follow_obs(self, state: ObsState) -> None:
        """Hold or release the audio as gate.obs_* asks for what OBS is doing now."""
        for reason, held in obs_holds(self.cfg.gate, state).items():
            if held != (reason in self.gate.held_by):
                self.hold(reason, held)

    def configure(self, cfg: Config, state: ObsState) -> None:
        self.cfg = cfg
        before = self.gate.state
        turns = plan_for(cfg)
        if turns != self.turns:
            # Client turns restart the sessions (reload.SessionSpec): the sentence ends on the ones that have it.
            if ends := self.shaper.end():
                self.send(ends)
            self.shaper = TurnShaper(turns.client, turns.zeros_ms)
        self.turns = turns
        self.gate.configure(cfg.gate, turns.trail_ms)
        self._moved(before)
        self.follow_obs(state)

    def _moved(self, before: GateState) -> None:
        state = self.gate.state
        if state != before:
            self.status.metrics.audio_gate_transitions.labels(state.value).inc()
            log.debug("audio gate %s", state.value)
