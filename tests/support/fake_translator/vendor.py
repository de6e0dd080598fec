"""The vendor's tables and limits for the fake Qwen LiveTranslate service: models, languages, voices, image rules,
token rates and error codes (docs/translator-protocol.md, section numbers in comments). Pure: no I/O, no state."""

from __future__ import annotations

import math
import uuid

PATH = "/api-ws/v1/realtime"
Q3_MODEL = "qwen3-livetranslate-flash-realtime"
Q35_MODEL = "qwen3.5-livetranslate-flash-realtime"
Q38_MODEL = "qwen3.8-livetranslate-flash-realtime"
MODELS = {
    Q3_MODEL: "q3",
    Q3_MODEL + "-2025-09-22": "q3",
    Q35_MODEL: "q3.5",
    Q35_MODEL + "-2026-05-19": "q3.5",
    Q38_MODEL: "q3.8",  # no dated snapshot id is published in the 3.8 digest
}
ASR_MODEL = "qwen3-asr-flash-realtime"
RATE_LIMIT_REASON = "Requests rate limit exceeded, please try again later."


def _codes(words: str) -> frozenset[str]:
    return frozenset(words.split())


# §9 language tables: every valid target, and the subset that can also output audio.
_Q3_AUDIO = _codes("en zh ru fr de pt es it ko ja yue")
_Q35_AUDIO = _codes("zh en ar de fr es pt id it ko ru th vi ja tr hi ms nl ur nb sv da he fi pl is cs fil fa")
LANGUAGES = {
    "q3": _Q3_AUDIO | _codes("id vi th ar hi el tr"),
    "q3.5": _Q35_AUDIO
    | _codes("yue el af ast be bg bn bs ca ceb et gl gu hr hu jv kk kn ky lv mk ml mr pa ro sk sl sw tg az uk"),
}
LANGUAGES["q3.8"] = LANGUAGES["q3.5"]  # 3.8 digest §7: the same 60, 29 with audio
AUDIO_LANGUAGES = {"q3": _Q3_AUDIO, "q3.5": _Q35_AUDIO, "q3.8": _Q35_AUDIO}
AUDIO_TOKENS_PER_S = {"q3": 12.5, "q3.5": 7.0, "q3.8": 7.0}  # §8; 3.8 digest §4
# §8: 0.5 token per 28x28 px (Q3) or 32x32 px (Q3.5). How partial tiles round is not documented; the fake
# bills every started tile [INF].
IMAGE_TILE_PX = {"q3": 28, "q3.5": 32, "q3.8": 32}
# §4.3 limits, enforced with an `error` each: JPEG only, <= 500 KB before base64, <= 1080p, <= 2 per second.
IMAGE_MAX_BYTES = 500 * 1024
IMAGE_MAX_SIDES = (1920, 1080)  # long side, short side
IMAGE_RATE_MAX = 2
IMAGE_RATE_WINDOW_S = 1.0
HTTP_ERROR_CODES = {
    401: "InvalidApiKey",
    403: "AccessDenied",
    404: "ModelNotFound",
    429: "Throttling.RateQuota",
    503: "ServiceUnavailable",
}

# §9: Q3's voices are listed in full. Q3.5's guide links the Omni list, which nobody has read: the fake knows the
# names seen on Q3.5 and the pre-created clone ids, and refuses the rest as the service did for an unknown voice
# (observed on Q3.8, close 1011, §7).
VOICES = {
    "q3": frozenset({"Cherry", "Nofish", "Jada", "Dylan", "Sunny", "Peter", "Kiki", "Eric", "Ethan"}),
    "q3.5": frozenset({"Tina", "Cindy", "Liora Mira", "Sunnybobi", "Raymond", "Ethan", "Theo Calm"}),
}
VOICES["q3.8"] = VOICES["q3.5"]
CLONE_PREFIX = "qwen-translate-vc-"
# 3.8 digest §5 (identical on Q3.5): with once/always the voice must be "default"; never takes a pre-created id.
CLONE_VOICE = "default"
CLONE_FREQUENCIES = ("never", "once", "always")
# Voice omitted on Q3.8: the service fell back on a voice it does not have (observed, 3.8 digest §2.1).
Q38_OMITTED_VOICE = "Chelsie"


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def image_tokens(family: str, width: int, height: int) -> int:
    """What the fake bills for one image (§8)."""
    tile = IMAGE_TILE_PX[family]
    return math.ceil(math.ceil(width / tile) * math.ceil(height / tile) / 2)


def jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a baseline/progressive JPEG from its SOFn segment; None if it is not a JPEG."""
    if not data.startswith(b"\xff\xd8\xff"):
        return None
    pos = 2
    while pos + 9 <= len(data):
        if data[pos] != 0xFF:
            return None
        kind = data[pos + 1]
        if kind in (0xFF, 0x01) or 0xD0 <= kind <= 0xD7:
            pos += 1 if kind == 0xFF else 2
            continue
        size = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if kind in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = int.from_bytes(data[pos + 5 : pos + 7], "big"), int.from_bytes(data[pos + 7 : pos + 9], "big")
            return (w, h) if w and h else None
        if kind in (0xD9, 0xDA) or size < 2:
            return None
        pos += 2 + size
    return None
