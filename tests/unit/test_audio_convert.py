"""Capture conversion: any rate/channels -> exact 16 kHz mono PCM16 chunks, with a real resampler."""

from __future__ import annotations

import numpy as np
import pytest

from captioner.inputs.audio_devices import DeviceInfo, choose_backend, resolve_device
from captioner.inputs.pcm import rms
from captioner.inputs.pcm_convert import Pcm16Converter


def tone(rate: int, seconds: float, freq: float, channels: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1)


def convert(block_source: np.ndarray, rate: int, block: int, chunk_ms: int = 100) -> bytes:
    conv = Pcm16Converter(rate, block_source.shape[1], chunk_ms)
    out: list[bytes] = []
    for i in range(0, len(block_source), block):
        chunks = conv.feed(block_source[i : i + block])
        assert all(len(c) == conv.chunk_bytes for c in chunks)
        out += chunks
    out += conv.flush()
    return b"".join(out)


def dominant_hz(pcm: bytes) -> float:
    x = np.frombuffer(pcm, "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * 16000 / len(x))


@pytest.mark.parametrize(
    ("rate", "channels", "block"),
    [(48000, 2, 4800), (44100, 2, 4410), (16000, 1, 1600), (8000, 1, 333), (96000, 6, 9600), (22050, 1, 1000)],
)
def test_rate_and_channels_become_16k_mono(rate: int, channels: int, block: int) -> None:
    pcm = convert(tone(rate, 2.0, 1000.0, channels), rate, block)
    samples = len(pcm) // 2
    # 2 s of input -> 2 s of output, within the last padded chunk
    assert 32000 <= samples <= 32000 + 1600
    assert abs(dominant_hz(pcm[: 32000 * 2]) - 1000.0) < 5
    # level kept: a 0.5 sine has RMS ~0.354
    assert rms(pcm[3200:60000]) == pytest.approx(0.354, abs=0.01)


def test_no_aliasing_from_content_above_8k() -> None:
    # A 12 kHz tone cannot exist at 16 kHz; sample dropping would fold it to 4 kHz at full level.
    pcm = convert(tone(48000, 1.0, 12000.0, 1), 48000, 4800)
    assert rms(pcm[3200:28800]) < 0.005


def test_stereo_is_averaged() -> None:
    x = np.zeros((4800, 2), np.float32)
    x[:, 0] = 0.5
    pcm = Pcm16Converter(16000, 2).feed(x[:1600])
    assert np.frombuffer(pcm[0], "<i2")[800] == pytest.approx(0.25 * 32767, abs=2)


def test_clipping_is_saturated_not_wrapped() -> None:
    x = np.full((1600, 1), 1.7, np.float32)
    pcm = Pcm16Converter(16000, 1).feed(x)[0]
    assert np.frombuffer(pcm, "<i2").min() == 32767


def test_chunk_size_follows_chunk_ms() -> None:
    assert Pcm16Converter(48000, 2, 100).chunk_bytes == 3200
    assert Pcm16Converter(48000, 2, 40).chunk_bytes == 1280


DEVICES = [
    DeviceInfo(0, "HDA Intel PCH: ALC3246 Analog (hw:0,0)", "ALSA", 2, 44100, False, False),
    DeviceInfo(5, "USB Mic", "ALSA", 1, 48000, False, False),
    DeviceInfo(7, "Monitor of Built-in Audio", "ALSA", 2, 48000, False, True),
    DeviceInfo(9, "default", "ALSA", 32, 44100, True, False),
]


@pytest.mark.parametrize(
    ("spec", "index"),
    [(None, None), (5, 5), ("usb", 5), ("USB MIC", 5), ("alc3246", 0), ("monitor of", 7)],
)
def test_resolve_device(spec: int | str | None, index: int | None) -> None:
    assert resolve_device(spec, DEVICES)[0] == index


@pytest.mark.parametrize("spec", [3, "nonexistent"])
def test_resolve_device_errors(spec: int | str) -> None:
    with pytest.raises(LookupError):
        resolve_device(spec, DEVICES)


PULSE_SOURCES = ["alsa_input.usb-Blue_Yeti-00.analog-stereo", "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor"]
YETI, SPEAKERS = PULSE_SOURCES


@pytest.mark.parametrize(
    ("backend", "spec", "loads", "expected"),
    [
        # auto: natively whenever the spec means a PulseAudio source
        ("auto", None, True, ("pulse", None)),
        ("auto", "loopback", True, ("pulse", "@DEFAULT_MONITOR@")),
        ("auto", "LoopBack", True, ("pulse", "@DEFAULT_MONITOR@")),
        ("auto", YETI, True, ("pulse", YETI)),
        # ... and PortAudio for its own indices and names (a name part is not guessed across the two lists)
        ("auto", 5, True, ("portaudio", None)),
        ("auto", "USB Mic", True, ("portaudio", None)),
        ("auto", "yeti", True, ("portaudio", None)),
        # no libpulse: everything through PortAudio
        ("auto", None, False, ("portaudio", None)),
        ("auto", "loopback", False, ("portaudio", None)),
        ("auto", YETI, False, ("portaudio", None)),
        # forced
        ("portaudio", None, True, ("portaudio", None)),
        ("portaudio", "loopback", True, ("portaudio", None)),
        ("pulse", None, False, ("pulse", None)),
        ("pulse", "yeti", True, ("pulse", YETI)),
        ("pulse", ".MONITOR", True, ("pulse", SPEAKERS)),
        ("pulse", SPEAKERS, True, ("pulse", SPEAKERS)),
    ],
)
def test_choose_backend(backend: str, spec: int | str | None, loads: bool, expected: tuple[str, str | None]) -> None:
    assert choose_backend(backend, spec, loads, PULSE_SOURCES) == expected


@pytest.mark.parametrize("spec", [5, "USB Mic", "hdmi"])
def test_choose_backend_pulse_needs_a_source(spec: int | str) -> None:
    with pytest.raises(LookupError, match=r"audio\.backend: pulse"):
        choose_backend("pulse", spec, True, PULSE_SOURCES)
