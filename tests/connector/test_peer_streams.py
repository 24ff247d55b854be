"""The tables other Sentry connectors have (issue 21), read end to end against the emulator: a
full read equal to what the emulator serves, a no-change incremental read that emits nothing,
then new data; secrets and personal data as documented; a missing scope fails its stream alone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
from connector_helpers import Connector

PEER_STREAMS = ["issue_hashes", "issue_tag_values", "project_users", "service_hooks", "release_files",
                "repositories", "integrations", "sentry_app_installations", "dashboards", "project_ownership"]
# No timestamp in Sentry's answers: read whole, every sync.
FULL_REFRESH_ONLY = {"integrations", "sentry_app_installations"}


def _all(emu: Any, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every item of one of the emulator's lists, following its Link header."""
    items: list[dict[str, Any]] = []
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.token}"}) as http:
        url: str | None = f"/api/0/{path}"
        while url:
            answer = http.get(url, params=params if url.startswith("/api/0/") else None)
            assert answer.status_code == 200, answer.text
            items += answer.json()
            nxt = answer.links.get("next", {})
            url = nxt.get("url") if nxt.get("results") == "true" else None
    return items


def _truth_tag_values(emu: Any) -> set[tuple[str, str, str, int]]:
    org, out = emu.organization, set()
    for issue in emu.issues():
        with httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.token}"}) as http:
            tags = http.get(f"/api/0/organizations/{org}/issues/{issue['id']}/").json()["tags"]
        for tag in tags:
            for value in _all(emu, f"organizations/{org}/issues/{issue['id']}/tags/{tag['key']}/values/"):
                out.add((issue["id"], value["key"], value["value"], value["count"]))
    return out


def test_peer_streams_full_no_change_and_new_data(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, events_per_project=120, issues_per_project=8, releases=5)
    org = emu.organization
    connector = Connector(tmp_path, emu)
    run = connector.read(PEER_STREAMS)
    for stream in PEER_STREAMS:
        assert run.statuses(stream)[-1] == "COMPLETE", (stream, run.errors())
    assert emu.token not in run.stdout

    # Full read: what the emulator serves, every record once.
    hashes = run.records("issue_hashes")
    want = {(i["id"], h["id"]) for i in emu.issues() for h in _all(emu, f"organizations/{org}/issues/{i['id']}/hashes/")}
    assert {(h["issueId"], h["id"]) for h in hashes} == want and len(hashes) == len(want)
    values = run.records("issue_tag_values")
    assert {(v["issueId"], v["key"], v["value"], v["count"]) for v in values} == _truth_tag_values(emu)
    assert any(v["key"].startswith("flag.") for v in values), "hot issues carry many tag keys"
    files = run.records("release_files")
    assert {(f["releaseVersion"], f["id"]) for f in files} == {
        (r["version"], f["id"]) for r in emu.releases() for f in _all(emu, f"organizations/{org}/releases/{r['version']}/files/")}
    repos = run.records("repositories")
    assert {r["name"] for r in repos} == {r["name"] for r in _all(emu, f"organizations/{org}/repos/")}
    dashboards = run.records("dashboards")
    assert dashboards and all(d["widgets"] and d["widgets"][0]["queries"] for d in dashboards)
    ownership = run.records("project_ownership")
    assert {o["projectSlug"] for o in ownership} == set(emu.project_slugs)
    assert all(o["raw"] and o["projectId"] for o in ownership)
    assert len(run.records("sentry_app_installations")) == 2

    # Secrets: the hook secret and the integrations' configuration never leave Sentry.
    hooks = run.records("service_hooks")
    assert hooks and all(h["secret"] is None for h in hooks)
    served = _all(emu, f"projects/{org}/{emu.project_slugs[0]}/hooks/")
    assert all(h["secret"] not in run.stdout for h in served)
    integrations = run.records("integrations")
    assert len(integrations) == 2 and all(i["configData"] is None for i in integrations)
    assert "whsec_" not in run.stdout

    # Personal data: hashed by default (unsalted SHA-256 of the value); the key kept.
    # (Events carry their user as Sentry sends it: issue_hashes' latestEvent, like the events stream.)
    users = run.records("project_users")
    emitted = json.dumps(users)
    per_project = {p["id"]: _all(emu, f"projects/{org}/{p['slug']}/users/") for p in emu.projects()}
    assert sorted((u["projectId"], u["hash"]) for u in users) == sorted(
        (pid, u["hash"]) for pid, served in per_project.items() for u in served)
    served_users = {u["hash"]: u for served in per_project.values() for u in served}
    for user in users:
        original = served_users[user["hash"]]
        assert user["email"] == hashlib.sha256(original["email"].encode()).hexdigest()
        assert original["email"] not in emitted and original["ipAddress"] not in emitted

    # No change: nothing emitted again (the lists without timestamps are full refresh: whole).
    again = connector.read(PEER_STREAMS)
    for stream in PEER_STREAMS:
        assert again.statuses(stream)[-1] == "COMPLETE", (stream, again.errors())
        if stream in FULL_REFRESH_ONLY:
            assert len(again.records(stream)) == len(run.records(stream)), stream
        else:
            assert again.records(stream) == [], stream

    # New data: each stream emits what changed, and only that.
    issue = emu.issues()[0]
    emu.add_events(issue["project"]["slug"], 3, issue_id=issue["id"])
    emu.add_service_hook(emu.project_slugs[1], "https://hooks.example.com/new")
    version = emu.add_release(projects=[emu.project_slugs[0]])
    emu.add_release_file(version, "~/static/js/late.js")
    emu.add_dashboard("On call")
    emu.add_dashboard_widget(dashboards[0]["id"], "Latency", "p95(transaction.duration)")
    emu.set_ownership(emu.project_slugs[0], "path:src/payments/* #platform\n")
    repo = repos[0]["name"]
    emu.remove_repository(repo)
    emu.remove_integration(integrations[0]["id"])
    later = connector.read(PEER_STREAMS)
    assert {h["issueId"] for h in later.records("issue_hashes")} == {issue["id"]}
    changed_values = later.records("issue_tag_values")
    assert changed_values and {v["issueId"] for v in changed_values} == {issue["id"]}
    assert all(v["count"] for v in changed_values)
    assert [h["url"] for h in later.records("service_hooks")] == ["https://hooks.example.com/new"]
    assert [f["name"] for f in later.records("release_files")] == ["~/static/js/late.js"]
    assert sorted(d["title"] for d in later.records("dashboards")) == sorted(["On call", dashboards[0]["title"]])
    assert [o["raw"] for o in later.records("project_ownership")] == ["path:src/payments/* #platform\n"]
    assert [(r["name"], r["status"]) for r in later.records("repositories")] == [(repo, "hidden")]
    assert {i["id"] for i in later.records("integrations")} == {i["id"] for i in integrations[1:]}

    # A repository deleted for good: its commits answer 404, so it is tombstoned.
    emu.remove_repository(repo, for_good=True)
    last = connector.read(["repositories"])
    [tombstone] = last.records("repositories")
    assert tombstone["id"] == repos[0]["id"] and tombstone["_ab_cdc_deleted_at"]


def test_personal_data_dropped_or_kept(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=40, issues_per_project=4, releases=2)
    (tmp_path / "drop").mkdir()
    users = Connector(tmp_path / "drop", emu, personal_data="drop").read(["project_users"]).records("project_users")
    assert users and all(u["email"] is None and u["ipAddress"] is None and u["tagValue"] is None for u in users)
    assert all(u["hash"] for u in users)  # Sentry's key stays
    (tmp_path / "keep").mkdir()
    kept = Connector(tmp_path / "keep", emu, personal_data="keep").read(["project_users"]).records("project_users")
    assert {u["email"] for u in kept} == {u["email"] for u in _all(emu, f"projects/{emu.organization}/{emu.project_slugs[0]}/users/")}
    (tmp_path / "bad").mkdir()
    bad = Connector(tmp_path / "bad", emu, personal_data="mask").read(["project_users"])
    assert "personal_data must be one of hash, drop, keep" in " ".join(e["message"] for e in bad.errors())


def test_missing_scope_fails_only_its_stream(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=40, issues_per_project=4, releases=2)
    token = emu.create_token(scopes=["org:read", "event:read", "project:releases"])
    connector = Connector(tmp_path, emu, auth_token=token)
    run = connector.read(["project_users", "service_hooks", "repositories", "issue_hashes"])
    assert run.statuses("repositories")[-1] == "COMPLETE"
    assert run.statuses("issue_hashes")[-1] == "COMPLETE"
    for stream in ("project_users", "service_hooks"):
        assert run.statuses(stream)[-1] == "INCOMPLETE"
    messages = [e["message"] for e in run.errors()]
    assert any("project:read" in m for m in messages), messages
    assert all(e["failure_type"] == "config_error" for e in run.errors())
    assert token not in run.stdout


def test_tag_keys_beyond_the_bound_are_warned_about(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=20, issues_per_project=2, releases=1)
    hot = emu.add_issue(emu.project_slugs[0], events=260)  # 120 flag keys and the event tags
    connector = Connector(tmp_path, emu)
    run = connector.read(["issue_tag_values"], timeout=400)
    assert run.statuses("issue_tag_values")[-1] == "COMPLETE", run.errors()
    keys = {v["key"] for v in run.records("issue_tag_values") if v["issueId"] == hot}
    assert len(keys) == 100
    [warning] = [m for m in run.logs("WARN") if hot in m]
    assert "only the 100 most frequent are read" in warning and "left out" in warning
