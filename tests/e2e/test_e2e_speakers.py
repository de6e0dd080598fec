"""Who said what, through the real daemon's wiring into real OBS (text and 608 in the stream), files, HTTP, Chromium.

The sessions connect to the fake translator, which cannot yet tell speakers apart (qwen3.8's `speaker_id`): the
captions a qwen3.8 session would hand over are given to the daemon's `on_caption` instead, so everything after the
session is the real thing: naming, the fan-out, every output, OBS, nginx-rtmp, the files, the pages in Chromium.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from captioner.app import Daemon
from captioner.config import parse
from captioner.translation.interpreter import Caption
from tests.support.browser import Browser
from tests.support.daemon_harness import ScriptedCapture
from tests.support.fake_translator import FakeTranslator
from tests.support.obs_env import ObsEnv
from tests.support.subtitles import parse_srt, parse_vtt

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
KEY = "sk-e2e-speakers-key"
T = TypeVar("T")
# What qwen3.8 sessions hand over: (language, speaker_id, text). One voice first, then a second, then the first.
SAID = [
    ("en", "1", "Welcome back everyone"),
    ("en", "2", "Thanks for having me"),
    ("ja", "2", "今日はみんなで新しいゲームを遊びます。"),
    ("en", "1", "Glad you are here"),
]


@pytest.fixture
def fake(threaded_fake: Callable[..., FakeTranslator]) -> FakeTranslator:
    return threaded_fake(api_key=KEY)


class ThreadedDaemon:
    """The daemon in process on its own loop thread: the test's thread drives OBS, HTTP and Chromium, which block."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="daemon", daemon=True)
        self.thread.start()
        self.cfg = parse(raw)
        self.daemon: Daemon = self.run(self._make())
        self.stop_event: asyncio.Event = self.run(self._event())
        self.task = asyncio.run_coroutine_threadsafe(self.daemon.run(self.stop_event), self.loop)
        sessions = self.daemon.sessions
        self.wait(lambda: len(sessions) == len(self.cfg.translator.targets), "sessions started")
        self.wait(lambda: all(s.connected for s in sessions.values()), "sessions connected")

    async def _make(self) -> Daemon:
        return Daemon(self.cfg, capture_factory=ScriptedCapture)  # type: ignore[arg-type]

    async def _event(self) -> asyncio.Event:
        return asyncio.Event()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=15)

    def wait(self, pred: Callable[[], bool], what: str, within: float = 20) -> None:
        deadline = time.monotonic() + within
        while not pred():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def say(self, language: str, speaker_id: str, text: str, n: int) -> None:
        """One final as a qwen3.8 session hands it over, on the daemon's loop."""
        caption = Caption(language, f"item_{n}", text, True, speaker_id=speaker_id)
        self.loop.call_soon_threadsafe(self.daemon.on_caption, caption)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.daemon.http_port}{path}", timeout=5) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        if not self.task.done():
            self.loop.call_soon_threadsafe(self.stop_event.set)
            self.task.result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def text_of(obs: ObsEnv, source: str) -> str | None:
    try:
        return obs.client().send("GetInputSettings", {"inputName": source}, raw=True)["inputSettings"].get("text")
    except Exception:  # noqa: BLE001 - a source not created yet shows nothing
        return None


def wait_text(obs: ObsEnv, source: str, expected: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while (shown := text_of(obs, source)) != expected:
        assert time.monotonic() < deadline, f"{source} shows {shown!r}, expected {expected!r}"
        time.sleep(0.05)


def test_obs_text_stream_captions_files_and_status_name_the_speakers(
    obs: ObsEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    paged = {"rolling": False, "min_display_s": 0, "clear_after_s": 0}
    d = ThreadedDaemon(
        {
            "translator": {"url": fake.url, "api_key": KEY, "targets": ["en", "ja"]},
            "obs": {"port": obs.ws_port, "password": obs.password, "timeout_s": 2},
            "outputs": [
                {"obs_source": "E2E Speakers EN", "language": "en", "layout": paged},
                {
                    "obs_source": "E2E Speakers JA",
                    "language": "ja",
                    "layout": {**paged, "max_width": 20, "max_lines": 3},
                },
            ],
            "stream_captions": {"enabled": True, "language": "en"},
            "transcripts": {"enabled": True, "folder": str(tmp_path / "runs"), "follow_recording": False},
            "speakers": {"names": ["Host", "Guest"]},
            "http": {"port": 0},
        }
    )
    c = obs.client()
    before = set(obs.recordings())
    try:
        d.wait(lambda: d.daemon.status.link("obs").state == "connected", "obs connected")
        c.start_stream()
        obs.wait_stream(True)
        time.sleep(1.0)  # the stream is up before the first caption
        shown = {
            # One voice so far: no label.
            0: ("E2E Speakers EN", "Welcome back everyone"),
            # A second voice: labels from here on, the label part of the text the layout wraps (7 + 12 columns).
            1: ("E2E Speakers EN", "Guest: Thanks for having me"),
            2: ("E2E Speakers JA", "Guest: 今日はみんな\nで新しいゲームを遊び\nます。"),
            3: ("E2E Speakers EN", "Host: Glad you are here"),
        }
        for n, (language, speaker_id, text) in enumerate(SAID):
            d.say(language, speaker_id, text, n)
            wait_text(obs, *shown[n])
            time.sleep(1.2)  # stream captions are paced at one a second: each gets its own
        time.sleep(2.0)  # the last 608 page needs a video frame
        status = d.get("/status")
        c.stop_stream()
        obs.wait_stream(False)
    finally:
        d.stop()
        if obs.client().send("GetStreamStatus", raw=True)["outputActive"]:
            obs.client().stop_stream()

    # The stream's CEA-608 captions, decoded out of the real RTMP stream: ">> " at each change of speaker only.
    new = [r for r in obs.wait_recordings_closed() if r not in before]
    assert len(new) == 1, new
    assert obs.extract_captions(new[0]) == [
        "Welcome back everyone",
        ">> Thanks for having me",
        ">> Glad you are here",
    ]
    # /status names who said the last final of each language.
    assert (status["outputs"]["en"]["last_final"], status["outputs"]["en"]["last_speaker"]) == (
        "Glad you are here",
        "Host",
    )
    assert status["outputs"]["ja"]["last_speaker"] == "Guest"
    # The files: SRT and TXT with the label, WebVTT with voice tags.
    (srt,) = (tmp_path / "runs").glob("captioner_*_en.srt")
    (vtt,) = (tmp_path / "runs").glob("captioner_*_en.vtt")
    (txt,) = (tmp_path / "runs").glob("captioner_*_en.txt")
    expected = ["Welcome back everyone", "Guest: Thanks for having me", "Host: Glad you are here"]
    assert [t for *_, t in parse_srt(srt.read_text())] == expected
    assert [line.split("] ", 1)[1] for line in txt.read_text().splitlines()] == expected
    assert [t for *_, t in parse_vtt(vtt.read_text())] == [
        "Welcome back everyone",
        "<v Guest>Thanks for having me",
        "<v Host>Glad you are here",
    ]
    (ja_vtt,) = (tmp_path / "runs").glob("captioner_*_ja.vtt")
    assert [t for *_, t in parse_vtt(ja_vtt.read_text())] == [f"<v Guest>{SAID[2][2]}"]


# -- the overlay and the dashboard in Chromium

LABELS = """[...document.querySelectorAll('#captions .caption')].map((e) => {
  const label = e.querySelector('.label');
  return [e.dataset.speaker || '', [...e.classList].filter((k) => k.startsWith('speaker-')).join(' '),
          label ? label.textContent : '', label ? getComputedStyle(label).color : '', e.textContent];
})"""


@pytest.fixture
def page(browser: Browser) -> Iterator[Browser]:
    browser.exceptions.clear()
    yield browser
    assert browser.exceptions == []
    browser.navigate("about:blank")  # the daemon has gone: stop the page's reconnect attempts


def wait_js(b: Browser, js: str, expected: Any, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while (got := b.evaluate(js)) != expected:
        assert time.monotonic() < deadline, f"page shows {got!r}, expected {expected!r}"
        time.sleep(0.05)


def test_overlay_labels_each_speaker_in_its_own_stylable_colour_and_the_dashboard_names_them(
    page: Browser, fake: FakeTranslator, tmp_path: Path
) -> None:
    d = ThreadedDaemon(
        {
            "translator": {"url": fake.url, "api_key": KEY, "targets": ["en", "ja"]},
            "obs": {"enabled": False},
            "speakers": {"names": ["Host", "Guest"]},
            "http": {"port": 0},
        }
    )
    try:
        base = f"http://127.0.0.1:{d.daemon.http_port}"
        page.navigate(f"{base}/overlay?lang=en&lines=4&clear=0")
        page.wait_for("document.documentElement.dataset.state === 'live'")
        for n, (language, speaker_id, text) in enumerate(SAID):
            d.say(language, speaker_id, text, n)
        gold, blue = "rgb(255, 213, 79)", "rgb(79, 195, 247)"  # --speaker-1, --speaker-2
        wait_js(
            page,
            LABELS,
            [
                ["", "", "", "", "Welcome back everyone"],
                # Guest was labelled first, but Host was heard first: Host is speaker-1 everywhere.
                ["Guest", "speaker-2", "Guest: ", blue, "Guest: Thanks for having me"],
                ["Host", "speaker-1", "Host: ", gold, "Host: Glad you are here"],
            ],
        )
        # Restyled as a user would in the browser source's Custom CSS: by variable, and by name.
        page.evaluate("""(() => { const s = document.createElement('style');
          s.textContent = ':root { --speaker-2: rgb(1, 2, 3); } .caption[data-speaker="Host"] .label { color: red; }';
          document.head.append(s); })()""")
        colours = "[...document.querySelectorAll('#captions .label')].map((e) => getComputedStyle(e).color)"
        assert page.evaluate(colours) == ["rgb(1, 2, 3)", "rgb(255, 0, 0)"]
        # A page opened later replays the recent captions with their speakers.
        page.navigate(f"{base}/overlay?lang=ja&clear=0")
        page.wait_for("document.documentElement.dataset.state === 'live'")
        wait_js(page, LABELS, [["Guest", "speaker-2", "Guest: ", blue, f"Guest: {SAID[2][2]}"]])
        # The dashboard names the speaker before each recent caption.
        page.navigate(f"{base}/")
        names = (
            "[...document.querySelectorAll('.lang[data-lang=en] li')].map((e) => [e.dataset.speaker, e.textContent])"
        )
        wait_js(
            page,
            names,
            [
                [None, "Welcome back everyone"],
                ["Guest", "Guest Thanks for having me"],
                ["Host", "Host Glad you are here"],
            ],
        )
    finally:
        d.stop()
