"""Per-connection speech segments of the fake: energy VAD over the audio sent, and the progressive recognition,
translation, voice and usage events of each segment's response."""

from __future__ import annotations

import base64
import time
from typing import Any

import numpy as np

from tests.support.fake_translator.records import Conn, Segment
from tests.support.fake_translator.vendor import ASR_MODEL, AUDIO_TOKENS_PER_S, new_id
from tests.support.fake_translator.wire import Wire

FRAME_MS = 100
MIN_SPEECH_FRAMES = 2  # segments with < 200 ms of speech are noise
STEP_FRAMES = 3  # one progressive snapshot per 300 ms of segment
WRONG_WORD = "um"  # provisional translation word that the next snapshot retracts
OUT_BYTES_PER_MS = 48  # PCM16 mono 24 kHz
# The voice of segment k of a connection is a tone of 500 + 150 * k Hz at 0.3 FS, so a recording of what was
# played tells the segments apart; the step wraps before the frequencies crowd the 12 kHz Nyquist limit.
TONE_AMPLITUDE = 0.3
_TONE_STEPS = 40


def tone_hz(k: int) -> float:
    """The frequency of the voice tone of segment k (0-based) of one connection."""
    return 500.0 + 150.0 * (k % _TONE_STEPS)


def tone_pcm(hz: float, start: int, end: int) -> bytes:
    """Bytes [start, end) of an endless 24 kHz PCM16 tone, so deltas may split samples (odd lengths)."""
    first = start // 2
    n = (end + 1) // 2 - first
    t = np.arange(first, first + n)
    pcm = (np.sin(2 * np.pi * hz * t / 24000) * TONE_AMPLITUDE * 32767).astype("<i2").tobytes()
    return pcm[start - 2 * first : end - 2 * first]


def modalities(session: dict[str, Any]) -> list[str]:
    """The session's output modalities: `modalities` (Q3, Q3.5) or `output_modalities` (Q3.8)."""
    return list(session.get("output_modalities") or session.get("modalities") or [])


class Generation(Wire):
    """Turns the audio of a connection into segments and each segment into the events of one response."""

    async def _frame(self, c: Conn, frame: bytes) -> None:
        x = np.frombuffer(frame, "<i2").astype(np.float64) / 32768.0
        speech = float(np.sqrt(np.mean(x * x))) > self.speech_rms
        idx = c.frame_idx
        c.frame_idx += 1
        seg = c.seg
        if seg is None:
            if not speech:
                return
            seg = c.seg = Segment(start_frame=idx)
        seg.frames += 1
        if speech:
            seg.speech_frames += 1
            seg.silence_run = 0
            seg.last_speech_end = idx + 1
        else:
            seg.silence_run += 1
        if not seg.confirmed and seg.speech_frames >= MIN_SPEECH_FRAMES:
            self._confirm(c, seg)
            if not c.manual:  # manual mode answers only after commit
                await self._open_segment(c, seg)
        elif seg.opened and (seg.frames - seg.open_frame) % STEP_FRAMES == 0:
            await self._step(c, seg)
        if not c.manual and seg.silence_run * FRAME_MS >= max(c.silence_ms, FRAME_MS):
            await self._end_segment(c)

    def _confirm(self, c: Conn, seg: Segment) -> None:
        s = c.session
        lang = s["translation"]["language"]
        with self._lock:  # shared per language so reconnects continue the script
            seg.index = self._next_index.get(lang, 0)
            self._next_index[lang] = seg.index + 1
        seg.confirmed = True
        seg.lang = lang
        i = seg.index
        seg.sentence = self.script[i] if i < len(self.script) else f"utterance {i + 1}"
        translated = seg.sentence if c.glossary is None else c.glossary.apply(seg.sentence)
        rendering = self.renderings.get(lang, {}).get(seg.sentence)
        seg.final = rendering or f"[{lang}] {translated}"
        seg.audio = "audio" in modalities(s)
        if seg.audio:
            seg.tone_hz = tone_hz(c.voiced_segments)
            c.voiced_segments += 1
        iat = s.get("input_audio_transcription")
        if c.rec.family == "q3":
            seg.asr_on = isinstance(iat, dict) and iat.get("model") == ASR_MODEL
        else:
            seg.asr_on = iat is not None
        seg.asr_lang = (iat or {}).get("language") or "en"
        seg.src_item, seg.resp_id, seg.out_item = new_id("item"), new_id("resp"), new_id("item")
        # ASR stash grows with one retraction ("w0" -> "w0." -> "w0 w1"), like 今天 -> 今天。 -> 今天天气.
        sw = seg.sentence.split()
        seg.asr_snaps = [sw[0], sw[0] + "."] + [" ".join(sw[:k]) for k in range(2, len(sw) + 1)]
        if len(sw) == 1:
            seg.asr_snaps.append(sw[0])
        # Translation: text is the confirmed prefix, stash the provisional tail; WRONG_WORD gets retracted.
        # Text without spaces (Japanese, Chinese) grows four characters at a time.
        sep = " " if " " in seg.final.strip() or not rendering else ""
        tw = seg.final.split() if sep else [seg.final[i : i + 4] for i in range(0, len(seg.final), 4)]
        seg.tr_snaps = [("", tw[0]), ("", f"{tw[0]}{sep or ' '}{WRONG_WORD}")]
        n = len(tw)
        seg.tr_snaps += [(sep.join(tw[:k]), f"{sep}{tw[k]}" if k < n else "") for k in range(1, n + 1)]

    def _response(self, c: Conn, seg: Segment, status: str, output: list[Any]) -> dict[str, Any]:
        s = c.session
        return {
            "id": seg.resp_id,
            "object": "realtime.response",
            "conversation_id": "",
            "status": status,
            "modalities": s["modalities"],
            "voice": s["voice"],
            "output_audio_format": s["output_audio_format"],
            "output": output,
        }

    def _item(self, seg: Segment, status: str, content: list[Any]) -> dict[str, Any]:
        return {
            "id": seg.out_item,
            "object": "realtime.item",
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def _part(self, seg: Segment, text: str) -> dict[str, Any]:
        return {"type": "audio", "transcript": text} if seg.audio else {"type": "text", "text": text}

    def _ids(self, seg: Segment) -> dict[str, Any]:
        return {"response_id": seg.resp_id, "item_id": seg.out_item, "output_index": 0, "content_index": 0}

    async def _open_segment(self, c: Conn, seg: Segment) -> None:
        seg.opened = True
        seg.open_frame = seg.frames
        q35 = c.rec.family == "q3.5"
        if q35 and not c.manual:
            await self._send(
                c,
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": seg.start_frame * FRAME_MS,
                    "item_id": seg.src_item,
                },
            )
            if self.hang_after_speech_started:
                self.stall = True
        await self._asr_step(c, seg)
        item = self._item(seg, "in_progress", [])
        resp = self._response(c, seg, "in_progress", [])
        await self._send(c, {"type": "response.created", "response": resp})
        await self._send(
            c, {"type": "response.output_item.added", "response_id": seg.resp_id, "output_index": 0, "item": item}
        )
        if q35:
            await self._send(c, {"type": "conversation.item.created", "previous_item_id": seg.src_item, "item": item})
        await self._send(c, {"type": "response.content_part.added", **self._ids(seg), "part": self._part(seg, "")})
        await self._tr_step(c, seg)

    async def _asr_step(self, c: Conn, seg: Segment) -> None:
        if not seg.asr_on or seg.asr_pos >= len(seg.asr_snaps):
            return
        ev = {
            "type": "conversation.item.input_audio_transcription.text",
            "item_id": seg.src_item,
            "content_index": 0,
            "text": "",
            "stash": seg.asr_snaps[seg.asr_pos],
            "language": seg.asr_lang,
        }
        if c.rec.family == "q3.5":
            ev["emotion"] = "neutral"
        seg.asr_pos += 1
        await self._send(c, ev)

    async def _tr_step(self, c: Conn, seg: Segment) -> None:
        if seg.tr_pos >= len(seg.tr_snaps):
            return
        text, stash = seg.tr_snaps[seg.tr_pos]
        seg.tr_pos += 1
        etype = "response.audio_transcript.text" if seg.audio else "response.text.text"
        await self._send(c, {"type": etype, **self._ids(seg), "text": text, "stash": stash})

    async def _audio_delta(self, c: Conn, seg: Segment, end: int) -> None:
        if end <= seg.audio_sent:
            return
        data = tone_pcm(seg.tone_hz, seg.audio_sent, end)
        seg.audio_sent = end
        c.audio_out_bytes += len(data)
        await self._send(
            c, {"type": "response.audio.delta", **self._ids(seg), "delta": base64.b64encode(data).decode()}
        )

    async def _step(self, c: Conn, seg: Segment) -> None:
        await self._asr_step(c, seg)
        await self._tr_step(c, seg)
        if seg.audio:
            target = (seg.frames - seg.open_frame) * FRAME_MS * OUT_BYTES_PER_MS
            # The first delta ends one byte short so it (and the next) has an odd length (§6).
            await self._audio_delta(c, seg, target - 1 if seg.audio_sent == 0 else target)

    async def _end_segment(self, c: Conn) -> None:
        """Finish the in-progress segment (VAD silence, session.finish or commit); drop noise."""
        seg, c.seg = c.seg, None
        if seg is None or not seg.confirmed or c.closing:
            return
        if not seg.opened:
            await self._open_segment(c, seg)
        q35 = c.rec.family == "q3.5"
        final = seg.final
        if q35 and not c.manual:
            await self._send(
                c,
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": seg.last_speech_end * FRAME_MS,
                    "item_id": seg.src_item,
                },
            )
        if seg.audio:
            end = max(seg.frames - seg.open_frame, 1) * FRAME_MS * OUT_BYTES_PER_MS
            await self._audio_delta(c, seg, max(end, seg.audio_sent + (seg.audio_sent % 2)))
            await self._send(c, {"type": "response.audio_transcript.done", **self._ids(seg), "transcript": final})
            await self._send(c, {"type": "response.audio.done", **self._ids(seg)})
        else:
            await self._send(c, {"type": "response.text.done", **self._ids(seg), "text": final + " "})
        part = self._part(seg, final)
        await self._send(c, {"type": "response.content_part.done", **self._ids(seg), "part": part})
        done_item = self._item(seg, "completed", [part])
        await self._send(
            c, {"type": "response.output_item.done", "response_id": seg.resp_id, "output_index": 0, "item": done_item}
        )
        if seg.asr_on:  # observed after the translation's .done (§5.2)
            await self._send(
                c,
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": seg.src_item,
                    "content_index": 0,
                    "transcript": seg.sentence,
                    "language": seg.asr_lang,
                    "emotion": "",
                },
            )
        c.text_tokens += max(1, len(final) // 3)
        if seg.asr_on:  # the source transcript bills at the output-text rate (§8)
            c.text_tokens += max(1, len(seg.sentence) // 3)
        resp = self._response(c, seg, "completed", [done_item])
        resp["usage"] = self._usage(c)
        await self._send(c, {"type": "response.done", "response": resp})
        c.last_response_at = time.monotonic()
        if c.closing or self.stall:
            return  # never delivered, so it does not count
        with self._lock:
            c.rec.translations.append(final)
            if seg.audio:
                c.rec.tones.append((seg.tone_hz, seg.audio_sent))
            self._segments_emitted[seg.lang] = self._segments_emitted.get(seg.lang, 0) + 1

    def _usage(self, c: Conn) -> dict[str, Any]:
        """Cumulative for the connection, as observed (§8); or each response's own, if told to."""
        rate = int(c.session.get("sample_rate", 16000))
        audio_in = round(c.rec.audio_bytes / (2 * rate) * AUDIO_TOKENS_PER_S[c.rec.family])
        audio_out = round(c.audio_out_bytes / (OUT_BYTES_PER_MS * 1000) * 12.5)
        now = (audio_in, c.image_tokens, c.text_tokens, audio_out)
        if self.usage_per_response:
            now, c.usage_reported = tuple(a - b for a, b in zip(now, c.usage_reported, strict=True)), now
        audio_in, image_in, text_out, audio_out = now
        out_details: dict[str, int] = {"text_tokens": text_out}
        if "audio" in modalities(c.session):
            out_details["audio_tokens"] = audio_out
        out = sum(out_details.values())
        # The documented details are text and audio only: image tokens show in the input total alone.
        return {
            "total_tokens": audio_in + image_in + out,
            "input_tokens": audio_in + image_in,
            "output_tokens": out,
            "input_tokens_details": {"text_tokens": 0, "audio_tokens": audio_in},
            "output_tokens_details": out_details,
        }
