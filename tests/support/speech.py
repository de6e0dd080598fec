"""Audio files for the real-part tests: speech by espeak-ng, tones and silence by sox, their lengths."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np


def speech_wav(text: str, path: str | os.PathLike[str], voice: str = "en", wpm: int = 160) -> Path:
    """Synthesize text with espeak-ng into a wav file (22050 Hz mono s16) and return its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(out), "--", text],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    return out


def silence_padded_sequence(
    phrases: list[str], gap_s: float, path: str | os.PathLike[str], voice: str = "en", wpm: int = 160
) -> Path:
    """Build ONE wav: the spoken phrases in order, separated by gap_s seconds of silence."""
    if not phrases:
        raise ValueError("phrases must not be empty")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seq-", dir=out.parent) as td:
        parts: list[str] = []
        sil = Path(td) / "gap.wav"
        for i, phrase in enumerate(phrases):
            wav = speech_wav(phrase, Path(td) / f"p{i}.wav", voice=voice, wpm=wpm)
            if i == 0 and gap_s > 0:
                with wave.open(str(wav)) as w:
                    rate, ch = w.getframerate(), w.getnchannels()
                subprocess.run(
                    ["sox", "-n", "-r", str(rate), "-c", str(ch), "-b", "16", str(sil), "trim", "0", f"{gap_s:.3f}"],
                    check=True,
                    capture_output=True,
                    timeout=60,
                )
            if i > 0 and gap_s > 0:
                parts.append(str(sil))
            parts.append(str(wav))
        if len(parts) == 1:
            shutil.copyfile(parts[0], out)
        else:
            subprocess.run(["sox", *parts, str(out)], check=True, capture_output=True, timeout=60)
    return out


def tone_wav(
    path: str | os.PathLike[str],
    seconds: float,
    freq: float,
    rate: int = 48000,
    channels: int = 2,
    amplitude: float = 0.5,
) -> Path:
    """Write a sine tone as a 16-bit wav and return its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(round(seconds * rate)) / rate
    mono = (amplitude * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    data = np.repeat(mono[:, None], channels, axis=1)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return out


def wav_duration(path: str | os.PathLike[str]) -> float:
    """Length of a wav file in seconds."""
    with wave.open(str(path)) as w:
        return float(w.getnframes()) / float(w.getframerate())


# --------------------------------------------------------------------------------------------- PulseAudio
