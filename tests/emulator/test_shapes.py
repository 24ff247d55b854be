"""Untidy shapes as real organizations send them: mixed timestamp precisions, long ids, issues
and events beyond exceptions, lifetime counts of any size, filled releases."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from emu_helpers import all_items, client, nullable

from sentry_emulator import Emulator

WHOLE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "sentry-api" / "openapi-200.json"
EVENT_DETAIL = "/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}/events/{event_id}/"


@pytest.fixture(scope="module")
def org() -> Emulator:
    """Enough issues for every kind (frontend is a browser project: CSP reports too)."""
    emu = Emulator(seed=3, projects=3, events_per_project=1500, issues_per_project=150, releases=20).start()
    yield emu
    emu.stop()


def _precisions(values: list[str | None]) -> Counter[str]:
    return Counter("whole" if WHOLE.match(v) else "micro" if MICRO.match(v) else f"other {v}" for v in values if v)


def _issues_by_category(emu: Emulator) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for issue in emu.issues():
        out.setdefault(issue["issueCategory"], []).append(issue)
    return out


def test_event_timestamps_have_each_endpoints_precision(org) -> None:
    with client(org) as c:
        plain = all_items(c, "/api/0/projects/acme/backend/events/")
    full = org.events("backend")
    assert set(_precisions([e["dateCreated"] for e in plain])) == {"whole"}  # snuba: seconds
    created = _precisions([e["dateCreated"] for e in full])
    assert set(created) == {"whole", "micro"} and created["micro"] > 4 * created["whole"]  # some SDKs send whole seconds
    assert set(_precisions([e["dateReceived"] for e in full])) == {"micro"}
    assert [e["dateCreated"][:19] for e in full] == [e["dateCreated"][:19] for e in plain]


def test_issue_release_deploy_commit_and_checkin_precisions(org) -> None:
    issues = org.issues()
    assert set(_precisions([i["firstSeen"] for i in issues] + [i["lastSeen"] for i in issues])) == {"whole", "micro"}
    releases = org.releases()
    assert set(_precisions([r["dateCreated"] for r in releases])) == {"micro"}
    assert set(_precisions([r["dateReleased"] for r in releases])) == {"whole", "micro"}
    assert set(_precisions([r["firstEvent"] for r in releases] + [r["lastEvent"] for r in releases])) == {"whole"}
    deploys = [d for r in releases for d in org.deploys(r["version"])]
    assert set(_precisions([d["dateFinished"] for d in deploys])) == {"whole", "micro"}
    commits = [c for r in releases for c in org.commits(r["version"])]
    assert set(_precisions([c["dateCreated"] for c in commits])) == {"whole"}
    checkins = org.checkins(org.monitors()[0]["slug"])
    assert set(_precisions([c["expectedTime"] for c in checkins])) == {"whole"}
    assert set(_precisions([c["dateCreated"] for c in checkins])) == {"micro"}


def test_ids_have_sentry_ios_lengths(org) -> None:
    assert all(re.fullmatch(r"45\d{14}", p["id"]) for p in org.projects())
    assert len({p["id"] for p in org.projects()}) == 3
    assert all(isinstance(r["id"], int) and 9 <= len(str(r["id"])) <= 10 for r in org.releases())
    assert all(re.fullmatch(r"[1-9]\d{9}", i["id"]) for i in org.issues())
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["id"]) for e in org.events("frontend"))
    other = Emulator(seed=4, projects=1, events_per_project=10, issues_per_project=2, releases=2)
    assert other.projects()[0]["id"] != org.projects()[0]["id"]  # ids depend on the seed


def test_issue_categories_types_and_metadata(org) -> None:
    by_category = _issues_by_category(org)
    assert set(by_category) == {"error", "performance", "cron", "feedback", "uptime"}
    kinds = Counter((i["issueCategory"], i["type"]) for i in org.issues())
    assert {("error", "error"), ("error", "default"), ("error", "csp")} <= set(kinds)
    assert kinds[("error", "error")] > 0.6 * len(org.issues())
    for issue in by_category["error"]:
        assert issue["issueType"] == "error"
        if issue["type"] == "error":
            assert issue["title"] == f"{issue['metadata']['type']}: {issue['metadata']['value']}"
        elif issue["type"] == "default":
            assert issue["metadata"]["title"] == issue["title"]
        else:
            assert issue["title"] == issue["metadata"]["message"] and issue["culprit"] == issue["metadata"]["directive"]
            assert issue["project"]["slug"] == "frontend"
    for issue in by_category["performance"]:
        assert issue["type"] == "transaction" and issue["issueType"].startswith("performance_")
        assert issue["metadata"]["title"] == issue["title"] and issue["culprit"] == issue["metadata"]["location"]
    monitors = {m["name"] for m in org.monitors()}
    for issue in by_category["cron"]:
        assert (issue["type"], issue["issueType"]) == ("generic", "monitor_check_in_failure")
        assert issue["title"].removeprefix("Cron failure: ") in monitors
    for issue in by_category["feedback"]:
        assert (issue["type"], issue["issueType"], issue["title"]) == ("feedback", "feedback", "User Feedback")
        assert issue["metadata"]["contact_email"].endswith("@example.com")
    for issue in by_category["uptime"]:
        assert (issue["type"], issue["issueType"]) == ("generic", "uptime_domain_failure")
        assert issue["title"].startswith("Downtime detected for https://")


def test_issue_platform_events_are_listed_by_their_issue_only(org) -> None:
    schema = json.loads(SCHEMAS.read_text())["paths"][EVENT_DETAIL]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"]["properties"]["occurrence"]
    occurrence_schema = nullable({k: v for k, v in schema.items() if k != "nullable"})
    project_events = {e["id"] for slug in org.project_slugs for e in org.events(slug)}
    categories = {i["id"]: i["issueCategory"] for i in org.issues()}
    assert {categories[e["groupID"]] for slug in org.project_slugs for e in org.events(slug)} == {"error"}
    for category, issues in _issues_by_category(org).items():
        for issue in issues[:3]:
            events = org.issue_events(issue["id"])
            assert events and len(events) <= int(issue["count"])
            if category == "error":
                assert {e["id"] for e in events} <= project_events
                assert all(e["occurrence"] is None for e in events)
                continue
            assert not {e["id"] for e in events} & project_events
            for event in events[:5]:
                jsonschema.validate(event["occurrence"], occurrence_schema)
                assert event["occurrence"]["issueTitle"] == issue["title"]
                assert event["occurrence"]["eventId"] == event["id"]
                assert event["event.type"] == issue["type"]


def test_message_and_csp_events_carry_their_entries(org) -> None:
    issues = org.issues()
    default = next(i for i in issues if i["type"] == "default")
    csp = next(i for i in issues if i["type"] == "csp")
    [message] = [e for e in org.issue_events(default["id"])[0]["entries"] if e["type"] == "message"]
    assert message["data"]["formatted"] == default["title"]
    event = org.issue_events(csp["id"])[0]
    assert event["event.type"] == "csp" and event["message"] == csp["title"]
    entries = {e["type"]: e["data"] for e in event["entries"]}
    assert set(entries) == {"csp", "request"}
    assert entries["csp"]["effective_directive"] == csp["metadata"]["directive"]
    assert entries["request"]["url"].startswith("https://")


def test_contexts_and_user_geo_vary(org) -> None:
    events = [e for slug in org.project_slugs for e in org.events(slug)]
    contexts = Counter(k for e in events for k in e["contexts"])
    assert {"runtime", "culture", "cloud_resource", "trace", "os", "browser"} <= set(contexts)
    assert contexts["culture"] < len(events) and contexts["cloud_resource"] < len(events)
    geo = [e["user"]["geo"] for e in events]
    assert 0.2 < sum(g is not None for g in geo) / len(geo) < 0.6
    assert all(set(g) == {"country_code", "city", "region"} for g in geo if g)
    backend = org.events("backend")[0]
    assert backend["contexts"]["runtime"]["name"] == "CPython"


def test_issue_counts_are_strings_of_any_length(org) -> None:
    issues = org.issues()
    lengths = {len(i["count"]) for i in issues}
    assert {1, 2} <= lengths and max(lengths) >= 6, sorted(lengths)
    oldest_event = min(e["dateCreated"] for slug in org.project_slugs for e in org.events(slug))
    historic = [i for i in issues if i["firstSeen"] < oldest_event]
    assert historic and all(len(i["count"]) >= 2 for i in historic)  # noisy before the window
    for issue in issues:
        assert int(issue["count"]) >= len(org.issue_events(issue["id"]))
        assert issue["lifetime"]["count"] == issue["count"]


def test_release_first_and_last_event_are_its_events(org) -> None:
    """firstEvent/lastEvent: the first and last error event carrying the release, seconds."""
    carried: dict[str, list[str]] = {}
    for slug in org.project_slugs:
        for event in org.events(slug):
            if event["release"]:
                carried.setdefault(event["release"]["version"], []).append(event["dateCreated"][:19] + "Z")
    with_events = 0
    for release in org.releases():
        times = carried.get(release["version"])
        if times:
            with_events += 1
            assert (release["firstEvent"], release["lastEvent"]) == (min(times), max(times))
        else:
            assert release["firstEvent"] is release["lastEvent"] is None
    assert with_events >= 10


def test_release_last_event_moves_with_new_events(make_emulator) -> None:
    emu = make_emulator(projects=1, events_per_project=50, issues_per_project=5, releases=3)
    latest = emu.releases()[0]
    emu.advance(60)
    [event_id] = emu.add_events("backend", 1)
    [event] = [e for e in emu.events("backend") if e["id"] == event_id]
    moved = emu.releases()[0]
    assert event["release"]["version"] == latest["version"] == moved["version"]
    assert moved["lastEvent"] == event["dateCreated"][:19] + "Z" > latest["lastEvent"]
    assert moved["firstEvent"] == latest["firstEvent"]


def test_added_events_are_error_events_of_error_issues(make_emulator) -> None:
    emu = make_emulator(projects=1, events_per_project=300, issues_per_project=120)
    ids = set(emu.add_events("backend", 30))
    assert ids <= {e["id"] for e in emu.events("backend")}
    platform_issue = next(i for i in emu.issues() if i["issueCategory"] != "error")
    [added] = emu.add_events("backend", 1, issue_id=platform_issue["id"])
    assert added in {e["id"] for e in emu.issue_events(platform_issue["id"])}
    assert added not in {e["id"] for e in emu.events("backend")}
