"""Config of where captions go: OBS text sources and their layout, YouTube and webhooks, files, vocabulary."""

from __future__ import annotations

import re
import string
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from ..errors import ConfigError
from ..vocabulary import compile_find
from .hints import config_error
from .sections import (
    SOURCE,
    _Section,
)


class LayoutConfig(_Section):
    """How captions are laid out in a text source; the defaults read well at 1080p with a 48 px font."""

    # Display columns per line: an East Asian wide character counts 2, so 42 = 21 Japanese characters.
    max_width: int = Field(42, ge=8, le=400)
    max_lines: int = Field(2, ge=1, le=20)
    # True: newest line at the bottom, older lines scroll off; False: each caption replaces the previous one.
    rolling: bool = True
    # A line stays at least this long before it scrolls off or is cleared.
    min_display_s: float = Field(1.0, ge=0, le=30)
    # Clear the source after this long without new captions; 0 = keep the last caption up.
    clear_after_s: float = Field(6.0, ge=0, le=3600)
    # Live captions: show the growing partial text (replaced by the final) instead of finals only.
    live: bool = False
    # Live captions update the source at most this often.
    live_interval_s: float = Field(0.25, ge=0.05, le=5)


class LayoutOverride(_Section):
    """Per-output changes to the top-level `layout`; keys left out keep the top-level value."""

    max_width: int | None = Field(None, ge=8, le=400)
    max_lines: int | None = Field(None, ge=1, le=20)
    rolling: bool | None = None
    min_display_s: float | None = Field(None, ge=0, le=30)
    clear_after_s: float | None = Field(None, ge=0, le=3600)
    live: bool | None = None
    live_interval_s: float | None = Field(None, ge=0.05, le=5)


class _FromInputs(_Section):
    """What every `outputs` entry shares: which inputs' captions it takes."""

    # Names from `inputs:`; empty = every input. The one rule for it is takes().
    inputs: tuple[str, ...] = ()

    def takes(self, input_name: str) -> bool:
        """Whether a caption of this input (its name; "" for the single `audio:` input) goes to this output."""
        return not self.inputs or input_name in self.inputs


def _colour(v: str) -> str:
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", v):
        raise ValueError("must be a colour written #RRGGBB, e.g. #FFFFFF")
    return v.upper()


class StyleConfig(_Section):
    """How a text source captioner creates looks and where it sits; keys left out are computed from OBS's canvas."""

    # A font family; unset: one with the language's glyphs (fontconfig on Linux, a known family elsewhere).
    font: str | None = Field(None, min_length=1)
    # Font size in canvas pixels; unset: canvas height / 18, smaller when layout.max_width would not fit the width.
    size: int | None = Field(None, ge=6, le=1000)
    color: Annotated[str, AfterValidator(_colour)] = "#FFFFFF"
    # A dark outline keeps the text readable on any picture.
    outline: bool = True
    # bottom: stacked upwards from the bottom edge (first output lowest); top: downwards from the top edge.
    position: Literal["bottom", "top"] = "bottom"
    # Canvas pixels of the text's bottom-centre (top-centre with position: top); both or neither. The output then
    # leaves the stack.
    x: int | None = None
    y: int | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> StyleConfig:
        if (self.x is None) != (self.y is None):
            raise ValueError("x and y go together: set both or neither")
        return self


class OutputConfig(_FromInputs):
    """One OBS text source fed with one language's captions."""

    obs_source: str = Field(min_length=1)
    language: str
    layout: LayoutOverride = LayoutOverride()
    # Placement and look of the source when captioner creates it (and of an existing one with restyle: true).
    style: StyleConfig = StyleConfig()
    # Apply the style and placement to a source that already exists too; false: never move or restyle it.
    restyle: bool = False
    # Bilingual: show each translation with its source sentence above it (the first target only: its session
    # is the one that transcribes the source).
    with_source: bool = False


def _http_url(v: SecretStr) -> SecretStr:
    # The URL is a secret: the message never quotes it.
    if not v.get_secret_value().startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return v


HttpUrl = Annotated[SecretStr, AfterValidator(_http_url)]


class _PostOutputConfig(_FromInputs):
    """What every output that POSTs finals to a URL shares."""

    language: str
    # A final still unsent this long after its words were spoken (the endpoint was down) is skipped and counted.
    max_age_s: float = Field(60.0, ge=1, le=86400)
    # Each POST gets this long for the whole answer; a slower one is retried.
    timeout_s: float = Field(10.0, gt=0, le=120)


class YoutubeOutputConfig(_PostOutputConfig):
    """One language's finals as YouTube Live closed captions, POSTed to the ingestion URL from YouTube Studio."""

    youtube_url: HttpUrl
    # Added to every stamp: positive shows the captions later on the video, negative earlier.
    offset_s: float = Field(0.0, ge=-60, le=60)

    @property
    def url(self) -> str:
        return self.youtube_url.get_secret_value()


class WebhookOutputConfig(_PostOutputConfig):
    """One language's finals POSTed as JSON to any URL."""

    webhook_url: HttpUrl
    # Sent with every POST (e.g. Authorization); values are secrets, so use ${VAR}.
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    max_age_s: float = Field(600.0, ge=1, le=86400)

    @property
    def url(self) -> str:
        return self.webhook_url.get_secret_value()


OutputEntry = OutputConfig | YoutubeOutputConfig | WebhookOutputConfig


PostOutputConfig = YoutubeOutputConfig | WebhookOutputConfig


def _output_entry(i: int, item: Any) -> Any:
    """One `outputs` entry, validated as the kind its URL key names, errors at `outputs[i]...`."""
    if not isinstance(item, dict):
        raise ConfigError(f"outputs[{i}]", "must be a mapping with obs_source:, youtube_url: or webhook_url:")
    kinds = [k for k in ("youtube_url", "webhook_url") if k in item]
    if len(kinds) > 1:
        raise ConfigError(f"outputs[{i}].{kinds[1]}", f"one kind per entry: this one already has {kinds[0]}")
    by_key: dict[str, type[_Section]] = {"youtube_url": YoutubeOutputConfig, "webhook_url": WebhookOutputConfig}
    kind = by_key[kinds[0]] if kinds else OutputConfig
    try:
        return kind.model_validate(item)
    except ValidationError as e:
        raise config_error(e, kind, ("outputs", i)) from None


class StreamCaptionsConfig(_Section):
    """Native CEA-608 captions in the stream (OBS SendStreamCaption), for one language."""

    enabled: bool = False
    # A target language or "source"; only languages the 608 character set can carry. Unset: the source
    # transcript when there is one, else the first target.
    language: str | None = None
    # Rows per caption (608 pop-on captions are 32 columns wide; OBS keeps at most 128 bytes).
    rows: int = Field(2, ge=1, le=4)
    # At most one caption per this interval, so a burst does not pile up in the stream.
    min_interval_s: float = Field(1.0, ge=0.1, le=10)


class TranscriptsConfig(_Section):
    """Subtitle/transcript files written as captions finalize."""

    enabled: bool = False
    # One set of files per run and language: captioner_<start time>_<language>.<format>
    folder: str = "~/captioner-transcripts"
    formats: tuple[Literal["srt", "vtt", "txt"], ...] = Field(("srt", "vtt", "txt"), min_length=1)
    # While OBS records, also write a set named after the recording, timed from its start, next to it.
    follow_recording: bool = True


class ReplacementConfig(_Section):
    """One find -> replace rule for displayed caption text."""

    find: str = Field(min_length=1)
    # Literal text; with `regex: true` a Python re template (\1, \g<name>).
    replace: str = ""
    # Caption languages it applies to (target codes, or "source"); empty = every language.
    languages: tuple[str, ...] = ()
    # `find` is a Python regular expression instead of literal text.
    regex: bool = False
    ignore_case: bool = True
    # Match whole words only; in CJK, Thai and Korean text, which has no word boundaries, it matches anywhere.
    whole_word: bool = True


class ProfanityConfig(_Section):
    """Masks swearing: a short built-in English list (with -s/-ed/-ing... forms) plus `words`."""

    enabled: bool = False
    # Replaces every character after the first: "shit" -> "s***".
    mask: str = Field("*", min_length=1, max_length=1)
    # More words, case-insensitive, exactly as written: whole words, or anywhere in CJK text.
    words: tuple[str, ...] = ()
    # Caption languages to mask (target codes, or "source"); empty = every language.
    languages: tuple[str, ...] = ()


class VocabularyConfig(_Section):
    """Clean-up of displayed caption text; the translation glossary is `translator.glossary`."""

    # Applied in order, each to the result of the one before, then the profanity mask.
    replacements: tuple[ReplacementConfig, ...] = ()
    profanity: ProfanityConfig = ProfanityConfig()

    def check(self, languages: tuple[str, ...]) -> None:
        """Rules pydantic cannot see, given the caption languages the config produces."""

        def known(key: str, lang: str) -> None:
            if lang not in languages:
                hint = " (set translator.transcribe_source: true)" if lang == SOURCE else ""
                raise ConfigError(key, f"{lang!r} is not a caption language{hint}")

        for i, r in enumerate(self.replacements):
            where = f"vocabulary.replacements[{i}]"
            try:
                pattern = compile_find(r.find, regex=r.regex, ignore_case=r.ignore_case, whole_word=r.whole_word)
            except re.error as e:
                raise ConfigError(f"{where}.find", f"not a valid regular expression: {e}") from None
            if r.regex:
                try:  # the template is parsed even without a match, so \2 without group 2 fails here
                    pattern.sub(r.replace, "")
                except (re.error, IndexError) as e:
                    raise ConfigError(f"{where}.replace", f"not a valid replacement: {e}") from None
            for j, lang in enumerate(r.languages):
                known(f"{where}.languages[{j}]", lang)
        p = self.profanity
        for j, word in enumerate(p.words):
            if not word.strip():
                raise ConfigError(f"vocabulary.profanity.words[{j}]", "must not be empty")
        for j, lang in enumerate(p.languages):
            known(f"vocabulary.profanity.languages[{j}]", lang)


# A speaker's name is shown on one line everywhere; longer ones would crowd out the caption itself.
_MAX_NAME_CHARS = 40


class SpeakersConfig(_Section):
    """Who said what: names for the speakers the model tells apart (qwen3.8), and how a caption shows its speaker."""

    # Names in the order the speakers are first heard; the ones after these are "Speaker 3", "Speaker 4", ...
    names: tuple[str, ...] = ()
    # The prefix of a caption whose speaker is known; "{name}" is replaced by the speaker's name; "" = no labels.
    label: str = "{name}: "
    # A stream with one speaker shows no label; true labels every caption whose speaker is known from the first.
    always: bool = False

    def check(self) -> None:
        """Rules pydantic cannot word well: each problem at its key path."""
        for i, name in enumerate(self.names):
            where = f"speakers.names[{i}]"
            if not name.strip():
                raise ConfigError(where, "must not be empty")
            if _control(name):
                raise ConfigError(where, "must be one line without control characters")
            if len(name) > _MAX_NAME_CHARS:
                raise ConfigError(where, f"is longer than {_MAX_NAME_CHARS} characters")
            if name in self.names[:i]:
                raise ConfigError(where, f"{name!r} is listed twice (two speakers would read as one)")
        if self.label:
            problem = label_problem(self.label)
            if problem:
                raise ConfigError("speakers.label", problem)


def _control(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def label_problem(label: str) -> str | None:
    """Why `label` is not a usable speaker label template, or None: it must contain {name} and no other field."""
    if _control(label):
        return "must be one line without control characters"
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(label) if f is not None]
    except ValueError as e:  # a lone "{" or "}"
        return f"{label!r} is not a valid template ({e}); write {{{{ and }}}} for literal braces"
    for f, spec, conv in fields:
        if f != "name" or spec or conv:
            found = "{" + f + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            return f"{label!r}: the only placeholder is {{name}} (found {found})"
    if not fields:
        return f'{label!r} has no {{name}}; write e.g. "{{name}}: ", or "" to hide labels'
    return None
