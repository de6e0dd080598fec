"""Pure cost accounting: billed tokens by kind, an estimated bill from configured prices, stream and day budgets."""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KINDS = ("audio_in", "text_in", "image_in", "text_out", "audio_out")
_MAX_TOKENS = 10**12


@dataclass(frozen=True)
class Tokens:
    """Tokens by what they bill as (translator-protocol.md §8)."""

    audio_in: int = 0
    text_in: int = 0
    image_in: int = 0
    text_out: int = 0
    audio_out: int = 0

    @property
    def total(self) -> int:
        return sum(_values(self))

    def as_dict(self) -> dict[str, int]:
        return dict(zip(KINDS, _values(self), strict=True))


# Tokens' fields are KINDS, in that order (a test checks): read in one C call, every usage report of every target.
_KIND_VALUES = operator.attrgetter(*KINDS)


def _values(t: Tokens) -> tuple[int, ...]:
    values: tuple[int, ...] = _KIND_VALUES(t)
    return values


def token_count(value: Any) -> int:
    """A token count; anything else (negative, absurd, not an int) counts as 0."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_TOKENS
    return value if ok else 0


def tokens_from_usage(usage: dict[str, Any]) -> Tokens:
    """One `response.done` usage by kind; what the details leave out of a total is audio in / text out.

    The documented details are text and audio only (§8): image tokens appear in `input_tokens` alone, so an
    input total above text + audio is images when audio is detailed, and audio when it is not.
    """
    total_in, total_out = token_count(usage.get("input_tokens")), token_count(usage.get("output_tokens"))
    d_in, d_out = _details(usage, "input_tokens_details"), _details(usage, "output_tokens_details")
    text_in = token_count(d_in.get("text_tokens"))
    if "audio_tokens" in d_in:
        audio_in = token_count(d_in.get("audio_tokens"))
        image_in = (
            token_count(d_in.get("image_tokens")) if "image_tokens" in d_in else max(0, total_in - text_in - audio_in)
        )
    else:
        image_in = token_count(d_in.get("image_tokens"))
        audio_in = max(0, total_in - text_in - image_in)
    audio_out = token_count(d_out.get("audio_tokens"))
    text_out = token_count(d_out.get("text_tokens")) if "text_tokens" in d_out else max(0, total_out - audio_out)
    return Tokens(audio_in, text_in, image_in, text_out, audio_out)


def _details(usage: dict[str, Any], key: str) -> dict[str, Any]:
    value = usage.get(key)
    return value if isinstance(value, dict) else {}


class UsageMode:
    """How a session reports usage: the docs do not say; one client observed cumulative figures (§8)."""

    UNKNOWN = "unknown"  # not decided yet (billed as cumulative, corrected when it turns out otherwise)
    CUMULATIVE = "cumulative"
    PER_RESPONSE = "per_response"


# The two readings must predict input figures at least this far apart before the audio sent decides between them.
_DECISIVE_RATIO = 2.0


class UsageMeter:
    """Billed tokens of one session from its `response.done` usage, whether the figures are cumulative or not.

    A cumulative counter never falls and always includes the previous value, so one figure that falls proves the
    reports are per response. Until then the audio sent says which: a cumulative input figure grows with all the
    audio of the session, a per-response one with the audio since the previous response. What was billed follows
    the reading: cumulative bills the highest figures seen, per response their sum, and a change of reading
    bills the difference, so nothing is lost or counted twice while the meter was unsure.
    """

    def __init__(self) -> None:
        self.mode = UsageMode.UNKNOWN
        self._reports = 0
        self._last: tuple[int, ...] = ()
        self._max: tuple[int, ...] = (0,) * (len(KINDS) + 2)
        self._sum: tuple[int, ...] = self._max
        self._billed: tuple[int, ...] = self._max
        self._audio_at_last = 0.0

    @property
    def input_tokens(self) -> int:
        """Input tokens billed on this session so far: what fills its context window."""
        return self._billed[len(KINDS)]

    def report(self, usage: dict[str, Any], audio_tokens_sent: float | None = None) -> tuple[int, int, Tokens]:
        """One usage object -> (input, output, tokens by kind) newly billed; `audio_tokens_sent`: the estimate
        of the audio tokens sent on the session so far, when the caller knows it."""
        tokens = tokens_from_usage(usage)
        totals = (token_count(usage.get("input_tokens")), token_count(usage.get("output_tokens")))
        now = (*_values(tokens), *totals)
        self._reports += 1
        if self._reports > 1 and self.mode != UsageMode.PER_RESPONSE:
            if any(a < b for a, b in zip(now, self._last, strict=True)):
                self.mode = UsageMode.PER_RESPONSE
            elif self.mode == UsageMode.UNKNOWN and audio_tokens_sent is not None:
                self.mode = _reading(tokens.audio_in, audio_tokens_sent, audio_tokens_sent - self._audio_at_last)
        self._audio_at_last = audio_tokens_sent or 0.0
        self._last = now
        self._max = tuple(max(a, b) for a, b in zip(self._max, now, strict=True))
        self._sum = tuple(a + b for a, b in zip(self._sum, now, strict=True))
        target = self._sum if self.mode == UsageMode.PER_RESPONSE else self._max
        delta = tuple(max(0, t - b) for t, b in zip(target, self._billed, strict=True))
        self._billed = tuple(a + b for a, b in zip(self._billed, delta, strict=True))
        return delta[len(KINDS)], delta[len(KINDS) + 1], Tokens(*delta[: len(KINDS)])


def _reading(reported: int, since_start: float, since_last: float) -> str:
    """Which reading the audio-in figure fits: all audio of the session, or the audio since the last response."""
    if reported <= 0 or since_last <= 0 or since_start < _DECISIVE_RATIO * since_last:
        return UsageMode.UNKNOWN
    off_cumulative = abs(math.log(reported / since_start))
    off_per_response = abs(math.log(reported / since_last))
    return UsageMode.CUMULATIVE if off_cumulative < off_per_response else UsageMode.PER_RESPONSE


def estimate(tokens: Tokens, prices_per_million: dict[str, float]) -> float:
    """The estimated price of `tokens`; prices are per million tokens of each kind."""
    return sum(n * prices_per_million.get(kind, 0.0) for kind, n in tokens.as_dict().items()) / 1e6


class Budget:
    """Spend per stream and per local day against optional limits; reaching one pauses until the next period.

    "Resume on request" lifts the pause for the rest of that period only.
    """

    def __init__(
        self, per_stream: float = 0.0, per_day: float = 0.0, today: Callable[[], dt.date] = dt.date.today
    ) -> None:
        self.per_stream = per_stream
        self.per_day = per_day
        self._today = today
        self.day = today()
        self.day_spent = 0.0
        self.stream_spent = 0.0
        self.total_spent = 0.0
        self._stream_no = 0
        self._resumed: set[tuple[str, object]] = set()

    def spend(self, amount: float) -> None:
        self._roll()
        self.day_spent += amount
        self.stream_spent += amount
        self.total_spent += amount

    def new_stream(self) -> None:
        """OBS started a new stream: the per-stream budget starts again."""
        self._stream_no += 1
        self.stream_spent = 0.0

    def reached(self) -> str | None:
        """ "stream" or "day" when that budget is used up (and not resumed); None while captioning may go on."""
        self._roll()
        if self.per_day and self.day_spent >= self.per_day and ("day", self.day) not in self._resumed:
            return "day"
        if (
            self.per_stream
            and self.stream_spent >= self.per_stream
            and ("stream", self._stream_no) not in self._resumed
        ):
            return "stream"
        return None

    def resume(self) -> None:
        """The operator chose to go on: ignore the budgets that are reached, until their period ends."""
        self._resumed |= {("day", self.day), ("stream", self._stream_no)}

    def restore_day(self, day: dt.date, spent: float) -> None:
        """Spend recorded earlier today (by a previous run) still counts against today's budget."""
        if day == self._today():
            self.day, self.day_spent = day, self.day_spent + spent

    def _roll(self) -> None:
        today = self._today()
        if today != self.day:
            self.day, self.day_spent = today, 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "per_stream": self.per_stream or None,
            "per_day": self.per_day or None,
            "stream_spent": round(self.stream_spent, 6),
            "day_spent": round(self.day_spent, 6),
            "total_spent": round(self.total_spent, 6),
            "reached": self.reached(),
        }
