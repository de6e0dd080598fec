"""Shared daemon state as /status shows it: link states, per-language captions, file outputs (metrics in metrics.py)."""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .metrics import Metrics
from .readout import summary
from .redaction import redact

# How many finals /status lists in recent_captions.
_RECENT_FINALS = 20


class LinkState(enum.StrEnum):
    """The life of one link to the outside."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    AUTH_FAILED = "auth_failed"
    FAILED = "failed"
    STOPPED = "stopped"
    DISABLED = "disabled"


@dataclass
class Link:
    """State of one link, as /status shows it."""

    name: str
    metrics: Metrics
    state: LinkState = LinkState.CONNECTING
    since: float = field(default_factory=time.time)
    # What else the part wants shown, e.g. a translator session's billing and the service's echo warnings.
    info: dict[str, Any] = field(default_factory=dict)
    _last_error: str | None = None

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @last_error.setter
    def last_error(self, text: str | None) -> None:
        # Every part writes what the outside said here; /status, the dashboard and STATUS= read it.
        self._last_error = None if text is None else redact(text)

    def set(self, state: LinkState, error: str | None = None) -> None:
        if state != self.state:
            self.since = time.time()
        self.state = state
        if error is not None:
            self.last_error = error
        self.metrics.link_state.labels(self.name).set(1 if state == LinkState.CONNECTED else 0)

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state.value, "last_error": self.last_error, "since": round(self.since, 3), **self.info}


@dataclass
class FileOutput:
    """One set of files written as captions come (transcripts), as /status shows it."""

    metrics: Metrics
    errors: int = 0
    last_error: str | None = None
    failing_since: float | None = None

    def failed(self, error: str) -> None:
        self.errors += 1
        self.last_error = redact(error)
        self.failing_since = self.failing_since or time.time()
        self.metrics.transcript_errors.inc()

    def as_dict(self) -> dict[str, Any]:
        since = None if self.failing_since is None else round(self.failing_since, 3)
        return {"ok": since is None, "errors": self.errors, "last_error": self.last_error, "failing_since": since}


@dataclass
class OutputLanguage:
    """Caption history of one language, as /status shows it."""

    last_final: str | None = None
    final_count: int = 0
    last_partial: str | None = None
    last_final_at: float | None = None
    # Who said the last final ("" = not known, or labels not shown yet); kept even when speakers.label hides labels.
    last_speaker: str = ""


class Status:
    """Registry of links and languages; the HTTP endpoint reads it, the parts write it."""

    def __init__(self, version: str) -> None:
        self.version = version
        # `captioner demo`: captions come from the built-in stand-in, not the service (the dashboard shows a banner).
        self.demo = False
        self.started = time.time()
        self.metrics = Metrics()
        self.links: dict[str, Link] = {}
        self.languages: dict[str, OutputLanguage] = {}
        # What each OBS text source shows now (after layout), by source name.
        self.screens: dict[str, str] = {}
        # File outputs by name ("transcripts", "recording_transcripts"): whether the disk takes them.
        self.files: dict[str, FileOutput] = {}
        # Why the last SIGHUP reload was refused; None when it applied.
        self.reload_error: str | None = None
        # The audio gate's state and counters, read when /status is asked (app.py sets it).
        self.audio_gate: Callable[[], dict[str, Any]] | None = None
        # Estimated spend and budgets (set by the daemon).
        self.cost: Callable[[], dict[str, Any]] | None = None
        # Translated voice playback per language (set by the daemon when voice_outputs are configured).
        self.voice: Callable[[], dict[str, Any]] | None = None
        # Visual context: screenshots sent and skipped (set by the daemon when vision is enabled).
        self.vision: Callable[[], dict[str, Any]] | None = None
        # YouTube caption and webhook outputs by name: counters, last answer, clock skew (set by the daemon).
        self.post_outputs: Callable[[], dict[str, Any]] | None = None
        # Live-control state (paused, per-output language and visibility), set by the daemon.
        self.control: Callable[[], dict[str, Any]] | None = None
        # Language codes the configured model translates to: what the "switch language" control accepts.
        self.languages_available: tuple[str, ...] = ()
        # What the capture has open: backend (pulse / portaudio), device, rate, channels; None until it opens.
        self.audio_source: dict[str, Any] | None = None
        # Each named input (inputs:): its device, language, link, gate, level, sessions and cost (set by the daemon).
        self.inputs: Callable[[], dict[str, Any]] | None = None
        # The last finals, oldest first, with the input they were heard on and their speaker label.
        self.recent: deque[dict[str, Any]] = deque(maxlen=_RECENT_FINALS)

    def link(self, name: str) -> Link:
        if name not in self.links:
            self.links[name] = Link(name, self.metrics)
            self.metrics.link_state.labels(name).set(0)
        return self.links[name]

    def file_output(self, name: str) -> FileOutput:
        return self.files.setdefault(name, FileOutput(self.metrics))

    def language(self, name: str) -> OutputLanguage:
        return self.languages.setdefault(name, OutputLanguage())

    def record_final(self, language: str, text: str, input_name: str = "", speaker: str = "") -> None:
        self.recent.append(
            {"language": language, "text": text, "input": input_name, "speaker": speaker, "at": round(time.time(), 3)}
        )
        out = self.language(language)
        out.last_final, out.last_final_at, out.last_speaker = text, time.time(), speaker
        out.final_count += 1
        self.metrics.captions_final.labels(language).inc()

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "demo": self.demo,
            "uptime_s": round(time.time() - self.started, 3),
            "links": {name: link.as_dict() for name, link in self.links.items()},
            "reload_error": self.reload_error,
            "audio_gate": self.audio_gate() if self.audio_gate is not None else None,
            "cost": self.cost() if self.cost is not None else None,
            "voice": self.voice() if self.voice is not None else None,
            "vision": self.vision() if self.vision is not None else None,
            # The last chunk's RMS level (the dashboard's meter) and latency as far as it is measured.
            "audio_level": round(self.metrics.audio_level.value, 4),
            "audio_source": self.audio_source,
            "inputs": self.inputs() if self.inputs is not None else {},
            "recent_captions": list(self.recent),
            "latency": {
                "final_to_screen": summary(*self.metrics.final_to_screen_seconds.totals.cumulative()),
                "capture_to_wire": summary(*self.metrics.capture_to_wire_seconds.totals.cumulative()),
            },
            "screens": dict(self.screens),
            "files": {name: f.as_dict() for name, f in self.files.items()},
            "post_outputs": self.post_outputs() if self.post_outputs is not None else None,
            "control": self.control() if self.control is not None else None,
            "languages_available": list(self.languages_available),
            "outputs": {
                lang: {
                    "last_final": out.last_final,
                    "last_speaker": out.last_speaker,
                    "final_count": out.final_count,
                    "last_partial": out.last_partial,
                }
                for lang, out in self.languages.items()
            },
        }
