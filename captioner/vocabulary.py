"""Pure clean-up of caption text before display: ordered find/replace rules, then a profanity mask."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


# The shapes Vocabulary reads, which config.VocabularyConfig has: config imports compile_find from here to
# check the rules at load, so this module does not import config back.
class ReplacementRule(Protocol):
    """One find/replace rule (`vocabulary.replacements[i]`)."""

    @property
    def find(self) -> str: ...
    @property
    def replace(self) -> str: ...
    @property
    def languages(self) -> Sequence[str]: ...
    @property
    def regex(self) -> bool: ...
    @property
    def ignore_case(self) -> bool: ...
    @property
    def whole_word(self) -> bool: ...


class ProfanityRules(Protocol):
    """The profanity mask (`vocabulary.profanity`)."""

    @property
    def enabled(self) -> bool: ...
    @property
    def mask(self) -> str: ...
    @property
    def words(self) -> Sequence[str]: ...
    @property
    def languages(self) -> Sequence[str]: ...


class VocabularyRules(Protocol):
    """The whole `vocabulary` section."""

    @property
    def replacements(self) -> Sequence[ReplacementRule]: ...
    @property
    def profanity(self) -> ProfanityRules: ...


# Scripts written without spaces between words, where "whole word" cannot mean anything: Thai, Lao,
# Myanmar, Khmer, Hangul (Korean has spaces, but particles attach to the word: 서울 in 서울에서),
# CJK punctuation, kana, Han and its extensions, halfwidth katakana.
_UNSPACED = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
    "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
    "\u2e80-\u2fdf\u3000-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0003134f"
)
# A letter or digit of a script that separates words by spaces.
_WORD = f"[^\\W{_UNSPACED}]"
_IS_WORD = re.compile(_WORD)
# Whole words: a boundary counts only where the match starts/ends with such a letter, so "Castle" needs a
# space or punctuation next to it (also in Japanese text: "Castleです"), while 城 or "-x" match anywhere.
# Literal words get fixed lookarounds; a regex match's ends are only known while matching, hence these:
_LEFT = f"(?:(?={_WORD})(?<!{_WORD})|(?!{_WORD}))"
_RIGHT = f"(?:(?<={_WORD})(?!{_WORD})|(?<!{_WORD}))"
# Python only takes global inline flags such as (?i) at the very start of a pattern.
_GLOBAL_FLAGS = re.compile(r"(?:\(\?[aiLmsux]+\))+")

# Masked by `profanity.enabled`: common English swearing only (no slurs), each also with a doubled last
# letter and a simple ending ("shitty", "fucking", "bitches"). Kept short so that false hits stay rare;
# "dick" is left out because it is a name and the German word for "thick".
BUILTIN_PROFANITY = (
    "arse arsehole asshole bastard bitch bollocks bullshit crap cunt damn fuck goddamn motherfucker "
    "piss shit twat wanker"
).split()
_ENDINGS = "(?:s|es|ed|ing|in|er|ers|y)?"


def _spaced(ch: str) -> bool:
    return _IS_WORD.match(ch) is not None


def compile_find(find: str, *, regex: bool, ignore_case: bool, whole_word: bool) -> re.Pattern[str]:
    """The pattern for one replacement rule; raises re.error for a bad regex."""
    flags = re.IGNORECASE if ignore_case else 0
    if not regex:
        body = re.escape(find)
        if whole_word and _spaced(find[0]):
            # Checked behind the literal (which matches exactly len(find) characters), so the engine can
            # still scan for the literal itself: several times faster than a leading lookbehind.
            body += f"(?<!{_WORD}[\\s\\S]{{{len(find)}}})"
        if whole_word and _spaced(find[-1]):
            body += f"(?!{_WORD})"
        return re.compile(body, flags)
    inline, body = "", find
    m = _GLOBAL_FLAGS.match(body)
    if m:
        inline, body = m.group(0), body[m.end() :]
    if whole_word:
        body = f"{_LEFT}(?:{body}){_RIGHT}"
    return re.compile(inline + body, flags)


def profanity_pattern(extra_words: Iterable[str], *, builtin: bool = True) -> re.Pattern[str] | None:
    """One case-insensitive pattern for the built-in words (with endings) and `extra_words` (as given)."""
    bodies = {w: f"{re.escape(w)}{re.escape(w[-1])}?{_ENDINGS}" for w in BUILTIN_PROFANITY} if builtin else {}
    for word in (w.strip() for w in extra_words):
        if word and word not in bodies:
            bodies[word] = re.escape(word)
    # Words needing the same boundaries share one group: a lookaround per group rather than per word is
    # several times faster.
    groups: dict[tuple[bool, bool], list[str]] = {}
    for word in bodies:
        groups.setdefault((_spaced(word[0]), _spaced(word[-1])), []).append(word)
    alternatives = []
    for (left, right), words in sorted(groups.items(), reverse=True):
        words.sort(key=len, reverse=True)  # so the whole of "motherfucker" is masked, not its "fucker"
        alternatives.append(
            (f"(?<!{_WORD})" if left else "")
            + f"(?:{'|'.join(bodies[w] for w in words)})"
            + (f"(?!{_WORD})" if right else "")
        )
    return re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None


def masked(word: str, mask: str = "*") -> str:
    """Keep the first character and any spaces; every other character becomes `mask`."""
    return word[:1] + "".join(ch if ch.isspace() else mask for ch in word[1:])


# For one language: its rules as (pattern, template), and the profanity pattern if it is masked.
_Plan = tuple[tuple[tuple[re.Pattern[str], str], ...], re.Pattern[str] | None]


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    template: str  # a re template: regex rules may use \1; literal ones are escaped
    languages: frozenset[str]  # empty = every language


def _rule(r: ReplacementRule) -> _Rule:
    pattern = compile_find(r.find, regex=r.regex, ignore_case=r.ignore_case, whole_word=r.whole_word)
    template = r.replace if r.regex else r.replace.replace("\\", "\\\\")
    return _Rule(pattern, template, frozenset(r.languages))


class Vocabulary:
    """Applies `vocabulary` to one caption text: replacements in order, then the profanity mask.

    Everything is compiled here once; apply() runs for every partial update, so it does no more than
    the regex substitutions that apply to the language.
    """

    def __init__(self, cfg: VocabularyRules) -> None:
        self._rules = tuple(_rule(r) for r in cfg.replacements)
        p = cfg.profanity
        self._profanity = profanity_pattern(p.words) if p.enabled else None
        self._profanity_languages = frozenset(p.languages)
        self._mask_char = p.mask
        self._plans: dict[str, _Plan] = {}

    @property
    def active(self) -> bool:
        """False when apply() never changes anything (no rules, no mask)."""
        return bool(self._rules) or self._profanity is not None

    def apply(self, language: str, text: str) -> str:
        """`text` of caption `language` (a target code or "source") as it should be shown."""
        plan = self._plans.get(language)
        if plan is None:
            plan = self._plans[language] = self._plan(language)
        rules, profanity = plan
        for pattern, template in rules:
            text = pattern.sub(template, text)
        if profanity is not None:
            text = profanity.sub(self._mask, text)
        return text

    def _mask(self, m: re.Match[str]) -> str:
        return masked(m.group(0), self._mask_char)

    def _plan(self, language: str) -> _Plan:
        rules = tuple((r.pattern, r.template) for r in self._rules if not r.languages or language in r.languages)
        masks = not self._profanity_languages or language in self._profanity_languages
        return rules, self._profanity if masks else None
