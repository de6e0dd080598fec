"""The reload plan (pure): which parts a new config restarts, which only take new settings, and the log's names."""

from __future__ import annotations

from typing import Any

import pytest

from captioner.config import Config, parse
from captioner.reload import ReloadPlan, plan_reload, session_spec

BASE: dict[str, Any] = {
    "translator": {"api_key": "k", "targets": ["ja", "ko"], "transcribe_source": True},
    "outputs": [{"obs_source": "JA", "language": "ja"}],
}


def config(**changes: Any) -> Config:
    raw: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in BASE.items()}
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            raw.setdefault(section, {})[name] = value
        else:
            raw[section] = value
    return parse(raw)


def plan(new: Config, old: Config | None = None, obs_running: bool = True) -> ReloadPlan:
    old = old or config()
    running = {(i.name, t): session_spec(old, t, i) for i in old.input_list() for t in old.translator.targets}
    return plan_reload(old, new, running, obs_running)


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (config(), []),
        (config(audio={"device": "loopback"}), ["audio"]),
        (config(gate={"threshold_db": 20}), ["gate"]),
        # A new target starts; the others keep running.
        (config(translator__targets=["ja", "ko", "de"]), ["translator:de"]),
        # A target gone is finished.
        (config(translator__targets=["ja"]), ["translator:ko"]),
        # The service's settings restart every session (stopped, then started again).
        (config(translator__watchdog_s=30), ["translator:ja", "translator:ko", "translator:ja", "translator:ko"]),
        # Whether a session transcribes is its own setting: the transcript moves to the new first target.
        (
            config(translator__targets=["ko", "ja"]),
            ["translator:ja", "translator:ko", "translator:ko", "translator:ja"],
        ),
        (config(outputs=[{"obs_source": "JA", "language": "ja"}, {"obs_source": "KO", "language": "ko"}]), ["outputs"]),
        (config(layout={"max_lines": 3}), ["outputs"]),
        (config(obs={"port": 4456}), ["obs"]),
        (config(stream_captions={"enabled": True, "language": "source"}), ["obs"]),
        (config(cost={"budget_per_day": 5}), ["cost"]),
        (config(vocabulary={"replacements": [{"find": "darn", "replace": "d***"}]}), ["vocabulary"]),
        # Files that follow the recording need OBS's recording events: the OBS link starts again with them.
        (config(transcripts={"enabled": True}), ["obs", "transcripts"]),
        (config(transcripts={"enabled": True, "follow_recording": False}), ["transcripts"]),
    ],
)
def test_what_a_reload_changes(new: Config, expected: list[str]) -> None:
    assert plan(new).changed() == expected


def test_a_glossary_of_one_target_restarts_that_target_only() -> None:
    q35 = {"translator__model": "qwen3.5-livetranslate-flash-realtime"}
    new = config(**q35, translator__glossary={"ko": {"castle": "성"}})
    assert plan(new, config(**q35)).changed() == ["translator:ko", "translator:ko"]


def test_pinning_the_source_language_on_one_session_restarts_only_the_others() -> None:
    q35 = {"translator__model": "qwen3.5-livetranslate-flash-realtime", "translator__source_language": "en"}
    old = config(**q35)
    new = config(**q35, translator__pin_source_language="one")
    assert plan(new, old).stop_sessions == (("", "ko"),) and plan(new, old).start_sessions == (("", "ko"),)


def test_live_captions_switch_qwen35_to_server_turns_restarting_the_sessions_and_the_feed() -> None:
    q35 = {"translator__model": "qwen3.5-livetranslate-flash-realtime"}
    old = config(**q35)
    new = config(**q35, layout={"live": True})
    assert session_spec(old, "ja").manual_turns and not session_spec(new, "ja").manual_turns
    restarted = ["translator:ja", "translator:ko", "translator:ja", "translator:ko"]
    assert plan(new, old).changed() == ["gate", *restarted, "outputs"]


def test_obs_starts_when_it_becomes_wanted_and_stops_when_not() -> None:
    assert plan(config(), obs_running=False).obs == "restart"  # outputs exist but OBS is not running yet
    assert plan(config(outputs=[]), obs_running=True).obs == "restart"  # nothing needs OBS any more
    assert plan(config(outputs=[]), config(outputs=[]), obs_running=False).obs is None


def test_http_changes_only_warn() -> None:
    p = plan(config(http={"port": 9999}))
    assert p.http and p.changed() == []


TWO: dict[str, Any] = {
    "translator": {"api_key": "k", "targets": ["ja", "ko"]},
    "outputs": [{"obs_source": "JA", "language": "ja"}],
    "inputs": [
        {"name": "Host", "source_language": "en"},
        {"name": "Guests", "device": "Discord", "source_language": "ja"},
    ],
}


def inputs(*changes: dict[str, Any], **top: Any) -> Config:
    """TWO with each input's keys changed (a None entry drops that input)."""
    listed = [{**i, **c} for i, c in zip(TWO["inputs"], changes or ({}, {}), strict=False) if c is not None]
    listed += [dict(i) for i in TWO["inputs"][len(changes or ({}, {})) :]]
    return parse({**TWO, "inputs": listed, **top})


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (inputs(), []),
        # One input's device: only its capture reopens; its sessions and the other input run on.
        (inputs({}, {"device": "loopback"}), ["audio:Guests"]),
        (inputs({"backend": "portaudio"}, {}), ["audio:Host"]),
        # The chunking is every input's.
        (inputs(audio={"chunk_ms": 200}), ["audio:Host", "audio:Guests"]),
        # One input's gate; the top-level gate is every input's that does not override it.
        (inputs({"gate": {"trail_ms": 3000}}, {}), ["gate:Host"]),
        (inputs(gate={"threshold_db": 20}), ["gate:Host", "gate:Guests"]),
        # One input's language: only its sessions restart.
        (inputs({}, {"source_language": "ko"}), [f"translator:Guests:{t}" for t in ("ja", "ko", "ja", "ko")]),
        # An input gone stops whole; a new one starts whole; the other is untouched.
        (inputs({}, None), ["input:Guests"]),
        (parse({**TWO, "inputs": [*TWO["inputs"], {"name": "Caller"}]}), ["input:Caller"]),
        # A new target starts on every input.
        (
            inputs(translator={"api_key": "k", "targets": ["ja", "ko", "de"]}),
            ["translator:Host:de", "translator:Guests:de"],
        ),
        # From inputs: back to audio:: the named inputs go, the unnamed one comes.
        (config(), ["input:Host", "input:Guests", "input"]),
    ],
)
def test_what_a_reload_changes_per_input(new: Config, expected: list[str]) -> None:
    assert plan(new, inputs()).changed() == expected


def test_renaming_an_input_replaces_it() -> None:
    renamed = parse({**TWO, "inputs": [TWO["inputs"][0], {**TWO["inputs"][1], "name": "Call"}]})
    p = plan(renamed, inputs())
    assert (p.stop_inputs, p.start_inputs, p.stop_sessions, p.start_sessions) == (("Guests",), ("Call",), (), ())
