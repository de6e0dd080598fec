"""The estimated bill against the budgets: prices billed tokens, keeps today's spend on disk, holds the audio."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import ledger
from .config import CostConfig
from .cost import Budget, estimate
from .status import Status
from .translation.interpreter import UsageDelta

log = logging.getLogger(__name__)


class Spending:
    """Spend per stream and per day; `hold(reason, held)` stops the audio while a budget is used up."""

    def __init__(
        self, cfg: CostConfig, status: Status, hold: Callable[[str, bool], None], *, demo: bool = False
    ) -> None:
        self.cfg = cfg
        self._prices = cfg.prices.model_dump()  # per usage report of every target: not dumped each time
        self.status = status
        self._hold = hold
        self.budget = Budget(cfg.budget_per_stream, cfg.budget_per_day)
        # A demo bills nothing: it neither shows nor changes what the real runs spent today.
        self._path = None if demo else Path(cfg.state_file).expanduser() if cfg.state_file else ledger.default_path()
        if self._path is not None and (saved := ledger.load(self._path)) is not None:
            self.budget.restore_day(*saved)
        self._saved = self.budget.day_spent
        self._held: str | None = None
        # Estimated spend since start by input name ("" = the single audio: input); the budgets hold the sum.
        self.by_input: dict[str, float] = {}
        self._was_streaming = False
        self.check()

    def configure(self, cfg: CostConfig) -> None:
        self.cfg = cfg
        self._prices = cfg.prices.model_dump()
        self.budget.per_stream, self.budget.per_day = cfg.budget_per_stream, cfg.budget_per_day
        self.check()

    def on_usage(self, target: str, usage: UsageDelta, input_name: str = "") -> None:
        """A session reported billed tokens: count them, price them, and check the budgets (every input's)."""
        m = self.status.metrics
        for kind, n in usage.tokens.as_dict().items():
            if n > 0:
                m.billed_tokens.labels(input_name, target, kind).inc(n)
        spent = estimate(usage.tokens, self._prices)
        self.by_input[input_name] = self.by_input.get(input_name, 0.0) + max(spent, 0.0)
        if spent > 0:
            m.cost_estimated.labels(input_name, target).inc(spent)
            self.budget.spend(spent)
        self.check()

    def on_streaming(self, streaming: bool) -> None:
        """OBS says whether it streams: a new stream starts a new per-stream budget."""
        if streaming and not self._was_streaming:
            self.budget.new_stream()
            self.check()
        self._was_streaming = streaming

    def check(self) -> None:
        """Hold the audio while a budget is used up; release it on a new period, a new stream, or a resume."""
        reached = self.budget.reached()
        m = self.status.metrics
        m.budget_spent.labels("stream").set(self.budget.stream_spent)
        m.budget_spent.labels("day").set(self.budget.day_spent)
        m.budget_paused.set(1 if reached else 0)
        if reached == self._held:
            return
        self._held = reached
        if reached:
            limit = self.budget.per_day if reached == "day" else self.budget.per_stream
            log.warning(
                "%s budget of %.2f %s reached: captioning paused (POST /control/budget/resume to go on)",
                reached,
                limit,
                self.cfg.currency,
            )
        else:
            log.info("budget allows captioning again")
        self._hold("budget", reached is not None)

    def resume(self) -> dict[str, Any]:
        """Operator request: go on past the reached budget until its period ends."""
        self.budget.resume()
        self.check()
        return self.as_dict()

    def save(self) -> None:
        if self._path is None or self.budget.day_spent == self._saved:
            return
        try:
            ledger.save(self._path, self.budget.day, self.budget.day_spent)
            self._saved = self.budget.day_spent
        except OSError as e:
            log.warning("cannot save today's spend to %s: %s", self._path, e)

    def as_dict(self) -> dict[str, Any]:
        by_input = {name: round(spent, 6) for name, spent in self.by_input.items() if name}
        return {"currency": self.cfg.currency, **self.budget.as_dict(), "by_input": by_input}


def say_extra_transcripts(billing: dict[str, dict[str, Any]], model: str) -> None:
    """Say at start which sessions pay for a source transcript nobody sees (each session's /status says it too)."""
    extra = [target for target, bill in billing.items() if bill["source_transcript"] == "billed, not shown"]
    if extra:
        log.info(
            "%s also bill%s the source transcript (as output text, not shown) because %s takes the source "
            "language only with it; translator.pin_source_language: one bills it once (the others then "
            "auto-detect the language)",
            ", ".join(extra),
            "s" if len(extra) == 1 else "",
            model,
        )
