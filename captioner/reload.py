"""What a new config changes (pure): which parts restart, which only take new settings, which stay as they are."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .config import Config, InputConfig, link_name
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
    # The input's source language (inputs[].source_language, else translator.source_language).
    source_language: str | None = None
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
    """(ask for text+audio, voice) for one target's session (config.service.session_voice).

    With inputs:, only the first input's sessions (see session_spec).
    """
    sv = session_voice(cfg, target)
    return sv.audio, sv.voice


def session_spec(cfg: Config, target: str, inp: InputConfig | None = None) -> SessionSpec:
    """One target's session of one input (the first input when none is given)."""
    tr = cfg.translator
    first = cfg.input_list()[0]
    # voice_outputs play the first input's voice: two voices in one player would talk over each other.
    primary = inp is None or inp.name == first.name
    audio_output, voice = session_audio(cfg, target) if primary else (False, tr.voice)
    clone = session_voice(cfg, target).clone if primary else None
    source = cfg.input_translator(inp or first).source_language
    return SessionSpec(
        # One session is enough to transcribe the source; more would show it twice.
        transcribes(cfg, target),
        # translator.pin_source_language: "one" tells only the first target's session the source language.
        tr.pin_source_language == "all" or target == tr.targets[0],
        audio_output,
        voice,
        tuple(sorted(tr.glossary.get(target, {}).items())),
        clone,
        source,
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


# A running session: (input name, "" for the single audio: input; target language).
SessionKey = tuple[str, str]


@dataclass(frozen=True)
class ReloadPlan:
    """The steps from one config to the next, in the order they are taken; each input's parts are its own."""

    stop_inputs: tuple[str, ...] = ()  # inputs gone: capture and sessions finished
    start_inputs: tuple[str, ...] = ()  # inputs new: capture and sessions started
    capture: tuple[str, ...] = ()  # inputs whose device, backend or chunking changed: the capture reopens
    gate: tuple[str, ...] = ()  # inputs whose gate settings changed
    voice: bool = False
    stop_sessions: tuple[SessionKey, ...] = ()  # finished and removed (gone, or started again with new settings)
    start_sessions: tuple[SessionKey, ...] = ()
    obs: Literal["restart", "outputs"] | None = None
    cost: bool = False
    vocabulary: bool = False
    transcripts: bool = False
    http: bool = False  # changes on restart only: a warning
    # Names and labels are read at every caption (speakers.SpeakerNames): nothing restarts, the log names it.
    speakers: bool = False

    def changed(self) -> list[str]:
        """The parts that change, as the log line names them."""
        names = [link_name("input", i) for i in (*self.stop_inputs, *self.start_inputs)]
        names += [link_name("audio", i) for i in self.capture] + [link_name("gate", i) for i in self.gate]
        names += ["voice"] if self.voice else []
        names += [link_name("translator", i, t) for i, t in (*self.stop_sessions, *self.start_sessions)]
        names += [self.obs] if self.obs == "outputs" else ["obs"] if self.obs else []
        names += [n for n, on in (("cost", self.cost), ("vocabulary", self.vocabulary)) if on]
        return names + [n for n, on in (("transcripts", self.transcripts), ("speakers", self.speakers)) if on]


def plan_reload(old: Config, new: Config, running: Mapping[SessionKey, SessionSpec], obs_running: bool) -> ReloadPlan:
    """The plan; `running`: the sessions now running, by (input, target), and what each was started with."""
    # Settings of one target (its glossary, whether it transcribes ...) or one input (its source language) only
    # restart that target's or that input's sessions.
    per_session = {
        "targets": (),
        "transcribe_source": False,
        "glossary": {},
        "pin_source_language": "all",
        "source_language": None,
    }
    same_service = new.translator.model_copy(update=per_session) == old.translator.model_copy(update=per_session)
    old_inputs = {i.name: i for i in old.input_list()}
    new_inputs = {i.name: i for i in new.input_list()}
    kept = [name for name in new_inputs if name in old_inputs]
    stop = tuple(
        (name, t)
        for (name, t), spec in running.items()
        if name in new_inputs
        and not (same_service and t in new.translator.targets and spec == session_spec(new, t, new_inputs[name]))
    )
    start = tuple(
        (name, t) for name in kept for t in new.translator.targets if (name, t) not in running or (name, t) in stop
    )
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
        stop_inputs=tuple(name for name in old_inputs if name not in new_inputs),
        start_inputs=tuple(name for name in new_inputs if name not in old_inputs),
        capture=tuple(n for n in kept if new.input_audio(new_inputs[n]) != old.input_audio(old_inputs[n])),
        # The turn plan follows the model and live outputs too: the feed must end sentences as the sessions expect.
        gate=tuple(
            n
            for n in kept
            if new.input_gate(new_inputs[n]) != old.input_gate(old_inputs[n])
            or turns.plan_for(new) != turns.plan_for(old)
        ),
        voice=new.voice_outputs != old.voice_outputs,
        stop_sessions=stop,
        start_sessions=start,
        obs=obs,
        cost=new.cost != old.cost,
        vocabulary=new.vocabulary != old.vocabulary,
        transcripts=new.transcripts != old.transcripts,
        http=new.http != old.http,
        speakers=new.speakers != old.speakers,
    )
