"""benchmarks/soak.py's findings: samples of the daemon process and their slopes, expected vs delivered captions,
the Markdown table and the daemon log's warnings.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.common import metric_samples, metric_sum, proc_cpu_s, proc_status_kb
from benchmarks.soak_faults import AFTER_RECOVERY_S, BEFORE_FAULT_S, FAULTS, FaultEvent
from benchmarks.soak_observers import EmittedWatcher, ObsPoller
from benchmarks.soak_rig import CAPTION_RE, FORMATS, TARGETS, SoakDaemon
from tests.support.rtmp import parse_srt

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
        rss_mb=proc_status_kb(pid, "VmRSS") / 1024,
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=proc_status_kb(pid, "Threads"),
        cpu_s=proc_cpu_s(pid),
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


def format_ids(ids: list[int]) -> str:
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
