"""Config loading: every wrong shape is exit-2 material with the key path in the message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from captioner.config import (
    Config,
    TranslatorConfig,
    WebhookOutputConfig,
    YoutubeOutputConfig,
    config_warnings,
    expand_env,
    key_path,
    load,
    parse,
    resolve_path,
    with_output_language,
)
from captioner.errors import ConfigError
from captioner.redaction import redact

ENV = {"DASHSCOPE_API_KEY": "sk-test-secret", "OBS_PW": "obs-secret"}


def base(**sections: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"translator": {"api_key": "${DASHSCOPE_API_KEY}", "targets": ["ja"]}}
    for name, value in sections.items():
        raw[name] = value
    return raw


def test_builtin_defaults_need_only_the_key() -> None:
    cfg = load(None, ENV)
    assert cfg.translator.api_key.get_secret_value() == "sk-test-secret"
    assert cfg.translator.targets == ("ja",)
    assert cfg.outputs[0].obs_source == "Captions JA"
    assert cfg.obs.password.get_secret_value() == ""
    assert cfg.http.host == "127.0.0.1"


def test_full_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "config" / "example.yaml"
    cfg = load(example, {"DASHSCOPE_API_KEY": "k", "OBS_WEBSOCKET_PASSWORD": "p"})
    assert cfg.languages()[-1] == "source"


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        (
            base(translator={"api_key": "k", "targets": ["ja", "xx"]}),
            "translator.targets[1]",
            "'xx' is not a supported",
        ),
        (base(translator={"api_key": "k", "targets": ["ja", "ja"]}), "translator.targets[1]", "twice"),
        (base(translator={"api_key": "k", "targets": []}), "translator.targets", "at least 1"),
        (
            base(translator={"api_key": "k", "model": "qwen3.8-livetranslate-flash-realtime"}),
            "translator.model",
            "different protocol",
        ),
        (base(translator={"api_key": "k", "model": "gpt-4o"}), "translator.model", "not a Qwen"),
        (base(translator={"api_key": "k", "url": "https://x"}), "translator.url", "ws://"),
        (base(translator={"api_key": ""}), "translator.api_key", "empty"),
        (base(translator={"api_key": "k", "source_language": None}), "translator.source_language", "auto-detect"),
        (
            base(translator={"api_key": "k", "targets": ["el"], "audio_output": True}),
            "translator.targets[0]",
            "no voice",
        ),
        (base(translator={"api_key": "k", "tragets": ["ja"]}), "translator.tragets", "unknown key"),
        (base(audio={"device": 1.5}), "audio.device", ""),
        (base(audio={"chunk_ms": 5}), "audio.chunk_ms", "greater than or equal to 20"),
        (base(obs={"port": "abc"}), "obs.port", "integer"),
        (base(obs={"port": 70000}), "obs.port", "65535"),
        (base(http={"port": -1}), "http.port", ""),
        (base(outputs=[{"obs_source": "A", "language": "zh"}]), "outputs[0].language", "not one of translator.targets"),
        (base(outputs=[{"obs_source": "A", "language": "source"}]), "outputs[0].language", "transcribe_source"),
        (
            base(outputs=[{"obs_source": "A", "language": "ja"}, {"obs_source": "A", "language": "ja"}]),
            "outputs[1].obs_source",
            "two outputs",
        ),
        (base(outputs=[{"language": "ja"}]), "outputs[0].obs_source", "required"),
        (
            base(outputs=[{"obs_source": "A", "language": "ja", "with_source": True}]),
            "outputs[0].with_source",
            "transcribe_source: true",
        ),
        (
            base(outputs=[{"obs_source": "A", "language": "ja", "layout": {"max_lines": 0}}]),
            "outputs[0].layout.max_lines",
            "greater than or equal to 1",
        ),
        (
            base(layout={"min_display_s": 2, "clear_after_s": 1}, outputs=[{"obs_source": "A", "language": "ja"}]),
            "layout.clear_after_s",
            "at least min_display_s",
        ),
        (
            base(outputs=[{"obs_source": "A", "language": "ja", "layout": {"clear_after_s": 0.5}}]),
            "outputs[0].layout.clear_after_s",
            "at least min_display_s",
        ),
        (base(layout={"max_width": 4}), "layout.max_width", "greater than or equal to 8"),
        (base(stream_captions={"enabled": True, "language": "ja"}), "stream_captions.language", "CEA-608"),
        (
            base(stream_captions={"enabled": True, "language": "source"}),
            "stream_captions.language",
            "transcribe_source: true",
        ),
        (base(stream_captions={"enabled": True}), "stream_captions.language", "'ja' cannot be shown as CEA-608"),
        (base(stream_captions={"enabled": True, "language": "de"}), "stream_captions.language", "not a caption"),
        (base(stream_captions={"rows": 5}), "stream_captions.rows", "less than or equal to 4"),
        (base(outputs={"obs_source": "A"}), "outputs", "tuple"),
        (base(unknown_section={}), "unknown_section", "unknown key"),
        (base(log_level="loud"), "log_level", ""),
        (["a", "list"], "(top level)", "mapping"),
        (base(translator={"api_key": "${NOT_SET_ANYWHERE}"}), "translator.api_key", "NOT_SET_ANYWHERE is not set"),
        # qwen3's voices are listed in full (§9): another name would only be refused by every session.
        (base(translator={"api_key": "k", "voice": "Tina"}), "translator.voice", "not a qwen3-livetranslate"),
        (
            base(voice_outputs=[{"language": "ja", "voice": "Chelsie"}]),
            "voice_outputs[0].voice",
            "voices: Cherry, Dylan",
        ),
        (base(translator={"api_key": "k", "pin_source_language": "two"}), "translator.pin_source_language", ""),
        (base(translator={"api_key": "k", "watchdog_speech_s": -1}), "translator.watchdog_speech_s", ""),
    ],
)
def test_errors_name_the_key(raw: Any, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(raw, ENV)
    assert info.value.key == key
    assert fragment in str(info.value)


def test_voices_the_docs_list_or_clone_ids_pass() -> None:
    assert parse(base(translator={"api_key": "k", "voice": "Ethan"}), ENV).translator.voice == "Ethan"
    q35 = {"api_key": "k", "model": "qwen3.5-livetranslate-flash-realtime"}
    assert parse(base(translator={**q35, "voice": "qwen-translate-vc-7f3a"}), ENV).translator.voice
    # qwen3.5's full list is the (unread) Omni list: a name outside the seen ones is warned about, not refused.
    cfg = parse(base(translator={**q35, "voice": "Serena"}), ENV)
    assert [w for w in config_warnings(cfg) if w.startswith("translator.voice: 'Serena'")]
    assert config_warnings(parse(base(translator={**q35, "voice": "Tina"}), ENV)) == []


def test_qwen35_allows_autodetect_and_more_languages() -> None:
    cfg = parse(
        base(
            translator={
                "api_key": "k",
                "model": "qwen3.5-livetranslate-flash-realtime-2026-05-19",
                "source_language": None,
                "targets": ["uk", "fil"],
            }
        ),
        ENV,
    )
    assert cfg.translator.dialect.default_voice == "Tina"


def test_secrets_never_in_repr_or_errors() -> None:
    cfg = parse(base(obs={"password": "${OBS_PW}"}), ENV)
    assert "obs-secret" not in repr(cfg) and "sk-test-secret" not in repr(cfg)
    with pytest.raises(ConfigError) as info:
        parse(base(obs={"password": "${OBS_PW}", "port": "x"}), ENV)
    assert "obs-secret" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${A}", {"A": "1"}, "1"),
        ("x-${A}-${B}", {"A": "1", "B": "2"}, "x-1-2"),
        ("${A:-fallback}", {}, "fallback"),
        ("${A:-}", {}, ""),
        ("$A {A}", {}, "$A {A}"),
        ({"k": ["${A}"]}, {"A": "v"}, {"k": ["v"]}),
        (3, {}, 3),
    ],
)
def test_expand_env(value: Any, env: dict[str, str], expected: Any) -> None:
    assert expand_env(value, env) == expected


def test_key_path_format() -> None:
    assert key_path(("translator", "targets", 1)) == "translator.targets[1]"
    assert key_path(("outputs", 0, "language")) == "outputs[0].language"


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("translator:\n  targets: [ja\n")
    with pytest.raises(ConfigError) as info:
        load(p, ENV)
    assert str(p) in info.value.key and "YAML" in info.value.problem


def test_a_file_that_is_not_utf8_is_a_config_error_naming_it(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_bytes(b"translator:\n  api_key: k\n  targets: [ja]  # Gr\xfc\xdfe in Latin-1\n")
    with pytest.raises(ConfigError) as info:
        load(p, ENV)
    assert info.value.key == str(p)
    assert "not UTF-8 text (byte 46" in info.value.problem


def test_config_path_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_path("x.yaml", {}) == Path("x.yaml")
    assert resolve_path(None, {"CAPTIONER_CONFIG": "/etc/c.yaml"}) == Path("/etc/c.yaml")
    assert resolve_path(None, {}) is None
    home_cfg = tmp_path / ".config" / "captioner" / "config.yaml"
    home_cfg.parent.mkdir(parents=True)
    home_cfg.write_text("{}")
    assert resolve_path(None, {}) == home_cfg


def test_config_is_frozen() -> None:
    cfg = parse(base(), ENV)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type is an implementation detail
        cfg.translator.targets = ("zh",)  # type: ignore[misc]
    assert isinstance(cfg, Config)


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


def test_output_layout_overrides_only_the_keys_it_names() -> None:
    cfg = parse(
        base(
            translator={"api_key": "k", "targets": ["ja"], "transcribe_source": True},
            layout={"max_width": 30, "clear_after_s": 4},
            outputs=[
                {"obs_source": "A", "language": "ja", "layout": {"max_lines": 3, "live": True}},
                {"obs_source": "B", "language": "source"},
            ],
            stream_captions={"enabled": True, "language": "source"},
        ),
        ENV,
    )
    a, b = (cfg.layout_for(o) for o in cfg.outputs)
    assert (a.max_width, a.max_lines, a.live, a.clear_after_s) == (30, 3, True, 4)
    assert (b.max_width, b.max_lines, b.live, b.clear_after_s) == (30, 2, False, 4)


def test_glossary_file_that_is_not_utf8_names_the_language_and_file(tmp_path: Path) -> None:
    f = tmp_path / "g.yaml"
    f.write_bytes(b"castle: " + "Schloß\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        parse(glossary({"ja": str(f)}), ENV)
    assert info.value.key == "translator.glossary.ja"
    assert str(f) in info.value.problem and "not UTF-8 text (byte 13" in info.value.problem


YT = "https://upload.youtube.com/closedcaption?cid=ab12-cd34-ef56-gh78"


@pytest.mark.parametrize(
    ("entry", "key", "fragment"),
    [
        ({"youtube_url": "ftp://x", "language": "ja"}, "outputs[1].youtube_url", "http:// or https://"),
        ({"youtube_url": YT, "language": "de"}, "outputs[1].language", "not one of translator.targets"),
        ({"youtube_url": YT, "language": "source"}, "outputs[1].language", "transcribe_source"),
        ({"youtube_url": YT}, "outputs[1].language", "required"),
        ({"youtube_url": YT, "language": "ja", "offset_s": 90}, "outputs[1].offset_s", "less than or equal to 60"),
        ({"youtube_url": YT, "language": "ja", "max_age_s": 0}, "outputs[1].max_age_s", "greater than or equal"),
        ({"youtube_url": YT, "language": "ja", "headers": {}}, "outputs[1].headers", "unknown key"),
        ({"youtube_url": YT, "language": "ja", "obs_source": "B"}, "outputs[1].obs_source", "unknown key"),
        ({"youtube_url": YT, "webhook_url": YT, "language": "ja"}, "outputs[1].webhook_url", "one kind per entry"),
        ({"webhook_url": "hooks.example", "language": "ja"}, "outputs[1].webhook_url", "http:// or https://"),
        ({"webhook_url": YT, "language": "ja", "headers": {"X": 1}}, "outputs[1].headers.X", "valid string"),
        ({"webhook_url": YT, "language": "ja", "offset_s": 1}, "outputs[1].offset_s", "unknown key"),
        ({"webhook_url": "${HOOK_URL}", "language": "ja"}, "outputs[1].webhook_url", "HOOK_URL is not set"),
        ({"language": "ja"}, "outputs[1].obs_source", "required"),
        ("Captions B", "outputs[1]", "must be a mapping"),
    ],
)
def test_posting_output_errors_name_the_key(entry: Any, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(base(outputs=[{"obs_source": "A", "language": "ja"}, entry]), ENV)
    assert info.value.key == key
    assert fragment in str(info.value)
    assert "ab12-cd34" not in str(info.value)  # the URL is a secret: never quoted


def test_youtube_and_webhook_entries_sit_among_the_obs_outputs_and_their_urls_are_secret() -> None:
    env = {**ENV, "YOUTUBE_CAPTIONS_URL": YT, "HOOK_TOKEN": "Bearer hook-token-42"}
    cfg = parse(
        base(
            outputs=[
                {"youtube_url": "${YOUTUBE_CAPTIONS_URL}", "language": "ja", "offset_s": -1.5},
                {"obs_source": "A", "language": "ja"},
                {
                    "webhook_url": "https://hooks.example/api/webhooks/1234567890/tok3nTOKEN",
                    "language": "ja",
                    "headers": {"Authorization": "${HOOK_TOKEN}"},
                },
            ]
        ),
        env,
    )
    assert [o.obs_source for o in cfg.obs_outputs] == ["A"]
    yt, hook = cfg.post_outputs
    assert isinstance(yt, YoutubeOutputConfig) and isinstance(hook, WebhookOutputConfig)
    assert yt.youtube_url.get_secret_value() == YT and yt.offset_s == -1.5 and yt.max_age_s == 60
    assert hook.headers["Authorization"].get_secret_value() == "Bearer hook-token-42" and hook.max_age_s == 600
    assert YT not in repr(cfg) and "hook-token" not in repr(cfg)
    # Whatever text they turn up in, in whatever piece: the whole URL, its key, a token in a webhook's path.
    said = f"POST {YT}&seq=3 failed; cid=ab12-cd34-ef56-gh78; /webhooks/1234567890/tok3nTOKEN; Bearer hook-token-42"
    assert redact(said) == "POST ***&seq=3 failed; cid=***; /webhooks/***/***; ***"


def test_a_youtube_output_keeps_its_language_translated_when_an_obs_output_switches() -> None:
    cfg = parse(
        base(
            translator={"api_key": "k", "targets": ["ja"]},
            outputs=[{"obs_source": "A", "language": "ja"}, {"youtube_url": YT, "language": "ja"}],
        ),
        ENV,
    )
    assert with_output_language(cfg, "A", "ko").translator.targets == ("ja", "ko")
    with pytest.raises(ConfigError):
        with_output_language(cfg, "not a source", "ko")
