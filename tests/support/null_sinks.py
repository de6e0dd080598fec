"""More null sinks on the private PulseAudio server, each one an input device (its monitor) for a test."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.procs import reap, spawn, wait_for
from tests.support.pulse_env import PulseEnv


class NullSink:
    """A null sink `name` (its monitor `name.monitor` is the input) with a silent keepalive stream, as e2e_sink has."""

    def __init__(self, env: PulseEnv, name: str) -> None:
        self.env, self.name, self.monitor = env, name, f"{name}.monitor"
        self.module: int | None = env.load_module("module-null-sink", f"sink_name={name}", "rate=48000", "channels=2")
        # An idle null sink renders in 2 s blocks: a steady low-latency stream makes its monitor deliver like a card.
        play = ["pacat", "--playback", f"--device={name}", "--latency-msec=40", "--raw", "--format=s16le"]
        self.keepalive: subprocess.Popen[bytes] | None = spawn(
            [*play, "--rate=48000", "--channels=2", f"--client-name=keepalive-{name}", "/dev/zero"],
            env.log.parent / f"keepalive-{name}.log",
            env=env.child_env(),
        )
        wait_for(lambda: f"keepalive-{name}" in env.pactl("list", "sink-inputs"), 5, f"keepalive of {name}")
        env.pactl("suspend-sink", name, "1")
        env.pactl("suspend-sink", name, "0")

    def remove(self) -> None:
        """The device vanishes: its module is unloaded (streams on it end, as when a USB device is pulled)."""
        reap(self.keepalive, signal.SIGTERM, grace=2.0)
        self.keepalive = None
        if self.module is not None:
            self.env.unload_module(self.module)
            self.module = None


@contextmanager
def null_sinks(env: PulseEnv, *names: str) -> Iterator[list[NullSink]]:
    sinks: list[NullSink] = []
    try:
        for name in names:
            sinks.append(NullSink(env, name))
        yield sinks
    finally:
        for sink in sinks:
            sink.remove()
