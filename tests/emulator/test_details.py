"""Item detail routes (how a client confirms a deletion), renamed projects, merged-away issues."""

from __future__ import annotations

import httpx
import pytest
from emu_helpers import all_items, client

from sentry_emulator import Emulator

ORG = "/api/0/organizations/acme"
NOT_FOUND = {"detail": "The requested resource does not exist"}
FORBIDDEN = {"detail": "You do not have permission to perform this action."}
PROJECT_ROUTES = ["", "events/", "keys/", "user-feedback/", "issues/"]


def _get(emu: Emulator, path: str, **params: object) -> httpx.Response:
    with client(emu) as c:
        return c.get(path, params=params)


# ---------------------------------------------------------------------------- details
def test_team_detail_by_slug_and_id_then_404(emulator) -> None:
    team = emulator.teams()[0]
    for key in (team["slug"], team["id"]):
        body = _get(emulator, f"/api/0/teams/acme/{key}/").json()
        assert body == {**{k: v for k, v in team.items() if k not in ("projects", "externalTeams")},
                        "organization": _get(emulator, f"{ORG}/").json()}
    expanded = _get(emulator, f"/api/0/teams/acme/{team['slug']}/", expand="projects", collapse="organization").json()
    assert expanded["projects"] == team["projects"] and "organization" not in expanded
    emulator.delete_team(team["slug"])
    r = _get(emulator, f"/api/0/teams/acme/{team['slug']}/")
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


def test_member_detail_then_404(emulator) -> None:
    member = next(m for m in emulator.members() if m["pending"])
    body = _get(emulator, f"{ORG}/members/{member['id']}/").json()
    assert {k: body[k] for k in member} == member
    assert body["invite_link"] is None and body["isOnlyOwner"] is False  # no member:admin
    assert {r["id"] for r in body["orgRoleList"]} >= {"member", "owner"}
    with client(emulator, token=emulator.create_token(scopes=["member:admin"])) as c:
        assert c.get(f"{ORG}/members/{member['id']}/").json()["invite_link"].startswith(emulator.base_url)
    assert _get(emulator, f"{ORG}/members/{member['email']}/").status_code == 404  # ids only
    emulator.remove_member(member["id"])
    r = _get(emulator, f"{ORG}/members/{member['id']}/")
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


def test_monitor_detail_by_slug_and_id_then_404(emulator) -> None:
    monitor = emulator.monitors()[0]
    for key in (monitor["slug"], monitor["id"]):
        assert _get(emulator, f"{ORG}/monitors/{key}/").json() == monitor
    emulator.delete_monitor(monitor["slug"])
    r = _get(emulator, f"{ORG}/monitors/{monitor['slug']}/")
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


def test_detector_and_workflow_details_then_404(emulator) -> None:
    detector, workflow = emulator.detectors()[1], emulator.workflows()[0]
    assert _get(emulator, f"{ORG}/detectors/{detector['id']}/").json() == detector
    assert _get(emulator, f"{ORG}/workflows/{workflow['id']}/").json() == workflow
    assert _get(emulator, f"{ORG}/detectors/not-a-number/").status_code == 404
    emulator.delete_detector(detector["id"])
    emulator.delete_workflow(workflow["id"])
    for path in (f"{ORG}/detectors/{detector['id']}/", f"{ORG}/workflows/{workflow['id']}/"):
        r = _get(emulator, path)
        assert (r.status_code, r.json()) == (404, NOT_FOUND)
    with client(emulator) as c:
        detectors = all_items(c, f"{ORG}/detectors/")
        workflows = all_items(c, f"{ORG}/workflows/")
    assert detector["id"] not in [d["id"] for d in detectors]
    assert all(detector["id"] not in w["detectorIds"] for w in workflows)
    assert all(workflow["id"] not in d["workflowIds"] for d in detectors)
    with pytest.raises(KeyError):
        emulator.delete_detector(detector["id"])


def test_release_and_project_details(emulator) -> None:
    release = emulator.releases()[0]
    project = emulator.projects()[0]
    assert _get(emulator, f"/api/0/projects/acme/{project['id']}/").json()["slug"] == project["slug"]
    quoted = httpx.URL(f"{ORG}/releases/{release['version']}/").raw_path.decode()
    assert _get(emulator, quoted).json()["version"] == release["version"]
    emulator.delete_release(release["version"])
    assert _get(emulator, quoted).status_code == 404


def test_restricted_token_is_forbidden_other_projects_details(emulator) -> None:
    other = {p["id"] for p in emulator.projects() if p["slug"] != "frontend"}
    detector = next(d for d in emulator.detectors() if d["projectId"] in other)
    monitor = next(m for m in emulator.monitors() if m["project"]["slug"] != "frontend")
    with client(emulator, token=emulator.create_token(projects=["frontend"])) as c:
        for path in (f"{ORG}/detectors/{detector['id']}/", f"{ORG}/monitors/{monitor['slug']}/"):
            r = c.get(path)
            assert (r.status_code, r.json()) == (403, FORBIDDEN)


# ---------------------------------------------------------------------------- merged-away issues
def test_merged_away_issue_answers_the_merged_into_issue(emulator) -> None:
    target, source = emulator.issues("backend")[:2]
    emulator.merge_issues(target["id"], [source["id"]])
    merged = emulator.issue(target["id"])
    with client(emulator) as c:
        r = c.get(f"{ORG}/issues/{source['id']}/")
        events = all_items(c, f"{ORG}/issues/{source['id']}/events/")
    assert r.status_code == 200 and r.json()["id"] == target["id"] == merged["id"]
    assert [e["id"] for e in events] == [e["id"] for e in emulator.issue_events(target["id"])]
    emulator.delete_issue(target["id"])  # now nothing stands behind either id
    assert _get(emulator, f"{ORG}/issues/{source['id']}/").status_code == 404


def test_merge_chains_are_followed(emulator) -> None:
    first, second, third = (i["id"] for i in emulator.issues("frontend")[:3])
    emulator.merge_issues(second, [first])
    emulator.merge_issues(third, [second])
    assert _get(emulator, f"{ORG}/issues/{first}/").json()["id"] == third


# ---------------------------------------------------------------------------- renamed projects
def _moved_body(new: str, url: str) -> dict:
    return {"detail": {"code": "resource-moved", "message": "Resource has been moved", "extra": {"url": url, "slug": new}}}


def test_rename_answers_302_on_every_project_route(emulator) -> None:
    before = emulator.project_detail("backend")
    events = emulator.events("backend")
    emulator.rename_project("backend", "payments")
    with client(emulator) as c:
        for tail in PROJECT_ROUTES:
            r = c.get(f"/api/0/projects/acme/backend/{tail}")
            url = f"/api/0/projects/acme/payments/{tail}"
            assert (r.status_code, r.headers["Location"], r.json()) == (302, url, _moved_body("payments", url))
            assert c.get(f"/api/0/projects/acme/payments/{tail}").status_code == 200
        r = c.get("/api/0/projects/acme/backend/events/?per_page=5&cursor=0:5:0")  # query kept as sent
        assert r.headers["Location"] == "/api/0/projects/acme/payments/events/?per_page=5&cursor=0:5:0"
        listed = c.get(f"{ORG}/projects/").json()
    assert {p["slug"]: p["id"] for p in listed}["payments"] == before["id"]
    assert "backend" not in emulator.project_slugs
    assert emulator.project_detail("payments")["id"] == before["id"]
    assert emulator.events("payments") == events
    assert all(i["shortId"].startswith("PAYMENTS-") for i in emulator.issues("payments"))
    with pytest.raises(KeyError):
        emulator.project_detail("backend")


def test_rename_without_location(emulator) -> None:
    emulator.rename_project("frontend", "web", location=False)
    r = _get(emulator, "/api/0/projects/acme/frontend/events/")
    assert r.status_code == 302 and "Location" not in r.headers
    assert r.json() == _moved_body("web", "/api/0/projects/acme/web/events/")


def test_rename_hides_nothing_from_a_token_that_cannot_see_it(emulator) -> None:
    blind = emulator.create_token(projects=["mobile"])
    sighted = emulator.create_token(projects=["backend"])
    emulator.rename_project("backend", "payments")
    with client(emulator, token=blind) as c:
        r = c.get("/api/0/projects/acme/backend/")
        assert (r.status_code, r.json()) == (403, FORBIDDEN)  # the rename is not revealed
    with client(emulator, token=sighted) as c:  # restricted by the old slug: still its project
        assert c.get("/api/0/projects/acme/backend/").status_code == 302
        assert c.get("/api/0/projects/acme/payments/").status_code == 200


def test_old_slug_reused_or_project_deleted(emulator) -> None:
    emulator.rename_project("backend", "payments")
    emulator.add_project("backend")  # a new project may take the old slug: it wins
    assert _get(emulator, "/api/0/projects/acme/backend/").json()["id"] != emulator.project_detail("payments")["id"]
    emulator.rename_project("frontend", "web")
    emulator.delete_project("web")
    r = _get(emulator, "/api/0/projects/acme/frontend/")
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


def test_rename_through_update_project_and_admin(make_emulator) -> None:
    emu = make_emulator(admin=True)
    emu.update_project("backend", slug="api", name="API")
    assert _get(emu, "/api/0/projects/acme/backend/").status_code == 302
    r = httpx.post(f"{emu.base_url}/_emulator/projects/frontend/rename", json={"slug": "web", "location": False})
    assert r.status_code == 200
    moved = _get(emu, "/api/0/projects/acme/frontend/")
    assert moved.status_code == 302 and "Location" not in moved.headers
    assert emu.project_slugs == ["api", "web", "mobile"] and emu.project_detail("api")["name"] == "API"
    r = httpx.post(f"{emu.base_url}/_emulator/detectors/{emu.detectors()[0]['id']}/delete", json={})
    assert r.status_code == 200 and len(emu.detectors()) == 5
    with pytest.raises(ValueError):
        emu.rename_project("api", "web")  # taken
