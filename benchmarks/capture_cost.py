"""What reading the capture costs the event loop: the floor's blocking read against the daemon's read that never blocks.

The minimal pipeline (benchmarks/perf_floors.py) sleeps until a chunk is due and reads it from libpulse-simple on
its event loop: the read blocks until the chunk is whole, which the daemon must never do (a frozen sound server
would freeze /status, OBS and a stop). The daemon's capture (captioner/inputs/pulse_stream.py) takes each chunk
on a timer from libpulse's asynchronous API, which only looks at what has arrived. This prints, for each, the
event loop thread's CPU per audio minute while a tone plays (48 kHz stereo into a null sink, recorded from its
monitor as 16 kHz mono, 100 ms chunks, the sink clocked at 200 ms as in benchmarks/run.py), the CPU of one read,
and reads per chunk. Rounds alternate the two; compare within one run.

    .venv/bin/python benchmarks/capture_cost.py [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from captioner.inputs import pulse
from captioner.inputs.pulse_stream import PulseStream
from tests.support.pulse_env import PulseEnv
from tests.support.speech import tone_wav

CHUNK = 3200  # 100 ms of 16 kHz mono PCM16


async def blocking(source: str, seconds: float) -> tuple[float, float, float]:
    """The floor's way: sleep until the chunk is due, then a read that blocks until it is whole."""
    rec = pulse.PulseRecorder(source, 16000, CHUNK, name="bench-blocking")
    rec.open()
    try:
        for _ in range(3):
            rec.read()
        reads = chunks = 0
        read_ns = 0
        c0, t0 = time.thread_time(), time.monotonic()
        while time.monotonic() - t0 < seconds:
            nap = 0.1 - rec.buffered_s() + 0.002
            if nap > 0:
                await asyncio.sleep(nap)
            a = time.thread_time_ns()
            rec.read()
            read_ns += time.thread_time_ns() - a
            reads += 1
            chunks += 1
        return (time.thread_time() - c0) / (seconds / 60), read_ns / reads / 1000, reads / chunks
    finally:
        rec.close()


async def polled(source: str, seconds: float) -> tuple[float, float, float]:
    """The daemon's way: a timer set for when the next chunk should have arrived, a read that never blocks."""
    stream = PulseStream(source, 16000, CHUNK, name="bench-polled")
    await stream.open(5)
    try:
        await asyncio.sleep(0.3)
        stream.read()
        reads = chunks = 0
        read_ns = 0
        c0, t0 = time.thread_time(), time.monotonic()
        while time.monotonic() - t0 < seconds:
            a = time.thread_time_ns()
            chunks += len(stream.read())
            read_ns += time.thread_time_ns() - a
            reads += 1
            await asyncio.sleep(stream.next_poll_s())
        return (time.thread_time() - c0) / (seconds / 60), read_ns / reads / 1000, reads / max(1, chunks)
    finally:
        stream.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="seconds measured per reader and round (default 10)")
    p.add_argument("--rounds", type=int, default=3, help="rounds, each measuring both readers (default 3)")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="captioner-capture-cost-"))
    results: dict[str, list[tuple[float, float, float]]] = {"blocking": [], "polled": []}
    with PulseEnv(work / "pulse", keepalive_ms=200) as env:
        for key, value in env.env.items():
            os.environ[key] = value
        pulse.use_client_config_without_shm()  # as the daemon: both readers on the same transport
        tone = tone_wav(work / "tone.wav", args.seconds * 2 * args.rounds + 10, 440.0, rate=48000, channels=2)
        player = env.play_async(tone)
        try:
            for _ in range(args.rounds):
                results["blocking"].append(asyncio.run(blocking(env.monitor, args.seconds)))
                results["polled"].append(asyncio.run(polled(env.monitor, args.seconds)))
        finally:
            player.kill()
    print("| reader | loop CPU per audio minute (rounds) | CPU per read, median | reads per chunk |")
    print("|---|---|---|---|")
    for name, rows in results.items():
        cpu = ", ".join(f"{r[0]:.3f}" for r in rows)
        print(
            f"| {name} | {statistics.median(r[0] for r in rows):.3f} s ({cpu}) "
            f"| {statistics.median(r[1] for r in rows):.0f} µs | {statistics.median(r[2] for r in rows):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
