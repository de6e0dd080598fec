"""The dashboard's and overlay's HTML, CSS and JS, read from the package's static/ files and filled in."""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

# Placeholders look like @@NAME@@: no f-string or str.format, whose braces would clash with every JS and CSS block.
_PLACEHOLDER = re.compile(r"@@(\w+)@@")


def text(name: str) -> str:
    """The file static/<name>, from the installed package (a wheel, an sdist install or the source tree alike)."""
    return (resources.files("captioner.web") / "static" / name).read_text(encoding="utf-8")


def inline(name: str) -> str:
    """static/<name> as the content of an inline <style> or <script>: it starts on the line after the tag.

    The dashboard's CSP hashes exactly this string, so the page must insert it unchanged.
    """
    return "\n" + text(name)


def fill(template: str, values: Mapping[str, object]) -> str:
    """template with every @@NAME@@ replaced by str(values[NAME]); a NAME missing from values is a KeyError.

    One pass: text put in is never searched again, so a value that happens to contain @@X@@ stays as it is.
    """
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)
