"""Local fake of the Qwen LiveTranslate realtime WebSocket API (see docs/translator-protocol.md).

vendor: the service's tables and limits; session: session defaults, session.update validation, glossary; records: what
is recorded per connection; wire, generation, client_events and server: the aiohttp server, built up in that order.
"""

from tests.support.fake_translator.generation import (
    FRAME_MS,
    MIN_SPEECH_FRAMES,
    OUT_BYTES_PER_MS,
    STEP_FRAMES,
    TONE_AMPLITUDE,
    WRONG_WORD,
    tone_hz,
)
from tests.support.fake_translator.records import ConnectionRecord, ImageRecord
from tests.support.fake_translator.server import FakeTranslator
from tests.support.fake_translator.vendor import (
    ASR_MODEL,
    AUDIO_LANGUAGES,
    AUDIO_TOKENS_PER_S,
    CLONE_PREFIX,
    HTTP_ERROR_CODES,
    IMAGE_MAX_BYTES,
    IMAGE_MAX_SIDES,
    IMAGE_RATE_MAX,
    IMAGE_RATE_WINDOW_S,
    IMAGE_TILE_PX,
    LANGUAGES,
    MODELS,
    PATH,
    Q3_MODEL,
    Q35_MODEL,
    Q38_MODEL,
    RATE_LIMIT_REASON,
    VOICES,
    image_tokens,
    jpeg_dimensions,
)

__all__ = [
    "ASR_MODEL",
    "AUDIO_LANGUAGES",
    "AUDIO_TOKENS_PER_S",
    "CLONE_PREFIX",
    "FRAME_MS",
    "HTTP_ERROR_CODES",
    "IMAGE_MAX_BYTES",
    "IMAGE_MAX_SIDES",
    "IMAGE_RATE_MAX",
    "IMAGE_RATE_WINDOW_S",
    "IMAGE_TILE_PX",
    "LANGUAGES",
    "MIN_SPEECH_FRAMES",
    "MODELS",
    "OUT_BYTES_PER_MS",
    "PATH",
    "Q3_MODEL",
    "Q35_MODEL",
    "Q38_MODEL",
    "RATE_LIMIT_REASON",
    "STEP_FRAMES",
    "TONE_AMPLITUDE",
    "VOICES",
    "WRONG_WORD",
    "ConnectionRecord",
    "FakeTranslator",
    "ImageRecord",
    "image_tokens",
    "jpeg_dimensions",
    "tone_hz",
]
