"""One exception root: config errors (fatal, exit 2) apart from link errors (retried)."""

from __future__ import annotations

from .redaction import redact


def describe(e: BaseException) -> str:
    """An exception as one line for logs and /status: its type, and its message when it has one."""
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class CaptionerError(Exception):
    """Root of every error captioner raises on purpose."""

    def __init__(self, *args: object) -> None:
        # Messages often quote what a server said, and a server may echo the key: no secret gets into one.
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigError(CaptionerError):
    """The configuration is wrong; the message names the key path."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem
        # Every problem found in one pass, the first being this one's (several when pydantic reports several).
        self.problems: list[tuple[str, str]] = [(key, problem)]


class LinkError(CaptionerError):
    """A link to the outside failed; the link retries."""


class AuthError(LinkError):
    """The service refused the credentials; retrying soon will not help."""
