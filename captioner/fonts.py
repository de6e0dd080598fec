"""Which installed font family has a language's glyphs: fontconfig on Linux, a known family elsewhere."""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import sys

from .placement import fontconfig_lang, known_family

log = logging.getLogger(__name__)


def platform_name() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    return "macos" if sys.platform == "darwin" else "linux"


@functools.cache
def family_for(language: str) -> str:
    """A sans-serif family with `language`'s glyphs; OBS's FreeType source has no fallback, so it must have them all."""
    platform = platform_name()
    if platform != "linux" or shutil.which("fc-match") is None:
        return known_family(language, platform)
    lang = fontconfig_lang(language)
    try:
        out = subprocess.run(
            ["fc-match", "-f", "%{family[0]}\t%{lang}", f"sans-serif:lang={lang}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        log.warning(
            "fontconfig could not be asked for a %s font (%s); using %s", language, e, known_family(language, platform)
        )
        return known_family(language, platform)
    family, _, langs = out.partition("\t")
    # fc-match always answers with its best match, even one without the language: say what to install.
    if lang not in langs.split("|"):
        log.warning(
            "no installed font has %s glyphs (fontconfig offers %r): install one, e.g. fonts-noto-cjk, "
            "or set outputs[].style.font",
            language,
            family,
        )
    return family or known_family(language, platform)


def families(languages: list[str]) -> dict[str, str]:
    return {lang: family_for(lang) for lang in languages}
