"""Live control: switching an output's language (pure config logic) and the HTTP request handling."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from captioner.config import ConfigError, parse, with_output_language
from captioner.status import Status
from captioner.web import server as http_api


def config(targets: list[str], outputs: list[tuple[str, str]], **extra: Any) -> Any:
    raw: dict[str, Any] = {
        "translator": {"api_key": "k", "targets": targets, **extra.pop("translator", {})},
        "outputs": [{"obs_source": s, "language": lang, **extra.pop(s, {})} for s, lang in outputs],
        **extra,
    }
    return parse(raw, env={})


@pytest.mark.parametrize(
    ("targets", "outputs", "extra", "switch", "want_targets", "want_languages"),
    [
        # the old language is shown nowhere else: its session stops, the new one starts
        (["ja"], [("A", "ja")], {}, ("A", "ko"), ("ko",), ("ko",)),
        # another output still shows the old language: it keeps running
        (["ja"], [("A", "ja"), ("B", "ja")], {}, ("A", "ko"), ("ja", "ko"), ("ko", "ja")),
        # the new language is already translated for another output: no new session
        (["ja", "zh"], [("A", "ja"), ("B", "zh")], {}, ("A", "zh"), ("zh",), ("zh", "zh")),
        # a target no output shows (kept for transcripts) is left alone
        (["ja", "de"], [("A", "ja")], {}, ("A", "fr"), ("de", "fr"), ("fr",)),
        # the same language again changes nothing
        (["ja"], [("A", "ja")], {}, ("A", "ja"), ("ja",), ("ja",)),
        # to the source transcript: the transcribing session must keep running
        (["ja"], [("A", "ja")], {"translator": {"transcribe_source": True}}, ("A", "source"), ("ja",), ("source",)),
        # from the source transcript to a translation
        (["ja"], [("A", "source")], {"translator": {"transcribe_source": True}}, ("A", "ko"), ("ja", "ko"), ("ko",)),
        # stream captions still use the old language: it keeps running
        (["en"], [("A", "en")], {"stream_captions": {"enabled": True}}, ("A", "fr"), ("en", "fr"), ("fr",)),
        # a voice output still plays the old language: it keeps running
        (["ja"], [("A", "ja")], {"voice_outputs": [{"language": "ja"}]}, ("A", "ko"), ("ja", "ko"), ("ko",)),
        # a bilingual output pairs with the first target, so the new language goes first
        (
            ["ja", "zh"],
            [("A", "ja"), ("B", "zh")],
            {"translator": {"transcribe_source": True}, "A": {"with_source": True}},
            ("A", "ko"),
            ("ko", "zh"),
            ("ko", "zh"),
        ),
    ],
)
def test_switching_an_output_language(
    targets: list[str],
    outputs: list[tuple[str, str]],
    extra: dict[str, Any],
    switch: tuple[str, str],
    want_targets: tuple[str, ...],
    want_languages: tuple[str, ...],
) -> None:
    cfg = config(targets, outputs, **extra)
    new = with_output_language(cfg, *switch)
    assert new.translator.targets == want_targets
    assert tuple(o.language for o in new.outputs) == want_languages
    assert cfg.translator.targets == tuple(targets)  # the running config is not touched


@pytest.mark.parametrize(
    ("switch", "extra", "key", "fragment"),
    [
        (("Nope", "ko"), {}, "output", "no output shows in OBS source 'Nope'"),
        (("A", "xx"), {}, "language", "'xx' is not a supported language"),
        (("A", "source"), {}, "outputs[0].language", "needs translator.transcribe_source"),
        (("A", "fil"), {}, "language", "not a supported language for qwen3-livetranslate"),  # a Q3.5-only code
        (("A", "ko"), {"translator": {"audio_output": True}}, None, None),
        (("A", "el"), {"translator": {"audio_output": True}}, "translator.targets[0]", "has no voice output"),
    ],
)
def test_switches_that_are_refused(
    switch: tuple[str, str], extra: dict[str, Any], key: str | None, fragment: str | None
) -> None:
    cfg = config(["ja"], [("A", "ja")], **extra)
    if key is None:
        assert with_output_language(cfg, *switch).outputs[0].language == switch[1]
        return
    with pytest.raises(ConfigError) as e:
        with_output_language(cfg, *switch)
    assert (e.value.key, fragment in str(e.value)) == (key, True), str(e.value)


@pytest.mark.parametrize(
    ("action", "body", "code", "fragment"),
    [
        ("echo", b"", 200, '"got": {}'),
        ("echo", b'{"output": "A"}', 200, '"got": {"output": "A"}'),
        ("echo", b"{not json", 400, "must be JSON"),
        ("echo", b'["A"]', 400, "JSON object"),
        ("refuse", b"{}", 400, "no such output"),
        ("later", b'{"x": 1}', 200, '"awaited": 1'),
        ("nope", b"", 404, "known: echo, later, refuse"),
    ],
)
async def test_control_requests(action: str, body: bytes, code: int, fragment: str) -> None:
    def refuse(got: dict[str, Any]) -> dict[str, Any]:
        raise http_api.ControlError("no such output")

    async def later(got: dict[str, Any]) -> dict[str, Any]:
        return {"awaited": got["x"]}

    controls: dict[str, http_api.Control] = {"echo": lambda got: {"got": got}, "refuse": refuse, "later": later}
    runner, port = await http_api.start(Status("t"), "127.0.0.1", 0, controls=controls, token="tok")
    try:
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                f"http://127.0.0.1:{port}/control/{action}", data=body, headers={"Authorization": "Bearer tok"}
            ) as r,
        ):
            text = await r.text()
        assert (r.status, fragment in text) == (code, True), text
    finally:
        await runner.cleanup()
