"""Performance benchmark (issue #5): the real daemon against real OBS, real PulseAudio audio and the fake translator.

For 1, 4 and 8 target languages it starts `python -m captioner run` (a subprocess, as systemd would), plays
espeak-ng speech with pauses into a PulseAudio null sink (48 kHz stereo) whose monitor the daemon captures
(`audio.backend` from --backend: `auto` records natively from the sound server at 16 kHz mono, `portaudio` goes
through PortAudio and the ALSA `pulse` plugin), and reports:

* capture-to-wire: from the audio block reaching the capture callback to its bytes being sent on the translator's
  WebSocket, per chunk and target (raw samples from CAPTIONER_TRACE, the same spot that feeds the histogram
  `captioner_capture_to_wire_seconds`);
* final-to-screen: from the translator's final-text frame arriving to OBS confirming the text change
  (`captioner_final_to_screen_seconds`, raw samples likewise);
* the daemon's CPU seconds per minute of captured audio (utime+stime of all its threads, /proc/<pid>/stat) and its
  peak RSS (VmHWM);
* the sound server's CPU seconds per audio minute over the same period (with the native backend the server
  downmixes and resamples to 16 kHz for the daemon, so part of the capture cost moves there);
* start-up: from spawning the process to /healthz answering and to sd_notify READY=1 on NOTIFY_SOCKET;
* reference floors: what capture alone costs, without the daemon: a bare PortAudio stream with a copy-only
  callback, `parec` (C, one thread) and a bare libpulse-simple reader (captioner.pulse.PulseRecorder), each at
  16 kHz mono / 100 ms fragments where it can, and the sound server with no recorder at all;

and then the in-process hot-path micro-benchmark (benchmarks/hotpath.py).

The daemon runs and the floors are repeated for every --sink-latency-ms (default 40 and 200; the extra start-ups
and the micro-benchmark run once): the null sink is clocked by a silent playback stream of that latency (PulseEnv
keepalive_ms), which sets how often the sink renders and so how often its monitor wakes every recorder.
On this kind of VM that cadence dominates the CPU of any capture. A real
device's cadence is set by its most demanding client: captioner alone asks for 100 ms fragments, OBS capturing
the same device asks ~25 ms. The null sink thread's wake-ups are counted during every measurement and printed as
"renders every ~N ms". OBS's own Desktop Audio capture is pointed at a non-existent device here: it would
otherwise record the same monitor with ~5 ms buffers and clock the sink whatever the keepalive asks.

A benchmark, not a test: it prints figures against the issue's targets and never fails on a miss. Do not run it
while the test suite runs (both start a headless OBS; two at once on 2 cores distort each other).

    .venv/bin/python benchmarks/run.py [--duration 60] [--targets 1,4,8] [--sink-latency-ms 40,200]
        [--backend auto|pulse|portaudio] [--ready-runs 5] [--floor-seconds 30] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import hotpath
from tests.support.daemonproc import DaemonProc
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.speech import silence_padded_sequence, wav_duration

KEY = "sk-bench"
OBS_PASSWORD = "bench-pass"
LANGUAGES = ["ja", "zh", "ko", "fr", "de", "es", "it", "pt"]
TOOLS = ("obs", "Xvfb", "pulseaudio", "pactl", "paplay", "pacat", "parec", "espeak-ng", "sox")
ROOT = Path(__file__).resolve().parent.parent
PHRASES = [
    "Hello everyone and welcome back to the stream",
    "Today we are going to build a castle on the hill",
    "First we need a lot of stone and some wood",
    "The walls should be thick enough to stop an army",
    "Let me know in the chat what colour the towers should be",
    "We will add a drawbridge over the moat later",
    "This part always takes longer than I expect",
    "Thank you all for watching and see you next time",
]
CHUNK_MS = 100
GAP_S = 1.5  # pause between sentences: longer than the fake's 600 ms end-of-speech silence
TARGETS = {  # the targets
    "capture_to_wire_p99_s": CHUNK_MS / 1000 + 0.005,
    "final_to_screen_p99_s": 0.010,
    "cpu_1": 0.3,
    "cpu_8": 1.2,
    "rss_mb": 80.0,
    "ready_s": 1.5,
}
_CAPTURE_LINE = re.compile(r"capturing from (.*) at (\d+) Hz, (\d+) channel")


@dataclass
class RunResult:
    """What one daemon run with `targets` languages, on a sink clocked at `sink_ms`, measured."""

    sink_ms: int
    targets: int
    ready_healthz_s: float
    ready_notify_s: float | None
    device: str = "?"
    # /status `audio_source`: backend, device, rate, channels (None if the capture never opened).
    audio_source: dict[str, Any] | None = None
    audio_s: float = 0.0
    cpu_s: float = 0.0
    server_cpu_s: float = 0.0  # the PulseAudio server's CPU over the same period
    render_ms: float = float("nan")  # how often the null sink rendered (its thread's wake-ups) over the period
    # CPU by thread: the asyncio loop (main thread), libpulse's mainloop thread, every other thread
    # (PortAudio's callback thread, the OBS worker, executors).
    cpu_threads_s: dict[str, float] = field(default_factory=dict)
    rss_peak_mb: float = 0.0
    rss_anon_mb: float = 0.0  # private memory (heap, Python objects) at the end of the run
    rss_file_mb: float = 0.0  # mapped files (shared libraries) at the end of the run
    capture_to_wire_s: list[float] = field(default_factory=list)
    final_to_screen_s: list[float] = field(default_factory=list)
    finals: int = 0
    obs_writes: int = 0
    dropped_blocks: float = 0.0
    skipped_chunks: float = 0.0
    stop_s: float = 0.0

    @property
    def cpu_per_audio_min(self) -> float:
        return self.cpu_s / (self.audio_s / 60) if self.audio_s else float("nan")

    @property
    def server_per_audio_min(self) -> float:
        return self.server_cpu_s / (self.audio_s / 60) if self.audio_s else float("nan")

    @property
    def backend(self) -> str:
        return str(self.audio_source["backend"]) if self.audio_source else "?"


@dataclass
class Floor:
    """A reference measurement without the daemon: CPU per audio minute of one bare recorder (None: no recorder)."""

    sink_ms: int
    what: str
    cpu_per_min: float | None
    server_per_min: float
    render_ms: float


# ---- the daemon process -----------------------------------------------------------------------------------


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of every thread of `pid`, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_runtime_s(pid: int) -> float:
    """CPU seconds of the live threads of `pid` to the nanosecond (/proc/.../schedstat), for small figures: stat
    counts in 10 ms clock ticks, too coarse for a recorder that needs a few ms a second."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def _proc_threads_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds by thread group: "event loop" (the main thread), "libpulse" (threaded-ml), "other"."""
    out = {"event loop": 0.0, "libpulse": 0.0, "other": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            stat = (task / "stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat.rsplit(")", 1)[1].split()
            group = "event loop" if int(task.name) == pid else "libpulse" if name == "threaded-ml" else "other"
            out[group] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _thread_wakeups(pid: int, name: str) -> int:
    """Voluntary context switches of the threads of `pid` called `name`: how often they slept and woke."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            if (task / "comm").read_text().strip() == name:
                total += _proc_status_kb(int(task.name), "voluntary_ctxt_switches")
    return total


class ServerMeter:
    """The PulseAudio server's CPU and its null sink's render cadence between start() and stop()."""

    def __init__(self, pulse: PulseEnv) -> None:
        assert pulse.proc is not None
        self.pid = pulse.proc.pid
        self.cpu_s, self.render_ms, self.seconds = 0.0, float("nan"), 0.0

    def _sample(self) -> tuple[float, int, float]:
        return _proc_runtime_s(self.pid), _thread_wakeups(self.pid, "null-sink"), time.monotonic()

    def start(self) -> ServerMeter:
        self._t0 = self._sample()
        return self

    def stop(self) -> ServerMeter:
        (c0, w0, t0), (c1, w1, t1) = self._t0, self._sample()
        self.cpu_s, self.seconds = c1 - c0, t1 - t0
        self.render_ms = 1000 * self.seconds / (w1 - w0) if w1 > w0 else float("nan")
        return self

    @property
    def per_min(self) -> float:
        return self.cpu_s / (self.seconds / 60) if self.seconds else float("nan")


def _proc_status_kb(pid: int, key: str, name: str = "status") -> int:
    for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _metric_sum(text: str, name: str) -> float:
    """Sum of every sample of one metric (all label sets) in Prometheus text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


class NotifyListener:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET; remembers when READY=1 arrived."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.ready_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if self.ready_at is None and b"READY=1" in msg.split(b"\n"):
                self.ready_at = time.monotonic()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class BenchDaemon(DaemonProc):
    """DaemonProc (config, HTTP helpers) started at the production log level with start-up timing."""

    def start_timed(self, notify: NotifyListener, timeout_s: float = 20) -> tuple[float, float | None]:
        """Spawn; return (seconds to /healthz 200, seconds to READY=1)."""
        cmd = [sys.executable, "-m", "captioner", "run", "--config", str(self.config_path), "--log-level", "info"]
        with self.log_path.open("wb") as log:
            t0 = time.monotonic()
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=str(self.tmp)
            )
        healthz: float | None = None
        while healthz is None:
            if self.get("/healthz")[0] == 200:
                healthz = time.monotonic() - t0
            elif self.proc.poll() is not None or time.monotonic() - t0 > timeout_s:
                raise RuntimeError(f"daemon did not come up:\n{self.log()[-3000:]}")
            else:
                time.sleep(0.003)
        deadline = time.monotonic() + 2
        while notify.ready_at is None and time.monotonic() < deadline:
            time.sleep(0.003)
        return healthz, None if notify.ready_at is None else notify.ready_at - t0


#: `--set key.path=value` overrides (YAML values) applied to every generated daemon config.
OVERRIDES: list[tuple[list[str], Any]] = []


def daemon_config(fake: FakeTranslator, obs: ObsEnv, targets: list[str]) -> dict[str, Any]:
    # --backend arrives as the first of OVERRIDES (audio.backend), so a later --set can still override it.
    cfg: dict[str, Any] = {
        "audio": {"device": "loopback", "chunk_ms": CHUNK_MS},
        "translator": {"url": fake.url, "api_key": "${DASHSCOPE_API_KEY}", "targets": targets},
        "obs": {"host": "127.0.0.1", "port": obs.ws_port, "password": "${OBS_WEBSOCKET_PASSWORD}"},
        "outputs": [{"obs_source": f"Bench {t.upper()}", "language": t} for t in targets],
        "log_level": "info",
    }
    for path, value in OVERRIDES:
        node = cfg
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return cfg


def _start(
    work: Path, fake: FakeTranslator, pulse: PulseEnv, obs: ObsEnv, targets: list[str]
) -> tuple[BenchDaemon, NotifyListener, Path, float, float | None]:
    work.mkdir(parents=True, exist_ok=True)
    trace = work / "trace.txt"
    notify = NotifyListener(work / "notify.sock")
    env = pulse.child_env(
        DASHSCOPE_API_KEY=KEY,
        OBS_WEBSOCKET_PASSWORD=OBS_PASSWORD,
        NOTIFY_SOCKET=str(notify.path),
        CAPTIONER_TRACE=str(trace),
    )
    daemon = BenchDaemon(work, daemon_config(fake, obs, targets), env)
    healthz, ready = daemon.start_timed(notify)
    return daemon, notify, trace, healthz, ready


def _stop(daemon: BenchDaemon) -> float:
    t0 = time.monotonic()
    code = daemon.stop(signal.SIGTERM)
    if code != 0:
        print(f"  ! daemon exited {code}; log tail:\n{daemon.log()[-2000:]}", file=sys.stderr)
    return time.monotonic() - t0


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
from captioner.pulse import PulseRecorder
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
# translator (a real session: session.update first, its events read and dropped). The daemon cannot cost less.
_BARE_PIPELINE = """
import asyncio, base64, json, sys, time
import aiohttp
from captioner.gate import _measure
from captioner.translation.protocol import Q3, session_update
from captioner.pulse import PulseRecorder
seconds, source, url, key = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
async def main():
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url}?model={Q3.family}", headers={"Authorization": f"Bearer {key}"})
        await ws.receive()
        update = session_update(Q3, target="ja", source_language="en", transcribe_source=False, voice=None,
                                audio_output=False)
        await ws.send_str(json.dumps(update))
        await ws.receive()
        async def drain():
            async for _ in ws:
                pass
        drainer = asyncio.create_task(drain())
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
            await ws.send_str('{"type":"input_audio_buffer.append","audio":"' + base64.b64encode(pcm).decode() + '"}')
        print((time.process_time() - c0) / ((time.monotonic() - t0) / 60), flush=True)
        rec.close()
        drainer.cancel()
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


def _child_floor(pulse: PulseEnv, wav: Path, seconds: float, what: str, argv: list[str], env: dict[str, str]) -> Floor:
    with _playing(pulse, wav):
        child = subprocess.Popen(
            [sys.executable, *argv], env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"{what}: {child.communicate(timeout=10)[1][-2000:]}")
            server = ServerMeter(pulse).start()
            line = child.stdout.readline()
            server.stop()
            if not line.strip():
                raise RuntimeError(f"{what}: {child.communicate(timeout=10)[1][-2000:]}")
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    return Floor(pulse.keepalive_ms, what, float(line), server.per_min, server.render_ms)


def measure_floors(pulse: PulseEnv, wav: Path, seconds: float, fake: FakeTranslator) -> list[Floor]:
    """CPU per audio minute of bare recorders on the monitor (and of the sound server alone), while speech plays."""
    ms = pulse.keepalive_ms
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
            "bare libpulse-simple reader (captioner.pulse.PulseRecorder, 16 kHz mono, 100 ms fragments)",
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
            c0, t0 = _proc_runtime_s(parec.pid), time.monotonic()
            time.sleep(seconds)
            c1, t1 = _proc_runtime_s(parec.pid), time.monotonic()
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
    floors.append(
        _child_floor(
            pulse,
            wav,
            seconds,
            "minimal pipeline: one asyncio loop reads libpulse-simple when the chunk is due, measures it "
            "(gate levels), sends it to the fake translator (1 target)",
            ["-c", _BARE_PIPELINE, str(seconds), pulse.monitor, fake.url, KEY],
            pulse.child_env(),
        )
    )
    return floors


def measure_start(work: Path, fake: FakeTranslator, pulse: PulseEnv, obs: ObsEnv) -> tuple[float, float | None]:
    """One start-up: spawn, /healthz, READY=1, stop."""
    daemon, notify, _, healthz, ready = _start(work, fake, pulse, obs, LANGUAGES[:1])
    try:
        _stop(daemon)
    finally:
        daemon.kill()
        notify.close()
    return healthz, ready


def silence_obs_capture(obs: ObsEnv, pulse: PulseEnv) -> None:
    """Point OBS's PulseAudio inputs (its Desktop Audio records the sink's monitor) at a non-existent device.

    OBS records with ~5 ms buffers, which clocks the null sink at ~25 ms whatever the keepalive asks, and its
    stream costs the sound server CPU: the benchmark wants the sink latency alone to set the cadence.
    """
    client = obs.client()
    for item in client.get_input_list().inputs:
        if str(item["inputKind"]).startswith("pulse_"):
            client.set_input_settings(item["inputName"], {"device_id": "captioner-bench-none"}, True)
    deadline = time.monotonic() + 5
    while pulse.pactl("list", "short", "source-outputs").strip():
        if time.monotonic() > deadline:
            print("  ! OBS still records from the sound server: the sink latency is not what is asked", file=sys.stderr)
            return
        time.sleep(0.05)


def _recorders(pulse: PulseEnv) -> int:
    return len(pulse.pactl("list", "short", "source-outputs").splitlines())


def measure_run(work: Path, fake: FakeTranslator, pulse: PulseEnv, obs: ObsEnv, n: int, wav: Path) -> RunResult:
    """Start the daemon with n targets, play the speech, read CPU/RSS/metrics, stop, read the trace."""
    targets = LANGUAGES[:n]
    daemon, notify, trace, healthz, ready = _start(work, fake, pulse, obs, targets)
    result = RunResult(pulse.keepalive_ms, n, healthz, ready)
    try:
        links = ["audio", "obs", *(f"translator:{t}" for t in targets)]
        daemon.wait(lambda: all(daemon.link_state(x) == "connected" for x in links), 30, "all links connected")
        result.audio_source = daemon.status().get("audio_source")
        if src := result.audio_source:
            result.device = f"{src['device']}: {src['rate']} Hz, {src['channels']} ch"
        elif m := _CAPTURE_LINE.search(daemon.log()):
            result.device = f"{m.group(1)}: {m.group(2)} Hz, {m.group(3)} ch"
        if (others := _recorders(pulse) - 1) > 0:
            print(f"  ! {others} other recorder(s) on the sound server besides the daemon", file=sys.stderr)
        time.sleep(1.0)  # past the connection set-up
        assert daemon.proc is not None
        pid = daemon.proc.pid
        server = ServerMeter(pulse).start()
        threads0, cpu0, t0 = _proc_threads_cpu_s(pid), _proc_cpu_s(pid), time.monotonic()
        pulse.play(wav)
        threads1, cpu1, t1 = _proc_threads_cpu_s(pid), _proc_cpu_s(pid), time.monotonic()
        server.stop()
        result.cpu_s, result.audio_s = cpu1 - cpu0, t1 - t0
        result.cpu_threads_s = {k: threads1[k] - threads0[k] for k in threads1}
        result.server_cpu_s, result.render_ms = server.cpu_s, server.render_ms
        time.sleep(1.5)  # the last sentence's final (the fake ends a segment after 600 ms of silence)
        result.rss_peak_mb = _proc_status_kb(pid, "VmHWM") / 1024
        anon_kb = _proc_status_kb(pid, "Anonymous", "smaps_rollup")
        result.rss_anon_mb = anon_kb / 1024
        result.rss_file_mb = (_proc_status_kb(pid, "Rss", "smaps_rollup") - anon_kb) / 1024
        metrics = daemon.get("/metrics")[1]
        result.finals = int(_metric_sum(metrics, "captioner_captions_final_total"))
        result.obs_writes = int(_metric_sum(metrics, 'captioner_obs_writes_total{result="ok"}'))
        result.dropped_blocks = _metric_sum(metrics, "captioner_audio_dropped_blocks_total")
        result.skipped_chunks = _metric_sum(metrics, "captioner_audio_skipped_chunks_total")
        result.stop_s = _stop(daemon)
    finally:
        daemon.kill()
        notify.close()
    for line in trace.read_text().splitlines() if trace.exists() else []:
        name, seconds = line.split()
        if name.startswith("capture_to_wire"):
            result.capture_to_wire_s.append(float(seconds))
        elif name == "final_to_screen":
            result.final_to_screen_s.append(float(seconds))
    return result


# ---- report -----------------------------------------------------------------------------------------------


def _ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def _pct(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) if samples else float("nan")


def _row(what: str, value: str, target: str, ok: bool | None) -> str:
    verdict = "—" if ok is None else ("PASS" if ok else "MISS")
    return f"| {what} | {value} | {target} | {verdict} |"


def _sink(ms: int, render_ms: float) -> str:
    return f"sink clocked at {ms} ms (renders every ~{render_ms:.0f} ms)"


def _render_ms(runs: list[RunResult], floors: list[Floor], ms: int) -> float:
    """The typical render period measured at one sink latency (median over every measurement there)."""
    values = [r.render_ms for r in runs if r.sink_ms == ms] + [f.render_ms for f in floors if f.sink_ms == ms]
    values = [v for v in values if v == v]  # not NaN
    return float(np.median(values)) if values else float("nan")


def legend(latencies: list[int], runs: list[RunResult], floors: list[Floor]) -> str:
    measured = ", ".join(f"{ms} ms → every ~{_render_ms(runs, floors, ms):.0f} ms" for ms in latencies)
    return (
        "Sink latency: a silent playback stream of N ms latency clocks the null sink, which then renders (and its "
        f"monitor wakes every recorder) at a fixed cadence, measured from its thread's wake-ups ({measured}). "
        "A real device's cadence is set by its most demanding client: captioner alone asks for 100 ms "
        "fragments, OBS capturing the same device asks ~25 ms. OBS's own audio capture is off in this benchmark."
    )


def table(
    runs: list[RunResult], starts: list[tuple[float, float | None]], floors: list[Floor], latencies: list[int]
) -> str:
    lines = ["| figure | measured | target | |", "|---|---|---|---|"]
    c2w_target = TARGETS["capture_to_wire_p99_s"]
    for ms in latencies:
        sink = _sink(ms, _render_ms(runs, floors, ms))
        here = [r for r in runs if r.sink_ms == ms]
        for r in here:
            c2w, f2s = r.capture_to_wire_s, r.final_to_screen_s
            p99 = _pct(c2w, 99)
            lines.append(
                _row(
                    f"capture-to-wire, {r.targets} target(s), {sink} (median / p99, n={len(c2w)})",
                    f"{_ms(_pct(c2w, 50))} / {_ms(p99)}",
                    f"p99 ≤ {_ms(c2w_target)}",
                    bool(c2w) and p99 <= c2w_target,
                )
            )
            p99 = _pct(f2s, 99)
            lines.append(
                _row(
                    f"final-to-screen, {r.targets} target(s), {sink} (median / p99, n={len(f2s)})",
                    f"{_ms(_pct(f2s, 50))} / {_ms(p99)}",
                    f"p99 ≤ {_ms(TARGETS['final_to_screen_p99_s'])}",
                    bool(f2s) and p99 <= TARGETS["final_to_screen_p99_s"],
                )
            )
        for r in here:
            limit = TARGETS.get(f"cpu_{r.targets}")
            lines.append(
                _row(
                    f"CPU per audio minute, {r.targets} target(s), {sink}, {r.backend} backend "
                    f"({r.cpu_s:.2f} s over {r.audio_s:.0f} s; sound server {r.server_per_audio_min:.3f} s)",
                    f"{r.cpu_per_audio_min:.3f} s",
                    f"≤ {limit} s" if limit else "(none)",
                    None if limit is None else r.cpu_per_audio_min <= limit,
                )
            )
        for f in floors:
            if f.sink_ms == ms:
                value = "—" if f.cpu_per_min is None else f"{f.cpu_per_min:.3f} s"
                lines.append(
                    _row(f"(reference) {f.what}, sink {ms} ms (sound server {f.server_per_min:.3f} s)", value, "", None)
                )
        for r in here:
            lines.append(
                _row(
                    f"peak RSS (VmHWM), {r.targets} target(s), {r.backend} backend, sink {ms} ms",
                    f"{r.rss_peak_mb:.1f} MB",
                    f"≤ {TARGETS['rss_mb']:.0f} MB",
                    r.rss_peak_mb <= TARGETS["rss_mb"],
                )
            )
    healthz = [h for h, _ in starts]
    ready = [r for _, r in starts if r is not None]
    for what, samples in (("/healthz", healthz), ("READY=1", ready)):
        worst = max(samples) if samples else float("nan")
        lines.append(
            _row(
                f"start → {what} (median / max, n={len(samples)})",
                f"{_pct(samples, 50):.2f} s / {worst:.2f} s",
                f"≤ {TARGETS['ready_s']} s",
                bool(samples) and len(samples) == len(starts) and worst <= TARGETS["ready_s"],
            )
        )
    return "\n".join(lines)


def details(runs: list[RunResult]) -> str:
    lines = [
        "| sink | targets | backend | device opened | sink renders every | audio "
        "| CPU/audio-min: event loop / libpulse / other threads | sound server CPU/audio-min "
        "| RSS at end: private / files | finals | OBS writes | dropped blocks | skipped chunks | stop |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        per_min = {k: v / (r.audio_s / 60) for k, v in r.cpu_threads_s.items()} if r.audio_s else {}
        threads = " / ".join(f"{per_min.get(k, float('nan')):.3f}" for k in ("event loop", "libpulse", "other"))
        lines.append(
            f"| {r.sink_ms} ms | {r.targets} | {r.backend} | {r.device} | {r.render_ms:.1f} ms | {r.audio_s:.1f} s "
            f"| {threads} s | {r.server_per_audio_min:.3f} s "
            f"| {r.rss_anon_mb:.1f} / {r.rss_file_mb:.1f} MB | {r.finals} | {r.obs_writes} | "
            f"{r.dropped_blocks:.0f} | {r.skipped_chunks:.0f} | {r.stop_s:.2f} s |"
        )
    return "\n".join(lines)


def machine() -> str:
    def first(path: str, prefix: str, sep: str) -> str:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                if line.startswith(prefix):
                    return line.split(sep, 1)[1].strip().strip('"')
        return "?"

    cpu = first("/proc/cpuinfo", "model name", ":")
    distro = first("/etc/os-release", "PRETTY_NAME=", "=")
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} × {cpu}, {mem_gb:.0f} GB RAM, {distro}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def speech(duration_s: float, work: Path) -> Path:
    """One wav of espeak-ng sentences with pauses, at least `duration_s` long (sentences are ~3 s)."""
    count = max(1, round(duration_s / (3.0 + GAP_S)))
    while True:
        phrases = [PHRASES[i % len(PHRASES)] for i in range(count)]
        wav = silence_padded_sequence(phrases, GAP_S, work / "speech.wav")
        if wav_duration(wav) >= duration_s:
            return wav
        count += max(1, round((duration_s - wav_duration(wav)) / (3.0 + GAP_S)))


# ---- main -------------------------------------------------------------------------------------------------


def _other_obs_running() -> bool:
    out = subprocess.run(["ps", "-eo", "comm="], capture_output=True, text=True).stdout.split()
    return "obs" in out


def _int_list(p: argparse.ArgumentParser, option: str, text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        p.error(f"{option}: expected comma-separated integers, got {text!r}")


def main() -> int:
    p = argparse.ArgumentParser(description="captioner performance benchmark (real daemon, OBS, PulseAudio)")
    p.add_argument("--duration", type=float, default=60, help="seconds of speech per configuration (default 60)")
    p.add_argument("--targets", default="1,4,8", help="comma-separated target-language counts (default 1,4,8)")
    p.add_argument(
        "--sink-latency-ms",
        default="40,200",
        help="comma-separated latencies of the stream that clocks the null sink, each a full round (default 40,200)",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "pulse", "portaudio"),
        default="auto",
        help="the daemon's audio.backend (default auto)",
    )
    p.add_argument("--ready-runs", type=int, default=5, help="extra start-ups timed for /healthz and READY=1")
    p.add_argument("--micro-minutes", type=float, default=1.0, help="audio minutes for the hot-path micro-benchmark")
    p.add_argument("--skip-micro", action="store_true", help="skip the in-process hot-path micro-benchmark")
    p.add_argument(
        "--floor-seconds",
        type=float,
        default=30,
        help="seconds of each bare reference recorder, per sink latency (0: skip)",
    )
    p.add_argument("--markdown", type=Path, help="also write the tables to this file")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (daemon logs, traces)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a daemon config key (YAML value), e.g. --set gate.enabled=false; repeatable",
    )
    args = p.parse_args()
    OVERRIDES.append((["audio", "backend"], args.backend))
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--set {item!r}: expected KEY=VALUE")
        OVERRIDES.append((key.split("."), yaml.safe_load(value)))
    counts = _int_list(p, "--targets", args.targets)
    if any(not 1 <= n <= len(LANGUAGES) for n in counts):
        p.error(f"target counts must be 1..{len(LANGUAGES)}")
    latencies = _int_list(p, "--sink-latency-ms", args.sink_latency_ms)
    if not latencies or any(ms <= 0 for ms in latencies):
        p.error("--sink-latency-ms: positive milliseconds expected")
    if missing := [t for t in TOOLS if shutil.which(t) is None]:
        print(f"missing tools: {', '.join(missing)} (see tests/run.sh)", file=sys.stderr)
        return 2
    if _other_obs_running():
        print("warning: another OBS is running (the test suite?); figures will be distorted", file=sys.stderr)

    work = Path(tempfile.mkdtemp(prefix="captioner-bench-"))
    started = time.monotonic()
    runs: list[RunResult] = []
    starts: list[tuple[float, float | None]] = []
    floors: list[Floor] = []
    try:
        print(f"machine: {machine()}")
        wav = speech(args.duration, work)
        print(f"speech: espeak-ng sentences with {GAP_S} s pauses, {wav_duration(wav):.1f} s")
        fake = FakeTranslator(api_key=KEY, script=PHRASES * 100)
        fake.start_in_thread()
        try:
            for i, ms in enumerate(latencies):
                with (
                    PulseEnv(work / f"pulse-{ms}", keepalive_ms=ms) as pulse,
                    ObsEnv(pulse, password=OBS_PASSWORD, base=work / f"obs-{ms}") as obs,
                ):
                    silence_obs_capture(obs, pulse)
                    for n in counts:
                        print(f"run: sink {ms} ms, {n} target(s) ...", flush=True)
                        r = measure_run(work / f"run-{ms}-{n}", fake, pulse, obs, n, wav)
                        starts.append((r.ready_healthz_s, r.ready_notify_s))
                        runs.append(r)
                        print(
                            f"  {r.backend}: {r.device}; sink renders every {r.render_ms:.1f} ms; {r.finals} finals; "
                            f"CPU {r.cpu_per_audio_min:.3f} s/audio-min, sound server {r.server_per_audio_min:.3f}"
                        )
                    if i == 0:  # start-up does not depend on the sink's cadence
                        for j in range(args.ready_runs):
                            starts.append(measure_start(work / f"start{j}", fake, pulse, obs))
                    if args.floor_seconds > 0:
                        print(f"reference recorders: sink {ms} ms ...", flush=True)
                        floors += measure_floors(pulse, wav, args.floor_seconds, fake)
        finally:
            fake.stop_thread()
        micro = [] if args.skip_micro else [hotpath.run(wav, args.micro_minutes, n) for n in (1, 8)]
    finally:
        if args.keep:
            print(f"scratch kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    out = [legend(latencies, runs, floors), "", table(runs, starts, floors, latencies), "", details(runs)]
    resampled = [r for r in runs if r.audio_source and r.backend == "portaudio" and r.audio_source["rate"] != 48000]
    if resampled:
        rate = resampled[0].audio_source["rate"] if resampled[0].audio_source else "?"
        out += [
            "",
            f"Note: the null sink and its monitor run at 48 kHz stereo, but PortAudio's ALSA `pulse` device (what "
            f"`loopback` opens with the portaudio backend) offers {rate} Hz as its default rate, which the daemon "
            "uses; PulseAudio resamples in its server."
            + (" The hot-path micro-benchmark below converts 48 kHz stereo." if micro else ""),
        ]
    if micro and any(r.backend == "pulse" for r in runs):
        out += [
            "",
            "Note: the hot-path micro-benchmark's resample stage is the portaudio backend's work; with the pulse "
            "backend the sound server delivers 16 kHz mono PCM16 chunks and the daemon passes them on as they are.",
        ]
    if micro:
        out += ["", hotpath.report(micro)]
    text = "\n".join(out)
    print()
    print(text)
    print(f"\n(benchmark took {time.monotonic() - started:.0f} s)")
    if args.markdown:
        args.markdown.write_text(f"Machine: {machine()}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
