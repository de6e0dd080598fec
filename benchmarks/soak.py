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
import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.run import GAP_S, PHRASES, _proc_cpu_s, _proc_status_kb, machine, silence_obs_capture
from tests.support.daemonproc import DaemonProc
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.rtmp import parse_srt
from tests.support.speech import silence_padded_sequence, wav_duration

KEY = "sk-soak"
OBS_PASSWORD = "soak-pass"
TARGETS = ("ja", "de")
TOOLS = ("obs", "Xvfb", "pulseaudio", "pactl", "paplay", "pacat", "espeak-ng", "sox")
FORMATS = ("srt", "vtt", "txt")
# The fake translates segment i of a language as "[<lang>] <script[i]>": numbered lines make every caption
# identifiable on screen and in the files, whatever the speech said.
CAPTION_RE = re.compile(r"Caption (\d{5})")
POLL_S = 0.2  # OBS text poll period; a caption stays up >= 1 s (layout.min_display_s), in practice ~9 s
# (fault name, period on long runs in s, phase within its period): phases differ so that faults do not coincide.
FAULTS = (
    ("translator drop", 600.0, 0.1),
    ("translator 503", 900.0, 0.3),
    ("OBS restart", 1800.0, 0.5),
    ("PulseAudio restart", 2700.0, 0.7),
    ("SIGHUP", 1800.0, 0.9),
)
MIN_FAULT_GAP_S = 20.0  # let the daemon settle between two faults, so each one's effect stays attributable
# A missing caption sent this long before a fault, or this long after the daemon recovered from it, is
# attributed to that fault (a final can be on the wire when a drop cuts it; OBS needs a moment after restart).
BEFORE_FAULT_S, AFTER_RECOVERY_S = 1.0, 3.0


class HarnessError(Exception):
    """The soak's own machinery failed (not the daemon under test)."""


# ---- the daemon ---------------------------------------------------------------------------------------------


class SoakDaemon(DaemonProc):
    """DaemonProc at the production log level: hours of debug logging would measure the log, not the daemon."""

    def start(self) -> SoakDaemon:
        cmd = [sys.executable, "-m", "captioner", "run", "--config", str(self.config_path), "--log-level", "info"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=str(self.tmp)
            )
        self.wait(lambda: self.get("/healthz")[0] == 200, 30, "/healthz")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_link(self, name: str, since_wall: float, timeout_s: float) -> float | None:
        """Seconds until link `name` is connected with a state change after `since_wall` (time.time()); None."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            code, _ = self.get("/healthz")
            if code == 200:
                link = self.status()["links"].get(name, {})
                if link.get("state") == "connected" and float(link.get("since", 0)) >= since_wall:
                    return time.monotonic() - t0
            time.sleep(0.1)
        return None


def daemon_env(pulse: PulseEnv, work: Path) -> dict[str, str]:
    """The daemon's environment: the private sound server, secrets, and a home that is a temporary directory."""
    dirs = {
        k: work / "home" / sub
        for k, sub in (
            ("HOME", "."),
            ("XDG_CONFIG_HOME", ".config"),
            ("XDG_STATE_HOME", ".local/state"),
            ("XDG_DATA_HOME", ".local/share"),
            ("XDG_CACHE_HOME", ".cache"),
            ("XDG_RUNTIME_DIR", "run"),
        )
    }
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    dirs["XDG_RUNTIME_DIR"].chmod(0o700)
    env = pulse.child_env(
        DASHSCOPE_API_KEY=KEY, OBS_WEBSOCKET_PASSWORD=OBS_PASSWORD, **{k: str(v) for k, v in dirs.items()}
    )
    # Only 127.0.0.1 is ever contacted; a proxy from the caller's shell must not reroute that, nor a systemd
    # notify socket or a config path meant for another instance leak in.
    for key in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
        "NOTIFY_SOCKET",
        "CAPTIONER_CONFIG",
        "CAPTIONER_TRACE",
    ):
        env.pop(key, None)
    return env


def daemon_config(fake: FakeTranslator, obs: ObsEnv, work: Path, rotate_after_s: float) -> dict[str, Any]:
    return {
        "audio": {"device": "loopback", "chunk_ms": 100},
        "translator": {
            "url": fake.url,
            "api_key": "${DASHSCOPE_API_KEY}",
            "targets": list(TARGETS),
            "rotate_after_s": rotate_after_s,
        },
        "obs": {"host": "127.0.0.1", "port": obs.ws_port, "password": "${OBS_WEBSOCKET_PASSWORD}"},
        "outputs": [{"obs_source": source_name(t), "language": t} for t in TARGETS],
        "layout": {"max_width": 80},  # one caption per line: no id is ever split by wrapping
        "transcripts": {
            "enabled": True,
            "folder": str(work / "transcripts"),
            "formats": list(FORMATS),
            "follow_recording": False,
        },
        "cost": {"state_file": str(work / "state" / "spend.json")},
        "log_level": "info",
    }


def source_name(lang: str) -> str:
    return f"Soak {lang.upper()}"


def metric_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def metric_sum(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items()))


# ---- observers (threads) ------------------------------------------------------------------------------------


class EmittedWatcher:
    """When each final left the fake translator (its connection records, polled), by language and caption id."""

    def __init__(self, fake: FakeTranslator) -> None:
        self.fake = fake
        self.at: dict[str, dict[int, float]] = {t: {} for t in TARGETS}
        self.unparsed = 0
        self._done: list[int] = []  # finals already read, per connection record (the list only grows)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-emitted", daemon=True)

    def start(self) -> EmittedWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.poll()

    def poll(self) -> None:
        now = time.monotonic()
        for i, rec in enumerate(self.fake.connections):
            if i == len(self._done):
                self._done.append(0)
            finals = list(rec.translations)  # appended to under the fake's lock; a copy reads a consistent prefix
            for text in finals[self._done[i] :]:
                m = re.match(r"\[(\w+)\] Caption (\d{5})", text)
                if m and m.group(1) in self.at:
                    self.at[m.group(1)].setdefault(int(m.group(2)), now)
                else:
                    self.unparsed += 1
            self._done[i] = len(finals)

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self.poll()


class ObsPoller:
    """Reads the OBS text sources over obs-websocket several times a second, as a viewer would see them."""

    def __init__(self, obs: ObsEnv) -> None:
        self.obs = obs
        self.seen: dict[str, dict[int, float]] = {t: {} for t in TARGETS}
        self.polls = 0
        self.errors = 0
        self.max_gap_s = 0.0  # longest time between two successful polls (includes OBS's own downtime)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-obs-poll", daemon=True)

    def start(self) -> ObsPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _client(self) -> Any:
        import obsws_python

        # host, port and password explicit: otherwise obsws-python reads a config.toml from the working directory.
        return obsws_python.ReqClient(host="127.0.0.1", port=self.obs.ws_port, password=OBS_PASSWORD, timeout=3)

    def _run(self) -> None:
        client: Any = None
        last_ok = time.monotonic()
        while not self._stop.is_set():
            try:
                if client is None:
                    client = self._client()
                texts = {
                    t: str(
                        client.send("GetInputSettings", {"inputName": source_name(t)}, raw=True)["inputSettings"].get(
                            "text", ""
                        )
                    )
                    for t in TARGETS
                }
            except Exception:  # noqa: BLE001 - OBS down, restarting, or the source not created yet: try again
                self.errors += 1
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.disconnect()
                client = None
                self._stop.wait(0.5)
                continue
            now = time.monotonic()
            self.max_gap_s, last_ok = max(self.max_gap_s, now - last_ok), now
            self.polls += 1
            for t, text in texts.items():
                for m in CAPTION_RE.finditer(text):
                    self.seen[t].setdefault(int(m.group(1)), now)
            self._stop.wait(POLL_S)
        if client is not None:
            with contextlib.suppress(Exception):
                client.disconnect()


class Speaker:
    """Loops the speech wav into the null sink; survives the sound server's restarts (holds `lock` to spawn)."""

    def __init__(self, pulse: PulseEnv, wav: Path, lock: threading.Lock) -> None:
        self.pulse, self.wav, self.lock = pulse, wav, lock
        self.plays = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-speaker", daemon=True)

    def start(self) -> Speaker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                player = self.pulse.play_async(self.wav) if self.pulse.proc is not None else None
            if player is None:
                self._stop.wait(0.5)
                continue
            self.plays += 1
            while player.poll() is None and not self._stop.wait(0.2):
                pass
            if player.poll() is None:
                player.terminate()
                player.wait(5)
            # A pause between loops too: otherwise the last and first sentence could merge into one segment.
            self._stop.wait(GAP_S)


# ---- faults -------------------------------------------------------------------------------------------------


@dataclass
class FaultEvent:
    """One injected fault: when it began, when the daemon was back (None: not within the limit)."""

    kind: str
    at_s: float  # seconds since the run began
    start: float  # time.monotonic()
    end: float | None = None
    note: str = ""


def schedule(run_s: float, warmup_s: float, tail_s: float) -> list[tuple[float, str]]:
    """Fault times (s since start): each kind every `period` on long runs, at least once if the run allows."""
    window = run_s - warmup_s - tail_s
    if window < 30:
        return []
    out: list[tuple[float, str]] = []
    for kind, period_s, phase in FAULTS:
        n = max(1, round(run_s / period_s))
        out += [(warmup_s + window * (k + phase) / n, kind) for k in range(n)]
    out.sort()
    spaced: list[tuple[float, str]] = []
    for t, kind in out:
        t = max(t, spaced[-1][0] + MIN_FAULT_GAP_S) if spaced else t
        if t <= run_s - tail_s:
            spaced.append((t, kind))
    return spaced


@dataclass
class Rig:
    """Everything a fault acts on."""

    daemon: SoakDaemon
    fake: FakeTranslator
    obs: ObsEnv
    pulse: PulseEnv
    pulse_lock: threading.Lock
    obs_restarts: int = 0


def inject(rig: Rig, kind: str, event: FaultEvent) -> None:
    """Apply one fault and wait (bounded) until the daemon reports the affected link connected again."""
    wall = time.time()
    if kind == "translator drop":
        rig.fake.drop_all()
        back = [rig.daemon.wait_link(f"translator:{t}", wall, 60) for t in TARGETS]
    elif kind == "translator 503":
        # Three refusals for two targets: at least one target meets two in a row (backoff grows).
        rig.fake.reject_next(3, 503)
        rig.fake.drop_all()
        back = [rig.daemon.wait_link(f"translator:{t}", wall, 90) for t in TARGETS]
        event.note = f"{rig.fake.handshakes_rejected} handshakes refused so far"
    elif kind == "OBS restart":
        # Alternate a crash (SIGKILL: clients see 1006) with a clean close (the scene collection is saved).
        how = "killed" if rig.obs_restarts % 2 == 0 else "closed"
        rig.obs_restarts += 1
        if how == "killed":
            rig.obs.kill_obs()
        else:
            rig.obs.stop_obs()
        rig.obs.start_obs()
        # Best effort, quietly: its warning is about benchmarks/run.py's sink cadence, which the soak does not measure.
        with contextlib.suppress(Exception), contextlib.redirect_stderr(io.StringIO()):
            silence_obs_capture(rig.obs, rig.pulse)
        back = [rig.daemon.wait_link("obs", wall, 60)]
        event.note = f"{how}, OBS up in {rig.obs.last_start_s or 0:.1f} s"
    elif kind == "PulseAudio restart":
        with rig.pulse_lock:  # the speaker must not spawn paplay against a server that is going away
            rig.pulse.stop()
            rig.pulse.start()
        back = [rig.daemon.wait_link("audio", wall, 60)]
    elif kind == "SIGHUP":
        rig.daemon.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        error = rig.daemon.status().get("reload_error")
        event.note = f"reload error: {error}" if error else "reloaded"
        back = [0.0]
    else:
        raise HarnessError(f"unknown fault {kind}")
    if all(b is not None for b in back):
        event.end = time.monotonic()
        event.note = "; ".join(x for x in (event.note, f"back after {event.end - event.start:.1f} s") if x)
    else:
        event.note = "; ".join(x for x in (event.note, "NOT back within the limit") if x)


# ---- samples ------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    """One reading of the daemon process."""

    t_s: float  # since the run began
    rss_mb: float
    fds: int
    threads: int
    cpu_s: float  # utime + stime, all threads
    audio_s: float  # captured audio (captioner_audio_captured_seconds_total)
    finals: float


def take_sample(daemon: SoakDaemon, t_s: float) -> Sample:
    pid = daemon.pid
    metrics = metric_samples(daemon.get("/metrics")[1])
    return Sample(
        t_s=t_s,
        rss_mb=_proc_status_kb(pid, "VmRSS") / 1024,
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=_proc_status_kb(pid, "Threads"),
        cpu_s=_proc_cpu_s(pid),
        audio_s=metric_sum(metrics, "captioner_audio_captured_seconds_total"),
        finals=metric_sum(metrics, "captioner_captions_final_total"),
    )


SAMPLE_HEADER = f"{'t':>8} {'RSS MB':>8} {'fds':>5} {'threads':>7} {'CPU s':>8} {'audio s':>8} {'finals':>7}"


def sample_row(s: Sample) -> str:
    return (
        f"{s.t_s / 60:7.1f}m {s.rss_mb:8.1f} {s.fds:5d} {s.threads:7d} {s.cpu_s:8.1f} {s.audio_s:8.0f} {s.finals:7.0f}"
    )


def slope_per_hour(samples: list[Sample], attr: str, warmup_s: float) -> float | None:
    """Least-squares slope of one figure against time, per hour, over the samples after the warm-up."""
    use = [s for s in samples if s.t_s >= warmup_s]
    if len(use) < 3:
        return None
    x = np.array([s.t_s for s in use]) / 3600
    y = np.array([float(getattr(s, attr)) for s in use])
    return float(np.polyfit(x, y, 1)[0])


def cpu_periods(samples: list[Sample], run_s: float) -> list[tuple[float, float, float | None]]:
    """(start s, end s, CPU s per captured audio minute) for each hour, or each third of a run under 3 h."""
    step = 3600.0 if run_s >= 3 * 3600 else run_s / 3
    out: list[tuple[float, float, float | None]] = []
    t = 0.0
    while t < run_s - 1:
        inside = [s for s in samples if t - 1 <= s.t_s <= t + step + 1]
        value = None
        if len(inside) >= 2 and inside[-1].audio_s > inside[0].audio_s:
            value = (inside[-1].cpu_s - inside[0].cpu_s) / ((inside[-1].audio_s - inside[0].audio_s) / 60)
        out.append((t, min(t + step, run_s), value))
        t += step
    return out


# ---- captions -----------------------------------------------------------------------------------------------


def transcript_ids(folder: Path, lang: str, fmt: str) -> tuple[Counter[int], int]:
    """Caption ids found in the language's files of one format (every set, e.g. after a reload), and the number
    of cues or lines in them (a caption written twice counts twice)."""
    ids: Counter[int] = Counter()
    entries = 0
    for path in sorted(folder.glob(f"*_{lang}.{fmt}")):
        text = path.read_text(errors="replace")
        items = [ln for ln in text.splitlines() if ln.strip()] if fmt == "txt" else parse_srt(text)
        entries += len(items)
        for item in items:
            ids.update(int(m.group(1)) for m in CAPTION_RE.finditer(item))
    return ids, entries


@dataclass
class LangResult:
    """Expected vs delivered captions of one language."""

    lang: str
    expected: int
    obs_seen: int
    obs_missing_down: list[int] = field(default_factory=list)  # missing while OBS itself was down
    obs_lost: list[int] = field(default_factory=list)
    files: dict[str, tuple[int, int, list[int]]] = field(default_factory=dict)  # fmt -> (found, entries, lost)
    # Ids shown or written that the fake never sent as a final (a partial the daemon flushed as final when its
    # connection dropped), and ids written more than once: neither is a loss, both are worth seeing.
    obs_extra: int = 0
    file_extra: dict[str, int] = field(default_factory=dict)
    file_dups: dict[str, int] = field(default_factory=dict)
    metrics_finals: float = 0.0
    lost_by_fault: Counter[str] = field(default_factory=Counter)  # lost ids attributed to a fault window


def _fault_at(t: float, faults: list[FaultEvent], kinds: tuple[str, ...]) -> str | None:
    for f in faults:
        end = (f.end if f.end is not None else f.start + 60) + AFTER_RECOVERY_S
        if f.kind in kinds and f.start - BEFORE_FAULT_S <= t <= end:
            return f.kind
    return None


def compare(
    emitted: EmittedWatcher, poller: ObsPoller, folder: Path, faults: list[FaultEvent], metrics_text: str
) -> list[LangResult]:
    metrics = metric_samples(metrics_text)
    out = []
    for lang in TARGETS:
        sent = emitted.at[lang]
        seen = poller.seen[lang]
        r = LangResult(lang, len(sent), len(set(sent) & set(seen)), obs_extra=len(set(seen) - set(sent)))
        r.metrics_finals = metric_sum(metrics, "captioner_captions_final_total", language=lang)
        for cid in sorted(set(sent) - set(seen)):
            if _fault_at(sent[cid], faults, ("OBS restart",)):
                r.obs_missing_down.append(cid)
            else:
                r.obs_lost.append(cid)
                r.lost_by_fault[f"OBS: {_fault_at(sent[cid], faults, tuple(k for k, _, _ in FAULTS)) or 'none'}"] += 1
        for fmt in FORMATS:
            ids, entries = transcript_ids(folder, lang, fmt)
            lost = sorted(set(sent) - set(ids))
            r.files[fmt] = (len(set(sent) & set(ids)), entries, lost)
            r.file_extra[fmt] = len(set(ids) - set(sent))
            r.file_dups[fmt] = sum(n - 1 for n in ids.values() if n > 1)
            for cid in lost:
                r.lost_by_fault[f"{fmt}: {_fault_at(sent[cid], faults, tuple(k for k, _, _ in FAULTS)) or 'none'}"] += 1
        out.append(r)
    return out


# ---- report -------------------------------------------------------------------------------------------------


def _fmt_slope(value: float | None, unit: str) -> str:
    return "n/a (too few samples)" if value is None else f"{value:+.2f} {unit}/h"


def _ids(ids: list[int]) -> str:
    shown = ", ".join(f"#{i}" for i in ids[:10])
    return shown + (f" … ({len(ids)} in all)" if len(ids) > 10 else "")


def report_table(
    run_s: float,
    warmup_s: float,
    results: list[LangResult],
    samples: list[Sample],
    faults: list[FaultEvent],
    metrics_text: str,
    rotate_after_s: float,
    vm_hwm_mb: float,
) -> str:
    m = metric_samples(metrics_text)
    rows: list[tuple[str, str]] = [("run length", f"{run_s / 3600:.2f} h ({run_s / 60:.0f} min)")]
    kinds = Counter(f.kind for f in faults)
    rows.append(("faults injected", ", ".join(f"{k} ×{kinds[k]}" for k, _, _ in FAULTS if kinds[k]) or "none"))
    not_back = [f for f in faults if f.end is None]
    rows.append(("faults the daemon did not recover from within the limit", str(len(not_back))))
    for r in results:
        rows.append((f"captions expected, {r.lang} (finals the fake translator sent)", str(r.expected)))
        rows.append(
            (
                f"… shown in OBS, {r.lang}",
                f"{r.obs_seen}; missing while OBS was down: {len(r.obs_missing_down)}; lost: {len(r.obs_lost)}"
                f" (not among the fake's finals: {r.obs_extra})",
            )
        )
        for fmt, (found, entries, lost) in r.files.items():
            rows.append(
                (
                    f"… in the {fmt.upper()} file, {r.lang}",
                    f"{found}; lost: {len(lost)} ({entries} entries; not among the fake's finals: "
                    f"{r.file_extra[fmt]}; duplicates: {r.file_dups[fmt]})",
                )
            )
        rows.append((f"… counted by /metrics captions_final, {r.lang}", f"{r.metrics_finals:.0f}"))
    attempts = Counter[str]()
    for name, labels, value in m:
        if name == "captioner_translator_connects_total":
            attempts[labels.get("result", "?")] += int(value)
    rows.append(
        ("translator connection attempts by result", ", ".join(f"{k} {v}" for k, v in sorted(attempts.items())))
    )
    rotations = metric_sum(m, "captioner_translator_rotations_total")
    rows.append((f"session rotations (rotate_after_s {rotate_after_s:.0f})", f"{rotations:.0f}"))
    writes = Counter[str]()
    for name, labels, value in m:
        if name == "captioner_obs_writes_total":
            writes[labels.get("result", "?")] += int(value)
    rows.append(("OBS writes by result", ", ".join(f"{k} {v}" for k, v in sorted(writes.items()))))
    if samples:
        first, last = samples[0], samples[-1]
        rows.append(
            ("RSS first / last sample / peak (VmHWM)", f"{first.rss_mb:.1f} / {last.rss_mb:.1f} / {vm_hwm_mb:.1f} MB")
        )
        rows.append(("open fds first / last", f"{first.fds} / {last.fds}"))
        rows.append(("threads first / last", f"{first.threads} / {last.threads}"))
    after = f"after the first {warmup_s / 60:.1f} min"
    rows.append((f"RSS slope ({after})", _fmt_slope(slope_per_hour(samples, "rss_mb", warmup_s), "MB")))
    rows.append((f"open fds slope ({after})", _fmt_slope(slope_per_hour(samples, "fds", warmup_s), "fds")))
    rows.append((f"threads slope ({after})", _fmt_slope(slope_per_hour(samples, "threads", warmup_s), "threads")))
    rows.append(("asyncio tasks", "not sampled: /metrics does not expose them"))
    for start, end, per_min in cpu_periods(samples, run_s):
        text = "n/a" if per_min is None else f"{per_min:.3f} s"
        rows.append((f"CPU per captured audio minute, {start / 60:.0f}–{end / 60:.0f} min", text))
    lines = ["| figure | value |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]
    return "\n".join(lines)


def log_summary(log: str) -> list[str]:
    """The daemon's WARNING/ERROR lines, grouped with numbers and ids masked so repeats count together."""
    groups: Counter[str] = Counter()
    for line in log.splitlines():
        if " WARNING " in line or " ERROR " in line or " CRITICAL " in line or "Traceback" in line:
            key = line.split(" ", 2)[-1] if line[:4].isdigit() else line
            groups[re.sub(r"\d+(\.\d+)?", "N", key)[:160]] += 1
    return [f"{n:5d} × {text}" for text, n in groups.most_common(25)]


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
            vm_hwm_mb = _proc_status_kb(daemon.pid, "VmHWM") / 1024
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
                f"{_ids(r.obs_missing_down)}"
            )
        if r.obs_lost:
            print(f"! {r.lang}: LOST in OBS: {_ids(r.obs_lost)}")
        for fmt, (_, _, lost) in r.files.items():
            if lost:
                print(f"! {r.lang}: LOST in the {fmt} file: {_ids(lost)}")
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
    if missing := [t for t in TOOLS if shutil.which(t) is None]:
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
