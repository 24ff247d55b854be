"""One rate-limit budget per Sentry host, paced by Sentry's own headers.

Sentry limits each caller per endpoint in fixed windows and caps concurrent requests,
and reports both on every response (``X-Sentry-Rate-Limit-*``). A :class:`RateBudget`
keeps one :class:`EndpointBudget` per endpoint route and is shared by every stream and
project of a sync, so the strict project-events limit and the looser default limit are
each used fully and neither is exceeded. Self-hosted servers send no such headers; then
only a fixed concurrency cap applies.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping

__all__ = ["EndpointBudget", "RateBudget"]

# Before the first response of an endpoint tells us its concurrency limit, one at a time:
# the strictest Sentry endpoint (project events) allows a single concurrent request.
_UNKNOWN_CONCURRENCY = 1
# Servers without rate-limit headers (self-hosted): a polite fixed cap.
_HEADERLESS_CONCURRENCY = 8
# Sentry's reset is whole epoch seconds; a small margin avoids landing just before it.
_RESET_MARGIN = 0.05
# The weight of the newest answer in the route's running answer time.
_LATENCY_WEIGHT = 0.2
# Requests in flight to spend a window's limit within it: this many times the rate times the
# answer time (Little's law), so slower answers within a window still spend it.
_FILL_SLACK = 2.0


class EndpointBudget:
    """Window and concurrency accounting for one endpoint route of one host."""

    def __init__(self, key: str, max_concurrency: int) -> None:
        self.key = key
        self._max_concurrency = max_concurrency
        self._concurrency = _UNKNOWN_CONCURRENCY
        self._in_flight = 0
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at = 0.0  # local epoch seconds
        self._last_reset: int | None = None  # the latest reset header (server epoch seconds)
        self._window: int | None = None  # seconds: the least step seen between resets
        self._latency: float | None = None  # seconds: the route's running answer time
        self._cond = asyncio.Condition()
        self.waits = 0
        self.wait_seconds = 0.0

    @property
    def concurrency(self) -> int:
        """Concurrent requests allowed: learned from the route's answers (1 before the first)."""
        return self._concurrency

    @property
    def limited(self) -> bool:
        """Whether the route's answers announced a rate limit (Sentry's headers)."""
        return self._limit is not None

    @property
    def window_ends(self) -> float:
        """When the current window ends (local epoch seconds, as far as known)."""
        return self._reset_at

    @property
    def fill(self) -> int:
        """Requests in flight enough to spend the route's limit within each of its windows: its
        rate (limit per window, both learned from its headers) times its answer time, doubled,
        at most its concurrency; the concurrency until all three are known. A reader of many
        chains of pages keeps this many going, so that each chain gets more of a window's
        requests than a turn of the concurrency would give it."""
        if self._limit is None or self._window is None or self._latency is None:
            return self._concurrency
        need = math.ceil(_FILL_SLACK * self._limit * self._latency / self._window)
        return max(1, min(self._concurrency, need))

    @property
    def in_flight(self) -> int:
        """Requests started and not yet released."""
        return self._in_flight

    async def acquire(self) -> None:
        """Wait until a request may start without exceeding the window or concurrency."""
        async with self._cond:
            while True:
                now = time.time()
                if self._limit is not None and now >= self._reset_at:
                    # The window ended: a fresh one starts with the full limit, less the requests
                    # still on their way (sent just before the end, the server may count them in
                    # the new window: at 40 a second, 25 at a time, that was up to 19 x 429 in a
                    # read of 300 pages, measured). The first answer of the window corrects it.
                    self._remaining = self._limit - self._in_flight
                    if self._window is not None:
                        # Windows are aligned: the next ends whole windows after this one. A
                        # guess of a second from now drifted later by the time waited past each
                        # end (measured: 0.05 s a window, then requests of the next window sent
                        # in the end of the one before: 4 x 429 in 600 requests).
                        self._reset_at += self._window * math.ceil((now - self._reset_at + 1e-9) / self._window)
                    else:
                        self._reset_at = now + 1.0  # until a response tells the real end
                if self._in_flight >= self._concurrency:
                    await self._cond.wait()
                    continue
                if self._remaining is not None and self._remaining <= 0:
                    delay = max(self._reset_at - now, 0.0) + _RESET_MARGIN
                    self.waits += 1
                    self.wait_seconds += delay
                    try:
                        await asyncio.wait_for(self._cond.wait(), timeout=delay)
                    except asyncio.TimeoutError:
                        pass
                    continue
                self._in_flight += 1
                if self._remaining is not None:
                    self._remaining -= 1  # reserve: the header of this response will confirm it
                return

    async def release(
        self, headers: Mapping[str, str] | None, clock_skew: float = 0.0, seconds: float | None = None
    ) -> None:
        """Finish a request, learning the limits from its response ``headers`` (if any) and the
        route's answer time from ``seconds`` (the request's, from start to answer)."""
        async with self._cond:
            self._in_flight -= 1
            if seconds is not None:
                last = self._latency
                self._latency = seconds if last is None else last + _LATENCY_WEIGHT * (seconds - last)
            if headers is not None:
                self._learn(headers, clock_skew)
            self._cond.notify_all()

    async def exhausted(self, headers: Mapping[str, str], clock_skew: float = 0.0) -> float:
        """Record a 429 and return how long to wait before retrying."""
        async with self._cond:
            self._learn(headers, clock_skew)
            now = time.time()
            if self._limit is not None:
                self._remaining = 0
            delay = max(self._reset_at - now, 0.0) + _RESET_MARGIN
            if self._limit is None:
                delay = 1.0  # a 429 without headers (a proxy?): back off a little
            self.waits += 1
            self.wait_seconds += delay
            return delay

    def _learn(self, headers: Mapping[str, str], clock_skew: float) -> None:
        limit = _int_header(headers, "x-sentry-rate-limit-limit")
        remaining = _int_header(headers, "x-sentry-rate-limit-remaining")
        reset = _int_header(headers, "x-sentry-rate-limit-reset")
        concurrent = _int_header(headers, "x-sentry-rate-limit-concurrentlimit")
        if limit is None and concurrent is None:
            if self._limit is None:
                self._concurrency = min(_HEADERLESS_CONCURRENCY, self._max_concurrency)
            return
        if concurrent is not None and concurrent > 0:
            self._concurrency = max(1, min(concurrent, self._max_concurrency))
        if limit is None or remaining is None or reset is None:
            return
        self._limit = limit
        if self._last_reset is not None and reset > self._last_reset:
            step = reset - self._last_reset  # windows are aligned: the least step is the window
            self._window = step if self._window is None else min(self._window, step)
        if self._last_reset is None or reset > self._last_reset:
            self._last_reset = reset
        reset_local = reset - clock_skew
        now = time.time()
        if reset_local + _RESET_MARGIN < now:
            return  # a late response from a window that has already ended
        if self._remaining is None or reset_local > self._reset_at + 0.5:
            # A window we had not seen: its numbers, less our requests still on their way.
            self._reset_at = reset_local
            self._remaining = remaining - self._in_flight
        elif reset_local < self._reset_at - 0.5:
            # A slow answer from the window before ours (ours may have started locally): taking
            # its numbers would restart the window just begun and overrun it (measured: 11 x 429).
            return
        else:
            # The same window: our own count holds every request we started, the header
            # adds other callers'. The lower of the two is the truth we can rely on; the
            # header's end is the real one (ours may be a guess).
            self._remaining = min(self._remaining, remaining)
            self._reset_at = reset_local


class RateBudget:
    """All endpoint budgets of one Sentry host, shared by every stream and project."""

    def __init__(self, max_concurrency: int = 25) -> None:
        self._max_concurrency = max_concurrency
        self._endpoints: dict[str, EndpointBudget] = {}

    def endpoint(self, route: str) -> EndpointBudget:
        budget = self._endpoints.get(route)
        if budget is None:
            budget = self._endpoints[route] = EndpointBudget(route, self._max_concurrency)
        return budget

    @property
    def waits(self) -> int:
        return sum(b.waits for b in self._endpoints.values())

    @property
    def wait_seconds(self) -> float:
        return sum(b.wait_seconds for b in self._endpoints.values())


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None
