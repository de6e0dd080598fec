"""benchmarks/run.py's reference floors: what capture alone costs without the daemon (bare PortAudio, parec,
libpulse-simple, an idle asyncio loop, a minimal pipeline) and the sound server with no recorder at all.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks.common import ROOT, ServerMeter, proc_runtime_s
from benchmarks.perf_report import Floor
from tests.support.fake_translator import FakeTranslator
from tests.support.pulse_env import PulseEnv

# What capture alone costs, measured by the recorder itself (time.process_time(): every thread, to the ns) after a
# second of warm-up, between printing "ready" and printing its CPU seconds per audio minute (the parent reads the
# sound server over the same span).
# PortAudio: the daemon's device, rate and block size, a callback that only copies the block.
_BARE_PORTAUDIO = """
import sys, time, sounddevice as sd
seconds = float(sys.argv[1])
info = sd.query_devices("pulse", "input")
rate, channels = int(info["default_samplerate"]), max(1, min(2, int(info["max_input_channels"])))
def callback(indata, frames, time_info, status):
    indata.copy()
with sd.InputStream(device="pulse", samplerate=rate, channels=channels, dtype="float32",
                    blocksize=rate * 100 // 1000, callback=callback):
    time.sleep(1.0)
    print("ready", flush=True)
    c0, t0 = time.process_time(), time.monotonic()
    time.sleep(seconds)
    print((time.process_time() - c0) / ((time.monotonic() - t0) / 60), flush=True)
"""
# libpulse-simple: what the daemon's native backend opens (16 kHz mono PCM16, 100 ms fragments), read loop only.
_BARE_PULSE_SIMPLE = """
import sys, time
from captioner.inputs.pulse import PulseRecorder
seconds, source = float(sys.argv[1]), sys.argv[2]
rec = PulseRecorder(source, 16000, 3200, name="bench-floor")
rec.open()
for _ in range(10):
    rec.read()
print("ready", flush=True)
c0, t0 = time.process_time(), time.monotonic()
while time.monotonic() - t0 < seconds:
    rec.read()
print((time.process_time() - c0) / ((time.monotonic() - t0) / 60), flush=True)
rec.close()
"""

# The least a Python client of the service must do per chunk, with none of the daemon's parts: one asyncio loop
# that sleeps until the chunk is due, reads it from libpulse-simple (on the loop, which the daemon must not do:
# a frozen sound server would freeze it), measures it with the gate's level function, and sends it to the fake
# translator: one real session per target (session.update first, its events read and dropped), as the service
# wants one per language. The daemon cannot cost less for the same number of targets.
_BARE_PIPELINE = """
import asyncio, base64, json, sys, time
import aiohttp
from captioner.inputs.gate import _measure
from captioner.translation.protocol import Q3, session_update
from captioner.inputs.pulse import PulseRecorder
seconds, source, url, key, targets = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
async def main():
    async with aiohttp.ClientSession() as http:
        sockets = []
        for target in targets:
            ws = await http.ws_connect(f"{url}?model={Q3.family}", headers={"Authorization": f"Bearer {key}"})
            await ws.receive()
            update = session_update(Q3, target=target, source_language="en", transcribe_source=False, voice=None,
                                    audio_output=False)
            await ws.send_str(json.dumps(update))
            await ws.receive()
            sockets.append(ws)
        async def drain(ws):
            async for _ in ws:
                pass
        drainers = [asyncio.create_task(drain(ws)) for ws in sockets]
        rec = PulseRecorder(source, 16000, 3200, name="bench-floor")
        rec.open()
        for _ in range(10):
            rec.read()
        print("ready", flush=True)
        c0, t0 = time.process_time(), time.monotonic()
        while time.monotonic() - t0 < seconds:
            nap = 0.1 - rec.buffered_s() + 0.002
            if nap > 0:
                await asyncio.sleep(nap)
            pcm = rec.read()
            _measure(pcm)
            frame = '{"type":"input_audio_buffer.append","audio":"' + base64.b64encode(pcm).decode() + '"}'
            for ws in sockets:
                await ws.send_str(frame)
        print((time.process_time() - c0) / ((time.monotonic() - t0) / 60), flush=True)
        rec.close()
        for d in drainers:
            d.cancel()
asyncio.run(main())
"""
# The bottom of it all: an asyncio loop woken by a 100 ms timer that does nothing else (the cost of the wake-ups).
_BARE_WAKEUPS = """
import asyncio, sys, time
seconds = float(sys.argv[1])
async def main():
    await asyncio.sleep(1.0)
    print("ready", flush=True)
    c0, t0 = time.process_time(), time.monotonic()
    while time.monotonic() - t0 < seconds:
        await asyncio.sleep(0.1)
    print((time.process_time() - c0) / ((time.monotonic() - t0) / 60), flush=True)
asyncio.run(main())
"""


@contextlib.contextmanager
def _playing(pulse: PulseEnv, wav: Path) -> Iterator[None]:
    """The speech plays into the sink meanwhile (silence from the keepalive once it ends)."""
    player = pulse.play_async(wav)
    try:
        yield
    finally:
        if player.poll() is None:
            player.terminate()
        player.wait(5)


@contextlib.contextmanager
def _reporting_child(what: str, argv: list[str], env: dict[str, str]) -> Iterator[Callable[[], float]]:
    """A floor's child process, set up and warm (it said "ready"); the block gets a function that waits for the CPU
    per audio minute the child reports at the end of its measurement. The child is killed if it is still there."""
    child = subprocess.Popen(
        [sys.executable, *argv], env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stdout = child.stdout
    assert stdout is not None

    def result() -> float:
        line = stdout.readline()
        if not line.strip():
            raise RuntimeError(f"{what}: {child.communicate(timeout=10)[1][-2000:]}")
        child.wait(30)
        return float(line)

    try:
        if stdout.readline().strip() != "ready":
            raise RuntimeError(f"{what}: {child.communicate(timeout=10)[1][-2000:]}")
        yield result
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _child_floor(pulse: PulseEnv, wav: Path, seconds: float, what: str, argv: list[str], env: dict[str, str]) -> Floor:
    with _playing(pulse, wav), _reporting_child(what, argv, env) as result:
        server = ServerMeter(pulse).start()
        cpu_per_min = result()
        server.stop()
    return Floor(pulse.keepalive_ms, what, cpu_per_min, server.per_min, server.render_ms)


def measure_floors(
    pulse: PulseEnv,
    wav: Path,
    seconds: float,
    fake: FakeTranslator,
    minimal_only: bool = False,
    languages: tuple[list[str], ...] = (["ja"],),
) -> list[Floor]:
    """CPU per audio minute of bare recorders on the monitor (and of the sound server alone), while speech plays.

    minimal_only: just the minimal pipelines, one for each list of target `languages` (the CPU ratios' floors).
    """
    ms = pulse.keepalive_ms
    minimal = [_minimal_pipeline(pulse, wav, seconds, fake, targets) for targets in languages]
    if minimal_only:
        return minimal
    floors = [
        _child_floor(
            pulse,
            wav,
            seconds,
            "bare PortAudio capture (ALSA `pulse` device, its default rate, 100 ms blocks), copy-only callback",
            ["-c", _BARE_PORTAUDIO, str(seconds)],
            pulse.child_env(PULSE_SOURCE="@DEFAULT_MONITOR@"),  # what the daemon's `loopback` asks for
        ),
        _child_floor(
            pulse,
            wav,
            seconds,
            "bare libpulse-simple reader (captioner.inputs.pulse.PulseRecorder, 16 kHz mono, 100 ms fragments)",
            ["-c", _BARE_PULSE_SIMPLE, str(seconds), pulse.monitor],
            pulse.child_env(),
        ),
    ]
    # parec (C, one thread) into a pipe drained here; its CPU from /proc.
    with _playing(pulse, wav):
        parec = subprocess.Popen(
            [
                "parec",
                f"--device={pulse.monitor}",
                "--rate=16000",
                "--channels=1",
                "--format=s16le",
                "--latency-msec=100",
                "--raw",
                "--client-name=bench-parec",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=pulse.child_env(),
        )
        assert parec.stdout is not None
        out = parec.stdout
        got = [0]

        def drain() -> None:
            while data := os.read(out.fileno(), 65536):
                got[0] += len(data)

        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        try:
            time.sleep(1.0)
            server = ServerMeter(pulse).start()
            c0, t0 = proc_runtime_s(parec.pid), time.monotonic()
            time.sleep(seconds)
            c1, t1 = proc_runtime_s(parec.pid), time.monotonic()
            server.stop()
        finally:
            parec.terminate()
            parec.wait(5)
            drainer.join(5)
            out.close()
    if got[0] < 16000 * 2 * seconds / 2:
        print(f"  ! parec delivered only {got[0]} bytes in {seconds:.0f} s", file=sys.stderr)
    floors.insert(
        1,
        Floor(
            ms,
            "`parec --rate=16000 --channels=1 --format=s16le --latency-msec=100` into a pipe",
            (c1 - c0) / ((t1 - t0) / 60),
            server.per_min,
            server.render_ms,
        ),
    )
    with _playing(pulse, wav):
        server = ServerMeter(pulse).start()
        time.sleep(seconds)
        server.stop()
    floors.append(Floor(ms, "no recorder at all", None, server.per_min, server.render_ms))
    floors.append(
        _child_floor(
            pulse,
            wav,
            seconds,
            "an asyncio loop woken every 100 ms, doing nothing (the wake-ups alone)",
            ["-c", _BARE_WAKEUPS, str(seconds)],
            pulse.child_env(),
        )
    )
    return floors + minimal


def _minimal_what(targets: list[str]) -> str:
    return (
        "minimal pipeline: one asyncio loop reads libpulse-simple when the chunk is due, measures it "
        f"(gate levels), sends it to the fake translator ({len(targets)} target(s))"
    )


def _minimal_pipeline(pulse: PulseEnv, wav: Path, seconds: float, fake: FakeTranslator, targets: list[str]) -> Floor:
    floor = _child_floor(
        pulse,
        wav,
        seconds,
        _minimal_what(targets),
        ["-c", _BARE_PIPELINE, str(seconds), pulse.monitor, fake.url, fake.api_key, *targets],
        pulse.child_env(),
    )
    floor.targets = len(targets)
    return floor


@contextlib.contextmanager
def minimal_beside(pulse: PulseEnv, seconds: float, fake: FakeTranslator, targets: list[str]) -> Iterator[list[Floor]]:
    """The minimal pipeline with `targets` sessions, measuring for `seconds` from when this is entered (it is set up
    and warm by then); the Floor is in the yielded list once the block ends and the pipeline has reported.

    Run beside a daemon run, both are measured over the same seconds of the same machine: on this VM the floor
    measured a few minutes apart moved by up to 60 %, far more than anything a ratio should show.
    """
    argv = ["-c", _BARE_PIPELINE, str(seconds), pulse.monitor, fake.url, fake.api_key, *targets]
    found: list[Floor] = []
    with _reporting_child(_minimal_what(targets), argv, pulse.child_env()) as result:
        yield found
        what = _minimal_what(targets) + ", beside the daemon run"
        found.append(Floor(pulse.keepalive_ms, what, result(), float("nan"), float("nan"), len(targets)))
