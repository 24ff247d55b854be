"""The per-route rate budget, in-process: how it reads Sentry's headers over time."""

from __future__ import annotations

import asyncio
import time

from source_sentry.http.ratelimit import EndpointBudget


def _headers(remaining: int, reset: int) -> dict[str, str]:
    return {
        "x-sentry-rate-limit-limit": "40",
        "x-sentry-rate-limit-remaining": str(remaining),
        "x-sentry-rate-limit-reset": str(reset),
        "x-sentry-rate-limit-concurrentlimit": "25",
    }


def test_a_slow_answer_from_the_window_before_does_not_restart_the_current_one() -> None:
    async def scenario() -> int:
        budget = EndpointBudget("organizations/{organization}/releases/{version}/deploys/", 25)
        t = int(time.time()) + 2
        await budget.acquire()
        await budget.release(_headers(remaining=39, reset=t + 1))  # the window ending at t + 1
        await budget.acquire()
        await budget.release(_headers(remaining=0, reset=t))  # sent in the window before, answered late
        await budget.acquire()  # 38 left in the current window: no wait
        return budget.waits

    assert asyncio.run(scenario()) == 0


def test_a_window_used_up_waits_for_its_reset() -> None:
    async def scenario() -> tuple[int, float]:
        budget = EndpointBudget("organizations/{organization}/releases/{version}/deploys/", 25)
        t = int(time.time()) + 1
        await budget.acquire()
        await budget.release(_headers(remaining=0, reset=t))
        started = time.time()
        await budget.acquire()
        return budget.waits, time.time() - started

    waits, waited = asyncio.run(scenario())
    assert waits == 1 and waited > 0
