"""CEA-608 text, pages and pacing, table by table; the round trip through real OBS: e2e/test_cea608.py."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from captioner.cea608 import COLUMNS, LANGUAGES, MAX_BYTES, CaptionPacer, pages, supports, to_608
from captioner.translation.protocol import Q3, Q35

# ---- to_608 --------------------------------------------------------------------------------------------------------

TO_608: list[tuple[str, str, str]] = [
    ("plain ASCII unchanged", "Hello, world! (1+1=2)", "Hello, world! (1+1=2)"),
    ("double quotes become ASCII, single ones the 608 apostrophe", "It’s “live” ‘now’", 'It’s "live" ’now’'),
    ("low and high quotes", "„Guten Tag“ ‚ja‘", '"Guten Tag" ’ja’'),
    ("ASCII apostrophe becomes the 608 one", "it's", "it’s"),
    ("dashes", "a – b — c ‐ d − e", "a - b - c - d - e"),
    ("ellipsis", "Well… ok", "Well... ok"),
    ("no-break and narrow no-break spaces", "« Bonjour\u202f! »\u00a0ok", "« Bonjour ! » ok"),
    ("whitespace collapsed and trimmed", "  one\ttwo\n\nthree  ", "one two three"),
    ("608 accents kept", "¿Qué? ¡Sí! Ça, l’été à Noël.", "¿Qué? ¡Sí! Ça, l’été à Noël."),
    ("German and Nordic letters kept", "Größe ÄÖÜ Åse Øre", "Größe ÄÖÜ Åse Øre"),
    ("combining accent composed (NFC)", "cafe\u0301", "café"),
    ("ligatures spelled out", "cœur Œuvre Æble ÆBLE", "coeur Oeuvre Aeble AEBLE"),
    ("Catalan middle dot", "col·lecció", "col.lecció"),
    ("letters outside 608 lose their accent", "Dvořák Łódź őr", "Dvorák Lódz or"),
    ("emoji, CJK and symbols dropped", "Hi 😀 你好 ✓ there", "Hi there"),
    ("euro sign spelled", "5 € each", "5 EUR each"),
    ("compatibility forms", "ﬁne ＡＢＣ", "fine ABC"),
    ("608 symbols kept", "♪ 50° ½ © ® ™ £ ¢ ¥ • « »", "♪ 50° ½ © ® ™ £ ¢ ¥ • « »"),
    ("ASCII specials kept", "{ } [ ] ~ | \\ _ ^ * @ #", "{ } [ ] ~ | \\ _ ^ * @ #"),
    ("grave accent becomes apostrophe", "`quoted`", "’quoted’"),
    ("zero-width and control characters dropped", "a\u200bb\x07c", "abc"),
    ("empty", "", ""),
    ("nothing showable", "😀 ✓", ""),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in TO_608], ids=[c[0] for c in TO_608])
def test_to_608(text: str, expected: str) -> None:
    assert to_608(text) == expected


# ---- pages ---------------------------------------------------------------------------------------------------------

PAGES: list[tuple[str, str, int, list[str]]] = [
    (
        "English, curly quotes, one page",
        "It’s “live” – welcome… to the show!",
        2,
        ['It’s "live" - welcome... to the\nshow!'],
    ),
    (
        "English, two pages of two rows",
        "The quick brown fox jumps over the lazy dog and keeps running far away into the forest.",
        2,
        ["The quick brown fox jumps over\nthe lazy dog and keeps running", "far away into the forest."],
    ),
    (
        "Spanish",
        "¿Qué tal? Mañana por la mañana iremos al médico, señor Núñez.",
        2,
        ["¿Qué tal? Mañana por la mañana\niremos al médico, señor Núñez."],
    ),
    (
        # 3 rows take 115 bytes; the 4th (22 bytes) would make 138 > 128, so it opens the next page
        "French, 4 rows: the 4th row moves on at the byte limit",
        "À côté de l’église, les élèves étaient très âgés, déçus et fâchés à l’époque où ça s’était passé même à Noël.",
        4,
        [
            "À côté de l’église, les élèves\nétaient très âgés, déçus et\nfâchés à l’époque où ça s’était",
            "passé même à Noël.",
        ],
    ),
    (
        "German, 4 rows, 115 bytes fit",
        "Über Größe und Gemütlichkeit äußerte sich der Bürgermeister während der Sitzung überraschend ausführlich.",
        4,
        [
            "Über Größe und Gemütlichkeit\näußerte sich der Bürgermeister\n"
            "während der Sitzung überraschend\nausführlich."
        ],
    ),
    (
        "Portuguese, 4 rows of exactly 128 bytes fit",
        "Não há mais café, então eles irão à padaria da esquina comprar pão doce e também três maçãs vermelhas "
        "para o almoço.",
        4,
        [
            "Não há mais café, então eles\nirão à padaria da esquina\n"
            "comprar pão doce e também três\nmaçãs vermelhas para o almoço."
        ],
    ),
    (
        "Portuguese, one word more: 130 bytes, the 4th row moves on",
        "Não há mais café, então eles irão à padaria da esquina comprar pão doce e também três maçãs vermelhas "
        "para o almoço à tarde.",
        4,
        [
            "Não há mais café, então eles\nirão à padaria da esquina\ncomprar pão doce e também três",
            "maçãs vermelhas para o almoço à\ntarde.",
        ],
    ),
    (
        "English, 4 full ASCII rows would be 131 bytes",
        "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. "
        "How vexingly quick daft zebras jump! Sphinx of black quartz, judge my vow.",
        4,
        [
            "The quick brown fox jumps over\nthe lazy dog. Pack my box with\nfive dozen liquor jugs. How\n"
            "vexingly quick daft zebras jump!",
            "Sphinx of black quartz, judge my\nvow.",
        ],
    ),
    (
        "a 41-character word starts a row and is cut after 32",
        "Der Donaudampfschiffahrtsgesellschaftskapitän grüßt.",
        2,
        ["Der\nDonaudampfschiffahrtsgesellschaf", "tskapitän grüßt."],
    ),
    ("a 40-character word alone", "a" * 40, 2, ["a" * 32 + "\n" + "a" * 8]),
    ("2-byte letters: 63 of them fit in 127 bytes", "é" * 63, 2, ["é" * 32 + "\n" + "é" * 31]),
    ("2-byte letters: 64 of them would be 129 bytes", "é" * 64, 2, ["é" * 32, "é" * 32]),
    (
        "one row per page",
        "one two three four five six seven eight nine ten",
        1,
        ["one two three four five six", "seven eight nine ten"],
    ),
    ("empty text", "", 2, []),
    ("only whitespace", " \n\t ", 2, []),
    ("only characters 608 cannot show", "😀 你好", 2, []),
]


@pytest.mark.parametrize(("text", "rows", "expected"), [c[1:] for c in PAGES], ids=[c[0] for c in PAGES])
def test_pages(text: str, rows: int, expected: list[str]) -> None:
    got = pages(text, rows=rows)
    assert got == expected
    assert all(len(p.encode("utf-8")) <= MAX_BYTES for p in got)


def test_pages_narrower_columns() -> None:
    assert pages("Live captions from the sidecar daemon", columns=20) == ["Live captions from\nthe sidecar daemon"]


@pytest.mark.parametrize(("rows", "columns"), [(0, 32), (16, 32), (2, 0), (2, 33)])
def test_pages_rejects_impossible_layouts(rows: int, columns: int) -> None:
    with pytest.raises(ValueError):
        pages("text", rows=rows, columns=columns)


PROPS = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
_WORDS = st.text(alphabet=st.sampled_from("aeéßñ’😀 \n\t–…ÆœZ!"), max_size=12)


@PROPS
@given(
    text=st.one_of(st.text(max_size=300), st.lists(_WORDS, max_size=40).map(" ".join)),
    rows=st.integers(1, 6),
    columns=st.integers(1, COLUMNS),
)
def test_pages_properties(text: str, rows: int, columns: int) -> None:
    clean = to_608(text)
    assert to_608(clean) == clean
    got = pages(text, rows=rows, columns=columns)
    for page in got:
        assert len(page.encode("utf-8")) <= MAX_BYTES
        lines = page.split("\n")
        assert 1 <= len(lines) <= rows
        for line in lines:
            assert 1 <= len(line) <= columns
            assert to_608(line) == line  # nothing OBS would drop or change, no edge spaces
    # Only the breaks differ: no character is lost, added or reordered.
    assert "".join(got).replace("\n", "").replace(" ", "") == clean.replace(" ", "")


# ---- languages -----------------------------------------------------------------------------------------------------


def test_language_list() -> None:
    assert sorted(LANGUAGES) == sorted("af ast ca ceb da de en es et fi fil fr gl id it jv ms nb nl pt sv sw".split())
    assert set(LANGUAGES) <= Q35.languages | Q3.languages  # codes the translator knows


SUPPORTS: list[tuple[str, bool]] = [
    ("en", True),
    ("EN", True),
    ("es", True),
    ("fr", True),
    ("de", True),
    ("pt-BR", True),
    ("es_MX", True),
    ("fil", True),
    ("nb", True),
    ("da", True),
    ("ca", True),
    ("ja", False),
    ("zh", False),
    ("yue", False),
    ("ko", False),
    ("ru", False),
    ("el", False),
    ("ar", False),
    ("is", False),
    ("tr", False),
    ("pl", False),
    ("cs", False),
    ("vi", False),
    ("source", False),
    ("", False),
]


@pytest.mark.parametrize(("language", "expected"), SUPPORTS)
def test_supports(language: str, expected: bool) -> None:
    assert supports(language) is expected


# ---- pacer ---------------------------------------------------------------------------------------------------------

# Steps: (now, operation, argument, expected result); "skipped" and "len" read state.
Step = tuple[float, str, object, object]
PACER: list[tuple[str, float, int, list[Step]]] = [
    (
        "one page per interval",
        1.0,
        4,
        [
            (0.0, "next_due", None, None),
            (0.0, "due", None, None),
            (0.0, "push", ["a", "b"], None),
            (0.0, "next_due", None, 0.0),
            (0.0, "due", None, "a"),
            (0.5, "due", None, None),
            (0.5, "next_due", None, 1.0),
            (1.0, "due", None, "b"),
            (1.5, "due", None, None),
            (1.5, "next_due", None, None),
        ],
    ),
    (
        "late poll sends at once, and the interval counts from then",
        1.0,
        4,
        [
            (0.0, "push", ["a", "b", "c"], None),
            (0.0, "due", None, "a"),
            (2.5, "next_due", None, 2.5),
            (2.5, "due", None, "b"),
            (3.0, "next_due", None, 3.5),
            (3.5, "due", None, "c"),
        ],
    ),
    (
        "after a quiet spell the first page goes at once",
        1.0,
        4,
        [
            (0.0, "push", ["a"], None),
            (0.0, "due", None, "a"),
            (5.0, "push", ["b"], None),
            (5.0, "next_due", None, 5.0),
            (5.0, "due", None, "b"),
        ],
    ),
    (
        "a burst keeps the newest max_backlog pages",
        1.0,
        4,
        [
            (0.0, "push", ["1", "2", "3"], None),
            (0.0, "push", ["4", "5", "6"], None),
            (0.0, "skipped", None, 2),
            (0.0, "len", None, 4),
            (0.0, "due", None, "3"),
            (0.2, "push", ["7", "8"], None),
            (0.2, "skipped", None, 3),
            (1.0, "due", None, "5"),
            (2.0, "due", None, "6"),
            (3.0, "due", None, "7"),
            (4.0, "due", None, "8"),
            (5.0, "due", None, None),
            (5.0, "skipped", None, 3),
        ],
    ),
    (
        "clear drops the queue, uncounted, and keeps the interval",
        1.0,
        4,
        [
            (0.0, "push", ["a", "b", "c"], None),
            (0.0, "due", None, "a"),
            (0.1, "clear", None, None),
            (0.1, "len", None, 0),
            (0.1, "skipped", None, 0),
            (0.1, "next_due", None, None),
            (0.2, "push", ["d"], None),
            (0.2, "due", None, None),
            (0.2, "next_due", None, 1.0),
            (1.0, "due", None, "d"),
        ],
    ),
    (
        "zero interval releases everything in order",
        0.0,
        2,
        [
            (0.0, "push", ["a", "b", "c"], None),
            (0.0, "skipped", None, 1),
            (0.0, "due", None, "b"),
            (0.0, "due", None, "c"),
            (0.0, "due", None, None),
        ],
    ),
    (
        "an empty push changes nothing",
        1.0,
        4,
        [
            (0.0, "push", [], None),
            (0.0, "len", None, 0),
            (0.0, "next_due", None, None),
        ],
    ),
]


@pytest.mark.parametrize(("interval", "backlog", "steps"), [c[1:] for c in PACER], ids=[c[0] for c in PACER])
def test_pacer_timeline(interval: float, backlog: int, steps: list[Step]) -> None:
    pacer = CaptionPacer(min_interval_s=interval, max_backlog=backlog)
    for i, (now, op, arg, expected) in enumerate(steps):
        got: object
        if op == "push":
            assert isinstance(arg, list)
            pacer.push(arg)
            got = None
        elif op == "due":
            got = pacer.due(now)
        elif op == "next_due":
            got = pacer.next_due(now)
        elif op == "clear":
            pacer.clear()
            got = None
        elif op == "skipped":
            got = pacer.skipped
        elif op == "len":
            got = len(pacer)
        else:
            raise AssertionError(op)
        assert got == expected, f"step {i}: {op} at {now}"


@pytest.mark.parametrize(("interval", "backlog"), [(-0.1, 4), (1.0, 0)])
def test_pacer_rejects_bad_settings(interval: float, backlog: int) -> None:
    with pytest.raises(ValueError):
        CaptionPacer(min_interval_s=interval, max_backlog=backlog)
