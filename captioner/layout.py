"""Pure caption layout: display width, CJK-aware line wrapping with kinsoku, and the timed screen of one text source."""

from __future__ import annotations

import functools
import unicodedata
from collections import deque
from dataclasses import dataclass
from enum import Enum
from itertools import accumulate

# Kinsoku shori: characters that may not begin a line (closing punctuation, small kana, iteration and prolonged
# sound marks) and characters that may not end one (opening brackets).
_NO_LINE_START = frozenset(
    "、。，．・：；？！ゝゞヽヾ々〻ー）」』】〕〉》〙〗｝］〟”’"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ"
    "｡､｣"
    ")]},.!?:;%"
)
_NO_LINE_END = frozenset("（「『【〔〈《〘〖｛［〝“‘｢([{")
# How many break opportunities a kinsoku fix may move a break back before giving up and breaking anyway.
_KINSOKU_PULL_BACK = 3
_ZERO_WIDTH_JOINER = "\u200d"
# Hangul is East Asian Wide but, unlike Chinese and Japanese, separates words with spaces: it must not break anywhere.
_HANGUL_RANGES = (
    (0x1100, 0x11FF),
    (0x3130, 0x318F),
    (0xA960, 0xA97F),
    (0xAC00, 0xD7FF),
)


# Asked for every character of every caption laid out (several times while wrapping), and captions reuse few
# distinct characters: cached, laying out 8 languages' finals of one moment takes half the time (#21).
@functools.lru_cache(maxsize=8192)
def char_width(ch: str) -> int:
    """Display columns of one character: 0 for combining and zero-width marks, 2 for East Asian wide, else 1."""
    if len(ch) != 1:
        raise ValueError(f"char_width takes exactly one character, got {len(ch)}")
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    return 1


def display_width(text: str) -> int:
    """Display columns of a string, CJK wide characters counting 2."""
    return sum(char_width(ch) for ch in text)


class _Kind(Enum):
    SPACE = "space"
    # A Chinese/Japanese character (or other wide symbol): a line may break before or after it.
    IDEOGRAPHIC = "ideographic"
    # Part of a space-separated word: no break inside unless the word is wider than the line.
    WORD = "word"


def _is_hangul(ch: str) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in _HANGUL_RANGES)


@functools.lru_cache(maxsize=8192)
def _base_kind(base: str) -> _Kind:
    if base == " ":
        return _Kind.SPACE
    if char_width(base) == 2 and not _is_hangul(base):
        return _Kind.IDEOGRAPHIC
    return _Kind.WORD


def _clusters(text: str) -> list[str]:
    """Split into characters that must stay together: a base with its zero-width marks, joined emoji sequences."""
    clusters: list[str] = []
    for ch in text:
        joined = clusters and clusters[-1].endswith(_ZERO_WIDTH_JOINER) and unicodedata.category(ch) == "So"
        if clusters and clusters[-1] != " " and (char_width(ch) == 0 or joined):
            clusters[-1] += ch
        else:
            clusters.append(ch)
    return clusters


def wrap(text: str, width: int) -> list[str]:
    """Break text into lines of at most `width` display columns, at spaces or between CJK characters, with kinsoku."""
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    collapsed = " ".join(text.split())
    if not collapsed:
        return []
    # Per distinct character, not per character: a caption reuses few (#21: eight finals of one moment are laid
    # out one after another before OBS gets any of them).
    chars = set(collapsed)
    widths = {ch: char_width(ch) for ch in chars}
    kind_of = {ch: _base_kind(ch) for ch in chars}
    # Without a zero-width character nothing joins: every character is a cluster of its own.
    clusters = _clusters(collapsed) if 0 in widths.values() else list(collapsed)
    count = len(clusters)
    kinds = [kind_of[cluster[0]] for cluster in clusters]
    # offset[i] is the width of clusters[:i]; a line clusters[a:b] is offset[b] - offset[a] wide.
    cluster_widths = (widths[c] if len(c) == 1 else display_width(c) for c in clusters)
    offset = list(accumulate(cluster_widths, initial=0))

    # Break opportunities as (end of this line, start of the next): a space is dropped, a CJK break drops nothing.
    space, ideographic = _Kind.SPACE, _Kind.IDEOGRAPHIC  # locals: an enum member read off its class is slow
    breaks: list[tuple[int, int]] = []
    for i in range(1, count):
        kind, before = kinds[i], kinds[i - 1]
        if kind is space:
            breaks.append((i, i + 1))
        elif before is not space and (before is ideographic or kind is ideographic):
            breaks.append((i, i))

    def allowed(end: int, next_start: int) -> bool:
        return clusters[end - 1][0] not in _NO_LINE_END and (
            next_start >= count or clusters[next_start][0] not in _NO_LINE_START
        )

    lines: list[str] = []
    start = 0
    first_break = 0
    while start < count:
        if offset[count] - offset[start] <= width:
            lines.append("".join(clusters[start:]))
            break
        while first_break < len(breaks) and breaks[first_break][0] <= start:
            first_break += 1
        last_fit = first_break
        while last_fit < len(breaks) and offset[breaks[last_fit][0]] - offset[start] <= width:
            last_fit += 1
        fitting = breaks[first_break:last_fit]
        if fitting:
            candidates = fitting[: -_KINSOKU_PULL_BACK - 2 : -1]
        else:
            # One word (or one character) is wider than the line: split it where the width runs out.
            split = start + 1
            while split < count and offset[split + 1] - offset[start] <= width:
                split += 1
            # A split right before a space (one too-wide character) drops the space like any space break.
            candidates = [
                (end, end + 1 if end < count and kinds[end] is space else end)
                for end in range(split, max(start, split - _KINSOKU_PULL_BACK - 1), -1)
            ]
        end, next_start = next((c for c in candidates if allowed(*c)), candidates[0])
        lines.append("".join(clusters[start:end]))
        start = next_start
    return lines


@dataclass(frozen=True)
class LayoutSettings:
    """How captions are laid out on one text source."""

    # Display columns per line; CJK wide characters count 2 (so 21 Japanese characters).
    max_width: int = 42
    # Lines on screen at once.
    max_lines: int = 2
    # True: newest line at the bottom, older lines scroll off the top one by one; False: pages replace each other.
    rolling: bool = True
    # Seconds a line stays on screen at least before it may scroll off, be replaced or be cleared.
    min_display_s: float = 1.0
    # Seconds without new caption input after which the screen is cleared; 0 = never.
    clear_after_s: float = 6.0

    def __post_init__(self) -> None:
        if self.max_width < 1:
            raise ValueError(f"max_width must be at least 1, got {self.max_width}")
        if self.max_lines < 1:
            raise ValueError(f"max_lines must be at least 1, got {self.max_lines}")
        if self.min_display_s < 0:
            raise ValueError(f"min_display_s must not be negative, got {self.min_display_s}")
        if self.clear_after_s < 0:
            raise ValueError(f"clear_after_s must not be negative, got {self.clear_after_s}")


class CaptionScreen:
    """What one text source shows over time: finals queued line by line (or page by page), the partial, clearing.

    Every state change happens at an exact instant computed from the inputs, never at the moment render() is
    called, so the output does not depend on how often the caller renders.
    """

    def __init__(self, settings: LayoutSettings) -> None:
        self._settings = settings
        # (line, time it became visible); the deque's bound is the scroll-off in rolling mode.
        self._visible: deque[tuple[str, float]] = deque(maxlen=settings.max_lines)
        # Units waiting to be shown: one line each when rolling, one page each when paged.
        self._queue: deque[tuple[str, ...]] = deque()
        # Only the partial's last max_lines lines can ever be shown, so only those are kept.
        self._partial: tuple[str, ...] = ()
        self._last_input = float("-inf")
        self._clock = float("-inf")

    def final(self, text: str, now: float) -> None:
        """Queue a finished caption's lines for display; it replaces the current partial."""
        self._advance(now)
        now = self._clock
        self._partial = ()
        self._last_input = now
        settings = self._settings
        lines = wrap(text, settings.max_width)
        units: list[tuple[str, ...]]
        if settings.rolling:
            units = [(line,) for line in lines]
            limit = 2 * settings.max_lines
        else:
            units = [tuple(lines[i : i + settings.max_lines]) for i in range(0, len(lines), settings.max_lines)]
            limit = 2
        for unit in units:
            self._queue.append(unit)
            # Latency bound: rather than fall ever further behind speech, scroll the excess through at once.
            while len(self._queue) > limit:
                self._show(self._queue.popleft(), now)
        self._advance(now)

    def partial(self, text: str, now: float) -> None:
        """Set the growing, not yet final caption, replacing the previous one; "" removes it."""
        self._advance(now)
        self._partial = tuple(wrap(text, self._settings.max_width)[-self._settings.max_lines :])
        self._last_input = self._clock

    def clear(self, now: float) -> None:
        """Drop everything: visible lines, queued lines and the partial."""
        self._advance(now)
        self._visible.clear()
        self._queue.clear()
        self._partial = ()

    def settle(self, now: float) -> None:
        """Show every queued line at once (the daemon is stopping: the last words must be what stays up)."""
        self._advance(now)
        while self._queue:
            self._show(self._queue.popleft(), self._clock)

    def render(self, now: float) -> str:
        """Advance to `now` and return the lines on screen joined by newlines ("" when empty)."""
        self._advance(now)
        return "\n".join(self._view(self._clock))

    def next_change(self, now: float) -> float | None:
        """The earliest time after `now` at which render() changes without new input; None if it never does."""
        self._advance(now)
        current = self._view(self._clock)
        probe = self._copy()
        t = self._clock
        while True:
            candidates = [probe._next_event()]
            if probe._partial:
                # A visible line coming of age may let the partial push it off.
                candidates += [since + self._settings.min_display_s for _, since in probe._visible]
            upcoming = [c for c in candidates if c is not None and c > t]
            if not upcoming:
                return None
            t = min(upcoming)
            probe._advance(t)
            if probe._view(t) != current:
                return t

    def _copy(self) -> CaptionScreen:
        other = CaptionScreen(self._settings)
        other._visible.extend(self._visible)
        other._queue.extend(self._queue)
        other._partial = self._partial
        other._last_input = self._last_input
        other._clock = self._clock
        return other

    def _aged(self, since: float, now: float) -> bool:
        # Compared as a sum, the same expression next_change() returns, so the two agree to the last bit.
        return since + self._settings.min_display_s <= now

    def _has_room(self) -> bool:
        if self._settings.rolling:
            return len(self._visible) < self._settings.max_lines
        return not self._visible

    def _next_event(self) -> float | None:
        """When the state next changes by itself: the queue's head is shown, or the screen is cleared."""
        settings = self._settings
        if self._queue:
            if self._has_room():
                return self._clock
            return max(self._visible[0][1] + settings.min_display_s, self._clock)
        if settings.clear_after_s > 0 and (self._visible or self._partial):
            # A partial whose final never came (a dropped session, an item the service abandoned) is cleared
            # like a final: after clear_after_s without any new input, not left on screen for good.
            newest = self._visible[-1][1] + settings.min_display_s if self._visible else self._clock
            return max(self._last_input + settings.clear_after_s, newest, self._clock)
        return None

    def _advance(self, now: float) -> None:
        """Apply every event due at or before `now`, each at its own instant."""
        while (due := self._next_event()) is not None and due <= now:
            self._clock = due
            if self._queue:
                self._show(self._queue.popleft(), due)
            else:
                self._visible.clear()
                self._partial = ()
        # A clock that goes backwards is ignored rather than allowed to undo or reorder events.
        self._clock = max(self._clock, now)

    def _show(self, unit: tuple[str, ...], now: float) -> None:
        if not self._settings.rolling:
            self._visible.clear()
        self._visible.extend((line, now) for line in unit)
        self._last_input = max(self._last_input, now)

    def _view(self, now: float) -> list[str]:
        visible = [line for line, _ in self._visible]
        if not self._partial or self._queue:
            return visible
        if not self._settings.rolling:
            if not self._visible or self._aged(self._visible[0][1], now):
                return list(self._partial)
            return visible
        excess = len(visible) + len(self._partial) - self._settings.max_lines
        dropped = 0
        while dropped < excess and self._aged(self._visible[dropped][1], now):
            dropped += 1
        kept = visible[dropped:]
        room = self._settings.max_lines - len(kept)
        return kept + list(self._partial[max(0, len(self._partial) - room) :]) if room > 0 else kept
