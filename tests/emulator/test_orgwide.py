"""Organization-wide features: regions, deletions and more mutations, paging every list,
scopes per endpoint, stats_v2."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from emu_helpers import all_items, client, links, walk

from sentry_emulator import Emulator
from sentry_emulator.auth import ALL_READ_SCOPES

PINNED = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
FORBIDDEN = {"detail": "You do not have permission to perform this action."}
NOT_FOUND = {"detail": "The requested resource does not exist"}
ORG = "/api/0/organizations/acme"


def _q(version: str) -> str:
    return quote(version, safe="")


# ---------------------------------------------------------------------------- regions
def test_region_url_points_the_control_host_at_the_data_host(make_emulator) -> None:
    token = "sntryu_" + "ab" * 32
    data = make_emulator(seed=5, token=token, start_time=PINNED)  # "us.sentry.io": holds the data
    control = make_emulator(seed=5, token=token, start_time=PINNED, region_url=data.base_url)  # "sentry.io"
    assert control.region_url == data.base_url and data.region_url == data.base_url
    with client(control) as c:
        [org] = c.get("/api/0/organizations/").json()
        detail = c.get(f"{ORG}/").json()
    assert org["links"] == {"organizationUrl": control.base_url, "regionUrl": data.base_url}
    assert detail["links"] == org["links"]
    # Follow regionUrl with the same token: the same organization, byte for byte.
    with client(data, token=token) as c, client(control, token=token) as d:
        for path in (f"{ORG}/", f"{ORG}/projects/", f"{ORG}/teams/", f"{ORG}/members/",
                     "/api/0/projects/acme/backend/events/"):
            here, there = c.get(path).json(), d.get(path).json()
            if isinstance(here, dict):
                here.pop("links"), there.pop("links")
            assert here == there, path
        issues = [i["id"] for i in all_items(c, f"{ORG}/issues/", {"query": ""})]
    assert issues == [i["id"] for i in control.issues()]
    control.region_url = None
    assert control.region_url == control.base_url


def test_region_url_from_the_command_line() -> None:
    from sentry_emulator.cli import build_parser

    args = build_parser().parse_args(["--region-url", "http://127.0.0.1:9", "--scope-rules", "sentry", "--teams", "9"])
    assert (args.region_url, args.scope_rules, args.teams) == ("http://127.0.0.1:9", "sentry", 9)


# ---------------------------------------------------------------------------- deletions
def test_delete_release(emulator) -> None:
    version = emulator.releases()[0]["version"]
    emulator.delete_release(version)
    assert version not in [r["version"] for r in emulator.releases()]
    with client(emulator) as c:
        assert version not in [r["version"] for r in all_items(c, f"{ORG}/releases/", {"per_page": 5})]
        for tail in ("", "deploys/", "commits/"):
            r = c.get(f"{ORG}/releases/{_q(version)}/{tail}")
            assert (r.status_code, r.json()) == (404, NOT_FOUND)
    with pytest.raises(KeyError):
        emulator.deploys(version)
    new = emulator.add_release()
    assert new != version and emulator.releases()[0]["id"] > max(r["id"] for r in emulator.releases()[1:])


def test_delete_project(make_emulator) -> None:
    emu = make_emulator(monitors=3)
    victim = emu.projects()[1]
    issue_ids = {i["id"] for i in emu.issues("frontend")}
    emu.delete_project("frontend")
    assert emu.project_slugs == ["backend", "mobile"]
    assert "frontend" not in {p["slug"] for p in emu.projects()}
    assert not issue_ids & {i["id"] for i in emu.issues()}
    with pytest.raises(KeyError):
        emu.events("frontend")
    with client(emu) as c:
        assert [p["slug"] for p in all_items(c, f"{ORG}/projects/")] == ["backend", "mobile"]
        issues = all_items(c, f"{ORG}/issues/", {"query": ""})
        assert issues and not {i["project"]["slug"] for i in issues} & {"frontend"}
        for path in ("/api/0/projects/acme/frontend/", "/api/0/projects/acme/frontend/events/",
                     "/api/0/projects/acme/frontend/keys/", "/api/0/projects/acme/frontend/user-feedback/",
                     "/api/0/projects/acme/frontend/issues/", f"/api/0/projects/acme/{victim['id']}/",
                     f"{ORG}/issues/{sorted(issue_ids)[0]}/", f"{ORG}/issues/{sorted(issue_ids)[0]}/events/"):
            r = c.get(path)
            assert (r.status_code, r.json()) == (404, NOT_FOUND), path
        assert c.get(f"{ORG}/issues/", params={"project": victim["id"]}).status_code == 403
        team_projects = {p["slug"] for t in all_items(c, f"{ORG}/teams/") for p in t["projects"]}
        assert "frontend" not in team_projects
        assert victim["id"] not in {d["projectId"] for d in all_items(c, f"{ORG}/detectors/")}
        assert victim["id"] not in {m["project"]["id"] for m in all_items(c, f"{ORG}/monitors/")}
        assert "frontend" not in {p["slug"] for r in all_items(c, f"{ORG}/releases/") for p in r["projects"]}
        stats = c.get(f"{ORG}/stats_v2/", params={"field": "sum(quantity)", "groupBy": "project",
                                                  "statsPeriod": "90d", "interval": "1d"}).json()
        assert int(victim["id"]) not in {g["by"]["project"] for g in stats["groups"]}
    assert len(emu.monitors()) == 2
    emu.add_project("frontend")  # the slug is free again: a new, empty project
    assert emu.event_count("frontend") == 0 and emu.project_detail("frontend")["id"] != victim["id"]


# ---------------------------------------------------------------------------- org mutations
def test_teams_add_and_delete(emulator) -> None:
    team = emulator.add_team("payments-team", name="Payments")
    assert team["slug"] == "payments-team" and team["name"] == "Payments"
    first = emulator.teams()[0]["slug"]
    owned = [p["slug"] for p in emulator.projects() if p["team"] and p["team"]["slug"] == first]
    emulator.delete_team(first)
    with client(emulator) as c:
        slugs = [t["slug"] for t in all_items(c, f"{ORG}/teams/")]
        projects = {p["slug"]: p for p in all_items(c, f"{ORG}/projects/")}
        members = all_items(c, f"{ORG}/members/")
        detail = c.get(f"/api/0/projects/acme/{owned[0]}/").json()
    assert "payments-team" in slugs and first not in slugs
    assert slugs == [t["slug"] for t in emulator.teams()]
    assert owned and all(projects[s]["team"] is None and projects[s]["teams"] == [] for s in owned)
    assert "team" not in detail and detail["teams"] == []
    assert not any(first in m["teams"] for m in members)
    with pytest.raises(ValueError):
        emulator.add_team("payments-team")
    with pytest.raises(KeyError):
        emulator.delete_team(first)


def test_members_add_and_remove(emulator) -> None:
    team = emulator.teams()[0]["slug"]
    joined = emulator.add_member("zoe@example.com", name="Zoe", role="admin", teams=[team])
    invited = emulator.add_member("later@example.com", pending=True)
    assert joined["user"]["email"] == "zoe@example.com" and joined["teams"] == [team]
    assert invited["pending"] is True and invited["user"] is None
    with client(emulator) as c:
        emails = [m["email"] for m in all_items(c, f"{ORG}/members/", {"per_page": 3})]
    assert emails[-2:] == ["zoe@example.com", "later@example.com"]
    emulator.remove_member(joined["id"])
    emulator.remove_member("later@example.com")
    emulator.remove_member("ada@example.com")
    with client(emulator) as c:
        emails = [m["email"] for m in all_items(c, f"{ORG}/members/")]
    assert not {"zoe@example.com", "later@example.com", "ada@example.com"} & set(emails)
    assert emails == [m["email"] for m in emulator.members()]
    assert emulator.add_member("new@example.com")["id"] not in {joined["id"], invited["id"]}  # ids never reused
    with pytest.raises(KeyError):
        emulator.remove_member("nobody@example.com")


def test_add_environment(emulator) -> None:
    env = emulator.add_environment("canary")
    emulator.add_environment("sandbox", hidden=True)
    assert env == {"id": env["id"], "name": "canary", "isHidden": False}
    with client(emulator) as c:
        visible = [e["name"] for e in c.get(f"{ORG}/environments/").json()]
        hidden = [e["name"] for e in c.get(f"{ORG}/environments/", params={"visibility": "hidden"}).json()]
    assert "canary" in visible and "sandbox" not in visible and "sandbox" in hidden
    assert [e["name"] for e in emulator.environments("all")][-2:] == ["canary", "sandbox"]


def test_monitors_and_checkins(emulator) -> None:
    monitor = emulator.add_monitor("billing-cron", "backend", interval_minutes=60)
    assert monitor["slug"] == "billing-cron" and monitor["project"]["slug"] == "backend"
    assert emulator.checkins("billing-cron") == []
    added = emulator.add_checkin("billing-cron", status="error")
    assert added["status"] == "error"
    with client(emulator) as c:
        assert "billing-cron" in [m["slug"] for m in all_items(c, f"{ORG}/monitors/")]
        listed = c.get(f"{ORG}/monitors/billing-cron/checkins/").json()
    assert listed == [added] == emulator.checkins("billing-cron")
    emulator.advance(3 * 3600)  # the schedule starts at the next hour
    scheduled = emulator.checkins("billing-cron")
    assert len(scheduled) in (3, 4) and scheduled[-1] == added
    newest = emulator.add_checkin("billing-cron")
    assert emulator.checkins("billing-cron")[0] == newest and newest["status"] == "ok"
    # An added check-in on a generated monitor sorts with its scheduled ones.
    slug = emulator.monitors()[0]["slug"]
    before = len(emulator.checkins(slug))
    fresh = emulator.add_checkin(slug, status="timeout")
    assert emulator.checkins(slug)[0] == fresh and len(emulator.checkins(slug)) == before + 1
    emulator.delete_monitor("billing-cron")
    with client(emulator) as c:
        r = c.get(f"{ORG}/monitors/billing-cron/checkins/")
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    with pytest.raises(ValueError):
        emulator.add_checkin(slug, status="great")


def test_add_feedback_and_key(emulator) -> None:
    issue = emulator.issues("backend")[0]["id"]
    fb = emulator.add_feedback("backend", name="Pat", email="pat@example.org", comments="Slow page", issue_id=issue)
    assert (fb["name"], fb["comments"], fb["issue"]["id"]) == ("Pat", "Slow page", issue)
    key = emulator.add_key("backend", "CI uploads")
    assert key["name"] == "CI uploads" and key["secret"] in key["dsn"]["secret"]
    with client(emulator) as c:
        feedback = c.get("/api/0/projects/acme/backend/user-feedback/").json()
        keys = c.get("/api/0/projects/acme/backend/keys/").json()
    assert feedback[0] == fb and feedback == emulator.feedback("backend")
    assert keys[-1] == key and keys == emulator.keys("backend")
    with pytest.raises(TypeError):
        emulator.add_feedback("backend", mood="sad")


def test_add_commit(emulator) -> None:
    version = emulator.releases()[0]["version"]
    count = emulator.releases()[0]["commitCount"]
    emulator.advance(10)
    commit = emulator.add_commit(version, "fix: the thing", author="grace@example.com")
    assert commit["message"] == "fix: the thing" and commit["author"]["name"] == "Grace Hopper"
    with client(emulator) as c:
        commits = c.get(f"{ORG}/releases/{_q(version)}/commits/").json()
        release = c.get(f"{ORG}/releases/{_q(version)}/").json()
    assert commits[0] == commit and commits == emulator.commits(version)
    assert release["commitCount"] == count + 1 and release["lastCommit"]["id"] == commit["id"]


# ---------------------------------------------------------------------------- paging every list
@pytest.fixture
def paged(make_emulator) -> tuple[Emulator, dict[str, tuple[str, dict, list[str]]]]:
    """An emulator whose lists all need several small pages; name -> (path, params, expected ids)."""
    emu = make_emulator(teams=7, members=9, monitors=5, days=2, events_per_project=200, issues_per_project=10)
    for n in range(5):
        emu.add_key("backend", f"key {n}")
        emu.add_feedback("backend", comments=f"feedback {n}")
        emu.add_checkin("hourly-sync", status="ok")
    version = emu.releases()[0]["version"]
    for n in range(6):
        emu.advance(60)
        emu.add_deploy(version, ("production", "staging")[n % 2])
        emu.add_commit(version, f"commit {n}")
    issue = max(emu.issues(), key=lambda i: int(i["count"]))
    events = emu.issue_events(issue["id"])
    assert len(events) >= 12
    lo, hi = events[-3]["dateCreated"], events[2]["dateCreated"]  # a window strictly inside
    start = datetime.fromisoformat(lo.replace("Z", "+00:00")).replace(microsecond=0) + timedelta(seconds=1)
    end = datetime.fromisoformat(hi.replace("Z", "+00:00")).replace(microsecond=0)
    in_range = [e["id"] for e in events
                if start <= datetime.fromisoformat(e["dateCreated"].replace("Z", "+00:00")) < end]
    iso = "%Y-%m-%dT%H:%M:%S"
    cases = {
        "teams": (f"{ORG}/teams/", {}, [t["id"] for t in emu.teams()]),
        "members": (f"{ORG}/members/", {}, [m["id"] for m in emu.members()]),
        "keys": ("/api/0/projects/acme/backend/keys/", {}, [k["id"] for k in emu.keys("backend")]),
        "user-feedback": ("/api/0/projects/acme/backend/user-feedback/", {},
                          [f["id"] for f in emu.feedback("backend")]),
        "monitors": (f"{ORG}/monitors/", {}, [m["id"] for m in emu.monitors()]),
        "checkins": (f"{ORG}/monitors/hourly-sync/checkins/", {}, [x["id"] for x in emu.checkins("hourly-sync")]),
        "deploys": (f"{ORG}/releases/{_q(version)}/deploys/", {}, [d["id"] for d in emu.deploys(version)]),
        "commits": (f"{ORG}/releases/{_q(version)}/commits/", {}, [x["id"] for x in emu.commits(version)]),
        "issue-events": (f"{ORG}/issues/{issue['id']}/events/",
                         {"full": "true", "start": start.strftime(iso), "end": end.strftime(iso)}, in_range),
        "detectors": (f"{ORG}/detectors/", {}, [d["id"] for d in emu.detectors()]),
        "workflows": (f"{ORG}/workflows/", {}, [w["id"] for w in emu.workflows()]),
    }
    return emu, cases


PAGED = ["teams", "members", "keys", "user-feedback", "monitors", "checkins", "deploys", "commits",
         "issue-events", "detectors", "workflows"]


@pytest.mark.parametrize("name", PAGED)
def test_walking_every_list_returns_each_item_once(paged, name: str) -> None:
    emu, cases = paged
    path, params, expected = cases[name]
    per_page = 1 if name == "workflows" else (5 if name in ("checkins", "issue-events") else 2)
    with client(emu) as c:
        pages = list(walk(c, path, {**params, "per_page": per_page}))
        assert c.get(path, params={**params, "per_page": 101}).status_code == 400
        assert c.get(path, params={**params, "per_page": 100}).status_code == 200
    ids = [x["id"] for p in pages for x in p.json()]
    assert len(pages) >= 2, f"{name}: {len(expected)} items fit in one page"
    assert ids == expected and len(set(ids)) == len(ids)
    assert len(pages) == -(-len(ids) // per_page)
    assert links(pages[0])["previous"][1] is False and links(pages[-1])["next"][1] is False
    if name in ("detectors", "workflows"):
        assert pages[0].headers["X-Hits"] == str(len(expected))
    if name == "issue-events":
        assert "entries" in pages[0].json()[0]  # full=true


def test_constructor_knobs_size_the_lists(make_emulator) -> None:
    emu = make_emulator(teams=7, members=9, monitors=5)
    assert len(emu.teams()) == 7 and len(emu.monitors()) == 5
    assert len(emu.members()) == 10  # 9 members + the pending invite
    assert len({m["email"] for m in emu.members()}) == 10 and len({t["slug"] for t in emu.teams()}) == 7


def test_environments_are_one_unpaged_list(emulator) -> None:
    for n in range(150):
        emulator.add_environment(f"env-{n}")
    with client(emulator) as c:
        r = c.get(f"{ORG}/environments/", params={"per_page": 2})
    assert r.status_code == 200 and "Link" not in r.headers
    assert len(r.json()) == len(emulator.environments()) > 100


# ---------------------------------------------------------------------------- scopes
# (path template, the scope "strict" rules need, the scopes Sentry accepts per its OpenAPI)
SCOPED = [
    ("{org}/teams/", "team:read", ["org:read", "org:write", "org:admin"]),
    ("{org}/members/", "member:read", ["member:read", "member:write", "member:admin"]),
    ("/api/0/projects/acme/backend/keys/", "project:read", ["project:read", "project:write", "project:admin"]),
    ("{org}/environments/", "org:read", ["org:read", "org:write", "org:admin"]),
    ("{org}/monitors/", "alerts:read", ["alerts:read", "org:read", "org:write", "org:admin"]),
    ("{org}/monitors/{monitor}/checkins/", "alerts:read",
     ["alerts:read", "alerts:write", "project:read", "project:write", "project:admin"]),
    ("{org}/detectors/", "alerts:read", ["alerts:read", "org:read", "org:write", "org:admin"]),
    ("{org}/workflows/", "alerts:read", ["alerts:read", "org:read", "org:write", "org:admin"]),
    ("{org}/releases/{version}/deploys/", "project:releases",
     ["project:releases", "project:read", "project:write", "project:admin", "org:ci"]),
    ("{org}/releases/{version}/commits/", "project:releases",
     ["project:releases", "project:read", "project:write", "project:admin", "org:ci"]),
    ("{org}/issues/{issue}/events/", "event:read", ["event:read", "event:write", "event:admin"]),
    ("/api/0/projects/acme/backend/user-feedback/", "event:read", ["project:read"]),
    ("{org}/stats_v2/?field=sum(quantity)&groupBy=outcome&statsPeriod=1d", "org:read",
     ["org:read", "org:write", "org:admin"]),
    ("/api/0/teams/acme/{team}/", "team:read", ["team:read", "team:write", "team:admin"]),
    ("{org}/members/{member}/", "member:read", ["member:read", "member:write", "member:admin"]),
    ("{org}/monitors/{monitor}/", "alerts:read",
     ["alerts:read", "alerts:write", "project:read", "project:write", "project:admin"]),
    ("{org}/detectors/{detector}/", "alerts:read", ["alerts:read", "org:read", "org:write", "org:admin"]),
    ("{org}/workflows/{workflow}/", "alerts:read", ["alerts:read", "org:read", "org:write", "org:admin"]),
]


def _scoped_path(emu: Emulator, template: str) -> str:
    return (template.replace("{org}", ORG).replace("{monitor}", emu.monitors()[0]["slug"])
            .replace("{version}", _q(emu.releases()[0]["version"])).replace("{issue}", emu.issues()[0]["id"])
            .replace("{team}", emu.teams()[0]["slug"]).replace("{member}", emu.members()[0]["id"])
            .replace("{detector}", emu.detectors()[0]["id"]).replace("{workflow}", emu.workflows()[0]["id"]))


@pytest.mark.parametrize("template,scope,accepted", SCOPED, ids=[t for t, _, _ in SCOPED])
def test_strict_scopes_per_endpoint(make_emulator, template: str, scope: str, accepted: list[str]) -> None:
    emulator = make_emulator(scope_rules="strict")
    path = _scoped_path(emulator, template)
    others = [s for s in ALL_READ_SCOPES if s != scope]
    with client(emulator, token=emulator.create_token(scopes=others)) as c:
        r = c.get(path)
        assert (r.status_code, r.json()) == (403, FORBIDDEN)
    with client(emulator, token=emulator.create_token(scopes=[scope])) as c:
        assert c.get(path).status_code == 200


@pytest.mark.parametrize("template,scope,accepted", SCOPED, ids=[t for t, _, _ in SCOPED])
def test_sentry_scope_rules_accept_any_listed_scope(make_emulator, template: str, scope: str,
                                                    accepted: list[str]) -> None:
    emu = make_emulator(scope_rules="sentry")
    path = _scoped_path(emu, template)
    lacking = [s for s in ALL_READ_SCOPES if s not in accepted]
    with client(emu, token=emu.create_token(scopes=lacking)) as c:
        r = c.get(path)
        assert (r.status_code, r.json()) == (403, FORBIDDEN)
    for one in accepted:
        with client(emu, token=emu.create_token(scopes=[one])) as c:
            assert c.get(path).status_code == 200, one


def test_unknown_scope_rules_are_refused() -> None:
    with pytest.raises(ValueError):
        Emulator(scope_rules="loose")


# ---------------------------------------------------------------------------- stats_v2
def _stats(emu: Emulator, **params) -> dict:
    base = {"field": "sum(quantity)", "groupBy": ["outcome", "category"], "interval": "1d"}
    with client(emu) as c:
        r = c.get(f"{ORG}/stats_v2/", params={**base, **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_stats_v2_shape_and_consistency_with_events(make_emulator) -> None:
    emu = make_emulator(start_time=PINNED)
    body = _stats(emu, statsPeriod="90d", groupBy=["outcome", "category", "project"])
    assert set(body) == {"start", "end", "intervals", "groups"}
    assert body["start"] == body["intervals"][0] and body["start"].endswith("T00:00:00Z")
    assert len(body["intervals"]) in (90, 91)
    for g in body["groups"]:
        assert set(g) == {"by", "totals", "series"} and set(g["by"]) == {"outcome", "category", "project"}
        assert len(g["series"]["sum(quantity)"]) == len(body["intervals"])
        assert g["totals"]["sum(quantity)"] == sum(g["series"]["sum(quantity)"]) > 0
    accepted = {g["by"]["project"]: g["totals"]["sum(quantity)"] for g in body["groups"]
                if g["by"]["outcome"] == "accepted" and g["by"]["category"] == "error"}
    assert accepted == {int(p["id"]): emu.event_count(p["slug"]) for p in emu.projects()}
    outcomes = {(g["by"]["outcome"], g["by"]["category"]) for g in body["groups"]}
    assert {("accepted", "error"), ("filtered", "error"), ("accepted", "transaction")} <= outcomes
    emu.add_events("backend", 4)
    after = _stats(emu, statsPeriod="90d", groupBy=["outcome", "category"])
    before_total = sum(accepted.values())
    [acc] = [g for g in after["groups"] if g["by"] == {"outcome": "accepted", "category": "error"}]
    assert acc["totals"]["sum(quantity)"] == before_total + 4


def test_stats_v2_is_deterministic_and_interval_independent(make_emulator) -> None:
    a, b = make_emulator(start_time=PINNED), make_emulator(start_time=PINNED)
    window = {"start": "2025-05-20T00:00:00", "end": "2025-05-30T00:00:00"}
    daily, hourly = _stats(a, **window), _stats(a, **window, interval="1h")
    assert daily == _stats(b, **window)
    assert len(daily["intervals"]) == 10 and len(hourly["intervals"]) == 240
    assert ({tuple(g["by"].items()): g["totals"] for g in daily["groups"]}
            == {tuple(g["by"].items()): g["totals"] for g in hourly["groups"]})
    errors_only = _stats(a, **window, category="error", field="sum(times_seen)")
    assert {g["by"]["category"] for g in errors_only["groups"]} == {"error"}
    assert all("sum(times_seen)" in g["totals"] for g in errors_only["groups"])


@pytest.mark.parametrize("params,detail", [
    ({"groupBy": "outcome", "statsPeriod": "1d"}, 'At least one "field" is required.'),
    ({"field": "count()", "groupBy": "outcome", "statsPeriod": "1d"}, 'Invalid field: "count()"'),
    ({"field": "sum(quantity)", "groupBy": "outcome", "statsPeriod": "1d", "interval": "30m"},
     "The interval has to be at least one hour"),
    ({"field": "sum(quantity)", "groupBy": "outcome", "statsPeriod": "1d", "interval": "2d"},
     "The interval has to be less than one day."),
    ({"field": "sum(quantity)", "groupBy": "outcome", "statsPeriod": "1d", "interval": "5h"},
     "The interval should divide one day without a remainder."),
    ({"field": "sum(quantity)", "groupBy": "nope", "statsPeriod": "1d"}, 'Invalid groupBy: "nope"'),
])
def test_stats_v2_bad_parameters_are_400(emulator, params: dict, detail: str) -> None:
    with client(emulator) as c:
        r = c.get(f"{ORG}/stats_v2/", params=params)
    assert (r.status_code, r.json()) == (400, {"detail": detail})


def test_admin_paths_for_org_mutations(make_emulator) -> None:
    import httpx

    emu = make_emulator(admin=True)
    base = emu.base_url + "/_emulator"

    def post(path: str, body: dict | None = None) -> dict:
        r = httpx.post(base + path, json=body or {})
        assert r.status_code in (200, 201), (path, r.text)
        return r.json()

    assert post("/teams", {"slug": "ops"})["slug"] == "ops"
    member = post("/members", {"email": "ops@example.com", "teams": ["ops"]})
    post("/environments", {"name": "canary"})
    post("/monitors", {"slug": "ops-cron", "project": "mobile"})
    assert post("/monitors/ops-cron/checkins", {"status": "error"})["status"] == "error"
    assert post("/projects/backend/feedback", {"comments": "hi"})["comments"] == "hi"
    assert post("/projects/backend/keys", {"name": "ops"})["name"] == "ops"
    version = emu.releases()[0]["version"]
    assert post(f"/releases/{_q(version)}/commits", {"message": "m"})["message"] == "m"
    assert [x["status"] for x in emu.checkins("ops-cron")] == ["error"]
    post(f"/members/{member['id']}/delete")
    post("/teams/ops/delete")
    post("/monitors/ops-cron/delete")
    post(f"/releases/{_q(version)}/delete")
    post("/projects/mobile/delete")
    assert "ops" not in [t["slug"] for t in emu.teams()] and emu.project_slugs == ["backend", "frontend"]
    assert version not in [r["version"] for r in emu.releases()]
    assert "ops@example.com" not in [m["email"] for m in emu.members()]


# ---------------------------------------------------------------------------- project membership
def _projects_served(emu: Emulator, token: str, params: dict) -> dict[str, set[str]]:
    """Per organization list, the project ids (environments: names) its answer to ``params`` holds."""
    with client(emu, token=token) as c:
        stats = c.get(f"{ORG}/stats_v2/", params={"field": "sum(quantity)", "groupBy": "project", **params}).json()
        return {
            "issues": {str(i["project"]["id"]) for i in all_items(c, f"{ORG}/issues/", {"query": "", **params})},
            "monitors": {str(m["project"]["id"]) for m in all_items(c, f"{ORG}/monitors/", params)},
            "detectors": {str(d["projectId"]) for d in all_items(c, f"{ORG}/detectors/", params)},
            "stats_v2": {str(g["by"]["project"]) for g in stats["groups"]},
            "releases": {str(p["id"]) for r in all_items(c, f"{ORG}/releases/", params) for p in r["projects"]},
            "environments": {e["name"] for e in c.get(f"{ORG}/environments/", params=params).json()},
        }


def test_organization_lists_without_project_serve_only_the_users_teams_projects(make_emulator) -> None:
    """Sentry's get_projects: no `project` = the projects of the user's teams, -1 = every project
    the token can access, ids = those; releases take every accessible one (include_all_accessible)."""
    emu = make_emulator(token_teams=["platform", "web"], admin=True)  # backend, frontend; not mobile
    ids = {p["slug"]: str(p["id"]) for p in emu.projects()}
    every, members = set(ids.values()), {ids["backend"], ids["frontend"]}
    emu.add_environment("mobile-beta", projects=["mobile"])
    envs = {e["name"] for e in emu.environments()}
    with client(emu) as c:  # the admin route's knob: a user of no team
        no_team = c.post("/_emulator/tokens", json={"teams": []}).json()["token"]
    all_member = emu.create_token()  # teams=None: a member of every project
    org = make_emulator(token="sntrys_" + "cd" * 32)  # an organization token: no member behind it
    org_every = {str(p["id"]) for p in org.projects()}

    def lists(value: set[str], environments: set[str], releases: set[str]) -> dict[str, set[str]]:
        return {**dict.fromkeys(("issues", "monitors", "detectors", "stats_v2"), value),
                "releases": releases, "environments": environments}

    assert _projects_served(emu, emu.token, {}) == lists(members, envs - {"mobile-beta"}, every)
    assert _projects_served(emu, emu.token, {"project": "-1"}) == lists(every, envs, every)
    mobile = _projects_served(emu, emu.token, {"project": ids["mobile"]})
    mobile.pop("releases")  # a release lists all its projects, not only the one asked for
    assert mobile == {k: v for k, v in lists({ids["mobile"]}, envs, set()).items() if k != "releases"}
    assert _projects_served(emu, all_member, {}) == _projects_served(emu, all_member, {"project": "-1"})
    assert _projects_served(emu, no_team, {}) == lists(set(), set(), every)
    assert _projects_served(emu, no_team, {"project": "-1"}) == lists(every, envs, every)
    # Sentry's access of an organization token has no member, so no team membership: nothing
    # without project=, everything with -1.
    assert _projects_served(org, org.token, {}) == lists(set(), set(), org_every)
    assert _projects_served(org, org.token, {"project": "-1"})["issues"] == org_every
    # Asked by id, a project outside a restricted token is still 403.
    with client(emu, token=emu.create_token(projects=["backend"])) as c:
        assert c.get(f"{ORG}/issues/", params={"project": ids["mobile"]}).status_code == 403


def test_token_teams_from_the_command_line() -> None:
    from sentry_emulator.cli import build_parser

    args = build_parser().parse_args(["--token-teams", "platform,web"])
    assert args.token_teams == "platform,web"
