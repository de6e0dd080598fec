"""Config for qwen3.8, the voice clone, the same-language skip and workspace endpoints: what is refused (exit 2,
with the key path), warned about, and what each session is started with."""

from __future__ import annotations

from typing import Any

import pytest

from captioner.config import config_warnings, parse
from captioner.errors import ConfigError
from captioner.reload import session_spec
from captioner.translation.handshake import env_proxy
from tests.support.config_docs import ENV

Q35, Q38, Q3 = (f"qwen{v}-livetranslate-flash-realtime" for v in ("3.5", "3.8", "3"))


def raw(translator: dict[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
    return {"translator": {"api_key": "k", "model": Q38, "targets": ["ja"], **(translator or {})}, **sections}


@pytest.mark.parametrize(
    ("translator", "url", "headers"),
    [
        ({}, "wss://dashscope-intl.aliyuncs.com/api-ws/v1/realtime", {}),
        ({"region": "beijing"}, "wss://dashscope.aliyuncs.com/api-ws/v1/realtime", {}),
        (
            {"workspace_id": "ws-12ab"},
            "wss://ws-12ab.ap-southeast-1.maas.aliyuncs.com/api-ws/v1/realtime",
            {"X-DashScope-WorkSpace": "ws-12ab"},
        ),
        (
            {"workspace_id": "ws-12ab", "region": "beijing", "data_inspection": "enable"},
            "wss://ws-12ab.cn-beijing.maas.aliyuncs.com/api-ws/v1/realtime",
            {"X-DashScope-WorkSpace": "ws-12ab", "X-DashScope-DataInspection": "enable"},
        ),
        (  # an explicit url wins; the header still goes with it
            {"workspace_id": "ws-12ab", "url": "wss://proxy.example/api-ws/v1/realtime"},
            "wss://proxy.example/api-ws/v1/realtime",
            {"X-DashScope-WorkSpace": "ws-12ab"},
        ),
    ],
)
def test_endpoints(translator: dict[str, Any], url: str, headers: dict[str, str]) -> None:
    tr = parse(raw(translator), ENV).translator
    assert (tr.endpoint, tr.endpoint_headers) == (url, headers)


@pytest.mark.parametrize(
    ("translator", "voice_outputs", "key", "fragment"),
    [
        ({"workspace_id": "ws.evil.host/x"}, [], "translator.workspace_id", "pattern"),
        ({"region": "frankfurt"}, [], "translator.region", "singapore"),
        ({"skip_same_language": True}, [], "translator.skip_same_language", "only qwen3.5"),
        ({"model": Q3, "skip_same_language": True, "targets": ["en"]}, [], "translator.skip_same_language", ""),
        ({"same_language_captions": "both"}, [], "translator.same_language_captions", ""),
        ({"voice_clone": "once", "audio_output": True}, [], "translator.voice", 'needs voice "default"'),
        ({"voice_clone": "never", "audio_output": True, "voice": "default"}, [], "translator.voice", "clone id"),
        ({"voice": "default", "audio_output": True}, [], "translator.voice", "needs voice_clone once or always"),
        ({"model": Q3, "voice_clone": "once", "audio_output": True}, [], "translator.voice_clone", "no voice clone"),
        (
            {"voice": "default"},
            [{"language": "ja", "voice": "Tina", "voice_clone": "always"}],
            "voice_outputs[0].voice",
            'needs voice "default"',
        ),
        ({"voice_clone": "sometimes"}, [], "translator.voice_clone", ""),
    ],
)
def test_refusals_name_the_key(
    translator: dict[str, Any], voice_outputs: list[dict[str, Any]], key: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse(raw(translator, voice_outputs=voice_outputs), ENV)
    assert info.value.key == key
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("translator", "voice_outputs", "clone", "voice"),
    [
        ({"voice_clone": "always", "voice": "default", "audio_output": True}, [], "always", "default"),
        ({"voice_clone": "never", "voice": "qwen-translate-vc-abc", "audio_output": True}, [], "never", None),
        ({"voice_clone": "once", "voice": "default"}, [], None, None),  # text only: nothing to clone, nothing sent
        ({"voice_clone": "once", "voice": "default"}, [{"language": "ja"}], "once", "default"),
        (
            {"voice_clone": "once", "voice": "default"},
            [{"language": "ja", "voice": "Tina", "voice_clone": "off"}],
            None,
            "Tina",
        ),
        ({"voice": "Tina"}, [{"language": "ja", "voice": "default", "voice_clone": "once"}], "once", "default"),
    ],
)
def test_clone_per_session(
    translator: dict[str, Any], voice_outputs: list[dict[str, Any]], clone: str | None, voice: str | None
) -> None:
    spec = session_spec(parse(raw(translator, voice_outputs=voice_outputs), ENV), "ja")
    assert spec.clone == clone
    assert voice is None or spec.voice == voice


def test_warnings_for_skip_targets_and_qwen38_source_language() -> None:
    cfg = parse(raw({"model": Q35, "skip_same_language": True, "targets": ["en", "ja"]}), ENV)
    assert [w for w in config_warnings(cfg) if "skip_same_language" in w] == [
        "translator.targets[1]: the vendor says translator.skip_same_language works only for targets en and zh; "
        "'ja' is translated (and billed) as usual"
    ]
    told = config_warnings(parse(raw({"source_language": "de"}), ENV))
    assert [w for w in told if w.startswith("translator.source_language:")]
    assert not [w for w in config_warnings(parse(raw(), ENV)) if w.startswith("translator.source_language:")]


def test_qwen38_takes_the_qwen35_languages_and_a_glossary() -> None:
    cfg = parse(raw({"targets": ["ja", "uk"], "glossary": {"ja": {"OBS": "OBS"}}}), ENV)
    assert cfg.translator.dialect.family == Q38


@pytest.mark.parametrize(
    ("env", "url", "proxy"),
    [
        ({"HTTPS_PROXY": "http://corp:3128"}, "wss://x.maas.aliyuncs.com/a", "http://corp:3128"),
        ({"HTTPS_PROXY": "http://corp:3128", "WSS_PROXY": "http://ws:1"}, "wss://x.aliyuncs.com/a", "http://ws:1"),
        ({"HTTP_PROXY": "http://plain:8080"}, "ws://gateway.lan/a", "http://plain:8080"),
        ({"HTTP_PROXY": "http://plain:8080"}, "wss://x.aliyuncs.com/a", None),
        ({"HTTPS_PROXY": "http://corp:3128", "NO_PROXY": ".aliyuncs.com"}, "wss://x.aliyuncs.com/a", None),
        ({"HTTPS_PROXY": "http://corp:3128"}, "wss://127.0.0.1:8443/a", None),  # loopback: never proxied
        ({"HTTP_PROXY": "http://plain:8080"}, "ws://localhost:1/a", None),
        ({}, "wss://x.aliyuncs.com/a", None),
    ],
)
def test_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, proxy: str | None
) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "WSS_PROXY", "WS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert env_proxy(url) == proxy


def test_data_inspection_cannot_break_the_header() -> None:
    with pytest.raises(ConfigError) as info:
        parse(raw({"data_inspection": "enable\r\nX-Evil: 1"}), ENV)
    assert info.value.key == "translator.data_inspection"
