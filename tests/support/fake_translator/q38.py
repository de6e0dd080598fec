"""The fake's qwen3.8 events (3.8 digest §3) and the same-language skip (Q3.5, §6), on top of Generation.

Q3.8: speech_started carries the utterance's speaker_id (from the `speakers` knob, per utterance of a language),
the source and the translation item are created (the translation's previous_item_id = the source item), text comes
as append-only `.delta` strings, finals as `.completed` / `.done`, and response.done carries usage only if told to
(a recorded Q3.8 response.done had none).

Skip (Q3.5 translation.same_language_skip_options): an utterance spoken in the target language (the `spoken`
knob, else the session's source language, else en) is skipped for targets zh/en. The wire result is not documented;
`skip_reading` picks one: "no_response" (only the source events) or "empty" (a response without text or audio).
"""

from __future__ import annotations

import time
from typing import Any

from tests.support.fake_translator.generation import FRAME_MS, OUT_BYTES_PER_MS, Generation
from tests.support.fake_translator.records import Conn, Segment

SKIP_TARGETS = ("zh", "en")


def _pieces(text: str) -> list[str]:
    """Append-only deltas: word by word with their spaces, or four characters at a time without spaces."""
    if " " in text.strip():
        words = text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]
    return [text[i : i + 4] for i in range(0, len(text), 4)]


class Q38Generation(Generation):
    """Generation with the Q3.8 event flow and the Q3.5 same-language skip."""

    speakers: list[int]
    spoken: list[str]
    skip_reading: str
    q38_usage: bool

    def _confirm(self, c: Conn, seg: Segment) -> None:
        super()._confirm(c, seg)
        s = c.session
        if c.rec.family == "q3.8":
            seg.asr_on = True  # always on, cannot be disabled (3.8 digest §2.1)
            seg.speaker = self.speakers[seg.index] if seg.index < len(self.speakers) else 1
            seg.asr_deltas, seg.tr_deltas = _pieces(seg.sentence), _pieces(seg.final)
        options = s.get("translation", {}).get("same_language_skip_options") or {}
        spoken = self.spoken[seg.index] if seg.index < len(self.spoken) else seg.asr_lang
        target = s["translation"]["language"]
        if c.rec.family == "q3.5" and options.get("skip_text") and spoken == target and target in SKIP_TARGETS:
            seg.skipped = True
            seg.final, seg.tr_snaps = "", []
            seg.audio = seg.audio and not options.get("skip_audio")

    async def _open_segment(self, c: Conn, seg: Segment) -> None:
        if seg.skipped and self.skip_reading == "no_response":
            seg.opened, seg.open_frame = True, seg.frames
            await self._speech(c, seg, "input_audio_buffer.speech_started", audio_start_ms=seg.start_frame * FRAME_MS)
            await self._asr_step(c, seg)
            return
        if c.rec.family != "q3.8":
            await super()._open_segment(c, seg)
            return
        seg.opened, seg.open_frame = True, seg.frames
        speech = {"audio_start_ms": seg.start_frame * FRAME_MS, "speaker_id": seg.speaker}
        await self._speech(c, seg, "input_audio_buffer.speech_started", **speech)
        source = {"id": seg.src_item, "object": "realtime.item", "type": "message", "role": "assistant"}
        source |= {"status": "in_progress", "content": [{"type": "input_audio"}]}
        await self._send(c, {"type": "conversation.item.created", "previous_item_id": c.last_item, "item": source})
        c.last_item = seg.out_item
        await self._send(c, {"type": "response.created", "response": self._response(c, seg, "in_progress", [])})
        item = self._item(seg, "in_progress", [])
        added = {"type": "response.output_item.added", "response_id": seg.resp_id, "output_index": 0, "item": item}
        await self._send(c, added)
        await self._send(c, {"type": "conversation.item.created", "previous_item_id": seg.src_item, "item": item})
        await self._send(c, {"type": "response.content_part.added", **self._ids(seg), "part": self._part(seg, "")})
        await self._asr_step(c, seg)
        await self._tr_step(c, seg)

    async def _speech(self, c: Conn, seg: Segment, kind: str, **fields: Any) -> None:
        await self._send(c, {"type": kind, "item_id": seg.src_item, **fields})

    async def _asr_step(self, c: Conn, seg: Segment) -> None:
        if c.rec.family != "q3.8":
            await super()._asr_step(c, seg)
        elif seg.asr_pos < len(seg.asr_deltas):
            ev = {"item_id": seg.src_item, "content_index": 0, "delta": seg.asr_deltas[seg.asr_pos]}
            seg.asr_pos += 1
            # obfuscation: seen live on these events, meaningless to a client
            await self._send(c, {"type": "conversation.item.input_audio_transcription.delta", **ev, "obfuscation": "x"})

    async def _tr_step(self, c: Conn, seg: Segment) -> None:
        if c.rec.family != "q3.8":
            await super()._tr_step(c, seg)
        elif seg.tr_pos < len(seg.tr_deltas):
            kind = "response.audio_transcript.delta" if seg.audio else "response.text.delta"
            seg.tr_pos += 1
            await self._send(c, {"type": kind, **self._ids(seg), "delta": seg.tr_deltas[seg.tr_pos - 1]})

    async def _step(self, c: Conn, seg: Segment) -> None:
        if seg.skipped and self.skip_reading == "no_response":
            await self._asr_step(c, seg)
        else:
            await super()._step(c, seg)

    async def _end_segment(self, c: Conn) -> None:
        seg = c.seg
        if seg is None or not seg.confirmed or c.closing:
            c.seg = None
            return
        if seg.skipped:
            with self._lock:
                c.rec.skipped.append(seg.sentence)
        if seg.skipped and self.skip_reading == "no_response":
            c.seg = None
            if not seg.opened:
                await self._open_segment(c, seg)
            await self._speech(c, seg, "input_audio_buffer.speech_stopped", audio_end_ms=seg.last_speech_end * FRAME_MS)
            await self._asr_completed(c, seg)
            c.last_response_at = time.monotonic()
            return
        if c.rec.family != "q3.8":
            await super()._end_segment(c)
            return
        c.seg = None
        if not seg.opened:
            await self._open_segment(c, seg)
        while seg.asr_pos < len(seg.asr_deltas) or seg.tr_pos < len(seg.tr_deltas):
            await self._asr_step(c, seg)
            await self._tr_step(c, seg)
        await self._speech(c, seg, "input_audio_buffer.speech_stopped", audio_end_ms=seg.last_speech_end * FRAME_MS)
        await self._asr_completed(c, seg)
        await self._finish_response(c, seg)

    async def _asr_completed(self, c: Conn, seg: Segment) -> None:
        ev = {"item_id": seg.src_item, "content_index": 0, "transcript": seg.sentence}
        if c.rec.family == "q3.5":
            ev |= {"language": seg.asr_lang, "emotion": ""}
        await self._send(c, {"type": "conversation.item.input_audio_transcription.completed", **ev})

    async def _finish_response(self, c: Conn, seg: Segment) -> None:
        final = seg.final
        if seg.audio:
            end = max(seg.frames - seg.open_frame, 1) * FRAME_MS * OUT_BYTES_PER_MS
            await self._audio_delta(c, seg, max(end, seg.audio_sent + (seg.audio_sent % 2)))
            await self._send(c, {"type": "response.audio_transcript.done", **self._ids(seg), "transcript": final})
            await self._send(c, {"type": "response.audio.done", **self._ids(seg)})
        else:
            await self._send(c, {"type": "response.text.done", **self._ids(seg), "text": final})
        part = self._part(seg, final)
        await self._send(c, {"type": "response.content_part.done", **self._ids(seg), "part": part})
        item = self._item(seg, "completed", [part])
        await self._send(
            c, {"type": "response.output_item.done", "response_id": seg.resp_id, "output_index": 0, "item": item}
        )
        c.text_tokens += max(1, len(final) // 3)
        response = self._response(c, seg, "completed", [item])
        if self.q38_usage:
            response["usage"] = self._usage(c)
        await self._send(c, {"type": "response.done", "response": response})
        c.last_response_at = time.monotonic()
        if c.closing or self.stall:
            return
        with self._lock:
            c.rec.translations.append(final)
            c.rec.speakers.append(seg.speaker)
            if seg.audio:
                c.rec.tones.append((seg.tone_hz, seg.audio_sent))
            self._segments_emitted[seg.lang] = self._segments_emitted.get(seg.lang, 0) + 1

    def _response(self, c: Conn, seg: Segment, status: str, output: list[Any]) -> dict[str, Any]:
        if c.rec.family != "q3.8":
            return super()._response(c, seg, status, output)
        modalities = c.session["output_modalities"]
        response = {"id": seg.resp_id, "object": "realtime.response", "conversation_id": "", "status": status}
        return response | {"modalities": modalities, "output_audio_format": "pcm", "output": output}
