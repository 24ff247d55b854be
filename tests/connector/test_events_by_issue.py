"""The events stream read issue by issue where Sentry's headers show the project's events list as
the narrow route (sentry.io: 60 requests a minute, one at a time, against the default 40 a
second for each issue's events list), with the same guarantees as the project's list: every
event once, checkpoints that resume exactly, the newest hour from the project's list."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from connector_helpers import CliRun, catalog_for, config_for, run_cli, write_json

from sentry_emulator.ratelimit import RateLimits
from source_sentry.timeutil import parse_time

PROJECT_EVENTS = "/api/0/projects/{org}/{project}/events/"
ISSUE_EVENTS = "/api/0/organizations/{org}/issues/{issue_id}/events/"
# The project's events list five requests a second, one at a time: the narrow route.
NARROW = RateLimits(events_limit=5, events_window=1, events_concurrent=1)


def _emulator(make_emulator: Any, events: int = 1200, issues: int = 40, **kw: Any) -> Any:
    emu = make_emulator(projects=2, events_per_project=events, issues_per_project=issues, days=30, **kw)
    emu.advance(601)  # every late arrival received: nothing changes behind the test's back
    return emu


def _read(emu: Any, tmp_path: Path, name: str, state: Any = None, token: str | None = None) -> CliRun:
    config = write_json(tmp_path / f"{name}-config.json", config_for(emu, **({"auth_token": token} if token else {})))
    catalog = write_json(tmp_path / f"{name}-catalog.json", catalog_for(["events"]))
    args = ["read", "--config", config, "--catalog", catalog]
    if state is not None:
        args += ["--state", write_json(tmp_path / f"{name}-state.json", state)]
    run = run_cli(*args)
    assert run.returncode == 0, run.stderr[-2000:]
    return run


def _truth(emu: Any) -> set[str]:
    return {e["id"] for slug in emu.project_slugs for e in emu.events(slug)}


def test_a_narrow_events_list_hands_its_older_windows_to_the_issue_lists(make_emulator: Any, tmp_path: Path) -> None:
    emu = _emulator(make_emulator, rate_limits=NARROW)
    run = _read(emu, tmp_path, "first")
    ids = Counter(r["id"] for r in run.records("events"))
    assert set(ids) == _truth(emu)
    assert max(ids.values()) == 1  # each event belongs to one issue: read once
    counts = emu.request_counts()
    pages = len(ids) / 10
    # Most events came from the issue lists; the project's list served its newest hour.
    assert counts[ISSUE_EVENTS] > pages / 2
    assert counts[PROJECT_EVENTS] < pages / 4
    # Only events older than an hour were read issue by issue.
    now = max(parse_time(r["dateReceived"]) for r in run.records("events"))
    for state in run.states("events"):
        for project in state["stream"]["stream_state"]["projects"].values():
            for window in project.get("windows", []):
                if "issues" in window:
                    assert parse_time(window["end"]) <= now - timedelta(minutes=59)


def test_without_rate_limit_headers_the_project_list_is_read(make_emulator: Any, tmp_path: Path) -> None:
    emu = _emulator(make_emulator, rate_limits="none")
    run = _read(emu, tmp_path, "first")
    assert {r["id"] for r in run.records("events")} == _truth(emu)
    assert ISSUE_EVENTS not in emu.request_counts()


@pytest.mark.parametrize(("merge", "issues"), [(False, 40), (True, 40), (False, 150)],
                         ids=["resumed", "resumed-after-a-merge", "resumed-with-two-pages-of-issues"])
def test_a_read_stopped_on_the_issue_path_resumes_to_exact_data(
    make_emulator: Any, tmp_path: Path, merge: bool, issues: int
) -> None:
    # With two pages of issues, the longest chains of both run first: the checkpoint holds the
    # issues read of both pages, from the first page's cursor.
    emu = _emulator(make_emulator, rate_limits=NARROW, issues=issues)
    first = _read(emu, tmp_path, "first")
    # Stop the first read at a checkpoint taken halfway through an issue-by-issue window.
    before: set[str] = set()
    stop_at = None
    for message in first.messages:
        if message["type"] == "RECORD":
            before.add(message["record"]["data"]["id"])
        elif message["type"] == "STATE":
            projects = message["state"]["stream"]["stream_state"]["projects"].values()
            if any(w.get("issues_done") for p in projects for w in p.get("windows", [])):
                stop_at = message["state"]
                break
    assert stop_at is not None, "no checkpoint inside an issue-by-issue window"
    if merge:
        # Issues merged between the two reads: their events move, none is lost.
        issues = [i for i in emu.issues(emu.project_slugs[0]) if i.get("issueCategory") == "error"]
        emu.merge_issues(str(issues[0]["id"]), [str(i["id"]) for i in issues[1:6]])
    resumed = _read(emu, tmp_path, "resumed", state=[{"type": "STREAM", "stream": stop_at["stream"]}])
    assert before | {r["id"] for r in resumed.records("events")} == _truth(emu)


def test_a_token_without_event_read_reads_the_project_list(make_emulator: Any, tmp_path: Path) -> None:
    emu = _emulator(make_emulator, events=250, rate_limits=NARROW)  # read at five pages a second
    token = emu.create_token(scopes=["project:read", "org:read"])
    run = _read(emu, tmp_path, "first", token=token)
    assert {r["id"] for r in run.records("events")} == _truth(emu)
    warnings = [m["log"]["message"] for m in run.of_type("LOG") if m["log"]["level"] == "WARN"]
    assert any("issue by issue was refused" in w for w in warnings), warnings
    assert emu.request_counts().get(ISSUE_EVENTS, 0) == 0


def test_the_issues_with_most_events_are_read_first(make_emulator: Any, tmp_path: Path) -> None:
    # Each issue's events are a chain of pages: the longest chains start first, so that none
    # runs on alone at the end (the issues are listed newest first, not by their events).
    emu = _emulator(make_emulator, rate_limits=NARROW)
    run = _read(emu, tmp_path, "first")
    assert {r["id"] for r in run.records("events")} == _truth(emu)
    assert emu.count_429() == 0
    counts = {str(i["id"]): int(i["count"]) for slug in emu.project_slugs for i in emu.issues(slug)}
    slug_of = {str(i["id"]): slug for slug in emu.project_slugs for i in emu.issues(slug)}
    started: dict[str, list[str]] = {slug: [] for slug in emu.project_slugs}
    for request in sorted(emu.requests, key=lambda r: r.received_at):
        if request.route == ISSUE_EVENTS:
            issue_id = request.path.rstrip("/").split("/")[-2]
            if issue_id not in started[slug_of[issue_id]]:
                started[slug_of[issue_id]].append(issue_id)
    for slug, order in started.items():
        assert len(order) > 10, slug
        listed = [counts[i] for i in order]
        # The first started has the most events; the first quarter more than the last.
        assert listed[0] == max(listed), (slug, listed)
        quarter = len(listed) // 4
        assert min(listed[:quarter]) >= max(listed[-quarter:]), (slug, listed)


def test_the_first_issues_are_read_with_the_first_page_of_the_list(make_emulator: Any, tmp_path: Path) -> None:
    # Three pages of issues per project, each answer 0.4 s away: the first issue's events are
    # asked with the list's second page, not after it came (nor after the 500 issues read ahead:
    # then 0.8 s after it, two answers later). Of the first project to ask: the route allows one
    # request at a time until its first answer tells its concurrency, so the other project's
    # first may wait that answer.
    emu = _emulator(make_emulator, events=600, issues=250, rate_limits=NARROW, latency_ms=400)
    run = _read(emu, tmp_path, "first-page")
    assert {r["id"] for r in run.records("events")} == _truth(emu)
    requests = sorted(emu.requests, key=lambda r: r.received_at)
    first = next(r for r in requests if r.route == ISSUE_EVENTS)
    issue = emu.issue(first.path.rstrip("/").split("/")[-2])
    second_page = next(r for r in requests if r.route == "/api/0/organizations/{org}/issues/" and r.query.get("cursor")
                       and r.query.get("project") == [str(issue["project"]["id"])])
    gap = first.received_at - second_page.received_at
    assert gap < 0.4, gap


def test_checkpoints_list_a_few_read_issues_per_issue_read(make_emulator: Any, tmp_path: Path) -> None:
    # A checkpoint lists the issues read since the oldest listed page with some unread: hundreds
    # while the longest chains of the first page run. One after every issue read made the state
    # bytes grow with issues x that (a third of the bytes of the records, measured); one once an
    # eighth of those listed were read since the last keeps it a few ids per issue read.
    emu = _emulator(make_emulator, rate_limits=NARROW, events=3000, issues=300)
    run = _read(emu, tmp_path, "first")
    assert {r["id"] for r in run.records("events")} == _truth(emu)
    read = {r.path for r in emu.requests if r.route == ISSUE_EVENTS}
    listed = [len(w.get("issues_done", [])) for state in run.states("events")
              for p in state["stream"]["stream_state"]["projects"].values() for w in p.get("windows", [])]
    assert max(listed) > 100  # the case at hand: long lists of issues read
    # Each checkpoint lists both projects' windows: about 15 ids per issue read (257 before).
    assert sum(listed) <= 24 * len(read), (sum(listed), len(read))
