"""Cost estimate and budgets (pure), the spend ledger on disk, and the token-protected control endpoint."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from captioner import http as http_api
from captioner import ledger
from captioner.cost import Budget, Tokens, estimate, tokens_from_usage
from captioner.status import Status

PRICES = {"audio_in": 73.392, "text_in": 73.392, "image_in": 9.541, "text_out": 73.392, "audio_out": 278.891}


@pytest.mark.parametrize(
    ("usage", "tokens"),
    [
        (
            {
                "input_tokens": 85,
                "output_tokens": 84,
                "input_tokens_details": {"text_tokens": 50, "audio_tokens": 35},
                "output_tokens_details": {"text_tokens": 33, "audio_tokens": 51},
            },
            Tokens(audio_in=35, text_in=50, text_out=33, audio_out=51),
        ),
        ({"input_tokens": 70, "output_tokens": 9}, Tokens(audio_in=70, text_out=9)),
        (
            {"input_tokens": 90, "output_tokens": 9, "input_tokens_details": {"image_tokens": 20}},
            Tokens(audio_in=70, image_in=20, text_out=9),
        ),
        ({"input_tokens": -5, "output_tokens": "x"}, Tokens()),
        ({}, Tokens()),
    ],
)
def test_tokens_by_kind(usage: dict[str, Any], tokens: Tokens) -> None:
    assert tokens_from_usage(usage) == tokens


def test_deltas_and_a_new_session() -> None:
    a, b = Tokens(audio_in=100, text_out=10), Tokens(audio_in=250, text_out=12)
    assert b.since(a) == Tokens(audio_in=150, text_out=2)
    assert a.since(b) == a  # a counter went back: a new session started from zero


def test_estimate_per_million() -> None:
    # one minute of qwen3 audio in (12.5 tok/s = 750 tokens) and 100 text tokens out
    assert estimate(Tokens(audio_in=750, text_out=100), PRICES) == pytest.approx((750 + 100) * 73.392 / 1e6)
    assert estimate(Tokens(audio_out=1_000_000), PRICES) == pytest.approx(278.891)


class Today:
    def __init__(self) -> None:
        self.day = dt.date(2026, 11, 22)

    def __call__(self) -> dt.date:
        return self.day


def test_day_budget_pauses_until_the_next_day_or_a_resume() -> None:
    today = Today()
    b = Budget(per_day=1.0, today=today)
    b.spend(0.6)
    assert b.reached() is None
    b.spend(0.5)
    assert b.reached() == "day"
    b.resume()
    assert b.reached() is None
    b.spend(5.0)
    assert b.reached() is None  # resumed for the rest of the day
    today.day += dt.timedelta(days=1)
    assert b.reached() is None and b.day_spent == 0
    b.spend(1.0)
    assert b.reached() == "day"  # a resume lasts one day only
    assert b.total_spent == pytest.approx(7.1)


def test_stream_budget_restarts_with_each_stream() -> None:
    b = Budget(per_stream=2.0)
    b.spend(2.0)
    assert b.reached() == "stream"
    b.new_stream()
    assert b.reached() is None and b.stream_spent == 0
    b.spend(1.0)
    b.resume()
    b.spend(5.0)
    assert b.reached() is None
    b.new_stream()
    b.spend(2.0)
    assert b.reached() == "stream"


def test_no_budget_never_pauses() -> None:
    b = Budget()
    b.spend(1e9)
    assert b.reached() is None and b.as_dict()["per_day"] is None


def test_spend_of_an_earlier_run_today_counts(tmp_path: Path) -> None:
    path = tmp_path / "state" / "spend.json"
    today = Today()
    ledger.save(path, today.day, 0.75)
    b = Budget(per_day=1.0, today=today)
    saved = ledger.load(path)
    assert saved == (today.day, 0.75)
    b.restore_day(*saved)
    b.spend(0.3)
    assert b.reached() == "day"
    yesterday = Budget(per_day=1.0, today=today)
    yesterday.restore_day(today.day - dt.timedelta(days=1), 0.9)
    assert yesterday.day_spent == 0


def test_ledger_survives_a_missing_or_broken_file(tmp_path: Path) -> None:
    assert ledger.load(tmp_path / "none.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert ledger.load(tmp_path / "bad.json") is None


def test_ledger_default_path_follows_systemd_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/captioner:/var/lib/other")
    assert ledger.default_path() == Path("/var/lib/captioner/spend.json")
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_STATE_HOME", "/home/u/.state")
    assert ledger.default_path() == Path("/home/u/.state/captioner/spend.json")


@pytest.mark.parametrize(
    ("token", "headers", "path", "code", "fragment"),
    [
        ("", {"Authorization": "Bearer x"}, "/control/budget/resume", 403, "set http.token"),
        ("s3cret-token", {}, "/control/budget/resume", 401, "bearer token"),
        ("s3cret-token", {"Authorization": "Bearer wrong"}, "/control/budget/resume", 401, "bearer token"),
        ("s3cret-token", {"Authorization": "Bearer s3cret-token"}, "/control/nope", 404, "budget/resume"),
        ("s3cret-token", {"Authorization": "Bearer s3cret-token"}, "/control/budget/resume", 200, '"resumed": 1'),
    ],
)
async def test_control_endpoint_needs_the_token(
    token: str, headers: dict[str, str], path: str, code: int, fragment: str
) -> None:
    calls: list[int] = []

    def resume(body: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        return {"resumed": len(calls)}

    runner, port = await http_api.start(Status("t"), "127.0.0.1", 0, controls={"budget/resume": resume}, token=token)
    try:
        async with aiohttp.ClientSession() as s, s.post(f"http://127.0.0.1:{port}{path}", headers=headers) as r:
            body = await r.text()
        assert (r.status, fragment in body) == (code, True), body
        assert len(calls) == (1 if code == 200 else 0)
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/control/budget/resume") as r:
            assert r.status == 405  # state changes only by POST
    finally:
        await runner.cleanup()
