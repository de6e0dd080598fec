"""benchmarks/soak.py's observers, each a thread: the finals the fake translator sent, the OBS text sources as a
viewer sees them, and the speaker looping the speech into the null sink.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import GAP_S
from benchmarks.soak_rig import CAPTION_RE, OBS_PASSWORD, POLL_S, TARGETS, source_name
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv


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
