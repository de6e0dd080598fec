"""Raw config documents and environment shared by the config tests."""

from __future__ import annotations

from typing import Any

ENV = {"DASHSCOPE_API_KEY": "sk-test-secret", "OBS_PW": "obs-secret"}


def base(**sections: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"translator": {"api_key": "${DASHSCOPE_API_KEY}", "targets": ["ja"]}}
    for name, value in sections.items():
        raw[name] = value
    return raw
