"""Config of the outputs: per-output layout overrides, and the YouTube and webhook posting entries."""

from __future__ import annotations

from typing import Any

import pytest

from captioner.config import (
    WebhookOutputConfig,
    YoutubeOutputConfig,
    parse,
    with_output_language,
)
from captioner.errors import ConfigError
from captioner.redaction import redact
from tests.support.config_docs import ENV, base


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
