"""Help in config errors: every pydantic problem at once, and the nearest key or language code to a mistyped one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from .sections import _pydantic_problem, key_path

# Codes people write that are country codes or old habits, not the ISO 639-1 language code the service wants.
_COMMON_MISTAKES = {
    "jp": "ja",
    "cn": "zh",
    "kr": "ko",
    "gr": "el",
    "dk": "da",
    "se": "sv",
    "ua": "uk",
    "cz": "cs",
    "vn": "vi",
    "br": "pt",
    "iw": "he",
    "in": "id",
}
# Where `captioner check` points a user who has no key yet.
DEMO_HINT = "no key yet? `captioner demo` runs without one, at no cost"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """'; did you mean `x`?' for the nearest choice, or '' when none is near."""
    options = sorted(set(choices))
    near = difflib.get_close_matches(word, options, n=1, cutoff=0.6) or difflib.get_close_matches(
        word.lower(), options, n=1, cutoff=0.6
    )
    return f"; did you mean `{near[0]}`?" if near else ""


def language_hint(code: str, languages: Iterable[str]) -> str:
    """'; did you mean `ja`?' for `jp` (a country code), `JA` or a near typo; '' when nothing fits."""
    known = set(languages)
    lowered = code.lower()
    guess = _COMMON_MISTAKES.get(lowered, lowered)
    if guess in known and guess != code:
        return f"; did you mean `{guess}`?"
    return did_you_mean(code, known)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def known_keys(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The keys allowed beside the last part of `loc`: the fields of the model(s) its parent is."""
    models = [root]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        named = [m for m in models if m.__name__ == part]  # pydantic names a union member in the loc
        if named:
            models = named
            continue
        models = [
            m for model in models if part in model.model_fields for m in _models_in(model.model_fields[part].annotation)
        ]
    return sorted({name for m in models for name in m.model_fields})


def problems(e: ValidationError, root: type[BaseModel], prefix: tuple[str | int, ...] = ()) -> list[tuple[str, str]]:
    """Every problem pydantic found, each (key path, problem), an unknown key with the nearest known one."""
    out: list[tuple[str, str]] = []
    for err in e.errors():
        loc = tuple(err["loc"])
        problem = _pydantic_problem(err)
        if err["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
            hint = did_you_mean(loc[-1], known_keys(root, loc))
            if not hint and len(loc) == 1:
                # A key one level too high ("targets:" beside the sections): name the section it belongs in.
                hint = next(
                    (f"; did you mean `{s}.{loc[0]}`?" for s, f in root.model_fields.items() if loc[0] in _keys(f)), ""
                )
            problem += hint
        out.append((key_path((*prefix, *loc)), problem))
    return out


def _keys(field: Any) -> set[str]:
    return {name for m in _models_in(field.annotation) for name in m.model_fields}


def config_error(e: ValidationError, root: type[BaseModel], prefix: tuple[str | int, ...] = ()) -> ConfigError:
    """A ConfigError for the first problem that carries all of them (`captioner check` prints each)."""
    found = problems(e, root, prefix)
    error = ConfigError(*found[0])
    error.problems = found
    return error
