"""Pure voice playout: audio events -> whole PCM utterances, played in order from a bounded buffer."""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from .translation.protocol import AUDIO_DELTA, AUDIO_EVENT_TYPES

RATE = 24_000  # response.audio.delta is PCM16LE mono at 24 kHz (translator-protocol.md §6)
BYTES_PER_S = RATE * 2
# An utterance that gets no delta for this long while unfinished is played as it is: the response was cut off
# (a reconnect, a cancel) and no `.done` will come (§12.6).
STALE_S = 5.0
# Ids of utterances already played or dropped, so a late delta does not start them again.
_REMEMBERED = 256


@dataclass(frozen=True)
class AudioEvent:
    """One audio event, flattened: a delta (base64 text, maybe bad) or the end of a response's audio."""

    key: str
    done: bool
    delta: Any = None


def audio_event(event: dict[str, Any]) -> AudioEvent | None:
    """The audio meaning of a server event; None when it has none or no id to file it under."""
    kind = event.get("type")
    if kind == "response.done":
        response = event.get("response")
        key = response.get("id") if isinstance(response, dict) else None
    else:
        key = event.get("response_id") or event.get("item_id")
    if kind not in AUDIO_EVENT_TYPES or not isinstance(key, str) or not key:
        return None
    return AudioEvent(key, kind != AUDIO_DELTA, event.get("delta") if kind == AUDIO_DELTA else None)


class DeltaAssembler:
    """Base64 deltas of one response -> whole PCM16 samples; a sample split across deltas is kept whole (§6)."""

    def __init__(self) -> None:
        self._leftover = b""
        # A skipped delta of odd length leaves the first byte of the next one belonging to a lost sample.
        self._skip_byte = False

    def feed(self, delta: Any) -> bytes | None:
        """Whole samples completed by this delta (maybe b""); None when it is not base64 (skipped, never silence)."""
        try:
            if not isinstance(delta, str):
                raise ValueError("not a string")
            data = base64.b64decode(delta, validate=True)
        except (ValueError, binascii.Error):
            # Keep the sample grid: assume the lost delta's length from its text (exact when only a character is
            # bad), so the next delta's samples are not read a byte off, which would be loud noise.
            lost = len(delta.rstrip("=")) * 3 // 4 if isinstance(delta, str) else 0
            self._skip_byte = (len(self._leftover) + lost + self._skip_byte) % 2 == 1
            self._leftover = b""
            return None
        if self._skip_byte and data:
            data, self._skip_byte = data[1:], False
        data = self._leftover + data
        cut = len(data) - len(data) % 2
        self._leftover = data[cut:]
        return data[:cut]


@dataclass
class _Utterance:
    key: str
    pending: bytearray = field(default_factory=bytearray)
    done: bool = False
    started: bool = False
    played: bool = False
    last_delta_at: float = 0.0
    assembler: DeltaAssembler = field(default_factory=DeltaAssembler)


@dataclass
class PlayoutStats:
    """Running totals of one track, for the metrics and /status."""

    played_s: float = 0.0
    utterances_played: int = 0
    utterances_dropped: int = 0
    underruns: int = 0
    bad_deltas: int = 0
    late_events: int = 0


class PlayoutQueue:
    """Utterances in the order their audio began, each played whole before the next; a bounded backlog.

    An utterance starts once `prebuffer_s` of it is buffered (or it is complete), so audio that arrives at
    the pace it plays does not run dry mid-word. When more than `max_buffer_s` waits, whole utterances are
    dropped, oldest first: never the one playing and never the newest, so what is heard is never cut.
    """

    def __init__(self, max_buffer_s: float, prebuffer_s: float, stale_s: float = STALE_S) -> None:
        self.max_bytes = int(max_buffer_s * BYTES_PER_S)
        self.prebuffer_bytes = int(prebuffer_s * BYTES_PER_S) // 2 * 2
        self.stale_s = stale_s
        self.stats = PlayoutStats()
        self._queue: deque[_Utterance] = deque()
        self._by_key: dict[str, _Utterance] = {}
        self._gone: OrderedDict[str, None] = OrderedDict()

    # ---- in (event loop) ------------------------------------------------------------------------
    def feed(self, event: AudioEvent, now: float) -> list[str]:
        """Take one audio event; returns the keys of utterances dropped to keep the buffer bounded."""
        if event.key in self._gone:
            self.stats.late_events += not event.done
            return []
        u = self._by_key.get(event.key)
        if event.done:
            if u is not None:
                u.done = True
            return []
        if u is None:
            u = self._by_key[event.key] = _Utterance(event.key, last_delta_at=now)
            self._queue.append(u)
        pcm = u.assembler.feed(event.delta)
        if pcm is None:
            self.stats.bad_deltas += 1
            return []
        u.last_delta_at = now
        u.pending += pcm
        return self._bound()

    def _bound(self) -> list[str]:
        dropped: list[str] = []
        while self.buffered_bytes > self.max_bytes:
            first = 1 if self._queue and self._queue[0].started else 0
            if len(self._queue) - first < 2:  # only the playing and the newest are left
                break
            victim = self._queue[first]
            del self._queue[first]
            self._forget(victim)
            self.stats.utterances_dropped += 1
            dropped.append(victim.key)
        return dropped

    def drop_all(self) -> int:
        """Forget everything queued (the one playing too); returns how many utterances were dropped."""
        n = len(self._queue)
        while self._queue:
            self._forget(self._queue.popleft())
        self.stats.utterances_dropped += n
        return n

    # ---- out (audio thread) ---------------------------------------------------------------------
    def pull(self, samples: int, now: float) -> bytes:
        """Exactly `samples` PCM16 samples: utterance audio, or silence when nothing is ready."""
        out = bytearray()
        need = samples * 2
        while need:
            if not self._queue:
                break
            head = self._queue[0]
            stale = not head.done and now - head.last_delta_at >= self.stale_s
            if stale:
                head.done = True
            if not head.started:
                if not head.done and len(head.pending) < self.prebuffer_bytes:
                    break  # between utterances, or refilling after running dry: silence
                head.started = True
            if head.pending:
                take = head.pending[:need]
                del head.pending[:need]
                out += take
                need -= len(take)
                head.played = True
                self.stats.played_s += len(take) / BYTES_PER_S
                continue
            if head.done:
                self._queue.popleft()
                self._forget(head)
                self.stats.utterances_played += head.played
                continue
            # Ran dry mid-utterance: the service is behind. Wait for a prebuffer again rather than stutter.
            self.stats.underruns += 1
            head.started = False
            break
        out += bytes(need)
        return bytes(out)

    # ---- state ----------------------------------------------------------------------------------
    @property
    def buffered_bytes(self) -> int:
        return sum(len(u.pending) for u in self._queue)

    @property
    def buffered_s(self) -> float:
        return self.buffered_bytes / BYTES_PER_S

    @property
    def playing(self) -> bool:
        return bool(self._queue) and self._queue[0].started

    @property
    def queued(self) -> int:
        """Utterances waiting or playing."""
        return len(self._queue)

    def _forget(self, u: _Utterance) -> None:
        self._by_key.pop(u.key, None)
        self._gone[u.key] = None
        while len(self._gone) > _REMEMBERED:
            self._gone.popitem(last=False)
