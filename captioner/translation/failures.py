"""Pure: the ways a translator link fails, each telling the session how (and whether) to retry."""

from __future__ import annotations

from ..errors import LinkError


class SessionRejected(LinkError):
    """The service refused our session.update (bad language, modalities, ...)."""


class RateLimited(LinkError):
    """The service closed us for opening connections too fast."""


class Stalled(LinkError):
    """Speech was sent but the service stopped answering."""


class ModelNotFound(LinkError):
    """The service does not know the model (handshake 404): retrying cannot help until the config changes."""


class VoiceRejected(SessionRejected):
    """The service refused the voice: retrying the same session.update cannot help."""


class IdleClosed(LinkError):
    """The service closed a session that had generated no response for minutes (§7 idle timeout)."""
