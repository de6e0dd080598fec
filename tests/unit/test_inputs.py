"""Several inputs (pure): the `inputs` config and its rules, the live source-language switch, which output takes
which input's captions, and the caption's label."""

from __future__ import annotations

from typing import Any

import pytest

from captioner.config import Config, parse, with_source_language
from captioner.errors import ConfigError
from captioner.presenter import Presenter
from captioner.reload import session_spec

KEY = {"api_key": "k"}
HOST = {"name": "Host", "source_language": "en"}
GUESTS = {"name": "Guests", "device": "Discord monitor", "source_language": "ja"}


def cfg(**top: Any) -> Config:
    return parse({"translator": {**KEY, "targets": ["ja", "en"]}, **top})


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        ({"inputs": [{"name": ""}]}, "inputs[0].name", "at least 1"),
        ({"inputs": [{"device": 1}]}, "inputs[0].name", "required"),
        ({"inputs": [HOST, {**GUESTS, "name": "Host"}]}, "inputs[1].name", "'Host' names two inputs"),
        ({"inputs": [{**HOST, "source_language": "jp"}]}, "inputs[0].source_language", "did you mean `ja`"),
        ({"inputs": [{**HOST, "device": 1.5}]}, "inputs[0].device", "device index"),
        ({"inputs": [{**HOST, "backend": "alsa"}]}, "inputs[0].backend", ""),
        ({"inputs": [{**HOST, "gate": {"trail_ms": 10}}]}, "inputs[0].gate.trail_ms", "greater than"),
        # OBS's state is one for every input: the obs_* gate keys stay top-level.
        ({"inputs": [{**HOST, "gate": {"obs_scenes": ["x"]}}]}, "inputs[0].gate.obs_scenes", ""),
        ({"inputs": [HOST], "audio": {"device": "loopback"}}, "audio.device", "inputs[].device"),
        ({"inputs": [HOST], "audio": {"backend": "pulse"}}, "audio.backend", "inputs[].backend"),
        (
            {"inputs": [HOST], "outputs": [{"obs_source": "A", "language": "ja", "inputs": ["Hots"]}]},
            "outputs[0].inputs[0]",
            "'Hots' is not an input (inputs: Host)",
        ),
        # Without inputs: there is no name to narrow to.
        ({"outputs": [{"obs_source": "A", "language": "ja", "inputs": ["Host"]}]}, "outputs[0].inputs[0]", "no inputs"),
        (
            {"inputs": [HOST], "outputs": [{"webhook_url": "https://x", "language": "ja", "inputs": ["X"]}]},
            "outputs[0].inputs[0]",
            "not an input",
        ),
    ],
)
def test_bad_inputs_name_the_key(raw: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as e:
        cfg(**raw)
    assert e.value.key == key and fragment in str(e.value)


def test_each_input_has_its_device_language_and_gate_on_top_of_the_shared_ones() -> None:
    c = cfg(
        inputs=[{**HOST, "gate": {"trail_ms": 3000}}, {**GUESTS, "backend": "portaudio"}, {"name": "Caller"}],
        audio={"chunk_ms": 200},
        gate={"threshold_db": 12},
        translator={**KEY, "targets": ["ja", "en"], "source_language": "ko"},
    )
    host, guests, caller = c.input_list()
    assert (c.input_audio(host).device, c.input_audio(guests).device) == (None, "Discord monitor")
    assert c.input_audio(guests).backend == "portaudio" and c.input_audio(host).backend == "auto"
    assert c.input_audio(guests).chunk_ms == 200
    assert (c.input_gate(host).trail_ms, c.input_gate(host).threshold_db) == (3000, 12)
    assert c.input_gate(guests).trail_ms is None  # the default: the service's VAD silence and a margin
    # Unset: the top-level source language.
    assert [c.input_translator(i).source_language for i in (host, guests, caller)] == ["en", "ja", "ko"]
    assert [session_spec(c, "ja", i).source_language for i in (host, guests, caller)] == ["en", "ja", "ko"]


def test_audio_alone_is_one_unnamed_input() -> None:
    c = cfg(audio={"device": "loopback", "backend": "pulse"})
    (only,) = c.input_list()
    assert only.name == "" and c.input_audio(only).device == "loopback" and c.input_audio(only).backend == "pulse"
    assert c.input_gate(only) == c.gate and c.input_translator(only) == c.translator


@pytest.mark.parametrize(
    ("inputs", "request_input", "language", "expected"),
    [
        ([HOST, GUESTS], "Host", "ja", {"Host": "ja", "Guests": "ja"}),
        ([HOST, GUESTS], "Guests", "ko", {"Host": "en", "Guests": "ko"}),
        ([HOST], None, "fr", {"Host": "fr"}),  # the only input need not be named
        (None, None, "de", {"": "de"}),  # audio: switches translator.source_language
    ],
)
def test_switching_one_inputs_language(
    inputs: list[dict[str, Any]] | None, request_input: str | None, language: str, expected: dict[str, str]
) -> None:
    c = cfg(inputs=inputs) if inputs else cfg()
    new = with_source_language(c, request_input, language)
    assert {i.name: new.input_translator(i).source_language for i in new.input_list()} == expected


@pytest.mark.parametrize(
    ("request_input", "language", "key", "fragment"),
    [
        (None, "ja", "input", "one of: Host, Guests"),  # two inputs: say which
        ("Nobody", "ja", "input", "one of: Host, Guests"),
        ("Host", "jp", "language", "did you mean `ja`"),
    ],
)
def test_a_switch_that_cannot_be_made(request_input: str | None, language: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as e:
        with_source_language(cfg(inputs=[HOST, GUESTS]), request_input, language)
    assert e.value.key == key and fragment in str(e.value)


@pytest.mark.parametrize(
    ("narrowed_to", "heard_on", "taken"),
    [
        ((), "Host", True),  # every input by default
        ((), "", True),
        (("Host",), "Host", True),
        (("Host",), "Guests", False),
        (("Host", "Guests"), "Guests", True),
    ],
)
def test_which_output_takes_which_input(narrowed_to: tuple[str, ...], heard_on: str, taken: bool) -> None:
    c = cfg(
        inputs=[HOST, GUESTS],
        outputs=[
            {"obs_source": "A", "language": "ja", "inputs": list(narrowed_to)},
            {"webhook_url": "https://example.invalid/", "language": "ja", "inputs": list(narrowed_to)},
        ],
    )
    assert [o.takes(heard_on) for o in c.outputs] == [taken, taken]


def test_an_obs_source_narrowed_to_one_input_shows_only_its_sentences() -> None:
    c = cfg(
        inputs=[HOST, GUESTS],
        outputs=[
            {"obs_source": "All", "language": "ja"},
            {"obs_source": "HostOnly", "language": "ja", "inputs": ["Host"]},
        ],
        layout={"max_lines": 4, "clear_after_s": 0},
    )
    shown: dict[str, str] = {}
    p = Presenter(c, lambda source, text, at: shown.__setitem__(source, text), clock=lambda: 100.0)
    p.caption("ja", "host one", final=True, input_name="Host")
    p.caption("ja", "guest one", final=True, input_name="Guests")
    p.caption("ja", "host two", final=True, input_name="Host")
    assert shown == {"All": "host one\nguest one\nhost two", "HostOnly": "host one\nhost two"}


def test_two_inputs_speaking_at_once_are_not_interleaved_mid_sentence() -> None:
    c = cfg(
        inputs=[HOST, GUESTS],
        outputs=[{"obs_source": "Live", "language": "ja"}],
        layout={"live": True, "live_interval_s": 0.05, "max_lines": 4, "clear_after_s": 0},
    )
    now = [100.0]
    shown: list[str] = []
    p = Presenter(c, lambda source, text, at: shown.append(text), clock=lambda: now[0])
    p.caption("ja", "host is", final=False, input_name="Host")
    now[0] += 1
    p.caption("ja", "guest says", final=False, input_name="Guests")  # the Host's sentence is still growing
    now[0] += 1
    p.caption("ja", "host is talking", final=False, input_name="Host")
    assert shown[-1] == "host is talking" and not any("guest" in s for s in shown)
    p.caption("ja", "host is talking.", final=True, input_name="Host")
    now[0] += 1
    p.caption("ja", "guest says hi", final=False, input_name="Guests")  # the lane is free again
    assert shown[-1] == "host is talking.\nguest says hi"
    p.caption("ja", "guest says hi.", final=True, input_name="Guests")
    assert shown[-1] == "host is talking.\nguest says hi."
    # A partial whose final never comes holds the lane for PARTIAL_HOLD_S only.
    p.caption("ja", "host again", final=False, input_name="Host")
    now[0] += 4
    p.caption("ja", "guest again", final=False, input_name="Guests")
    assert shown[-1].endswith("guest again")


def test_translated_voice_is_the_first_inputs_only() -> None:
    c = cfg(inputs=[HOST, GUESTS], voice_outputs=[{"language": "ja"}])
    host, guests = c.input_list()
    assert session_spec(c, "ja", host).audio_output and not session_spec(c, "ja", guests).audio_output


def test_stream_captions_of_the_source_need_every_inputs_language_in_latin_script() -> None:
    sc = {"enabled": True, "language": "source"}
    tr = {**KEY, "targets": ["ja"], "transcribe_source": True}
    assert cfg(inputs=[HOST, {**GUESTS, "source_language": "fr"}], stream_captions=sc, translator=tr)
    with pytest.raises(ConfigError) as e:
        cfg(inputs=[HOST, GUESTS], stream_captions=sc, translator=tr)
    assert e.value.key == "stream_captions.language" and "'ja' cannot be shown" in str(e.value)
    # Nor can a live switch give them one.
    with pytest.raises(ConfigError) as e:
        with_source_language(cfg(inputs=[HOST], stream_captions=sc, translator=tr), "Host", "ja")
    assert e.value.key == "stream_captions.language"
