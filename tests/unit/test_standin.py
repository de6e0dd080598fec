"""Demo mode's stand-in: its pure parts table-tested; then the real TranslatorSession against it over loopback."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from captioner.config import load
from captioner.errors import ConfigError
from captioner.reconnect import Backoff, ConnectBudget
from captioner.standin import (
    MARKER,
    OVERRIDES,
    SENTENCES,
    DemoSession,
    Edge,
    StandIn,
    Utterances,
    caption_text,
    partial_text,
    source_text,
    with_url,
)
from captioner.status import LinkState, Status
from captioner.translation.interpreter import Caption
from captioner.translation.session import TranslatorSession

pytestmark = pytest.mark.timeout(60)
LOUD, QUIET = 0.2, 0.001


def run_levels(levels: str, chunk_ms: int = 100, **kw: Any) -> list[Edge]:
    """'#' = a loud chunk, '.' = a quiet one; the edges in order, and those of a final flush."""
    u = Utterances(**kw)
    edges = [e for ch in levels for e in u.feed(LOUD if ch == "#" else QUIET, chunk_ms)]
    return edges + u.flush()


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ("", []),
        ("........", []),
        # starts on the first loud chunk; ends after 700 ms of quiet; the duration is the sound only
        ("..###.......", [("start", 0), ("end", 300)]),
        # quiet shorter than 700 ms inside an utterance does not end it; a partial boundary passed in the quiet
        # is shown at the next sound, and the following one on time
        ("##......##.......", [("start", 0), ("partial", 900), ("partial", 1000), ("end", 1000)]),
        ("##.....................", [("start", 0), ("end", 200)]),
        (
            "#......##########.......",
            [("start", 0), ("partial", 800), ("partial", 1000), ("partial", 1500), ("end", 1700)],
        ),
        # a partial every 500 ms of an utterance, on a loud chunk
        ("#######.......", [("start", 0), ("partial", 500), ("end", 700)]),
        # two utterances, each numbered by the caller
        ("##.......##.......", [("start", 0), ("end", 200), ("start", 0), ("end", 200)]),
        # still open at the end of the stream: the flush (session.finish) ends it
        ("###", [("start", 0), ("end", 300)]),
        # a single click still gets an utterance: every sound is answered, so the session watchdog never fires
        ("#.......", [("start", 0), ("end", 100)]),
    ],
)
def test_utterance_edges(levels: str, expected: list[tuple[str, int]]) -> None:
    assert run_levels(levels) == [Edge(*e) for e in expected]


def test_long_speech_is_cut_and_goes_on() -> None:
    edges = run_levels("#" * 25, max_ms=1000, partial_every_ms=400)
    assert edges == [
        Edge("start", 0),
        Edge("partial", 400),
        Edge("partial", 800),
        Edge("end", 1000),
        Edge("start", 0),
        Edge("partial", 400),
        Edge("partial", 800),
        Edge("end", 1000),
        Edge("start", 0),
        Edge("partial", 400),
        Edge("end", 500),
    ]


@pytest.mark.parametrize(
    ("chunk_ms", "levels", "expected"),
    [
        # 20 ms chunks: the same 700 ms of quiet ends it, counted exactly (integer ms, no float drift)
        (20, "#" * 10 + "." * 34, [("start", 0)]),
        (20, "#" * 10 + "." * 35, [("start", 0), ("end", 200)]),
    ],
)
def test_utterance_edges_other_chunk_sizes(chunk_ms: int, levels: str, expected: list[tuple[str, int]]) -> None:
    u = Utterances()
    assert [e for ch in levels for e in u.feed(LOUD if ch == "#" else QUIET, chunk_ms)] == [Edge(*e) for e in expected]


@pytest.mark.parametrize(
    ("n", "language", "expected"),
    [
        (1, "en", "[DEMO] #1 (en) This is a sample caption from demo mode, not a translation."),
        (3, "ja", "[DEMO] #3 (ja) これはデモモードのサンプル字幕で、翻訳ではありません。"),
        (12, "de", "[DEMO] #12 (de) Dies ist ein Beispieluntertitel aus dem Demomodus, keine Übersetzung."),
        # a language without a sample sentence gets the English one, still labelled with its own code
        (2, "fil", "[DEMO] #2 (fil) This is a sample caption from demo mode, not a translation."),
    ],
)
def test_caption_text(n: int, language: str, expected: str) -> None:
    assert caption_text(n, language) == expected


@pytest.mark.parametrize(
    ("language", "elapsed_ms", "expected"),
    [
        ("en", 0, "[DEMO] #1 (en)"),
        ("en", 500, "[DEMO] #1 (en) This is a"),
        ("en", 1500, "[DEMO] #1 (en) This is a sample caption from"),
        # never the whole sentence: only the final completes it
        ("en", 10_000, "[DEMO] #1 (en) This is a sample caption from demo mode, not a"),
        # CJK is cut by character
        ("ja", 1000, "[DEMO] #1 (ja) これはデモモードの"),
        ("ja", 10_000, "[DEMO] #1 (ja) これはデモモードのサンプル字幕で、翻訳ではありませ"),
    ],
)
def test_partial_text(language: str, elapsed_ms: int, expected: str) -> None:
    assert partial_text(caption_text(1, language), elapsed_ms) == expected


@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_every_text_is_marked_and_grows_towards_the_final(language: str) -> None:
    final = caption_text(7, language)
    partials = [partial_text(final, ms) for ms in range(0, 5000, 250)]
    assert all(p.startswith(f"{MARKER} #7 ({language})") for p in [*partials, final])
    assert all(final.startswith(p) and p != final for p in partials)
    assert [len(p) for p in partials] == sorted(len(p) for p in partials)


@pytest.mark.parametrize(
    ("spoken_ms", "final", "expected"),
    [
        (0, False, "[DEMO] listening..."),
        (1800, True, "[DEMO] you spoke for 1.8 s"),
        (250, True, "[DEMO] you spoke for 0.2 s"),
    ],
)
def test_source_text(spoken_ms: int, final: bool, expected: str) -> None:
    assert source_text(spoken_ms, final) == expected


def pcm_event(level: float, ms: int = 100) -> dict[str, Any]:
    n = ms * 16
    x = np.full(n, level * 32767 * (2**0.5)) * np.sin(np.arange(n) * 0.3) if level else np.zeros(n)
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(x.astype("<i2").tobytes()).decode()}


def update(language: str | None = "ja", asr: Any = "absent", modalities: tuple[str, ...] = ("text",)) -> dict[str, Any]:
    session: dict[str, Any] = {"modalities": list(modalities), "voice": "Cherry"}
    if language is not None:
        session["translation"] = {"language": language}
    if asr != "absent":
        session["input_audio_transcription"] = asr
    return {"type": "session.update", "session": session}


def talk(session: DemoSession, *events: dict[str, Any]) -> list[dict[str, Any]]:
    return [reply for event in events for reply in session.handle(event)]


def one_utterance(loud_chunks: int = 3) -> list[dict[str, Any]]:
    return [pcm_event(LOUD)] * loud_chunks + [pcm_event(0)] * 8


@pytest.mark.parametrize(
    ("update_event", "kinds"),
    [
        # text only, no transcript (qwen3.5 sends input_audio_transcription: null to turn it off)
        (
            update(asr=None),
            [
                "input_audio_buffer.speech_started",
                "response.created",
                "response.text.text",
                "input_audio_buffer.speech_stopped",
                "response.text.done",
                "response.done",
            ],
        ),
        # text + audio modality: the service names the text events audio_transcript
        (
            update(modalities=("text", "audio")),
            [
                "input_audio_buffer.speech_started",
                "response.created",
                "response.audio_transcript.text",
                "input_audio_buffer.speech_stopped",
                "response.audio_transcript.done",
                "response.done",
            ],
        ),
        # source transcription asked for: a source line too, paired with its caption
        (
            update(asr={"model": "qwen3-asr-flash-realtime", "language": "en"}),
            [
                "input_audio_buffer.speech_started",
                "response.created",
                "conversation.item.created",
                "conversation.item.input_audio_transcription.text",
                "response.text.text",
                "input_audio_buffer.speech_stopped",
                "response.text.done",
                "conversation.item.input_audio_transcription.completed",
                "response.done",
            ],
        ),
    ],
)
def test_session_event_order(update_event: dict[str, Any], kinds: list[str]) -> None:
    session = DemoSession({}, model="qwen3-livetranslate-flash-realtime")
    assert session.created()["type"] == "session.created"
    setup = talk(session, update_event)
    assert [e["type"] for e in setup] == ["session.updated"]
    assert setup[0]["session"]["translation"] == {"language": "ja"}
    assert [e["type"] for e in talk(session, *one_utterance())] == kinds


def test_session_texts_usage_and_finish() -> None:
    counters: dict[str, int] = {}
    session = DemoSession(counters)
    talk(session, update(asr={"model": "qwen3-asr-flash-realtime"}))
    first = talk(session, *one_utterance(loud_chunks=18))
    shown = (".text", ".text.done", ".completed")
    texts = [e.get("stash") or e.get("text") or e.get("transcript") for e in first if e["type"].endswith(shown)]
    assert texts == [
        "[DEMO] listening...",
        "[DEMO] #1 (ja)",
        "[DEMO] #1 (ja) これはデモ",
        "[DEMO] #1 (ja) これはデモモードの",
        "[DEMO] #1 (ja) これはデモモードのサンプル字",
        "[DEMO] #1 (ja) これはデモモードのサンプル字幕で、翻訳ではありません。",
        "[DEMO] you spoke for 1.8 s",
    ]
    done = first[-1]
    assert done["type"] == "response.done" and done["response"]["usage"]["total_tokens"] == 0
    # numbering goes on across utterances (and sessions: the counters are the stand-in's)
    second = talk(session, *[pcm_event(LOUD)] * 2)
    finish = talk(session, {"type": "session.finish"})
    assert [e["type"] for e in finish][-1] == "session.finished"
    assert any(e.get("text") == caption_text(2, "ja") for e in second + finish)
    assert counters == {"ja": 2}
    # after session.finish, audio is not answered
    assert talk(session, *one_utterance()) == []


@pytest.mark.parametrize(
    "event",
    [
        "not a dict",
        {"type": 5},
        {"no": "type"},
        {"type": "input_audio_buffer.append", "audio": "%%% not base64"},
        {"type": "input_audio_buffer.append", "audio": None},
        {"type": "input_audio_buffer.append"},
        # an odd byte count (a sample split across frames) is not a crash
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x00\x00\x00").decode()},
        {"type": "input_image_buffer.append", "image": "xx"},
        {"type": "something.new"},
        {"type": "session.update", "session": "nope"},
    ],
)
def test_bad_client_events_are_survived(event: Any) -> None:
    session = DemoSession({})
    talk(session, update())
    replies = talk(session, event)
    assert all(r["type"] == "error" for r in replies)
    # and the session still works afterwards
    assert any(e["type"] == "response.done" for e in talk(session, *one_utterance()))


def test_update_without_a_target_language_is_rejected_like_the_service() -> None:
    replies = talk(DemoSession({}), update(language=None))
    assert replies == [
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "invalid_value",
                "message": "Invalid translation parameter.",
            },
        }
    ]


# ---- config: demo mode needs no key; run still does ------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "translator:\n  targets: [ja]\n",
        "translator:\n  api_key: ${DASHSCOPE_API_KEY}\n  targets: [ja]\n",
        "translator:\n  api_key: ''\n  url: wss://dashscope-intl.aliyuncs.com/api-ws/v1/realtime\n",
        "cost:\n  budget_per_day: 5\n",
        None,  # no file: the built-in defaults, whose key is ${DASHSCOPE_API_KEY}
    ],
)
def test_demo_config_needs_no_key_and_run_still_does(text: str | None, tmp_path: Path) -> None:
    path = None
    if text is not None:
        path = tmp_path / "c.yaml"
        path.write_text(text)
    env = {"HOME": str(tmp_path)}
    with pytest.raises(ConfigError, match=r"^translator\.api_key: "):
        load(path, env)
    cfg = with_url(load(path, env, overrides=OVERRIDES), "ws://127.0.0.1:1234/x")
    assert cfg.translator.url == "ws://127.0.0.1:1234/x"
    assert cfg.translator.api_key.get_secret_value() == OVERRIDES["translator"]["api_key"]
    assert cfg.cost.budget_per_day == cfg.cost.budget_per_stream == 0


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("translator:\n  targets: [ja, xx]\n", "translator.targets[1]"),
        ("translator: 5\n", "translator"),
        ("translator:\n  bogus: 1\n", "translator.bogus"),
    ],
)
def test_demo_config_still_reports_other_errors_at_their_key(text: str, key: str, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load(path, {}, overrides=OVERRIDES)
    assert e.value.key == key


# ---- the real TranslatorSession against the stand-in, over loopback ----------------------------------
def tone(seconds: float, level: float = 0.2) -> list[bytes]:
    n = int(seconds * 16000)
    x = level * 2**0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / 16000) if level else np.zeros(n)
    pcm = (x * 32767).astype("<i2").tobytes()
    return [pcm[i : i + 3200] for i in range(0, len(pcm), 3200)]


async def test_translator_session_shows_demo_captions() -> None:
    standin = StandIn()
    url = await standin.start()
    cfg = with_url(load(None, {}, overrides=OVERRIDES), url).translator.model_copy(update={"transcribe_source": True})
    status = Status("test")
    captions: list[Caption] = []
    session = TranslatorSession(
        cfg,
        "ja",
        transcribe_source=True,
        status=status,
        on_caption=captions.append,
        budget=ConnectBudget(limit=100),
        backoff=Backoff(initial_s=0.2, cap_s=0.5),
    )
    task = asyncio.create_task(session.run())
    try:
        for _ in range(500):
            if session.link.state == LinkState.CONNECTED:
                break
            await asyncio.sleep(0.01)
        # a frame that is not JSON, from another local client: survived and counted
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            assert json.loads((await ws.receive()).data)["type"] == "session.created"
            await ws.send_str("{not json")
            await ws.send_bytes(b"\x00\x01")
            await ws.send_str(json.dumps({"type": "session.finish"}))
            assert json.loads((await ws.receive()).data)["type"] == "session.finished"
        assert standin.bad_frames == 2
        for chunk in [*tone(0.3, 0), *tone(1.2), *tone(1.0, 0), *tone(0.6), *tone(1.0, 0)]:
            session.feed(chunk, 0.0)
            await asyncio.sleep(0.002)
        for _ in range(500):
            if sum(c.final for c in captions) == 4:
                break
            await asyncio.sleep(0.01)
    finally:
        await session.finish()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await standin.stop()
    finals = [(c.language, c.text) for c in captions if c.final]
    assert finals == [
        ("ja", caption_text(1, "ja")),
        ("source", "[DEMO] you spoke for 1.2 s"),
        ("ja", caption_text(2, "ja")),
        ("source", "[DEMO] you spoke for 0.6 s"),
    ]
    partials = [c.text for c in captions if not c.final and c.language == "ja"]
    assert partials[0] == "[DEMO] #1 (ja)" and any(p.startswith("[DEMO] #1 (ja) これ") for p in partials)
    assert all(c.text.startswith(MARKER) for c in captions)
    assert status.metrics.translator_bad_events.collect()[0].samples == []
