"""benchmarks/soak.py's faults: their schedule and how each is injected and its recovery awaited."""

from __future__ import annotations

import contextlib
import io
import signal
import threading
import time
from dataclasses import dataclass

from benchmarks.common import silence_obs_capture
from benchmarks.soak_rig import TARGETS, HarnessError, SoakDaemon
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv

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
