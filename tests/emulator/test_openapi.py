"""Every endpoint the emulator serves returns bodies valid against Sentry's OpenAPI 200 schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from emu_helpers import client, nullable

from sentry_emulator import Emulator
from sentry_emulator.api import ROUTES
from sentry_emulator.explore import FIELD_TYPES

# Trimmed from Sentry's openapi-derefed.json (provenance: tests/data/sentry-api/SOURCE.md).
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "data" / "sentry-api" / "openapi-200.json"
_PARAM_NAMES = {"{org}": "{organization_id_or_slug}", "{project}": "{project_id_or_slug}",
                "{monitor}": "{monitor_id_or_slug}"}


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


def _schema_for(openapi: dict[str, Any], template: str) -> dict[str, Any]:
    path = template
    for ours, theirs in _PARAM_NAMES.items():
        path = path.replace(ours, theirs)
    op = openapi["paths"][path]["get"]
    return nullable(op["responses"]["200"]["content"]["application/json"]["schema"])


def _url(emu: Emulator, template: str) -> tuple[str, dict[str, Any]]:
    issue = emu.issues()[0]["id"]
    release = emu.releases()[0]["version"]
    values = {"{org}": emu.organization, "{project}": emu.project_slugs[0], "{issue_id}": issue,
              "{version}": release, "{monitor}": emu.monitors()[0]["slug"],
              "{team_id_or_slug}": emu.teams()[0]["slug"], "{member_id}": emu.members()[0]["id"],
              "{detector_id}": emu.detectors()[0]["id"], "{workflow_id}": emu.workflows()[0]["id"],
              # The tables of issue 21: the first of each list (environment: a key every issue has).
              "{key}": "environment", "{repo_id}": _first_id(emu, "repos/"),
              "{integration_id}": _first_id(emu, "integrations/"), "{dashboard_id}": _first_id(emu, "dashboards/")}
    url = template
    for k, v in values.items():
        url = url.replace(k, v)
    params = _PARAMS.get(template.rsplit("/", 2)[-2], {})
    return url, dict(params)


def _first_id(emu: Emulator, route: str) -> str:
    with client(emu) as c:
        return str(c.get(f"/api/0/organizations/{emu.organization}/{route}").json()[0]["id"])


_PARAMS: dict[str, dict[str, Any]] = {
    "stats_v2": {"field": "sum(quantity)", "groupBy": ["outcome", "category"], "statsPeriod": "2d", "interval": "1d"},
    "sessions": {"field": ["sum(session)", "count_unique(user)"],
                 "groupBy": ["project", "release", "environment", "session.status"], "statsPeriod": "7d"},
    "replays": {"statsPeriod": "1d"},
}


EXPLORE = "/api/0/organizations/{org}/events/"
CASES = [(r.template, "plain") for r in ROUTES if r.template != EXPLORE] + [
    (r.template, "full") for r in ROUTES if r.template.endswith("/events/") and r.template != EXPLORE] + [
    (EXPLORE, dataset) for dataset in ("spans", "logs", "uptime_results", "tracemetrics")]


@pytest.mark.parametrize("template,variant", sorted(CASES))
def test_body_matches_openapi(make_emulator, openapi, template: str, variant: str) -> None:
    emu = make_emulator(projects=2, events_per_project=80, issues_per_project=15, releases=6)
    url, params = _url(emu, template)
    if variant == "full":
        params["full"] = "true"
    elif template == EXPLORE:
        params.update(dataset=variant, statsPeriod="1d", field=sorted(FIELD_TYPES[variant]))
    with client(emu) as c:
        r = c.get(url, params={**params, "query": ""} if template.endswith("/issues/") else params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body, f"{template} returned an empty body; nothing was validated"
    if template.endswith(("/sessions/", "/replays/")) or template == EXPLORE:
        assert body.get("data") or body.get("groups"), f"{template}: no rows; nothing was validated"
    jsonschema.validate(body, _schema_for(openapi, template))


def test_every_route_is_in_the_schema(openapi) -> None:
    for r in ROUTES:
        _schema_for(openapi, r.template)


def test_bodies_after_org_mutations_match_openapi(make_emulator, openapi) -> None:
    """Added and orphaned records (no team, added check-ins, feedback, keys, commits, members)."""
    emu = make_emulator(projects=2, events_per_project=80, issues_per_project=15, releases=6)
    for team in [t["slug"] for t in emu.teams()]:
        emu.delete_team(team)  # projects without a team, monitors owned by a member
    emu.add_team("late-team")
    emu.add_member("zoe@example.com", teams=["late-team"])
    emu.add_member("invite@example.com", pending=True)
    emu.add_environment("canary")
    emu.add_monitor("billing-cron", "backend")
    emu.add_checkin("billing-cron", status="error")
    emu.add_checkin(emu.monitors()[0]["slug"], status="missed")
    emu.add_feedback("backend", issue_id=emu.issues("backend")[0]["id"])
    emu.add_key("backend", "CI")
    version = emu.releases()[0]["version"]
    emu.add_commit(version, "fix: it")
    emu.delete_project("frontend")
    for template in ("/api/0/organizations/{org}/projects/", "/api/0/projects/{org}/{project}/",
                     "/api/0/organizations/{org}/teams/", "/api/0/organizations/{org}/members/",
                     "/api/0/organizations/{org}/environments/", "/api/0/organizations/{org}/monitors/",
                     "/api/0/organizations/{org}/monitors/{monitor}/checkins/",
                     "/api/0/projects/{org}/{project}/user-feedback/", "/api/0/projects/{org}/{project}/keys/",
                     "/api/0/organizations/{org}/releases/{version}/commits/",
                     "/api/0/organizations/{org}/releases/", "/api/0/organizations/{org}/detectors/",
                     "/api/0/organizations/{org}/issues/"):
        url, params = _url(emu, template)
        with client(emu) as c:
            r = c.get(url.replace(emu.monitors()[0]["slug"], "billing-cron"), params=params)
        assert r.status_code == 200, (template, r.text)
        jsonschema.validate(r.json(), _schema_for(openapi, template))


EVENT_DETAIL = "/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}/events/{event_id}/"


def test_full_events_of_every_kind_match_the_event_detail_schema(make_emulator, openapi) -> None:
    """A full event (entries, contexts, occurrence, ...) as getProjectEvent documents one: from
    the project lists and from the issue lists of every issue category and type."""
    emu = make_emulator(seed=3, projects=3, events_per_project=1500, issues_per_project=150, releases=10)
    schema = nullable(openapi["paths"][EVENT_DETAIL]["get"]["responses"]["200"]["content"]["application/json"]["schema"])
    kinds: set[tuple[str, str]] = set()
    with client(emu) as c:
        lists = [c.get(f"/api/0/projects/acme/{slug}/events/", params={"full": "true"}).json()
                 for slug in emu.project_slugs]
        for issue in emu.issues():
            if (issue["issueCategory"], issue["type"]) not in kinds:
                kinds.add((issue["issueCategory"], issue["type"]))
                lists.append(c.get(f"/api/0/organizations/acme/issues/{issue['id']}/events/",
                                   params={"full": "true"}).json())
    assert len(kinds) == 7, kinds  # error/error, error/default, error/csp, performance, cron, feedback, uptime
    for events in lists:
        assert events
        for event in events:
            jsonschema.validate(event, schema)
