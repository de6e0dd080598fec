"""Pure: where the caption sources captioner creates sit on OBS's canvas, how big, and in which font."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config import SOURCE, Config, StyleConfig

# Scene item alignment bits (obs-websocket's `alignment`, libobs OBS_ALIGN_*): centre is 0.
ALIGN_TOP = 4
ALIGN_BOTTOM = 8
# Title-safe area: text stays inside the middle 90 % of the width and 5 % of the height away from the edge.
SAFE_WIDTH = 0.9
EDGE_MARGIN = 0.05
# Font size as a share of the canvas height: 60 px at 1080p, readable on a phone, not a banner.
SIZE_PER_HEIGHT = 1 / 18
# One display column (a Latin letter; a CJK character takes two) at most this many font sizes wide. Measured with
# OBS 29's FreeType source: Noto Sans CJK's Latin 0.5, its CJK 1.0 per character (0.5 a column); DejaVu is wider.
COLUMN_EM = 0.6
# One line of text is this many font sizes high (measured: 1.22-1.35 in OBS 29's FreeType source).
LINE_EM = 1.4
# Space between two stacked outputs, in font sizes.
GAP_EM = 0.3

# Where fontconfig is not asked: a family per language known to carry its glyphs, by platform.
_WINDOWS = {"ja": "Yu Gothic UI", "zh": "Microsoft YaHei", "yue": "Microsoft JhengHei", "ko": "Malgun Gothic"}
_WINDOWS |= {"th": "Leelawadee UI", "hi": "Nirmala UI", "ar": "Segoe UI", "he": "Segoe UI"}
_MACOS = {"ja": "Hiragino Sans", "zh": "PingFang SC", "yue": "PingFang HK", "ko": "Apple SD Gothic Neo"}
_MACOS |= {"th": "Thonburi", "hi": "Kohinoor Devanagari", "ar": "Geeza Pro", "he": "Arial Hebrew"}
KNOWN_FAMILIES: dict[str, tuple[dict[str, str], str]] = {
    "windows": (_WINDOWS, "Segoe UI"),
    "macos": (_MACOS, "Helvetica Neue"),
    "linux": ({"ja": "Noto Sans CJK JP", "zh": "Noto Sans CJK SC", "ko": "Noto Sans CJK KR"}, "DejaVu Sans"),
}
# Languages whose script is not Latin, Greek or Cyrillic: the font a caption needs is decided by them.
_CJK = ("zh", "yue", "ja", "ko")
_OTHER_SCRIPTS = ("th", "hi", "ar", "he")
# Translator language codes as fontconfig's `lang` names them.
_FONTCONFIG_LANG = {"zh": "zh-cn", "yue": "zh-hk"}


_DEFAULT_STYLE = StyleConfig()


@dataclass(frozen=True)
class Canvas:
    """OBS's base (canvas) resolution, from GetVideoSettings."""

    width: int
    height: int


@dataclass(frozen=True)
class SourcePlan:
    """One output's text source as the config describes it: what placing and styling it needs."""

    name: str
    # The language whose glyphs its font must have (see `font_language`).
    language: str
    # The layout it is written with: display columns per line, and lines it may show at once.
    columns: int
    lines: int
    style: StyleConfig = _DEFAULT_STYLE
    restyle: bool = False


@dataclass(frozen=True)
class Placement:
    """Where one source sits (its bounding box, anchored at x, y) and how it looks."""

    name: str
    x: float
    y: float
    alignment: int  # ALIGN_BOTTOM: (x, y) is the box's bottom-centre; ALIGN_TOP: its top-centre
    box_width: float
    box_height: float
    font: str
    size: int
    color: str  # #RRGGBB
    outline: bool

    def box(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) in canvas pixels: the text never leaves it."""
        top = self.y - self.box_height if self.alignment == ALIGN_BOTTOM else self.y
        return (self.x - self.box_width / 2, top, self.x + self.box_width / 2, top + self.box_height)

    def transform(self) -> dict[str, Any]:
        """SetSceneItemTransform's sceneItemTransform.

        The scene item's bounds, not the text source's own width, keep it inside the box: OBS 29's FreeType source
        has no line alignment, so its block is centred as a whole and grows from the anchored edge; "max only"
        bounds shrink a line wider than expected instead of letting it run off screen or over the next output.
        """
        return {
            "positionX": self.x,
            "positionY": self.y,
            "alignment": self.alignment,
            "boundsType": "OBS_BOUNDS_MAX_ONLY",
            "boundsAlignment": self.alignment,
            "boundsWidth": self.box_width,
            "boundsHeight": self.box_height,
            "scaleX": 1.0,
            "scaleY": 1.0,
            "rotation": 0.0,
        }

    def input_settings(self, kind: str) -> dict[str, Any]:
        """The text input's settings for this look, for `kind` (FreeType 2 or GDI+)."""
        rgb = int(self.color[1:], 16)
        bgr = (rgb & 0xFF) << 16 | (rgb & 0xFF00) | rgb >> 16  # OBS colours are 0x(AA)BBGGRR
        font = {"face": self.font, "size": self.size, "style": "Regular", "flags": 0}
        if kind.startswith("text_gdiplus"):
            return {
                "font": font,
                "color": bgr,
                "outline": self.outline,
                "outline_size": max(2, self.size // 16),
                "outline_color": 0,
                "align": "center",
                "valign": "bottom" if self.alignment == ALIGN_BOTTOM else "top",
            }
        # FreeType 2: color1/color2 are the gradient's ends; both the same colour, fully opaque.
        colour = 0xFF000000 | bgr
        # Our own layout wraps the lines (see place()); OBS's word wrap would need a fixed width that left-aligns.
        return {"font": font, "color1": colour, "color2": colour, "outline": self.outline, "word_wrap": False}


def font_language(language: str, source_language: str | None) -> str:
    """The language whose glyphs a source showing `language` (or the source speech) needs.

    An unknown spoken language ("source" with auto-detect) gets a CJK font: it also covers Latin and Cyrillic.
    """
    if language == SOURCE:
        return source_language or "ja"
    return language


def needed_language(languages: Sequence[str]) -> str:
    """Of the languages one source shows (bilingual: source and translation), the one whose script decides the font."""
    for group in (_CJK, _OTHER_SCRIPTS):
        for lang in languages:
            if lang.split("-")[0] in group:
                return lang
    return languages[0]


def fontconfig_lang(language: str) -> str:
    base = language.split("-")[0].lower()
    return _FONTCONFIG_LANG.get(base, base)


def known_family(language: str, platform: str) -> str:
    """A family known to carry `language`'s glyphs on `platform` ("windows", "macos", "linux")."""
    table, default = KNOWN_FAMILIES.get(platform, KNOWN_FAMILIES["linux"])
    return table.get(language.split("-")[0].lower(), default)


def plans(cfg: Config) -> list[SourcePlan]:
    """Each OBS output's source, in the order of `outputs` (the config refuses a source named twice)."""
    out: list[SourcePlan] = []
    for o in cfg.obs_outputs:
        layout = cfg.layout_for(o)
        # What is spoken on the inputs this output shows (each input may speak its own language).
        spoken = [cfg.input_translator(i).source_language for i in cfg.input_list() if o.takes(i.name)]
        shown = [font_language(o.language, s) for s in spoken or [cfg.translator.source_language]]
        if o.with_source:
            shown += [font_language(SOURCE, s) for s in spoken or [cfg.translator.source_language]]
        language = needed_language(shown)
        lanes = 2 if o.with_source else 1  # bilingual: the source sentences' lines above the translation's
        out.append(SourcePlan(o.obs_source, language, layout.max_width, layout.max_lines * lanes, o.style, o.restyle))
    return out


def as_plans(sources: Sequence[SourcePlan | str]) -> list[SourcePlan]:
    """Plans as given; a bare name is a source with the default layout and style."""
    return [SourcePlan(s, "en", 42, 2) if isinstance(s, str) else s for s in sources]


def auto_size(canvas: Canvas, columns: int) -> int:
    """The font size for a canvas: its height / 18, smaller when `columns` would not fit the safe width."""
    fits = canvas.width * SAFE_WIDTH / (columns * COLUMN_EM)
    return max(6, int(min(canvas.height * SIZE_PER_HEIGHT, fits)))


def place(canvas: Canvas, sources: Sequence[SourcePlan], fonts: Mapping[str, str]) -> list[Placement]:
    """Every source's placement: stacked from the bottom (or top) edge, the first output nearest the edge.

    `fonts` maps a language to the family found for it; a source's style.font wins over it.
    """
    placed: list[Placement] = []
    # How far from the canvas edge the next output of each stack starts.
    edge = {"bottom": canvas.height * EDGE_MARGIN, "top": canvas.height * EDGE_MARGIN}
    width = canvas.width * SAFE_WIDTH
    for plan in sources:
        style = plan.style
        size = style.size or auto_size(canvas, plan.columns)
        height = plan.lines * size * LINE_EM
        alignment = ALIGN_TOP if style.position == "top" else ALIGN_BOTTOM
        if style.x is not None and style.y is not None:
            x, y = float(style.x), float(style.y)
        else:
            offset = edge[style.position]
            edge[style.position] = offset + height + size * GAP_EM
            x = canvas.width / 2
            y = canvas.height - offset if alignment == ALIGN_BOTTOM else offset
        font = style.font or fonts.get(plan.language, "Sans Serif")
        placed.append(Placement(plan.name, x, y, alignment, width, height, font, size, style.color, style.outline))
    return placed
