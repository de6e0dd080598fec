"""Wires capture, translator sessions, OBS and HTTP; supervises them; reloads; ordered shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from . import __version__, ledger
from . import http as http_api
from .audio import AudioCapture
from .config import SOURCE, Config, load, with_output_language
from .cost import Budget, estimate
from .errors import ConfigError
from .gate import BYTES_PER_S, GateChunk, GateState, SpeechGate, obs_holds
from .obs import ObsSink, Recording
from .obs_state import ObsState
from .overlay import OverlayHub
from .presenter import Presenter, StreamCaptionFeed
from .status import LinkState, Status
from .transcripts import TranscriptWriter
from .translation.interpreter import Caption, UsageDelta
from .translation.reconnect import ConnectBudget
from .translation.session import TranslatorSession
from .vision import VisionSampler
from .vocabulary import Vocabulary
from .voice import VoiceOutputs, session_audio

log = logging.getLogger(__name__)
# The stop waits translator.finish_timeout_s for the last utterance; the rest (voice drain, OBS, files, HTTP)
# needs a few seconds more. The unit files' TimeoutStopSec must exceed the sum for the default.
_SHUTDOWN_MARGIN_S = 10.0
_STATUS_EVERY_S = 5.0
# On stop, translated voice still queued plays this long at most; the rest is dropped (and counted).
_VOICE_DRAIN_S = 3.0
# A final caption's text in the INFO log is cut after this many characters (files and OBS get all of it).
_LOGGED_CAPTION_CHARS = 200


class Daemon:
    """One running captioner: a capture feeding N translator sessions feeding OBS text sources."""

    def __init__(
        self,
        cfg: Config,
        capture_factory: Callable[..., AudioCapture] = AudioCapture,
        *,
        loader: Callable[[Path | None], Config] = load,
        demo: bool = False,
    ) -> None:
        self.cfg = cfg
        self.demo = demo
        # How a reload reads the file: demo mode's loader keeps it on the stand-in.
        self._loader = loader
        self.status = Status(__version__)
        self.status.demo = demo
        self.budget = ConnectBudget()
        self._capture_factory = capture_factory
        self.sessions: dict[str, TranslatorSession] = {}
        self._session_tasks: dict[str, asyncio.Task[None]] = {}
        self.obs: ObsSink | None = None
        self._obs_task: asyncio.Task[None] | None = None
        self.presenter: Presenter | None = None
        self.stream_feed: StreamCaptionFeed | None = None
        self._show_tasks: list[asyncio.Task[None]] = []
        self.recording_transcripts: TranscriptWriter | None = None
        self.hub = OverlayHub()
        self.hub.set_languages(cfg.languages())
        self.vocabulary = Vocabulary(cfg.vocabulary)
        # One gate for every session: they share the capture, so whether it is speech is decided once.
        self.gate = SpeechGate(cfg.gate)
        self.status.audio_gate = self.gate.as_dict
        self._open_spend(cfg)
        self.status.cost = None if demo else self._cost_status
        self.voice = VoiceOutputs(cfg.voice_outputs, self.status)
        self.status.voice = self.voice.as_dict
        self._apply_obs_holds(ObsState())  # until OBS says otherwise, it is not streaming
        self.capture = self._new_capture(cfg)
        self._capture_task: asyncio.Task[None] | None = None
        self.http_port: int | None = None
        self.transcripts: TranscriptWriter | None = None
        # When each caption item was first seen: its cue starts when the words started, not when they ended.
        self._first_seen: dict[tuple[str, str], float] = {}
        # Live control: captioning paused by the operator; outputs hidden (they show "" until shown again).
        self.paused = False
        self.hidden: set[str] = set()
        self._applying = asyncio.Lock()
        self.status.control = self._control_status
        self.status.languages_available = tuple(sorted(cfg.translator.dialect.languages))
        for lang in cfg.languages():
            self.status.language(lang)

    # ---- parts ------------------------------------------------------------------------------------
    def _new_capture(self, cfg: Config) -> AudioCapture:
        a = cfg.audio
        return self._capture_factory(
            a.device, a.chunk_ms, a.queue_chunks, self.on_chunk, self.status, backend=a.backend
        )

    def _new_session(self, cfg: Config, target: str) -> TranslatorSession:
        tr = cfg.translator
        audio_output, voice = session_audio(cfg, target)
        return TranslatorSession(
            tr,
            target,
            transcribe_source=_transcribes(cfg, target),
            status=self.status,
            on_caption=self.on_caption,
            budget=self.budget,
            chunk_ms=cfg.audio.chunk_ms,
            on_usage=self.on_usage,
            audio_output=audio_output,
            voice=voice,
            # Through self.voice at call time: a reload replaces the players, not the sessions.
            on_audio=lambda target, event: self.voice.on_audio(target, event),
            pin_source=_pins_source(cfg, target),
        )

    def _say_billing(self) -> None:
        """Say at start which sessions pay for a source transcript nobody sees (also in /status, per session)."""
        extra = [t for t, s in self.sessions.items() if s.billing()["source_transcript"] == "billed, not shown"]
        if extra:
            log.info(
                "%s also bill%s the source transcript (as output text, not shown) because %s takes the source "
                "language only with it; translator.pin_source_language: one bills it once (the others then "
                "auto-detect the language)",
                ", ".join(extra),
                "s" if len(extra) == 1 else "",
                self.cfg.translator.model,
            )

    def _start_session(self, session: TranslatorSession) -> None:
        self.sessions[session.target] = session
        self._session_tasks[session.target] = asyncio.create_task(session.run(), name=f"translator:{session.target}")

    async def _stop_session(self, target: str) -> None:
        session = self.sessions.pop(target)
        await session.finish()
        await _cancel(self._session_tasks.pop(target))

    def _start_obs(self, cfg: Config) -> None:
        sc = cfg.stream_captions
        follow = cfg.transcripts.enabled and cfg.transcripts.follow_recording
        self.status.vision = None
        if not _wants_obs(cfg):
            self.obs = None
            self.status.link("obs").set(LinkState.DISABLED)
            return
        obs = self.obs = ObsSink(
            cfg.obs,
            [o.obs_source for o in cfg.outputs],
            self.status,
            on_recording=self.on_recording if follow else None,
            on_state=self.on_obs_state,
            watch_inputs=cfg.gate.obs_unmuted,
        )
        self._obs_task = asyncio.create_task(obs.run(), name="obs")
        self.presenter = Presenter(cfg, self._show)
        self._show_tasks = [asyncio.create_task(self.presenter.run(), name="presenter")]
        if sc.enabled:
            skipped = self.status.metrics.stream_captions.labels("skipped")
            self.stream_feed = StreamCaptionFeed(sc.rows, sc.min_interval_s, obs.send_stream_caption, skipped.inc)
            self._show_tasks.append(asyncio.create_task(self.stream_feed.run(), name="stream-captions"))
        if cfg.vision.enabled:
            vision = VisionSampler(cfg.vision, obs, self.sessions.values, self.gate, self.status)
            self.status.vision = vision.as_dict
            self._show_tasks.append(asyncio.create_task(vision.run(), name="vision"))

    async def _stop_obs(self) -> None:
        for task in self._show_tasks:
            await _cancel(task)
        if self.obs is not None and self._obs_task is not None:
            await _cancel(self._obs_task)
            await self.obs.close()
        self.obs, self._obs_task, self.presenter, self.stream_feed, self._show_tasks = None, None, None, None, []
        self.on_recording(Recording(False, None, time.time()))

    def _open_transcripts(self, cfg: Config) -> None:
        if self.transcripts is not None:
            self._file_output("transcripts", self.transcripts.close)
            self.transcripts = None
        t = cfg.transcripts
        if t.enabled:
            try:
                self.transcripts = TranscriptWriter(Path(t.folder), cfg.languages(), t.formats)
                log.info("writing transcripts to %s", self.transcripts.folder)
            except OSError as e:
                log.error("cannot write transcripts to %s: %s", t.folder, e)
                self.status.file_output("transcripts").failed(str(e))

    def _writers(self) -> list[tuple[str, TranscriptWriter]]:
        pairs = (("transcripts", self.transcripts), ("recording_transcripts", self.recording_transcripts))
        return [(name, writer) for name, writer in pairs if writer is not None]

    def _file_output(self, name: str, action: Callable[[], None]) -> None:
        """A transcript file operation; a failure (a full disk) is counted, shown in /status and retried, never raised.

        What could not be written waits in the writer and goes out with the next caption or heartbeat; nothing here
        may stop another output, a reload or the shutdown.
        """
        out = self.status.file_output(name)
        try:
            action()
        except OSError as e:
            (log.error if out.failing_since is None else log.debug)("%s: cannot write: %s; will retry", name, e)
            out.failed(str(e))
            return
        if out.failing_since is not None:
            log.info("%s: written again", name)
            out.failing_since = None

    # ---- data flow ----------------------------------------------------------------------------------
    def on_chunk(self, chunk: bytes, captured_at: float) -> None:
        m = self.status.metrics
        before = self.gate.state
        out = self.gate.feed(chunk, None, captured_at)
        level = self.gate.last_level  # the gate's analysis measures it anyway
        seconds = len(chunk) / BYTES_PER_S
        m.audio_captured_seconds.inc(seconds)
        for reason in self.gate.held_by:
            m.audio_held_seconds.labels(reason).inc(seconds)
        self._gate_moved(before)
        self._send_audio(out)
        m.audio_level.set(level)

    def _send_audio(self, chunks: list[GateChunk]) -> None:
        for session in self.sessions.values():
            if not chunks:
                session.feed_gap()  # nothing in flight: a pause, as far as rotation is concerned
            for c in chunks:
                session.feed(c.pcm, c.captured_at, c.level)

    # ---- cost ---------------------------------------------------------------------------------------
    def _open_spend(self, cfg: Config) -> None:
        c = cfg.cost
        self.spend = Budget(c.budget_per_stream, c.budget_per_day)
        # A demo bills nothing: it neither shows nor changes what the real runs spent today.
        self._spend_path = (
            None if self.demo else Path(c.state_file).expanduser() if c.state_file else ledger.default_path()
        )
        if self._spend_path is not None and (saved := ledger.load(self._spend_path)) is not None:
            self.spend.restore_day(*saved)
        self._spend_saved = self.spend.day_spent
        self._budget_held: str | None = None
        self._was_streaming = False
        self._check_budget()

    def on_usage(self, target: str, usage: UsageDelta) -> None:
        """A session reported billed tokens: count them, price them, and check the budgets."""
        m = self.status.metrics
        for kind, n in usage.tokens.as_dict().items():
            if n > 0:
                m.billed_tokens.labels(target, kind).inc(n)
        spent = estimate(usage.tokens, self.cfg.cost.prices.model_dump())
        if spent > 0:
            m.cost_estimated.labels(target).inc(spent)
            self.spend.spend(spent)
        self._check_budget()

    def _check_budget(self) -> None:
        """Hold the audio while a budget is used up; release it on a new period, a new stream, or a resume."""
        reached = self.spend.reached()
        m = self.status.metrics
        m.budget_spent.labels("stream").set(self.spend.stream_spent)
        m.budget_spent.labels("day").set(self.spend.day_spent)
        m.budget_paused.set(1 if reached else 0)
        if reached == self._budget_held:
            return
        self._budget_held = reached
        if reached:
            limit = self.spend.per_day if reached == "day" else self.spend.per_stream
            log.warning(
                "%s budget of %.2f %s reached: captioning paused (POST /control/budget/resume to go on)",
                reached,
                limit,
                self.cfg.cost.currency,
            )
        else:
            log.info("budget allows captioning again")
        self.hold_audio("budget", reached is not None)

    def resume_budget(self) -> dict[str, Any]:
        """Operator request: go on past the reached budget until its period ends."""
        self.spend.resume()
        self._check_budget()
        return self._cost_status()

    def _save_spend(self) -> None:
        if self._spend_path is None or self.spend.day_spent == self._spend_saved:
            return
        try:
            ledger.save(self._spend_path, self.spend.day, self.spend.day_spent)
            self._spend_saved = self.spend.day_spent
        except OSError as e:
            log.warning("cannot save today's spend to %s: %s", self._spend_path, e)

    def on_obs_state(self, state: ObsState) -> None:
        """OBS changed what it is doing: gate the audio on it, and a new stream starts a new per-stream budget."""
        if state.streaming and not self._was_streaming:
            self.spend.new_stream()
            self._check_budget()
        self._was_streaming = state.streaming
        self._apply_obs_holds(state)

    def _apply_obs_holds(self, state: ObsState) -> None:
        for reason, held in obs_holds(self.cfg.gate, state).items():
            if held != (reason in self.gate.held_by):
                self.hold_audio(reason, held)

    def _cost_status(self) -> dict[str, Any]:
        return {"currency": self.cfg.cost.currency, **self.spend.as_dict()}

    def hold_audio(self, reason: str, held: bool) -> None:
        """Stop (held=True) or allow sending audio for one reason (OBS not streaming, muted, budget, pause ...).

        Audio goes out only while no reason holds it; a segment cut off mid-speech still gets the silence that
        ends it, and speech starting right at the release is sent from its start. Call from the event loop.
        """
        before = self.gate.state
        if self.gate.hold(reason, held):
            log.info("audio %s (%s)", "held: nothing is sent" if held else "released", reason)
        else:
            log.debug("audio hold %s %s; held by %s", reason, "on" if held else "off", self.gate.held_by)
        self._gate_moved(before)

    def _gate_moved(self, before: GateState) -> None:
        state = self.gate.state
        if state != before:
            self.status.metrics.audio_gate_transitions.labels(state.value).inc()
            log.debug("audio gate %s", state.value)

    def on_recording(self, rec: Recording) -> None:
        """OBS started or stopped recording: transcript files follow the recording."""
        current = self.recording_transcripts
        if not rec.active:
            if current is not None:
                self._file_output("recording_transcripts", current.close)
                log.info("recording stopped; transcripts in %s", current.folder)
            self.recording_transcripts = None
            return
        if current is not None:
            return  # the same recording, reported again (an event after the state poll)
        t = self.cfg.transcripts
        name = Path(rec.path).stem if rec.path else time.strftime("recording_%Y-%m-%d_%H-%M-%S")
        folders = [Path(rec.path).parent] if rec.path else []
        # Next to a video, players pick subtitles by language code: name the source transcript by its language.
        spoken = self.cfg.translator.source_language
        labels = {SOURCE: spoken} if spoken and spoken not in self.cfg.translator.targets else {}
        for folder in [*folders, Path(t.folder)]:
            try:
                self.recording_transcripts = TranscriptWriter(
                    folder, self.cfg.languages(), t.formats, started_at=rec.started_at, name=name, labels=labels
                )
            except OSError as e:
                log.warning("cannot write recording transcripts to %s: %s", folder, e)
                continue
            log.info("recording started; transcripts follow it: %s", self.recording_transcripts.path("*", "*"))
            return

    def _show(self, source: str, text: str, received_at: float | None) -> None:
        if source in self.hidden:
            text, received_at = "", None
        self.status.screens[source] = text
        if self.obs is not None:
            self.obs.set_text(source, text, received_at)

    # ---- live control (POST /control/<action>) ------------------------------------------------------
    def controls(self) -> dict[str, http_api.Control]:
        """The operator actions the HTTP API offers; each answers with the new control state."""
        return {
            "pause": lambda body: self.set_paused(True),
            "resume": lambda body: self.set_paused(False),
            "clear": self.clear_outputs,
            "language": self.switch_language,
            "show": lambda body: self.set_visible(_output_named(self.cfg, body), True),
            "hide": lambda body: self.set_visible(_output_named(self.cfg, body), False),
            "budget/resume": lambda body: self.resume_budget(),
        }

    def _control_status(self) -> dict[str, Any]:
        return {
            "paused": self.paused,
            "outputs": {
                o.obs_source: {"language": o.language, "visible": o.obs_source not in self.hidden}
                for o in self.cfg.outputs
            },
        }

    def set_paused(self, paused: bool) -> dict[str, Any]:
        """Pause: no audio goes out (nothing is billed); what is on screen stays until it times out."""
        if paused != self.paused:
            log.info("captioning %s by the operator", "paused" if paused else "resumed")
        self.paused = paused
        self.hold_audio("paused", paused)
        return self._control_status()

    def clear_outputs(self, body: dict[str, Any]) -> dict[str, Any]:
        """Empty one output ({"output": name}), or every output and overlay when none is named."""
        name = _output_named(self.cfg, body) if body.get("output") is not None else None
        if self.presenter is not None:
            self.presenter.clear(name)
        if name is None:
            for lang in self.cfg.languages():
                self.hub.publish(lang, "clear", "")
        log.info("cleared %s by the operator", repr(name) if name else "every output")
        return self._control_status()

    async def switch_language(self, body: dict[str, Any]) -> dict[str, Any]:
        """Show another language in one output; sessions start or stop as the new language set needs."""
        name = _output_named(self.cfg, body)
        language = body.get("language")
        if not isinstance(language, str) or not language:
            raise http_api.ControlError('give the new language as {"output": ..., "language": "ko"}')
        try:
            new = with_output_language(self.cfg, name, language)
        except ConfigError as e:
            raise http_api.ControlError(str(e)) from None
        log.info("output %r switched to %s by the operator (until the next reload)", name, language)
        await self.apply(new)
        return self._control_status()

    def set_visible(self, name: str, visible: bool) -> dict[str, Any]:
        """Hide an output (its OBS source shows nothing, captions keep flowing) or show it again."""
        if visible:
            self.hidden.discard(name)
        else:
            self.hidden.add(name)
        # Showing it again puts back at once what the presenter has laid out for it meanwhile.
        self._show(name, self.presenter.shown(name) if self.presenter is not None else "", None)
        return self._control_status()

    def on_caption(self, caption: Caption) -> None:
        lang = caption.language
        now = time.time()
        key = (lang, caption.item_id)
        if self.vocabulary.active:
            caption = dataclasses.replace(caption, text=self.vocabulary.apply(lang, caption.text))
        self.hub.publish(lang, "final" if caption.final else "partial", caption.text)
        if not caption.final:
            self._first_seen.setdefault(key, now)
            self.status.language(lang).last_partial = caption.text
            self.status.metrics.captions_partial.labels(lang).inc()
            if self.presenter is not None:
                self.presenter.caption(lang, caption.text, final=False)
            return
        spoken_at = self._first_seen.pop(key, now)
        if len(self._first_seen) > 1000:  # items the service never finalized
            self._first_seen.clear()
        self.status.record_final(lang, caption.text)
        log.info("caption [%s] %s", lang, _clipped(caption.text))
        # On screen first: it is what viewers wait for; files can take the next microseconds.
        if self.presenter is not None:
            self.presenter.caption(
                lang,
                caption.text,
                final=True,
                received_at=caption.received_at or None,
                item_id=caption.item_id,
                pair_id=caption.pair_id,
            )
        if self.stream_feed is not None and lang == self.cfg.stream_caption_language():
            self.stream_feed.caption(caption.text)
        for name, writer in self._writers():
            self._file_output(name, functools.partial(writer.write, lang, caption.text, spoken_at, now))

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
                controls=self.controls(),
                token=self.cfg.http.token.get_secret_value(),
                settings=self.cfg.http,
            )
            log.info("HTTP on http://%s:%d/status", self.cfg.http.host, self.http_port)
        self._open_transcripts(self.cfg)
        self._capture_task = asyncio.create_task(self.capture.run(), name="audio")
        for target in self.cfg.translator.targets:
            self._start_session(self._new_session(self.cfg, target))
        self._say_billing()
        self.voice.start()
        self._start_obs(self.cfg)
        notify("READY=1\nSTATUS=running")
        log.info(
            "captioner %s running: %s -> %s",
            __version__,
            self.cfg.translator.source_language or "auto",
            ", ".join(self.cfg.translator.targets),
        )
        heartbeat = asyncio.create_task(self._heartbeat(), name="heartbeat")
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
        notify("STOPPING=1")
        await _cancel(heartbeat)
        # 1. no new audio; 2. sessions send what they have and wait for their last captions;
        # 3. OBS gets those captions; 4. HTTP last, so /status answers during the stop.
        self.capture.stop()
        await _cancel(self._capture_task)
        self._send_audio(self.gate.flush())  # speech that had just begun, before the gate opened for it
        await asyncio.gather(*(s.finish() for s in self.sessions.values()))
        for task in self._session_tasks.values():
            await _cancel(task)
        await self.voice.stop(_VOICE_DRAIN_S)  # the last utterance may still be playing
        if self.presenter is not None:
            self.presenter.settle()
        await self._stop_obs()
        if self.transcripts is not None:
            self._file_output("transcripts", self.transcripts.close)
        self._save_spend()
        if runner is not None:
            await runner.cleanup()
        log.info("stopped")

    async def reload_from(self, path: Path | None) -> None:
        """SIGHUP: load the file again; an invalid file keeps the running config."""
        try:
            new = await asyncio.to_thread(self._loader, path)
        except ConfigError as e:
            log.error("reload rejected, keeping the running config: %s", e)
            self.status.reload_error = str(e)
            return
        except Exception as e:  # a reload must never stop the daemon, whatever the loader trips on
            log.exception("reload failed, keeping the running config")
            self.status.reload_error = f"{path}: {type(e).__name__}: {e}"
            return
        try:
            await self.apply(new)
        except Exception as e:  # the parts applied so far keep running; the rest stay as they were
            log.exception("reload failed while applying the new config")
            self.status.reload_error = f"{path}: applying failed: {type(e).__name__}: {e}"
            return
        self.status.reload_error = None

    async def apply(self, new: Config) -> None:
        """Move to `new`, restarting only the parts whose settings changed; one change at a time."""
        async with self._applying:  # a reload and a language switch must not interleave their restarts
            await self._apply(new)

    async def _apply(self, new: Config) -> None:
        old, self.cfg = self.cfg, new
        changed: list[str] = []
        if new.audio != old.audio:
            changed.append("audio")
            self.capture.stop()
            if self._capture_task is not None:
                await _cancel(self._capture_task)
            self.capture = self._new_capture(new)
            self._capture_task = asyncio.create_task(self.capture.run(), name="audio")
        if new.gate != old.gate:
            changed.append("gate")
            before = self.gate.state
            self.gate.configure(new.gate)
            self._gate_moved(before)
            self._apply_obs_holds(self.obs.state if self.obs is not None else ObsState())
        if new.voice_outputs != old.voice_outputs:
            changed.append("voice")
            await self.voice.stop(0)
            self.voice = VoiceOutputs(new.voice_outputs, self.status)
            self.status.voice = self.voice.as_dict
            self.voice.start()
        # Settings of one target (its glossary, whether it transcribes) only restart that target's session.
        per_target = {"targets": (), "transcribe_source": False, "glossary": {}}
        same_service = new.translator.model_copy(update=per_target) == old.translator.model_copy(update=per_target)
        for target in list(self.sessions):
            keep = (
                same_service
                and target in new.translator.targets
                and self.sessions[target].transcribe_source == _transcribes(new, target)
                and self.sessions[target].pin_source == _pins_source(new, target)
                and new.translator.glossary.get(target) == old.translator.glossary.get(target)
                and (self.sessions[target].audio_output, self.sessions[target].voice) == session_audio(new, target)
            )
            if not keep:
                changed.append(f"translator:{target}")
                await self._stop_session(target)
        for target in new.translator.targets:
            if target not in self.sessions:
                changed.append(f"translator:{target}")
                self._start_session(self._new_session(new, target))
        wants_obs = _wants_obs(new)
        follows = (new.transcripts.enabled and new.transcripts.follow_recording) != (
            old.transcripts.enabled and old.transcripts.follow_recording
        )
        if (
            new.obs != old.obs
            or (self.obs is None) == wants_obs
            or follows
            or new.stream_captions != old.stream_captions
            or new.gate.obs_unmuted != old.gate.obs_unmuted
            or new.vision != old.vision
        ):
            changed.append("obs")
            await self._stop_obs()
            self._start_obs(new)
        elif (new.outputs != old.outputs or new.layout != old.layout) and self.obs is not None:
            changed.append("outputs")
            self.obs.set_sources([o.obs_source for o in new.outputs])
            if self.presenter is not None:
                self.presenter.set_outputs(new)
        self.hub.set_languages(new.languages())
        if new.cost != old.cost:
            changed.append("cost")
            self.spend.per_stream, self.spend.per_day = new.cost.budget_per_stream, new.cost.budget_per_day
            self._check_budget()
        for source in set(self.status.screens) - {o.obs_source for o in new.outputs}:
            del self.status.screens[source]
        self.hidden &= {o.obs_source for o in new.outputs}
        self.status.languages_available = tuple(sorted(new.translator.dialect.languages))
        if new.vocabulary != old.vocabulary:
            changed.append("vocabulary")
            self.vocabulary = Vocabulary(new.vocabulary)
        for lang in new.languages():
            self.status.language(lang)
            if self.transcripts is not None:
                self.transcripts.add_language(lang)
        if new.transcripts != old.transcripts:
            changed.append("transcripts")
            self._open_transcripts(new)
        if new.http != old.http:
            log.warning("http settings change on restart only")
        log.info("config reloaded; changed: %s", ", ".join(changed) or "nothing")

    async def _heartbeat(self) -> None:
        """systemd watchdog pings from the event loop (a hung loop stops them) and a STATUS line."""
        usec = os.environ.get("WATCHDOG_USEC", "")
        interval = min(_STATUS_EVERY_S, int(usec) / 2e6) if usec.isdigit() and int(usec) > 0 else _STATUS_EVERY_S
        while True:
            links = ", ".join(f"{name} {link.state.value}" for name, link in self.status.links.items())
            count = sum(o.final_count for o in self.status.languages.values())
            notify(f"WATCHDOG=1\nSTATUS={count} captions; {links}" if usec else f"STATUS={count} captions; {links}")
            self._check_budget()  # a new day lifts the day's budget
            self._save_spend()
            for name, writer in self._writers():
                if self.status.file_output(name).failing_since is not None:
                    self._file_output(name, writer.flush)  # the disk may have room again
            await asyncio.sleep(interval)


def _wants_obs(cfg: Config) -> bool:
    t, g = cfg.transcripts, cfg.gate
    follows = t.enabled and t.follow_recording
    gated = bool(g.obs_outputs or g.obs_unmuted or g.obs_scenes)
    wanted = cfg.outputs or cfg.stream_captions.enabled or follows or gated or cfg.vision.enabled
    return cfg.obs.enabled and bool(wanted)


def _output_named(cfg: Config, body: dict[str, Any]) -> str:
    """The output a control request names ({"output": "<OBS source>"}), which must be one of the outputs."""
    name = body.get("output")
    names = [o.obs_source for o in cfg.outputs]
    if not isinstance(name, str) or name not in names:
        raise http_api.ControlError(f'name the output as {{"output": ...}}, one of: {", ".join(names) or "none"}')
    return name


def _clipped(text: str, limit: int = _LOGGED_CAPTION_CHARS) -> str:
    # A caption is as long as the service makes it; the log line stays readable and the journal small.
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more characters]"


def _transcribes(cfg: Config, target: str) -> bool:
    # One session is enough to transcribe the source; more would bill it twice.
    return cfg.translator.transcribe_source and target == cfg.translator.targets[0]


def _pins_source(cfg: Config, target: str) -> bool:
    # translator.pin_source_language: "one" tells only the first target's session the source language (qwen3.5).
    return cfg.translator.pin_source_language == "all" or target == cfg.translator.targets[0]


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("task %s failed", task.get_name())


def notify(message: str) -> None:
    """sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET, if systemd gave us one."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(message.encode())
    except OSError as e:
        log.debug("sd_notify failed: %s", e)


async def serve(
    cfg: Config, config_path: Path | None = None, *, loader: Callable[[Path | None], Config] = load, demo: bool = False
) -> int:
    """Run the daemon with signal handling; first SIGTERM/SIGINT stops gracefully, a second forces."""
    loop = asyncio.get_running_loop()
    stop, reload = asyncio.Event(), asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: forcing exit", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s received", signal.Signals(signum).name)
        stop.set()

    def on_hup() -> None:
        log.info("SIGHUP received: reloading %s", config_path or "built-in defaults")
        reload.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    daemon = Daemon(cfg, loader=loader, demo=demo)
    run = asyncio.create_task(daemon.run(stop, reload, config_path))
    try:
        await _until_stopped(run, stop, shutdown_limit_s(cfg))
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    return 0


def shutdown_limit_s(cfg: Config) -> float:
    """How long a graceful stop may take before it is cut short."""
    return cfg.translator.finish_timeout_s + _SHUTDOWN_MARGIN_S


async def _until_stopped(run: asyncio.Task[None], stop: asyncio.Event, limit_s: float) -> None:
    """Wait for the daemon; once a stop begins, give the shutdown a hard time limit."""
    stop_waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({run, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
    if run in done:
        stop_waiter.cancel()
        run.result()
        return
    try:
        await asyncio.wait_for(asyncio.shield(run), limit_s)
    except TimeoutError:
        log.error("shutdown took longer than %.0f s; exiting anyway", limit_s)
        run.cancel()
