"""The connector's exceptions, each carrying the Airbyte ``failure_type`` it maps to, and the
one place where an HTTP status from Sentry becomes a message that says what to fix.

Every failure a user can cause is raised as one of these; anything else reaching the top level
is our bug (``system_error``). Code tells errors apart by their attributes (``status``,
``code``), never by their text, so rewording a message changes no behaviour.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ConfigError",
    "HTTPStatusError",
    "PaginationError",
    "SentrySourceError",
    "TransientError",
    "redact",
    "redact_bytes",
    "register_secret",
    "status_error",
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


class PaginationError(TransientError):
    """A list's pages cannot be trusted (no usable next cursor on a full page, a loop): the
    list stops there and its cursor stays where it was, so the next sync reads it again."""


class HTTPStatusError(SentrySourceError):
    """Sentry refused a request with ``status``; ``code`` is Sentry's error code when its body
    has one (``resource-moved``), ``extra`` its details (``{"slug": "<new slug>"}``)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        path: str,
        code: str | None = None,
        detail: str = "",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.path = path
        self.code = code
        self.detail = detail
        self.extra = dict(extra or {})
        # A token, scope, name or address the user gave is wrong; anything else is ours to fix.
        self.failure_type = "config_error" if status in (401, 403, 404) or 300 <= status < 400 else "system_error"
        if status == 410:
            self.failure_type = "transient_error"  # a brownout of a deprecated endpoint ends by itself

    @property
    def moved_to(self) -> str | None:
        """The new slug of a renamed project (Sentry's ``resource-moved`` answer), if this is one."""
        slug = self.extra.get("slug")
        return str(slug) if 300 <= self.status < 400 and slug else None


def status_error(
    status: int,
    body: Any,
    *,
    host: str,
    path: str,
    scope: str,
    organization: str,
    path_params: Mapping[str, str],
    location: str = "",
    deprecation: str = "",
) -> HTTPStatusError:
    """The exception for Sentry's non-retryable answer ``status`` with JSON ``body`` to a GET of
    ``path`` (a route needing ``scope``, its placeholders filled from ``path_params``);
    ``deprecation`` is what Sentry said of the route's retirement, if anything."""
    detail, code, extra = _sentry_detail(body)
    project = path_params.get("project")

    def error(message: str) -> HTTPStatusError:
        return HTTPStatusError(message, status=status, path=path, code=code, detail=detail, extra=extra)

    if status == 401:
        return error(
            f"Sentry at {host} rejected the auth token ({detail or 'HTTP 401'}). Check auth_token: it may be "
            f"mistyped, revoked or expired; create one at https://{host}/settings/account/api/auth-tokens/ "
            "with the scopes org:read, project:read, event:read and project:releases."
        )
    if status == 403:
        return error(
            f"The auth token may not read {path} on {host} (HTTP 403: {detail or 'forbidden'}). "
            f"Give the token the scope '{scope}' and access to the project, or deselect this stream."
        )
    if status == 404:
        return error(
            f"Sentry at {host} says {path} does not exist (HTTP 404). Check the organization slug "
            f"'{organization}' and the project slugs in the config."
        )
    if status == 410:
        # Sentry turns retiring endpoints off for scheduled brownouts before removing them.
        said = f"{deprecation}. " if deprecation else ""
        return error(
            f"Sentry at {host} answered 410 Gone for {path} ({detail or 'no detail'}): {said}"
            "This is a scheduled brownout of a deprecated endpoint and is temporary; the next sync tries again. "
            "Upgrade source-sentry if it persists."
        )
    if 300 <= status < 400:
        new_slug = str(extra.get("slug")) if extra.get("slug") else None
        if new_slug and project:
            return error(
                f"Project '{project}' was renamed to '{new_slug}' in Sentry (HTTP {status}, resource-moved). "
                f"Replace '{project}' with '{new_slug}' in the config's project/projects."
            )
        where = _host_of(location)
        return error(
            f"Sentry at {host} redirected {path} to {where or 'another address'} (HTTP {status}); redirects are not "
            "followed (they could carry the token elsewhere). Set hostname to the server's final address."
        )
    return error(f"Sentry at {host} refused a request for {path} (HTTP {status}: {detail or 'no detail'}).")


def _sentry_detail(body: Any) -> tuple[str, str | None, dict[str, Any]]:
    """Sentry's ``detail``: a string, or ``{"code", "message", "extra"}``; a bare string body.
    A renamed project's new slug is in ``extra`` (older servers: in ``detail`` or the body)."""
    if isinstance(body, str):
        return redact(body), None, {}
    if not isinstance(body, dict):
        return "", None, {}
    detail = body.get("detail")
    if isinstance(detail, dict):
        code = detail.get("code")
        extra = dict(detail["extra"]) if isinstance(detail.get("extra"), dict) else {}
        slug = extra.get("slug") or detail.get("slug") or body.get("slug")
        if slug:
            extra["slug"] = slug
        message = detail.get("message")
        return redact(str(message)) if message is not None else "", str(code) if code is not None else None, extra
    return (redact(str(detail)) if detail is not None else ""), None, ({"slug": body["slug"]} if body.get("slug") else {})


def _host_of(url: str) -> str:
    rest = url.split("://", 1)[1] if "://" in url else ""
    return rest.split("/", 1)[0].rpartition("@")[2]


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
