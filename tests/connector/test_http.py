"""The client against the emulator's rate limits and faults; Link parsing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from connector_helpers import Connector

from sentry_emulator.pagination import FULL_PAGE_SIZE as PAGE
from source_sentry.http import parse_link_header


def test_parse_sentry_link_header() -> None:
    header = (
        '<https://sentry.io/api/0/organizations/acme/issues/?query=a%2Cb&cursor=0:0:1>; rel="previous"; '
        'results="false"; cursor="0:0:1", '
        '<https://sentry.io/api/0/organizations/acme/issues/?query=a%2Cb&cursor=1700000000000:100:0>; '
        'rel="next"; results="true"; cursor="1700000000000:100:0"'
    )
    links = parse_link_header(header)
    assert links["previous"]["results"] == "false"
    assert links["next"] == {
        "url": "https://sentry.io/api/0/organizations/acme/issues/?query=a%2Cb&cursor=1700000000000:100:0",
        "rel": "next",
        "results": "true",
        "cursor": "1700000000000:100:0",
    }
    assert parse_link_header("") == {}
    assert parse_link_header("garbage <x") == {}


def test_sentry_rate_limits_are_respected_without_429s(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(
        projects=2, events_per_project=250, issues_per_project=150, releases=120, rate_limits="sentry"
    )
    run = Connector(tmp_path, emu).read(["events", "issues", "projects", "releases"], mode="full_refresh")
    assert run.returncode == 0, run.errors()
    assert len(run.records("events")) == sum(emu.event_count(s) for s in emu.project_slugs) > 400
    assert emu.count_429() <= 2
    # Paced by the headers: the project events endpoint allows 1 concurrent request.
    assert len(run.records("issues")) == 300


@pytest.mark.parametrize("fault", ["500", "502", "503", "504", "reset", "truncated_json", "invalid_json", "html", "empty_200", "429"])
def test_transient_faults_are_retried_and_the_data_is_exact(make_emulator, tmp_path: Path, fault: str) -> None:
    emu = make_emulator(projects=1, events_per_project=350, issues_per_project=120)
    emu.inject_fault(fault, path=".*/events/", times=2, after=1)
    emu.inject_fault(fault, path=".*/issues/", times=1, after=1)
    run = Connector(tmp_path, emu, request_timeout_seconds=5).read(["events", "issues"])
    assert run.returncode == 0, run.errors()
    assert Counter(r["id"] for r in run.records("events")) == Counter(e["id"] for e in emu.events(emu.project_slugs[0]))
    assert sorted(str(r["id"]) for r in run.records("issues")) == sorted(str(i["id"]) for i in emu.issues())


def test_a_stalled_response_times_out_and_is_retried(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=150)
    emu.inject_fault("stall", path=".*/events/", times=1, after=1)
    run = Connector(tmp_path, emu, request_timeout_seconds=2).read(["events"])
    assert run.returncode == 0, run.errors()
    assert len(run.records("events")) == emu.event_count(emu.project_slugs[0])


def test_exhausted_retries_fail_with_a_transient_error_after_checkpointing(make_emulator, tmp_path: Path) -> None:
    # sentry.io's limits: one time window, its pages in order.
    emu = make_emulator(projects=1, events_per_project=3 * PAGE + PAGE // 2, issues_per_project=2,
                        rate_limits="sentry", days=0.04)  # 4 pages, all in the last hour
    emu.inject_fault("503", path=".*/events/", times=100, after=2)
    run = Connector(tmp_path, emu, max_retries=2).read(["events"])
    assert run.returncode == 1
    [error] = run.errors()
    assert error["failure_type"] == "transient_error"
    assert "503" in error["message"] and "events" in error["message"]
    assert len(run.records("events")) == 2 * PAGE  # the two pages before the fault
    assert run.states("events")[-1]["stream"]["stream_state"]["projects"]  # what it had is checkpointed


def test_a_link_header_to_another_host_is_never_followed(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=250)
    other = make_emulator(projects=1)
    emu.inject_fault("link_other_host", path=".*/events/", times=5)
    run = Connector(tmp_path, emu).read(["events"])
    assert run.returncode == 0
    assert len(run.records("events")) == emu.event_count(emu.project_slugs[0])
    assert other.requests == [] or all(not r.authorization_present for r in other.requests)
    hosts = {r.host for r in emu.requests}
    assert len(hosts) == 1


def test_no_change_incremental_sync_makes_few_requests(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, events_per_project=150, issues_per_project=20, releases=20)
    conn = Connector(tmp_path, emu, lookback_window_minutes=0)
    conn.read(["events", "issues", "projects", "releases"])
    emu.advance(60)
    emu.clear_requests()
    run = conn.read(["events", "issues", "projects", "releases"])
    assert run.records() == []
    counts = emu.request_counts()
    # One page per list (releases: open and archived), one per project for events, plus project discovery.
    assert sum(counts.values()) <= 2 + 1 + 1 + 2 + 1, counts
