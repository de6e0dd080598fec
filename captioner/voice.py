"""Translated voice playback: each voice output plays one target's translated speech on an output device."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import VoiceOutputConfig
from .inputs.audio_devices import close_stream
from .playout import RATE, PlayoutQueue, PlayoutStats, audio_event
from .reconnect import Backoff, supervise
from .status import LinkState, Status

log = logging.getLogger(__name__)

# A stream that asks for no audio for this long is treated as a lost device and reopened (like capture).
_STALL_S = 3.0
_TICK_S = 0.25
_BLOCK_S = 0.02
_LATENCY_S = 0.1
# ALSA devices that play into the PulseAudio/PipeWire sink named by PULSE_SINK.
_PULSE_DEVICES = ("pulse", "pipewire")
# PULSE_SINK is read when a stream opens; one open at a time so two outputs never see each other's sink.
_OPEN_LOCK = threading.Lock()


@dataclass(frozen=True)
class OutputDevice:
    """One output device as PortAudio lists it."""

    index: int
    name: str
    channels: int
    default_rate: float


def list_outputs() -> list[OutputDevice]:
    import sounddevice as sd

    return [
        OutputDevice(int(d["index"]), str(d["name"]), int(d["max_output_channels"]), float(d["default_samplerate"]))
        for d in sd.query_devices()
        if d["max_output_channels"] > 0
    ]


def resolve_output(spec: int | str | None, sink: str | None, devices: list[OutputDevice]) -> tuple[int | None, str]:
    """Config device (and sink) -> (PortAudio index or None for the default, a description). Raises LookupError."""
    if sink is not None and spec is None:
        match = next((d for name in _PULSE_DEVICES for d in devices if d.name == name), None)
        if match is None:
            raise LookupError(f"sink {sink!r} needs the ALSA 'pulse' device (libasound2-plugins), which is missing")
        return match.index, f"{match.name} -> sink {sink}"
    suffix = f" -> sink {sink}" if sink else ""
    if spec is None:
        return None, "default output"
    if isinstance(spec, int):
        if any(d.index == spec for d in devices):
            return spec, f"device {spec}{suffix}"
        raise LookupError(f"no output device with index {spec}")
    for d in devices:
        if spec.lower() in d.name.lower():
            return d.index, d.name + suffix
    raise LookupError(f"no output device whose name contains {spec!r}")


@contextlib.contextmanager
def _pulse_sink(sink: str | None) -> Iterator[None]:
    """PULSE_SINK set to `sink` while a stream opens (libpulse reads it then), restored after."""
    with _OPEN_LOCK:
        if sink is None:
            yield
            return
        before = os.environ.get("PULSE_SINK")
        os.environ["PULSE_SINK"] = sink
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("PULSE_SINK", None)
            else:
                os.environ["PULSE_SINK"] = before


class Renderer:
    """Pulls 24 kHz mono PCM16 and hands out exactly `frames` frames at the device's rate and channel count."""

    def __init__(self, rate: int, channels: int, pull: Callable[[int], bytes]) -> None:
        self.rate = rate
        self.channels = channels
        self._pull = pull
        # A streaming resampler keeps its filter state between blocks: no clicks at block edges. Imported here:
        # only a voice output needs it (0.4 MB of RSS, #21).
        import soxr

        self._resampler = soxr.ResampleStream(RATE, rate, 1, dtype="float32", quality="HQ") if rate != RATE else None
        self._fifo = np.zeros(0, np.float32)

    def render(self, frames: int) -> np.ndarray:
        """(frames, channels) int16."""
        if self._resampler is None:
            mono = np.frombuffer(self._pull(frames), "<i2")
        else:
            while len(self._fifo) < frames:
                need = max(64, math.ceil((frames - len(self._fifo)) * RATE / self.rate))
                pcm = np.frombuffer(self._pull(need), "<i2").astype(np.float32) / 32768.0
                self._fifo = np.concatenate([self._fifo, self._resampler.resample_chunk(pcm)])
            out, self._fifo = self._fifo[:frames], self._fifo[frames:]
            mono = np.rint(np.clip(out * 32768.0, -32768, 32767)).astype(np.int16)
        return np.repeat(mono[:, None], self.channels, axis=1)


def _stream_format(device: int | None, info: dict[str, Any]) -> tuple[int, int]:
    """(rate, channels): 24 kHz mono when the device takes it (no resampling), else its own rate."""
    import sounddevice as sd

    for channels in (1, 2):
        try:
            sd.check_output_settings(device=device, samplerate=RATE, channels=channels, dtype="int16")
            return RATE, channels
        except Exception:  # noqa: BLE001 - PortAudio says no in many ways; try the next format
            continue
    return int(info["default_samplerate"]), max(1, min(2, int(info["max_output_channels"])))


class VoicePlayer:
    """Plays one language's voice forever, reopening the device after errors; the daemon never dies of it."""

    def __init__(self, cfg: VoiceOutputConfig, status: Status) -> None:
        self.cfg = cfg
        self.language = cfg.language
        self.status = status
        self.link = status.link(f"voice:{cfg.language}")
        self.queue = PlayoutQueue(cfg.max_buffer_s, cfg.prebuffer_s)
        # The queue is fed on the event loop and read on PortAudio's thread; both only copy bytes under it.
        self._lock = threading.Lock()
        self._published = PlayoutStats()
        self._device_underruns = 0
        self._last_callback = 0.0
        self._warned_drop = False
        self.description = ""
        m = status.metrics
        self._m_buffer = m.voice_buffer_seconds.labels(cfg.language)

    # ---- in ---------------------------------------------------------------------------------------
    def feed(self, event: dict[str, Any]) -> None:
        """One audio server event of this language's session (event loop)."""
        parsed = audio_event(event)
        if parsed is None:
            return
        with self._lock:
            dropped = self.queue.feed(parsed, time.monotonic())
        if dropped:
            # The first drop is news; a device that stays away drops every few seconds.
            (log.debug if self._warned_drop else log.warning)(
                "voice %s: playback is more than %.0f s behind; dropped %d whole utterance(s)",
                self.language,
                self.cfg.max_buffer_s,
                len(dropped),
            )
            self._warned_drop = True
        self.publish()

    def publish(self) -> None:
        """Move the queue's running totals into the metrics."""
        m = self.status.metrics
        lang = self.language
        with self._lock:
            s = self.queue.stats
            now = PlayoutStats(**vars(s))
            buffered = self.queue.buffered_s
            device_underruns, self._device_underruns = self._device_underruns, 0
        p = self._published
        m.voice_played_seconds.labels(lang).inc(max(0.0, now.played_s - p.played_s))
        m.voice_utterances.labels(lang, "played").inc(now.utterances_played - p.utterances_played)
        m.voice_utterances.labels(lang, "dropped").inc(now.utterances_dropped - p.utterances_dropped)
        m.voice_underruns.labels(lang, "starved").inc(now.underruns - p.underruns)
        m.voice_underruns.labels(lang, "device").inc(device_underruns)
        if now.bad_deltas > p.bad_deltas:
            m.translator_bad_events.labels("", lang, "bad_audio_delta").inc(now.bad_deltas - p.bad_deltas)
        self._m_buffer.set(buffered)
        self._published = now

    # ---- device -------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Open, play, and on any device error wait and reopen, until cancelled."""
        where = f"sink {self.cfg.sink!r}" if self.cfg.sink else f"device {self.cfg.device!r}"
        await supervise(
            self._play_once,
            self.link,
            Backoff(initial_s=1.0, cap_s=10.0, healthy_after_s=30.0),
            what=f"voice {self.language}: output {where}",
            on_error=lambda e: self.status.metrics.voice_device_errors.labels(self.language).inc(),
        )

    async def _play_once(self) -> None:
        import sounddevice as sd

        cfg = self.cfg
        index, description = resolve_output(cfg.device, cfg.sink, await asyncio.to_thread(list_outputs))
        failed: list[str] = []
        loop = asyncio.get_running_loop()
        lost = asyncio.Event()

        def pull(samples: int) -> bytes:
            with self._lock:
                return self.queue.pull(samples, time.monotonic())

        def callback(outdata: np.ndarray, frames: int, time_info: Any, flags: Any) -> None:
            # PortAudio's thread: copy what is ready (or silence), never wait.
            self._last_callback = time.monotonic()
            if flags.output_underflow:
                with self._lock:
                    self._device_underruns += 1
            outdata[:] = renderer.render(frames)

        def finished() -> None:
            failed.append("stream stopped")
            loop.call_soon_threadsafe(lost.set)

        def open_stream() -> Any:
            with _pulse_sink(cfg.sink):
                info = sd.query_devices(index, "output")
                rate, channels = _stream_format(index, info)
                return sd.OutputStream(
                    device=index,
                    samplerate=rate,
                    channels=channels,
                    dtype="int16",
                    blocksize=int(rate * _BLOCK_S),
                    latency=_LATENCY_S,
                    callback=callback,
                    finished_callback=finished,
                )

        stream = await asyncio.to_thread(open_stream)
        renderer = Renderer(int(stream.samplerate), int(stream.channels), pull)
        self._last_callback = time.monotonic()
        try:
            stream.start()
            self.description = description
            self.link.set(LinkState.CONNECTED)
            log.info(
                "voice %s: playing to %s at %d Hz, %d channel(s)",
                self.language,
                description,
                renderer.rate,
                renderer.channels,
            )
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), _TICK_S)
                self.publish()
                if failed or not stream.active:
                    raise OSError("voice stream stopped: device lost?")
                if time.monotonic() - self._last_callback > _STALL_S:
                    raise OSError(f"the output device took no audio for {_STALL_S:.0f} s: device lost?")
        finally:
            # Closing can block on a dead device; the loop must not.
            await asyncio.to_thread(close_stream, stream)

    # ---- stop ---------------------------------------------------------------------------------------
    async def drain(self, timeout_s: float) -> None:
        """Let queued voice play for up to `timeout_s`, then drop (and count) the rest."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.link.state == LinkState.CONNECTED:
            with self._lock:
                if not self.queue.queued:
                    break
            await asyncio.sleep(0.05)
        with self._lock:
            self.queue.drop_all()
        if self.link.state == LinkState.CONNECTED:
            await asyncio.sleep(_LATENCY_S * 2)  # what the device still holds
        self.publish()

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            s = self.queue.stats
            state = {
                "buffer_s": round(self.queue.buffered_s, 3),
                "playing": self.queue.playing,
                "queued": self.queue.queued,
                "played_s": round(s.played_s, 3),
                "utterances_played": s.utterances_played,
                "utterances_dropped": s.utterances_dropped,
                "underruns": s.underruns,
            }
        return {"state": self.link.state.value, "device": self.description or None, **state}


class VoiceOutputs:
    """Every configured voice output: routes each session's audio events to its language's player."""

    def __init__(self, outputs: tuple[VoiceOutputConfig, ...], status: Status) -> None:
        self.players = {v.language: VoicePlayer(v, status) for v in outputs}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(p.run(), name=f"voice:{lang}") for lang, p in self.players.items()]

    def on_audio(self, target: str, event: dict[str, Any]) -> None:
        """A session's audio event (response.audio.delta/.done, response.done); languages not played are ignored."""
        player = self.players.get(target)
        if player is not None:
            player.feed(event)

    async def stop(self, drain_s: float) -> None:
        """Let queued voice finish (bounded), then close the devices."""
        await asyncio.gather(*(p.drain(drain_s) for p in self.players.values()))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for p in self.players.values():
            p.link.set(LinkState.STOPPED)
        self._tasks = []

    def as_dict(self) -> dict[str, Any]:
        return {lang: p.as_dict() for lang, p in self.players.items()}
