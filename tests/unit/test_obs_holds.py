"""Which OBS states hold the audio back (gate.obs_outputs / obs_unmuted / obs_scenes), table by table."""

from __future__ import annotations

from typing import Any

import pytest

from captioner.config import GateConfig
from captioner.inputs.gate import obs_holds
from captioner.obs_state import ObsState

LIVE = ObsState(connected=True, streaming=True, scene="Game")
CASES: list[tuple[str, dict[str, Any], ObsState, set[str]]] = [
    ("nothing configured: never held", {}, ObsState(), set()),
    ("only while streaming, streaming", {"obs_outputs": ["streaming"]}, LIVE, set()),
    ("only while streaming, not streaming", {"obs_outputs": ["streaming"]}, ObsState(connected=True), {"obs_not_live"}),
    ("only while streaming, OBS away", {"obs_outputs": ["streaming"]}, ObsState(), {"obs_not_live"}),
    (
        "streaming or recording, recording",
        {"obs_outputs": ["streaming", "recording"]},
        ObsState(connected=True, recording=True),
        set(),
    ),
    ("recording only, streaming", {"obs_outputs": ["recording"]}, LIVE, {"obs_not_live"}),
    ("the mic is muted", {"obs_unmuted": ["Mic"]}, ObsState(muted=frozenset({"Mic"})), {"obs_muted"}),
    ("one of two mics is live", {"obs_unmuted": ["Mic", "Headset"]}, ObsState(muted=frozenset({"Mic"})), set()),
    (
        "both mics muted",
        {"obs_unmuted": ["Mic", "Headset"]},
        ObsState(muted=frozenset({"Mic", "Headset"})),
        {"obs_muted"},
    ),
    ("a captioned scene", {"obs_scenes": ["Game", "Chat"]}, LIVE, set()),
    ("the BRB scene", {"obs_scenes": ["Game"]}, ObsState(connected=True, streaming=True, scene="BRB"), {"obs_scene"}),
    (
        "all three at once",
        {"obs_outputs": ["streaming"], "obs_unmuted": ["Mic"], "obs_scenes": ["Game"]},
        ObsState(connected=True, scene="BRB", muted=frozenset({"Mic"})),
        {"obs_not_live", "obs_muted", "obs_scene"},
    ),
]


@pytest.mark.parametrize(("cfg", "state", "held"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_obs_holds(cfg: dict[str, Any], state: ObsState, held: set[str]) -> None:
    holds = obs_holds(GateConfig(**cfg), state)
    assert {reason for reason, on in holds.items() if on} == held
    assert set(holds) == {"obs_not_live", "obs_muted", "obs_scene"}  # every reason is stated, so it can be released
