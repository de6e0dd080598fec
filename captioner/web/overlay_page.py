"""The overlay page: the style parameters of its URL, checked, and its HTML filled in for one language."""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from . import assets

#: What a reconnecting EventSource waits; short, as a blank caption layer on stream is worse than a retry.
RETRY_MS: Final = 1000


# -- style parameters

CSS_COLOR_NAMES: Final = frozenset(
    """aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue blueviolet brown burlywood
    cadetblue chartreuse chocolate coral cornflowerblue cornsilk crimson cyan darkblue darkcyan darkgoldenrod darkgray
    darkgreen darkgrey darkkhaki darkmagenta darkolivegreen darkorange darkorchid darkred darksalmon darkseagreen
    darkslateblue darkslategray darkslategrey darkturquoise darkviolet deeppink deepskyblue dimgray dimgrey dodgerblue
    firebrick floralwhite forestgreen fuchsia gainsboro ghostwhite gold goldenrod gray green greenyellow grey honeydew
    hotpink indianred indigo ivory khaki lavender lavenderblush lawngreen lemonchiffon lightblue lightcoral lightcyan
    lightgoldenrodyellow lightgray lightgreen lightgrey lightpink lightsalmon lightseagreen lightskyblue
    lightslategray lightslategrey lightsteelblue lightyellow lime limegreen linen magenta maroon mediumaquamarine
    mediumblue mediumorchid mediumpurple mediumseagreen mediumslateblue mediumspringgreen mediumturquoise
    mediumvioletred midnightblue mintcream mistyrose moccasin navajowhite navy oldlace olive olivedrab orange
    orangered orchid palegoldenrod palegreen paleturquoise palevioletred papayawhip peachpuff peru pink plum
    powderblue purple rebeccapurple red rosybrown royalblue saddlebrown salmon sandybrown seagreen seashell sienna
    silver skyblue slateblue slategray slategrey snow springgreen steelblue tan teal thistle tomato turquoise violet
    wheat white whitesmoke yellow yellowgreen transparent""".split()
)
GENERIC_FONTS: Final = frozenset(
    "serif sans-serif monospace cursive fantasy system-ui ui-serif ui-sans-serif ui-monospace ui-rounded emoji "
    "math fangsong".split()
)
_HEX = re.compile(r"#?([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
_NUMBER = re.compile(r"[0-9]{1,4}(\.[0-9]{1,3})?")
# Letters (any script), digits, space, - _ . and commas between families: nothing that can leave a quoted CSS string.
_FONT = re.compile(r"[\w .\-]+(,[\w .\-]+)*")
_HTML_LANG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


class OverlayParamError(ValueError):
    """A query parameter of an overlay URL is missing or invalid; str() names the parameter."""


@dataclass(frozen=True)
class OverlayStyle:
    """How the page draws captions; every field is one query parameter of the overlay URL."""

    font: str = "sans-serif"  # CSS font-family list, families quoted unless generic
    size: float = 48  # font size, px
    color: str = "white"  # text colour
    outline: float = 3  # outline width, px (0 = none)
    outline_color: str = "black"
    bg: str = "transparent"  # box colour behind each caption
    lines: int = 2  # text lines visible at most; older ones scroll off the top
    align: str = "center"  # left | center | right
    clear: float = 6  # seconds without captions before fading out (0 = never)
    fade: float = 0.4  # fade in/out duration, seconds
    partials: bool = True  # show live partial text

    @classmethod
    def from_query(cls, query: Mapping[str, str], allowed: Iterable[str] | None = None) -> OverlayStyle:
        """Parse and validate; raises OverlayParamError naming the parameter."""
        known = set(allowed) if allowed is not None else {*STYLE_PARAMS, "lang"}
        for key in query:
            if key not in known:
                raise OverlayParamError(f"unknown parameter {key!r}; known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for key, parse in STYLE_PARAMS.items():
            raw = query.get(key)
            if raw is not None:
                values[key] = parse(key, raw.strip())
        return cls(**values)


def _number(lo: float, hi: float, integer: bool = False) -> Callable[[str, str], float]:
    def parse(key: str, raw: str) -> float:
        if _NUMBER.fullmatch(raw) and (not integer or "." not in raw) and lo <= float(raw) <= hi:
            return int(raw) if integer else float(raw)
        kind = "an integer" if integer else "a number"
        raise OverlayParamError(f"{key} must be {kind} from {lo:g} to {hi:g}, got {raw[:40]!r}")

    return parse


def _color(key: str, raw: str) -> str:
    if not raw:
        raise OverlayParamError(f"{key} is empty (write '#' as %23 in a URL, or leave the '#' out: {key}=ff0000)")
    if m := _HEX.fullmatch(raw):
        return "#" + m.group(1).lower()
    if raw.lower() in CSS_COLOR_NAMES:
        return raw.lower()
    raise OverlayParamError(f"{key} must be #rgb, #rrggbb, #rrggbbaa or a CSS colour name, got {raw[:40]!r}")


def _font(key: str, raw: str) -> str:
    if len(raw) > 100 or not _FONT.fullmatch(raw):
        raise OverlayParamError(f"{key} must be font family names (letters, digits, space - _ . ,), got {raw[:40]!r}")
    families = [f.strip() for f in raw.split(",") if f.strip()]
    if not families:
        raise OverlayParamError(f"{key} is empty")
    return ", ".join(f if f.lower() in GENERIC_FONTS else f'"{f}"' for f in families)


def _choice(*options: str) -> Callable[[str, str], str]:
    def parse(key: str, raw: str) -> str:
        if raw in options:
            return raw
        raise OverlayParamError(f"{key} must be one of {'|'.join(options)}, got {raw[:40]!r}")

    return parse


def _flag(key: str, raw: str) -> bool:
    if raw in ("1", "0"):
        return raw == "1"
    raise OverlayParamError(f"{key} must be 1 or 0, got {raw[:40]!r}")


STYLE_PARAMS: Final[dict[str, Callable[[str, str], Any]]] = {
    "font": _font,
    "size": _number(8, 200),
    "color": _color,
    "outline": _number(0, 20),
    "outline_color": _color,
    "bg": _color,
    "lines": _number(1, 10, integer=True),
    "align": _choice("left", "center", "right"),
    "clear": _number(0, 3600),
    "fade": _number(0, 10),
    "partials": _flag,
}


# -- the page

# static/overlay.html with its CSS and JS inlined: OBS's browser source gets everything in one response. The
# @@NAME@@ placeholders are filled per page (render_page); the CSS has one of its own, @@VARS@@.
_HTML: Final = assets.text("overlay.html")
_STYLE: Final = assets.inline("overlay.css")
_SCRIPT: Final = assets.inline("overlay.js")


def _shadow(width: float, color: str) -> str:
    """A ring of hard text-shadows: an outline every browser engine (also OBS's older CEF) draws the same."""
    if width <= 0:
        return "none"
    steps = 16 if width > 2 else 8
    rings = [
        f"{width * math.cos(2 * math.pi * i / steps):.2f}px {width * math.sin(2 * math.pi * i / steps):.2f}px 0 {color}"
        for i in range(steps)
    ]
    return ", ".join(rings)


def render_page(language: str, style: OverlayStyle, events_url: str) -> str:
    """The self-contained overlay page (inline CSS and JS, no external resources)."""
    css_vars = {
        "--font": style.font,
        "--size": f"{style.size:g}px",
        "--lh": f"{style.size * 1.3:.2f}px",
        "--color": style.color,
        "--shadow": _shadow(style.outline, style.outline_color),
        "--bg": style.bg,
        "--lines": str(style.lines),
        "--align": style.align,
        "--fade": f"{style.fade:g}s",
    }
    config = {
        "events": events_url,
        "lines": style.lines,
        "clear": style.clear,
        "fade": style.fade,
        "partials": style.partials,
        "retry_ms": RETRY_MS,
    }
    # The config sits inside <script>: escape what could end the element or open a comment.
    config_json = json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    lang_attr = f' lang="{language}"' if _HTML_LANG.fullmatch(language) else ""
    style_text = assets.fill(_STYLE, {"VARS": " ".join(f"{k}: {v};" for k, v in css_vars.items())})
    values = {
        "LANG": lang_attr,
        "TITLE": html.escape(f"captions: {language}"),
        "STYLE": style_text,
        "SCRIPT": _SCRIPT,
        "CONFIG": config_json,
    }
    return assets.fill(_HTML, values)
