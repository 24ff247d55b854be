"""The edges real servers reach: each defect class of docs/reliability.md ("Edges"), driven
through the emulator's hostile modes, with the connector as a real subprocess.

1. pagination trusted blindly, 2. deletions inferred from a moving list, 3. a renamed project,
4. timeouts that do not bound, 5. bodies only Python's json reads, 6. unreadable bodies,
7. records without a primary key, 9. check and missing scopes. (8, the user's mistakes in
``sync``, is in tests/connector/test_sync_errors.py.)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import Connector, run_cli, write_json

from sentry_emulator import RateLimits

DELETED_AT = "_ab_cdc_deleted_at"


def _events_of(emu: Any) -> Counter[str]:
    return Counter(e["id"] for slug in emu.project_slugs for e in emu.events(slug))


def data_ids(run: Any, stream: str) -> list[str]:
    """The ids of a stream's data records (tombstones left out)."""
    return [str(r["id"]) for r in run.records(stream) if not r.get(DELETED_AT)]


def _state_of(run: Any, stream: str) -> dict[str, Any]:
    return run.states(stream)[-1]["stream"]["stream_state"]


# --------------------------------------------------------------------------- 1. pagination


@pytest.mark.parametrize("kind", ["no_link", "garbled_link", "results_true_no_cursor"])
def test_a_full_page_without_a_usable_next_cursor_fails_and_keeps_the_cursor(make_emulator, tmp_path: Path, kind: str) -> None:
    # One events request at a time, as on sentry.io: the project's events are one chain of pages,
    # so the second request is that chain's second page (in parallel windows it may be the first
    # page of a split-off window, which can be short: a lie there loses nothing). All within the
    # last hour: older events of a one-at-a-time list are read issue by issue.
    one_at_a_time = RateLimits(limit=1000, events_limit=1000, events_concurrent=1)
    emu = make_emulator(projects=1, events_per_project=450, issues_per_project=250, rate_limits=one_at_a_time,
                        days=0.04)
    conn = Connector(tmp_path, emu)
    # The second page of each list lies: it looks like the last one, or promises more without a cursor.
    emu.inject_fault(kind, path="/events/$", times=1, after=1)
    emu.inject_fault(kind, path="/issues/$", times=1, after=1)
    first = conn.read(["events", "issues"])
    assert first.returncode == 1
    for stream in ("events", "issues"):
        assert first.statuses(stream)[-1] == "INCOMPLETE", stream
        [error] = [e for e in first.errors() if e["stream_descriptor"]["name"] == stream]
        assert error["failure_type"] == "transient_error"
        assert "cannot tell whether more pages follow" in error["message"] or "gives no cursor" in error["message"]
    # Nothing was taken for complete: the events window is still open, the issues list not a full list.
    events_state = _state_of(first, "events")["projects"][emu.project_slugs[0]]
    assert events_state.get("windows") and not all(w.get("done") for w in events_state["windows"])
    assert "fullScanAt" not in _state_of(first, "issues")
    # The next sync reads what the lie hid: every event and issue arrives.
    second = conn.read(["events", "issues"])
    assert second.returncode == 0, second.errors()
    got = Counter(data_ids(first, "events")) + Counter(data_ids(second, "events"))
    assert set(got) == set(_events_of(emu))
    issues = set(data_ids(first, "issues")) | set(data_ids(second, "issues"))
    assert issues == {str(i["id"]) for i in emu.issues()}


@pytest.mark.parametrize("kind", ["endless_cursor", "endless_empty"])
def test_an_endless_list_ends_in_a_transient_error_not_a_loop(make_emulator, tmp_path: Path, kind: str) -> None:
    emu = make_emulator(projects=1, events_per_project=120, issues_per_project=150)
    emu.inject_fault(kind, path="/issues/$", times=-1)
    run = Connector(tmp_path, emu).read(["issues", "projects"], timeout=120)
    assert run.returncode == 1
    [error] = run.errors()
    assert error["failure_type"] == "transient_error" and error["stream_descriptor"]["name"] == "issues"
    issue_requests = [r for r in emu.requests if r.path.endswith("/issues/")]
    assert len(issue_requests) <= 8, len(issue_requests)  # a few pages, then it stops
    assert len(run.records("issues")) <= 3 * 100  # never the same page over and over
    assert run.statuses("projects")[-1] == "COMPLETE"  # the other streams finish


def test_pages_are_never_assumed_to_hold_a_hundred_records(make_emulator, tmp_path: Path) -> None:
    # A server that pages by 10 (Sentry's full-event lists) without Link headers on short pages
    # is read to the end: only a possibly full page without a next cursor is suspicious.
    emu = make_emulator(projects=1, events_per_project=95)
    emu.inject_fault("no_link", path="/events/$", times=-1)
    run = Connector(tmp_path, emu).read(["events"])
    if len(emu.events(emu.project_slugs[0])) >= 10:
        # The one page holds >= 10 events without a Link: refused (it may be a clamped full page).
        assert run.returncode == 1 and run.errors()[0]["failure_type"] == "transient_error"


# --------------------------------------------------------------------------- 2. deletions


def _tombstones(run: Any, stream: str) -> set[str]:
    return {str(r["id"]) for r in run.records(stream) if r.get(DELETED_AT)}


@pytest.mark.parametrize("stream", ["issues", "releases"])
def test_a_deletion_between_pages_tombstones_only_the_deleted_record(make_emulator, tmp_path: Path, stream: str) -> None:
    # Offset paging: the deletion shifts every later record one place up, so one existing
    # record is never served by this full list.
    emu = make_emulator(projects=1, events_per_project=400, issues_per_project=250, releases=250, offset_paging=True)
    conn = Connector(tmp_path, emu, full_scan_hours=0)
    first = conn.read([stream])
    assert first.returncode == 0
    emu.inject_fault("delete_after_page", path=f"/{stream}/$", times=1)
    run = conn.read([stream])
    assert run.returncode == 0, run.errors()
    [deleted] = [r.deleted for r in emu.requests if r.deleted]
    key = "id" if stream == "issues" else "version"
    deleted_id = next(str(r["id"]) for r in first.records(stream) if str(r[key]) == str(deleted))
    existing = {str(r["id"]) for r in (emu.issues() if stream == "issues" else emu.releases())}
    assert deleted_id not in existing
    # The list served the deleted record before it went, and never served the record that moved
    # into its place: that one is asked by its own route, exists, and is not tombstoned.
    details = [r for r in emu.requests if r.path.rstrip("/").rsplit("/", 2)[-2] == stream and not r.path.endswith(f"/{stream}/")]
    assert details, "the record missing from the list was not checked"
    assert _tombstones(run, stream) == set()
    # The next full list misses the deleted record, whose route answers 404: its tombstone.
    later = conn.read([stream])
    assert later.returncode == 0
    assert _tombstones(later, stream) == {deleted_id}


def test_narrowing_the_projects_tombstones_nothing(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, events_per_project=200, issues_per_project=60)
    a, b = emu.project_slugs[:2]
    wide = Connector(tmp_path, emu, projects=[a, b], full_scan_hours=0)
    assert wide.read(["issues"]).returncode == 0
    (tmp_path / "narrow").mkdir()
    narrow = Connector(tmp_path / "narrow", emu, projects=[a], full_scan_hours=0)
    narrow.state = wide.state
    run = narrow.read(["issues"])
    assert run.returncode == 0, run.errors()
    assert _tombstones(run, "issues") == set()
    # b's issues left the state (they are outside the read), a's stay.
    fingerprints = _state_of(run, "issues")["fingerprints"]
    kept = {k for group in fingerprints.values() if isinstance(group, dict) for k in group}
    assert kept == {str(i["id"]) for i in emu.issues(a)}
    # A real deletion in a is still noticed.
    victim = emu.issues(a)[0]["id"]
    emu.delete_issue(victim)
    assert _tombstones(narrow.read(["issues"]), "issues") == {str(victim)}


def test_a_merged_issue_is_tombstoned_once_its_route_says_so(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=200, issues_per_project=30)
    conn = Connector(tmp_path, emu, full_scan_hours=0)
    assert conn.read(["issues"]).returncode == 0
    target, source = emu.issues()[0]["id"], emu.issues()[1]["id"]
    emu.merge_issues(target, [source])
    deleted = emu.issues()[2]["id"]
    emu.delete_issue(deleted)
    run = conn.read(["issues"])
    assert run.returncode == 0
    # The deleted issue's route answers 404; the merged-away id answers the issue it was merged
    # into (Sentry's GroupRedirect), another id: both are gone from the list for good.
    assert _tombstones(run, "issues") == {str(source), str(deleted)}


# --------------------------------------------------------------------------- 3. renamed project


def test_a_renamed_project_fails_alone_naming_both_slugs(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, events_per_project=120, issues_per_project=20)
    old, other = emu.project_slugs[:2]
    emu.rename_project(old, "payments")
    run = Connector(tmp_path, emu, projects=[old, other]).read(["events", "issues", "project_detail", "projects"])
    assert run.returncode == 1
    messages = [e["message"] for e in run.errors()]
    assert messages and all(old in m and "payments" in m for m in messages), messages
    assert not any("hostname" in m for m in messages)
    assert {e["failure_type"] for e in run.errors()} == {"config_error"}
    # The other project is read in full.
    assert Counter(data_ids(run, "events")) == Counter(e["id"] for e in emu.events(other))
    assert run.statuses("projects")[-1] == "COMPLETE"


def test_check_names_the_new_slug_of_a_renamed_project(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2)
    emu.rename_project(emu.project_slugs[0], "payments")
    conn = Connector(tmp_path, emu, project="backend")
    [status] = conn.cli("check").of_type("CONNECTION_STATUS")
    assert status["connectionStatus"]["status"] == "FAILED"
    assert "'backend' was renamed to 'payments'" in status["connectionStatus"]["message"]


# --------------------------------------------------------------------------- 4. deadlines


def test_a_dripping_body_is_cut_at_the_deadline_and_retried(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=150)
    emu.inject_fault("drip", path="/events/$", times=1, bytes_per_second=20)
    run = Connector(tmp_path, emu, request_timeout_seconds=2).read(["events"], timeout=120)
    assert run.returncode == 0, run.errors()
    assert Counter(data_ids(run, "events")) == _events_of(emu)


def test_a_server_that_always_drips_fails_after_its_retries(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=150)
    emu.inject_fault("drip", path="/events/$", times=-1, bytes_per_second=20)
    run = Connector(tmp_path, emu, request_timeout_seconds=1, max_retries=1).read(["events"], timeout=120)
    assert run.returncode == 1
    [error] = run.errors()
    assert error["failure_type"] == "transient_error" and "timed out" in error["message"]
    assert len([r for r in emu.requests if r.fault == "drip"]) == 2  # one attempt and one retry


# --------------------------------------------------------------------------- 5, 6, 7. bodies and records


def test_odd_records_are_read_with_their_changes_recorded(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=60, issues_per_project=10)
    emu.inject_fault("odd_record", path="/events/$", times=1)
    emu.inject_fault("odd_record", path="/issues/$", times=1)
    run = Connector(tmp_path, emu).read(["events", "issues"])
    assert run.returncode == 0, run.errors()
    for stream in ("events", "issues"):
        [odd] = [m["record"] for m in run.of_type("RECORD") if m["record"]["stream"] == stream and "oddSurrogate" in m["record"]["data"]]
        assert odd["data"]["oddSurrogate"] == "\ufffd" or "\ufffd" in odd["data"]["oddSurrogate"]
        assert odd["data"][""] == "odd: empty key"
        assert len(odd["data"]["oddHuge"]) == 1 << 20
        changes = {c["field"]: c for c in odd["meta"]["changes"]}
        assert changes["oddSurrogate"]["reason"] == "SOURCE_SERIALIZATION_ERROR"
    assert Counter(data_ids(run, "events")) == _events_of(emu)


def test_a_wrong_content_encoding_is_retried(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=250, issues_per_project=30)
    emu.inject_fault("bad_gzip", path="/events/$", times=2, after=1)
    emu.inject_fault("bad_gzip", path="/issues/$", times=1)
    run = Connector(tmp_path, emu).read(["events", "issues"])
    assert run.returncode == 0, run.errors()
    assert Counter(data_ids(run, "events")) == _events_of(emu)
    assert set(data_ids(run, "issues")) == {str(i["id"]) for i in emu.issues()}


def test_records_without_a_primary_key_are_skipped_and_counted(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=60, releases=12)
    emu.inject_fault("no_id", path="/events/$", times=1)
    emu.inject_fault("no_id", path="/releases/$", times=1)
    run = Connector(tmp_path, emu).read(["events", "releases"])
    assert run.returncode == 0, run.errors()
    assert all(r.get("id") is not None for r in run.records())
    assert len(run.records("events")) == len(emu.events(emu.project_slugs[0])) - 2
    warnings = run.logs("WARN")
    for stream in ("events", "releases"):
        assert any(f"Stream {stream}: skipped 2 records without a primary key" in w for w in warnings), warnings


# --------------------------------------------------------------------------- 9. check and scopes


# Every read scope but project:releases (strict rules: each endpoint needs exactly its scope).
WITHOUT_RELEASES = ["org:read", "project:read", "event:read", "member:read", "team:read", "alerts:read"]


def test_check_names_a_missing_scope_of_the_core_streams(make_emulator, tmp_path: Path) -> None:
    emulator = make_emulator(scope_rules="strict")
    token = emulator.create_token(scopes=WITHOUT_RELEASES)
    conn = Connector(tmp_path, emulator, auth_token=token)
    [status] = conn.cli("check").of_type("CONNECTION_STATUS")
    assert status["connectionStatus"]["status"] == "FAILED"
    message = status["connectionStatus"]["message"]
    assert "project:releases" in message and "releases" in message


def test_check_with_fewer_streams_succeeds_and_names_what_they_cannot_read(make_emulator, tmp_path: Path) -> None:
    emulator = make_emulator(scope_rules="strict")
    token = emulator.create_token(scopes=WITHOUT_RELEASES)
    conn = Connector(tmp_path, emulator, auth_token=token)
    catalog = write_json(tmp_path / "catalog.json", {"streams": [{"stream": {"name": "events"}}, {"stream": {"name": "issues"}}]})
    [status] = run_cli("check", "--config", conn.config_path, "--catalog", catalog).of_type("CONNECTION_STATUS")
    assert status["connectionStatus"]["status"] == "SUCCEEDED", status
    assert "project:releases" in status["connectionStatus"]["message"]
