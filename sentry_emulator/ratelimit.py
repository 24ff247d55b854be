"""Sentry's rate limits: fixed windows per caller and endpoint, plus concurrent request caps.

Windows are aligned on emulator epoch time (`floor(now / window)`), as in Sentry's middleware, and
`X-Sentry-Rate-Limit-Reset` is the integer epoch second when the current window ends, so a client
that waits until Reset whenever Remaining is 0 never sees a 429.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Union

__all__ = ["EVENTS_ROUTE", "EXPLORE_ROUTE", "Decision", "RateLimitPreset", "RateLimiter", "RateLimits"]

EVENTS_ROUTE = "/api/0/projects/{org}/{project}/events/"
EXPLORE_ROUTE = "/api/0/organizations/{org}/events/"  # Explore (organization events) has its own
RateLimitPreset = Literal["none", "sentry"]


@dataclass(frozen=True)
class RateLimits:
    """Defaults are Sentry's live values; override any field (e.g. `RateLimits(limit=5)`)."""

    limit: int = 40
    window: int = 1
    concurrent: int = 25
    events_limit: int = 60
    events_window: int = 60
    events_concurrent: int = 1
    explore_limit: int = 30
    explore_window: int = 1
    explore_concurrent: int = 15
    # route template -> (limit, window seconds, concurrent), for endpoints with their own limits
    overrides: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def for_route(self, route: str) -> tuple[int, int, int]:
        if route in self.overrides:
            return self.overrides[route]
        if route == EVENTS_ROUTE:
            return self.events_limit, self.events_window, self.events_concurrent
        if route == EXPLORE_ROUTE:
            return self.explore_limit, self.explore_window, self.explore_concurrent
        return self.limit, self.window, self.concurrent


RateLimitSetting = Union[RateLimitPreset, RateLimits, None]  # noqa: UP007 - a runtime alias: `|` needs 3.10 objects


def resolve(setting: RateLimitSetting) -> RateLimits | None:
    if setting is None or setting == "none":
        return None
    if setting == "sentry":
        return RateLimits()
    if isinstance(setting, RateLimits):
        return setting
    raise ValueError(f"rate_limits must be 'none', 'sentry' or RateLimits, not {setting!r}")


@dataclass
class Decision:
    allowed: bool
    headers: dict[str, str]
    body: str | None = None  # Sentry's bare JSON string when refused
    release: Callable[[], None] = lambda: None  # frees the concurrent slot


class RateLimiter:
    def __init__(self, limits: RateLimits, now: Callable[[], float]) -> None:
        self.limits, self._now = limits, now
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}  # (caller, route) -> (window no, count)
        self._inflight: dict[tuple[str, str], int] = {}

    def check(self, caller: str, route: str) -> Decision:
        limit, window, concurrent = self.limits.for_route(route)
        key = (caller, route)
        with self._lock:
            now = self._now()
            number = math.floor(now / window)
            seen_no, count = self._windows.get(key, (number, 0))
            count = count + 1 if seen_no == number else 1
            self._windows[key] = (number, count)
            inflight = self._inflight.get(key, 0)
            reset = (number + 1) * window
            over_rate = count > limit
            over_conc = not over_rate and inflight >= concurrent
            if not over_rate and not over_conc:
                self._inflight[key] = inflight + 1
                inflight += 1
            headers = {
                "X-Sentry-Rate-Limit-Limit": str(limit),
                "X-Sentry-Rate-Limit-Remaining": str(max(0, limit - count)),
                "X-Sentry-Rate-Limit-Reset": str(int(reset)),
                "X-Sentry-Rate-Limit-ConcurrentLimit": str(concurrent),
                "X-Sentry-Rate-Limit-ConcurrentRemaining": str(max(0, concurrent - inflight)),
            }
        if over_rate:
            return Decision(False, headers, "You are attempting to use this endpoint too frequently. "
                                            f"Limit is {limit} requests in {window} seconds")
        if over_conc:
            return Decision(False, headers, "You are attempting to go above the allowed concurrency for "
                                            f"this endpoint. Concurrency limit is {concurrent}")
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                with self._lock:
                    self._inflight[key] = max(0, self._inflight.get(key, 1) - 1)

        return Decision(True, headers, None, release)
