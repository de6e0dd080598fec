"""YouTube caption ingestion and webhooks: the body formats and the queue's rules as tables."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from captioner.outputs.posting import Final, PostQueue, utc_ms
from captioner.outputs.webhook import caption_json
from captioner.outputs.youtube import caption_body, server_time, with_seq
from captioner.translation.interpreter import Caption

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2026, 12, 24, 20, 0, 6, 873000, tzinfo=UTC).timestamp()


def final(text: str, spoken_at: float, item: str = "i", speaker: str = "", language: str = "ja") -> Final:
    c = Caption(language, item, text, True, spoken_at=spoken_at, speaker=speaker)
    return Final(c, spoken_at, spoken_at + 2.25)


# ---- formats ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "stamp"),
    [
        (T0, "2026-12-24T20:00:06.873"),
        (T0 + 0.0004, "2026-12-24T20:00:06.873"),  # to the nearest millisecond
        (T0 + 0.0006, "2026-12-24T20:00:06.874"),
        (T0 + 0.1266, "2026-12-24T20:00:07.000"),  # .9996 rounds up into the next second
        (datetime(2027, 1, 1, tzinfo=UTC).timestamp() - 0.0001, "2027-01-01T00:00:00.000"),
        (0.0, "1970-01-01T00:00:00.000"),
    ],
)
def test_stamps_are_utc_to_the_millisecond(t: float, stamp: str) -> None:
    assert utc_ms(t) == stamp


@pytest.mark.parametrize(
    ("lines", "body"),
    [
        ([(T0, "Hello everyone")], "2026-12-24T20:00:06.873\nHello everyone\n"),
        (
            [(T0, "皆さん、こんにちは。配信へようこそ！")],
            "2026-12-24T20:00:06.873\n皆さん、こんにちは。配信へようこそ！\n",
        ),
        ([(T0, "안녕하세요\n여러분")], "2026-12-24T20:00:06.873\n안녕하세요<br>여러분\n"),
        ([(T0, "一行目\r\n二行目\r三行目")], "2026-12-24T20:00:06.873\n一行目<br>二行目<br>三行目\n"),
        ([(T0, "  padded \n")], "2026-12-24T20:00:06.873\npadded\n"),
        (
            [(T0, "I'M"), (T0 + 0.101, "SENDING"), (T0 + 1.5, "大家好")],
            "2026-12-24T20:00:06.873\nI'M\n2026-12-24T20:00:06.974\nSENDING\n2026-12-24T20:00:08.373\n大家好\n",
        ),
    ],
)
def test_youtube_body_is_stamp_lines_then_text_lines(lines: list[tuple[float, str]], body: str) -> None:
    assert caption_body(lines) == body


@pytest.mark.parametrize(
    ("url", "seq", "sent"),
    [
        (
            "http://upload.youtube.com/closedcaption?cid=abcd-efgh",
            1,
            "http://upload.youtube.com/closedcaption?cid=abcd-efgh&seq=1",
        ),
        ("https://example.test/cc", 42, "https://example.test/cc?seq=42"),
        ("http://h/cc?id=x&sparams=id%2Cns&signature=A.B", 7, "http://h/cc?id=x&sparams=id%2Cns&signature=A.B&seq=7"),
    ],
)
def test_seq_is_added_and_the_rest_of_the_url_kept_exactly(url: str, seq: int, sent: str) -> None:
    assert with_seq(url, seq) == sent


@pytest.mark.parametrize(
    ("answer", "t"),
    [
        ("2026-12-24T20:00:06.873", T0),
        ("2026-12-24T20:00:06.873\n", T0),
        ("  2026-12-24T20:00:06\r\n", T0 - 0.873),
        ("OK", None),
        ("", None),
        ("2026-13-45T99:00:00.000", None),
    ],
)
def test_the_servers_time_is_read_from_its_answer(answer: str, t: float | None) -> None:
    got = server_time(answer)
    assert got == pytest.approx(t) if t is not None else got is None


def test_webhook_json_has_the_final_its_times_and_seq() -> None:
    f = final("皆さん\nこんにちは", T0, item="item_1", speaker="Alice")
    assert caption_json(f, 5) == {
        "seq": 5,
        "language": "ja",
        "text": "皆さん\nこんにちは",
        "start": "2026-12-24T20:00:06.873Z",
        "end": "2026-12-24T20:00:09.123Z",
        "item_id": "item_1",
        "speaker": "Alice",
    }
    assert "speaker" not in caption_json(final("x", T0), 1)


# ---- the queue's rules -----------------------------------------------------------------------------------------

# Steps: ("add", text, spoken_at) | ("next", now) -> expect (seq, texts) or None | ("ok",) | ("fail",) | ("stop",)
Step = tuple[Any, ...]


@dataclass
class Case:
    steps: list[tuple[Step, Any]]
    counts: dict[str, int] = field(default_factory=dict)
    max_age_s: float = 60.0
    max_batch: int = 1
    limit: int = 100


CASES = {
    "each final its own post, seq from 1": Case(
        [
            (("add", "a", 0), None),
            (("add", "b", 1), None),
            (("next", 2), (1, ["a"])),
            (("ok",), None),
            (("next", 3), (2, ["b"])),
            (("ok",), None),
            (("next", 4), None),
        ],
        {"posted": 2},
    ),
    "a retry is the same post with the same seq; the next one waits behind it": Case(
        [
            (("add", "a", 0), None),
            (("add", "b", 0), None),
            (("next", 1), (1, ["a"])),
            (("fail",), None),
            (("next", 2), (1, ["a"])),
            (("fail",), None),
            (("next", 3), (1, ["a"])),
            (("ok",), None),
            (("next", 4), (2, ["b"])),
            (("ok",), None),
        ],
        {"posted": 2, "failed": 2, "retried": 2},
    ),
    "waiting finals go out in one post, in order, up to max_batch": Case(
        [
            (("add", "a", 0), None),
            (("add", "b", 1), None),
            (("add", "c", 2), None),
            (("next", 3), (1, ["a", "b"])),
            (("fail",), None),
            (("add", "d", 4), None),
            (("next", 5), (1, ["a", "b"])),  # a retry does not grow
            (("ok",), None),
            (("next", 6), (2, ["c", "d"])),
            (("ok",), None),
        ],
        {"posted": 4, "failed": 1, "retried": 1},
        max_batch=2,
    ),
    "after a long outage the stale finals are skipped; the fresh ones go, seq unbroken": Case(
        [
            (("add", "a", 0), None),
            (("add", "b", 5), None),
            (("add", "c", 50), None),
            (("next", 1), (1, ["a"])),
            (("fail",), None),
            (("next", 30), (1, ["a"])),
            (("fail",), None),
            (("next", 100), (2, ["c"])),  # a (in flight) and b are older than 60 s; c is 50 s old
            (("ok",), None),
        ],
        {"posted": 1, "failed": 2, "retried": 1, "too_old": 2},
    ),
    "a stale final never sent uses no seq": Case(
        [
            (("add", "a", 0), None),
            (("add", "b", 90), None),
            (("next", 100), (1, ["b"])),
            (("ok",), None),
        ],
        {"posted": 1, "too_old": 1},
    ),
    "past the limit the oldest waiting final is skipped, never the one in flight": Case(
        [
            (("add", "a", 0), None),
            (("next", 0), (1, ["a"])),
            (("fail",), None),
            (("add", "b", 1), None),
            (("add", "c", 2), None),
            (("add", "d", 3), None),
            (("next", 4), (1, ["a"])),
            (("ok",), None),
            (("next", 4), (2, ["c"])),
            (("ok",), None),
            (("next", 4), (3, ["d"])),
            (("ok",), None),
        ],
        {"posted": 3, "failed": 1, "retried": 1, "queue_full": 1},
        limit=3,
    ),
    "at stop what is left is counted": Case(
        [
            (("add", "a", 0), None),
            (("add", "b", 0), None),
            (("next", 0), (1, ["a"])),
            (("fail",), None),
            (("stop",), 2),
            (("next", 1), None),
        ],
        {"failed": 1, "stopped": 2},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_queue_rules(case: Case) -> None:
    counts: Counter[str] = Counter()
    q = PostQueue(case.max_age_s, lambda what, n: counts.update({what: n}), case.max_batch, case.limit)
    for step, expected in case.steps:
        match step:
            case ("add", text, spoken_at):
                q.add(final(text, spoken_at))
            case ("next", now):
                post = q.next_post(now)
                got = None if post is None else (post.seq, [f.caption.text for f in post.finals])
                assert got == expected, step
            case ("ok",):
                q.delivered()
            case ("fail",):
                q.failed()
            case ("stop",):
                assert q.abandon() == expected
    assert dict(counts) == case.counts
