"""Who said what in each output: OBS text (wrapping with the label), 608 `>> `, WebVTT voices, SRT/TXT, /status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from captioner import cea608
from captioner.config import ObsConfig, SpeakersConfig, parse
from captioner.layout import display_width
from captioner.obs import ObsSink
from captioner.outputs.base import CaptionRouter
from captioner.outputs.files import TranscriptFiles
from captioner.outputs.log import StatusOutput
from captioner.outputs.obs_text import ObsTextOutput
from captioner.outputs.overlay import OverlayOutput
from captioner.outputs.posting import Final, Post, PostingOutputs
from captioner.outputs.stream_captions import StreamCaptionOutput
from captioner.outputs.webhook import WebhookOutput
from captioner.outputs.youtube import YoutubeOutput
from captioner.speakers import SpeakerNames, label
from captioner.status import Status
from captioner.transcripts import TranscriptWriter, srt_cue, txt_line, voice_tag, vtt_cue
from captioner.translation.interpreter import Caption
from captioner.web.overlay import OverlayHub
from tests.support.config_docs import ENV, base
from tests.support.overlay_clock import FakeClock
from tests.support.subtitles import parse_srt, parse_vtt

EN = {"api_key": "k", "targets": ["en"]}


def final(text: str, speaker: str = "", language: str = "en", item: str = "") -> Caption:
    return Caption(language, item or f"i-{text[:8]}", text, True, speaker=speaker)


def host_label(name: str) -> str:
    return label("{name}: ", name)


# -- CEA-608: ">> " at each change of speaker


@pytest.mark.parametrize(
    ("speakers", "expected"),
    [
        (["A", "A", "B", "B", "A"], [">> ", "", ">> ", "", ">> "]),
        # Unknown speakers (labels not shown yet) are never marked; the first known one is.
        (["", "", "A", "A"], ["", "", ">> ", ""]),
        # After an unknown speaker anyone may be speaking: the next known one is marked again.
        (["A", "", "A"], [">> ", "", ">> "]),
        ([], []),
    ],
)
def test_608_marks_a_change_of_speaker_only(speakers: list[str], expected: list[str]) -> None:
    changes = cea608.SpeakerChanges()
    marked = [changes.mark(s, f"line {i}") for i, s in enumerate(speakers)]
    assert marked == [f"{mark}line {i}" for i, mark in enumerate(expected)]


def test_608_an_empty_caption_does_not_use_up_the_mark() -> None:
    changes = cea608.SpeakerChanges()
    assert changes.mark("A", "  ") == "  "
    assert changes.mark("A", "hello") == ">> hello"


def pages_sent(out: StreamCaptionOutput, start: float = 0.0) -> list[str]:
    """The pages the pacer lets out, asked every 10 s from `start` until it has none."""
    sent, t = [], start
    while (page := out.feed.pacer.due(t)) is not None:
        sent.append(page)
        t += 10
    return sent


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "{name}: ",
            [">> Welcome back everyone", "Thanks for having me", ">> Glad you are here"],
        ),
        # Labels off: no ">>" either.
        ("", ["Welcome back everyone", "Thanks for having me", "Glad you are here"]),
    ],
)
def test_stream_captions_carry_the_mark_in_the_608_pages(template: str, expected: list[str]) -> None:
    cfg = parse(base(translator=EN, stream_captions={"enabled": True}), ENV).stream_captions
    out = StreamCaptionOutput(cfg, lambda: "en", lambda page: None, Status("t"), lambda n: label(template, n))
    out.caption(final("Welcome back everyone", "Host"))
    out.caption(final("Thanks for having me", "Host"))  # Host again: no mark
    sent = pages_sent(out)
    out.caption(final("Glad you are here", "Guest"))
    out.caption(final("ignored: another language", "Guest", language="ja"))
    assert sent + pages_sent(out, start=100) == expected


def test_stream_caption_mark_is_on_the_first_page_of_a_long_caption() -> None:
    cfg = parse(base(translator=EN, stream_captions={"enabled": True, "rows": 1}), ENV).stream_captions
    out = StreamCaptionOutput(cfg, lambda: "en", lambda page: None, Status("t"), host_label)
    out.caption(final("This sentence is far too long for a single row of thirty-two", "Guest"))
    sent = pages_sent(out)
    assert sent[0].startswith(">> This") and len(sent) > 1
    assert not any(">>" in p for p in sent[1:])
    assert all(len(p) <= cea608.COLUMNS for p in sent)


# -- transcript files


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("Host", "Hello", "<v Host>Hello"),
        ("Dr. <Evil> & Co", "a < b & c > d", "<v Dr. &lt;Evil&gt; &amp; Co>a &lt; b &amp; c &gt; d"),
        ("Two\nlines", "x --> y", "<v Two lines>x --&gt; y"),
        ("", "no speaker", "no speaker"),
        ("  ", "blank name", "blank name"),
        ("ゲスト", "二行\n目", "<v ゲスト>二行\n目"),
    ],
)
def test_vtt_voice_tag_is_escaped(name: str, text: str, expected: str) -> None:
    cue = vtt_cue(1, 2, text, name)
    assert cue == f"00:00:01.000 --> 00:00:02.000\n{expected}\n\n"
    assert voice_tag(name) == (expected.split(">", 1)[0] + ">" if expected.startswith("<v ") else "")


@pytest.mark.parametrize(
    ("text", "prefix", "srt", "txt"),
    [
        ("Hello", "Host: ", "Host: Hello", "[00:00:05.000] Host: Hello"),
        ("two\nlines", "[Guest] ", "[Guest] two\nlines", "[00:00:05.000] [Guest] two lines"),
        ("no one", "", "no one", "[00:00:05.000] no one"),
    ],
)
def test_srt_and_txt_start_with_the_label(text: str, prefix: str, srt: str, txt: str) -> None:
    assert srt_cue(3, 5, 6, text, prefix) == f"3\n00:00:05,000 --> 00:00:06,000\n{srt}\n\n"
    assert txt_line(5, text, prefix) == f"{txt}\n"


def test_files_name_the_speakers_as_written_on_disk(tmp_path: Path) -> None:
    status = Status("t")
    writer = TranscriptWriter(tmp_path, ["en"], name="show")
    files = TranscriptFiles("transcripts", writer, status, host_label)
    files.caption(final("Welcome back", "Host"))
    files.caption(final("Thanks <3", "Guest"))
    files.caption(final("Before anyone was named"))
    files.caption(Caption("en", "p", "a partial is not written", False, speaker="Host"))
    writer.close()
    srt = [t for _, _, _, t in parse_srt((tmp_path / "show.en.srt").read_text())]
    vtt = [t for _, _, t in parse_vtt((tmp_path / "show.en.vtt").read_text())]
    txt = [line.split("] ", 1)[1] for line in (tmp_path / "show.en.txt").read_text().splitlines()]
    assert srt == ["Host: Welcome back", "Guest: Thanks <3", "Before anyone was named"]
    assert vtt == ["<v Host>Welcome back", "<v Guest>Thanks &lt;3", "Before anyone was named"]
    assert txt == srt


def test_files_with_labels_off_keep_only_the_voice_tag(tmp_path: Path) -> None:
    writer = TranscriptWriter(tmp_path, ["en"], name="show")
    files = TranscriptFiles("transcripts", writer, Status("t"), lambda name: label("", name))
    files.caption(final("Welcome back", "Host"))
    writer.close()
    assert parse_srt((tmp_path / "show.en.srt").read_text())[0][3] == "Welcome back"
    assert parse_vtt((tmp_path / "show.en.vtt").read_text())[0][2] == "<v Host>Welcome back"
    assert (tmp_path / "show.en.txt").read_text().endswith("] Welcome back\n")


# -- OBS text sources: the label is part of the text the layout wraps


def obs_text(max_width: int, template: str = "{name}: ", **layout: object) -> tuple[ObsTextOutput, Status]:
    cfg = parse(
        base(
            translator={"api_key": "k", "targets": ["ja"]},
            outputs=[{"obs_source": "JA", "language": "ja", "layout": {"max_width": max_width, **layout}}],
        ),
        ENV,
    )
    status = Status("t")
    # Never started: what the presenter lays out shows in status.screens (real OBS: tests/e2e/test_e2e_speakers.py).
    sink = ObsSink(ObsConfig(password=SecretStr("")), ["JA"], status)
    return ObsTextOutput(cfg, sink, status, set(), lambda n: label(template, n)), status


@pytest.mark.parametrize(
    ("speaker", "text", "width", "expected"),
    [
        # "Host: " is 6 columns: the first line has room for 7 Japanese characters (14 columns), not 10; and
        # kinsoku still holds after a label: "。" does not begin a line, so "す" goes down with it.
        (
            "Host",
            "今日はみんなで新しいゲームを遊びます。",
            20,
            ["Host: 今日はみんなで", "新しいゲームを遊びま", "す。"],
        ),
        ("ゲスト", "ありがとう。", 16, ["ゲスト: ありがと", "う。"]),
        ("Host", "Welcome back everyone to the stream", 24, ["Host: Welcome back", "everyone to the stream"]),
        # Without a label: 10 characters, less the "ゲ" that "ー" (no line start) takes down with it.
        ("", "今日はみんなで新しいゲームを遊びます。", 20, ["今日はみんなで新しい", "ゲームを遊びます。"]),
    ],
)
def test_the_label_counts_in_the_width_of_cjk_lines(speaker: str, text: str, width: int, expected: list[str]) -> None:
    out, status = obs_text(width, max_lines=3)
    out.caption(Caption("ja", "i1", text, True, speaker=speaker))
    lines = status.screens["JA"].split("\n")
    assert lines == expected
    assert all(display_width(line) <= width for line in lines)


def test_live_partials_carry_the_label_and_labels_off_show_none() -> None:
    out, status = obs_text(42, live=True)
    out.caption(Caption("ja", "i1", "こんにちは", False, speaker="Guest"))
    assert status.screens["JA"] == "Guest: こんにちは"
    out.caption(Caption("ja", "i1", "こんにちは。", True, speaker="Guest"))
    assert status.screens["JA"] == "Guest: こんにちは。"
    off, off_status = obs_text(42, template="")
    off.caption(Caption("ja", "i2", "こんにちは", True, speaker="Guest"))
    assert off_status.screens["JA"] == "こんにちは"


# -- /status, and the overlay's events


def test_status_names_the_speaker_of_the_last_final_even_with_labels_off() -> None:
    status = Status("t")
    router = CaptionRouter()
    router.set("status", StatusOutput(status))
    router.caption(final("Hi", "Host", language="ja"))
    assert status.as_dict()["outputs"]["ja"] | {"final_count": 0} == {
        "last_final": "Hi",
        "last_speaker": "Host",
        "final_count": 0,
        "last_partial": None,
    }
    router.caption(final("unknown"))
    assert status.as_dict()["outputs"]["en"]["last_speaker"] == ""


def test_overlay_events_carry_name_label_and_the_speakers_number_for_its_colour() -> None:
    hub = OverlayHub(clock=FakeClock())
    hub.set_languages(["ja", "en"])
    cfg = SpeakersConfig(names=("Host", "Guest"))
    names = SpeakerNames(lambda: cfg)
    router = CaptionRouter()
    router.set("overlay", OverlayOutput(hub, lambda: ("ja", "en"), names))
    for c in [
        Caption("ja", "1", "one", True, speaker_id="1"),  # one voice: no speaker yet
        Caption("ja", "2", "two", True, speaker_id="2"),
        Caption("en", "3", "three", True, speaker_id="1"),
        Caption("en", "4", "four", True),
        Caption("en", "5", "live", False, speaker_id="2"),
    ]:
        router.caption(names.name(c))
    assert hub.replay("ja")["captions"] == [
        {"text": "one", "age_s": 0.0},
        # Guest was labelled first but is the second voice heard: speaker-2 in every language and page.
        {"text": "two", "age_s": 0.0, "speaker": {"name": "Guest", "label": "Guest: ", "number": 2}},
    ]
    replay = hub.replay("en")
    assert replay["captions"] == [
        {"text": "three", "age_s": 0.0, "speaker": {"name": "Host", "label": "Host: ", "number": 1}},
        {"text": "four", "age_s": 0.0},
    ]
    assert replay["partial"]["speaker"] == {"name": "Guest", "label": "Guest: ", "number": 2}


def test_overlay_with_labels_off_still_names_and_numbers_for_css() -> None:
    hub = OverlayHub(clock=FakeClock())
    hub.set_languages(["en"])
    names = SpeakerNames(lambda: SpeakersConfig(label="", always=True))
    OverlayOutput(hub, lambda: ("en",), names).caption(names.name(Caption("en", "1", "hi", True, speaker_id="7")))
    assert hub.replay("en")["captions"][0]["speaker"] == {"name": "Speaker 1", "label": "", "number": 1}


# -- YouTube captions and webhooks


@pytest.mark.parametrize(
    ("template", "youtube_text"),
    [("{name}: ", "Guest: ありがとう"), ("", "ありがとう")],
)
def test_youtube_captions_carry_the_label_and_the_webhook_the_name(template: str, youtube_text: str) -> None:
    yt_url, hook_url = "https://upload.youtube.com/closedcaption?cid=x", "https://hooks.example/h"
    raw = base(
        outputs=[{"youtube_url": yt_url, "language": "ja"}, {"webhook_url": hook_url, "language": "ja"}],
        speakers={"label": template},
    )
    outputs = PostingOutputs(Status("t"), lambda name, sink: None, (YoutubeOutput, WebhookOutput))
    outputs.configure(parse(raw, ENV))
    yt, hook = outputs.outputs.values()
    spoken = 1798142406.873  # 2026-12-24T20:00:06.873Z
    said = Final(Caption("ja", "i", "ありがとう", True, speaker="Guest"), spoken, spoken + 1)
    assert yt.request(Post(1, (said,))).body.decode() == f"2026-12-24T20:00:06.873\n{youtube_text}\n"
    assert json.loads(hook.request(Post(1, (said,))).body)["speaker"] == "Guest"
    # A reload with another label reaches the outputs that keep running.
    outputs.configure(parse({**raw, "speakers": {"label": "[{name}] "}}, ENV))
    assert yt.request(Post(2, (said,))).body.decode().endswith("\n[Guest] ありがとう\n")
