"""Voice playback, pure parts: audio events, delta reassembly, utterance order, the bounded buffer, device format."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from captioner.playout import AudioEvent, DeltaAssembler, PlayoutQueue, audio_event
from captioner.voice import OutputDevice, Renderer, resolve_output
from tests.support.voice_deltas import b64, secs

pytestmark = pytest.mark.timeout(60)


# ---- audio events -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"type": "response.audio.delta", "response_id": "r1", "item_id": "i1", "delta": "AAA="}, ("r1", False)),
        ({"type": "response.audio.delta", "item_id": "i1", "delta": "AAA="}, ("i1", False)),  # no response_id
        ({"type": "response.audio.done", "response_id": "r1"}, ("r1", True)),
        ({"type": "response.done", "response": {"id": "r2", "status": "completed"}}, ("r2", True)),
        ({"type": "response.done", "response": "r2"}, None),  # malformed: no id to end
        ({"type": "response.audio.delta", "delta": "AAA="}, None),  # nothing to file it under
        ({"type": "response.audio.delta", "response_id": 7, "delta": "AAA="}, None),
        ({"type": "response.text.text", "response_id": "r1", "text": "x"}, None),
    ],
)
def test_audio_event(event: dict[str, Any], expected: tuple[str, bool] | None) -> None:
    parsed = audio_event(event)
    assert (None if parsed is None else (parsed.key, parsed.done)) == expected


# ---- delta reassembly -------------------------------------------------------------------------------
PCM = bytes(range(1, 21))  # ten samples, every byte distinct so a misaligned sample shows


@pytest.mark.parametrize(
    ("deltas", "played"),
    [
        ([b64(PCM)], PCM),
        ([b64(PCM[:7]), b64(PCM[7:])], PCM),  # a sample split across two deltas
        ([b64(PCM[:1]), b64(PCM[1:2]), b64(PCM[2:])], PCM),  # one byte at a time
        ([b64(PCM[:7]), b64(PCM[7:13]), b64(PCM[13:])], PCM),  # odd, even, odd
        ([b64(PCM[:6]), "", b64(PCM[6:])], PCM),  # an empty delta changes nothing
        # An undecodable delta is skipped (never silence) and the samples after it stay on the grid:
        ([b64(PCM[:6]), "!!!!", b64(PCM[9:])], PCM[:6] + PCM[10:]),  # 3 bytes lost -> the next byte is skipped
        ([b64(PCM[:5]), "!!!!", b64(PCM[8:])], PCM[:4] + PCM[8:]),  # leftover + 3 lost = even: grid holds
        ([b64(PCM[:6]), None, b64(PCM[6:])], PCM),  # no delta field at all: nothing lost
        ([b64(PCM[:7]), None, b64(PCM[7:])], PCM[:6] + PCM[8:]),  # the half sample before it is gone too
        ([b64(PCM[:6]), "AAA", b64(PCM[6:])], PCM),  # bad padding (2 bytes lost) -> grid holds
    ],
)
def test_delta_reassembly(deltas: list[Any], played: bytes) -> None:
    assembler = DeltaAssembler()
    out = b"".join(part for d in deltas if (part := assembler.feed(d)) is not None)
    assert out == played
    assert len(out) % 2 == 0


@pytest.mark.parametrize("bad", ["!!!!", "AAA", None, 12, "A==="])
def test_bad_delta_is_reported_not_played(bad: Any) -> None:
    assert DeltaAssembler().feed(bad) is None


# ---- the playout queue ------------------------------------------------------------------------------


def run(steps: list[tuple[Any, ...]], max_buffer_s: float = 10, prebuffer_s: float = 0.5) -> tuple[PlayoutQueue, str]:
    """Steps: ("delta", key, seconds, fill) / ("done", key) / ("pull", seconds) / ("late", seconds to wait).

    Returns the queue and what was played, one letter per 0.1 s: the fill value as a letter, "." for silence,
    "~" for a block that mixes two (which in-order, whole-utterance playout must never produce).
    """
    q = PlayoutQueue(max_buffer_s, prebuffer_s, stale_s=5.0)
    now = 0.0
    played = ""
    for step in steps:
        if step[0] == "delta":
            q.feed(AudioEvent(step[1], False, secs(step[2], step[3])), now)
        elif step[0] == "done":
            q.feed(AudioEvent(step[1], True), now)
        elif step[0] == "late":
            now += step[1]
        else:
            for _ in range(round(step[1] / 0.1)):
                block = np.frombuffer(q.pull(2400, now), "<i2")
                now += 0.1
                values = set(block.tolist())
                played += "~" if len(values) > 1 else ("." if values == {0} else chr(ord("A") + block[0] - 1))
    return q, played


PULL3: list[tuple[Any, ...]] = [("pull", 0.3)]
LATE_B: list[tuple[Any, ...]] = [("delta", "b", 0.5, 2), ("done", "a"), ("done", "b"), ("done", "c"), ("pull", 4.5)]


@pytest.mark.parametrize(
    ("steps", "played"),
    [
        # Nothing queued: silence.
        ([("pull", 0.3)], "..."),
        # Below the prebuffer and not done: wait; done: play at once, however short.
        ([("delta", "r1", 0.3, 1), ("pull", 0.2), ("done", "r1"), ("pull", 0.5)], "..AAA.."),
        # Reaching the prebuffer starts it.
        ([("delta", "r1", 0.3, 1), ("delta", "r1", 0.3, 1), ("pull", 0.8)], "AAAAAA.."),
        # Two utterances whose deltas interleave (a rotation: old and new session at once) play one after the
        # other, in the order their audio began, each whole.
        (
            [
                ("delta", "r1", 0.3, 1),
                ("delta", "r2", 0.2, 2),
                ("delta", "r1", 0.3, 1),
                ("delta", "r2", 0.2, 2),
                ("done", "r2"),
                ("done", "r1"),
                ("pull", 1.2),
            ],
            "AAAAAABBBB..",
        ),
        # The second waits for the first to end even when it is complete first.
        ([("delta", "r1", 0.6, 1), ("delta", "r2", 0.2, 2), ("done", "r2"), ("pull", 0.8)], "AAAAAA.."),
        # Running dry mid-utterance is an underrun: silence, then it waits for a prebuffer again.
        (
            [("delta", "r1", 0.5, 1), ("pull", 0.7), ("delta", "r1", 0.2, 1), ("pull", 0.2), ("done", "r1"), *PULL3],
            "AAAAA.." + ".." + "AA.",
        ),
        # A late delta of an utterance already played does not play it again.
        ([("delta", "r1", 0.2, 1), ("done", "r1"), ("pull", 0.3), ("delta", "r1", 0.2, 1), ("pull", 0.3)], "AA...."),
        # No delta and no done for 5 s: what there is gets played (the response was cut off).
        ([("delta", "r1", 0.2, 1), ("pull", 0.2), ("late", 5.0), ("pull", 0.3)], "..AA."),
    ],
)
def test_playout_order(steps: list[tuple[Any, ...]], played: str) -> None:
    assert run(steps)[1] == played


def test_underrun_is_counted_once_per_dry_spell() -> None:
    q, played = run([("delta", "r1", 0.5, 1), ("pull", 1.0), ("delta", "r1", 0.6, 1), ("pull", 1.0)])
    assert played == "AAAAA....." + "AAAAAA...."
    assert q.stats.underruns == 2 and q.stats.utterances_played == 0
    assert q.stats.played_s == pytest.approx(1.1)


@pytest.mark.parametrize(
    ("steps", "played", "dropped"),
    [
        # 4 s limit. Playing A (3 s), B and C wait, D arrives: over the limit, B (the oldest waiting) goes,
        # then C; never A (playing, it would be cut) and never D (the newest).
        (
            [("delta", "a", 3.0, 1), ("pull", 0.1)]
            + [("delta", k, 1.0, n) for k, n in (("b", 2), ("c", 3), ("d", 4))]
            + [("done", k) for k in "abcd"]
            + [("pull", 4.0)],
            "A" * 30 + "D" * 10 + ".",
            2,
        ),
        # Under the limit nothing is dropped.
        (
            [("delta", "a", 1.0, 1), ("delta", "b", 1.0, 2), ("done", "a"), ("done", "b"), ("pull", 2.0)],
            "A" * 10 + "B" * 10,
            0,
        ),
        # One utterance alone above the limit is kept whole (dropping it would leave nothing to say).
        ([("delta", "a", 5.0, 1), ("done", "a"), ("pull", 5.0)], "A" * 50, 0),
        # Deltas for a dropped utterance that keep coming are discarded, not started again.
        (
            [("delta", "a", 3.0, 1), ("pull", 0.1), ("delta", "b", 1.0, 2), ("delta", "c", 1.5, 3), *LATE_B],
            "A" * 30 + "C" * 15 + ".",
            1,
        ),
    ],
)
def test_bounded_buffer_drops_whole_oldest_utterances(steps: list[tuple[Any, ...]], played: str, dropped: int) -> None:
    q, heard = run(steps, max_buffer_s=4, prebuffer_s=0.1)
    assert heard == played
    assert "~" not in heard
    assert q.stats.utterances_dropped == dropped
    assert q.buffered_s == 0


def test_buffered_seconds_and_bad_deltas_are_counted() -> None:
    q = PlayoutQueue(10, 0.5)
    q.feed(AudioEvent("r1", False, secs(0.25, 1)), 0)
    q.feed(AudioEvent("r1", False, "not base64!"), 0)
    q.feed(AudioEvent("r2", False, secs(0.5, 2)), 0)
    assert q.buffered_s == pytest.approx(0.75)
    assert q.stats.bad_deltas == 1 and q.queued == 2 and not q.playing
    assert q.drop_all() == 2 and q.buffered_s == 0 and q.stats.utterances_dropped == 2


# ---- device format ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("rate", "channels"), [(24000, 1), (24000, 2), (48000, 2), (44100, 1)])
def test_renderer_gives_exact_frames_at_the_device_rate(rate: int, channels: int) -> None:
    t = np.arange(24000 * 2)
    source = (np.sin(2 * np.pi * 1000 * t / 24000) * 0.3 * 32767).astype("<i2").tobytes()
    pos = 0

    def pull(samples: int) -> bytes:
        nonlocal pos
        out = source[pos : pos + samples * 2]
        pos += samples * 2
        return out + bytes(samples * 2 - len(out))

    r = Renderer(rate, channels, pull)
    blocks = [r.render(rate // 50) for _ in range(75)]  # 1.5 s in 20 ms blocks
    assert all(b.shape == (rate // 50, channels) and b.dtype == np.int16 for b in blocks)
    x = np.concatenate(blocks)[:, -1].astype(np.float64)[rate // 10 :]  # skip the resampler's start
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    assert np.argmax(spectrum) * rate / len(x) == pytest.approx(1000, abs=3)  # the same tone, not sped up
    assert np.sqrt(np.mean((x / 32768) ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)


DEVICES = [
    OutputDevice(0, "pulse", 32, 44100),
    OutputDevice(1, "default", 32, 44100),
    OutputDevice(3, "HDMI 1", 8, 48000),
]


@pytest.mark.parametrize(
    ("spec", "sink", "expected"),
    [
        (None, None, (None, "default output")),
        (3, None, (3, "device 3")),
        ("hdmi", None, (3, "HDMI 1")),
        (None, "voice_sink", (0, "pulse -> sink voice_sink")),
        ("default", "voice_sink", (1, "default -> sink voice_sink")),
        (9, None, LookupError),
        ("usb", None, LookupError),
    ],
)
def test_resolve_output(spec: Any, sink: str | None, expected: Any) -> None:
    if expected is LookupError:
        with pytest.raises(LookupError):
            resolve_output(spec, sink, DEVICES)
    else:
        assert resolve_output(spec, sink, DEVICES) == expected


def test_sink_needs_the_pulse_alsa_device() -> None:
    with pytest.raises(LookupError, match="pulse"):
        resolve_output(None, "voice_sink", DEVICES[2:])
