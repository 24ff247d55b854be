"""Determinism, realistic contents, lazy generation at scale."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
from emu_helpers import all_items, client

from sentry_emulator import Emulator

PINNED = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def _snapshot(emu: Emulator) -> tuple:
    return ([e["id"] for e in emu.events("backend")], [(i["id"], i["count"], i["status"]) for i in emu.issues()],
            [r["version"] for r in emu.releases()])


def test_same_seed_same_data_and_pinned_start_same_bytes() -> None:
    a = Emulator(seed=7, start_time=PINNED)
    b = Emulator(seed=7, start_time=PINNED)
    c = Emulator(seed=8, start_time=PINNED)
    assert _snapshot(a) == _snapshot(b)
    assert _snapshot(a) != _snapshot(c)
    assert a.events("frontend")[:20] == b.events("frontend")[:20]
    assert a.token == b.token
    d = Emulator(seed=7)  # unpinned: same ids, times anchored at 00:00 UTC today
    assert _snapshot(d)[0] == _snapshot(a)[0]


def test_start_time_pins_the_clock() -> None:
    emu = Emulator(seed=1, start_time=PINNED)
    assert abs((emu.now() - PINNED).total_seconds()) < 1
    newest = emu.events("backend")[0]["dateCreated"]
    assert newest < "2025-06-01T12:00:00" and newest > "2025-05-31"


def test_projects_teams_members_environments(emulator) -> None:
    with client(emulator) as c:
        projects = all_items(c, "/api/0/organizations/acme/projects/")
        members = all_items(c, "/api/0/organizations/acme/members/")
        teams = all_items(c, "/api/0/organizations/acme/teams/")
        envs = c.get("/api/0/organizations/acme/environments/").json()
        hidden = c.get("/api/0/organizations/acme/environments/", params={"visibility": "hidden"}).json()
        orgs = c.get("/api/0/organizations/").json()
    assert [p["slug"] for p in projects] == ["backend", "frontend", "mobile"]
    assert all(p["id"].isdigit() for p in projects)
    assert any(m["pending"] and m["user"] is None for m in members)
    assert teams and {e["name"] for e in envs} == {"production", "staging", "development"}
    assert [e["name"] for e in hidden] == ["local"]
    assert orgs[0]["links"] == {"organizationUrl": emulator.base_url, "regionUrl": emulator.base_url}


def test_more_projects_get_numbered_slugs(make_emulator) -> None:
    emu = make_emulator(projects=5, events_per_project=10, issues_per_project=3)
    assert emu.project_slugs == ["backend", "frontend", "mobile", "project-4", "project-5"]


def test_releases_deploys_commits(emulator) -> None:
    releases = emulator.releases()
    assert all(isinstance(r["id"], int) for r in releases)
    assert any(r["lastDeploy"] is None for r in releases) and any(r["lastDeploy"] for r in releases)
    version = releases[0]["version"]
    quoted = version.replace("@", "%40")
    with client(emulator) as c:
        assert c.get(f"/api/0/organizations/acme/releases/{quoted}/").json()["version"] == version
        deploys = c.get(f"/api/0/organizations/acme/releases/{quoted}/deploys/").json()
        commits = c.get(f"/api/0/organizations/acme/releases/{quoted}/commits/").json()
    assert deploys == emulator.deploys(version) and commits == emulator.commits(version)
    emulator.advance(60)
    new = emulator.add_deploy(version, "production")
    after = emulator.releases()[0]
    assert after["deployCount"] == len(deploys) + 1 and after["lastDeploy"]["id"] == new["id"]


def test_release_mutations(emulator) -> None:
    version = emulator.add_release("backend@9.9.9", projects=["backend", "mobile"])
    with client(emulator) as c:
        top = c.get("/api/0/organizations/acme/releases/", params={"per_page": 1}).json()[0]
        assert top["version"] == version and top["lastDeploy"] is None
        emulator.update_release(version, status="archived")
        listed = [r["version"] for r in all_items(c, "/api/0/organizations/acme/releases/")]
        archived = [r["version"] for r in all_items(c, "/api/0/organizations/acme/releases/",
                                                    {"status": "archived"})]
    assert version not in listed and archived == [version]


def test_project_mutations(emulator) -> None:
    emulator.add_project("payments")
    emulator.update_project("backend", name="Backend API")
    with client(emulator) as c:
        projects = {p["slug"]: p for p in c.get("/api/0/organizations/acme/projects/").json()}
        assert c.get("/api/0/projects/acme/payments/events/").json() == []
    assert projects["backend"]["name"] == "Backend API" and "payments" in projects


def test_keys_feedback_monitors_checkins(emulator) -> None:
    with client(emulator) as c:
        keys = c.get("/api/0/projects/acme/backend/keys/").json()
        feedback = c.get("/api/0/projects/acme/backend/user-feedback/").json()
        monitors = c.get("/api/0/organizations/acme/monitors/").json()
        checkins = all_items(c, f"/api/0/organizations/acme/monitors/{monitors[0]['slug']}/checkins/")
    assert keys[0]["dsn"]["secret"].count(":") >= 2 and keys[0]["secret"]
    assert feedback and all(f["eventID"] for f in feedback)
    assert len(checkins) == len(emulator.checkins(monitors[0]["slug"]))
    dates = [x["dateClock"] for x in checkins]
    assert dates == sorted(dates, reverse=True)
    emulator.advance(2 * 86400)
    assert len(emulator.checkins(monitors[0]["slug"])) > len(checkins)


def test_stats_v2_counts_events(emulator) -> None:
    with client(emulator) as c:
        body = c.get("/api/0/organizations/acme/stats_v2/", params={
            "field": "sum(quantity)", "groupBy": ["outcome", "category"], "statsPeriod": "90d",
            "interval": "1d"}).json()
    [accepted] = [g for g in body["groups"] if g["by"] == {"outcome": "accepted", "category": "error"}]
    total = accepted["totals"]["sum(quantity)"]
    assert total == sum(len(emulator.events(p)) for p in emulator.project_slugs)


def _status_mb(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    assert match is not None
    return int(match.group(1)) >> 10


@contextmanager
def _peak_memory_growth() -> Iterator[list[int]]:
    """The peak resident memory (MB) this block added to the process, in the list it yields.

    Linux: the peak (VmHWM) is reset first (clear_refs 5), so it measures this block alone.
    """
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_mb("VmRSS")
    growth: list[int] = []
    yield growth
    growth.append(_status_mb("VmHWM") - before)


# Lazy generation is what makes a large emulator start fast and serve any page at once: told by
# memory, not time (an emulator that built its events would hold them: 1-2 kB each).
LINUX_ONLY = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")


@LINUX_ONLY
def test_200k_events_are_generated_lazily_and_any_page_is_served(make_emulator) -> None:
    with _peak_memory_growth() as growth:
        emu = make_emulator(projects=1, events_per_project=200_000, issues_per_project=40)
        total = emu.event_count("backend")
        with client(emu) as c:
            page = c.get("/api/0/projects/acme/backend/events/", params={"cursor": f"0:{total - 7}:0", "full": "1"})
    assert len(page.json()) == 7  # the last page: the 7 oldest (full pages hold 10 at most)
    assert growth[0] < 64, f"{growth[0]} MB for 200,000 events"


@pytest.mark.slow
@LINUX_ONLY
def test_million_events_lazy(make_emulator) -> None:
    with _peak_memory_growth() as growth:
        emu = make_emulator(projects=3, events_per_project=1_000_000, issues_per_project=100)
        total = emu.event_count("mobile")
        with client(emu) as c:
            r = c.get("/api/0/projects/acme/mobile/events/", params={"cursor": f"0:{total - 7}:0", "full": "true"})
    assert growth[0] < 200, f"{growth[0]} MB for 3,000,000 events"
    assert r.status_code == 200 and len(r.json()) == 7  # the last page (full pages hold 10 at most)
    with client(emu) as c:
        issues = all_items(c, "/api/0/organizations/acme/issues/", {"query": ""})
    # Every issue is listed; counts include occurrences whose events expired long ago (times_seen).
    assert len(issues) == 3 * 100
    assert sum(int(i["count"]) for i in issues) >= sum(emu.event_count(p) for p in emu.project_slugs)
