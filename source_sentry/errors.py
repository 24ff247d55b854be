"""The connector's exceptions, each carrying the Airbyte ``failure_type`` it maps to.

Every failure a user can cause is raised as one of these with a message that names
what to fix; anything else reaching the top level is our bug (``system_error``).
"""

from __future__ import annotations

import json

__all__ = [
    "ConfigError",
    "SentrySourceError",
    "StreamAccessError",
    "TransientError",
    "redact",
    "redact_bytes",
    "register_secret",
]


class SentrySourceError(Exception):
    """Base class: ``message`` is for the user, ``internal`` for logs (already redacted)."""

    failure_type = "system_error"

    def __init__(self, message: str, *, internal: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.internal = internal or message


class ConfigError(SentrySourceError):
    """The user must change something: config, catalog, state, token, scopes, names."""

    failure_type = "config_error"


class TransientError(SentrySourceError):
    """Retrying later may help: network failures, 5xx after retries, rate-limit exhaustion."""

    failure_type = "transient_error"


class StreamAccessError(ConfigError):
    """The token cannot read one stream (403/404 on its endpoint); the other streams go on."""


_SECRETS: set[str] = set()


def register_secret(secret: str | None) -> None:
    """Remember a secret so :func:`redact` removes it from any text we output."""
    if secret and len(secret) >= 4:
        _SECRETS.add(secret)
        # In JSON text a quote or backslash of the secret is escaped: mask that form too.
        escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
        if escaped != secret:
            _SECRETS.add(escaped)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``****``."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "****")
    return text


def redact_bytes(data: bytes) -> bytes:
    """Bytes flavour of :func:`redact`, for serialized protocol lines."""
    for secret in _SECRETS:
        encoded = secret.encode()
        if encoded in data:
            data = data.replace(encoded, b"****")
    return data
