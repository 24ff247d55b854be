"""The retry policy: which failures are retried, and how long to wait before the next attempt.

One attempt is one GET with one deadline covering connect, headers and the whole body (a
server that drips its body must not hold a request for longer than ``request_timeout``).
Retried, with exponential backoff up to ``max_retries``: 5xx, 408, a 400 "query timeout",
timeouts, connection failures, unreadable bodies (truncated, not JSON, a wrong
``Content-Encoding``). A 429 waits for the rate-limit window to reset and is not counted,
within a budget of time. TLS failures and a host that never resolved are the user's to fix and
fail at once (after two quick tries for DNS).
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
from dataclasses import dataclass

from ..errors import ConfigError, TransientError, redact
from .wire import ConnectTimeout, DecodingError

__all__ = ["Attempts", "retryable_status", "transport_problem"]

# Retries back off from 0.5 s, doubling, to at most this long between attempts.
_MAX_BACKOFF = 30.0
# A request that keeps hitting 429s gives up after this long (Sentry's windows are <= 60 s).
_RATE_LIMIT_BUDGET = 15 * 60.0
# A host that never answered and does not resolve: this many quick tries before saying so.
_UNRESOLVED_TRIES = 2


@dataclass
class Attempts:
    """The attempts of one request: counts failures against ``max_retries`` and sleeps."""

    max_retries: int
    host: str
    path: str
    failures: int = 0
    rate_limited_for: float = 0.0

    async def failed(self, problem: str) -> None:
        """An attempt failed with ``problem``: raise once retries are exhausted, else back off."""
        self.failures += 1
        if self.failures > self.max_retries:
            raise TransientError(
                f"Sentry at {self.host} {problem} for {self.path} ({self.failures} attempts); "
                "this is usually temporary: try again later.",
            )
        await asyncio.sleep(min(_MAX_BACKOFF, 0.5 * 2 ** (self.failures - 1)) * (0.5 + random.random() / 2))

    async def unresolved(self, hostname: str) -> None:
        """The host name did not resolve and the host never answered in this run: after a
        couple of quick tries it is a config problem, not a network blip."""
        self.failures += 1
        if self.failures >= _UNRESOLVED_TRIES or self.failures > self.max_retries:
            raise ConfigError(
                f"The host name {hostname} does not resolve (DNS lookup failed). Check hostname in the config "
                "(blank means sentry.io) and this machine's network and DNS settings.",
            )
        await asyncio.sleep(0.5)

    async def rate_limited(self, delay: float) -> None:
        """A 429: wait ``delay`` (until the window resets) unless the budget of waits is spent."""
        self.rate_limited_for += delay
        if self.rate_limited_for > _RATE_LIMIT_BUDGET:
            raise TransientError(
                f"Sentry kept rate-limiting {self.path} on {self.host} for {self.rate_limited_for:.0f} s; "
                "try again later or reduce other API usage of this organization.",
            )
        await asyncio.sleep(delay)


def retryable_status(status: int, detail: str) -> str | None:
    """The problem of an answer worth asking again (5xx, 408, a query timeout), else None."""
    if status >= 500 or status == 408:
        return f"answered HTTP {status}"
    if status == 400 and "timeout" in detail.lower():
        return f"answered HTTP 400 ({detail})"
    return None


def transport_problem(exc: Exception, host: str, timeout: float) -> str:
    """What went wrong on the wire, for a retry; raises :class:`ConfigError` for TLS failures."""
    if isinstance(exc, (ConnectTimeout, asyncio.TimeoutError, TimeoutError)):
        return f"timed out (no complete answer within {timeout:g} s)"
    if isinstance(exc, DecodingError):
        return f"answered 200 with an unreadable body ({redact(str(exc)) or 'content decoding failed'})"
    _raise_if_tls(exc, host)
    return f"connection failed ({redact(str(exc)) or type(exc).__name__})"


def is_unresolved(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a failed DNS lookup."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _raise_if_tls(exc: BaseException, host: str) -> None:
    """TLS failures are the user's to fix (CA bundle, hostname): never retried."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            raise ConfigError(
                f"TLS verification failed for {host}: {redact(str(cause))}. If the server uses a private CA, "
                "set ca_bundle to its PEM file; check that hostname is the certificate's name.",
            ) from None
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or ("SSL" in text and "certificate" in text.lower()):
        raise ConfigError(
            f"TLS verification failed for {host}: {redact(text)}. If the server uses a private CA, set ca_bundle.",
        ) from None
