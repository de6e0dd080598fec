"""Vocabulary: caption text replacements and the profanity mask, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from captioner.config import VocabularyConfig
from captioner.vocabulary import BUILTIN_PROFANITY, Vocabulary, compile_find, masked, profanity_pattern


def vocab(*replacements: dict[str, Any], **profanity: Any) -> Vocabulary:
    return Vocabulary(VocabularyConfig.model_validate({"replacements": replacements, "profanity": profanity}))


CASTLE = {"find": "castle", "replace": "Schloss"}


@pytest.mark.parametrize(
    ("rule", "language", "text", "expected"),
    [
        # literal, whole word, case-insensitive by default
        (CASTLE, "en", "The Castle and the castle.", "The Schloss and the Schloss."),
        (CASTLE, "en", "castles, sandcastle, castle's", "castles, sandcastle, Schloss's"),
        (CASTLE, "en", "castle_keep castle2", "castle_keep castle2"),
        # a Latin word inside Japanese text still needs no Latin letter next to it
        (CASTLE, "ja", "castleです、Xcastle", "Schlossです、Xcastle"),
        ({**CASTLE, "whole_word": False}, "en", "sandcastles", "sandSchlosss"),
        ({**CASTLE, "ignore_case": False}, "en", "Castle castle", "Castle Schloss"),
        # CJK has no word boundaries: whole_word still matches inside a run of characters
        ({"find": "城", "replace": "キャッスル"}, "ja", "古い城に行った", "古いキャッスルに行った"),
        ({"find": "人工智能", "replace": "AI"}, "zh", "我喜欢人工智能技术", "我喜欢AI技术"),
        ({"find": "서울", "replace": "Seoul"}, "ko", "서울에서 만나요", "Seoul에서 만나요"),
        # punctuation at an edge needs no boundary there
        ({"find": "C++", "replace": "C plus plus"}, "en", "I like C++.", "I like C plus plus."),
        ({"find": "Mr.", "replace": "Mister"}, "en", "Mr. Smith", "Mister Smith"),
        # literal text is literal: regex characters and backslashes are not special
        ({"find": "a.b", "replace": r"x\1y"}, "en", "a.b axb", r"x\1y axb"),
        # regex: groups, whole words, its own inline flags
        (
            {"find": r"(\d+)\s*km", "replace": r"\1 kilometres", "regex": True},
            "en",
            "5km, 10 km, x5km",
            "5 kilometres, 10 kilometres, x5km",
        ),
        ({"find": r"(?i)a\.?i\.?", "replace": "AI", "regex": True, "ignore_case": False}, "en", "a.i. ai", "AI AI"),
        ({"find": "colou?r", "replace": "color", "regex": True, "whole_word": False}, "en", "Colours", "colors"),
        ({"find": r"\s+([,.!?])", "replace": r"\1", "regex": True}, "en", "Hi , there !", "Hi, there!"),
        # language filter
        ({**CASTLE, "languages": ["de"]}, "en", "castle", "castle"),
        ({**CASTLE, "languages": ["de", "source"]}, "source", "castle", "Schloss"),
        ({**CASTLE, "replace": ""}, "en", "a castle", "a "),
    ],
)
def test_replacements(rule: dict[str, Any], language: str, text: str, expected: str) -> None:
    assert vocab(rule).apply(language, text) == expected


def test_replacements_apply_in_order_each_on_the_result() -> None:
    v = vocab({"find": "castle", "replace": "fort"}, {"find": "fort", "replace": "keep"})
    assert v.apply("en", "castle, fort") == "keep, keep"


@pytest.mark.parametrize(
    ("profanity", "language", "text", "expected"),
    [
        ({"enabled": True}, "en", "Oh shit, that's shit.", "Oh s***, that's s***."),
        ({"enabled": True}, "en", "SHIT Shit", "S*** S***"),
        # simple inflections of the built-in words
        (
            {"enabled": True},
            "en",
            "fucking fucked shitty bitches pissed",
            "f****** f***** s***** b****** p*****",
        ),
        ({"enabled": True}, "en", "motherfucker", "m***********"),
        # whole words only: no Scunthorpe problem
        (
            {"enabled": True},
            "en",
            "Scunthorpe classic cockpit Dickens shitake",
            "Scunthorpe classic cockpit Dickens shitake",
        ),
        ({"enabled": True, "mask": "#"}, "en", "damn", "d###"),
        # user words: whole words in Latin text, exactly as written (no inflections), case-insensitive
        ({"enabled": True, "words": ["frick"]}, "en", "Frick fricking", "F**** fricking"),
        ({"enabled": True, "words": ["son of a gun"]}, "en", "you son of a gun", "you s** ** * ***"),
        # user words in CJK match inside words
        ({"enabled": True, "words": ["馬鹿"]}, "ja", "この馬鹿やろう", "この馬*やろう"),
        ({"enabled": True, "words": ["くそ"]}, "ja", "くそったれ、shit", "く*ったれ、s***"),
        # language filter and switch
        ({"enabled": True, "languages": ["en"]}, "ja", "shit", "shit"),
        ({"enabled": True, "languages": ["source"]}, "source", "shit", "s***"),
        ({"enabled": False, "words": ["frick"]}, "en", "shit frick", "shit frick"),
    ],
)
def test_profanity(profanity: dict[str, Any], language: str, text: str, expected: str) -> None:
    assert vocab(**profanity).apply(language, text) == expected


def test_replacements_run_before_the_mask() -> None:
    v = vocab({"find": "darn", "replace": "damn"}, {"find": "shit", "replace": "shoot"}, enabled=True)
    assert v.apply("en", "darn, shit") == "d***, shoot"


def test_nothing_configured_leaves_text_alone() -> None:
    v = Vocabulary(VocabularyConfig())
    assert not v.active
    assert v.apply("en", "shit castle") == "shit castle"
    assert vocab(CASTLE).active and vocab(enabled=True).active


def test_every_builtin_word_is_masked_in_its_plain_form() -> None:
    pattern = profanity_pattern([])
    assert pattern is not None
    for word in BUILTIN_PROFANITY:
        assert pattern.sub(lambda m: masked(m.group(0)), word) == masked(word), word
    assert profanity_pattern([], builtin=False) is None


@pytest.mark.parametrize(
    ("word", "mask", "expected"),
    [("shit", "*", "s***"), ("s", "*", "s"), ("", "*", ""), ("a b", "#", "a #"), ("馬鹿", "*", "馬*")],
)
def test_masked(word: str, mask: str, expected: str) -> None:
    assert masked(word, mask) == expected


def test_compile_find_reports_bad_regex() -> None:
    with pytest.raises(Exception, match="missing"):  # re.error: "missing ), unterminated subpattern"
        compile_find("(a", regex=True, ignore_case=True, whole_word=True)
    # the same text as a literal is fine
    assert compile_find("(a", regex=False, ignore_case=True, whole_word=True).search("x (a y")
