"""Wires inputs -> sessions -> router -> outputs, runs them, applies reloads and stops them in order."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from . import __version__, systemd
from .config import Config, load
from .control import LiveControl
from .errors import describe
from .inputs.audio import AudioCapture
from .inputs.feed import AudioFeed
from .inputs.gate import SpeechGate
from .listeners import Listeners
from .obs_parts import ObsParts, cancel
from .obs_state import ObsState
from .outputs.base import CaptionRouter, SpokenAt
from .outputs.files import RecordingFollower, TranscriptFiles, open_transcripts
from .outputs.log import StatusOutput
from .outputs.overlay import OverlayOutput
from .outputs.posting import PostingOutputs
from .outputs.webhook import WebhookOutput
from .outputs.youtube import YoutubeOutput
from .reconnect import ConnectBudget
from .reload import SessionSpec, load_again, plan_reload
from .speakers import SpeakerNames
from .spending import Spending, say_extra_transcripts
from .status import Status
from .translation.interpreter import Caption
from .translation.session import TranslatorSession
from .vocabulary import Vocabulary
from .voice import VoiceOutputs
from .web import server as http_api
from .web.overlay import OverlayHub

log = logging.getLogger(__name__)
_STATUS_EVERY_S = 5.0
# On stop, translated voice still queued plays this long at most; the rest is dropped (and counted).
_VOICE_DRAIN_S = 3.0
# The order a caption reaches the outputs: on screen first (what viewers wait for), files last.
_OUTPUT_ORDER = ("overlay", "status", "obs_text", "stream_captions", "transcripts", "recording_transcripts")


class Daemon:
    """One running captioner: each input's capture feeding its translator sessions, all feeding the outputs."""

    def __init__(
        self,
        cfg: Config,
        capture_factory: Callable[..., AudioCapture] = AudioCapture,
        *,
        loader: Callable[[Path | None], Config] = load,
        demo: bool = False,
    ) -> None:
        self.cfg = cfg
        # How a reload reads the file: demo mode's loader keeps it on the stand-in.
        self._loader = loader
        self.status = Status(__version__)
        self.status.demo = demo
        self.budget = ConnectBudget()
        self._capture_factory = capture_factory
        # One Listener per input (capture, gate, sessions), by input name ("" = the single audio: input).
        self.listeners = Listeners(
            self.status, capture_factory=capture_factory, session_factory=self._new_session, on_caption=self.on_caption
        )
        for inp in cfg.input_list():
            self.listeners.add(cfg, inp)
        self.spending = Spending(cfg.cost, self.status, self.listeners.hold, demo=demo)
        self.status.cost = None if demo else self.spending.as_dict
        self.voice = VoiceOutputs(cfg.voice_outputs, self.status)
        self.status.voice = self.voice.as_dict
        self.vocabulary = Vocabulary(cfg.vocabulary)
        self.speakers = SpeakerNames(lambda: self.cfg.speakers)
        self.control = LiveControl(
            lambda: self.cfg,
            hold=self.listeners.hold,
            clear=lambda name: self.router.clear(name),
            refresh=lambda source: self.obs.refresh(source),
            apply=self.apply,
            switch=lambda new: self.apply(new, at_pause=True),
            resume_budget=self.spending.resume,
        )
        self.status.control = self.control.as_dict
        # The outputs, in the order a caption reaches them: on screen first, files last.
        self.hub = OverlayHub()
        self.hub.set_languages(cfg.languages())
        self.router = CaptionRouter(_OUTPUT_ORDER)
        self.router.set("overlay", OverlayOutput(self.hub, lambda: self.cfg.languages(), self.speakers))
        self.router.set("status", StatusOutput(self.status))
        self.transcripts: TranscriptFiles | None = None
        self.posting = PostingOutputs(self.status, self.router.set, (YoutubeOutput, WebhookOutput))
        self.posting.configure(cfg)
        self.recording = RecordingFollower(lambda: self.cfg, self.status, self.router.set, self.speakers.prefix)
        self.obs = ObsParts(
            self.status,
            self.router.set,
            on_recording=self.recording.follow,
            on_state=self.on_obs_state,
            hidden=self.control.hidden,
            sessions=self.listeners.sessions,
            gates=self.listeners.gates,  # screenshots go out while someone speaks on any input
            label=self.speakers.prefix,
        )
        self.status.inputs = lambda: self.listeners.as_dict(self.spending.by_input)
        self.http_port: int | None = None
        self._spoken = SpokenAt()
        self._applying = asyncio.Lock()
        self.status.languages_available = tuple(sorted(cfg.translator.dialect.languages))
        for lang in cfg.languages():
            self.status.language(lang)

    # ---- parts ------------------------------------------------------------------------------------
    # The first input's parts, under the names they had before `inputs:` (tests and tools read them).
    @property
    def feed(self) -> AudioFeed:
        return self.listeners.primary.feed

    @property
    def gate(self) -> SpeechGate:
        return self.listeners.primary.feed.gate

    @property
    def capture(self) -> AudioCapture:
        return self.listeners.primary.capture

    @property
    def sessions(self) -> dict[str, TranslatorSession]:
        return self.listeners.primary.sessions

    def _new_session(
        self, cfg: Config, input_name: str, target: str, spec: SessionSpec, on_caption: Callable[[Caption], None]
    ) -> TranslatorSession:
        return TranslatorSession(
            cfg.translator,
            target,
            status=self.status,
            on_caption=on_caption,
            budget=self.budget,
            chunk_ms=cfg.audio.chunk_ms,
            on_usage=lambda target, usage: self.spending.on_usage(target, usage, input_name),
            # Through self.voice at call time: a reload replaces the players, not the sessions.
            on_audio=(lambda target, event: self.voice.on_audio(target, event)) if spec.audio_output else None,
            input_name=input_name,
            **spec.options(),
        )

    def _open_transcripts(self, cfg: Config) -> None:
        self.transcripts = open_transcripts(cfg, self.status, self.speakers.prefix)
        self.router.set("transcripts", self.transcripts)

    def on_obs_state(self, state: ObsState) -> None:
        """OBS changed what it is doing: a new stream starts a new per-stream budget; the gate follows it."""
        self.spending.on_streaming(state.streaming)
        self.listeners.follow_obs(state)

    # ---- captions -----------------------------------------------------------------------------------
    def on_caption(self, caption: Caption) -> None:
        """A session's caption: vocabulary applied, stamped with when its words began, its speaker named, then out."""
        if self.vocabulary.active:
            caption = dataclasses.replace(caption, text=self.vocabulary.apply(caption.language, caption.text))
        self.router.caption(self.speakers.name(self._spoken.stamp(caption)))

    # ---- lifecycle ----------------------------------------------------------------------------------
    async def run(
        self, stop: asyncio.Event, reload: asyncio.Event | None = None, config_path: Path | None = None
    ) -> None:
        """Run until `stop` is set (reloading on `reload`), then shut down in order."""
        runner: web.AppRunner | None = None
        if self.cfg.http.enabled:
            runner, self.http_port = await http_api.start(
                self.status,
                self.cfg.http.host,
                self.cfg.http.port,
                self.hub,
                controls=self.control.actions(),
                token=self.cfg.http.token.get_secret_value(),
                settings=self.cfg.http,
            )
            log.info("HTTP on http://%s:%d/status", self.cfg.http.host, self.http_port)
        self._open_transcripts(self.cfg)
        self.listeners.start(self.cfg)
        say_extra_transcripts({t: s.billing() for t, s in self.sessions.items()}, self.cfg.translator.model)
        self.voice.start()
        self.obs.start(self.cfg)
        systemd.notify("READY=1\nSTATUS=running")
        tr = self.cfg.translator
        log.info("captioner %s running: %s -> %s", __version__, tr.source_language or "auto", ", ".join(tr.targets))
        heartbeat = asyncio.create_task(systemd.heartbeat(self.status, self._tick, _STATUS_EVERY_S), name="heartbeat")
        reload = reload or asyncio.Event()
        while not stop.is_set():
            waiters = {asyncio.create_task(stop.wait()), asyncio.create_task(reload.wait())}
            _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in pending:
                w.cancel()
            if reload.is_set() and not stop.is_set():
                reload.clear()
                await self.reload_from(config_path)
        log.info("stopping")
        systemd.notify("STOPPING=1")
        await cancel(heartbeat)
        # 1. no new audio; 2. sessions send what they have and wait for their last captions;
        # 3. the outputs get those captions; 4. HTTP last, so /status answers during the stop.
        await self.listeners.stop_capture()
        await self.listeners.finish()
        await self.voice.stop(_VOICE_DRAIN_S)  # the last utterance may still be playing
        await self.obs.stop()
        await self.router.close()
        self.spending.save()
        if runner is not None:
            await runner.cleanup()
        log.info("stopped")

    async def reload_from(self, path: Path | None) -> None:
        """SIGHUP: load the file again and apply it; whatever fails keeps the daemon and shows in reload_error."""
        new = await load_again(self._loader, path, lambda why: setattr(self.status, "reload_error", why))
        if new is None:
            return
        try:
            await self.apply(new)
        except Exception as e:  # the parts applied so far keep running; the rest stay as they were
            log.exception("reload failed while applying the new config")
            self.status.reload_error = f"{path}: applying failed: {describe(e)}"
            return
        self.status.reload_error = None

    async def apply(self, new: Config, *, at_pause: bool = False) -> None:
        """Move to `new`, restarting only the parts whose settings changed; one change at a time.

        at_pause (a live source-language switch): an input's sessions are replaced at its next pause, new before old.
        """
        async with self._applying:  # a reload and a language switch must not interleave their restarts
            await self._apply(new, at_pause)

    async def _apply(self, new: Config, at_pause: bool) -> None:
        plan = plan_reload(self.cfg, new, self.listeners.running(), self.obs.running)
        self.cfg = new
        await self.listeners.apply(new, plan, self.obs.state, at_pause)
        if plan.voice:
            await self.voice.stop(0)
            self.voice = VoiceOutputs(new.voice_outputs, self.status)
            self.status.voice = self.voice.as_dict
            self.voice.start()
        if plan.obs == "restart":
            await self.obs.stop()
            self.obs.start(new)
        elif plan.obs == "outputs":
            self.obs.set_outputs(new)
        self.hub.set_languages(new.languages())
        self.posting.configure(new)
        if plan.cost:
            self.spending.configure(new.cost)
        for source in set(self.status.screens) - {o.obs_source for o in new.obs_outputs}:
            del self.status.screens[source]
        self.control.keep_outputs(new)
        self.status.languages_available = tuple(sorted(new.translator.dialect.languages))
        if plan.vocabulary:
            self.vocabulary = Vocabulary(new.vocabulary)
        for lang in new.languages():
            self.status.language(lang)
            if self.transcripts is not None:
                self.transcripts.add_language(lang)
        if plan.transcripts:
            if self.transcripts is not None:
                await self.transcripts.close()
            self._open_transcripts(new)
        if plan.http:
            log.warning("http settings change on restart only")
        log.info("config reloaded; changed: %s", ", ".join(plan.changed()) or "nothing")

    def _tick(self) -> None:
        """Every few seconds, with the systemd heartbeat."""
        self.spending.check()  # a new day lifts the day's budget
        self.spending.save()
        for files in (self.transcripts, self.recording.files):
            if files is not None:
                files.retry()  # the disk may have room again
