"""What the fake records per connection (read by tests), and the per-connection state it keeps while serving."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.fake_translator.session import Glossary


@dataclass
class ImageRecord:
    """One `input_image_buffer.append` the fake accepted."""

    at: float  # time.monotonic() when it arrived
    size_bytes: int  # the JPEG before base64
    width: int
    height: int
    audio_bytes_before: int  # audio appended on this connection before it (the service demands some)
    tokens: int  # billed in response.done usage as input image tokens
    jpeg: bytes = field(repr=False)


@dataclass
class ConnectionRecord:
    """What one accepted WebSocket connection did; read it from tests."""

    model: str
    family: str
    headers: dict[str, str]
    session_update: dict[str, Any] | None = None  # `session` object of the last session.update
    session: dict[str, Any] = field(default_factory=dict)  # effective config
    client_event_types: list[str] = field(default_factory=list)
    server_event_types: list[str] = field(default_factory=list)
    audio_bytes: int = 0
    audio_before_update_bytes: int = 0
    translations: list[str] = field(default_factory=list)  # finals, in order
    tones: list[tuple[float, int]] = field(default_factory=list)  # voice of each final: (Hz, PCM bytes), in order
    phrases: dict[str, str] = field(default_factory=dict)  # translation.corpus.phrases in effect (Q3.5)
    finished: bool = False
    closed_by_client: bool = False
    server_close_code: int | None = None  # set when the fake closed it (knobs, rate limit)
    dropped: bool = False
    idle_closed: bool = False  # closed by the fake's idle timeout
    open: bool = True
    images: list[ImageRecord] = field(default_factory=list)  # accepted, in order
    images_rejected: list[str] = field(default_factory=list)  # the error message of each refused image
    commits: int = 0  # input_audio_buffer.commit accepted (manual mode)
    clears: int = 0  # input_audio_buffer.clear accepted (manual mode)
    speakers: list[int] = field(default_factory=list)  # Q3.8: the speaker_id of each final, in order
    skipped: list[str] = field(default_factory=list)  # sentences skipped as already in the target language


@dataclass
class Segment:
    start_frame: int
    frames: int = 0
    speech_frames: int = 0
    silence_run: int = 0
    last_speech_end: int = 0  # frame index just after the last speech frame
    confirmed: bool = False
    opened: bool = False
    open_frame: int = 0
    index: int = 0
    lang: str = "en"
    sentence: str = ""
    final: str = ""
    audio: bool = False
    asr_on: bool = False
    asr_lang: str = "en"
    src_item: str = ""
    resp_id: str = ""
    out_item: str = ""
    asr_snaps: list[str] = field(default_factory=list)
    tr_snaps: list[tuple[str, str]] = field(default_factory=list)
    asr_pos: int = 0
    tr_pos: int = 0
    audio_sent: int = 0
    tone_hz: float = 0.0
    speaker: int = 1  # Q3.8 speaker_id
    asr_deltas: list[str] = field(default_factory=list)  # Q3.8 append-only pieces
    tr_deltas: list[str] = field(default_factory=list)
    skipped: bool = False  # same-language skip (Q3.5)


@dataclass(eq=False)  # identity hashing: kept in a set of open connections
class Conn:
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    rec: ConnectionRecord
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: dict[str, Any] = field(default_factory=dict)
    updated_sent: bool = False
    silence_ms: int = 600
    manual: bool = False  # Q3.5 turn_detection null: segments end only on commit
    frame_bytes: int = 3200
    buf: bytearray = field(default_factory=bytearray)
    frame_idx: int = 0
    seg: Segment | None = None
    any_audio: bool = False
    uncommitted: bool = False
    last_item: str | None = None  # manual mode: the last item, which the next user item follows
    sent: int = 0
    close_after: tuple[int, int, str] | None = None
    closing: bool = False
    text_tokens: int = 0
    audio_out_bytes: int = 0
    voiced_segments: int = 0
    image_tokens: int = 0
    glossary: Glossary | None = None
    usage_reported: tuple[int, ...] = (0, 0, 0, 0)  # what the last usage said, for per-response reports
    last_response_at: float = field(default_factory=time.monotonic)
    last_item: str | None = None  # Q3.8: the previous utterance's item (a source item's previous_item_id)
