"""Incremental reads over several successive syncs, checked against the emulator's data."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from connector_helpers import Connector


def _ids(records: list[dict]) -> set[str]:
    return {str(r["id"]) for r in records}


def test_events_across_syncs_with_new_and_late_events(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, events_per_project=220)
    conn = Connector(tmp_path, emu, lookback_window_minutes=30)
    seen: set[str] = set()

    first = conn.read(["events"])
    assert first.returncode == 0, first.errors()
    seen |= _ids(first.records("events"))

    emu.advance(600)
    new = emu.add_events(emu.project_slugs[0], 5)
    late = emu.add_events(emu.project_slugs[1], 3, late_by_seconds=20 * 60)  # created before the cursor
    emu.advance(5)  # the server's Date header has whole seconds: let "now" pass the new events
    second = conn.read(["events"])
    assert second.returncode == 0
    got = _ids(second.records("events"))
    assert set(new) <= got and set(late) <= got
    # Only the look-back overlap is read again, not the whole history.
    assert len(got) < 50
    seen |= got

    emu.advance(3600)
    third_new = emu.add_events(emu.project_slugs[1], 4)
    emu.advance(5)
    third = conn.read(["events"])
    seen |= _ids(third.records("events"))
    assert set(third_new) <= _ids(third.records("events"))

    expected = {e["id"] for slug in emu.project_slugs for e in emu.events(slug)}
    assert expected <= seen, f"lost {len(expected - seen)} events"

    # A sync with nothing new re-reads only the look-back overlap, then nothing.
    emu.advance(7200)
    overlap = conn.read(["events"])
    assert _ids(overlap.records("events")) <= set(third_new)
    quiet = conn.read(["events"])
    assert quiet.records("events") == []
    assert quiet.states("events")


def test_late_event_beyond_a_short_lookback_is_a_known_gap(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=20)
    conn = Connector(tmp_path, emu, lookback_window_minutes=1)
    conn.read(["events"])
    emu.advance(60)
    late = emu.add_events(emu.project_slugs[0], 1, late_by_seconds=30 * 60)
    second = conn.read(["events"])
    # The look-back is the contract: with 1 minute, a 30-minute-late event is not re-read.
    assert not set(late) & _ids(second.records("events"))


def test_issue_status_changes_and_new_occurrences_are_read(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, issues_per_project=60)
    conn = Connector(tmp_path, emu, full_scan_hours=0)  # every sync lists all issues
    first = conn.read(["issues"])
    assert first.returncode == 0
    assert _ids(first.records("issues")) == {str(i["id"]) for i in emu.issues()}
    statuses = {i["status"] for i in first.records("issues")}
    assert {"unresolved", "resolved", "ignored"} <= statuses  # every status, not is:unresolved

    unresolved = [i for i in emu.issues() if i["status"] == "unresolved"]
    resolved_id, assigned_id, occurred_id = (str(i["id"]) for i in unresolved[:3])
    last_seen_before = {str(i["id"]): i["lastSeen"] for i in emu.issues()}
    emu.set_issue_status(resolved_id, "resolved")
    emu.assign_issue(assigned_id, emu.members()[0]["email"])
    emu.add_events(unresolved[2]["project"]["slug"], 1, issue_id=occurred_id)

    second = conn.read(["issues"])
    assert second.returncode == 0
    by_id = {str(i["id"]): i for i in second.records("issues")}
    assert set(by_id) == {resolved_id, assigned_id, occurred_id}
    assert by_id[resolved_id]["status"] == "resolved"
    assert by_id[resolved_id]["lastSeen"] == last_seen_before[resolved_id]  # status change did not move lastSeen
    assert by_id[assigned_id]["assignedTo"]
    assert by_id[occurred_id]["lastSeen"] != last_seen_before[occurred_id]

    emu.set_issue_status(resolved_id, "ignored")
    new_issue = emu.add_issue(emu.project_slugs[0])
    third = conn.read(["issues"])
    assert _ids(third.records("issues")) == {resolved_id, str(new_issue)}

    fourth = conn.read(["issues"])
    assert fourth.records("issues") == []


def test_release_and_project_edits_reach_an_incremental_sync(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, releases=30)
    conn = Connector(tmp_path, emu)
    first = conn.read(["releases", "projects"])
    assert len(first.records("releases")) == 30
    version = emu.releases()[-1]["version"]  # an old release
    emu.add_deploy(version, environment="production")
    new_version = emu.add_release()

    second = conn.read(["releases", "projects"])
    releases = {r["version"]: r for r in second.records("releases")}
    assert set(releases) == {version, new_version}
    assert releases[version]["lastDeploy"] is not None
    # Projects embed latestRelease/latestDeploys: some of them changed too.

    renamed = emu.project_slugs[1]
    emu.update_project(renamed, name="Renamed project")
    third = conn.read(["releases", "projects"])
    assert [p["name"] for p in third.records("projects")] == ["Renamed project"]
    # Releases embed their projects' names: those of the renamed project changed too.
    assert third.records("releases")
    assert all(any(p["slug"] == renamed for p in r["projects"]) for r in third.records("releases"))

    fourth = conn.read(["releases", "projects"])
    assert fourth.records() == []


def test_an_airbyte_connector_state_carries_over(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=150, issues_per_project=40)
    slug = emu.project_slugs[0]
    events = emu.events(slug)
    cut = events[50]["dateCreated"]  # newest first: 50 events are newer than this
    issues = sorted(emu.issues(), key=lambda i: i["lastSeen"])
    issue_cut = issues[-10]["lastSeen"]
    conn = Connector(tmp_path, emu, project=slug, lookback_window_minutes=0)
    legacy = [
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": "events"}, "stream_state": {"dateCreated": cut}}},
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": "issues"}, "stream_state": {"lastSeen": issue_cut}}},
    ]
    run = conn.read(["events", "issues"], state=legacy)
    assert run.returncode == 0
    got = _ids(run.records("events"))
    assert {e["id"] for e in events[:50]} <= got
    assert len(got) <= 52
    assert _ids(run.records("issues")) == {str(i["id"]) for i in issues if i["lastSeen"] > issue_cut}


def test_a_state_in_the_future_reads_nothing_and_still_checkpoints(emulator, tmp_path: Path) -> None:
    conn = Connector(tmp_path, emulator, project=emulator.project_slugs[0])
    future = [
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": n}, "stream_state": {c: "2999-01-01T00:00:00Z"}}}
        for n, c in [("events", "dateCreated"), ("issues", "lastSeen"), ("releases", "dateCreated"), ("projects", "dateCreated")]
    ]
    run = conn.read(["events", "issues", "releases", "projects"], state=future)
    assert run.returncode == 0
    assert run.records() == []
    for stream in ["events", "issues", "releases", "projects"]:
        assert run.states(stream)


def test_missing_null_and_malformed_state_fall_back_safely(emulator, tmp_path: Path) -> None:
    conn = Connector(tmp_path, emulator)
    total = len(conn.read(["issues"], state=None).records("issues"))
    for bad in [
        None,
        [],
        {"issues": {"lastSeen": None}},
        [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "issues"}, "stream_state": None}}],
        [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "issues"}, "stream_state": {"lastSeen": "yesterday"}}}],
        [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "issues"}, "stream_state": {"fingerprints": [1, 2]}}}],
        [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "events"}, "stream_state": {"projects": "x"}}}],
        [42, "x"],
        "not a list",
    ]:
        run = conn.read(["issues", "events"], state=bad)
        assert run.returncode == 0, (bad, run.errors())
        assert len(run.records("issues")) == total
    unreadable = {"type": "STREAM", "stream": {"stream_descriptor": {"name": "issues"}, "stream_state": {"lastSeen": "yesterday"}}}
    warned = conn.read(["issues"], state=[unreadable])
    assert any("yesterday" in w for w in warned.logs("WARN"))


def test_a_cursor_older_than_retention_warns_about_the_gap(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=30)
    slug = emu.project_slugs[0]
    old = {"type": "STREAM", "stream": {"stream_descriptor": {"name": "events"},
           "stream_state": {"projects": {slug: {"dateCreated": "2020-01-01T00:00:00Z"}}}}}
    run = Connector(tmp_path, emu).read(["events"], state=[old])
    assert run.returncode == 0
    [warning] = [w for w in run.logs("WARN") if "retention" in w]
    assert "2020-01-01" in warning
    assert len(run.records("events")) == len(emu.events(slug))


def test_a_new_project_starts_from_its_own_beginning(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=40)
    conn = Connector(tmp_path, emu)
    conn.read(["events"])
    emu.advance(60)
    emu.add_project("late-project")
    emu.add_events("late-project", 7, late_by_seconds=5 * 86400)
    run = conn.read(["events"])
    assert _ids(run.records("events")) >= {e["id"] for e in emu.events("late-project")}


def test_issues_between_full_scans_read_only_what_moved(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=400, issues_per_project=250)
    # A list larger than full_list_max_records (0 here): a full list every 24 hours, deltas between.
    conn = Connector(tmp_path, emu, full_list_max_records=0)
    first = conn.read(["issues"])
    assert len(first.records("issues")) == len(emu.issues()) > 200  # a full list: several pages
    unresolved = [i for i in emu.issues() if i["status"] == "unresolved"]
    occurred, resolved = str(unresolved[0]["id"]), str(unresolved[-1]["id"])
    emu.advance(600)
    emu.add_events(emu.project_slugs[0], 1, issue_id=occurred)
    emu.set_issue_status(resolved, "resolved")
    emu.advance(5)
    emu.clear_requests()
    second = conn.read(["issues"])
    # The delta (issues whose lastSeen moved) and the first slice of 100 of the full list, newest
    # first: the oldest issue's status change is not in it.
    assert _ids(second.records("issues")) == {occurred}
    assert emu.request_counts()["/api/0/organizations/{org}/issues/"] == 2
    # Each sync reads the next slice; the change arrives with the slice that holds the issue.
    slices = 1
    while True:
        emu.advance(60)
        slices += 1
        if resolved in _ids(conn.read(["issues"]).records("issues")):
            break
        assert slices < 3, "three slices of 100 cover 250 issues"
    assert slices == 3  # the oldest issue is in the last slice
    # After the last slice the next one starts at the head again: an issue of the first slice
    # (newest firstSeen) that no delta reads (its lastSeen long past) arrives with the next sync.
    head = sorted(emu.issues(), key=lambda i: datetime.fromisoformat(i["firstSeen"]), reverse=True)[:100]
    quiet = str(min(head, key=lambda i: datetime.fromisoformat(i["lastSeen"]))["id"])
    emu.set_issue_status(quiet, "ignored")
    emu.advance(60)
    assert {str(r["id"]): r["status"] for r in conn.read(["issues"]).records("issues")}.get(quiet) == "ignored"
    emu.set_issue_status(occurred, "resolved")
    emu.advance(25 * 3600)
    full = conn.read(["issues"])  # the next full list
    assert {i["status"] for i in full.records("issues") if str(i["id"]) == occurred} == {"resolved"}


def test_a_full_list_stopped_half_way_is_read_in_full_again(make_emulator, tmp_path: Path) -> None:
    """Its checkpoints must not claim a complete full list, or the next sync would read only a
    delta and skip the changes on the pages it never reached."""
    emu = make_emulator(projects=1, events_per_project=400, issues_per_project=250)
    conn = Connector(tmp_path, emu, max_retries=0)
    conn.read(["issues"])
    emu.advance(25 * 3600)  # the next sync is due a full list
    oldest = [i for i in emu.issues() if i["status"] == "unresolved"][-1]
    emu.set_issue_status(str(oldest["id"]), "resolved")
    emu.inject_fault("500", path=".*/issues/", times=5, after=1)
    failed = conn.read(["issues"])
    assert failed.returncode == 1 and failed.states("issues")  # checkpointed, then failed
    emu.clear_faults()
    emu.clear_requests()
    emu.advance(60)
    resumed = conn.read(["issues"])
    assert resumed.returncode == 0, resumed.errors()
    assert str(oldest["id"]) in _ids(resumed.records("issues"))
    assert emu.request_counts()["/api/0/organizations/{org}/issues/"] == 3  # a full list again: 250 issues


def test_releases_between_full_scans_read_only_the_newest(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, releases=250)
    # A list larger than full_list_max_records (0 here): a full list every 24 hours, deltas between.
    conn = Connector(tmp_path, emu, full_list_max_records=0)
    assert len(conn.read(["releases"]).records("releases")) == 250
    old_version = emu.releases()[-1]["version"]
    emu.advance(60)
    emu.add_deploy(old_version)
    new_version = emu.add_release()
    emu.clear_requests()
    second = conn.read(["releases"])
    assert [r["version"] for r in second.records("releases")] == [new_version]
    # Open: the page with the new release, then an unchanged page ends it; archived: one page.
    assert emu.request_counts()["/api/0/organizations/{org}/releases/"] == 3
    emu.clear_requests()
    assert conn.read(["releases"]).records("releases") == []
    assert emu.request_counts()["/api/0/organizations/{org}/releases/"] == 2  # nothing new: one page each
    emu.advance(25 * 3600)
    third = conn.read(["releases"])
    assert old_version in {r["version"] for r in third.records("releases")}


def test_a_resolve_without_a_new_event_arrives_with_the_next_default_sync(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, issues_per_project=120)
    conn = Connector(tmp_path, emu)  # the default config: lists up to 10,000 issues read whole
    first = conn.read(["issues"])
    # The oldest first (the list's last page: the list is newest firstSeen first).
    unresolved = sorted((i for i in emu.issues() if i["status"] == "unresolved"),
                        key=lambda i: datetime.fromisoformat(i["firstSeen"]))
    resolved, ignored, assigned = (str(i["id"]) for i in unresolved[:3])
    assert {str(r["id"]) for r in first.records("issues")} >= {resolved, ignored, assigned}
    emu.advance(60)
    emu.set_issue_status(resolved, "resolved")
    emu.set_issue_status(ignored, "ignored")
    emu.assign_issue(assigned, f"team:{emu.teams()[0]['slug']}")
    emu.clear_requests()
    second = conn.read(["issues"])
    changed = {str(r["id"]): r for r in second.records("issues")}
    assert set(changed) == {resolved, ignored, assigned}  # only what changed, and all of it
    assert changed[resolved]["status"] == "resolved" and changed[ignored]["status"] == "ignored"
    assert changed[assigned]["assignedTo"] is not None
    pages = [r for r in emu.requests if r.path.endswith("/issues/")]
    assert len(pages) == -(-len(emu.issues()) // 100)  # the whole list: one request per 100 issues
