"""Pure caption logic: turn one session's server events into caption snapshots and finals."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..cost import Tokens, UsageMeter

# Events that move no caption and need no handling; known, so they are not counted as unknown.
_STRUCTURAL = frozenset(
    {
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        "response.audio.delta",
        "response.audio.done",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "input_audio_buffer.cleared",
        "session.created",
        "session.updated",
        "session.finished",
    }
)
_TRANSLATION_PARTIAL = frozenset({"response.text.text", "response.audio_transcript.text"})
_TRANSLATION_DONE = frozenset({"response.text.done", "response.audio_transcript.done"})
# qwen3.8: append-only increments instead of text/stash snapshots (3.8 digest §3); their finals are the same events.
_TRANSLATION_DELTA = frozenset({"response.text.delta", "response.audio_transcript.delta"})
_ASR_DELTA = "conversation.item.input_audio_transcription.delta"
_ASR_PARTIAL = "conversation.item.input_audio_transcription.text"
_ASR_DONE = "conversation.item.input_audio_transcription.completed"
_ASR_FAILED = "conversation.item.input_audio_transcription.failed"
_REMEMBERED_ITEMS = 512


@dataclass(frozen=True)
class Caption:
    """What one language shows for one utterance: a growing partial or the final text."""

    language: str
    item_id: str
    text: str
    final: bool
    # perf_counter() when the frame that produced it arrived (set by the session; 0 = unknown).
    received_at: float = 0.0
    # For a final: the item id of its other half (the translation of this source sentence, or the source of this
    # translation) when known; "" otherwise.
    pair_id: str = ""
    # time.time() when the words began to be heard (the item's first partial; 0 = unknown): a subtitle cue or a
    # caption timestamp starts there, not when the translation ended.
    spoken_at: float = 0.0
    # Who spoke, when known (a speaker the model tells apart, or a named input); "" = unlabelled.
    speaker: str = ""
    # The input it was heard on (inputs[].name; "" = the single audio: input): outputs[].inputs filter on it.
    input: str = ""
    # The model's own speaker id as a string (qwen3.8 `speaker_id` of the utterance, e.g. "1"); "" = unknown.
    # The same on the source and the translation captions of one utterance.
    speaker_id: str = ""


@dataclass(frozen=True)
class ServerError:
    """An `error` event, flattened."""

    code: str
    message: str
    param: str = ""


@dataclass(frozen=True)
class UsageDelta:
    """Tokens billed since the previous `response.done` of this session."""

    input_tokens: int
    output_tokens: int
    # The same delta by billing kind (audio in, text out, ...), for the cost estimate.
    tokens: Tokens = field(default=Tokens(), compare=False)


@dataclass
class Interpretation:
    """Everything one event meant."""

    captions: list[Caption] = field(default_factory=list)
    error: ServerError | None = None
    usage: UsageDelta | None = None
    # "unknown" for an unknown type, "malformed" for a frame that breaks the protocol's shapes.
    problem: str | None = None


def _str(d: dict[str, Any], *keys: str) -> str:
    """The first key that holds a string; protocol fields go missing or change name (§12)."""
    for key in keys:
        value = d.get(key)
        if isinstance(value, str):
            return value
    return ""


def _bounded_add(seen: OrderedDict[Any, None], key: Any) -> None:
    seen[key] = None
    while len(seen) > _REMEMBERED_ITEMS:
        seen.popitem(last=False)


def normalise_code(code: str) -> str:
    """'InvalidApiKey' and 'invalid_api_key' compare equal (§7)."""
    return "".join(ch for ch in code.lower() if ch.isalnum())


@dataclass
class _Snapshot:
    confirmed: str = ""
    display: str = ""


class SessionInterpreter:
    """One translator session's server events -> captions for `target` (and "source")."""

    def __init__(self, target: str, source_label: str = "source", *, skip_fill: bool = False) -> None:
        self.target = target
        self.source_label = source_label
        # translator.same_language_captions: source. A sentence the service skipped as already in the target
        # language (no response at all, or an empty one: both are possible) shows its source text as the target's
        # caption; without it, such a sentence shows nothing in the target language.
        self.skip_fill = skip_fill
        self._source_finals: OrderedDict[str, str] = OrderedDict()  # source item -> its final text
        self._empty_translations: OrderedDict[str, None] = OrderedDict()  # finished without any text
        # qwen3.8 speaker_id per source item (speech_started); a translation item reaches it through _pairs.
        self._speakers: OrderedDict[str, str] = OrderedDict()
        self._items: OrderedDict[tuple[str, str], _Snapshot] = OrderedDict()
        self._finished: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._response_items: dict[str, set[tuple[str, str]]] = {}
        self.usage = UsageMeter()
        # The audio tokens sent on this session so far (set by the session): helps tell how usage is reported.
        self.audio_tokens_sent: float | None = None
        # A dialect whose usage may be missing (qwen3.8): bill the audio sent until the service reports usage.
        self.estimate_usage = False
        self._usage_seen = False
        self._audio_estimated = 0
        # Translation item <-> source item of the same segment (both directions), and finals still waiting for
        # their other half when the service does not say which goes with which (qwen3 sends no pairing event).
        self._pairs: OrderedDict[str, str] = OrderedDict()
        self._unpaired: dict[str, OrderedDict[str, None]] = {target: OrderedDict(), source_label: OrderedDict()}

    def feed(self, event: Any) -> Interpretation:
        """Interpret one decoded JSON event; never raises on bad input."""
        out = Interpretation()
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            out.problem = "malformed"
            return out
        kind: str = event["type"]
        try:
            self._dispatch(kind, event, out)
        except (TypeError, AttributeError, ValueError):
            out.problem = "malformed"
        return out

    def _dispatch(self, kind: str, ev: dict[str, Any], out: Interpretation) -> None:
        if kind in _TRANSLATION_PARTIAL:
            self._partial(self.target, ev, out)
        elif kind in _TRANSLATION_DELTA:
            self._delta(self.target, ev, out)
        elif kind in _TRANSLATION_DONE:
            self._final(self.target, ev, _str(ev, "transcript", "text", "delta"), out)
        elif kind == _ASR_PARTIAL:
            self._partial(self.source_label, ev, out)
        elif kind == _ASR_DELTA:
            self._delta(self.source_label, ev, out)
        elif kind == _ASR_DONE:
            self._final(self.source_label, ev, _str(ev, "transcript", "text"), out)
        elif kind == "input_audio_buffer.speech_started":
            self._speech_started(ev)
        elif kind == "response.content_part.done":
            part = ev.get("part") or {}
            if isinstance(part, dict) and part.get("type", "text") in ("text", "audio"):
                self._final(self.target, ev, _str(part, "text", "transcript"), out, fallback_only=True)
        elif kind == "response.output_item.done":
            item = ev.get("item") or {}
            if isinstance(item, dict):
                text = "".join(_str(c, "text", "transcript") for c in item.get("content") or [] if isinstance(c, dict))
                self._final(self.target, {**ev, "item_id": _str(item, "id")}, text, out, fallback_only=True)
        elif kind == "conversation.item.created":
            created = ev.get("item")
            source_item = _str(ev, "previous_item_id")
            translation_item = _str(created, "id") if isinstance(created, dict) else ""
            # The source item itself is created too (content input_audio; its previous_item_id points back at
            # the previous utterance), and manual turns announce the user's audio item (§5): only a translation
            # item pairs with the item before it.
            content = created.get("content") if isinstance(created, dict) else None
            heard = isinstance(content, list) and any(
                isinstance(c, dict) and c.get("type") == "input_audio" for c in content
            )
            user = isinstance(created, dict) and created.get("role") == "user"
            if source_item and translation_item and not heard and not user:
                self._pair(source_item, translation_item)
        elif kind == "response.done":
            self._response_done(ev, out)
        elif kind == "error":
            err = ev.get("error")
            src = err if isinstance(err, dict) else ev
            # Bounded: the text ends up in logs, /status and a metric label.
            out.error = ServerError(
                _str(src, "code", "type")[:64], _str(src, "message")[:300], _str(src, "param")[:100]
            )
        elif kind == _ASR_FAILED:
            raw = ev.get("error")
            failure: dict[str, Any] = raw if isinstance(raw, dict) else {}
            out.error = ServerError(
                _str(failure, "code")[:64] or "transcription_failed", _str(failure, "message")[:300]
            )
        elif kind not in _STRUCTURAL:
            out.problem = "unknown"

    def _speech_started(self, ev: dict[str, Any]) -> None:
        """qwen3.8: the utterance's speaker_id (an integer as seen live; optional) against its source item."""
        speaker, item = ev.get("speaker_id"), _str(ev, "item_id")
        if isinstance(speaker, bool) or not item:
            return
        if isinstance(speaker, int) or (isinstance(speaker, str) and speaker):
            self._speakers[item] = str(speaker)[:32]
            while len(self._speakers) > _REMEMBERED_ITEMS:
                self._speakers.popitem(last=False)

    def _speaker_of(self, item: str) -> str:
        return self._speakers.get(item) or self._speakers.get(self._pairs.get(item, ""), "")

    def _delta(self, language: str, ev: dict[str, Any], out: Interpretation) -> None:
        """An append-only increment (qwen3.8): the caption is everything received for the item so far."""
        key = self._key(language, ev)
        if key in self._finished:
            return
        delta = ev.get("delta", "")
        if not isinstance(delta, str):
            raise TypeError("delta must be a string")
        snap = self._items.get(key) or _Snapshot()
        snap.confirmed += delta
        snap.display = snap.confirmed
        self._show(key, snap, ev, out)

    def _key(self, language: str, ev: dict[str, Any]) -> tuple[str, str]:
        return language, _str(ev, "item_id") or _str(ev, "response_id") or "?"

    def _partial(self, language: str, ev: dict[str, Any], out: Interpretation) -> None:
        key = self._key(language, ev)
        if key in self._finished:
            return  # a late partial must not reopen a caption that is already final
        text, stash = ev.get("text", ""), ev.get("stash", "")
        if not isinstance(text, str) or not isinstance(stash, str):
            raise TypeError("text/stash must be strings")
        snap = self._items.get(key) or _Snapshot()
        # `text` is the confirmed prefix of the whole segment; an empty one never retracts it (§5.1).
        if text or not snap.confirmed:
            snap.confirmed = text
        snap.display = snap.confirmed + stash
        self._show(key, snap, ev, out)

    def _show(self, key: tuple[str, str], snap: _Snapshot, ev: dict[str, Any], out: Interpretation) -> None:
        self._remember(key, snap)
        if response_id := _str(ev, "response_id"):
            self._response_items.setdefault(response_id, set()).add(key)
            while len(self._response_items) > _REMEMBERED_ITEMS:
                del self._response_items[next(iter(self._response_items))]
        if snap.display.strip():
            out.captions.append(Caption(*key, snap.display.strip(), False, speaker_id=self._speaker_of(key[1])))

    def _final(
        self, language: str, ev: dict[str, Any], text: str, out: Interpretation, fallback_only: bool = False
    ) -> None:
        key = self._key(language, ev)
        if key in self._finished:
            return
        snap = self._items.pop(key, None)
        if fallback_only and not text.strip() and snap is None:
            return
        final = text.strip() or (snap.display.strip() if snap else "")
        self._finished[key] = None
        while len(self._finished) > _REMEMBERED_ITEMS:
            self._finished.popitem(last=False)
        if final:
            speaker = self._speaker_of(key[1])
            out.captions.append(Caption(*key, final, True, pair_id=self._pair_of(*key), speaker_id=speaker))
        if self.skip_fill and not fallback_only:
            self._fill_skipped(language, key[1], final, out)

    def _fill_skipped(self, language: str, item: str, final: str, out: Interpretation) -> None:
        """translator.same_language_captions: source: a skipped sentence shows its source text as the target's.

        The skip's wire result is not documented: no response at all (the source final arrives and no translation
        item was ever created for it), or an empty one (the translation's final is empty). Both are handled.
        """
        if language == self.target:
            if final:
                return
            source = self._pairs.get(item, "")
            if source in self._source_finals:
                self._filled(source, out)
            else:
                _bounded_add(self._empty_translations, item)
            return
        if language != self.source_label or not final:
            return
        self._source_finals[item] = final
        while len(self._source_finals) > _REMEMBERED_ITEMS:
            self._source_finals.popitem(last=False)
        translation = self._pairs.get(item)
        if translation is None or translation in self._empty_translations:
            self._filled(item, out)

    def _filled(self, source: str, out: Interpretation) -> None:
        key = (self.target, f"{source}:same-language")
        if key in self._finished:
            return
        _bounded_add(self._finished, key)
        text, speaker = self._source_finals[source], self._speaker_of(source)
        out.captions.append(Caption(*key, text, True, pair_id=source, speaker_id=speaker))

    def _pair(self, source_item: str, translation_item: str) -> None:
        self._pairs[source_item], self._pairs[translation_item] = translation_item, source_item
        while len(self._pairs) > 2 * _REMEMBERED_ITEMS:
            self._pairs.popitem(last=False)

    def _pair_of(self, language: str, item: str) -> str:
        """The other half of a final; without a pairing event, the oldest unpaired final of the other side."""
        if item in self._pairs:
            return self._pairs[item]
        if language not in self._unpaired:
            return ""
        other = self._unpaired[self.source_label if language == self.target else self.target]
        if other:
            mate, _ = other.popitem(last=False)
            return mate
        mine = self._unpaired[language]
        mine[item] = None
        while len(mine) > 8:  # a side the service never completes must not pair everything after it
            mine.popitem(last=False)
        return ""

    def _response_done(self, ev: dict[str, Any], out: Interpretation) -> None:
        response = ev.get("response")
        if not isinstance(response, dict):
            raise TypeError("response must be an object")
        # A response that was cut short may never send its `.done`: finalize what it showed.
        for language, item in sorted(self._response_items.pop(_str(response, "id"), set())):
            if (language, item) in self._items:
                self._final(language, {"item_id": item}, "", out)
        usage = response.get("usage")
        if isinstance(usage, dict):
            self._usage_seen = True
            out.usage = UsageDelta(*self.usage.report(usage, self.audio_tokens_sent))
        elif self.estimate_usage and not self._usage_seen and self.audio_tokens_sent is not None:
            audio = int(self.audio_tokens_sent) - self._audio_estimated
            if audio > 0:
                self._audio_estimated += audio
                out.usage = UsageDelta(audio, 0, Tokens(audio_in=audio))

    def _remember(self, key: tuple[str, str], snap: _Snapshot) -> None:
        self._items[key] = snap
        self._items.move_to_end(key)
        while len(self._items) > _REMEMBERED_ITEMS:
            self._items.popitem(last=False)

    def pending(self) -> list[Caption]:
        """The partial in flight per language, never finalized; on a dead connection it is the best text there is.

        Only the newest: older items the service left unfinished were superseded on screen long ago, and flushing
        hundreds of them as finals at once would flood every output with stale text.
        """
        newest: dict[str, Caption] = {}
        for key, snap in self._items.items():  # oldest first: _remember moves each update to the end
            if snap.display.strip():
                newest[key[0]] = Caption(*key, snap.display.strip(), False, speaker_id=self._speaker_of(key[1]))
        return list(newest.values())
