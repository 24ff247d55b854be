"""401 / 403 / 404 with Sentry's bodies."""

from __future__ import annotations

import pytest
from emu_helpers import client

INVALID = {"detail": "Invalid token"}
EXPIRED = {"detail": "Token expired"}
FORBIDDEN = {"detail": "You do not have permission to perform this action."}
NOT_FOUND = {"detail": "The requested resource does not exist"}


def test_missing_unknown_and_revoked_tokens_are_401(emulator) -> None:
    path = "/api/0/organizations/acme/projects/"
    with client(emulator, token="") as c:
        r = c.get(path)
        assert (r.status_code, r.json()) == (401, INVALID)
        r = c.get(path, headers={"Authorization": "Bearer nope"})
        assert (r.status_code, r.json()) == (401, INVALID)
        r = c.get(path, headers={"Authorization": f"Token {emulator.token}"})
        assert r.status_code == 401
    extra = emulator.create_token()
    emulator.revoke_token(extra)
    with client(emulator, token=extra) as c:
        r = c.get(path)
    assert (r.status_code, r.json()) == (401, EXPIRED)


@pytest.mark.parametrize("path,scope", [
    ("/api/0/organizations/acme/projects/", "org:read"),
    ("/api/0/projects/acme/backend/", "project:read"),
    ("/api/0/projects/acme/backend/events/", "event:read"),
    ("/api/0/organizations/acme/issues/", "event:read"),
    ("/api/0/organizations/acme/releases/", "project:releases"),
    ("/api/0/organizations/acme/members/", "member:read"),
    ("/api/0/organizations/acme/teams/", "team:read"),
    ("/api/0/organizations/acme/monitors/", "alerts:read"),
])
def test_each_endpoint_needs_its_scope(make_emulator, path: str, scope: str) -> None:
    emulator = make_emulator(scope_rules="strict")
    others = [s for s in ("org:read", "project:read", "team:read", "member:read", "event:read",
                          "project:releases", "alerts:read") if s != scope]
    with client(emulator, token=emulator.create_token(scopes=others)) as c:
        r = c.get(path)
        assert (r.status_code, r.json()) == (403, FORBIDDEN)
    with client(emulator, token=emulator.create_token(scopes=[scope])) as c:
        assert c.get(path).status_code == 200


def test_project_restricted_token(emulator) -> None:
    token = emulator.create_token(projects=["frontend"])
    with client(emulator, token=token) as c:
        r = c.get("/api/0/projects/acme/backend/events/")
        assert (r.status_code, r.json()) == (403, FORBIDDEN)
        assert c.get("/api/0/projects/acme/frontend/events/").status_code == 200
        slugs = [p["slug"] for p in c.get("/api/0/organizations/acme/projects/").json()]
        assert slugs == ["frontend"]
        issues = c.get("/api/0/organizations/acme/issues/", params={"query": ""}).json()
        assert {i["project"]["slug"] for i in issues} == {"frontend"}
        backend_id = next(p["id"] for p in emulator.projects() if p["slug"] == "backend")
        r = c.get("/api/0/organizations/acme/issues/", params={"project": backend_id})
        assert r.status_code == 403


@pytest.mark.parametrize("path", [
    "/api/0/organizations/nope/",
    "/api/0/organizations/nope/projects/",
    "/api/0/projects/acme/nope/",
    "/api/0/projects/nope/backend/events/",
    "/api/0/organizations/acme/issues/999/",
    "/api/0/organizations/acme/releases/nope@1.0/",
    "/api/0/organizations/acme/releases/nope@1.0/deploys/",
    "/api/0/organizations/acme/monitors/nope/checkins/",
    "/api/0/organizations/acme/monitors/nope/",
    "/api/0/teams/acme/nope/",
    "/api/0/teams/nope/platform/",
    "/api/0/organizations/acme/members/999999/",
    "/api/0/organizations/acme/detectors/1/",
    "/api/0/organizations/acme/workflows/999/",
    "/api/0/not-an-endpoint/",
])
def test_unknown_resources_are_404(emulator, path: str) -> None:
    with client(emulator) as c:
        r = c.get(path)
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


def test_resources_by_id_as_well_as_slug(emulator) -> None:
    project = emulator.projects()[0]
    with client(emulator) as c:
        assert c.get(f"/api/0/projects/acme/{project['id']}/").json()["slug"] == project["slug"]
        org_id = c.get("/api/0/organizations/acme/").json()["id"]
        assert c.get(f"/api/0/organizations/{org_id}/").status_code == 200
