"""YouTube Live closed captions over HTTP POST (Google's "Closed Captions over HTTP for YouTube Live Streams").

Each POST carries finals as lines `YYYY-MM-DDTHH:MM:SS.mmm` (UTC) and the text (`<br>` for a line break), as
`text/plain`, to the ingestion URL with `&seq=N`. The stamp is when the words were spoken, so YouTube places the
caption on the video where they are heard; the server answers with its own time, which shows this clock's skew.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from ..config import YoutubeOutputConfig
from ..speakers import label
from ..status import Status
from .posting import Post, PostingOutput, Request, utc_ms

log = logging.getLogger(__name__)
# Finals per POST when several wait (after an outage); the spec's example carries several.
MAX_BATCH = 10
# Past this, /status warns: captions would show this much early or late on the video.
SKEW_WARN_S = 1.0
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SERVER_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)")


def caption_body(lines: list[tuple[float, str]]) -> str:
    """The POST body: for each (stamp time, text) a stamp line and a text line with `<br>` for its line breaks."""
    return "".join(f"{utc_ms(t)}\n{_LINE_BREAK.sub('<br>', text.strip())}\n" for t, text in lines)


def with_seq(url: str, seq: int) -> str:
    """The ingestion URL with `seq` added, the rest exactly as given."""
    return f"{url}{'&' if '?' in url else '?'}seq={seq}"


def server_time(text: str) -> float | None:
    """The time in the server's answer (UTC, as time.time()), or None when it carries none."""
    m = _SERVER_TIME.search(text)
    if m is None:
        return None
    try:
        return datetime.fromisoformat(m.group(1)).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


class YoutubeOutput(PostingOutput):
    kind = "youtube"
    config_type = YoutubeOutputConfig
    max_batch = MAX_BATCH

    def __init__(self, name: str, entry: YoutubeOutputConfig, status: Status, first_seq: int = 1) -> None:
        super().__init__(name, entry, status, first_seq)
        self.offset_s = entry.offset_s
        self._skew_metric = status.metrics.youtube_clock_skew.labels(name)
        # YouTube's clock minus ours, from the last answer that carried a time; None until one did.
        self.clock_skew_s: float | None = None

    def request(self, post: Post) -> Request:
        # Viewers read these like the captions in OBS: a known speaker's label before the text.
        lines = [
            (f.spoken_at + self.offset_s, label(self.speaker_label, f.caption.speaker) + f.caption.text)
            for f in post.finals
        ]
        body = caption_body(lines)
        return Request(with_seq(self.url, post.seq), body.encode(), {"Content-Type": "text/plain; charset=utf-8"})

    def answered(self, text: str, sent_at: float, received_at: float) -> None:
        theirs = server_time(text)
        if theirs is None:
            return
        # The server stamped its answer somewhere between our send and receive: the middle is the best guess.
        skew = theirs - (sent_at + received_at) / 2
        was_off = self.clock_skew_s is not None and abs(self.clock_skew_s) > SKEW_WARN_S
        self.clock_skew_s = skew
        self._skew_metric.set(skew)
        if abs(skew) > SKEW_WARN_S and not was_off:
            log.warning("%s: %s", self.name, self.skew_warning())
        elif was_off and abs(skew) <= SKEW_WARN_S:
            log.info("%s: this computer's clock agrees with YouTube's again (%+.2f s)", self.name, skew)

    def skew_warning(self) -> str | None:
        skew = self.clock_skew_s
        if skew is None or abs(skew) <= SKEW_WARN_S:
            return None
        side = "behind" if skew > 0 else "ahead of"
        return (
            f"this computer's clock is {abs(skew):.1f} s {side} YouTube's, so captions land "
            f"{abs(skew):.1f} s {'early' if skew > 0 else 'late'} on the video; sync the clock (NTP) "
            f"or set offset_s: {self.offset_s + skew:.1f}"
        )

    def as_dict(self) -> dict[str, Any]:
        skew = None if self.clock_skew_s is None else round(self.clock_skew_s, 3)
        return {**super().as_dict(), "clock_skew_s": skew, "warning": self.skew_warning()}
