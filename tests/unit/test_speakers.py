"""Who said what: the speakers config, naming the model's speaker ids, and when labels show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from captioner.config import SpeakersConfig, parse
from captioner.errors import ConfigError
from captioner.reload import plan_reload, session_spec, wants_obs
from captioner.speakers import MAX_SPEAKERS, SpeakerNames, label, speaker_name
from captioner.translation.interpreter import Caption
from tests.support.cli import captioner
from tests.support.config_docs import ENV, base


def cap(speaker_id: str, text: str = "hi", *, speaker: str = "", language: str = "ja", final: bool = True) -> Caption:
    return Caption(language, f"item-{text}", text, final, speaker=speaker, speaker_id=speaker_id)


def named(ids: list[str], **settings: Any) -> list[str]:
    """The `speaker` each caption gets, one caption per id, in order."""
    cfg = SpeakersConfig(**settings)
    names = SpeakerNames(lambda: cfg)
    return [names.name(cap(i)).speaker for i in ids]


@pytest.mark.parametrize(
    ("ids", "settings", "expected"),
    [
        # One voice: no label, however long it speaks.
        (["1", "1", "1"], {}, ["", "", ""]),
        # A second voice: labels from its first caption on, the first voice's included.
        (["1", "1", "2", "1"], {"names": ["Host", "Guest"]}, ["", "", "Guest", "Host"]),
        # Past the names: "Speaker <n>" by order heard, not by the model's number.
        (["1", "2", "7", "3"], {"names": ["Host", "Guest"]}, ["", "Guest", "Speaker 3", "Speaker 4"]),
        (["1", "2", "1"], {}, ["", "Speaker 2", "Speaker 1"]),
        # Named by first appearance: whoever the model calls "2" but is heard first gets the first name.
        (["2", "1", "2"], {"names": ["Host", "Guest"]}, ["", "Guest", "Host"]),
        # always: labelled from the first caption.
        (["1", "1", "2"], {"names": ["Host"], "always": True}, ["Host", "Host", "Speaker 2"]),
        # Unknown speaker: never labelled, and never counts as a second voice.
        (["1", "", "1", "", "2"], {"names": ["A", "B"]}, ["", "", "", "", "B"]),
        (["", ""], {"always": True}, ["", ""]),
        # The label template has no say in the name: "" hides labels in the outputs, /status still names.
        (["1", "2"], {"names": ["A", "B"], "label": ""}, ["", "B"]),
    ],
)
def test_speakers_are_named_in_order_of_first_appearance_once_a_second_is_heard(
    ids: list[str], settings: dict[str, Any], expected: list[str]
) -> None:
    assert named(ids, **settings) == expected


def test_names_are_shared_by_every_language_and_a_restarted_session() -> None:
    cfg = SpeakersConfig(names=("Host", "Guest"))
    names = SpeakerNames(lambda: cfg)
    shown = [
        names.name(cap("1", "a", language="ja")),
        names.name(cap("2", "b", language="en")),
        names.name(cap("2", "c", language="ja")),
        names.name(cap("1", "d", language="source", final=False)),  # a partial names too
        # A reconnected session numbers from "1" again: the first voice it hears keeps the first name.
        names.name(cap("1", "e", language="en")),
    ]
    assert [(c.language, c.speaker) for c in shown] == [
        ("ja", ""),
        ("en", "Guest"),
        ("ja", "Guest"),
        ("source", "Host"),
        ("en", "Host"),
    ]
    assert names.heard == 2


def test_a_caption_already_named_is_left_alone() -> None:
    names = SpeakerNames(lambda: SpeakersConfig(always=True))
    assert names.name(cap("1", speaker="Alice")).speaker == "Alice"
    assert names.heard == 0  # its id was not counted either: the other step named it
    assert names.name(cap("", speaker="Bob")).speaker == "Bob"


def test_a_reload_renames_and_relabels_from_the_next_caption() -> None:
    cfg = [SpeakersConfig(names=("Host", "Guest"))]
    names = SpeakerNames(lambda: cfg[0])
    assert [names.name(cap(i)).speaker for i in ("1", "2")] == ["", "Guest"]
    assert names.prefix("Guest") == "Guest: "
    cfg[0] = SpeakersConfig(names=("Ann", "Ben"), label="[{name}] ")
    assert names.name(cap("2")).speaker == "Ben"
    assert names.prefix("Ben") == "[Ben] "
    cfg[0] = SpeakersConfig(label="")
    assert (names.name(cap("1")).speaker, names.prefix("Speaker 1")) == ("Speaker 1", "")


def test_the_table_of_ids_is_bounded() -> None:
    names = SpeakerNames(lambda: SpeakersConfig(always=True))
    for i in range(MAX_SPEAKERS):
        assert names.name(cap(str(i))).speaker == f"Speaker {i + 1}"
    assert names.name(cap("one too many")).speaker == ""  # unlabelled rather than a table without end
    assert names.name(cap("0")).speaker == "Speaker 1"  # those known keep their names
    assert names.heard == MAX_SPEAKERS


@pytest.mark.parametrize(
    ("template", "name", "expected"),
    [
        ("{name}: ", "Host", "Host: "),
        ("[{name}] ", "ゲスト", "[ゲスト] "),
        ("{{{name}}} ", "A", "{A} "),
        ("{name}: ", "", ""),  # unknown speaker: no label
        ("", "Host", ""),  # labels off
        ("{name}: ", "{x}", "{x}: "),  # a name is text, never a template
    ],
)
def test_label(template: str, name: str, expected: str) -> None:
    assert label(template, name) == expected


@pytest.mark.parametrize(("index", "expected"), [(0, "Host"), (1, "Guest"), (2, "Speaker 3"), (9, "Speaker 10")])
def test_speaker_name(index: int, expected: str) -> None:
    assert speaker_name(index, ("Host", "Guest")) == expected


def test_the_config_defaults_and_a_full_section() -> None:
    assert parse(base(), ENV).speakers == SpeakersConfig(names=(), label="{name}: ", always=False)
    cfg = parse(base(speakers={"names": ["Host", "Guest"], "label": "{name} — ", "always": True}), ENV)
    assert cfg.speakers == SpeakersConfig(names=("Host", "Guest"), label="{name} — ", always=True)
    assert parse(base(speakers={"label": ""}), ENV).speakers.label == ""


@pytest.mark.parametrize(
    ("section", "key", "fragment"),
    [
        ({"label": "Speaker: "}, "speakers.label", "has no {name}"),
        ({"label": "{who}: "}, "speakers.label", "the only placeholder is {name} (found {who})"),
        ({"label": "{name}{0}"}, "speakers.label", "found {0}"),
        ({"label": "{name!r}"}, "speakers.label", "found {name!r}"),
        ({"label": "{name:>9}"}, "speakers.label", "found {name:>9}"),
        ({"label": "{name.upper}"}, "speakers.label", "found {name.upper}"),
        ({"label": "{name"}, "speakers.label", "not a valid template"),
        ({"label": "{name}}"}, "speakers.label", "not a valid template"),
        ({"label": "{name}\n"}, "speakers.label", "one line"),
        ({"names": ["Host", ""]}, "speakers.names[1]", "must not be empty"),
        ({"names": ["Host", "Ho\nst"]}, "speakers.names[1]", "one line"),
        ({"names": ["Host", "x" * 41]}, "speakers.names[1]", "longer than 40"),
        ({"names": ["Host", "Guest", "Host"]}, "speakers.names[2]", "listed twice"),
        ({"names": "Host"}, "speakers.names", "valid tuple"),
        ({"always": "sometimes"}, "speakers.always", "valid boolean"),
        ({"colour": "red"}, "speakers.colour", "unknown key"),
    ],
)
def test_speakers_config_errors_name_the_key(section: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(base(speakers=section), ENV)
    assert info.value.key == key
    assert fragment in str(info.value)


def test_a_bad_label_exits_2_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text('translator:\n  api_key: k\n  targets: [ja]\nspeakers:\n  label: "{speaker}: "\n')
    r = captioner("check", "--config", str(cfg))
    assert r.returncode == 2
    assert "speakers.label: '{speaker}: ': the only placeholder is {name} (found {speaker})" in r.stderr


def test_number_is_the_order_heard_under_the_current_names() -> None:
    cfg = [SpeakersConfig(names=("Host", "Guest"))]
    names = SpeakerNames(lambda: cfg[0])
    for i in ("4", "9", "2"):
        names.name(cap(i))
    assert [names.number(n) for n in ("Host", "Guest", "Speaker 3", "Speaker 4", "Alice")] == [1, 2, 3, 0, 0]
    cfg[0] = SpeakersConfig(names=("Ann",))
    assert [names.number(n) for n in ("Host", "Ann", "Speaker 2")] == [0, 1, 2]


def test_a_speakers_change_restarts_nothing_and_is_named_in_the_reload_log() -> None:
    old = parse(base(), ENV)
    new = parse(base(speakers={"names": ["Host"], "label": "[{name}] "}), ENV)
    plan = plan_reload(old, new, {("", "ja"): session_spec(old, "ja")}, obs_running=wants_obs(old))
    assert plan.changed() == ["speakers"]
    assert (plan.stop_sessions, plan.start_sessions, plan.obs, plan.transcripts) == ((), (), None, False)
