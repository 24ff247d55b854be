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


def test_the_fill_is_the_rate_times_the_answer_time_once_the_window_is_learned() -> None:
    async def scenario() -> tuple[int, int, int]:
        budget = EndpointBudget("organizations/{organization}/issues/{issue_id}/events/", 25)
        t = int(time.time()) + 5
        await budget.acquire()
        await budget.release(_headers(remaining=39, reset=t), seconds=0.03)
        before = budget.fill  # the window's length not known yet: the concurrency
        await budget.acquire()
        await budget.release(_headers(remaining=39, reset=t + 1), seconds=0.03)  # windows of 1 s
        fast = budget.fill  # 2 x 40 a second x 0.03 s: 2.4, so 3
        for _ in range(30):
            await budget.acquire()
            await budget.release(_headers(remaining=38, reset=t + 1), seconds=0.5)
        return before, fast, budget.fill  # slow answers: more in flight, at most the concurrency

    assert asyncio.run(scenario()) == (25, 3, 25)


def test_a_learned_window_ends_whole_windows_after_the_last_not_after_the_wait() -> None:
    async def scenario() -> tuple[float, float]:
        budget = EndpointBudget("organizations/{organization}/issues/{issue_id}/events/", 25)
        t = int(time.time()) + 1
        await budget.acquire()
        await budget.release(_headers(remaining=39, reset=t))
        await budget.acquire()
        await budget.release(_headers(remaining=0, reset=t + 1))  # windows of 1 s; this one used up
        await budget.acquire()  # waits for t + 1, and a margin past it: the next window ends at t + 2
        return budget.window_ends, float(t + 2)

    ends, expected = asyncio.run(scenario())
    assert ends == expected
