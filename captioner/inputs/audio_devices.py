"""Which device to capture: PortAudio's inputs, the loopback, and the choice between PortAudio and PulseAudio."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import pulse

LOOPBACK = "loopback"
# What every "no such device" error ends with: the command that lists what there is.
DEVICES_HINT = "run `captioner devices` to see the inputs there are"
# Names PortAudio gives devices that hear what the computer plays.
_LOOPBACK_HINTS = ("monitor", "loopback", "stereo mix", "what u hear", "blackhole", "soundflower")


@dataclass(frozen=True)
class DeviceInfo:
    """One input device as PortAudio lists it."""

    index: int
    name: str
    hostapi: str
    channels: int
    default_rate: float
    is_default: bool
    is_loopback: bool


def list_inputs() -> list[DeviceInfo]:
    """All devices with input channels."""
    import sounddevice as sd

    hostapis = sd.query_hostapis()
    try:
        default_in = sd.default.device[0]
    except Exception:  # noqa: BLE001 - no default device is a normal state
        default_in = -1
    out = []
    for dev in sd.query_devices():
        if dev["max_input_channels"] <= 0:
            continue
        name = str(dev["name"])
        out.append(
            DeviceInfo(
                index=int(dev["index"]),
                name=name,
                hostapi=str(hostapis[dev["hostapi"]]["name"]),
                channels=int(dev["max_input_channels"]),
                default_rate=float(dev["default_samplerate"]),
                is_default=int(dev["index"]) == default_in,
                is_loopback=any(h in name.lower() for h in _LOOPBACK_HINTS),
            )
        )
    return out


def resolve_device(spec: int | str | None, devices: list[DeviceInfo]) -> tuple[int | None, str]:
    """Config device spec -> (PortAudio index or None for default, a description). Raises LookupError."""
    if spec is None:
        return None, "default input"
    if isinstance(spec, int):
        if any(d.index == spec for d in devices):
            return spec, f"device {spec}"
        raise LookupError(f"no input device with index {spec}; {DEVICES_HINT}")
    if spec.lower() == LOOPBACK:
        return _resolve_loopback(devices)
    for d in devices:
        if spec.lower() in d.name.lower():
            return d.index, d.name
    raise LookupError(f"no input device whose name contains {spec!r}; {DEVICES_HINT}")


class NoAudioInput(LookupError):
    """Nothing to capture from at all; the message says what was tried and what to do."""


def no_input_message(pulse_problem: str | None) -> str:
    """Why there is no input: PortAudio lists none, and (when tried) why the sound server did not answer."""
    server = f"the sound server did not answer ({pulse_problem}) and " if pulse_problem else ""
    return (
        f"no audio input device: {server}PortAudio lists no input devices; is PulseAudio/PipeWire running "
        f"(PULSE_SERVER={os.environ.get('PULSE_SERVER', 'unset')}) or a microphone plugged in? {DEVICES_HINT}"
    )


def _resolve_loopback(devices: list[DeviceInfo]) -> tuple[int | None, str]:
    if sys.platform.startswith("linux"):
        # The ALSA "pulse"/"pipewire" device reads whatever source libpulse is told to use; this special
        # name follows the default sink even when the user switches outputs.
        for name in ("pulse", "pipewire"):
            match = next((d for d in devices if d.name == name), None)
            if match:
                os.environ["PULSE_SOURCE"] = "@DEFAULT_MONITOR@"
                return match.index, f"{match.name} (monitor of the default sink: {pulse.monitor_source() or '?'})"
    for d in devices:
        if d.is_loopback:
            return d.index, d.name
    raise LookupError(
        "no loopback device found (Linux: PulseAudio/PipeWire and the ALSA pulse plugin; Windows: enable "
        f"'Stereo Mix'; macOS: install BlackHole); {DEVICES_HINT}"
    )


AUTO, PULSE, PORTAUDIO = "auto", "pulse", "portaudio"


def choose_backend(
    backend: str, spec: int | str | None, pulse_loads: bool, pulse_names: Sequence[str]
) -> tuple[str, str | None]:
    """(audio.backend, audio.device) -> (PULSE, source name or None = default source) or (PORTAUDIO, None).

    auto records natively from PulseAudio/PipeWire whenever that can mean the same device: the default input, the
    loopback, or a source named exactly; device indices and PortAudio names stay with PortAudio. Raises LookupError
    when backend is pulse and the spec names no PulseAudio source.
    """
    if backend == PORTAUDIO or (backend == AUTO and not pulse_loads):
        return PORTAUDIO, None
    if spec is None:
        return PULSE, None
    if isinstance(spec, str) and spec.lower() == LOOPBACK:
        return PULSE, pulse.DEFAULT_MONITOR
    if isinstance(spec, str):
        if spec in pulse_names:
            return PULSE, spec
        if backend == PULSE:
            match = next((n for n in pulse_names if spec.lower() in n.lower()), None)
            if match:
                return PULSE, match
    if backend == PULSE:
        raise LookupError(f"no PulseAudio source for audio.device {spec!r} (audio.backend: pulse); {DEVICES_HINT}")
    return PORTAUDIO, None


def pulse_description(source: str | None) -> str:
    """The capture source as the log and /status name it (asks pactl for the monitor's name)."""
    if source == pulse.DEFAULT_MONITOR:
        return f"the monitor of the default sink ({pulse.monitor_source() or '?'})"
    return f"PulseAudio source {source}" if source else "the default PulseAudio source"


def close_stream(stream: Any) -> None:
    """Stop a PortAudio stream at once and free it; a device already gone may refuse either. Call it off the event
    loop: on a dead sound server the ALSA pulse plugin can block in it."""
    with contextlib.suppress(Exception):
        stream.abort()
    with contextlib.suppress(Exception):
        stream.close()
