"""The daemon with two inputs in process (scripted captures, the fake translator over real sockets): each input's
captions carry its name, and a reload or a language switch touches only the input it concerns."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from captioner.config import Config, parse, with_source_language
from tests.support.daemon_harness import GatedDaemon, ScriptedCapture, all_connected, running_daemon, until
from tests.support.fake_translator import FakeTranslator

pytestmark = pytest.mark.timeout(60)
KEY = "sk-listeners-secret"
PHRASE = [("silence", 0.5), ("tone", 1.0), ("silence", 3.0)]


@pytest.fixture
async def fake(inloop_fake: Callable[..., Awaitable[FakeTranslator]]) -> FakeTranslator:
    return await inloop_fake(api_key=KEY)


def config(fake: FakeTranslator, guests: dict[str, Any] | None = None, **top: Any) -> Config:
    inputs = [{"name": "Host", "device": "host mic", "source_language": "en"}]
    if guests is not None:
        inputs.append({"name": "Guests", "device": "call", "source_language": "en", **guests})
    return parse(
        {
            "translator": {"url": fake.url, "api_key": KEY, "targets": ["ja"]},
            "obs": {"enabled": False},
            "http": {"enabled": False},
            "inputs": inputs,
            **top,
        }
    )


@asynccontextmanager
async def running(cfg: Config) -> AsyncIterator[GatedDaemon]:
    async with running_daemon(cfg) as daemon:
        yield daemon


def player(d: GatedDaemon, name: str) -> ScriptedCapture:
    capture = d.listeners.by_name[name].capture
    assert isinstance(capture, ScriptedCapture)
    return capture


async def test_each_inputs_captions_carry_its_name(fake: FakeTranslator) -> None:
    async with running(config(fake, {})) as d:
        assert {"translator:Host:ja", "translator:Guests:ja"} <= set(d.status.links)
        await player(d, "Host").play(PHRASE)
        await d.wait_finals(1)
        # The top-level gate is the first input's: it heard the Host (the Guests' gate has heard nothing yet).
        assert d.status.as_dict()["audio_gate"]["speech_s"] > 0
        await player(d, "Guests").play(PHRASE)
        await d.wait_finals(2)
        assert [(c.input, c.speaker) for c in d.finals] == [("Host", "Host"), ("Guests", "Guests")]
        assert [r["input"] for r in d.status.as_dict()["recent_captions"]] == ["Host", "Guests"]
        assert d.metric("captioner_audio_sent_seconds_total", input="Guests", target="ja") > 0
        inputs = d.status.as_dict()["inputs"]
        assert inputs["Guests"]["device"] == "call" and inputs["Host"]["sessions"] == {"ja": "connected"}


async def test_a_reload_touches_only_the_input_it_concerns(fake: FakeTranslator) -> None:
    async with running(config(fake, {})) as d:
        host, guests = d.listeners.by_name["Host"], d.listeners.by_name["Guests"]
        host_capture, host_session = host.capture, host.sessions["ja"]
        guests_session = guests.sessions["ja"]
        # The Guests' device: only its capture reopens.
        await d.apply(config(fake, {"device": "other call"}))
        assert player(d, "Guests").device == "other call" and host.capture is host_capture
        assert host.sessions["ja"] is host_session and guests.sessions["ja"] is guests_session
        # The Guests' language, switched live: only its session is replaced, with the new language.
        await d.apply(with_source_language(d.cfg, "Guests", "de"), at_pause=True)
        await until(lambda: all_connected(d))
        assert guests.sessions["ja"] is not guests_session and host.sessions["ja"] is host_session
        assert guests.sessions["ja"].cfg.source_language == "de" and host_session.cfg.source_language == "en"
        # Paused, then a new input: it starts held, as the others are.
        d.control.set_paused(True)
        caller = d.cfg.inputs[0].model_copy(update={"name": "Caller"})
        await d.apply(d.cfg.model_copy(update={"inputs": (*d.cfg.inputs, caller)}))
        assert "paused" in d.listeners.by_name["Caller"].feed.gate.held_by
        # An input removed: it stops alone.
        await d.apply(config(fake))
        assert list(d.listeners.by_name) == ["Host"] and host.sessions["ja"] is host_session
        assert not [link for link in d.status.links if "Guests" in link or "Caller" in link]
        assert host.capture is host_capture
