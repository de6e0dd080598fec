"""Soak benchmark (issue #15): the real daemon for hours under faults; lost captions, leaks and CPU drift.

`python -m captioner run` (a subprocess, as systemd would run it) captures espeak-ng speech looped into a private
PulseAudio null sink, talks to the local fake translator (a real WebSocket server, one session per target) and
writes captions into text sources of a real headless OBS 29 and into SRT/VTT/TXT transcript files. On a schedule
scaled to the run length it injects: translator connection drops, HTTP 503 handshake rejections (after a drop, so
the reconnect meets them), OBS killed or closed and started again, the PulseAudio server restarted, SIGHUP
reloads; sessions rotate every few minutes (`translator.rotate_after_s`).

It prints, at the end and as one Markdown table (also written to --out):

* captions expected (the finals the fake translator actually sent, per language; each is numbered, so each is
  identifiable) vs delivered to OBS (the text sources polled over obs-websocket five times a second) and to each
  transcript file; a caption missing while OBS itself was down (shown later only if still current) is counted
  apart from the ones lost otherwise; /metrics finals as a cross-check;
* RSS, open fds and threads of the daemon (/proc/PID) every sample (every minute on runs of an hour or more),
  their least-squares slope per hour after the warm-up, and CPU seconds per captured audio minute per period;
* translator connection attempts by result and session rotations (from /metrics).

A benchmark, not a test: it asserts no timings. Exit 0 when the run completed with no caption lost, 1 when
captions were lost (outside OBS's own downtime), 2 when the harness itself failed, 130 on Ctrl-C. Every process
it starts is stopped on exit; all state lives in a temporary directory (kept with --keep, or when captions were
lost, for the daemon log); nothing is sent anywhere but 127.0.0.1.

    .venv/bin/python benchmarks/soak.py [--hours 6] [--out soak.md] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    GAP_S,
    PHRASES,
    compile_daemon,
    machine,
    missing_tools,
    proc_status_kb,
    silence_obs_capture,
)
from benchmarks.soak_faults import FaultEvent, Rig, inject, schedule
from benchmarks.soak_observers import EmittedWatcher, ObsPoller, Speaker
from benchmarks.soak_report import (
    SAMPLE_HEADER,
    Sample,
    compare,
    format_ids,
    log_summary,
    report_table,
    sample_row,
    take_sample,
)
from benchmarks.soak_rig import KEY, OBS_PASSWORD, POLL_S, TARGETS, SoakDaemon, daemon_config, daemon_env
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.speech import silence_padded_sequence, wav_duration

TOOLS = ("obs", "Xvfb", "pulseaudio", "pactl", "paplay", "pacat", "espeak-ng", "sox")


# ---- main ---------------------------------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the same ordered cleanup as Ctrl-C


def run(args: argparse.Namespace, work: Path) -> int:
    run_s = args.hours * 3600
    # Samples every minute on long runs; shorter runs sample more often so the slope has points to fit.
    sample_s = 60.0 if run_s >= 3600 else max(10.0, run_s / 24)
    warmup_s = min(180.0, run_s / 4)
    rotate_after_s = 180.0 if run_s >= 1800 else max(60.0, run_s / 4)
    tail_s = max(45.0, min(300.0, run_s * 0.05))  # no faults at the end: the last captions settle undisturbed
    plan = schedule(run_s, max(45.0, warmup_s / 2), tail_s)
    print(f"machine: {machine()}")
    print(f"daemon: {compile_daemon()} (byte-compiled, as installed)")
    print(
        f"soak: {run_s / 60:.1f} min, targets {', '.join(TARGETS)}, rotate_after_s {rotate_after_s:.0f}, "
        f"sample every {sample_s:.0f} s, {len(plan)} faults planned; scratch {work}",
        flush=True,
    )
    wav = silence_padded_sequence(PHRASES, GAP_S, work / "speech.wav")
    print(f"speech: {len(PHRASES)} espeak-ng sentences with {GAP_S} s pauses, {wav_duration(wav):.1f} s, looped")
    # Enough numbered lines for a segment every second; beyond it the fake would say "utterance N" (unmatched).
    script = [f"Caption {i + 1:05d} soak" for i in range(int(run_s) + 200)]
    fake = FakeTranslator(api_key=KEY, script=script)
    fake.start_in_thread()
    daemon: SoakDaemon | None = None
    speaker = poller = None
    emitted = EmittedWatcher(fake)
    try:
        with (
            PulseEnv(work / "pulse") as pulse,
            ObsEnv(pulse, password=OBS_PASSWORD, base=work / "obs") as obs,
        ):
            # OBS's Desktop Audio would record the monitor with ~5 ms buffers: CPU the soak does not measure.
            silence_obs_capture(obs, pulse)
            daemon_dir = work / "daemon"
            daemon_dir.mkdir()
            daemon = SoakDaemon(daemon_dir, daemon_config(fake, obs, work, rotate_after_s), daemon_env(pulse, work))
            daemon.start()
            links = ["audio", "obs", *(f"translator:{t}" for t in TARGETS)]
            daemon.wait(lambda: all(daemon.link_state(x) == "connected" for x in links), 60, "all links connected")
            rig = Rig(daemon, fake, obs, pulse, threading.Lock())
            emitted.start()
            poller = ObsPoller(obs).start()
            speaker = Speaker(pulse, wav, rig.pulse_lock).start()
            t0 = time.monotonic()
            samples: list[Sample] = []
            faults: list[FaultEvent] = []
            pending = list(plan)
            next_sample = t0
            print(SAMPLE_HEADER, flush=True)
            while (now := time.monotonic()) < t0 + run_s:
                if daemon.proc is not None and daemon.proc.poll() is not None:
                    print(f"! the daemon exited {daemon.proc.returncode}; log tail:\n{daemon.log()[-3000:]}")
                    return 2
                if pending and now - t0 >= pending[0][0]:
                    _, kind = pending.pop(0)
                    event = FaultEvent(kind, now - t0, now)
                    faults.append(event)
                    inject(rig, kind, event)
                    print(f"  fault at {event.at_s / 60:.1f} min: {kind}: {event.note}", flush=True)
                elif now >= next_sample:
                    samples.append(take_sample(daemon, now - t0))
                    print(sample_row(samples[-1]), flush=True)
                    while next_sample <= now:  # a long fault delays a sample; the next keeps the cadence
                        next_sample += sample_s
                else:
                    time.sleep(0.2)
            # Quiet end: stop speaking, let the last sentence's final arrive and reach OBS and the files.
            speaker.stop()
            settle_end = time.monotonic() + 30
            last = -1
            while time.monotonic() < settle_end:
                emitted.poll()
                count = sum(len(v) for v in emitted.at.values())
                if count == last:
                    break
                last = count
                time.sleep(5)
            time.sleep(2 * POLL_S + 1)
            samples.append(take_sample(daemon, time.monotonic() - t0))
            print(sample_row(samples[-1]), flush=True)
            poller.stop()
            emitted.stop()
            metrics_text = daemon.get("/metrics")[1]
            vm_hwm_mb = proc_status_kb(daemon.pid, "VmHWM") / 1024
            links_end = {k: v["state"] for k, v in daemon.status()["links"].items()}
            results = compare(emitted, poller, work / "transcripts", faults, metrics_text)
            before_stop = {t: len(emitted.at[t]) for t in TARGETS}
            code = daemon.stop(signal.SIGTERM)
            emitted.poll()
            after_stop = {t: len(emitted.at[t]) - before_stop[t] for t in TARGETS}
    finally:
        if speaker is not None:
            speaker.stop()
        if poller is not None:
            poller.stop()
        if daemon is not None:
            daemon.kill()
        fake.stop_thread()

    table = report_table(run_s, warmup_s, results, samples, faults, metrics_text, rotate_after_s, vm_hwm_mb)
    print("\nfaults:")
    for f in faults:
        print(f"  {f.at_s / 60:6.1f} min  {f.kind}: {f.note}")
    print(f"\nlinks at the end: {links_end}; daemon exit code on SIGTERM: {code}")
    print(f"OBS poller: {poller.polls} polls, {poller.errors} failed, longest gap {poller.max_gap_s:.1f} s")
    if emitted.unparsed:
        print(f"! {emitted.unparsed} finals without a caption id (script too short?)")
    if any(after_stop.values()):
        print(f"finals sent during the daemon's shutdown (not counted above): {after_stop}")
    lost_any = False
    for r in results:
        if r.obs_missing_down:
            print(
                f"{r.lang}: missing in OBS while OBS was down (shown later only if still current): "
                f"{format_ids(r.obs_missing_down)}"
            )
        if r.obs_lost:
            print(f"! {r.lang}: LOST in OBS: {format_ids(r.obs_lost)}")
        for fmt, (_, _, lost) in r.files.items():
            if lost:
                print(f"! {r.lang}: LOST in the {fmt} file: {format_ids(lost)}")
        if r.lost_by_fault:
            print(f"! {r.lang}: lost captions by output and the fault they fell into: {dict(r.lost_by_fault)}")
        lost_any = lost_any or bool(r.obs_lost) or any(lost for _, _, lost in r.files.values())
    warnings = log_summary(daemon.log() if daemon is not None else "")
    if warnings:
        print("\ndaemon log, WARNING/ERROR lines (numbers masked):")
        print("\n".join(warnings))
    print(f"\nsamples (every {sample_s:.0f} s; slopes ignore the first {warmup_s / 60:.1f} min of warm-up):")
    print(SAMPLE_HEADER)
    print("\n".join(sample_row(s) for s in samples))
    print()
    print(table)
    if args.out:
        args.out.write_text(f"Machine: {machine()}\n\n{table}\n")
    return 1 if lost_any else 0


def main() -> int:
    p = argparse.ArgumentParser(description="captioner soak benchmark (real daemon, OBS, PulseAudio, faults)")
    p.add_argument("--hours", type=float, default=6.0, help="run length in hours, fractions allowed (default 6)")
    p.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (daemon log, transcripts)")
    args = p.parse_args()
    if not 0 < args.hours <= 48:
        p.error("--hours: expected a number in (0, 48]")
    if missing := missing_tools(TOOLS):
        print(f"missing tools: {', '.join(missing)} (see tests/run.sh)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    work = Path(tempfile.mkdtemp(prefix="captioner-soak-"))
    keep = args.keep
    started = time.monotonic()
    try:
        code = run(args, work)
        keep = keep or code != 0
        return code
    except KeyboardInterrupt:
        print("\ninterrupted: everything started was stopped", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - a harness failure: say what, keep the evidence, exit 2
        import traceback

        traceback.print_exc()
        print(f"harness failure: {e!r}", file=sys.stderr)
        keep = True
        return 2
    finally:
        print(f"(soak took {(time.monotonic() - started) / 60:.1f} min)")
        if keep:
            print(f"scratch kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
