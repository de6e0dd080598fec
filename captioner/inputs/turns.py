"""Pure: where sentences end, so the bill is the speech and not the silence around it.

Server turns: the service's VAD ends a sentence once it has heard its silence (`silence_duration_ms`), so the gate
sends just that much trailing audio. Client turns (qwen3.5's manual mode, protocol §4.4): the gate itself judges
that a sentence ended (a pause of `end_of_sentence_ms`, measured here and never sent) and says so with
`input_audio_buffer.commit`; the quiet audio of a pause is held back and only goes out if speech follows it,
inside the same sentence. Every session gets the same chunks and the same commits, so every target splits the
speech at the same places.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ..config import Config, GateConfig, OutputConfig
from ..translation.protocol import Dialect
from .gate import BYTES_PER_S, GateChunk

# Server turns: sent beyond the service's silence, because its VAD counts silence in frames of its own. Its speech
# ends at or before where the gate's does (the gate's closing level is 3 dB above the room's noise, far below what
# a VAD calls speech), so the gate's trail starts late already and one chunk more is enough.
TRAIL_MARGIN_MS = 100
# An opening with less speech than this was a click or a knock: dropped (`clear`), not committed, because a
# commit starts a billed response (and its translation of nothing).
MIN_TURN_SPEECH_S = 0.2


@dataclass(frozen=True)
class TurnPlan:
    """How sentences end with one config and model."""

    client: bool  # the gate ends sentences with a commit; nothing between sentences is sent
    trail_ms: int  # how long the gate stays open without speech
    # Server turns ended by the gate: this much silence, as zeros, at once when it judges the sentence ended.
    zeros_ms: int = 0

    @property
    def mode(self) -> str:
        return "client" if self.client else "server+zeros" if self.zeros_ms else "server"


def plan(gate: GateConfig, dialect: Dialect, live: bool = False) -> TurnPlan:
    """gate.turns for this model: `auto` is client turns where the model has them and the gate is on, unless
    captions are shown `live`: the service answers a sentence only once it is committed, so with client turns
    nothing of it shows while it is spoken."""
    client = gate.enabled and dialect.manual_turns and (gate.turns == "client" or (gate.turns == "auto" and not live))
    if client:
        return TurnPlan(True, gate.end_of_sentence_ms)
    trail = gate.trail_ms if gate.trail_ms is not None else dialect.vad_silence_ms + TRAIL_MARGIN_MS
    if gate.enabled and gate.end_with_zeros:
        return TurnPlan(False, gate.end_of_sentence_ms, trail)
    return TurnPlan(False, trail)


def live_captions(cfg: Config) -> bool:
    """Whether an OBS text source shows each sentence as it is spoken (layout.live)."""
    return any(cfg.layout_for(o).live for o in cfg.outputs if isinstance(o, OutputConfig))


def plan_for(cfg: Config) -> TurnPlan:
    """The turn plan of a whole config."""
    return plan(cfg.gate, cfg.translator.dialect, live_captions(cfg))


class TurnEnd(NamedTuple):
    """The end of a sentence: commit it (translate), or clear it (it held no speech)."""

    commit: bool


Item = GateChunk | TurnEnd


class TurnShaper:
    """Turns what the gate lets through into what the sessions are sent: audio chunks and, in client turns, ends.

    Server turns pass everything through. Client turns send the gate's opening burst (pre-roll and onset) and
    every speech chunk; a quiet chunk is held until speech follows it (a pause inside the sentence, sent) or the
    gate closes (the sentence ended: the held quiet is dropped and the sentence committed). Server turns ended
    with zeros do the same, and end the sentence with `zeros_ms` of digital silence for the service's VAD.
    """

    def __init__(self, client: bool, zeros_ms: int = 0) -> None:
        self.client = client
        self.zeros_ms = zeros_ms
        self._in_turn = False
        self._held: list[GateChunk] = []
        self._speech_s = 0.0
        self._last = GateChunk(bytes(3200), 0.0, 0.0)  # the last chunk taken in a sentence

    @property
    def in_turn(self) -> bool:
        """Whether a sentence has been started on the sessions and not yet committed or cleared."""
        return self._in_turn

    def take(self, out: list[GateChunk], speech: bool, is_open: bool) -> list[Item]:
        """What to send for one captured chunk: `out` is what the gate let through, `speech` whether the chunk
        was speech, `is_open` whether the gate is still open after it."""
        if not self.client and not self.zeros_ms:
            return list(out)
        # Zeros that close a sentence a hold cut off are for a service VAD; here the sentence is committed.
        real = [c for c in out if not c.padding]
        if real:
            self._last = real[-1]
        items: list[Item] = []
        if real and not self._in_turn:
            # The gate just opened: its pre-roll and onset go out as they are.
            self._in_turn = True
            self._speech_s = _seconds(real[-1]) if speech else 0.0
            items += real
        elif real:
            for chunk in real:
                if speech:
                    items += [c._replace(held=True) for c in self._held]
                    self._held = []
                    items.append(chunk)
                    self._speech_s += _seconds(chunk)
                else:
                    self._held.append(chunk)
        if not is_open:
            items += self.end()
        return items

    def end(self) -> list[Item]:
        """End the sentence in flight now (the gate closed, a hold, a stop); the held quiet is dropped."""
        if not self._in_turn:
            return []
        self._in_turn = False
        last, self._held = self._last, []
        if self.client:
            return [TurnEnd(self._speech_s >= MIN_TURN_SPEECH_S - 1e-9)]
        # Zeros in chunks of the capture's size, stamped like the gate's own closing zeros (the last chunk's time).
        size = len(last.pcm)
        n = -(-self.zeros_ms * BYTES_PER_S // 1000 // size)
        return [GateChunk(bytes(size), last.captured_at, 0.0, padding=True) for _ in range(n)]


def _seconds(chunk: GateChunk) -> float:
    return len(chunk.pcm) / BYTES_PER_S
