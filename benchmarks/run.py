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
  callback, `parec` (C, one thread) and a bare libpulse-simple reader (captioner.inputs.pulse.PulseRecorder), each at
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
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import hotpath
from benchmarks.common import (
    GAP_S,
    PHRASES,
    InfoDaemon,
    NotifyListener,
    ServerMeter,
    compile_daemon,
    machine,
    metric_text_sum,
    missing_tools,
    proc_cpu_s,
    proc_status_kb,
    proc_threads_cpu_s,
    silence_obs_capture,
)
from benchmarks.perf_floors import measure_floors, minimal_beside
from benchmarks.perf_report import CHUNK_MS, Floor, RunResult, details, legend, table
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.speech import silence_padded_sequence, wav_duration

KEY = "sk-bench"
OBS_PASSWORD = "bench-pass"
# How often an open dashboard asks for /status (captioner/web/dashboard.py POLL_MS).
DASHBOARD_POLL_S = 1.0
LANGUAGES = ["ja", "zh", "ko", "fr", "de", "es", "it", "pt"]
TOOLS = ("obs", "Xvfb", "pulseaudio", "pactl", "paplay", "pacat", "parec", "espeak-ng", "sox")
_CAPTURE_LINE = re.compile(r"capturing from (.*) at (\d+) Hz, (\d+) channel")


# ---- the daemon process -----------------------------------------------------------------------------------


class BenchDaemon(InfoDaemon):
    """InfoDaemon (config, HTTP helpers, spawned at the production log level) with start-up timing."""

    def start_timed(self, notify: NotifyListener, timeout_s: float = 20) -> tuple[float, float | None]:
        """Spawn; return (seconds to /healthz 200, seconds to READY=1)."""
        t0 = self.spawn()
        assert self.proc is not None
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


def measure_start(work: Path, fake: FakeTranslator, pulse: PulseEnv, obs: ObsEnv) -> tuple[float, float | None]:
    """One start-up: spawn, /healthz, READY=1, stop."""
    daemon, notify, _, healthz, ready = _start(work, fake, pulse, obs, LANGUAGES[:1])
    try:
        _stop(daemon)
    finally:
        daemon.kill()
        notify.close()
    return healthz, ready


def _recorders(pulse: PulseEnv) -> int:
    return len(pulse.pactl("list", "short", "source-outputs").splitlines())


def _py_spy(pid: int, out: Path | None) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the daemon (every thread, idle time left out) while the speech plays; its CPU is its own."""
    if out is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).parent / "py-spy"
    argv = [str(spy), "record", "-p", str(pid), "-o", str(out), "-f", "raw", "-r", "200", "--threads", "--nonblocking"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class _Dashboard:
    """GET /status once a second while the speech plays, as an open dashboard (an OBS dock) does."""

    def __init__(self, daemon: BenchDaemon) -> None:
        self._daemon = daemon
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> _Dashboard:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _poll(self) -> None:
        while not self._stop.wait(DASHBOARD_POLL_S):
            self._daemon.status()


def measure_run(
    work: Path,
    fake: FakeTranslator,
    pulse: PulseEnv,
    obs: ObsEnv,
    n: int,
    wav: Path,
    spy_out: Path | None = None,
    dashboard: bool = False,
    with_floors: bool = False,
) -> RunResult:
    """Start the daemon with n targets, play the speech, read CPU/RSS/metrics, stop, read the trace."""
    targets = LANGUAGES[:n]
    daemon, notify, trace, healthz, ready = _start(work, fake, pulse, obs, targets)
    result = RunResult(pulse.keepalive_ms, n, healthz, ready, dashboard=dashboard)
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
        with contextlib.ExitStack() as floors:
            # The minimal pipelines to divide by, measured over the same seconds (--beside).
            beside = [
                floors.enter_context(minimal_beside(pulse, wav_duration(wav), fake, LANGUAGES[:k]))
                for k in sorted({1, n})
                if with_floors
            ]
            server = ServerMeter(pulse).start()
            spy = _py_spy(pid, spy_out)
            threads0, cpu0, t0 = proc_threads_cpu_s(pid), proc_cpu_s(pid), time.monotonic()
            with _Dashboard(daemon) if dashboard else contextlib.nullcontext():
                pulse.play(wav)
            threads1, cpu1, t1 = proc_threads_cpu_s(pid), proc_cpu_s(pid), time.monotonic()
        result.beside = [f for found in beside for f in found]
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            spy.wait(30)
        server.stop()
        result.cpu_s, result.audio_s = cpu1 - cpu0, t1 - t0
        result.cpu_threads_s = {k: threads1[k] - threads0[k] for k in threads1}
        result.server_cpu_s, result.render_ms = server.cpu_s, server.render_ms
        time.sleep(1.5)  # the last sentence's final (the fake ends a segment after 600 ms of silence)
        result.rss_peak_mb = proc_status_kb(pid, "VmHWM") / 1024
        anon_kb = proc_status_kb(pid, "Anonymous", "smaps_rollup")
        result.rss_anon_mb = anon_kb / 1024
        result.rss_file_mb = (proc_status_kb(pid, "Rss", "smaps_rollup") - anon_kb) / 1024
        metrics = daemon.get("/metrics")[1]
        result.finals = int(metric_text_sum(metrics, "captioner_captions_final_total"))
        result.obs_writes = int(metric_text_sum(metrics, 'captioner_obs_writes_total{result="ok"}'))
        result.dropped_blocks = metric_text_sum(metrics, "captioner_audio_dropped_blocks_total")
        result.skipped_chunks = metric_text_sum(metrics, "captioner_audio_skipped_chunks_total")
        result.stop_s = _stop(daemon)
    finally:
        daemon.kill()
        notify.close()
    for line in trace.read_text().splitlines() if trace.exists() else []:
        name, seconds = line.split()
        if name.startswith("capture_to_wire_held"):
            result.capture_to_wire_held_s.append(float(seconds))
        elif name.startswith("capture_to_wire"):
            result.capture_to_wire_s.append(float(seconds))
        elif name == "final_to_screen":
            result.final_to_screen_s.append(float(seconds))
    return result


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


def _floors(
    pulse: PulseEnv,
    wav: Path,
    args: argparse.Namespace,
    fake: FakeTranslator,
    counts: list[int],
    round_: int,
    minimal_only: bool,
) -> list[Floor]:
    """The reference rows at this sink: the minimal pipeline with 1 session and with each target count's."""
    print(f"reference recorders: sink {pulse.keepalive_ms} ms, round {round_} ...", flush=True)
    languages = tuple(LANGUAGES[:n] for n in sorted({1, *counts}))
    found = measure_floors(pulse, wav, args.floor_seconds, fake, minimal_only, languages)
    for f in found:
        f.round = round_
    return found


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
    p.add_argument(
        "--floors",
        choices=("all", "minimal"),
        default="all",
        help="reference rows: every bare recorder, or only the minimal pipeline (the CPU ratios' floor)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every configuration this many times, each round right after its own minimal pipelines; "
        "the CPU ratios shown are the medians of the rounds'; only the minimal pipelines are measured (default 1)",
    )
    p.add_argument(
        "--beside",
        action="store_true",
        help="run the minimal pipelines (1 session, and as many as targets) beside each daemon run, measured over "
        "the same seconds, and divide by those (instead of separate floor runs)",
    )
    p.add_argument(
        "--dashboard",
        action="store_true",
        help="poll /status once a second while the speech plays, as an open dashboard (an OBS dock) does",
    )
    p.add_argument("--py-spy", type=Path, metavar="DIR", help="record a py-spy profile of each daemon run into DIR")
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
    if args.rounds < 1:
        p.error("--rounds: at least 1")
    latencies = _int_list(p, "--sink-latency-ms", args.sink_latency_ms)
    if not latencies or any(ms <= 0 for ms in latencies):
        p.error("--sink-latency-ms: positive milliseconds expected")
    if missing := missing_tools(TOOLS):
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
        print(f"daemon: {compile_daemon()} (byte-compiled, as installed)")
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
                    for round_ in range(1, args.rounds + 1):
                        # Each round measures its floors just before its daemon runs: this VM's speed drifts
                        # over minutes, and a ratio is only as good as the two figures are close in time.
                        if args.floor_seconds > 0 and args.rounds > 1 and not args.beside:
                            floors += _floors(pulse, wav, args, fake, counts, round_, minimal_only=True)
                        for n in counts:
                            print(f"run: sink {ms} ms, {n} target(s), round {round_} ...", flush=True)
                            spy = args.py_spy / f"sink{ms}-targets{n}-{round_}.txt" if args.py_spy else None
                            where = work / f"run-{ms}-{n}-{round_}"
                            r = measure_run(
                                where, fake, pulse, obs, n, wav, spy, args.dashboard, with_floors=args.beside
                            )
                            r.round = round_
                            starts.append((r.ready_healthz_s, r.ready_notify_s))
                            runs.append(r)
                            print(
                                f"  {r.backend}: {r.device}; sink renders every {r.render_ms:.1f} ms; "
                                f"{r.finals} finals; CPU {r.cpu_per_audio_min:.3f} s/audio-min, "
                                f"sound server {r.server_per_audio_min:.3f}; started in {r.ready_healthz_s:.2f} s"
                            )
                    if i == 0:  # start-up does not depend on the sink's cadence
                        for j in range(args.ready_runs):
                            starts.append(measure_start(work / f"start{j}", fake, pulse, obs))
                            print(f"start {j + 1}: /healthz in {starts[-1][0]:.2f} s", flush=True)
                    if args.floor_seconds > 0 and args.rounds == 1 and not args.beside:  # (rounds: each round's)
                        floors += _floors(pulse, wav, args, fake, counts, 1, minimal_only=args.floors == "minimal")
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
