"""Pure CEA-608 layout for OBS native stream captions: 608-safe text, 32-column pages, a send pacer."""

from __future__ import annotations

import re
import unicodedata
from collections import deque

#: Columns of a 608 caption row; libcaption (inside OBS) wraps at this width.
COLUMNS = 32
#: OBS truncates each SendStreamCaption text to this many UTF-8 bytes (not characters).
MAX_BYTES = 128
# A 608 screen has 15 rows; libcaption writes nothing below the last one.
_SCREEN_ROWS = 15

# Every character that libcaption (eia608_from_utf8) encodes, as what to_608 may emit: printable ASCII except
# "'" and "`", then the basic, special and extended Western European sets. The 608 apostrophe is the basic-set
# 0x27, which libcaption reads from "’"; it sends ASCII "'" as an extended-set quote instead, which a decoder
# without the extended set shows as a space and FFmpeg shows as "‘" (seen in the real round trip). So every
# apostrophe becomes "’", at 3 of the 128 bytes. The other curly quotes, the em dash and the no-break space
# are 608 characters too, but _REPLACEMENTS maps them to ASCII, which reads the same and costs 1 byte.
_CHARSET = frozenset(
    "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "'`")
    + "’áéíóúç÷Ññ█"  # basic set positions that ASCII gives up
    + "®°½¿™¢£♪àèâêîôû"  # special North American
    + "ÁÉÓÚÜü¡©℠•"  # extended Spanish/miscellaneous
    + "ÀÂÇÈÊËëÎÏïÔÙùÛ«»"  # extended French
    + "ÃãÍÌìÒòÕõ"  # Portuguese
    + "ÄäÖößÅåØø¥¤¦┌┐└┘"  # German/Danish
)

# Typographic characters and letters outside 608 that have a conventional plain spelling.
_REPLACEMENTS: dict[str, str] = {
    **dict.fromkeys("'‘‚‛′ʼ´`‹›", "’"),
    **dict.fromkeys("“”„‟″", '"'),
    **dict.fromkeys("‐‑‒–—―−", "-"),
    "…": "...",
    "·": ".",  # Catalan l·l is written l.l where the middle dot is missing
    "€": "EUR",
    "×": "x",
    "æ": "ae",  # Danish/Norwegian accept "ae" when æ is unavailable; 608 has å and ø but no æ
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "ẞ": "SS",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "þ": "th",
    "Þ": "TH",
    "ı": "i",
    "ħ": "h",
    "Ħ": "H",
}
_CAPITAL_LIGATURE = re.compile("[ÆŒÞ]")

# Qwen livetranslate target codes (translation/protocol.py) whose alphabet 608 carries. Included: every letter of the
# language is in the basic + special + extended Spanish/French/Portuguese + German/Danish sets (en es fr de it
# pt nl sv fi id ms fil ca gl af ast ceb jv sw et), or the missing ones have a conventional plain spelling that
# _REPLACEMENTS applies (French œ->oe, Danish/Norwegian æ->ae, Catalan l·l->l.l); Finnish/Estonian š ž occur
# only in loanwords and lose their caron. Left out: letters 608 lacks and that have no accepted substitute
# (Icelandic þ ð, Turkish/Azerbaijani ğ ş ı ə, Polish/Czech/Slovak/Croatian/Slovenian/Bosnian/Hungarian/
# Romanian/Latvian č ć ł ő ș ...; Vietnamese), and every non-Latin script (CJK, Cyrillic, Greek, Arabic,
# Hebrew, Indic, Thai ...), whose characters OBS would drop entirely.
LANGUAGES: frozenset[str] = frozenset("en es fr de it pt nl sv da nb fi id ms fil ca gl af ast ceb jv sw et".split())


def supports(language: str) -> bool:
    """True if CEA-608 can show captions in this language code (a region suffix such as pt-BR is ignored)."""
    primary = language.strip().lower().replace("_", "-").split("-", 1)[0]
    return primary in LANGUAGES


def _strip_marks(ch: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))


def _map_char(ch: str) -> str:
    replacement = _REPLACEMENTS.get(ch)
    if replacement is not None:
        return replacement
    if ch in _CHARSET:
        return ch
    if ch.isspace():
        return " "
    # Last resorts before dropping: a compatibility form (ﬁ -> fi, fullwidth Ａ -> A), then the letter without its
    # accent (ő -> o, š -> s): a near spelling reads better than the hole OBS would leave.
    for candidate in (unicodedata.normalize("NFKC", ch), _strip_marks(ch)):
        if candidate != ch and all(c in _CHARSET for c in candidate):
            return candidate
    return ""


def _spell_capital_ligature(match: re.Match[str]) -> str:
    spelled = _REPLACEMENTS[match.group()]
    following = match.string[match.end() : match.end() + 1]
    return spelled.title() if following.islower() else spelled  # Æble -> Aeble, ÆBLE -> AEBLE


def to_608(text: str) -> str:
    """Text that OBS can send as 608 unchanged: NFC, typography made plain, unshowable characters dropped, one space."""
    text = _CAPITAL_LIGATURE.sub(_spell_capital_ligature, unicodedata.normalize("NFC", text))
    return " ".join("".join(_map_char(ch) for ch in text).split())


def _wrap(text: str, columns: int) -> list[str]:
    """Greedy word wrap; like libcaption, a word longer than a row starts a new row and is cut every `columns`."""
    rows: list[str] = []
    line = ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) <= columns:
            line = f"{line} {word}"
            continue
        if line:
            rows.append(line)
        while len(word) > columns:
            rows.append(word[:columns])
            word = word[columns:]
        line = word
    if line:
        rows.append(line)
    return rows


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def pages(text: str, rows: int = 2, columns: int = COLUMNS) -> list[str]:
    """Split text into pop-on captions of at most `rows` rows of `columns` characters and MAX_BYTES bytes each.

    Rows are joined by "\\n", which makes libcaption start a new row, so the layout on screen is exactly this one.
    """
    if not 1 <= columns <= COLUMNS:
        raise ValueError(f"columns must be 1..{COLUMNS}, got {columns}")
    if not 1 <= rows <= _SCREEN_ROWS:
        raise ValueError(f"rows must be 1..{_SCREEN_ROWS}, got {rows}")
    clean = to_608(text)
    if not clean:
        return []
    out: list[str] = []
    page: list[str] = []
    for row in _wrap(clean, columns):
        # A row alone always fits: 32 characters of at most 3 bytes each.
        if page and (len(page) == rows or _utf8_len("\n".join([*page, row])) > MAX_BYTES):
            out.append("\n".join(page))
            page = []
        page.append(row)
    out.append("\n".join(page))
    return out


class CaptionPacer:
    """Releases queued caption pages at most one per interval, skipping the oldest when a burst piles up.

    OBS queues every SendStreamCaption and shows one per video frame, so a burst would delay later captions
    instead of being dropped; and a page replaced after a few frames cannot be read anyway.
    """

    def __init__(self, min_interval_s: float = 1.0, max_backlog: int = 4) -> None:
        if min_interval_s < 0:
            raise ValueError(f"min_interval_s must be >= 0, got {min_interval_s}")
        if max_backlog < 1:
            raise ValueError(f"max_backlog must be >= 1, got {max_backlog}")
        self.min_interval_s = min_interval_s
        self.max_backlog = max_backlog
        #: Pages dropped unsent because the backlog was full (for a metric).
        self.skipped = 0
        self._queue: deque[str] = deque()
        self._last_sent: float | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, pages: list[str]) -> None:
        """Queue the pages of one caption; beyond max_backlog the oldest queued pages are skipped."""
        self._queue.extend(pages)
        while len(self._queue) > self.max_backlog:
            self._queue.popleft()
            self.skipped += 1

    def next_due(self, now: float) -> float | None:
        """When due() will next return a page (now or later), or None if nothing is queued."""
        if not self._queue:
            return None
        if self._last_sent is None:
            return now
        return max(now, self._last_sent + self.min_interval_s)

    def due(self, now: float) -> str | None:
        """The page to send now, or None if nothing is queued or the last one went out too recently."""
        when = self.next_due(now)
        if when is None or when > now:
            return None
        self._last_sent = now
        return self._queue.popleft()

    def clear(self) -> None:
        """Forget queued pages (not counted as skipped); the interval since the last sent page still holds."""
        self._queue.clear()


#: Broadcast captions mark a change of speaker with ">>" at the start of the new speaker's caption.
SPEAKER_CHANGE = ">> "


class SpeakerChanges:
    """Marks each caption whose speaker differs from the previous caption's with SPEAKER_CHANGE."""

    def __init__(self) -> None:
        self._last = ""

    def mark(self, speaker: str, text: str) -> str:
        """`text`, with ">> " before it when `speaker` is known and not the one of the caption before."""
        if not text.strip():
            return text  # shows nothing: the next caption is the one that shows the change
        # After a caption by an unknown speaker ("") anyone may be speaking: the next known one is marked again.
        changed = bool(speaker) and speaker != self._last
        self._last = speaker
        return SPEAKER_CHANGE + text if changed else text
