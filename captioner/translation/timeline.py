"""Pure: when the audio a connection sent was spoken, so a caption knows when its words began (not when it came).

The service counts time in the audio it received (`audio_start_ms`, from the first byte appended on the connection);
the gate sends only the audio around speech, so that count is not the wall clock. Each chunk sent is recorded with
its place in that count and the wall-clock time it was captured, and the service's times map back through them.
"""

from __future__ import annotations

import bisect
from collections import deque

# Chunks remembered: 10 minutes of 100 ms chunks. Older speech has long been captioned.
_KEPT_CHUNKS = 6000


class SpokenTimeline:
    """One connection's sent audio: offset in the service's count -> when it was captured (time.time())."""

    def __init__(self) -> None:
        # Where each chunk starts in the service's count, in µs: whole numbers, so chunk edges compare exactly.
        self._offsets: deque[int] = deque(maxlen=_KEPT_CHUNKS)
        self._starts: deque[float] = deque(maxlen=_KEPT_CHUNKS)  # when each chunk's first sample was captured
        self._sent_us = 0
        # The first speech-like chunk since the service last finished an utterance: the start of the one in flight
        # for a model that reports no speech events (qwen3).
        self._unanswered_speech_at: float | None = None
        self._heard_at: float | None = None  # from the last `speech_started`, when the model reports one

    def sent(self, captured_end: float, seconds: float, speech: bool) -> None:
        """A chunk went out: `captured_end` is the wall-clock time its last sample was captured."""
        start = captured_end - seconds
        self._offsets.append(self._sent_us)
        self._starts.append(start)
        self._sent_us += round(seconds * 1e6)
        if speech and self._unanswered_speech_at is None:
            self._unanswered_speech_at = start

    def at(self, offset_s: float) -> float | None:
        """When the audio at `offset_s` of the service's count was captured; None if it is not remembered."""
        offset_us = round(offset_s * 1e6)
        i = bisect.bisect_right(self._offsets, offset_us) - 1
        if i < 0 or offset_us > self._sent_us:
            return None
        return self._starts[i] + (offset_us - self._offsets[i]) / 1e6

    def speech_started(self, audio_start_ms: object) -> None:
        """The model's VAD heard speech begin at `audio_start_ms` (qwen3.5 `speech_started`)."""
        if isinstance(audio_start_ms, int | float) and not isinstance(audio_start_ms, bool) and audio_start_ms >= 0:
            self._heard_at = self.at(audio_start_ms / 1000)

    def utterance_start(self) -> float | None:
        """When the utterance now being captioned began: the model's word if it gave one, else the first speech
        sent since the last utterance finished."""
        return self._heard_at if self._heard_at is not None else self._unanswered_speech_at

    def finished(self) -> None:
        """The service finished an utterance (`response.done`): the next one starts with the next speech."""
        self._heard_at = None
        self._unanswered_speech_at = None
