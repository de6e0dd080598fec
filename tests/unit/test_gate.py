"""SpeechGate, table-tested on synthetic 16 kHz audio: what is sent, what is kept back, and nothing spoken is cut."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.config import GateConfig, parse
from captioner.errors import ConfigError
from captioner.inputs.gate import GateChunk, GateState, SpeechGate
from tests.support.gate_audio import DEFAULT, RATE, voice, white


@dataclass
class Scene:
    """Captured audio cut into chunks, and which chunks hold speech."""

    chunks: list[bytes]
    speech: list[bool]
    chunk_s: float

    @classmethod
    def of(cls, parts: list[tuple[str, float, float]], chunk_ms: int = 100, noise_dbfs: float | None = None) -> Scene:
        """parts: (kind, seconds, dbfs) with kind voice | silence | click | fade (from dbfs down 50 dB)."""
        rng = np.random.default_rng(5)
        audio: list[np.ndarray] = []
        marks: list[np.ndarray] = []
        for kind, seconds, dbfs in parts:
            n = round(seconds * RATE)
            if kind == "voice":
                x = voice(seconds, dbfs, rng)
            elif kind == "fade":
                x = voice(seconds, dbfs, rng) * 10 ** (-50 * np.arange(n) / n / 20)
            elif kind == "click":  # a few ms of a loud crack, then silence
                x = np.zeros(n)
                x[:80] = rng.normal(0, 10 ** (dbfs / 20), 80)
            else:
                x = np.zeros(n)
            audio.append(x)
            marks.append(np.full(n, kind in ("voice", "fade")))
        signal = np.concatenate(audio)
        if noise_dbfs is not None:
            signal = signal + white(len(signal) / RATE, noise_dbfs, rng)
        pcm = (np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes()
        step = RATE * chunk_ms // 1000
        is_speech = np.concatenate(marks)
        pcm += bytes(-len(pcm) % (2 * step))
        chunks = [pcm[i : i + 2 * step] for i in range(0, len(pcm), 2 * step)]
        speech = [bool(is_speech[i * step : (i + 1) * step].any()) for i in range(len(chunks))]
        return cls(chunks, speech, chunk_ms / 1000)

    def index(self, seconds: float) -> int:
        return round(seconds / self.chunk_s)

    def indexes(self, out: list[GateChunk]) -> list[int]:
        """Which captured chunks these are (-1: padding), by identity: silent chunks have equal bytes."""
        where = {id(c): i for i, c in enumerate(self.chunks)}
        return [-1 if c.padding else where[id(c.pcm)] for c in out]


def run(scene: Scene, cfg: GateConfig = DEFAULT, gate: SpeechGate | None = None) -> tuple[list[int], SpeechGate]:
    """Feed every chunk; returns the indexes of the chunks sent, in send order (-1 for padding)."""
    gate = gate or SpeechGate(cfg)
    sent: list[int] = []
    for chunk in scene.chunks:
        sent += scene.indexes(gate.feed(chunk))
    return sent, gate


def spans(indexes: list[int]) -> list[tuple[int, int]]:
    """[3,4,5,9,10] -> [(3, 6), (9, 11)]: the runs of chunks sent."""
    out: list[tuple[int, int]] = []
    for i in indexes:
        if out and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def assert_no_speech_cut(scene: Scene, sent: list[int]) -> None:
    missed = [i for i, s in enumerate(scene.speech) if s and i not in sent]
    assert not missed, f"speech chunks not sent: {missed}"
    real = [i for i in sent if i >= 0]
    assert real == sorted(set(real)), "chunks sent twice or out of order"


# (name, parts, the runs of 100 ms chunks sent). Pre-roll 5 chunks, trail 20 chunks after the last speech chunk.
CASES = [
    (
        "phrases with a short pause and a long one",
        [
            ("silence", 2.0, 0),
            ("voice", 1.5, -25),
            ("silence", 1.0, 0),
            ("voice", 1.0, -25),
            ("silence", 5.0, 0),
            ("voice", 1.2, -30),
            ("silence", 3.0, 0),
        ],
        # 15..20 pre-roll, speech 20..35, the 1 s pause is sent, speech 45..55, trail 55..75; again at 105.
        [(15, 75), (100, 137)],
    ),
    ("a very short word (80 ms)", [("silence", 1.0, 0), ("voice", 0.08, -30), ("silence", 3.0, 0)], [(5, 31)]),
    ("a loud click opens nothing", [("silence", 1.0, 0), ("click", 0.1, -6), ("silence", 3.0, 0)], []),
    ("speech right at the start", [("voice", 1.0, -25), ("silence", 3.0, 0)], [(0, 30)]),
    ("quiet speech", [("silence", 1.0, 0), ("voice", 1.0, -48), ("silence", 3.0, 0)], [(5, 40)]),
    ("below min_level_dbfs stays closed", [("silence", 1.0, 0), ("voice", 1.0, -70), ("silence", 3.0, 0)], []),
]


@pytest.mark.parametrize(("name", "parts", "expected"), CASES, ids=[c[0] for c in CASES])
def test_what_is_sent(name: str, parts: list[tuple[str, float, float]], expected: list[tuple[int, int]]) -> None:
    scene = Scene.of(parts)
    sent, gate = run(scene)
    assert spans(sent) == expected
    if expected:
        assert_no_speech_cut(scene, sent)
    assert gate.counters.opened == len(expected)
    assert gate.counters.sent_s == pytest.approx(sum(b - a for a, b in expected) * 0.1)
    assert gate.counters.captured_s == pytest.approx(len(scene.chunks) * 0.1)


def test_pre_roll_is_exactly_the_chunks_before_the_onset() -> None:
    scene = Scene.of([("silence", 2.0, 0), ("voice", 1.0, -25), ("silence", 3.0, 0)], noise_dbfs=-75)
    gate = SpeechGate(DEFAULT)
    onset = scene.index(2.0)
    for i in range(onset):
        assert gate.feed(scene.chunks[i]) == [], f"chunk {i} is silence"
        assert gate.state == GateState.CLOSED
    released = gate.feed(scene.chunks[onset], None, 7.5)
    assert scene.indexes(released) == list(range(onset - 5, onset + 1))
    # stamped with the onset's capture time, so capture-to-wire does not count the pre-roll's age
    assert [c.captured_at for c in released] == [7.5] * 6
    # ... and marked as held back, so capture-to-wire reports the pre-roll apart from the chunk just captured
    assert [c.held for c in released] == [True] * 5 + [False]
    assert gate.state == GateState.OPEN
    assert not gate.feed(scene.chunks[onset + 1])[0].held


@pytest.mark.parametrize("pre_roll_ms", [100, 500, 1500])
@pytest.mark.parametrize("trail_ms", [1000, 2000, 3500])
def test_pre_roll_and_trail_lengths(pre_roll_ms: int, trail_ms: int) -> None:
    scene = Scene.of([("silence", 3.0, 0), ("voice", 1.0, -25), ("silence", 6.0, 0)])
    sent, _ = run(scene, GateConfig(pre_roll_ms=pre_roll_ms, trail_ms=trail_ms))
    start, stop = 30 - pre_roll_ms // 100, 40 + trail_ms // 100
    assert spans(sent) == [(start, stop)]


def test_slow_fade_is_sent_to_its_end_then_the_trail() -> None:
    # A word dying away over 3 s (-20 -> -70 dBFS) over a -80 dBFS hiss: the gate stays open while any of it
    # is above the closing level, then sends the trail.
    scene = Scene.of([("silence", 1.0, 0), ("fade", 3.0, -20), ("silence", 4.0, 0)], noise_dbfs=-80)
    sent, gate = run(scene)
    assert_no_speech_cut(scene, sent)
    (start, stop), *rest = spans(sent)
    assert not rest and start == 5
    assert stop >= 10 + 20  # the audible part of the fade (about 2 s of it), plus the 2 s trail
    assert gate.state == GateState.CLOSED


def test_steady_noise_is_learned_and_speech_above_it_still_opens() -> None:
    # A fan at -40 dBFS (louder than min_level_dbfs): the floor follows it; speech 15 dB above it opens the gate.
    parts: list[tuple[str, float, float]] = [("silence", 8.0, 0), ("voice", 1.0, -25), ("silence", 4.0, 0)]
    scene = Scene.of(parts, noise_dbfs=-40)
    sent, gate = run(scene)
    assert_no_speech_cut(scene, sent)
    assert -45 < gate.noise_floor_dbfs < -39
    # The first seconds may open on the noise (the floor is still being learned); the speech run ends 2 s later.
    assert spans(sent)[-1] == (75, 110)
    assert gate.state == GateState.CLOSED


@pytest.mark.parametrize("chunk_ms", [20, 30, 250])
def test_other_chunk_sizes(chunk_ms: int) -> None:
    scene = Scene.of([("silence", 2.0, 0), ("voice", 1.0, -25), ("silence", 3.0, 0)], chunk_ms=chunk_ms)
    sent, _ = run(scene)
    assert_no_speech_cut(scene, sent)
    (start, stop), *rest = spans(sent)
    assert not rest
    onset = scene.index(2.0)
    assert (onset - start) * chunk_ms == pytest.approx(500, abs=chunk_ms)
    assert (stop - scene.index(3.0)) * chunk_ms == pytest.approx(2000, abs=chunk_ms)


def test_disabled_sends_everything() -> None:
    scene = Scene.of([("silence", 1.0, 0), ("voice", 0.5, -25), ("silence", 3.0, 0)])
    sent, gate = run(scene, GateConfig(enabled=False))
    assert sent == list(range(len(scene.chunks)))
    assert gate.state == GateState.OPEN and gate.counters.closed == 0


# ---- holds -------------------------------------------------------------------------------------------


def test_hold_sends_nothing_and_release_sends_only_new_speech() -> None:
    scene = Scene.of([("silence", 1.0, 0), ("voice", 2.0, -25), ("voice", 1.0, -25), ("silence", 3.0, 0)])
    gate = SpeechGate(DEFAULT)
    gate.hold("operator", True)
    sent: list[int] = []
    for i, chunk in enumerate(scene.chunks):
        if i == 30:  # released while speech goes on: it goes out from here, with nothing held before
            assert gate.hold("operator", False)
        sent += scene.indexes(gate.feed(chunk))
    assert spans(sent) == [(30, 60)]
    assert gate.counters.held_s == {"operator": pytest.approx(3.0)}


def test_hold_during_speech_pads_the_trail_with_zeros() -> None:
    scene = Scene.of([("silence", 1.0, 0), ("voice", 3.0, -25), ("silence", 4.0, 0)])
    gate = SpeechGate(DEFAULT)
    out: list[tuple[int, GateChunk]] = []
    for i, chunk in enumerate(scene.chunks):
        if i == 20:
            gate.hold("obs_not_streaming", True)
        out += [(i, c) for c in gate.feed(chunk)]
    real = scene.indexes([c for _, c in out if not c.padding])
    zeros = [i for i, c in out if c.padding and not any(c.pcm)]
    assert spans(real) == [(5, 20)]
    # 2 s of silence so the service ends the segment in flight; never the held speech itself.
    assert zeros == list(range(20, 40))
    assert gate.counters.padded_s == pytest.approx(2.0)
    assert gate.state == GateState.HELD


def test_hold_in_the_trail_pads_only_what_is_missing() -> None:
    scene = Scene.of([("silence", 1.0, 0), ("voice", 1.0, -25), ("silence", 4.0, 0)])
    gate = SpeechGate(DEFAULT)
    zeros = 0
    for i, chunk in enumerate(scene.chunks):
        if i == 25:  # 0.5 s of the 2 s trail already sent
            gate.hold("muted", True)
        zeros += sum(1 for c in gate.feed(chunk) if c.padding and not any(c.pcm))
    assert zeros == 15


def test_hold_reasons_combine() -> None:
    gate = SpeechGate(DEFAULT)
    assert gate.hold("a", True)
    assert not gate.hold("b", True)
    assert gate.held_by == ["a", "b"]
    assert not gate.hold("a", False)
    assert gate.state == GateState.HELD
    assert not gate.hold("a", False)  # releasing twice is harmless
    assert gate.hold("b", False)
    assert gate.as_dict()["state"] == "closed" and gate.held_by == []


def test_flush_releases_speech_that_has_not_opened_the_gate_yet() -> None:
    scene = Scene.of([("silence", 1.0, 0), ("voice", 0.02, -25), ("silence", 0.08, 0)])
    gate = SpeechGate(DEFAULT)
    sent, _ = run(scene, gate=gate)
    assert sent == []
    flushed = gate.flush()
    assert scene.indexes(flushed) == list(range(5, 11))
    assert gate.flush() == []


def test_reload_keeps_the_segment_in_flight() -> None:
    scene = Scene.of([("silence", 1.0, 0), ("voice", 1.0, -25), ("silence", 4.0, 0)])
    gate = SpeechGate(DEFAULT)
    sent: list[int] = []
    for i, chunk in enumerate(scene.chunks):
        if i == 22:
            gate.configure(GateConfig(trail_ms=3000))
        sent += scene.indexes(gate.feed(chunk))
    assert spans(sent) == [(5, 50)]


# ---- property: whatever the scene, no speech is cut ------------------------------------------------------

part = st.one_of(
    st.tuples(st.just("voice"), st.floats(0.06, 2.0), st.floats(-45, -6)),
    st.tuples(st.just("silence"), st.floats(0.05, 4.0), st.just(0.0)),
    st.tuples(st.just("click"), st.floats(0.05, 0.5), st.floats(-30, -3)),
    st.tuples(st.just("fade"), st.floats(0.3, 3.0), st.floats(-30, -10)),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(part, min_size=1, max_size=8), st.sampled_from([None, -70.0, -60.0]))
def test_no_speech_is_ever_cut(parts: list[tuple[str, float, float]], noise: float | None) -> None:
    scene = Scene.of(parts, noise_dbfs=noise)
    sent, _ = run(scene)
    # Speech at least 15 dB above the noise counts; quieter speech in the noise is the service's guess too.
    audible = [
        s and (noise is None or p_db - noise >= 15)
        for s, p_db in zip(scene.speech, _chunk_levels(scene, parts), strict=True)
    ]
    assert_no_speech_cut(Scene(scene.chunks, audible, scene.chunk_s), sent)


def _chunk_levels(scene: Scene, parts: list[tuple[str, float, float]]) -> list[float]:
    """The nominal dBFS of the part each chunk starts in (fades: their start level)."""
    bounds = np.cumsum([round(p[1] * RATE) for p in parts])
    step = round(scene.chunk_s * RATE)
    levels = []
    for i in range(len(scene.chunks)):
        k = min(int(np.searchsorted(bounds, i * step, side="right")), len(parts) - 1)
        levels.append(parts[k][2])
    return levels


# ---- config ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gate", "key", "words"),
    [
        ({"trail_ms": 100}, "gate.trail_ms", "greater than or equal to 200"),
        ({"turns": "vad"}, "gate.turns", "'auto', 'server' or 'client'"),
        ({"end_of_sentence_ms": 100}, "gate.end_of_sentence_ms", "greater than or equal to 200"),
        ({"turns": "client"}, "gate.turns", "a model with manual turns"),
        ({"turns": "client", "enabled": False}, "gate.turns", "a model with manual turns"),
        ({"pre_roll_ms": 5000}, "gate.pre_roll_ms", "less than or equal to 2000"),
        ({"enabled": "sometimes"}, "gate.enabled", "valid boolean"),
        ({"treshold_db": 9}, "gate.treshold_db", "unknown key"),
        ({"min_level_dbfs": 3}, "gate.min_level_dbfs", "less than or equal to -10"),
    ],
)
def test_config_errors_name_the_key(gate: dict[str, object], key: str, words: str) -> None:
    raw = {"translator": {"api_key": "k"}, "gate": gate}
    with pytest.raises(ConfigError) as e:
        parse(raw, env={})
    assert e.value.key == key and words in str(e.value), str(e.value)


def test_gate_is_on_by_default() -> None:
    cfg = parse({"translator": {"api_key": "k"}}, env={})
    assert cfg.gate == GateConfig()
    assert cfg.gate.enabled and cfg.gate.trail_ms is None and cfg.gate.pre_roll_ms == 300
    assert cfg.gate.turns == "auto" and cfg.gate.end_of_sentence_ms == 800


def test_client_turns_need_the_gate() -> None:
    raw = {"translator": {"api_key": "k", "model": "qwen3.5-livetranslate-flash-realtime"}}
    assert parse({**raw, "gate": {"turns": "client"}}, env={}).gate.turns == "client"
    with pytest.raises(ConfigError) as e:
        parse({**raw, "gate": {"turns": "client", "enabled": False}}, env={})
    assert e.value.key == "gate.turns" and "gate.enabled: true" in str(e.value)
