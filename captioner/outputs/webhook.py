"""A webhook: each final POSTed as one JSON object to any URL (chat bots, other overlays, archives)."""

from __future__ import annotations

import json
from typing import Any

from ..config import WebhookOutputConfig
from ..status import Status
from .posting import Final, Post, PostingOutput, Request, utc_ms


def caption_json(final: Final, seq: int) -> dict[str, Any]:
    """The JSON object of one final: when its words began (`start`) and when its text was final (`end`)."""
    c = final.caption
    out: dict[str, Any] = {
        "seq": seq,
        "language": c.language,
        "text": c.text,
        "start": utc_ms(final.spoken_at) + "Z",
        "end": utc_ms(final.final_at) + "Z",
        "item_id": c.item_id,
    }
    if c.speaker:
        out["speaker"] = c.speaker
    return out


class WebhookOutput(PostingOutput):
    kind = "webhook"
    config_type = WebhookOutputConfig

    def __init__(self, name: str, entry: WebhookOutputConfig, status: Status, first_seq: int = 1) -> None:
        super().__init__(name, entry, status, first_seq)
        self.headers = {
            **{k: v.get_secret_value() for k, v in entry.headers.items()},
            "Content-Type": "application/json",
        }

    def request(self, post: Post) -> Request:
        (final,) = post.finals  # one final per POST (max_batch 1): its seq is the caption's
        body = json.dumps(caption_json(final, post.seq), ensure_ascii=False)
        return Request(self.url, body.encode(), self.headers)
