"""Organization-wide reads: project selection, regions, self-hosted TLS, every stream, deletions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from connector_helpers import Connector

from source_sentry.streams import DELETED_AT, STREAMS

NEW_STREAMS = [
    "teams", "members", "environments", "release_deploys", "release_commits", "issue_events",
    "project_keys", "user_feedback", "monitors", "monitor_checkins", "detectors", "workflows", "usage_stats",
]


def _ids(records: list[dict]) -> list[str]:
    return sorted(str(r["id"]) for r in records)


def test_all_projects_by_default_and_named_projects(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=4, events_per_project=60, issues_per_project=10)
    everything = Connector(tmp_path, emu).read(["events", "issues"])
    assert Counter(r["projectID"] for r in everything.records("events")) == {
        str(p["id"]): len(emu.events(p["slug"])) for p in emu.projects()
    }
    (tmp_path / "two").mkdir()
    chosen = emu.project_slugs[1:3]
    two = Connector(tmp_path / "two", emu, projects=chosen).read(["events", "issues"])
    ids = {p["slug"]: str(p["id"]) for p in emu.projects()}
    assert {r["projectID"] for r in two.records("events")} == {ids[s] for s in chosen}
    assert {r["project"]["slug"] for r in two.records("issues")} == set(chosen)
    assert _ids(two.records("issues")) == _ids([i for i in emu.issues() if i["project"]["slug"] in chosen])
    # State is kept per project.
    state = two.states("events")[-1]["stream"]["stream_state"]
    assert set(state["projects"]) == set(chosen)


def test_a_failing_project_does_not_block_the_others(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=3, events_per_project=40)
    slugs = emu.project_slugs
    run = Connector(tmp_path, emu, projects=[slugs[0], "missing-project", slugs[2]]).read(["events", "issues"])
    assert run.returncode == 1
    assert run.statuses("events")[-1] == "INCOMPLETE"
    assert any("missing-project" in e["message"] for e in run.errors())
    expected = {e["id"] for s in (slugs[0], slugs[2]) for e in emu.events(s)}
    assert {r["id"] for r in run.records("events")} == expected
    assert set(run.states("events")[-1]["stream"]["stream_state"]["projects"]) == {slugs[0], slugs[2]}


def test_the_region_is_discovered_from_links_region_url(make_emulator, tmp_path: Path) -> None:
    region = make_emulator(projects=2, events_per_project=30, token="sntryu_shared_region_token")
    control = make_emulator(projects=2, token="sntryu_shared_region_token", region_url=region.base_url)
    conn = Connector(tmp_path, control, region="auto")
    check = conn.cli("check")
    [status] = check.of_type("CONNECTION_STATUS")
    assert status["connectionStatus"]["status"] == "SUCCEEDED"
    assert region.base_url.split("//")[1] in status["connectionStatus"]["message"]
    control.clear_requests()
    region.clear_requests()
    run = conn.read(["events", "projects"])
    assert run.returncode == 0
    assert len(run.records("events")) == sum(len(region.events(s)) for s in region.project_slugs)
    # Only the organization lookup goes to the configured host; the data comes from the region.
    assert set(control.request_counts()) == {"/api/0/organizations/{org}/"}
    assert region.request_counts()


def test_a_region_url_on_another_host_is_not_trusted(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, region_url="https://evil.example.com")
    run = Connector(tmp_path, emu, region="auto").read(["projects"])
    assert run.returncode == 0
    assert any("evil.example.com" in w for w in run.logs("WARN"))


def test_self_hosted_over_tls_with_a_custom_ca(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, events_per_project=120, tls=True)
    assert emu.base_url.startswith("https://")
    run = Connector(tmp_path, emu).read(["events", "issues", "releases"])
    assert run.returncode == 0, run.errors()
    assert len(run.records("events")) == sum(emu.event_count(s) for s in emu.project_slugs) > 200


def test_every_new_stream_reads_all_pages(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, events_per_project=80, issues_per_project=12, releases=8)
    run = Connector(tmp_path, emu).read(NEW_STREAMS)
    assert run.returncode == 0, run.errors()
    for stream in NEW_STREAMS:
        assert run.statuses(stream)[-1] == "COMPLETE", stream
    assert _ids(run.records("teams")) == _ids(emu.teams())
    assert _ids(run.records("members")) == _ids(emu.members())
    assert sorted(e["name"] for e in run.records("environments")) == sorted(e["name"] for e in emu.environments())
    deploys = [d for r in emu.releases() for d in emu.deploys(r["version"])]
    assert _ids(run.records("release_deploys")) == _ids(deploys)
    assert all(d["releaseVersion"] for d in run.records("release_deploys"))
    commits = [c for r in emu.releases() for c in emu.commits(r["version"])]
    assert _ids(run.records("release_commits")) == _ids(commits)
    # Every issue's events: the project lists' error events and the issue-platform ones.
    issue_events = [e["id"] for i in emu.issues() for e in emu.issue_events(i["id"])]
    assert len(issue_events) > sum(emu.event_count(s) for s in emu.project_slugs)
    assert sorted(r["id"] for r in run.records("issue_events")) == sorted(issue_events)
    keys = [k for s in emu.project_slugs for k in emu.keys(s)]
    assert _ids(run.records("project_keys")) == _ids(keys)
    for key in run.records("project_keys"):
        assert key["dsn"]["secret"] is None and key.get("secret") is None  # DSN secrets dropped
        assert key["dsn"]["public"]
    feedback = [f for s in emu.project_slugs for f in emu.feedback(s)]
    assert _ids(run.records("user_feedback")) == _ids(feedback)
    assert _ids(run.records("monitors")) == _ids(emu.monitors())
    checkins = [c for m in emu.monitors() for c in emu.checkins(m["slug"])]
    assert _ids(run.records("monitor_checkins")) == _ids(checkins)
    assert run.records("usage_stats")
    assert all(r["quantity"] > 0 for r in run.records("usage_stats"))


def test_child_streams_read_only_changed_parents(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=60, issues_per_project=10, releases=12)
    conn = Connector(tmp_path, emu)
    conn.read(["release_deploys", "issue_events", "monitor_checkins"])
    emu.advance(120)
    version = emu.releases()[2]["version"]
    deploy = emu.add_deploy(version)
    issue = emu.issues()[0]
    new_events = emu.add_events(issue["project"]["slug"], 2, issue_id=str(issue["id"]))
    monitor = emu.monitors()[0]["slug"]
    checkin = emu.add_checkin(monitor)
    emu.advance(5)
    emu.clear_requests()
    run = conn.read(["release_deploys", "issue_events", "monitor_checkins"])
    assert run.returncode == 0, run.errors()
    assert str(deploy["id"]) in _ids(run.records("release_deploys"))
    assert {r["releaseVersion"] for r in run.records("release_deploys")} == {version}
    assert set(new_events) <= {r["id"] for r in run.records("issue_events")}
    assert {r["issueId"] for r in run.records("issue_events")} == {str(issue["id"])}
    assert str(checkin["id"]) in _ids(run.records("monitor_checkins"))
    counts = emu.request_counts()
    assert counts.get("/api/0/organizations/{org}/releases/{version}/deploys/") == 1
    assert counts.get("/api/0/organizations/{org}/issues/{issue_id}/events/") == 1


def test_child_streams_list_only_the_parents_that_moved_between_full_lists(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=900, issues_per_project=350, releases=250)
    # Lists larger than full_list_max_records (0 here, 10,000 by default) go by full_scan_hours (24).
    conn = Connector(tmp_path, emu, full_list_max_records=0)
    streams = ["issue_events", "release_deploys", "release_commits"]
    first = conn.read(streams)
    assert first.returncode == 0, first.errors()
    emu.advance(600)
    emu.clear_requests()
    idle = conn.read(streams)
    assert idle.returncode == 0, idle.errors()
    assert idle.records() == []
    counts = emu.request_counts()
    # One page of issues that moved (none), one page per release status (shared by the two
    # release child streams), and the project list (issues are asked for by project id).
    assert counts == {
        "/api/0/organizations/{org}/issues/": 1,
        "/api/0/organizations/{org}/releases/": 2,
        "/api/0/organizations/{org}/projects/": 1,
    }, counts
    # An old issue with new events moves to the top of the delta: its events are read.
    issue = emu.issues()[-1]
    new_events = emu.add_events(issue["project"]["slug"], 3, issue_id=str(issue["id"]))
    emu.advance(5)
    run = conn.read(["issue_events"])
    assert run.returncode == 0, run.errors()
    assert set(new_events) <= {r["id"] for r in run.records("issue_events")}
    assert {r["issueId"] for r in run.records("issue_events")} == {str(issue["id"])}
    # A full list once full_scan_hours have passed: every parent again, no child re-read.
    emu.advance(25 * 3600)
    emu.clear_requests()
    full = conn.read(["issue_events"])
    assert full.returncode == 0, full.errors()
    assert emu.request_counts()["/api/0/organizations/{org}/issues/"] == 4  # 350 issues


def test_deletions_become_tombstones(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=3, issues_per_project=15, releases=10)
    conn = Connector(tmp_path, emu, full_scan_hours=0)  # deletions show in full lists
    conn.read(["issues", "releases", "projects", "teams"])
    issue = str(emu.issues(project_slug=emu.project_slugs[0])[0]["id"])
    merged_into, merged = (str(i["id"]) for i in emu.issues(project_slug=emu.project_slugs[1])[:2])
    releases_before = {str(r["id"]) for r in emu.releases()}
    version = emu.releases()[0]["version"]
    release_id = str(emu.releases()[0]["id"])
    team = emu.teams()[0]
    project = emu.projects()[2]
    emu.delete_issue(issue)
    emu.merge_issues(merged_into, [merged])
    emu.delete_release(version)
    emu.delete_team(team["slug"])
    emu.delete_project(project["slug"])
    run = conn.read(["issues", "releases", "projects", "teams"])
    assert run.returncode == 0, run.errors()

    def tombstones(stream: str) -> set[str]:
        return {str(r["id"]) for r in run.records(stream) if r.get(DELETED_AT)}

    assert {issue, merged} <= tombstones("issues")
    # Releases linked only to the deleted project leave the list too, as on Sentry.
    gone_releases = releases_before - {str(r["id"]) for r in emu.releases()}
    assert release_id in gone_releases
    assert tombstones("releases") == gone_releases
    assert tombstones("teams") == {str(team["id"])}
    assert tombstones("projects") == {str(project["id"])}
    again = conn.read(["issues", "releases", "projects", "teams"])
    assert not [r for r in again.records() if r.get(DELETED_AT)]


def test_issues_ageing_out_of_retention_are_not_deletions(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=300, issues_per_project=60, days=120)
    conn = Connector(tmp_path, emu)
    first = conn.read(["issues"])
    before = {str(i["id"]) for i in first.records("issues")}
    emu.advance(15 * 86400)  # fifteen days on: the oldest issues fall out of the 90-day window
    run = conn.read(["issues"])
    after = {str(i["id"]) for i in emu.issues()}
    assert after < before  # some issues did age out
    assert not [r for r in run.records("issues") if r.get(DELETED_AT)]


def test_a_missing_scope_fails_only_that_stream(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1)
    token = emu.create_token(scopes=["project:read", "event:read", "project:releases"])
    run = Connector(tmp_path, emu, auth_token=token, projects=emu.project_slugs).read(
        ["teams", "members", "monitors", "issues", "releases"]
    )
    assert run.returncode == 1
    failed = {e["stream_descriptor"]["name"]: e["message"] for e in run.errors()}
    assert set(failed) == {"teams", "members", "monitors"}
    assert "org:read" in failed["teams"] and "member:read" in failed["members"] and "alerts:read" in failed["monitors"]
    assert run.statuses("issues")[-1] == "COMPLETE" and run.statuses("releases")[-1] == "COMPLETE"


@pytest.mark.parametrize("stream", [s.name for s in STREAMS])
def test_every_stream_records_match_its_schema(make_emulator, tmp_path: Path, stream: str) -> None:
    import jsonschema

    from source_sentry.schemas import stream_schema
    from source_sentry.streams import stream_by_name

    emu = make_emulator(projects=1, events_per_project=30, issues_per_project=5, releases=4)
    run = Connector(tmp_path, emu).read([stream], mode="full_refresh")
    assert run.returncode == 0, run.errors()
    validator = jsonschema.Draft7Validator(stream_schema(stream_by_name(stream)))
    for record in run.records(stream):
        validator.validate(record)


@pytest.mark.parametrize(
    "stream",
    [s.name for s in STREAMS if s.incremental and s.name in NEW_STREAMS and s.kind != "usage"],
)
def test_a_second_incremental_sync_of_each_new_stream_reads_nothing_unchanged(
    make_emulator, tmp_path: Path, stream: str
) -> None:
    emu = make_emulator(projects=2, events_per_project=40, issues_per_project=8, releases=6)
    conn = Connector(tmp_path, emu)
    first = conn.read([stream])
    assert first.returncode == 0 and first.records(stream), stream
    second = conn.read([stream])
    assert second.returncode == 0
    assert second.records(stream) == [], f"{stream} re-emitted unchanged records"
    assert second.states(stream)
