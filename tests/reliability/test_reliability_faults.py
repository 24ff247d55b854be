"""Faults at random pages of multi-project syncs: retried to exact data, or a bounded, checkpointed failure.

Every fault kind the emulator has for a flaky network, an overloaded Sentry or a proxy in between
is injected at seeded random pages (``after``) of random endpoints while three projects are read.
Transient faults must be invisible in the data (record ids compared with the emulator's ground
truth, per project for events); when retries are exhausted the read fails with a
``transient_error`` naming the endpoint and what went wrong, after a bounded number of attempts
(counted in the emulator's request log, not timed: speed belongs in bench/), after checkpointing,
and resuming from its last STATE completes the data.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from pathlib import Path

import pytest
from reliability_helpers import (
    CORE_STREAMS,
    SEEDS,
    TRANSIENT_KINDS,
    Connector,
    data_ids,
    duplicates,
    expected,
    run_records,
    settle,
    tally,
)

# Paths (regex searched in the request path) and how many requests each sees in one read of
# the dataset below (at least: a fault must fire): 3 projects x ~22 event pages of 10 full events
# (the first 9 suffice; more when a window splits: on a server without rate-limit headers a
# backfill spreads over parallel windows), 2 issue pages, open+archived release pages,
# one project list (one request, shared by discovery and the projects stream), 3 project details.
ENDPOINTS = {
    "/events/": 9,
    "/issues/": 2,
    "/releases/": 3,
    "/projects/acme/[a-z-]+/$": 3,
    "/organizations/acme/projects/": 1,
}
DATASET = {"projects": 3, "events_per_project": 250, "issues_per_project": 40, "releases": 130}
TIMEOUT = 2  # request_timeout_seconds: a stall must cost seconds, not minutes
FOREVER = 1_000_000  # a fault's `times` that never runs out, yet counts down as it is applied


def _wait_until_logged(emu, kind: str) -> None:
    """Wait until every request the fault ``kind`` was applied to is in the request log.

    A stalled request is logged when its stall ends, after the client gave up on it; the fault
    table counts applications as they start.
    """
    [fault] = [f for f in emu.faults() if f["kind"] == kind]
    applied = FOREVER - fault["times"]
    while sum(1 for r in emu.requests if r.fault == kind) < applied:
        time.sleep(0.05)  # polls for an event; nothing depends on how long it takes


def _inject(emu, rng: random.Random, kind: str, path: str, times: int = 1) -> dict:
    after = rng.randrange(ENDPOINTS[path])
    emu.inject_fault(kind, path=path, times=times, after=after, seconds=TIMEOUT + 1)
    return {"kind": kind, "path": path, "after": after, "times": times}


def _assert_exact(run, emu) -> None:
    assert run.returncode == 0, (run.errors(), run.stderr[-2000:])
    got = data_ids(run_records(run, CORE_STREAMS), emu)
    assert got == expected(emu), "records differ from the emulator's ground truth"
    for stream in CORE_STREAMS:
        assert duplicates(run.records(stream)) == 0, stream
        assert run.statuses(stream)[-1] == "COMPLETE"


def _kind_cases(seeds: list[int]) -> list:
    return [
        pytest.param(kind, seed, marks=[pytest.mark.slow] if seed not in SEEDS[:1] else [], id=f"{kind}-{seed}")
        for kind in TRANSIENT_KINDS
        for seed in seeds
    ]


@pytest.mark.parametrize(("kind", "seed"), _kind_cases(SEEDS[:4]))
def test_each_fault_kind_at_random_pages_is_retried_to_exact_data(make_emulator, tmp_path: Path, kind: str, seed: int) -> None:
    emu = settle(make_emulator(seed=seed, **DATASET))
    rng = random.Random(seed)
    injected = [_inject(emu, rng, kind, path, times=rng.randint(1, 2)) for path in rng.sample(sorted(ENDPOINTS), 3)]
    run = Connector(tmp_path, emu, request_timeout_seconds=TIMEOUT).read(CORE_STREAMS)
    _assert_exact(run, emu)
    # Every injected fault was applied (a stalled request is logged only once its stall ends).
    assert emu.faults() == [], (injected, emu.faults())
    tally("fault_survived", kind, sum(f["times"] for f in injected))


@pytest.mark.parametrize(
    "seed", [pytest.param(s, marks=[pytest.mark.slow] if i >= 1 else [], id=str(s)) for i, s in enumerate(SEEDS[:12])]
)
def test_every_fault_kind_in_one_sync_is_retried_to_exact_data(make_emulator, tmp_path: Path, seed: int) -> None:
    emu = settle(make_emulator(seed=seed, **DATASET))
    rng = random.Random(seed * 7919)
    for kind in TRANSIENT_KINDS:
        _inject(emu, rng, kind, rng.choice(sorted(ENDPOINTS)))
    run = Connector(tmp_path, emu, request_timeout_seconds=TIMEOUT).read(CORE_STREAMS)
    _assert_exact(run, emu)
    assert emu.faults() == [], "every injected fault was applied"
    for kind in TRANSIENT_KINDS:
        tally("fault_survived", kind, 1)


# What the trace must say for each kind once retries run out.
EXHAUSTED_WORDS = {
    "500": "HTTP 500",
    "502": "HTTP 502",
    "503": "HTTP 503",
    "504": "HTTP 504",
    "html": "HTTP 502",
    "reset": "connection",
    "stall": "timed out",
    "truncated_json": "unreadable body",
    "invalid_json": "unreadable body",
    "empty_200": "unreadable body",
}


@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=[pytest.mark.slow] if k in ("502", "504", "empty_200") else []) for k in sorted(EXHAUSTED_WORDS)]
)
def test_exhausted_retries_fail_fast_with_a_transient_error_after_a_checkpoint_and_resume(
    make_emulator, tmp_path: Path, kind: str
) -> None:
    seed = SEEDS[sorted(EXHAUSTED_WORDS).index(kind)]
    emu = settle(make_emulator(seed=seed, **DATASET))
    rng = random.Random(seed)
    slug = rng.choice(emu.project_slugs)
    after = rng.randint(1, 2)  # some pages of this project are read before the fault
    path = f"/projects/acme/{slug}/events/"
    emu.inject_fault(kind, path=path, times=FOREVER, after=after, seconds=TIMEOUT + 1)
    conn = Connector(tmp_path, emu, request_timeout_seconds=TIMEOUT, max_retries=2, lookback_window_minutes=0)
    failed = conn.read(CORE_STREAMS)

    # Bounded in count: the first attempt and max_retries retries of the failing page, no more.
    _wait_until_logged(emu, kind)
    # Every page asked for counts once per (time window, cursor): the windows of a backfill are
    # read in parallel here (no rate-limit headers), and all of this project's fail. A window is
    # told by its end (a split narrows its start, even between a page's attempts).
    faulted = Counter(
        (*r.query.get("end", [""]), *r.query.get("cursor", [""]))
        for r in emu.requests
        if r.fault == kind
    )
    # At most the first attempt and max_retries retries of any page, and one page gets them all.
    # For a 200 with an unreadable body, the page its Link header named may also have been
    # requested ahead (read-ahead) before the body was found unreadable, then dropped.
    assert max(faulted.values()) == 3 and all(n <= 3 for n in faulted.values()), faulted

    assert failed.returncode == 1
    [error] = failed.errors()
    assert error["failure_type"] == "transient_error"
    assert error["stream_descriptor"]["name"] == "events"
    assert path in error["message"], error["message"]
    assert EXHAUSTED_WORDS[kind] in error["message"], error["message"]
    assert "Traceback" not in failed.stdout + failed.stderr and "stack_trace" not in error
    assert failed.statuses("events")[-1] == "INCOMPLETE"
    for other in ("issues", "projects", "releases", "project_detail"):
        assert failed.statuses(other)[-1] == "COMPLETE", other
    # The last STATE before the error covers every record emitted before it.
    messages = failed.messages
    last_state = max(
        i for i, m in enumerate(messages) if m["type"] == "STATE" and m["state"]["stream"]["stream_descriptor"]["name"] == "events"
    )
    after_state = [m for m in messages[last_state:] if m["type"] == "RECORD" and m["record"]["stream"] == "events"]
    assert after_state == []
    state = failed.states("events")[-1]["stream"]["stream_state"]
    # The windows read so far are checkpointed: a page cursor, or done.
    windows = state["projects"][slug]["windows"]
    assert any(w["cursor"] or w.get("done") for w in windows), state
    first_events = failed.records("events")
    tally("fault_exhausted", kind, len(faulted))

    emu.clear_faults()
    resumed = conn.read(["events"])
    assert resumed.returncode == 0, resumed.errors()
    union = data_ids({"events": first_events + resumed.records("events")}, emu)
    assert union == expected(emu, ["events"])
    assert duplicates(first_events + resumed.records("events")) == 0
    tally("records_lost", "exhausted-resume", 0)


@pytest.mark.slow
def test_default_retry_budget_is_nine_attempts_with_doubling_backoff(make_emulator, tmp_path: Path) -> None:
    """max_retries at its default (8): backoff 0.5 s doubling, capped at 30 s, halved by jitter at most.

    The waits are read from when the emulator received each attempt: each is at least half its
    nominal backoff (a slower machine only makes them longer; how long the whole takes is bench/'s).
    """
    emu = settle(make_emulator(projects=1, events_per_project=150))
    emu.inject_fault("503", path="/events/", times=-1, after=0)
    run = Connector(tmp_path, emu).read(["events"])
    assert run.returncode == 1
    assert [e["failure_type"] for e in run.errors()] == ["transient_error"]
    attempts = sorted(r.received_at for r in emu.requests if r.fault == "503")
    assert len(attempts) == 9
    waits = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert all(wait >= min(30.0, 0.5 * 2**k) / 2 for k, wait in enumerate(waits)), waits


def test_429_storms_wait_for_the_window_and_do_not_use_retries(make_emulator, tmp_path: Path) -> None:
    """Sentry's 429 (no Retry-After, X-Sentry-Rate-Limit-Reset) does not count as a retry."""
    emu = settle(make_emulator(**DATASET))
    emu.inject_fault("429", path="/events/", times=4, after=2)
    emu.inject_fault("429", path="/issues/", times=3, after=1)
    run = Connector(tmp_path, emu, max_retries=0).read(CORE_STREAMS)
    _assert_exact(run, emu)
    tally("fault_survived", "429", 7)
