"""Cost estimate and budgets (pure), the spend ledger on disk, and the token-protected control endpoint."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from captioner import ledger
from captioner.cost import KINDS, Budget, Tokens, UsageMeter, UsageMode, estimate, tokens_from_usage
from captioner.status import Status
from captioner.web import server as http_api

PRICES = {"audio_in": 73.392, "text_in": 73.392, "image_in": 9.541, "text_out": 73.392, "audio_out": 278.891}


def test_token_kinds_are_the_fields_in_order() -> None:
    # Tokens' values are read by KINDS (one attrgetter): a field added or moved must be added or moved there too.
    assert tuple(f.name for f in dataclasses.fields(Tokens)) == KINDS
    assert Tokens(1, 2, 3, 4, 5).as_dict() == dict(zip(KINDS, (1, 2, 3, 4, 5), strict=True))
    assert Tokens(1, 2, 3, 4, 5).total == 15


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


def _usage(audio_in: int, text_out: int) -> dict[str, Any]:
    return {
        "input_tokens": audio_in,
        "output_tokens": text_out,
        "input_tokens_details": {"text_tokens": 0, "audio_tokens": audio_in},
        "output_tokens_details": {"text_tokens": text_out},
    }


# Three responses of 100 audio tokens and 10 text tokens each, with the audio sent so far (tokens) when each came.
PER_RESPONSE = [(_usage(100, 10), 100.0), (_usage(100, 10), 200.0), (_usage(100, 10), 300.0)]
CUMULATIVE = [(_usage(100, 10), 100.0), (_usage(200, 20), 200.0), (_usage(300, 30), 300.0)]


@pytest.mark.parametrize(
    ("_name", "reports", "expected"),
    [
        ("cumulative, as observed", CUMULATIVE, (300, 30, UsageMode.CUMULATIVE)),
        ("per response, told by the audio sent", PER_RESPONSE, (300, 30, UsageMode.PER_RESPONSE)),
        (
            "per response, told by a figure that falls (no audio estimate)",
            [(_usage(100, 10), None), (_usage(150, 20), None), (_usage(80, 5), None)],
            (330, 35, UsageMode.PER_RESPONSE),
        ),
        (
            "per response with growing figures: billed as cumulative until the fall, then corrected",
            [(_usage(100, 10), None), (_usage(120, 12), None), (_usage(130, 13), None), (_usage(50, 1), None)],
            (400, 36, UsageMode.PER_RESPONSE),
        ),
        (
            "cumulative without an audio estimate stays unproven but bills the last figures",
            [(u, None) for u, _ in CUMULATIVE],
            (300, 30, UsageMode.UNKNOWN),
        ),
        ("one report: both readings agree", CUMULATIVE[:1], (100, 10, UsageMode.UNKNOWN)),
        (
            "the audio estimate cannot tell when the last response holds most of the audio",
            [(_usage(10, 1), 10.0), (_usage(100, 10), 100.0)],
            (100, 10, UsageMode.UNKNOWN),
        ),
    ],
)
def test_usage_meter_bills_either_reading(
    _name: str, reports: list[tuple[dict[str, Any], float | None]], expected: tuple[int, int, str]
) -> None:
    meter = UsageMeter()
    total_in = total_out = audio_in = text_out = 0
    for usage, sent in reports:
        d_in, d_out, tokens = meter.report(usage, sent)
        assert d_in >= 0 and d_out >= 0
        total_in, total_out = total_in + d_in, total_out + d_out
        audio_in, text_out = audio_in + tokens.audio_in, text_out + tokens.text_out
    assert (total_in, total_out, meter.mode) == expected
    assert (audio_in, text_out) == expected[:2]  # by kind too, for the price
    assert meter.input_tokens == expected[0]


def test_image_tokens_are_what_the_documented_details_leave_out() -> None:
    """The docs detail text and audio only (§8): the rest of the input total is images when audio is detailed."""
    usage = {"input_tokens": 700, "output_tokens": 9, "input_tokens_details": {"text_tokens": 0, "audio_tokens": 112}}
    assert tokens_from_usage(usage) == Tokens(audio_in=112, image_in=588, text_out=9)


def test_tests_keep_state_and_config_out_of_the_users_home() -> None:
    """A test run once left ~/.local/state/captioner/spend.json, which `captioner demo` then showed as a bill."""
    from captioner.config import DEFAULT_PATH
    from tests.conftest import TEST_HOME, USER_HOME

    assert ledger.default_path().is_relative_to(TEST_HOME)
    assert DEFAULT_PATH.expanduser().is_relative_to(TEST_HOME)
    assert not ledger.default_path().is_relative_to(USER_HOME)
