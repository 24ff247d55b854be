"""Sentry's rate-limit headers, 429 bodies, concurrency caps; exact windows."""

from __future__ import annotations

import threading
import time

from emu_helpers import client

from sentry_emulator import RateLimits

HEADERS = ("X-Sentry-Rate-Limit-Limit", "X-Sentry-Rate-Limit-Remaining", "X-Sentry-Rate-Limit-Reset",
           "X-Sentry-Rate-Limit-ConcurrentLimit", "X-Sentry-Rate-Limit-ConcurrentRemaining")


def test_no_limits_means_no_headers(emulator) -> None:
    with client(emulator) as c:
        r = c.get("/api/0/organizations/acme/projects/")
    assert not any(h in r.headers for h in HEADERS)


def test_sentry_preset_headers(make_emulator) -> None:
    emu = make_emulator(rate_limits="sentry")
    with client(emu) as c:
        r = c.get("/api/0/organizations/acme/projects/")
        e = c.get("/api/0/projects/acme/backend/events/")
    assert r.headers["X-Sentry-Rate-Limit-Limit"] == "40"
    assert r.headers["X-Sentry-Rate-Limit-ConcurrentLimit"] == "25"
    assert int(r.headers["X-Sentry-Rate-Limit-Reset"]) >= int(time.time())
    assert (e.headers["X-Sentry-Rate-Limit-Limit"], e.headers["X-Sentry-Rate-Limit-ConcurrentLimit"]) == ("60", "1")


def test_over_the_limit_is_429_with_a_bare_string_and_no_retry_after(make_emulator) -> None:
    emu = make_emulator(rate_limits=RateLimits(limit=3, window=60))
    with client(emu) as c:
        statuses = [c.get("/api/0/organizations/acme/teams/") for _ in range(5)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    refused = statuses[3]
    assert refused.json() == "You are attempting to use this endpoint too frequently. Limit is 3 requests in 60 seconds"
    assert "Retry-After" not in refused.headers
    assert refused.headers["X-Sentry-Rate-Limit-Remaining"] == "0"
    assert [r.headers["X-Sentry-Rate-Limit-Remaining"] for r in statuses[:3]] == ["2", "1", "0"]
    assert emu.count_429() == 2


def test_windows_are_per_route_and_per_token(make_emulator) -> None:
    emu = make_emulator(rate_limits=RateLimits(limit=1, window=60))
    with client(emu) as c:
        assert c.get("/api/0/organizations/acme/teams/").status_code == 200
        assert c.get("/api/0/organizations/acme/members/").status_code == 200
        assert c.get("/api/0/organizations/acme/teams/").status_code == 429
    with client(emu, token=emu.create_token()) as c:
        assert c.get("/api/0/organizations/acme/teams/").status_code == 200


def test_pacing_by_headers_never_sees_429(make_emulator) -> None:
    emu = make_emulator(rate_limits=RateLimits(limit=4, window=1))
    with client(emu) as c:
        for _ in range(14):
            r = c.get("/api/0/organizations/acme/projects/")
            assert r.status_code == 200
            if r.headers["X-Sentry-Rate-Limit-Remaining"] == "0":
                time.sleep(max(0.0, int(r.headers["X-Sentry-Rate-Limit-Reset"]) - time.time()))
    assert emu.count_429() == 0


def test_window_follows_the_emulator_clock(make_emulator) -> None:
    emu = make_emulator(rate_limits=RateLimits(limit=1, window=3600))
    with client(emu) as c:
        assert c.get("/api/0/organizations/acme/teams/").status_code == 200
        assert c.get("/api/0/organizations/acme/teams/").status_code == 429
        emu.advance(3600)
        assert c.get("/api/0/organizations/acme/teams/").status_code == 200


def test_concurrency_cap_on_project_events(make_emulator) -> None:
    emu = make_emulator(rate_limits="sentry", latency_ms=300)
    results: list[int] = []
    bodies: list[object] = []

    def call() -> None:
        with client(emu) as c:
            r = c.get("/api/0/projects/acme/backend/events/")
            results.append(r.status_code)
            bodies.append(r.json())

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert sorted(results) == [200, 429]
    assert "Concurrency limit is 1" in next(b for b in bodies if isinstance(b, str))
    # Sequential requests on one keep-alive connection are never refused for concurrency.
    with client(emu) as c:
        assert [c.get("/api/0/projects/acme/frontend/events/").status_code for _ in range(3)] == [200] * 3
