"""Captions into OBS text sources, laid out and timed by the presenter, written over obs-websocket."""

from __future__ import annotations

from collections.abc import Callable

from ..config import Config
from ..obs import ObsSink
from ..presenter import Presenter
from ..status import Status
from ..translation.interpreter import Caption
from .base import CaptionSink


class ObsTextOutput(CaptionSink):
    name = "obs_text"

    def __init__(
        self,
        cfg: Config,
        obs: ObsSink,
        status: Status,
        hidden: set[str],
        label: Callable[[str], str] = lambda name: "",
    ) -> None:
        self.obs = obs
        self.status = status
        # Outputs the operator hid (shared with live control): they show "" while captions keep flowing.
        self.hidden = hidden
        # The speaker's label ("Host: ") goes before the text, so the layout wraps it with the words.
        self._label = label
        self.presenter = Presenter(cfg, self._show)

    def caption(self, caption: Caption) -> None:
        text = self._label(caption.speaker) + caption.text if caption.text else ""
        if not caption.final:
            self.presenter.caption(caption.language, text, final=False, input_name=caption.input)
            return
        self.presenter.caption(
            caption.language,
            text,
            final=True,
            received_at=caption.received_at or None,
            item_id=caption.item_id,
            pair_id=caption.pair_id,
            input_name=caption.input,
        )

    def clear(self, output: str | None = None) -> None:
        self.presenter.clear(output)

    def set_outputs(self, cfg: Config) -> None:
        self.presenter.set_outputs(cfg)

    def refresh(self, source: str) -> None:
        """Show again what the presenter has laid out for `source` (after it was hidden or shown)."""
        self._show(source, self.presenter.shown(source), None)

    async def run(self) -> None:
        await self.presenter.run()

    async def close(self) -> None:
        self.presenter.settle()  # the last captions reach OBS before the link closes

    def _show(self, source: str, text: str, received_at: float | None) -> None:
        if source in self.hidden:
            text, received_at = "", None
        self.status.screens[source] = text
        self.obs.set_text(source, text, received_at)
