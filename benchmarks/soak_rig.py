"""benchmarks/soak.py's daemon under test: its constants, the daemon process, its environment and config."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from benchmarks.common import InfoDaemon
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv

KEY = "sk-soak"
OBS_PASSWORD = "soak-pass"
TARGETS = ("ja", "de")
FORMATS = ("srt", "vtt", "txt")
# The fake translates segment i of a language as "[<lang>] <script[i]>": numbered lines make every caption
# identifiable on screen and in the files, whatever the speech said.
CAPTION_RE = re.compile(r"Caption (\d{5})")
POLL_S = 0.2  # OBS text poll period; a caption stays up >= 1 s (layout.min_display_s), in practice ~9 s


class HarnessError(Exception):
    """The soak's own machinery failed (not the daemon under test)."""


# ---- the daemon ---------------------------------------------------------------------------------------------


class SoakDaemon(InfoDaemon):
    """InfoDaemon waiting for /healthz, and for links to come back after a fault."""

    def start(self) -> SoakDaemon:
        self.spawn()
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
