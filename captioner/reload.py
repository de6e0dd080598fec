"""What a new config changes (pure): which parts restart, which only take new settings, which stay as they are."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .config import Config
from .config.service import session_voice
from .errors import ConfigError, describe
from .inputs import turns

log = logging.getLogger(__name__)


async def load_again(
    loader: Callable[[Path | None], Config], path: Path | None, refused: Callable[[str], None]
) -> Config | None:
    """SIGHUP: the file read again, or None: the running config stays, and `refused` gets why (reload_error)."""
    try:
        return await asyncio.to_thread(loader, path)
    except ConfigError as e:
        log.error("reload rejected, keeping the running config: %s", e)
        refused(str(e))
    except Exception as e:
        log.exception("reload failed, keeping the running config")
        refused(f"{path}: {describe(e)}")
    return None


@dataclass(frozen=True)
class SessionSpec:
    """What a translator session is started with, beyond the service settings all sessions share."""

    transcribe_source: bool
    pin_source: bool
    audio_output: bool
    voice: str | None
    glossary: tuple[tuple[str, str], ...]
    clone: str | None = None  # voice_clone_options.frequency, or None
    # gate.turns resolved for the model: the session asks for manual turns (a change restarts it).
    manual_turns: bool = False

    def options(self) -> dict[str, Any]:
        """The TranslatorSession keyword arguments this spec stands for."""
        return {
            "transcribe_source": self.transcribe_source,
            "pin_source": self.pin_source,
            "audio_output": self.audio_output,
            "voice": self.voice,
            "clone": self.clone,
            "manual_turns": self.manual_turns,
        }


def session_audio(cfg: Config, target: str) -> tuple[bool, str | None]:
    """(ask for text+audio, voice) for one target's session (config.service.session_voice)."""
    sv = session_voice(cfg, target)
    return sv.audio, sv.voice


def session_spec(cfg: Config, target: str) -> SessionSpec:
    tr = cfg.translator
    audio_output, voice = session_audio(cfg, target)
    return SessionSpec(
        # One session is enough to transcribe the source; more would show it twice.
        transcribes(cfg, target),
        # translator.pin_source_language: "one" tells only the first target's session the source language.
        tr.pin_source_language == "all" or target == tr.targets[0],
        audio_output,
        voice,
        tuple(sorted(tr.glossary.get(target, {}).items())),
        session_voice(cfg, target).clone,
        turns.plan_for(cfg).client,
    )


def transcribes(cfg: Config, target: str) -> bool:
    return cfg.translator.transcribe_source and target == cfg.translator.targets[0]


def wants_obs(cfg: Config) -> bool:
    """Whether anything needs OBS: text outputs, stream captions, recording transcripts, gating, screenshots."""
    t, g = cfg.transcripts, cfg.gate
    follows = t.enabled and t.follow_recording
    gated = bool(g.obs_outputs or g.obs_unmuted or g.obs_scenes)
    wanted = cfg.obs_outputs or cfg.stream_captions.enabled or follows or gated or cfg.vision.enabled
    return cfg.obs.enabled and bool(wanted)


@dataclass(frozen=True)
class ReloadPlan:
    """The steps from one config to the next, in the order they are taken."""

    audio: bool = False
    gate: bool = False
    voice: bool = False
    stop_targets: tuple[str, ...] = ()  # finished and removed (gone, or started again with new settings)
    start_targets: tuple[str, ...] = ()
    obs: Literal["restart", "outputs"] | None = None
    cost: bool = False
    vocabulary: bool = False
    transcripts: bool = False
    http: bool = False  # changes on restart only: a warning
    # Names and labels are read at every caption (speakers.SpeakerNames): nothing restarts, the log names it.
    speakers: bool = False

    def changed(self) -> list[str]:
        """The parts that change, as the log line names them."""
        names = [n for n, on in (("audio", self.audio), ("gate", self.gate), ("voice", self.voice)) if on]
        names += [f"translator:{t}" for t in (*self.stop_targets, *self.start_targets)]
        names += [self.obs] if self.obs == "outputs" else ["obs"] if self.obs else []
        names += [n for n, on in (("cost", self.cost), ("vocabulary", self.vocabulary)) if on]
        return names + [n for n, on in (("transcripts", self.transcripts), ("speakers", self.speakers)) if on]


def plan_reload(old: Config, new: Config, running: Mapping[str, SessionSpec], obs_running: bool) -> ReloadPlan:
    """The plan; `running`: the sessions now running and what each was started with."""
    # Settings of one target (its glossary, whether it transcribes ...) only restart that target's session.
    per_target = {"targets": (), "transcribe_source": False, "glossary": {}, "pin_source_language": "all"}
    same_service = new.translator.model_copy(update=per_target) == old.translator.model_copy(update=per_target)
    stop = tuple(
        t
        for t, spec in running.items()
        if not (same_service and t in new.translator.targets and spec == session_spec(new, t))
    )
    start = tuple(t for t in new.translator.targets if t not in running or t in stop)
    follows = (new.transcripts.enabled and new.transcripts.follow_recording) != (
        old.transcripts.enabled and old.transcripts.follow_recording
    )
    obs: Literal["restart", "outputs"] | None = None
    if (
        new.obs != old.obs
        or obs_running != wants_obs(new)
        or follows
        or new.stream_captions != old.stream_captions
        or new.gate.obs_unmuted != old.gate.obs_unmuted
        or new.vision != old.vision
    ):
        obs = "restart"
    elif (new.obs_outputs != old.obs_outputs or new.layout != old.layout) and obs_running:
        obs = "outputs"
    return ReloadPlan(
        audio=new.audio != old.audio,
        # The turn plan follows the model and live outputs too: the feed must end sentences as the sessions expect.
        gate=new.gate != old.gate or turns.plan_for(new) != turns.plan_for(old),
        voice=new.voice_outputs != old.voice_outputs,
        stop_targets=stop,
        start_targets=start,
        obs=obs,
        cost=new.cost != old.cost,
        vocabulary=new.vocabulary != old.vocabulary,
        transcripts=new.transcripts != old.transcripts,
        http=new.http != old.http,
        speakers=new.speakers != old.speakers,
    )
