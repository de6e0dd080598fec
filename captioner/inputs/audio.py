"""Audio capture: PulseAudio natively or a sounddevice stream -> bounded queue -> 16 kHz mono PCM16 chunks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from ..reconnect import Backoff, supervise
from ..status import LinkState, Status
from ..ticks import until_next
from . import pulse
from .audio_devices import (
    AUTO,
    DEVICES_HINT,
    LOOPBACK,
    PORTAUDIO,
    PULSE,
    NoAudioInput,
    choose_backend,
    close_stream,
    list_inputs,
    no_input_message,
    pulse_description,
    resolve_device,
)
from .pcm_convert import TARGET_RATE, Pcm16Converter
from .pulse_stream import PulseStream

log = logging.getLogger(__name__)

# A capture stream that delivers no block for this long is treated as a lost device and reopened.
_STALL_S = 3.0
# How often a source named in the config is checked to still exist.
_SOURCE_CHECK_S = 2.0


class AudioCapture:
    """Captures the configured device forever, reopening it after errors; emits PCM16 chunks."""

    def __init__(
        self,
        device: int | str | None,
        chunk_ms: int,
        queue_chunks: int,
        on_chunk: Callable[[bytes, float], None],
        status: Status,
        backend: str = AUTO,
        link: str = "audio",
    ) -> None:
        self.device = device
        # Its /status link: "audio", or "audio:<input name>" for one of several inputs.
        self.link_name = link
        # What it has open (backend, device, rate, channels), for /status; None until it opens.
        self.source: dict[str, Any] | None = None
        self.chunk_ms = chunk_ms
        self.on_chunk = on_chunk
        self.status = status
        self.backend = backend
        self.queue_chunks = queue_chunks
        self._stopping = False
        self._consumer_failed = False
        # Why the sound server was passed over for PortAudio (auto), for the error when PortAudio has nothing either.
        self._pulse_problem: str | None = None

    async def run(self) -> None:
        """Open, capture, and on any device error wait and reopen, until cancelled."""
        link = self.status.link(self.link_name)
        await supervise(
            lambda: self._capture_once(link),
            link,
            Backoff(initial_s=1.0, cap_s=10.0, healthy_after_s=30.0),
            what="audio device",
            on_error=lambda e: self.status.metrics.audio_errors.inc(),
            stopping=lambda: self._stopping,
        )

    async def _capture_once(self, link: Any) -> None:
        names: list[str] = []
        if isinstance(self.device, str) and self.device.lower() != LOOPBACK:
            names = await asyncio.to_thread(pulse.names, "sources")
        backend, source = choose_backend(self.backend, self.device, pulse.available(), names)
        self._pulse_problem = None
        if backend == PULSE:
            try:
                await self._capture_pulse(link, source)
                return
            except pulse.PulseError as e:  # only from opening: a stream that dies later ends as an OSError
                if self.backend == PULSE:
                    raise
                # auto: no sound server to talk to (plain ALSA, or it is restarting): try PortAudio instead.
                log.info("%s; capturing through PortAudio instead", e)
                self._pulse_problem = str(e)
        await self._capture_portaudio(link)

    async def _capture_pulse(self, link: Any, source: str | None) -> None:
        """Record 16 kHz mono PCM16 straight from PulseAudio/PipeWire: the server resamples and downmixes.

        The loop takes each chunk on a timer set for when it will have arrived (pulse_stream.py says why not a
        reader thread on libpulse-simple: #21).
        """
        loop = asyncio.get_running_loop()
        chunk_bytes = TARGET_RATE * self.chunk_ms // 1000 * 2
        hand_over = self._hand_over(loop, None)  # whole chunks, through take(): nothing to convert
        # Before the stream opens: chunks queued behind a pactl call would reach the wire late.
        description = await asyncio.to_thread(pulse_description, source)
        pulse.use_client_config_without_shm()  # here, in the loop's thread: it sets an environment variable
        stream = PulseStream(source, TARGET_RATE, chunk_bytes)
        timer: asyncio.TimerHandle | None = None

        def take() -> None:
            nonlocal timer
            try:
                chunks = stream.read()
            except pulse.PulseError as e:
                hand_over.fail(str(e))
                return
            if chunks:
                hand_over.take(chunks, time.monotonic())
            timer = loop.call_later(stream.next_poll_s(), take)

        watch: asyncio.Task[None] | None = None
        try:
            await stream.open(_STALL_S)
            self._opened({"backend": PULSE, "device": description, "rate": TARGET_RATE, "channels": 1})
            link.set(LinkState.CONNECTED)
            log.info(
                "capturing from %s at %d Hz, 1 channel(s), natively from the sound server", description, TARGET_RATE
            )
            if source is not None and source != pulse.DEFAULT_MONITOR:
                watch = asyncio.create_task(self._watch_source(source, hand_over), name=f"{self.link_name}:watch")
            timer = loop.call_later(stream.next_poll_s(), take)
            await hand_over.ended()
        finally:
            if timer is not None:
                timer.cancel()
            stream.close()
            hand_over.close()
            if watch is not None:
                watch.cancel()

    async def _watch_source(self, source: str, hand_over: _HandOver) -> None:
        """A named source that goes away (a USB microphone pulled, a virtual cable removed) is a lost device.

        The sound server moves the stream to its default source instead of ending it: this input would go on
        capturing another one (perhaps another input's microphone) while its link says connected.
        """
        while True:
            await asyncio.sleep(until_next(asyncio.get_running_loop().time(), _SOURCE_CHECK_S))
            present = await _SOURCES.get()
            if present and source not in present:  # an empty list: pactl did not answer, which proves nothing
                hand_over.fail(f"source {source} is gone: device lost?")
                return

    async def _capture_portaudio(self, link: Any) -> None:
        import sounddevice as sd

        loop = asyncio.get_running_loop()
        devices = await asyncio.to_thread(list_inputs)
        if not devices:
            raise NoAudioInput(no_input_message(self._pulse_problem))
        index, description = resolve_device(self.device, devices)
        try:
            info = sd.query_devices(index, "input")
        except sd.PortAudioError as e:  # "Error querying device -1": inputs exist, but none is the default
            if index is not None:
                raise
            raise NoAudioInput(f"no default audio input ({e}): set audio.device; {DEVICES_HINT}") from e
        rate = int(info["default_samplerate"])
        channels = max(1, min(2, int(info["max_input_channels"])))
        converter = Pcm16Converter(rate, channels, self.chunk_ms)
        hand_over = self._hand_over(loop, converter.feed)

        def callback(indata: np.ndarray, frames: int, time_info: Any, flags: Any) -> None:
            # PortAudio's thread: copy and hand over, never block.
            hand_over.put(indata.copy(), time.monotonic())

        def finished() -> None:
            hand_over.fail("audio stream stopped: device lost?")

        def open_stream() -> Any:
            stream = sd.InputStream(
                device=index,
                samplerate=rate,
                channels=channels,
                dtype="float32",
                # An explicit block size: PortAudio's own choice costs ~7x the CPU (real-obs.md §8).
                blocksize=rate * self.chunk_ms // 1000,
                callback=callback,
                finished_callback=finished,
            )
            stream.start()
            return stream

        # Opening, and above all stopping, a stream whose sound server died can block inside the ALSA pulse plugin:
        # never on the event loop (a clean-clone run saw /status unanswered while the loop closed such a stream).
        stream = await asyncio.to_thread(open_stream)
        try:
            self._opened({"backend": PORTAUDIO, "device": description, "rate": rate, "channels": channels})
            link.set(LinkState.CONNECTED)
            log.info("capturing from %s at %d Hz, %d channel(s)", description, rate, channels)
            await hand_over.ended()
        finally:
            hand_over.close()
            await asyncio.to_thread(close_stream, stream)

    def _opened(self, source: dict[str, Any]) -> None:
        self.source = source
        if self.link_name == "audio":  # the single input's device is the top-level audio_source, as it always was
            self.status.audio_source = source

    def _hand_over(self, loop: asyncio.AbstractEventLoop, convert: Callable[[Any], list[bytes]] | None) -> _HandOver:
        return _HandOver(loop, self.queue_chunks, convert, self._emit, self.status.metrics)

    def _emit(self, chunk: bytes, captured_at: float) -> None:
        self.status.metrics.audio_chunks.inc()
        try:
            self.on_chunk(chunk, captured_at)
        except Exception:  # a consumer bug costs this chunk, not the capture; said once, not ten times a second
            if not self._consumer_failed:
                log.exception("audio chunk consumer failed (later failures are logged at debug level)")
            else:
                log.debug("audio chunk consumer failed", exc_info=True)
            self._consumer_failed = True

    def stop(self) -> None:
        """Stop reopening; the running stream ends when the task is cancelled."""
        self._stopping = True


class _SourceList:
    """The sound server's sources, asked once per check for every input that watches its own (one pactl, #21)."""

    def __init__(self) -> None:
        self._asked: tuple[asyncio.AbstractEventLoop, float, asyncio.Future[list[str]]] | None = None

    async def get(self) -> list[str]:
        loop = asyncio.get_running_loop()
        if self._asked is None or self._asked[0] is not loop or loop.time() - self._asked[1] >= _SOURCE_CHECK_S / 2:
            self._asked = (loop, loop.time(), asyncio.ensure_future(asyncio.to_thread(pulse.names, "sources")))
        return await asyncio.shield(self._asked[2])


_SOURCES = _SourceList()


class _HandOver:
    """Blocks from a capture thread to the event loop, each turned into chunks for `emit` in one loop callback.

    The capture thread appends to a bounded deque (full: the oldest block is dropped and counted) and asks the loop
    to drain it. Draining in the callback itself, not in a task woken through an Event, keeps a chunk to one loop
    wake-up and one callback (#5: every extra step costs tens of µs when the process wakes cold each chunk).
    Some backends neither call back nor finish when the device goes away (the ALSA pulse plugin when the sound
    server dies): a device that delivers nothing for _STALL_S is as good as lost, checked once a second.
    The native capture reads on the loop itself and hands its chunks to take(): the stall check and the end are
    the same, the deque is not used. `convert` None: blocks are whole chunks already.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        queue_blocks: int,
        convert: Callable[[Any], list[bytes]] | None,
        emit: Callable[[bytes, float], None],
        metrics: Any,
    ) -> None:
        self._loop = loop
        self._blocks: deque[tuple[Any, float]] = deque(maxlen=queue_blocks)
        self._convert = convert
        self._emit = emit
        self._dropped = metrics.audio_dropped
        self._ended: asyncio.Future[str] = loop.create_future()
        self._last_block_at = loop.time()
        self._stall_timer = loop.call_later(until_next(loop.time(), 1.0), self._check_stall)

    # ---- capture thread ----------------------------------------------------------------------------
    def put(self, block: Any, captured_at: float) -> None:
        if len(self._blocks) == self._blocks.maxlen:
            self._dropped.inc()  # deque(maxlen) drops the oldest itself
        self._blocks.append((block, captured_at))
        self._call(self._drain)

    def fail(self, reason: str) -> None:
        self._call(self._end, reason)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the daemon is exiting
            self._loop.call_soon_threadsafe(fn, *args)

    # ---- event loop --------------------------------------------------------------------------------
    async def ended(self) -> None:
        """Wait until the device fails or stalls; raises OSError saying which."""
        raise OSError(await self._ended)

    def close(self) -> None:
        self._stall_timer.cancel()
        self._end("closed")

    def take(self, chunks: list[bytes], captured_at: float) -> None:
        """Chunks of one block, emitted now (the native capture reads on the event loop itself)."""
        if self._ended.done():
            return
        self._last_block_at = self._loop.time()
        for chunk in chunks:
            self._emit(chunk, captured_at)

    def _drain(self) -> None:
        blocks = self._blocks
        while blocks and not self._ended.done():
            block, captured_at = blocks.popleft()
            self.take(self._convert(block) if self._convert is not None else [block], captured_at)

    def _end(self, reason: str) -> None:
        if not self._ended.done():
            self._ended.set_result(reason)

    def _check_stall(self) -> None:
        if self._loop.time() - self._last_block_at >= _STALL_S:
            self._end(f"no audio from the device for {_STALL_S:.0f} s: device lost?")
        elif not self._ended.done():
            self._stall_timer = self._loop.call_later(until_next(self._loop.time(), 1.0), self._check_stall)
