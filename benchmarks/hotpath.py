"""Micro-benchmark of the daemon's per-chunk hot path, in-process: resample, encode, send over a real WebSocket.

Times exactly what the daemon does per captured block: `Pcm16Converter.feed` (48 kHz stereo float32 -> 16 kHz
mono PCM16 chunks, soxr HQ), `rms` of each chunk, the `input_audio_buffer.append` JSON/base64 string the session
builds, and `ClientWebSocketResponse.send_str` to a local aiohttp server that runs in another process (so its
CPU is not counted). CPU is this thread's `time.thread_time()`, reported per minute of audio.

Run alone: .venv/bin/python benchmarks/hotpath.py [--minutes 1] [--targets 1,8]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from captioner.inputs.pcm import rms
from captioner.inputs.pcm_convert import Pcm16Converter
from captioner.translation.protocol import audio_append

RATE, CHANNELS, CHUNK_MS = 48_000, 2, 100
BLOCK_FRAMES = RATE * CHUNK_MS // 1000  # what the daemon asks PortAudio for

# A WebSocket sink in its own process: accepts any number of connections and discards every frame.
_SINK = """
import asyncio, sys
from aiohttp import web
async def ws(request):
    r = web.WebSocketResponse(max_msg_size=0)
    await r.prepare(request)
    async for _ in r:
        pass
    return r
async def main():
    app = web.Application(); app.router.add_get("/", ws)
    runner = web.AppRunner(app, access_log=None); await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0); await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


@dataclass
class HotPathResult:
    """CPU seconds per audio minute of each stage, and of all stages interleaved as the daemon runs them."""

    targets: int
    audio_s: float
    chunks: int
    convert_s_per_min: float
    encode_s_per_min: float
    send_s_per_min: float
    total_s_per_min: float

    def per_chunk_us(self, s_per_min: float) -> float:
        return s_per_min * (self.audio_s / 60) / self.chunks * 1e6


def speech_blocks(wav: Path | None, minutes: float) -> list[np.ndarray]:
    """Blocks of 48 kHz stereo float32 audio as PortAudio delivers them: speech from `wav`, else a sweep."""
    if wav is not None:
        with wave.open(str(wav)) as w:
            rate, ch = w.getframerate(), w.getnchannels()
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        mono = x.reshape(-1, ch).mean(axis=1, dtype=np.float32)
        mono = soxr.resample(mono, rate, RATE).astype(np.float32)
    else:
        t = np.arange(RATE * 10) / RATE
        mono = (0.3 * np.sin(2 * np.pi * (200 + 50 * t) * t)).astype(np.float32)
    frames = int(minutes * 60 * RATE)
    mono = np.resize(mono, frames)  # repeats the material as often as needed
    stereo = np.repeat(mono[:, None], CHANNELS, axis=1)
    return [stereo[i : i + BLOCK_FRAMES].copy() for i in range(0, frames - BLOCK_FRAMES + 1, BLOCK_FRAMES)]


def append_event(chunk: bytes) -> str:
    """The frame the session sends for each chunk, built where the session builds it (translation/protocol.py)."""
    return audio_append(chunk)


async def _run(blocks: list[np.ndarray], targets: int) -> HotPathResult:
    import aiohttp

    sink = await asyncio.create_subprocess_exec(sys.executable, "-c", _SINK, stdout=subprocess.PIPE)
    try:
        assert sink.stdout is not None
        port = int((await sink.stdout.readline()).decode())
        async with aiohttp.ClientSession() as http:
            sockets = [await http.ws_connect(f"ws://127.0.0.1:{port}/") for _ in range(targets)]
            audio_s = len(blocks) * BLOCK_FRAMES / RATE

            # Each stage alone over the whole input, then all of them interleaved per block.
            conv = Pcm16Converter(RATE, CHANNELS, CHUNK_MS)
            t0 = time.thread_time()
            chunks = [c for b in blocks for c in conv.feed(b)]
            levels = [rms(c) for c in chunks]
            convert = time.thread_time() - t0

            t0 = time.thread_time()
            frames = [append_event(c) for c in chunks for _ in range(targets)]
            encode = time.thread_time() - t0

            t0 = time.thread_time()
            for i, frame in enumerate(frames):
                await sockets[i % targets].send_str(frame)
            send = time.thread_time() - t0

            conv = Pcm16Converter(RATE, CHANNELS, CHUNK_MS)
            t0 = time.thread_time()
            for b in blocks:
                for c in conv.feed(b):
                    rms(c)
                    for ws in sockets:
                        await ws.send_str(append_event(c))
            total = time.thread_time() - t0
            for ws in sockets:
                await ws.close()
        del levels
    finally:
        sink.kill()
        await sink.wait()
    per_min = 60 / audio_s
    return HotPathResult(
        targets, audio_s, len(chunks), convert * per_min, encode * per_min, send * per_min, total * per_min
    )


def run(wav: Path | None, minutes: float, targets: int) -> HotPathResult:
    return asyncio.run(_run(speech_blocks(wav, minutes), targets))


def report(results: list[HotPathResult]) -> str:
    lines = [
        "| hot path, in-process | targets | resample+rms | JSON/base64 | ws send | all, interleaved | per chunk |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| CPU s per audio minute | {r.targets} | {r.convert_s_per_min:.3f} | {r.encode_s_per_min:.3f} | "
            f"{r.send_s_per_min:.3f} | {r.total_s_per_min:.3f} | {r.per_chunk_us(r.total_s_per_min):.0f} µs |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--minutes", type=float, default=1.0, help="audio minutes to push through (default 1)")
    p.add_argument("--targets", default="1,8", help="comma-separated session counts (default 1,8)")
    p.add_argument("--wav", type=Path, help="speech to use (default: a synthetic sweep)")
    args = p.parse_args()
    print(report([run(args.wav, args.minutes, int(n)) for n in args.targets.split(",")]))


if __name__ == "__main__":
    main()
