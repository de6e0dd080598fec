"""Local voice-activity gate: only audio around speech goes to the translator, because every second sent is billed."""

from __future__ import annotations

import bisect
import enum
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..config import GateConfig
from ..obs_state import ObsState

BYTES_PER_S = 32_000  # 16 kHz mono PCM16
_SUBFRAME_SAMPLES = 160  # 10 ms: short enough to tell a click (a few ms) from a syllable (50 ms and more)
# The noise floor is this low percentile of the 10 ms levels over the last few seconds: the quiet between
# words and breaths. A percentile, not the minimum, so a dip in fluctuating noise does not drag it down.
_FLOOR_WINDOW_S = 5.0
_FLOOR_PERCENTILE = 10.0
# Assumed until the window has heard the room: low enough that speech in the first chunk opens the gate.
_PRIOR_FLOOR_DBFS = -70.0
# Speech opens the gate at threshold_db above the floor; it stays open while the level is within this much of it.
_HYSTERESIS_DB = 6.0
# min_speech_ms of loud 10 ms frames must fall within this span to open the gate.
_ONSET_WINDOW_S = 0.3
# A chunk with this much audio above the closing level counts as speech that keeps an open gate open.
_VOICED_MIN_S = 0.03
# The trail when the caller names none: qwen3.5's documented VAD silence (1000 ms) and a margin (inputs/turns.py).
_DEFAULT_TRAIL_MS = 1100
_SILENT_DBFS = -100.0
_SILENT_POWER = 10 ** (_SILENT_DBFS / 10)
# A Hann window keeps strong rumble from leaking into the speech band; the norm makes a frame's band power
# (one-sided spectrum, Parseval) comparable with its mean square, so levels stay in dBFS.
_WINDOW = np.hanning(_SUBFRAME_SAMPLES + 2)[1:-1]
_WINDOW_NORM = float(_SUBFRAME_SAMPLES * np.sum(_WINDOW**2))
_FRAME_BYTES = 2 * _SUBFRAME_SAMPLES
# The band is every DFT bin from 200 Hz up (100 Hz per bin), and Parseval gives it without an FFT: the one-sided
# power of all bins is N * sum((x*w)^2), so the band's is that minus |X0|^2 + 2|X1|^2. Two small matrix products
# give those three numbers and the frame's energy; the process wakes cold every 100 ms, when each numpy step
# costs tens of µs and a bigger matrix (a DFT of the whole band) costs cache misses (#5). float64 because the
# subtraction cancels when rumble dominates: the band can be 50 dB below the frame's power.
_ANGLES = 2 * np.pi * np.arange(_SUBFRAME_SAMPLES) / _SUBFRAME_SAMPLES
# Real parts of bins 0 and 1 and the imaginary part of bin 1, weighted (1, 2, 2 as squares) and scaled so that
# their squares sum to the power below the band: PCM16 scaling and the window norm folded in.
_BELOW_BAND = (
    np.stack([np.ones(_SUBFRAME_SAMPLES), np.sqrt(2) * np.cos(_ANGLES), np.sqrt(2) * np.sin(_ANGLES)], 1)
    * (_WINDOW / (32768.0 * np.sqrt(_WINDOW_NORM)))[:, None]
)
# Of the squared samples: the frame's windowed power (all bins) and its plain energy (for the chunk's RMS).
_FRAME_ENERGY = np.stack([_SUBFRAME_SAMPLES * _WINDOW**2 / _WINDOW_NORM, np.ones(_SUBFRAME_SAMPLES)], 1) / 32768.0**2


class GateState(enum.StrEnum):
    """What happens to captured audio now."""

    OPEN = "open"  # sent: speech, its pre-roll, or its trailing audio
    CLOSED = "closed"  # kept back in the pre-roll ring, then dropped
    HELD = "held"  # someone asked for no audio at all (hold reasons); only a segment's closing silence is sent


class GateChunk(NamedTuple):
    """One chunk to send: PCM16 bytes, when it was captured, its RMS level (0..1); padding is made-up silence.

    `held`: kept back on purpose and sent late (the pre-roll and onset the gate releases when it opens, a pause
    the turn shaper sends once speech follows it); its capture-to-wire delay is the gate's, not the pipeline's.
    """

    pcm: bytes
    captured_at: float
    level: float
    padding: bool = False
    held: bool = False


@dataclass
class GateCounters:
    """What the gate did since start, in seconds of audio (as /status shows it)."""

    opened: int = 0
    closed: int = 0
    captured_s: float = 0.0
    sent_s: float = 0.0  # captured audio let through
    speech_s: float = 0.0  # captured audio that was speech (the physical limit of what must be billed)
    padded_s: float = 0.0  # zeros sent to close a segment that a hold cut off
    held_s: dict[str, float] = field(default_factory=dict)


@dataclass
class _Entry:
    chunk: GateChunk
    duration_s: float
    loud_s: float  # 10 ms frames at or above the opening level


class SpeechGate:
    """Decides, chunk by chunk, which captured audio is sent; shared by every translator session.

    Closed, it keeps `pre_roll_ms` of audio. When `min_speech_ms` of audio louder than the noise floor by
    `threshold_db` (and than `min_level_dbfs`) arrives within 300 ms, it opens and releases the pre-roll and
    the speech; it closes after `trail_s` without speech, so the service's VAD hears the silence that ends
    the segment. Hold reasons stop all sending; when one cuts off an open gate, zeros are sent until the
    trail is complete, so the segment in flight still ends and is translated.
    """

    def __init__(self, cfg: GateConfig, trail_ms: int | None = None) -> None:
        self.cfg = cfg
        # How long it stays open without speech: gate.trail_ms, or what the caller worked out (inputs/turns.py).
        self.trail_s = (trail_ms or cfg.trail_ms or _DEFAULT_TRAIL_MS) / 1000
        self.counters = GateCounters()
        self._holds: set[str] = set()
        self._open = not cfg.enabled
        self._ring: deque[_Entry] = deque()
        self._ring_s = 0.0
        self._quiet_s = 0.0  # captured audio since the last speech
        self._pad_s = 0.0  # zeros still owed to the service
        self._levels: deque[tuple[list[float], float]] = deque()  # each chunk's frame levels, oldest first
        self._levels_s = 0.0
        self._sorted_levels: list[float] = []  # the same levels, sorted: the floor is a running percentile
        self._prior_s = _FLOOR_WINDOW_S  # how long the assumed floor still counts
        self.noise_floor_dbfs = _PRIOR_FLOOR_DBFS
        self.last_level = 0.0  # RMS (0..1) of the last chunk fed, measured by feed: callers need not compute it

    # ---- state ---------------------------------------------------------------------------------
    @property
    def state(self) -> GateState:
        if self._holds:
            return GateState.HELD
        return GateState.OPEN if self._open else GateState.CLOSED

    @property
    def quiet_s(self) -> float:
        """Seconds of captured audio since the gate last heard speech (also while disabled or held)."""
        return self._quiet_s

    @property
    def held_by(self) -> list[str]:
        return sorted(self._holds)

    def as_dict(self) -> dict[str, Any]:
        c = self.counters
        return {
            "enabled": self.cfg.enabled,
            "state": self.state.value,
            "held_by": self.held_by,
            "noise_floor_dbfs": round(self.noise_floor_dbfs, 1),
            "opened": c.opened,
            "closed": c.closed,
            "captured_s": round(c.captured_s, 1),
            "sent_s": round(c.sent_s, 1),
            "speech_s": round(c.speech_s, 1),
            "padded_s": round(c.padded_s, 1),
            "held_s": {reason: round(s, 1) for reason, s in sorted(c.held_s.items())},
        }

    def configure(self, cfg: GateConfig, trail_ms: int | None = None) -> None:
        """New settings (a reload); speech in flight and the learned floor are kept."""
        self.cfg = cfg
        self.trail_s = (trail_ms or cfg.trail_ms or _DEFAULT_TRAIL_MS) / 1000
        if not cfg.enabled and not self._open and not self._holds:
            self._set_open(True)
            self._clear_ring()
        self._trim_ring()

    # ---- holds -----------------------------------------------------------------------------------
    def hold(self, reason: str, held: bool) -> bool:
        """Add or remove one reason to send nothing; True when that changed whether audio is held."""
        was_held = bool(self._holds)
        if held:
            self._holds.add(reason)
        else:
            self._holds.discard(reason)
        if was_held == bool(self._holds):
            return False
        if self._holds:
            # Cut off mid-segment: the service would wait for silence that never comes (protocol §6).
            if self._open:
                self._pad_s = max(0.0, self.trail_s - self._quiet_s)
                self._set_open(False)
        else:
            # Audio captured while held never goes out, not even as pre-roll; speech from now on does.
            self._set_open(not self.cfg.enabled)
        self._clear_ring()
        return True

    # ---- audio -------------------------------------------------------------------------------------
    def feed(self, pcm: bytes, level: float | None = None, captured_at: float = 0.0) -> list[GateChunk]:
        """Take one captured chunk; returns the chunks to send now, oldest first (often none)."""
        duration_s = len(pcm) / BYTES_PER_S
        # The frame levels and the RMS come from one pass over the samples (#5).
        frames_db, self.last_level = _measure(pcm)
        if level is None:
            level = self.last_level
        self._learn_floor(frames_db, duration_s)
        open_db = max(self.noise_floor_dbfs + self.cfg.threshold_db, self.cfg.min_level_dbfs)
        close_db = open_db - _HYSTERESIS_DB
        frame_s = duration_s / len(frames_db)
        # Frames at or above a level: counted by bisection in the sorted levels (C calls, not a Python loop: #21).
        ordered = sorted(frames_db)
        loud_s = (len(ordered) - bisect.bisect_left(ordered, open_db)) * frame_s
        # Open, speech keeps it open down to a lower level (hysteresis); a click is too short to.
        voiced_s = (len(ordered) - bisect.bisect_left(ordered, close_db)) * frame_s
        speech = voiced_s >= min(_VOICED_MIN_S, duration_s / 2)
        self._quiet_s = 0.0 if speech else self._quiet_s + duration_s
        c = self.counters
        c.captured_s += duration_s
        if speech:
            c.speech_s += duration_s
        chunk = GateChunk(pcm, captured_at, level)
        if self._holds:
            for reason in self._holds:
                c.held_s[reason] = c.held_s.get(reason, 0.0) + duration_s
            return self._pad(chunk, duration_s)
        if self._open:
            c.sent_s += duration_s
            if self.cfg.enabled and self._quiet_s >= self.trail_s - 1e-9:
                self._set_open(False)
            return [chunk]
        self._ring.append(_Entry(chunk, duration_s, loud_s))
        self._ring_s += duration_s
        released = self._onset()
        if released:
            return released
        self._trim_ring()
        return self._pad(chunk, duration_s)

    def flush(self) -> list[GateChunk]:
        """At a stop: speech that began but has not opened the gate yet, with its pre-roll."""
        if self._holds or self._open:
            return []
        return self._release(self._onset_window()[0])

    # ---- inside --------------------------------------------------------------------------------------
    def _onset(self) -> list[GateChunk]:
        """Open if the onset window holds enough speech; returns what to release."""
        first, loud_s = self._onset_window()
        if loud_s < self.cfg.min_speech_ms / 1000 - 1e-9:
            return []
        self._pad_s = 0.0  # the segment goes on with real audio
        return self._release(first)

    def _onset_window(self) -> tuple[int | None, float]:
        """Ring index of the first loud chunk in the last 300 ms (None: none), and the loud time there."""
        recent_s = loud_s = 0.0
        first = None
        for i in range(len(self._ring) - 1, -1, -1):
            if recent_s >= _ONSET_WINDOW_S - 1e-9:
                break
            entry = self._ring[i]
            recent_s += entry.duration_s
            if entry.loud_s > 0:
                first, loud_s = i, loud_s + entry.loud_s
        return first, loud_s

    def _release(self, first: int | None) -> list[GateChunk]:
        if first is None:
            return []
        start, pre_s = first, 0.0
        while start > 0 and pre_s + self._ring[start - 1].duration_s <= self.cfg.pre_roll_ms / 1000 + 1e-9:
            start -= 1
            pre_s += self._ring[start].duration_s
        entries = list(self._ring)
        # The pre-roll carries its onset's capture time: capture-to-wire then measures the pipeline, not the
        # pre-roll length, while any delay the gate adds to speech itself still shows.
        onset_at = entries[first].chunk.captured_at
        out = [e.chunk._replace(captured_at=onset_at, held=True) for e in entries[start:first]]
        out += [e.chunk._replace(held=True) for e in entries[first:-1]] + [entries[-1].chunk]
        self.counters.sent_s += sum(len(c.pcm) for c in out) / BYTES_PER_S
        self._clear_ring()
        self._set_open(True)
        return out

    def _pad(self, chunk: GateChunk, duration_s: float) -> list[GateChunk]:
        if self._pad_s <= 1e-9:
            return []
        self._pad_s -= duration_s
        self.counters.padded_s += duration_s
        return [GateChunk(bytes(len(chunk.pcm)), chunk.captured_at, 0.0, padding=True)]

    def _set_open(self, is_open: bool) -> None:
        if is_open != self._open:
            if is_open:
                self.counters.opened += 1
            else:
                self.counters.closed += 1
        self._open = is_open

    def _clear_ring(self) -> None:
        self._ring.clear()
        self._ring_s = 0.0

    def _trim_ring(self) -> None:
        # The pre-roll, plus the onset window whose first loud chunk the pre-roll is counted back from.
        keep_s = self.cfg.pre_roll_ms / 1000 + _ONSET_WINDOW_S
        while self._ring and self._ring_s - self._ring[0].duration_s >= keep_s - 1e-9:
            self._ring_s -= self._ring.popleft().duration_s

    def _learn_floor(self, levels: list[float], duration_s: float) -> None:
        # A sorted window updated by bisection instead of sorting 5 s of levels anew on every chunk (#5).
        self._levels.append((levels, duration_s))
        self._levels_s += duration_s
        for v in levels:
            bisect.insort(self._sorted_levels, v)
        while len(self._levels) > 1 and self._levels_s - self._levels[0][1] >= _FLOOR_WINDOW_S - 1e-9:
            old, old_s = self._levels.popleft()
            self._levels_s -= old_s
            for v in old:
                del self._sorted_levels[bisect.bisect_left(self._sorted_levels, v)]
        self._prior_s = max(0.0, self._prior_s - duration_s)
        floor = _sorted_percentile(self._sorted_levels, _FLOOR_PERCENTILE)
        # Until the window is full the assumed floor still counts, so speech at the very start is heard as speech.
        self.noise_floor_dbfs = min(floor, _PRIOR_FLOOR_DBFS) if self._prior_s > 0 else floor


def _sorted_percentile(a: list[float], q: float) -> float:
    """np.percentile(a, q) (linear interpolation) of an already sorted list."""
    pos = (len(a) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(a) - 1)
    return a[lo] + (a[hi] - a[lo]) * (pos - lo)


def _measure(pcm: bytes) -> tuple[list[float], float]:
    """Speech-band level (above 200 Hz) of each 10 ms frame in dBFS, and the chunk's RMS level (0..1).

    Rumble, hum and handling noise sit below the band; leaving them out keeps them from holding the gate open.
    A chunk shorter than a frame is measured as one frame padded with silence; a trailing partial frame counts
    in the RMS only.
    """
    if len(pcm) % 2:
        raise ValueError(f"PCM16 audio of {len(pcm)} bytes: not a whole number of samples")
    samples = len(pcm) // 2
    frames = max(1, samples // _SUBFRAME_SAMPLES)
    rows = max(1, -(-samples // _SUBFRAME_SAMPLES))  # with a partial or short frame, zero-padded
    if rows * _FRAME_BYTES != len(pcm):
        pcm = b"".join((pcm, bytes(rows * _FRAME_BYTES - len(pcm))))
    x = np.ndarray((rows, _SUBFRAME_SAMPLES), "<i2", pcm).astype(np.float64)
    below: list[list[float]] = np.dot(x, _BELOW_BAND).tolist()
    energy: list[list[float]] = np.dot(np.square(x, out=x), _FRAME_ENERGY).tolist()
    # Lists: ten numbers are cheaper to finish in Python than with more numpy calls, and a comparison than max()
    # (#5). Floored at _SILENT_DBFS as before; that also keeps digital silence (0) out of log10.
    levels: list[float] = []
    total = 0.0
    for (dc, re, im), (windowed, plain) in zip(below, energy, strict=True):
        power = windowed - dc * dc - re * re - im * im
        levels.append(10 * math.log10(power) if power > _SILENT_POWER else _SILENT_DBFS)
        total += plain
    del levels[frames:]  # the partial frame
    return levels, math.sqrt(total / samples) if samples else 0.0


def obs_holds(cfg: GateConfig, state: ObsState) -> dict[str, bool]:
    """Which OBS-state reasons hold the audio now (reason -> held). OBS away counts as not live, not in a scene."""
    live = ("streaming" in cfg.obs_outputs and state.streaming) or ("recording" in cfg.obs_outputs and state.recording)
    return {
        "obs_not_live": bool(cfg.obs_outputs) and not live,
        # A watched input OBS does not have counts as unmuted (ObsSink warns): a typo must not mute captions.
        "obs_muted": bool(cfg.obs_unmuted) and all(name in state.muted for name in cfg.obs_unmuted),
        "obs_scene": bool(cfg.obs_scenes) and state.scene not in cfg.obs_scenes,
    }
