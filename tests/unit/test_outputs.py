"""The output interface: the router's fixed order, a failing output that costs the others nothing, spoken_at."""

from __future__ import annotations

import logging

import pytest

from captioner.outputs.base import CaptionRouter, CaptionSink, SpokenAt
from captioner.translation.interpreter import Caption


class Recorder(CaptionSink):
    def __init__(self, name: str, seen: list[tuple[str, str]], fail: bool = False) -> None:
        self.name, self.seen, self.fail = name, seen, fail
        self.cleared: list[str | None] = []
        self.closed = False

    def caption(self, caption: Caption) -> None:
        if self.fail:
            raise RuntimeError("broken output")
        self.seen.append((self.name, caption.text))

    def clear(self, output: str | None = None) -> None:
        self.cleared.append(output)

    async def close(self) -> None:
        self.closed = True
        if self.fail:
            raise OSError("disk gone")


def test_outputs_keep_their_order_whenever_they_are_added_and_a_replacement_keeps_its_place() -> None:
    seen: list[tuple[str, str]] = []
    router = CaptionRouter(("screen", "stream", "files"))
    router.set("files", Recorder("files", seen))
    router.set("webhook", Recorder("webhook", seen))  # not in the order: after the known ones
    router.set("screen", Recorder("screen", seen))
    router.set("stream", Recorder("stream", seen))
    router.set("screen", Recorder("screen2", seen))  # OBS restarted: the new one takes the old one's place
    router.caption(Caption("ja", "i1", "一", True))
    assert seen == [("screen2", "一"), ("stream", "一"), ("files", "一"), ("webhook", "一")]
    router.set("stream", None)
    seen.clear()
    router.caption(Caption("ja", "i2", "二", True))
    assert [name for name, _ in seen] == ["screen2", "files", "webhook"]


async def test_a_failing_output_costs_the_others_nothing_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, str]] = []
    broken, files = Recorder("broken", seen, fail=True), Recorder("files", seen)
    router = CaptionRouter(("broken", "files"))
    router.set("broken", broken)
    router.set("files", files)
    with caplog.at_level(logging.DEBUG, "captioner.outputs.base"):
        for n in range(3):
            router.caption(Caption("ja", f"i{n}", f"caption {n}", True))
    assert seen == [("files", f"caption {n}") for n in range(3)]
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    router.clear("JA")
    assert broken.cleared == ["JA"] and files.cleared == ["JA"]
    await router.close()  # the broken output's close fails; the files still close
    assert broken.closed and files.closed


def test_a_final_is_stamped_with_when_its_first_partial_came(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("captioner.outputs.base.time.time", lambda: now[0])
    spoken = SpokenAt()
    assert spoken.stamp(Caption("ja", "i1", "こん", False)).spoken_at == 0.0
    now[0] = 102.5
    spoken.stamp(Caption("ja", "i1", "こんにち", False))
    assert spoken.stamp(Caption("ja", "i1", "こんにちは", True)).spoken_at == 100.0
    # a final without partials starts when it came; another language's item of the same id is its own
    assert spoken.stamp(Caption("source", "i1", "hello", True)).spoken_at == 102.5
