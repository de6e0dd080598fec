"""Demo mode: a local stand-in for the translator, so the real pipeline shows captions without an API key."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from aiohttp import WSMsgType, web

from .config import Config, load
from .inputs.pcm import SPEECH_RMS, rms

log = logging.getLogger(__name__)

MARKER = "[DEMO]"
WARNING = "DEMO MODE: captions come from a built-in stand-in, not from Qwen; nothing is sent to the internet"
# Applied to the YAML before validation: no key is needed (nor its ${VAR}), and a budget never holds a demo,
# which costs nothing. The URL is a placeholder until the stand-in has its port.
OVERRIDES: dict[str, dict[str, Any]] = {
    "translator": {"api_key": "demo-mode-needs-no-key", "url": "ws://127.0.0.1:9/demo"},
    "cost": {"budget_per_stream": 0, "budget_per_day": 0},
}
# One sample sentence per target language, long enough to preview wrapping; other languages get English.
SENTENCES: dict[str, str] = {
    "en": "This is a sample caption from demo mode, not a translation.",
    "ja": "これはデモモードのサンプル字幕で、翻訳ではありません。",
    "zh": "这是演示模式的示例字幕，不是翻译。",
    "yue": "呢個係示範模式嘅示例字幕，唔係翻譯。",
    "ko": "이것은 데모 모드의 샘플 자막이며 번역이 아닙니다.",
    "de": "Dies ist ein Beispieluntertitel aus dem Demomodus, keine Übersetzung.",
    "fr": "Ceci est un sous-titre d'exemple du mode démo, pas une traduction.",
    "es": "Este es un subtítulo de ejemplo del modo demo, no una traducción.",
    "pt": "Esta é uma legenda de exemplo do modo demo, não uma tradução.",
    "it": "Questo è un sottotitolo di esempio della modalità demo, non una traduzione.",
    "ru": "Это пример субтитров демо-режима, а не перевод.",
    "vi": "Đây là phụ đề mẫu của chế độ demo, không phải bản dịch.",
    "id": "Ini adalah teks contoh dari mode demo, bukan terjemahan.",
    "th": "นี่คือคำบรรยายตัวอย่างจากโหมดสาธิต ไม่ใช่คำแปล",
    "tr": "Bu, demo modundan örnek bir altyazıdır, çeviri değildir.",
    "hi": "यह डेमो मोड का नमूना कैप्शन है, अनुवाद नहीं।",
}
# A partial reveals the sentence over this much speech, never all of it: the final is what completes it.
_REVEAL_MS = 3000
_BYTES_PER_MS = 32  # 16 kHz mono PCM16


def caption_text(n: int, language: str) -> str:
    """The final caption of utterance `n`: marked, numbered, labelled with its language, never a translation."""
    return f"{MARKER} #{n} ({language}) {SENTENCES.get(language, SENTENCES['en'])}"


def partial_text(final: str, elapsed_ms: int) -> str:
    """What the caption shows `elapsed_ms` into the utterance: the marked header and a growing part of the rest."""
    header, _, body = final.partition(") ")
    shown = body[: math.ceil(len(body) * min(0.9, elapsed_ms / _REVEAL_MS))]
    # Spaced scripts are cut at a word boundary; CJK and Thai have none to look for.
    if " " in body and shown != body and " " in shown:
        shown = shown[: shown.rindex(" ")]
    return f"{header}) {shown}".rstrip()


def source_text(spoken_ms: int, final: bool) -> str:
    """The stand-in's "transcript": it cannot understand speech, so it says how long it heard some."""
    return f"{MARKER} you spoke for {spoken_ms / 1000:.1f} s" if final else f"{MARKER} listening..."


class Edge(NamedTuple):
    """An utterance edge: "start", "partial" (every partial_every_ms) or "end"; ms = speech so far / in all."""

    kind: str
    ms: int


@dataclass
class Utterances:
    """Energy-based utterance detection over 16 kHz PCM16 chunks: a stand-in for the service's VAD."""

    threshold: float = SPEECH_RMS
    # Shorter than the audio gate's shortest trail (1 s), so a gated stream still ends each utterance.
    end_silence_ms: int = 700
    # Long speech is cut, as the service splits long utterances, so captions keep coming.
    max_ms: int = 8000
    partial_every_ms: int = 500
    _now_ms: int = 0
    _start_ms: int | None = None
    _last_loud_ms: int = 0
    _next_partial_ms: int = 0

    def feed(self, level: float, ms: int) -> list[Edge]:
        """One chunk of `ms` milliseconds at RMS `level` (0..1)."""
        begin, self._now_ms = self._now_ms, self._now_ms + ms
        loud = level >= self.threshold
        if self._start_ms is None:
            if not loud:
                return []
            self._start_ms, self._last_loud_ms, self._next_partial_ms = begin, self._now_ms, self.partial_every_ms
            return [Edge("start", 0)]
        if loud:
            self._last_loud_ms = self._now_ms
        elapsed = self._now_ms - self._start_ms
        if self._now_ms - self._last_loud_ms >= self.end_silence_ms or elapsed >= self.max_ms:
            return self.flush()
        if loud and elapsed >= self._next_partial_ms:
            self._next_partial_ms = (elapsed // self.partial_every_ms + 1) * self.partial_every_ms
            return [Edge("partial", elapsed)]
        return []

    def drop(self) -> None:
        """Forget the open utterance (a client's clear)."""
        self._start_ms = None

    def flush(self) -> list[Edge]:
        """End the open utterance, if any (session.finish, a client's commit)."""
        if self._start_ms is None:
            return []
        spoken, self._start_ms = self._last_loud_ms - self._start_ms, None
        return [Edge("end", spoken)]


@dataclass
class DemoSession:
    """One connection's protocol: client events in, server events out; no I/O, so it is table-tested."""

    counters: dict[str, int]
    model: str = ""
    target: str = ""
    transcribe: bool = False
    text_kind: str = "response.text"
    finished: bool = False
    utterances: Utterances = field(default_factory=Utterances)
    _n: int = 0
    _ids: int = 0

    def created(self) -> dict[str, Any]:
        return {"type": "session.created", "session": {"id": "demo_session", "model": self.model, "object": "demo"}}

    def handle(self, event: Any) -> Iterator[dict[str, Any]]:
        """Answer one decoded client event; anything not understood is ignored, as the service does."""
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "session.update":
            yield from self._update(event.get("session"))
        elif kind == "input_audio_buffer.append" and not self.finished:
            audio = event.get("audio")
            try:
                pcm = base64.b64decode(audio, validate=True) if isinstance(audio, str) else b""
            except (binascii.Error, ValueError):
                return
            for edge in self.utterances.feed(rms(pcm[: len(pcm) // 2 * 2]), len(pcm) // _BYTES_PER_MS):
                yield from self._edge(edge)
        elif kind == "input_audio_buffer.commit" and not self.finished:
            # Client turns (qwen3.5's manual mode): the client says where the utterance ends.
            yield {"type": "input_audio_buffer.committed"}
            for edge in self.utterances.flush():
                yield from self._edge(edge)
        elif kind == "input_audio_buffer.clear":
            self.utterances.drop()
            yield {"type": "input_audio_buffer.cleared"}
        elif kind == "session.finish" and not self.finished:
            self.finished = True
            for edge in self.utterances.flush():
                yield from self._edge(edge)
            yield {"type": "session.finished"}

    def _update(self, session: Any) -> Iterator[dict[str, Any]]:
        translation = session.get("translation") if isinstance(session, dict) else None
        language = translation.get("language") if isinstance(translation, dict) else None
        if not isinstance(session, dict) or not isinstance(language, str) or not language:
            # What the service answers to an update without translation.language (§4.1).
            error = {"type": "invalid_request_error", "code": "invalid_value"}
            yield {"type": "error", "error": {**error, "message": "Invalid translation parameter."}}
            return
        self.target = language
        # Only an explicit ASR block makes it transcribe: the stand-in does not model qwen3.5's default. qwen3.8's
        # nested layout (output_modalities) always transcribes.
        nested = "output_modalities" in session
        self.transcribe = nested or isinstance(session.get("input_audio_transcription"), dict)
        modalities = session.get("output_modalities" if nested else "modalities")
        audio = isinstance(modalities, list) and "audio" in modalities
        self.text_kind = "response.audio_transcript" if audio else "response.text"
        yield {"type": "session.updated", "session": {**session, "id": "demo_session", "model": self.model}}

    def _edge(self, edge: Edge) -> Iterator[dict[str, Any]]:
        ids = {"response_id": f"demo_resp_{self._ids}", "item_id": f"demo_item_{self._ids}"}
        source = f"demo_src_{self._ids}"
        if edge.kind == "start":
            self.counters[self.target] = self._n = self.counters.get(self.target, 0) + 1
            yield {"type": "input_audio_buffer.speech_started", "item_id": source, "audio_start_ms": 0}
            yield {"type": "response.created", "response": {"id": ids["response_id"], "status": "in_progress"}}
            if self.transcribe:
                yield {"type": "conversation.item.created", "previous_item_id": source, "item": {"id": ids["item_id"]}}
                asr = {"item_id": source, "text": "", "stash": source_text(0, False)}
                yield {"type": "conversation.item.input_audio_transcription.text", **asr}
        final = caption_text(self._n, self.target)
        if edge.kind in ("start", "partial"):
            yield {"type": f"{self.text_kind}.text", **ids, "text": "", "stash": partial_text(final, edge.ms)}
            return
        yield {"type": "input_audio_buffer.speech_stopped", "item_id": source}
        yield {"type": f"{self.text_kind}.done", **ids, ("transcript" if "audio" in self.text_kind else "text"): final}
        if self.transcribe:
            done = {"item_id": source, "transcript": source_text(edge.ms, True)}
            yield {"type": "conversation.item.input_audio_transcription.completed", **done}
        # Zero usage: a demo costs nothing, and the estimate says so.
        usage = {"total_tokens": 0, "input_tokens": 0, "output_tokens": 0}
        yield {"type": "response.done", "response": {"id": ids["response_id"], "status": "completed", "usage": usage}}
        log.info("demo stand-in: %s caption #%d after %.1f s of sound", self.target, self._n, edge.ms / 1000)
        self._ids += 1


class StandIn:
    """The stand-in's WebSocket server on 127.0.0.1 (a free port), inside the daemon's event loop."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        # Frames from the socket that were not JSON objects: survived, counted, and logged at debug.
        self.bad_frames = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._serve)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"ws://127.0.0.1:{port}/api-ws/v1/realtime"
        log.info("demo stand-in listening on %s", self.url)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        session = DemoSession(self.counters, model=request.query.get("model", ""))
        await ws.send_json(session.created())
        async for msg in ws:
            event = None
            if msg.type == WSMsgType.TEXT:
                with contextlib.suppress(ValueError, RecursionError):
                    event = json.loads(msg.data)
            if not isinstance(event, dict):
                self.bad_frames += 1
                log.debug("demo stand-in: ignored a frame that is not a JSON object (%d so far)", self.bad_frames)
                continue
            for reply in session.handle(event):
                await ws.send_json(reply)
        # Like the service, it never closes first: the client closes after session.finished.
        return ws


def with_url(cfg: Config, url: str) -> Config:
    return cfg.model_copy(update={"translator": cfg.translator.model_copy(update={"url": url})})


async def run_demo(cfg: Config, path: Path | None) -> int:
    """`captioner demo`: the real daemon, its translator sessions pointed at a stand-in in this process."""
    from .server import serve

    log.warning(WARNING)
    standin = StandIn()
    url = await standin.start()
    try:
        # A reload (SIGHUP) reads the file the same way, so it can never switch to the real service.
        return await serve(
            with_url(cfg, url), path, loader=lambda p: with_url(load(p, overrides=OVERRIDES), url), demo=True
        )
    finally:
        await standin.stop()
