"""Live control (POST /control/<action>): pause, clear, switch an output's language, hide/show, resume the budget."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .config import Config, with_output_language, with_source_language
from .errors import ConfigError
from .web.server import Control, ControlError

log = logging.getLogger(__name__)


class LiveControl:
    """The operator's actions, each given only the narrow callables it needs; each answers the new control state."""

    def __init__(
        self,
        config: Callable[[], Config],
        *,
        hold: Callable[[str, bool], None],
        clear: Callable[[str | None], None],
        refresh: Callable[[str], None],
        apply: Callable[[Config], Awaitable[None]],
        switch: Callable[[Config], Awaitable[None]],
        resume_budget: Callable[[], dict[str, Any]],
    ) -> None:
        self._config = config
        self._hold = hold
        self._clear = clear
        self._refresh = refresh
        self._apply = apply
        # Applies a config whose only change is an input's source language: its sessions switch at a pause.
        self._switch = switch
        self._resume_budget = resume_budget
        self.paused = False
        # Outputs whose OBS source shows nothing while captions keep flowing (the OBS text output reads this set).
        self.hidden: set[str] = set()

    def actions(self) -> dict[str, Control]:
        return {
            "pause": lambda body: self.set_paused(True),
            "resume": lambda body: self.set_paused(False),
            "clear": self.clear,
            "language": self.switch_language,
            "source_language": self.switch_source_language,
            "show": lambda body: self.set_visible(self._named(body), True),
            "hide": lambda body: self.set_visible(self._named(body), False),
            "budget/resume": lambda body: self._resume_budget(),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "paused": self.paused,
            "outputs": {
                o.obs_source: {"language": o.language, "visible": o.obs_source not in self.hidden}
                for o in self._config().obs_outputs
            },
            # What each input's speaker speaks now ("" = the single audio: input), as the last switch left it.
            "source_languages": {
                i.name: i.source_language or self._config().translator.source_language
                for i in self._config().input_list()
            },
        }

    def set_paused(self, paused: bool) -> dict[str, Any]:
        """Pause: no audio goes out (nothing is billed); what is on screen stays until it times out."""
        if paused != self.paused:
            log.info("captioning %s by the operator", "paused" if paused else "resumed")
        self.paused = paused
        self._hold("paused", paused)
        return self.as_dict()

    def clear(self, body: dict[str, Any]) -> dict[str, Any]:
        """Empty one output ({"output": name}), or every output and overlay when none is named."""
        name = self._named(body) if body.get("output") is not None else None
        self._clear(name)
        log.info("cleared %s by the operator", repr(name) if name else "every output")
        return self.as_dict()

    async def switch_language(self, body: dict[str, Any]) -> dict[str, Any]:
        """Show another language in one output; sessions start or stop as the new language set needs."""
        name = self._named(body)
        language = body.get("language")
        if not isinstance(language, str) or not language:
            raise ControlError('give the new language as {"output": ..., "language": "ko"}')
        try:
            new = with_output_language(self._config(), name, language)
        except ConfigError as e:
            raise ControlError(str(e)) from None
        log.info("output %r switched to %s by the operator (until the next reload)", name, language)
        await self._apply(new)
        return self.as_dict()

    async def switch_source_language(self, body: dict[str, Any]) -> dict[str, Any]:
        """What one input's speaker speaks ({"input": "Host", "language": "ja"}; input optional with one input).

        Only that input's sessions reconnect, at its next pause; the sentence in flight is still captioned.
        """
        name, language = body.get("input"), body.get("language")
        if not isinstance(language, str) or not language or not (name is None or isinstance(name, str)):
            raise ControlError('give the new source language as {"input": ..., "language": "ja"}')
        try:
            new = with_source_language(self._config(), name, language)
        except ConfigError as e:
            raise ControlError(str(e)) from None
        log.info("input %s now speaks %s, by the operator (until the next reload)", repr(name or ""), language)
        await self._switch(new)
        return self.as_dict()

    def set_visible(self, name: str, visible: bool) -> dict[str, Any]:
        """Hide an output (its OBS source shows nothing, captions keep flowing) or show it again."""
        if visible:
            self.hidden.discard(name)
        else:
            self.hidden.add(name)
        self._refresh(name)  # showing it again puts back at once what is laid out for it meanwhile
        return self.as_dict()

    def keep_outputs(self, cfg: Config) -> None:
        """After a reload: forget hidden outputs that no longer exist."""
        self.hidden &= {o.obs_source for o in cfg.obs_outputs}

    def _named(self, body: dict[str, Any]) -> str:
        """The output a request names ({"output": "<OBS source>"}), which must be one of the outputs."""
        name = body.get("output")
        names = [o.obs_source for o in self._config().obs_outputs]
        if not isinstance(name, str) or name not in names:
            raise ControlError(f'name the output as {{"output": ...}}, one of: {", ".join(names) or "none"}')
        return name
