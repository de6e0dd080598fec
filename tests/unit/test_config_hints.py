"""`captioner check` helps (#18): every problem at once, the nearest key or language, outputs that show nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from captioner.config import config_warnings, parse
from captioner.config.hints import did_you_mean, language_hint
from captioner.errors import ConfigError
from tests.support.cli import captioner

ENV = {"K": "sk-test"}


def problems(raw: dict[str, object], env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as e:
        parse(raw, ENV if env is None else env)
    return e.value.problems


def test_every_pydantic_problem_at_once_each_with_the_nearest_key() -> None:
    found = problems(
        {
            "translator": {"api_key": "${K}", "target": ["ja"], "modle": "x"},
            "obs": {"prot": 1, "port": "abc"},
            "targets": ["ja"],
        }
    )
    assert ("translator.target", "unknown key; did you mean `targets`?") in found
    assert ("translator.modle", "unknown key; did you mean `model`?") in found
    assert ("obs.prot", "unknown key; did you mean `port`?") in found
    assert [k for k, _ in found if k == "obs.port"]  # a wrong type is reported beside the unknown keys
    # A section's key written at the top level: the section it belongs in.
    assert ("targets", "unknown key; did you mean `translator.targets`?") in found
    assert len(found) == 5


def test_an_output_entry_reports_all_its_problems_with_suggestions() -> None:
    found = problems({"translator": {"api_key": "${K}"}, "outputs": [{"obs_sorce": "A", "languag": "ja"}]})
    assert found == [
        ("outputs[0].obs_source", "required key is missing"),
        ("outputs[0].language", "required key is missing"),
        ("outputs[0].obs_sorce", "unknown key; did you mean `obs_source`?"),
        ("outputs[0].languag", "unknown key; did you mean `language`?"),
    ]


def test_a_key_nothing_is_near_gets_no_guess() -> None:
    assert problems({"translator": {"api_key": "${K}", "zzzzzz": 1}}) == [("translator.zzzzzz", "unknown key")]


@pytest.mark.parametrize(("code", "hint"), [("jp", "ja"), ("JA", "ja"), ("cn", "zh"), ("kr", "ko"), ("frr", "fr")])
def test_a_language_code_suggests_the_one_meant(code: str, hint: str) -> None:
    [(key, problem)] = problems({"translator": {"api_key": "${K}", "targets": ["en", code]}})
    assert key == "translator.targets[1]"
    assert problem == f"{code!r} is not a supported language; did you mean `{hint}`?"


def test_an_output_language_suggests_a_target() -> None:
    [(key, problem)] = problems(
        {"translator": {"api_key": "${K}", "targets": ["ja"]}, "outputs": [{"obs_source": "A", "language": "jp"}]}
    )
    assert (key, problem) == ("outputs[0].language", "'jp' is not one of translator.targets; did you mean `ja`?")


def test_the_suggestions_themselves() -> None:
    assert did_you_mean("outptus", ["outputs", "obs"]) == "; did you mean `outputs`?"
    assert did_you_mean("q", ["outputs", "obs"]) == ""
    assert language_hint("xx", ["ja", "zh"]) == ""


def test_a_missing_key_points_to_the_demo() -> None:
    [(key, problem)] = problems({"translator": {"api_key": "${DASHSCOPE_API_KEY}"}}, env={})
    assert key == "translator.api_key" and "`captioner demo` runs without one" in problem
    [(key, problem)] = problems({"translator": {"api_key": ""}})
    assert key == "translator.api_key" and problem.startswith("is empty") and "`captioner demo`" in problem


def test_no_outputs_or_a_target_without_one_is_warned_about() -> None:
    none = config_warnings(parse({"translator": {"api_key": "${K}", "targets": ["ja", "ko"]}}, ENV))
    assert [w for w in none if w.startswith("outputs: none: captions are translated (and billed)")]
    some = parse(
        {
            "translator": {"api_key": "${K}", "targets": ["ja", "ko"]},
            "outputs": [{"obs_source": "A", "language": "ja"}],
        },
        ENV,
    )
    assert [w for w in config_warnings(some) if "ko" in w] == [
        "translator.targets[1]: 'ko' has no output: it is translated (and billed) but shown nowhere except the "
        "overlay page; add an outputs entry with language: ko, or drop it from targets"
    ]
    every = parse({**some.model_dump(mode="python"), "translator": {"api_key": "${K}", "targets": ["ja"]}}, ENV)
    assert [w for w in config_warnings(every) if "output" in w] == []


def test_check_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("translator:\n  api_key: k\n  target: [ja]\nobs:\n  prot: 1\n")
    r = captioner("check", "--config", str(path))
    assert r.returncode == 2
    assert sorted(r.stderr.splitlines()) == [
        "captioner: config error: obs.prot: unknown key; did you mean `port`?",
        "captioner: config error: translator.target: unknown key; did you mean `targets`?",
    ]


def test_check_warns_about_a_target_no_output_shows(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "translator:\n  api_key: ${K}\n  targets: [ja, ko]\noutputs:\n  - obs_source: A\n    language: ja\n"
    )
    r = captioner("check", "--config", str(path), env={"K": "sk-x", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and "config ok" in r.stdout
    assert "translator.targets[1]: 'ko' has no output: it is translated (and billed)" in r.stderr


def test_check_without_a_key_points_to_the_demo(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("translator:\n  api_key: ${DASHSCOPE_API_KEY}\n")
    r = captioner("check", "--config", str(path), env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 2
    assert "translator.api_key: environment variable DASHSCOPE_API_KEY is not set" in r.stderr
    assert "`captioner demo` runs without one" in r.stderr


STARTER = Path(__file__).parents[2] / "config" / "starter.yaml"


def test_the_starter_config_loads_without_an_obs_password_and_warns_of_nothing() -> None:
    from captioner.config import load
    from captioner.standin import OVERRIDES

    cfg = load(STARTER, {"DASHSCOPE_API_KEY": "k"})
    assert cfg.obs.password.get_secret_value() == ""
    assert cfg.translator.targets == ("ja",)
    assert [(o.language, getattr(o, "obs_source", None)) for o in cfg.outputs] == [("ja", "Captions JA")]
    assert config_warnings(cfg) == []
    assert load(STARTER, {}, overrides=OVERRIDES).outputs  # `captioner demo` needs no key


def test_check_accepts_the_starter_config() -> None:
    r = captioner("check", "--config", str(STARTER), env={"DASHSCOPE_API_KEY": "k", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and f"config ok: {STARTER}" in r.stdout
    assert "WARNING" not in r.stderr, r.stderr
