"""Every project in scope means every project the token can access, not only its user's teams'.

Sentry's organization lists choose their projects with ``OrganizationEndpoint.get_projects``: asked
without ``project`` they serve only the projects of the teams the token's user is a member of, so a
user token of an admin (or of an open-membership organization) silently gets nothing from the
other projects; ``project=-1`` asks for all of them. The emulator models that membership.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from connector_helpers import Connector

from source_sentry.timeutil import parse_time

# The streams whose organization list resolves projects through get_projects.
STREAMS = ["issues", "usage_stats", "release_health", "spans", "logs", "uptime_results", "tracemetrics",
           "replays", "monitors", "detectors", "workflows", "environments"]
# SMALL's projects and their teams: backend (platform), frontend (web), mobile (mobile-team).
MEMBER_TEAMS = ["platform", "web"]


def _series_rows(emu: Any, token: str, route: str, query: dict[str, list[str]], fields: tuple[str, str]) -> set[tuple]:
    """The non-zero points of a stats_v2 or sessions answer to ``query`` without ``project``, asked
    with ``token``: (interval, group-by values, the two fields' values)."""
    params = {k: v for k, v in query.items() if k != "project"}
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {token}"}) as http:
        answer = http.get(f"/api/0/organizations/{emu.organization}/{route}/", params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    rows = set()
    for group in body["groups"]:
        for i, at in enumerate(body["intervals"]):
            values = tuple(group["series"][f][i] for f in fields)
            if any(values):
                rows.add((at, tuple(sorted(group["by"].items())), values))
    return rows


def test_a_user_token_outside_a_team_reads_that_teams_project_too(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(days=5, token_teams=MEMBER_TEAMS)
    mobile = next(p for p in emu.projects() if p["slug"] == "mobile")
    assert mobile["team"]["slug"] not in MEMBER_TEAMS
    emu.add_environment("mobile-beta", projects=["mobile"])  # only the non-member project has it
    member = emu.create_token()  # a member of every project: what the organization holds

    # The premise: without project=, the emulator (as Sentry) leaves the non-member project out.
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.token}"}) as http:
        issues = http.get(f"/api/0/organizations/{emu.organization}/issues/", params={"query": ""}).json()
    assert issues and mobile["id"] not in {i["project"]["id"] for i in issues}

    run = Connector(tmp_path, emu).read(STREAMS)
    for stream in STREAMS:
        assert run.statuses(stream)[-1] == "COMPLETE", (stream, run.errors())

    def ids(rows: list[dict[str, Any]], *keys: str) -> list[tuple[Any, ...]]:
        return sorted(tuple(r[k] for k in keys) for r in rows)

    assert ids(run.records("issues"), "id") == ids(emu.issues(), "id")
    assert mobile["id"] in {i["project"]["id"] for i in run.records("issues")}
    for stream, truth in (("monitors", emu.monitors()), ("detectors", emu.detectors()),
                          ("workflows", emu.workflows()), ("environments", emu.environments())):
        assert ids(run.records(stream), "id") == ids(truth, "id"), stream
    assert "mobile-beta" in {e["name"] for e in run.records("environments")}

    for dataset in ("spans", "logs", "uptime_results", "tracemetrics"):
        [state] = [s for s in run.final_states() if s["stream"]["stream_descriptor"]["name"] == dataset]
        upper = parse_time(state["stream"]["stream_state"]["timestamp"])
        keys = ("id", "trace") if dataset == "spans" else ("id",)
        truth = emu.explore_rows(dataset, end=upper)
        assert int(mobile["id"]) in {r["project.id"] for r in truth}
        assert ids(run.records(dataset), *keys) == ids(truth, *keys), dataset
    [state] = [s for s in run.final_states() if s["stream"]["stream_descriptor"]["name"] == "replays"]
    upper = parse_time(state["stream"]["stream_state"]["finished_at"])
    assert upper is not None
    truth = [r for r in emu.replays() if parse_time(r["finished_at"]) < upper]
    assert ids(run.records("replays"), "id") == ids(truth, "id")

    # Usage and release health: each request the connector made, asked again for the whole
    # organization (a member of every project, no project=), holds the rows it emitted.
    for stream, route, fields in (("usage_stats", "stats_v2", ("sum(quantity)", "sum(times_seen)")),
                                  ("release_health", "sessions", ("sum(session)", "count_unique(user)"))):
        asked = [r for r in emu.requests if r.path.endswith(f"/{route}/") and r.query.get("project") == ["-1"]]
        assert asked, f"{stream} asks for every accessible project"
        truth_rows: set[tuple] = set()
        for request in asked:
            truth_rows |= _series_rows(emu, member, route, request.query, fields)
        assert int(mobile["id"]) in {dict(by)["project"] for _, by, _ in truth_rows}
        first, second = ("quantity", "times_seen") if stream == "usage_stats" else ("sessions", "users")
        got = {(r["interval"], r["project"], r[first], r[second]) for r in run.records(stream)}
        want = {(at, dict(by)["project"], *values) for at, by, values in truth_rows}
        assert got == want, stream


def test_named_projects_are_still_asked_by_id(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(days=2, token_teams=MEMBER_TEAMS)
    mobile = next(p for p in emu.projects() if p["slug"] == "mobile")
    run = Connector(tmp_path, emu, projects=["mobile"]).read(["issues", "monitors", "environments"])
    assert all(run.statuses(s)[-1] == "COMPLETE" for s in ("issues", "monitors", "environments")), run.errors()
    assert {i["project"]["id"] for i in run.records("issues")} == {mobile["id"]}
    assert {m["project"]["slug"] for m in run.records("monitors")} == {"mobile"}
    org_lists = [r for r in emu.requests if r.route and "organizations/{org}/" in r.route
                 and r.route.rstrip("/").rsplit("/", 1)[-1] in ("issues", "monitors", "environments")]
    assert org_lists and all(r.query.get("project") == [mobile["id"]] for r in org_lists)
