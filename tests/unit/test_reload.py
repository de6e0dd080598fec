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
    running = {t: session_spec(old, t) for t in old.translator.targets}
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
    assert plan(new, old).stop_targets == ("ko",) and plan(new, old).start_targets == ("ko",)


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
