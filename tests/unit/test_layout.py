"""Caption layout: display widths and CJK wrapping with kinsoku."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from captioner.layout import char_width, display_width, wrap
from tests.support.layout_props import PROPS

# ---- widths --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ch", "width"),
    [
        ("a", 1),
        (" ", 1),
        ("é", 1),
        ("あ", 2),
        ("ア", 2),
        ("ー", 2),
        ("漢", 2),
        ("！", 2),  # U+FF01 FULLWIDTH EXCLAMATION MARK
        ("한", 2),
        ("ｱ", 1),  # halfwidth katakana
        ("\u0301", 0),  # combining acute accent
        ("\u20dd", 0),  # combining enclosing circle (Me)
        ("\u200b", 0),  # zero-width space (Cf)
        ("\u200d", 0),  # zero-width joiner (Cf)
        ("😀", 2),
    ],
)
def test_char_width(ch: str, width: int) -> None:
    assert char_width(ch) == width


@pytest.mark.parametrize("bad", ["", "ab"])
def test_char_width_takes_one_character(bad: str) -> None:
    with pytest.raises(ValueError):
        char_width(bad)


@pytest.mark.parametrize(
    ("text", "width"),
    [
        ("", 0),
        ("hello", 5),
        ("日本語", 6),
        ("OBSの設定", 9),
        ("cafe\u0301", 4),
        ("안녕 하세요", 11),
        ("！？", 4),
        ("👍 ok", 5),
    ],
)
def test_display_width(text: str, width: int) -> None:
    assert display_width(text) == width


# ---- wrap ----------------------------------------------------------------------------------------------------------

LIVE = "Live captions make streams accessible to everyone who watches them"


@pytest.mark.parametrize(
    ("text", "width", "lines"),
    [
        pytest.param("", 10, [], id="empty"),
        pytest.param(" \n\t ", 10, [], id="whitespace only"),
        pytest.param("  Hello\n\n  world\t ", 42, ["Hello world"], id="whitespace collapses"),
        pytest.param(LIVE, 42, ["Live captions make streams accessible to", "everyone who watches them"], id="en 42"),
        pytest.param(
            LIVE, 20, ["Live captions make", "streams accessible", "to everyone who", "watches them"], id="en 20"
        ),
        pytest.param("a supercalifragilistic day", 8, ["a", "supercal", "ifragili", "stic day"], id="hard split"),
        pytest.param("cafe\u0301 au lait", 4, ["cafe\u0301", "au", "lait"], id="combining mark stays with its base"),
        pytest.param("👨\u200d👩\u200d👧", 2, ["👨\u200d👩\u200d👧"], id="joined emoji never split"),
        pytest.param("a\u200db", 1, ["a\u200d", "b"], id="a joiner joins only emoji"),
        pytest.param("日本", 1, ["日", "本"], id="wide char wider than width gets its own line"),
        pytest.param("日 本", 1, ["日", "本"], id="a too-wide char before a space drops the space"),
        pytest.param("Bonjour à tous !", 14, ["Bonjour à", "tous !"], id="ascii ! never starts a line"),
        # 「こんにちは、世界。」: no line starts with 、。」, no line ends with 「; breaks move earlier to get there.
        pytest.param("「こんにちは、世界。」", 10, ["「こんにち", "は、世", "界。」"], id="ja 10"),
        pytest.param("「こんにちは、世界。」", 8, ["「こんに", "ちは、世", "界。」"], id="ja 8"),
        pytest.param("「こんにちは、世界。」", 6, ["「こん", "にち", "は、世", "界。」"], id="ja 6"),
        # 界。」 cannot fit in 4 columns, so kinsoku is impossible there and the line breaks anyway.
        pytest.param("「こんにちは、世界。」", 4, ["「こ", "んに", "ち", "は、", "世", "界。", "」"], id="ja 4 forced"),
        pytest.param("今日は「晴れ」です", 8, ["今日は", "「晴れ」", "です"], id="ja opening bracket never ends"),
        pytest.param("今日は「晴れ」です", 6, ["今日は", "「晴", "れ」で", "す"], id="ja brackets 6"),
        pytest.param("你好，世界。今天天气很好。", 10, ["你好，世", "界。今天天", "气很好。"], id="zh 10"),
        pytest.param("你好，世界。今天天气很好。", 6, ["你好，", "世界。", "今天天", "气很", "好。"], id="zh 6"),
        pytest.param("今日はOBSの設定をします", 10, ["今日はOBS", "の設定をし", "ます"], id="ja+en 10"),
        pytest.param("今日はOBSの設定をします", 8, ["今日は", "OBSの設", "定をしま", "す"], id="ja+en 8"),
        pytest.param("今日はOBSの設定をします", 4, ["今日", "は", "OBS", "の設", "定を", "しま", "す"], id="ja+en 4"),
        pytest.param(
            "안녕하세요 여러분 오늘은 날씨가 좋습니다",
            16,
            ["안녕하세요", "여러분 오늘은", "날씨가 좋습니다"],
            id="ko 16",
        ),
        pytest.param(
            "안녕하세요 여러분 오늘은 날씨가 좋습니다",
            6,
            ["안녕하", "세요", "여러분", "오늘은", "날씨가", "좋습니", "다"],
            id="ko 6 hard split",
        ),
    ],
)
def test_wrap(text: str, width: int, lines: list[str]) -> None:
    assert wrap(text, width) == lines


def test_wrap_rejects_zero_width() -> None:
    with pytest.raises(ValueError):
        wrap("text", 0)


WRAP_ALPHABET = list(
    "abcdefghij ABC  \n\t.,!?()[]%"
    "あいうえおかきくけこゃっー"
    "漢字日本語中文"
    "、。，．！？「」『』（）"
    "한국어"
    "ｱｲ\u3000\u0301\u200d😀"
)


def rejoins(lines: list[str], collapsed: str) -> bool:
    """The lines are the collapsed text cut at breaks, each break dropping one space or nothing."""
    pos = 0
    for i, line in enumerate(lines):
        if i and collapsed[pos : pos + 1] == " ":
            pos += 1
        if not collapsed.startswith(line, pos):
            return False
        pos += len(line)
    return pos == len(collapsed)


@PROPS
@given(st.text(alphabet=st.sampled_from(WRAP_ALPHABET), max_size=80), st.integers(min_value=1, max_value=30))
def test_wrap_properties(text: str, width: int) -> None:
    lines = wrap(text, width)
    collapsed = " ".join(text.split())
    assert rejoins(lines, collapsed), lines
    for line in lines:
        assert line
        assert line == line.strip()
        if display_width(line) > width:
            # One character, counting an emoji joined by ZWJ to the one before as part of it.
            assert sum(1 for i, ch in enumerate(line) if char_width(ch) and line[i - 1 : i] != "\u200d") == 1, line


# Tokens whose only legal break points are their edges: inside each, every break would break kinsoku.
KINSOKU_TOKENS = st.builds(
    lambda opening, core, closing: opening + core + closing,
    st.sampled_from(["", "「", "（"]),
    st.sampled_from(["日", "本", "語", "か", "な", "設定", "OBSの"]),
    st.sampled_from(["", "、", "。", "」", "ー", "っ", "」。", "）、"]),
)
NO_LINE_START = tuple("、。」）ーっ")
NO_LINE_END = tuple("「（")


@PROPS
@given(st.lists(KINSOKU_TOKENS, max_size=30).map("".join), st.integers(min_value=12, max_value=40))
def test_wrap_keeps_kinsoku_when_a_legal_break_is_near(text: str, width: int) -> None:
    lines = wrap(text, width)
    assert "".join(lines) == text
    for before, after in itertools.pairwise(lines):
        assert not before.endswith(NO_LINE_END), lines
        assert not after.startswith(NO_LINE_START), lines
