"""What each OBS source is sent over time: throttled live captions, bilingual pairs, clears (fake clock)."""

from __future__ import annotations

from typing import Any

from captioner.config import Config, parse
from captioner.presenter import PAIR_WAIT_S, Presenter

ENV = {"K": "k"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def config(**outputs: dict[str, Any]) -> Config:
    return parse(
        {
            "translator": {"api_key": "${K}", "targets": ["ja"], "transcribe_source": True},
            "layout": {"max_width": 20, "max_lines": 2, "min_display_s": 1.0, "clear_after_s": 5},
            "outputs": [{"obs_source": name, **spec} for name, spec in outputs.items()],
        },
        ENV,
    )


def presenter(cfg: Config) -> tuple[Presenter, Clock, list[tuple[str, str, float | None]]]:
    clock, sent = Clock(), []
    p = Presenter(cfg, lambda source, text, at: sent.append((source, text, at)), clock=clock)
    assert sent == [(o.obs_source, "", None) for o in cfg.outputs]  # every output starts empty
    sent.clear()
    return p, clock, sent


def test_finals_only_by_default_and_received_time_travels_with_the_text() -> None:
    p, clock, sent = presenter(config(JA={"language": "ja"}))
    p._wake.clear()
    p.caption("ja", "こんにちは", final=False)
    assert sent == []
    assert not p._wake.is_set()  # nothing shows it live: its timer task is not woken for it (#21)
    p.caption("ja", "こんにちは。", final=True, received_at=12.5)
    assert sent == [("JA", "こんにちは。", 12.5)]
    clock.now += 5.0
    p.tick()
    assert sent[-1] == ("JA", "", None)  # cleared after silence


def test_live_captions_are_throttled_and_the_final_replaces_them() -> None:
    p, clock, sent = presenter(config(JA={"language": "ja", "layout": {"live": True, "live_interval_s": 0.5}}))
    p.caption("ja", "今日は", final=False)
    clock.now += 0.125
    p.caption("ja", "今日はいい", final=False)  # too soon: held back
    clock.now += 0.125
    p.caption("ja", "今日はいい天気", final=False)  # replaces the held one
    assert [t for _, t, _ in sent] == ["今日は"]
    clock.now += 0.25
    p.tick()
    assert [t for _, t, _ in sent] == ["今日は", "今日はいい天気"]
    p.caption("ja", "今日はいい天気ですね。", final=True)
    clock.now += 1.0
    p.tick()
    # 20 columns = 10 characters; "。" may not start a line, so "ね" comes down with it
    assert [t for _, t, _ in sent] == ["今日は", "今日はいい天気", "今日はいい天気です\nね。"]


def test_a_bilingual_output_shows_each_translation_under_its_source() -> None:
    p, clock, sent = presenter(config(Both={"language": "ja", "with_source": True}, EN={"language": "source"}))
    p.caption("ja", "こんにちは。", final=True, item_id="t1", pair_id="s1")
    assert ("Both", "こんにちは。", None) not in sent  # waits for its source sentence
    p.caption("source", "Hello.", final=True, item_id="s1", pair_id="t1")
    assert sent[-2:] == [("Both", "Hello.\nこんにちは。", None), ("EN", "Hello.", None)]
    # the other order works too
    clock.now += 2.0
    p.caption("source", "Goodbye.", final=True, item_id="s2", pair_id="t2")
    p.caption("ja", "さようなら。", final=True, item_id="t2", pair_id="s2")
    assert sent[-1] == ("Both", "Hello.\nGoodbye.\nこんにちは。\nさようなら。", None)


def test_a_half_pair_is_shown_alone_after_waiting() -> None:
    p, clock, sent = presenter(config(Both={"language": "ja", "with_source": True}))
    p.caption("ja", "一人だけ。", final=True, item_id="t9", pair_id="s9")
    clock.now += PAIR_WAIT_S - 0.01
    p.tick()
    assert sent == []
    clock.now += 0.02
    p.tick()
    assert sent == [("Both", "一人だけ。", None)]


def test_clear_and_settle() -> None:
    p, _, sent = presenter(config(JA={"language": "ja"}))
    p.caption("ja", "one two three four five six seven eight nine ten eleven", final=True)
    assert sent[-1][1] == "one two three four\nfive six seven eight"
    p.settle()  # stopping: the last lines now, not after their scroll
    assert sent[-1][1] == "five six seven eight\nnine ten eleven"
    p.clear()
    assert sent[-1][1] == ""


def test_clear_one_output_leaves_the_others() -> None:
    p, _, sent = presenter(config(A={"language": "ja"}, B={"language": "ja"}))
    p.caption("ja", "こんにちは。", final=True)
    sent.clear()
    p.clear("A")
    assert sent == [("A", "", None)]
    p.caption("ja", "またね。", final=True)
    assert sent[-2:] == [("A", "またね。", None), ("B", "こんにちは。\nまたね。", None)]
    assert (p.shown("A"), p.shown("B"), p.shown("nope")) == ("またね。", "こんにちは。\nまたね。", "")
