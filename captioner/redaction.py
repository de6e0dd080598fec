"""Secrets known to the process, and the one function that takes them out of any text from the outside."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlsplit

_MASK = "***"
# Shorter values (an empty password, "1234") would mask ordinary words and numbers all over the text.
_MIN_LEN = 4
_secrets: set[str] = set()


def add_secrets(*values: str) -> None:
    """Remember secrets (the API key, OBS password, control token) for as long as the process runs."""
    _secrets.update(v for v in values if len(v) >= _MIN_LEN)


def add_url_secrets(url: str) -> None:
    """Remember a URL that is itself a secret (a caption ingestion URL, a webhook) and the parts that make it one.

    The parts go too because a URL is often quoted re-encoded or cut (an HTTP library's error message): every query
    value, the password, and path segments that look like tokens (8+ characters with a digit, as webhook URLs carry).
    """
    parts = urlsplit(url)
    values = [v for _, v in parse_qsl(parts.query, keep_blank_values=True)]
    segments = [seg for seg in parts.path.split("/") if len(seg) >= 8 and any(ch.isdigit() for ch in seg)]
    add_secrets(url, *values, *segments, parts.password or "")


def redact(text: str) -> str:
    """`text` with every known secret replaced by ***; longest first, so a secret inside another goes too."""
    if not _secrets or not any(s in text for s in _secrets):
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


class RedactFilter(logging.Filter):
    """Defence in depth: no log line ever carries a secret, whoever wrote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info and not record.exc_text:
                # An exception's text is formatted after the filters ran: format it here, cleaned.
                record.exc_text = redact(_FORMATTER.formatException(record.exc_info))
        return True


_FORMATTER = logging.Formatter()
