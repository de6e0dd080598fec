"""Config of the translator's glossary and the vocabulary: inline terms, files, and errors naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from captioner.config import (
    TranslatorConfig,
    load,
    parse,
)
from captioner.errors import ConfigError
from tests.support.config_docs import ENV, base

Q35 = "qwen3.5-livetranslate-flash-realtime"


def glossary(value: Any, targets: tuple[str, ...] = ("ja",), model: str = Q35) -> dict[str, Any]:
    return base(translator={"api_key": "k", "model": model, "targets": list(targets), "glossary": value})


def test_glossary_inline_and_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ko.yaml").write_text("# Korean terms\ncastle: 캐슬\n'yes': 네\n", encoding="utf-8")
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    monkeypatch.chdir(tmp_path)  # relative files are found from the working directory
    cfg = parse(
        glossary(
            {"ja": {"castle": "キャッスル", "Qwen": "Qwen"}, "ko": "ko.yaml", "de": str(tmp_path / "empty.yaml")},
            targets=("ja", "ko", "de"),
        ),
        ENV,
    )
    assert cfg.translator.glossary == {
        "ja": {"castle": "キャッスル", "Qwen": "Qwen"},
        "ko": {"castle": "캐슬", "yes": "네"},
        "de": {},
    }
    assert parse(base(), ENV).translator.glossary == {}


def test_glossary_files_relative_to_the_config_dir_given_to_the_loader(tmp_path: Path) -> None:
    (tmp_path / "ja.yaml").write_text("castle: KASTEL\n")
    tr = parse(glossary({"ja": "ja.yaml"}), ENV, config_dir=tmp_path).translator
    assert tr.glossary == {"ja": {"castle": "KASTEL"}}


def test_validation_reads_no_glossary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ja.yaml").write_text("castle: KASTEL\n")
    monkeypatch.chdir(tmp_path)
    # The loader (parse/load) reads the files; a validator given a path it did not read says so.
    with pytest.raises(ConfigError) as info:
        TranslatorConfig.model_validate({"glossary": {"ja": "ja.yaml"}})
    assert info.value.key == "translator.glossary.ja" and "was not read" in info.value.problem


def test_glossary_file_is_read_when_the_config_file_is_loaded(tmp_path: Path) -> None:
    terms = tmp_path / "terms.yaml"
    terms.write_text("castle: KASTEL\n")
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(
        f"translator:\n  api_key: k\n  model: {Q35}\n  targets: [ja]\n  glossary:\n    ja: {terms}\n", encoding="utf-8"
    )
    assert load(cfg_file, ENV).translator.glossary == {"ja": {"castle": "KASTEL"}}


def test_relative_glossary_file_is_found_next_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "ja-terms.yaml").write_text("castle: KASTEL\n")
    cfg_file = tmp_path / "etc" / "c.yaml"
    cfg_file.write_text(
        f"translator:\n  api_key: k\n  model: {Q35}\n  targets: [ja]\n  glossary:\n    ja: ja-terms.yaml\n"
    )
    monkeypatch.chdir(tmp_path)  # not the config's folder
    assert load(cfg_file, ENV).translator.glossary == {"ja": {"castle": "KASTEL"}}


def _big(n: int) -> dict[str, str]:
    return {f"term{i}": f"T{i}" for i in range(n)}


@pytest.mark.parametrize(
    ("value", "targets", "model", "key", "fragment"),
    [
        (["ja"], ("ja",), Q35, "translator.glossary", "must map target languages"),
        ({"zh": {"a": "b"}}, ("ja",), Q35, "translator.glossary.zh", "not one of translator.targets"),
        (
            {"ja": {"a": "b"}},
            ("ja",),
            "qwen3-livetranslate-flash-realtime",
            "translator.glossary",
            "qwen3-livetranslate-flash-realtime does not document a glossary",
        ),
        ({"ja": ["castle"]}, ("ja",), Q35, "translator.glossary.ja", "must be a mapping of source term"),
        ({"ja": {"castle": ""}}, ("ja",), Q35, "translator.glossary.ja", "translation of 'castle' must be"),
        ({"ja": {"castle": 5}}, ("ja",), Q35, "translator.glossary.ja", "translation of 'castle' must be"),
        ({"ja": {"castle": None}}, ("ja",), Q35, "translator.glossary.ja", "non-empty string"),
        ({"ja": {" ": "x"}}, ("ja",), Q35, "translator.glossary.ja", "term ' ' must be a non-empty string"),
        ({"ja": _big(1001)}, ("ja",), Q35, "translator.glossary.ja", "1001 terms; at most 1000"),
        ({"ja": "/nonexistent/glossary.yaml"}, ("ja",), Q35, "translator.glossary.ja", "cannot read glossary file"),
    ],
)
def test_glossary_errors_name_the_key(
    value: Any, targets: tuple[str, ...], model: str, key: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse(glossary(value, targets, model), ENV)
    assert info.value.key == key
    assert fragment in str(info.value)


def test_glossary_of_1000_terms_is_fine() -> None:
    assert len(parse(glossary({"ja": _big(1000)}), ENV).translator.glossary["ja"]) == 1000


def test_empty_glossary_on_qwen3_is_not_an_error() -> None:
    assert parse(glossary({"ja": {}}, model="qwen3-livetranslate-flash-realtime"), ENV).translator.glossary == {
        "ja": {}
    }


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("castle: [unclosed\n", "not valid YAML"),
        ("- castle\n- keep\n", "must be a mapping of source term"),
        ("yes: ja\n", "term True must be a non-empty string (quote it)"),
        ("castle:\n", "translation of 'castle' must be"),
        ("\n".join(f"t{i}: x" for i in range(1001)), "1001 terms"),
    ],
)
def test_glossary_file_errors_name_the_language_and_file(tmp_path: Path, content: str, fragment: str) -> None:
    f = tmp_path / "g.yaml"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        parse(glossary({"ja": str(f)}), ENV)
    assert info.value.key == "translator.glossary.ja"
    assert str(f) in info.value.problem and fragment in info.value.problem


def test_vocabulary_defaults_and_full_shape() -> None:
    assert parse(base(), ENV).vocabulary.profanity.enabled is False
    raw = base(
        translator={"api_key": "k", "targets": ["ja", "en"], "transcribe_source": True},
        vocabulary={
            "replacements": [
                {"find": "castle", "replace": "Schloss"},
                {"find": r"(\d+)km", "replace": r"\1 km", "regex": True, "languages": ["en", "source"]},
            ],
            "profanity": {"enabled": True, "mask": "#", "words": ["馬鹿"], "languages": ["ja"]},
        },
    )
    v = parse(raw, ENV).vocabulary
    assert v.replacements[1].regex and v.replacements[1].ignore_case and v.replacements[1].whole_word
    assert v.profanity.words == ("馬鹿",)


def vocabulary(**section: Any) -> dict[str, Any]:
    return base(vocabulary=section)


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        (
            vocabulary(replacements=[{"find": "(a", "regex": True}]),
            "vocabulary.replacements[0].find",
            "regular expression",
        ),
        (
            vocabulary(replacements=[{"find": "a"}, {"find": "[", "regex": True}]),
            "vocabulary.replacements[1].find",
            "not a valid regular expression",
        ),
        (vocabulary(replacements=[{"find": ""}]), "vocabulary.replacements[0].find", "at least 1"),
        (vocabulary(replacements=[{"replace": "x"}]), "vocabulary.replacements[0].find", "required"),
        (
            vocabulary(replacements=[{"find": "(a)", "replace": r"\2", "regex": True}]),
            "vocabulary.replacements[0].replace",
            "invalid group reference",
        ),
        (
            vocabulary(replacements=[{"find": "a", "languages": ["ja", "xx"]}]),
            "vocabulary.replacements[0].languages[1]",
            "'xx' is not a caption language",
        ),
        (
            vocabulary(replacements=[{"find": "a", "languages": ["source"]}]),
            "vocabulary.replacements[0].languages[0]",
            "transcribe_source",
        ),
        (vocabulary(replacements=[{"find": "a", "regx": True}]), "vocabulary.replacements[0].regx", "unknown key"),
        (vocabulary(profanity={"mask": "**"}), "vocabulary.profanity.mask", "at most 1"),
        (vocabulary(profanity={"mask": ""}), "vocabulary.profanity.mask", "at least 1"),
        (vocabulary(profanity={"words": ["ok", "  "]}), "vocabulary.profanity.words[1]", "empty"),
        (vocabulary(profanity={"words": "frick"}), "vocabulary.profanity.words", "tuple"),
        (vocabulary(profanity={"languages": ["de"]}), "vocabulary.profanity.languages[0]", "not a caption language"),
        (vocabulary(profanity={"enable": True}), "vocabulary.profanity.enable", "unknown key"),
        (vocabulary(glossary={}), "vocabulary.glossary", "unknown key"),
    ],
)
def test_vocabulary_errors_name_the_key(raw: Any, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(raw, ENV)
    assert info.value.key == key
    assert fragment in str(info.value)


def test_glossary_file_that_is_not_utf8_names_the_language_and_file(tmp_path: Path) -> None:
    f = tmp_path / "g.yaml"
    f.write_bytes(b"castle: " + "Schloß\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        parse(glossary({"ja": str(f)}), ENV)
    assert info.value.key == "translator.glossary.ja"
    assert str(f) in info.value.problem and "not UTF-8 text (byte 13" in info.value.problem
