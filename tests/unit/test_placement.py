"""Where created caption sources sit on OBS's canvas, their size, look and font; the style config keys."""

from __future__ import annotations

from typing import Any

import pytest

from captioner.config import StyleConfig, parse
from captioner.errors import ConfigError
from captioner.layout import display_width, wrap
from captioner.placement import (
    ALIGN_BOTTOM,
    ALIGN_TOP,
    COLUMN_EM,
    Canvas,
    Placement,
    SourcePlan,
    auto_size,
    fontconfig_lang,
    known_family,
    needed_language,
    place,
    plans,
)
from tests.support.config_docs import ENV, base

CANVASES = [Canvas(1920, 1080), Canvas(1280, 720), Canvas(1080, 1920), Canvas(320, 180)]
FONTS = {"ja": "Noto Sans CJK JP", "en": "DejaVu Sans", "zh": "Noto Sans CJK SC"}


def plan(name: str, language: str = "en", columns: int = 42, lines: int = 2, **style: Any) -> SourcePlan:
    return SourcePlan(name, language, columns, lines, StyleConfig(**style))


def overlap(a: Placement, b: Placement) -> bool:
    al, at, ar, ab = a.box()
    bl, bt, br, bb = b.box()
    return al < br and bl < ar and at < bb and bt < ab


@pytest.mark.parametrize(
    ("canvas", "columns", "size"),
    [
        (Canvas(1920, 1080), 42, 60),  # height / 18
        (Canvas(1280, 720), 42, 40),
        (Canvas(3840, 2160), 42, 120),
        (Canvas(1080, 1920), 42, 38),  # vertical: 42 columns must fit 972 px, so the width decides
        (Canvas(1080, 1920), 20, 81),
        (Canvas(320, 180), 42, 10),
        (Canvas(64, 36), 42, 6),  # never below 6 px
    ],
)
def test_font_size_follows_the_canvas_and_fits_the_columns(canvas: Canvas, columns: int, size: int) -> None:
    assert auto_size(canvas, columns) == size


@pytest.mark.parametrize("canvas", CANVASES, ids=str)
@pytest.mark.parametrize("count", [1, 2, 3])
def test_stacked_outputs_sit_inside_the_canvas_first_lowest_never_overlapping(canvas: Canvas, count: int) -> None:
    placed = place(canvas, [plan(f"S{i}", "ja" if i % 2 else "en") for i in range(count)], FONTS)
    assert [p.name for p in placed] == [f"S{i}" for i in range(count)]
    for p in placed:
        left, top, right, bottom = p.box()
        assert 0 <= left < right <= canvas.width and 0 <= top < bottom <= canvas.height, p
        if count <= 2:  # two outputs of two lines leave the upper half free on every canvas
            assert top >= canvas.height / 2, f"{p.name} reaches into the upper half"
        assert p.x == canvas.width / 2 and p.alignment == ALIGN_BOTTOM
    bottoms = [p.box()[3] for p in placed]
    assert bottoms == sorted(bottoms, reverse=True), "the first output is lowest, the next ones above it"
    assert not any(overlap(a, b) for i, a in enumerate(placed) for b in placed[i + 1 :])


@pytest.mark.parametrize(
    ("canvas", "first", "second"),
    [
        # bottom edge 5 % up; 2 lines x 1.4 x size high; the next output 0.3 x size above
        (Canvas(1920, 1080), (960, 1026, 168), (960, 840, 168)),
        (Canvas(1280, 720), (640, 684, 112), (640, 560, 112)),
        (Canvas(1080, 1920), (540, 1824, 106.4), (540, 1706.2, 106.4)),
    ],
)
def test_placement_table(canvas: Canvas, first: tuple[float, ...], second: tuple[float, ...]) -> None:
    a, b = place(canvas, [plan("A", "ja"), plan("B", "en")], FONTS)
    assert (a.x, a.y, a.box_height) == pytest.approx(first)
    assert (b.x, b.y, b.box_height) == pytest.approx(second)
    assert a.box_width == b.box_width == pytest.approx(canvas.width * 0.9)
    assert (a.font, b.font) == ("Noto Sans CJK JP", "DejaVu Sans")


@pytest.mark.parametrize("canvas", CANVASES, ids=str)
@pytest.mark.parametrize("columns", [16, 42, 60])
@pytest.mark.parametrize(
    "text",
    [
        "The quick brown fox jumps over the lazy dog while the stream goes on and on without end",
        "今日はとても良い天気ですね。配信を見てくれてありがとうございます。また明日も会いましょう。",
        "Mixed 日本語 and English テキスト in one caption that runs long enough to wrap twice over",
    ],
)
def test_lines_the_layout_wraps_fit_the_box_at_the_chosen_size(canvas: Canvas, columns: int, text: str) -> None:
    (p,) = place(canvas, [plan("A", columns=columns)], FONTS)
    for line in wrap(text, columns):
        assert display_width(line) * COLUMN_EM * p.size <= p.box_width


def test_top_position_stacks_down_from_the_top_and_xy_leaves_the_stack() -> None:
    canvas = Canvas(1920, 1080)
    a, b, c, d = place(
        canvas,
        [plan("A", position="top"), plan("B"), plan("C", position="top"), plan("D", x=300, y=200)],
        FONTS,
    )
    assert (a.alignment, a.y) == (ALIGN_TOP, 54)
    assert (c.alignment, c.y) == (ALIGN_TOP, pytest.approx(54 + 168 + 18))
    assert (b.alignment, b.y) == (ALIGN_BOTTOM, 1026)  # the bottom stack is not pushed by the top one
    assert (d.x, d.y, d.alignment) == (300, 200, ALIGN_BOTTOM)
    assert a.box()[1] == 54 and c.box()[1] > a.box()[3]


def test_style_overrides_size_font_colour_and_outline() -> None:
    (p,) = place(
        Canvas(1920, 1080), [plan("A", "ja", size=72, font="IPAGothic", color="#ff8000", outline=False)], FONTS
    )
    assert (p.size, p.font, p.color, p.outline) == (72, "IPAGothic", "#FF8000", False)
    assert p.box_height == pytest.approx(2 * 72 * 1.4)
    ft2 = p.input_settings("text_ft2_source_v2")
    assert ft2["font"] == {"face": "IPAGothic", "size": 72, "style": "Regular", "flags": 0}
    assert ft2["color1"] == ft2["color2"] == 0xFF0080FF  # OBS colours are ABGR
    assert ft2["outline"] is False
    gdi = p.input_settings("text_gdiplus_v3")
    assert (gdi["color"], gdi["align"], gdi["valign"]) == (0x0080FF, "center", "bottom")


def test_default_look_is_white_with_an_outline_and_the_transform_uses_max_only_bounds() -> None:
    (p,) = place(Canvas(1280, 720), [plan("A", "zh")], FONTS)
    assert p.input_settings("text_ft2_source_v2") == {
        "font": {"face": "Noto Sans CJK SC", "size": 40, "style": "Regular", "flags": 0},
        "color1": 0xFFFFFFFF,
        "color2": 0xFFFFFFFF,
        "outline": True,
        "word_wrap": False,
    }
    t = p.transform()
    assert (t["positionX"], t["positionY"], t["alignment"], t["boundsAlignment"]) == (640, 684, ALIGN_BOTTOM, 8)
    assert (t["boundsType"], t["boundsWidth"], t["boundsHeight"]) == ("OBS_BOUNDS_MAX_ONLY", 1152, 112)


def test_a_language_without_a_found_font_falls_back_to_sans_serif() -> None:
    (p,) = place(Canvas(1280, 720), [plan("A", "th")], FONTS)
    assert p.font == "Sans Serif"


@pytest.mark.parametrize(
    ("languages", "needed"),
    [(["en"], "en"), (["en", "ja"], "ja"), (["ko", "en"], "ko"), (["fr", "th"], "th"), (["zh", "th"], "zh")],
)
def test_the_script_that_decides_the_font(languages: list[str], needed: str) -> None:
    assert needed_language(languages) == needed


@pytest.mark.parametrize(
    ("language", "platform", "family"),
    [
        ("ja", "windows", "Yu Gothic UI"),
        ("zh", "macos", "PingFang SC"),
        ("ko", "linux", "Noto Sans CJK KR"),
        ("en", "windows", "Segoe UI"),
        ("fr", "macos", "Helvetica Neue"),
        ("ja", "plan9", "Noto Sans CJK JP"),
    ],
)
def test_known_families(language: str, platform: str, family: str) -> None:
    assert known_family(language, platform) == family


@pytest.mark.parametrize(("language", "lang"), [("ja", "ja"), ("zh", "zh-cn"), ("yue", "zh-hk"), ("EN", "en")])
def test_fontconfig_lang(language: str, lang: str) -> None:
    assert fontconfig_lang(language) == lang


# ---- the config ----------------------------------------------------------------------------------------------------


def config(outputs: list[dict[str, Any]], **translator: Any) -> Any:
    tr = {"api_key": "k", "targets": ["zh", "ja"], "transcribe_source": True, **translator}
    return parse(base(translator=tr, layout={"max_width": 30}, outputs=outputs), ENV)


def test_plans_follow_the_outputs_their_layout_and_languages() -> None:
    cfg = config(
        [
            {"obs_source": "JA", "language": "ja", "style": {"size": 50}, "restyle": True},
            {"obs_source": "SRC", "language": "source"},
            {"obs_source": "BI", "language": "zh", "with_source": True, "layout": {"max_lines": 3}},
        ],
        source_language="en",
    )
    got = [(p.name, p.language, p.columns, p.lines, p.style.size, p.restyle) for p in plans(cfg)]
    assert got == [("JA", "ja", 30, 2, 50, True), ("SRC", "en", 30, 2, None, False), ("BI", "zh", 30, 6, None, False)]


def test_source_speech_of_unknown_language_gets_a_cjk_font() -> None:
    model = "qwen3.5-livetranslate-flash-realtime"  # the family that detects the spoken language
    cfg = config([{"obs_source": "SRC", "language": "source"}], source_language=None, model=model)
    assert plans(cfg)[0].language == "ja"


def test_a_source_output_gets_a_font_for_what_each_of_its_inputs_speaks() -> None:
    inputs = [
        {"name": "Host", "device": "mic", "source_language": "en"},
        {"name": "Guest", "device": "call", "source_language": "ja"},
    ]
    outputs = [
        {"obs_source": "ALL", "language": "source"},
        {"obs_source": "HOST", "language": "source", "inputs": ["Host"]},
        {"obs_source": "BI", "language": "de", "with_source": True, "inputs": ["Guest"]},
    ]
    tr = {"api_key": "k", "targets": ["de"], "transcribe_source": True, "source_language": "en"}
    cfg = parse(base(translator=tr, inputs=inputs, outputs=outputs), ENV)
    assert [(p.name, p.language) for p in plans(cfg)] == [("ALL", "ja"), ("HOST", "en"), ("BI", "ja")]


@pytest.mark.parametrize(
    ("style", "key", "message"),
    [
        ({"x": 10}, "outputs[0].style", "x and y go together"),
        ({"color": "white"}, "outputs[0].style.color", "#RRGGBB"),
        ({"position": "middle"}, "outputs[0].style.position", "bottom"),
        ({"size": 2}, "outputs[0].style.size", "6"),
        ({"colour": "#FFFFFF"}, "outputs[0].style.colour", ""),
    ],
)
def test_bad_style_names_its_key(style: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        config([{"obs_source": "A", "language": "ja", "style": style}])
    assert e.value.key == key and message in str(e.value)
