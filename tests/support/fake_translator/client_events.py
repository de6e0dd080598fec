"""Client events of the fake: session.update, audio and image appends, finish, commit and clear."""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import time
from typing import Any

from tests.support.fake_translator.generation import FRAME_MS
from tests.support.fake_translator.q38 import Q38Generation
from tests.support.fake_translator.q38_session import clone_problem, clone_voice_ok, defaults_q38, validate_q38
from tests.support.fake_translator.records import Conn, ImageRecord
from tests.support.fake_translator.session import Glossary, defaults, validate
from tests.support.fake_translator.vendor import (
    CLONE_PREFIX,
    IMAGE_MAX_BYTES,
    IMAGE_MAX_SIDES,
    IMAGE_RATE_MAX,
    IMAGE_RATE_WINDOW_S,
    Q38_OMITTED_VOICE,
    VOICES,
    image_tokens,
    jpeg_dimensions,
    new_id,
)


class ClientEvents(Q38Generation):
    """Answers each client event as the service does, feeding audio to the segment generation."""

    async def _on_text(self, c: Conn, data: str) -> None:
        try:
            ev = json.loads(data)
            if not isinstance(ev, dict):
                raise ValueError("not an object")
        except ValueError:
            self._log_client(c, "<invalid-json>")
            await self._error(c, "invalid_json", "Failed to parse client event as JSON object.", "")
            return
        etype = str(ev.get("type", ""))
        self._log_client(c, etype)
        q35 = c.rec.family == "q3.5"
        if etype == "session.update":
            await self._on_update(c, ev.get("session"))
        elif etype == "input_audio_buffer.append":
            await self._on_append(c, ev.get("audio"))
        elif etype == "input_image_buffer.append":
            await self._on_image(c, ev.get("image"))
        elif etype == "session.finish":
            with self._lock:
                c.rec.finished = True
            if self.finish_delay_s:
                await asyncio.sleep(self.finish_delay_s)
            if c.manual:
                # Manual mode: only committed audio is the client's input; what it never committed is dropped
                # (the docs say finish completes pending work, and uncommitted audio is none) [INF].
                c.seg, c.uncommitted = None, False
            elif not self.stall:
                await self._end_segment(c)
            await self._send(c, {"type": "session.finished"})
        elif etype == "input_audio_buffer.commit" and q35 and c.manual:
            if not c.uncommitted:
                await self._error(c, "invalid_value", "Error committing input audio buffer: empty.", "")
                return
            c.uncommitted = False
            seg = c.seg if c.seg is not None and c.seg.confirmed else None
            item_id = seg.src_item if seg is not None else new_id("item")
            await self._send(
                c, {"type": "input_audio_buffer.committed", "previous_item_id": c.last_item, "item_id": item_id}
            )
            with self._lock:
                c.rec.commits += 1
            if seg is not None:
                # The user's audio item (§5, manual mode), after the item before it.
                user_item = {"id": item_id, "type": "message", "role": "user", "content": [{"type": "input_audio"}]}
                await self._send(
                    c, {"type": "conversation.item.created", "previous_item_id": c.last_item, "item": user_item}
                )
                c.last_item = seg.out_item
            await self._end_segment(c)
        elif etype == "input_audio_buffer.clear" and q35 and c.manual:
            c.buf.clear()
            c.uncommitted = False
            with self._lock:
                c.rec.clears += 1
            if c.seg is not None and not c.seg.opened:
                c.seg = None
            await self._send(c, {"type": "input_audio_buffer.cleared"})
        else:
            # Covers Q3 commit/clear too: Q3 answered "Invalid value: 'input_audio_buffer.commit'" (§4.4).
            await self._error(c, "invalid_value", f"Invalid value: '{etype}'", "type")

    async def _on_update(self, c: Conn, upd: Any) -> None:
        with self._lock:
            c.rec.session_update = copy.deepcopy(upd) if isinstance(upd, dict) else None
        if not isinstance(upd, dict):
            await self._error(c, "invalid_value", "Missing or invalid 'session' object.", "session")
            return
        family = c.rec.family
        q38 = family == "q3.8"
        # Merge onto the defaults, not onto the previous update: the service does not merge (§4.1).
        eff = defaults_q38(c.rec.model, self.silence_ms) if q38 else defaults(family, c.rec.model, self.silence_ms)
        eff["id"] = c.session["id"]
        for k, v in upd.items():
            if k in ("id", "object", "model"):
                continue
            eff[k] = {**eff[k], **v} if isinstance(v, dict) and isinstance(eff.get(k), dict) else v
        if self.refuse_updates is not None:
            await self._error(c, self.refuse_updates[0], self.refuse_updates[1], "")
            return
        if q38:
            problem = validate_q38(upd, eff, self.mixed_layout, self.reject_audio_for_text_only_targets)
        else:
            problem = validate(family, upd, eff, self.reject_audio_for_text_only_targets)
        if problem is None and family != "q3":
            problem = clone_problem(upd, upd.get("voice", eff.get("voice")))
        if problem is not None:
            await self._error(c, "invalid_value", problem[0], problem[1])
            return
        # Q3.8 without a voice fell back on one it does not have, even text-only (observed, 3.8 digest §2.1).
        voice = upd.get("voice", Q38_OMITTED_VOICE) if q38 else eff.get("voice")
        known = isinstance(voice, str) and (voice in VOICES[family] or voice.startswith(CLONE_PREFIX))
        if not known and not (family != "q3" and clone_voice_ok(upd, voice)):
            await self._server_close(c, 1011, f"InternalError.Algo.InvalidParameter: Voice '{voice}' is not supported.")
            return
        c.session = eff
        td = eff.get("turn_detection")
        c.manual = family == "q3.5" and td is None
        c.silence_ms = self.silence_ms
        if family == "q3.5" and isinstance(td, dict):
            c.silence_ms = td["silence_duration_ms"]
        c.frame_bytes = int(eff.get("sample_rate", 16000)) * FRAME_MS // 1000 * 2
        # Q3.5 and Q3.8 document the corpus (§4.1); on Q3 the fake accepts and ignores it.
        corpus = upd["translation"].get("corpus") or {}
        phrases: dict[str, str] = dict(corpus["phrases"]) if corpus and family != "q3" else {}
        c.glossary = Glossary.of(phrases) if phrases else None
        with self._lock:
            c.rec.session = copy.deepcopy(eff)
            c.rec.phrases = phrases
        if not self.stall:
            echo = {**copy.deepcopy(eff), **self.echo_override}
            await self._send(c, {"type": "session.updated", "session": echo})
            c.updated_sent = not c.closing

    async def _on_append(self, c: Conn, audio: Any) -> None:
        try:
            if not isinstance(audio, str):
                raise ValueError("missing audio")
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            await self._error(c, "invalid_value", "Invalid base64 audio data.", "audio")
            return
        if len(pcm) % 2:
            # PCM16 is two bytes a sample (§4.2): half a sample is not audio.
            await self._error(c, "invalid_value", "Invalid audio data: PCM16 needs an even number of bytes.", "audio")
            return
        with self._lock:
            c.rec.audio_bytes += len(pcm)
            if not c.updated_sent:
                c.rec.audio_before_update_bytes += len(pcm)
        c.any_audio = c.uncommitted = True
        if self.stall:
            return  # swallow audio without consuming script lines
        c.buf.extend(pcm)
        while len(c.buf) >= c.frame_bytes and not c.closing:
            frame = bytes(c.buf[: c.frame_bytes])
            del c.buf[: c.frame_bytes]
            await self._frame(c, frame)

    async def _on_image(self, c: Conn, image: Any) -> None:
        """§4.3: audio first, JPEG only, <= 500 KB raw, <= 1080p, <= 2 per second; the wording of all but the
        first error is not documented [INF]."""
        now = time.monotonic()
        problem: str | None = None
        data, size = b"", None
        if not c.any_audio:
            problem = "Error append image before append audio."
        else:
            try:
                data = base64.b64decode(image if isinstance(image, str) else "", validate=True)
            except (binascii.Error, ValueError):
                data = b""
            size = jpeg_dimensions(data)
            recent = [i for i in c.rec.images if now - i.at < IMAGE_RATE_WINDOW_S]
            if size is None:
                problem = "Invalid image: only JPG/JPEG images are supported."
            elif len(data) > IMAGE_MAX_BYTES:
                problem = f"Image too large: {len(data)} bytes; at most {IMAGE_MAX_BYTES} bytes are allowed."
            elif max(size) > IMAGE_MAX_SIDES[0] or min(size) > IMAGE_MAX_SIDES[1]:
                problem = f"Image resolution {size[0]}x{size[1]} exceeds 1080p."
            elif len(recent) >= IMAGE_RATE_MAX:
                problem = f"Too many images: at most {IMAGE_RATE_MAX} per second."
        if problem is not None or size is None:
            with self._lock:
                c.rec.images_rejected.append(problem or "")
            await self._error(c, "invalid_value", problem or "", "image" if c.any_audio else "")
            return
        tokens = image_tokens(c.rec.family, *size)
        c.image_tokens += tokens
        record = ImageRecord(now, len(data), size[0], size[1], c.rec.audio_bytes, tokens, data)
        with self._lock:
            c.rec.images.append(record)
