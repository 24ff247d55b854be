"""Issue lists: default query, search tokens, sorts, date range, and mutation semantics."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from emu_helpers import all_items, client

ISSUES = "/api/0/organizations/acme/issues/"


def _ids(items: list[dict]) -> set[str]:
    return {i["id"] for i in items}


def test_dataset_has_every_status_and_some_assigned(emulator) -> None:
    issues = emulator.issues()
    assert {i["status"] for i in issues} == {"unresolved", "resolved", "ignored"}
    assert any(i["assignedTo"] for i in issues) and any(not i["assignedTo"] for i in issues)
    assert all(isinstance(i["count"], str) and isinstance(i["userCount"], int) for i in issues)
    assert {i["substatus"] for i in issues if i["status"] == "ignored"} <= {
        "archived_until_escalating", "archived_forever", "archived_until_condition_met"}


def test_default_query_is_unresolved_and_empty_query_is_everything(emulator) -> None:
    with client(emulator) as c:
        default = all_items(c, ISSUES)
        everything = all_items(c, ISSUES, {"query": ""})
    assert {i["status"] for i in default} == {"unresolved"}
    assert _ids(everything) == _ids(emulator.issues())
    assert _ids(default) == _ids(emulator.issues(status="unresolved"))


@pytest.mark.parametrize("query,check", [
    ("is:resolved", lambda i: i["status"] == "resolved"),
    ("is:ignored", lambda i: i["status"] == "ignored"),
    ("is:archived", lambda i: i["status"] == "ignored"),
    ("is:assigned", lambda i: i["assignedTo"] is not None),
    ("is:unassigned", lambda i: i["assignedTo"] is None),
    ("is:unresolved is:unassigned", lambda i: i["status"] == "unresolved" and i["assignedTo"] is None),
    ("is:linked", lambda i: bool(i["annotations"])),
    ("is:unlinked", lambda i: not i["annotations"]),
    ("!is:resolved", lambda i: i["status"] != "resolved"),
])
def test_is_tokens(emulator, query: str, check) -> None:
    with client(emulator) as c:
        got = all_items(c, ISSUES, {"query": query})
    want = [i for i in emulator.issues() if check(i)]
    assert _ids(got) == _ids(want)


def test_for_review(emulator) -> None:
    with client(emulator) as c:
        got = all_items(c, ISSUES, {"query": "is:for_review"})
    assert all(i["status"] == "unresolved" for i in got)


def test_last_seen_and_first_seen_filters(emulator) -> None:
    issues = emulator.issues()
    pivot = sorted(i["lastSeen"] for i in issues)[len(issues) // 2]
    first_pivot = sorted(i["firstSeen"] for i in issues)[len(issues) // 2]
    with client(emulator) as c:
        newer = all_items(c, ISSUES, {"query": f"lastSeen:>{pivot}"})
        at_or_newer = all_items(c, ISSUES, {"query": f"lastSeen:>={pivot}"})
        older = all_items(c, ISSUES, {"query": f"lastSeen:<{pivot}"})
        first_after = all_items(c, ISSUES, {"query": f"firstSeen:>={first_pivot}"})
        last_day = all_items(c, ISSUES, {"query": "lastSeen:-24h"})
    assert _ids(newer) == {i["id"] for i in issues if i["lastSeen"] > pivot}
    assert _ids(at_or_newer) == {i["id"] for i in issues if i["lastSeen"] >= pivot}
    assert _ids(older) == {i["id"] for i in issues if i["lastSeen"] < pivot}
    assert _ids(first_after) == {i["id"] for i in issues if i["firstSeen"] >= first_pivot}
    cutoff = (emulator.now() - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert _ids(last_day) == {i["id"] for i in issues if i["lastSeen"] >= cutoff}


def test_free_text_matches_title(emulator) -> None:
    title = emulator.issues()[0]["title"]
    word = title.split(":")[0]
    with client(emulator) as c:
        got = all_items(c, ISSUES, {"query": word})
    assert got and all(word.lower() in i["title"].lower() or word.lower() in i["culprit"].lower() for i in got)


@pytest.mark.parametrize("sort,field,conv", [
    ("date", "lastSeen", str), ("new", "firstSeen", str), ("freq", "count", int), ("user", "userCount", int),
])
def test_sorts_descending(emulator, sort: str, field: str, conv) -> None:
    with client(emulator) as c:
        got = all_items(c, ISSUES, {"query": "", "sort": sort, "limit": 9})
    values = [conv(i[field]) for i in got]
    assert values == sorted(values, reverse=True)
    assert len(got) == len(emulator.issues())


def test_project_filter_and_environment(emulator) -> None:
    projects = {p["slug"]: p["id"] for p in emulator.projects()}
    with client(emulator) as c:
        got = all_items(c, ISSUES, {"query": "", "project": [projects["backend"], projects["mobile"]]})
        every = all_items(c, ISSUES, {"query": "", "project": "-1"})
        staging = all_items(c, ISSUES, {"query": "", "environment": "staging"})
    assert {i["project"]["slug"] for i in got} == {"backend", "mobile"}
    assert len(every) == len(emulator.issues())
    assert 0 < len(staging) < len(every)


def test_date_range_defaults_to_90_days_and_honours_start_end(make_emulator) -> None:
    emu = make_emulator(days=200, retention_days=365, events_per_project=400)
    now = emu.now()
    with client(emu) as c:
        default = all_items(c, ISSUES, {"query": ""})
        start = (now - timedelta(days=10)).isoformat()
        window = all_items(c, ISSUES, {"query": "", "start": start, "end": now.isoformat()})
        r = c.get(ISSUES, params={"start": start})
    cut90 = (now - timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%S")
    assert default and all(i["lastSeen"] >= cut90 for i in default)
    assert len(default) < len(emu.issues())
    assert all(i["lastSeen"] >= (now - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%S") for i in window)
    assert (r.status_code, r.json()) == (400, {"detail": "start and end are both required"})


def test_status_change_and_assignment_do_not_move_last_seen(emulator) -> None:
    issue = next(i for i in emulator.issues() if i["status"] == "unresolved" and not i["assignedTo"])
    emulator.set_issue_status(issue["id"], "resolved")
    emulator.assign_issue(issue["id"], "grace@example.com")
    with client(emulator) as c:
        after = c.get(f"{ISSUES}{issue['id']}/").json()
        resolved = all_items(c, ISSUES, {"query": f"is:resolved lastSeen:>={issue['lastSeen']}"})
    assert after["status"] == "resolved" and after["lastSeen"] == issue["lastSeen"]
    assert after["assignedTo"]["email"] == "grace@example.com"
    assert issue["id"] in _ids(resolved)


def test_new_occurrence_moves_last_seen_count_and_regresses(emulator) -> None:
    issue = next(i for i in emulator.issues() if i["status"] == "resolved")
    emulator.advance(60)
    ids = emulator.add_events(issue["project"]["slug"], 2, issue_id=issue["id"])
    after = emulator.issue(issue["id"])
    assert int(after["count"]) == int(issue["count"]) + 2
    assert after["lastSeen"] > issue["lastSeen"]
    assert (after["status"], after["substatus"]) == ("unresolved", "regressed")
    with client(emulator) as c:
        top = c.get(ISSUES, params={"query": "", "limit": 1}).json()[0]
        events = c.get(f"{ISSUES}{issue['id']}/events/").json()
    assert top["id"] == issue["id"]
    assert events[0]["id"] in ids and events[0]["groupID"] == issue["id"]


def test_counts_match_the_issue_events(emulator) -> None:
    for issue in emulator.issues()[:8]:
        events = emulator.issue_events(issue["id"])
        assert int(issue["count"]) == len(events)
        assert issue["lastSeen"] == events[0]["dateCreated"]
        assert issue["firstSeen"] == events[-1]["dateCreated"]
        assert issue["userCount"] == len({e["user"]["id"] for e in events})


def test_delete_and_merge(emulator) -> None:
    issues = emulator.issues("backend")
    target, src, gone = issues[0], issues[1], issues[2]
    emulator.merge_issues(target["id"], [src["id"]])
    emulator.delete_issue(gone["id"])
    merged = emulator.issue(target["id"])
    assert int(merged["count"]) == int(target["count"]) + int(src["count"])
    assert merged["firstSeen"] == min(target["firstSeen"], src["firstSeen"])
    with client(emulator) as c:
        assert c.get(f"{ISSUES}{gone['id']}/").status_code == 404
        listed = _ids(all_items(c, ISSUES, {"query": ""}))
        events = all_items(c, "/api/0/projects/acme/backend/events/")
    assert gone["id"] not in listed and src["id"] not in listed and target["id"] in listed
    assert {e["groupID"] for e in events}.isdisjoint({gone["id"], src["id"]})


def test_project_issues_endpoint_is_deprecated_but_works(emulator) -> None:
    with client(emulator) as c:
        r = c.get("/api/0/projects/acme/frontend/issues/", params={"query": ""})
    assert r.status_code == 200 and r.headers["Deprecation"] == "true"
    assert _ids(r.json()) == _ids(emulator.issues("frontend"))


def test_add_issue_keeps_the_given_status(emulator) -> None:
    issue_id = emulator.add_issue("backend", status="resolved", substatus=None, events=3)
    issue = emulator.issue(issue_id)
    assert (issue["status"], issue["count"]) == ("resolved", "3")


def test_add_issue(emulator) -> None:
    issue_id = emulator.add_issue("mobile", title="Custom crash", level="fatal")
    issue = emulator.issue(issue_id)
    assert (issue["title"], issue["level"], issue["count"], issue["status"]) == ("Custom crash", "fatal", "1", "unresolved")
    assert datetime.fromisoformat(issue["lastSeen"].replace("Z", "+00:00")) <= datetime.now(timezone.utc) + timedelta(seconds=5)
