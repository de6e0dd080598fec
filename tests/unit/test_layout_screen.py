"""Caption layout: what CaptionScreen shows along a timeline of partials, finals and clears."""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from captioner.layout import CaptionScreen, LayoutSettings
from tests.support.layout_props import PROPS

# ---- CaptionScreen ------------------------------------------------------------------------------------------------

Event = tuple[float, str, str]  # (time, "final" | "partial" | "clear", text)
Check = tuple[float, str, float | None]  # (time, render(time), next_change(time))


def apply(screen: CaptionScreen, kind: str, text: str, now: float) -> None:
    if kind == "final":
        screen.final(text, now)
    elif kind == "partial":
        screen.partial(text, now)
    else:
        screen.clear(now)


def play(config: LayoutSettings, events: list[Event], checks: list[Check]) -> list[Check]:
    """Feed the events and look at the screen only at the check times (events at the same time go first)."""
    screen = CaptionScreen(config)
    steps = sorted(
        [(t, 0, i) for i, (t, _, _) in enumerate(events)] + [(t, 1, i) for i, (t, _, _) in enumerate(checks)]
    )
    seen: list[Check] = []
    for t, is_check, i in steps:
        if is_check:
            seen.append((t, screen.render(t), screen.next_change(t)))
        else:
            apply(screen, events[i][1], events[i][2], t)
    return seen


ROLL = LayoutSettings(max_width=42, max_lines=2, rolling=True, min_display_s=1.0, clear_after_s=6.0)
ROLL10 = LayoutSettings(max_width=10, max_lines=2, rolling=True, min_display_s=1.0, clear_after_s=6.0)
PAGED10 = LayoutSettings(max_width=10, max_lines=2, rolling=False, min_display_s=1.0, clear_after_s=6.0)

TIMELINES = [
    pytest.param(
        ROLL,
        [(0.0, "final", "one"), (0.25, "final", "two"), (0.5, "final", "three")],
        [
            (0.0, "one", 6.0),
            (0.25, "one\ntwo", 6.25),
            (0.5, "one\ntwo", 1.0),
            (0.75, "one\ntwo", 1.0),
            (1.0, "two\nthree", 7.0),
            (6.75, "two\nthree", 7.0),
            (7.0, "", None),
        ],
        id="rolling: three finals 0.25 s apart, the third waits until the first has been up 1 s",
    ),
    pytest.param(
        ROLL10,
        [(0.0, "final", "one two three four five")],
        [(0.0, "one two\nthree four", 1.0), (0.5, "one two\nthree four", 1.0), (1.0, "three four\nfive", 7.0)],
        id="rolling: a three-line caption scrolls its last line in after min_display_s",
    ),
    pytest.param(
        PAGED10,
        [(0.0, "final", "one two three four five six seven"), (0.5, "final", "hello")],
        [
            (0.0, "one two\nthree four", 1.0),
            (0.5, "one two\nthree four", 1.0),
            (1.0, "five six\nseven", 2.0),
            (2.0, "hello", 8.0),
            (7.75, "hello", 8.0),
            (8.0, "", None),
        ],
        id="paged: a long caption pages, the next caption starts a new page",
    ),
    pytest.param(
        PAGED10,
        [(0.0, "final", "alpha"), (0.5, "partial", "beta gamma delta")],
        [(0.5, "alpha", 1.0), (1.0, "beta gamma\ndelta", 6.5)],
        id="paged: the partial replaces the page once it has been up min_display_s",
    ),
    pytest.param(
        LayoutSettings(max_width=20, max_lines=2, min_display_s=1.0, clear_after_s=6.0),
        [
            (0.0, "partial", "The weather"),
            (0.25, "partial", "The weather is nice"),
            (0.5, "partial", "The weather is nice today and"),
            (0.75, "final", "The weather is nice today and warm."),
            (1.0, "partial", "Let's go"),
        ],
        [
            (0.0, "The weather", 6.0),
            (0.25, "The weather is nice", 6.25),
            (0.5, "The weather is nice\ntoday and", 6.5),
            (0.75, "The weather is nice\ntoday and warm.", 6.75),
            (1.0, "The weather is nice\ntoday and warm.", 1.75),
            (1.75, "today and warm.\nLet's go", 7.0),
        ],
        id="rolling: the partial grows, the final replaces it, the next partial waits for a line to age",
    ),
    pytest.param(
        ROLL10,
        [(0.0, "final", "one"), (0.5, "partial", "two three four")],
        [(0.5, "one\nfour", 1.0), (1.0, "two three\nfour", 6.5)],
        id="rolling: a partial too tall for the screen shows its newest lines",
    ),
    pytest.param(
        LayoutSettings(max_lines=1, min_display_s=1.0),
        [(0.0, "final", "alpha"), (0.25, "final", "beta"), (0.5, "partial", "gamma")],
        [(0.5, "alpha", 1.0), (1.0, "beta", 2.0), (2.0, "gamma", 7.0)],
        id="the partial is hidden while final lines are queued",
    ),
    pytest.param(
        ROLL,
        [(0.0, "final", "hello")],
        [(5.75, "hello", 6.0), (6.0, "", None), (9.0, "", None)],
        id="cleared exactly clear_after_s after the last input",
    ),
    pytest.param(
        LayoutSettings(min_display_s=3.0, clear_after_s=2.0),
        [(0.0, "final", "hello")],
        [(2.0, "hello", 3.0), (2.75, "hello", 3.0), (3.0, "", None)],
        id="not cleared before min_display_s",
    ),
    pytest.param(
        LayoutSettings(clear_after_s=0.0),
        [(0.0, "final", "hello")],
        [(0.0, "hello", None), (1000.0, "hello", None)],
        id="clear_after_s 0 never clears",
    ),
    pytest.param(
        ROLL,
        [(0.0, "final", "hi"), (0.5, "partial", "more"), (2.0, "partial", "")],
        [(0.5, "hi\nmore", 6.5), (2.0, "hi", 8.0), (7.75, "hi", 8.0), (8.0, "", None)],
        id="a withdrawn partial: silence counts from the withdrawal",
    ),
    pytest.param(
        ROLL,
        [(0.0, "final", "hi"), (0.5, "partial", "more"), (3.0, "partial", "more words")],
        [(0.5, "hi\nmore", 6.5), (3.0, "hi\nmore words", 9.0), (8.99, "hi\nmore words", 9.0), (9.0, "", None)],
        id="a partial whose final never comes is cleared after clear_after_s without input",
    ),
    pytest.param(
        ROLL,
        [
            (0.0, "final", "a"),
            (0.25, "final", "b"),
            (0.5, "final", "c"),
            (0.625, "partial", "d"),
            (0.75, "clear", ""),
            (1.0, "final", "e"),
        ],
        [(0.625, "a\nb", 1.0), (0.75, "", None), (0.875, "", None), (1.0, "e", 7.0)],
        id="clear() drops visible, queued and partial lines",
    ),
    pytest.param(
        ROLL,
        [(k / 16, "final", f"f{k}") for k in range(10)],
        [
            (0.125, "f0\nf1", 1.0),
            (0.375, "f1\nf2", 1.0625),
            (0.5625, "f4\nf5", 1.5),
            (1.25, "f4\nf5", 1.5),
            (1.5, "f5\nf6", 1.5625),
            (1.5625, "f6\nf7", 2.5),
            (2.5, "f7\nf8", 2.5625),
            (2.5625, "f8\nf9", 8.5625),
            (8.5625, "", None),
        ],
        id="rolling latency bound: of a burst of 10 finals at most 4 lines wait",
    ),
    pytest.param(
        PAGED10,
        [(k / 8, "final", f"p{k}") for k in range(5)],
        [(0.25, "p0", 1.0), (0.5, "p2", 1.5), (1.5, "p3", 2.5), (2.5, "p4", 8.5), (8.5, "", None)],
        id="paged latency bound: at most 2 pages wait",
    ),
    pytest.param(
        LayoutSettings(max_width=3, max_lines=2, min_display_s=1.0, clear_after_s=6.0),
        [(0.0, "final", " ".join(f"w{i}" for i in range(100)))],
        [(0.0, "w94\nw95", 1.0), (1.0, "w96\nw97", 2.0), (2.0, "w98\nw99", 8.0)],
        id="a 100-line caption scrolls through to its last 6 lines at once",
    ),
]


@pytest.mark.parametrize(("config", "events", "checks"), TIMELINES)
def test_timeline(config: LayoutSettings, events: list[Event], checks: list[Check]) -> None:
    assert play(config, events, checks) == checks


@pytest.mark.parametrize(("config", "events", "checks"), TIMELINES)
def test_timeline_rendered_every_millisecond_looks_the_same(
    config: LayoutSettings, events: list[Event], checks: list[Check]
) -> None:
    busy = checks + [(ms / 1000, "", None) for ms in range(0, 3000)]
    seen = {t: (text, nxt) for t, text, nxt in play(config, events, busy)}
    assert [(t, *seen[t]) for t, _, _ in checks] == checks


@pytest.mark.parametrize(
    "bad",
    [
        {"max_width": 0},
        {"max_lines": 0},
        {"min_display_s": -1.0},
        {"clear_after_s": -0.5},
    ],
)
def test_settings_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LayoutSettings(**bad)  # type: ignore[arg-type]


WORDS = ["", "hello", "world", "captions", "for", "OBS", "今日は", "「晴れ」です。", "설정", "supercalifragilistic"]
SCREEN_SETTINGS = st.builds(
    LayoutSettings,
    max_width=st.integers(min_value=4, max_value=30),
    max_lines=st.integers(min_value=1, max_value=3),
    rolling=st.booleans(),
    min_display_s=st.sampled_from([0.0, 0.3, 1.0, 2.5]),
    clear_after_s=st.sampled_from([0.0, 0.7, 2.0, 6.0]),
)
EVENTS = st.lists(
    st.tuples(
        st.one_of(st.sampled_from([0.0, 0.1, 0.25, 1.0]), st.floats(min_value=0.0, max_value=4.0)),
        st.sampled_from(["final", "final", "partial", "partial", "clear"]),
        st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join),
    ),
    max_size=15,
)


@PROPS
@given(SCREEN_SETTINGS, EVENTS, st.integers(min_value=1, max_value=9))
def test_rendering_often_or_rarely_gives_the_same_screen(
    config: LayoutSettings, events: list[tuple[float, str, str]], fine_steps: int
) -> None:
    rarely = CaptionScreen(config)  # only ever looked at through copies, so it is never rendered itself
    often = CaptionScreen(config)
    t = 0.0
    for dt, kind, text in events:
        for k in range(1, fine_steps + 1):
            often.render(t + dt * k / (fine_steps + 1))
        t += dt
        apply(rarely, kind, text, t)
        apply(often, kind, text, t)
        assert copy.deepcopy(rarely).render(t) == often.render(t)
    for later in (0.5, 1.0, 2.5, 7.0, 30.0):
        assert copy.deepcopy(rarely).render(t + later) == often.render(t + later)


@PROPS
@given(SCREEN_SETTINGS, EVENTS)
def test_next_change_is_exactly_the_next_change(config: LayoutSettings, events: list[tuple[float, str, str]]) -> None:
    screen = CaptionScreen(config)
    t = 0.0
    for dt, kind, text in events:
        t += dt
        apply(screen, kind, text, t)
        assert len(screen._queue) <= 2 * config.max_lines  # memory stays bounded
        shown = copy.deepcopy(screen).render(t)
        nxt = copy.deepcopy(screen).next_change(t)
        if nxt is None:
            for later in (1.0, 10.0, 1000.0):
                assert copy.deepcopy(screen).render(t + later) == shown
            continue
        assert nxt > t
        middle = (t + nxt) / 2
        if middle < nxt:  # one float apart, the midpoint rounds up to nxt itself: no time lies between them
            assert copy.deepcopy(screen).render(middle) == shown
        just_before = math.nextafter(nxt, -math.inf)
        if just_before > t:
            assert copy.deepcopy(screen).render(just_before) == shown
        assert copy.deepcopy(screen).render(nxt) != shown


def test_settle_shows_the_last_lines_at_once() -> None:
    screen = CaptionScreen(LayoutSettings(max_width=10, max_lines=2, min_display_s=1.0, clear_after_s=5.0))
    screen.final("one two three four five six", 0.0)
    assert screen.render(0.0) == "one two\nthree four"
    screen.settle(0.1)
    assert screen.render(0.1) == "three four\nfive six"
