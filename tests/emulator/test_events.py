"""Project events: date filters, full shape, late arrivals, retention, mutations."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from emu_helpers import all_items, client

EVENTS = "/api/0/projects/acme/backend/events/"
FULL_KEYS = {"entries", "contexts", "dateReceived", "sdk", "release", "errors", "size", "packages", "_meta"}


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_list_shape_and_order(emulator) -> None:
    with client(emulator) as c:
        events = all_items(c, EVENTS)
    assert events and not FULL_KEYS & set(events[0])
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["id"]) and e["eventID"] == e["id"] for e in events)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["dateCreated"]) for e in events)
    dates = [e["dateCreated"] for e in events]
    assert dates == sorted(dates, reverse=True)
    issue_ids = {i["id"] for i in emulator.issues("backend")}
    project_id = next(p["id"] for p in emulator.projects() if p["slug"] == "backend")
    assert all(e["groupID"] in issue_ids and e["projectID"] == project_id for e in events)


def test_full_adds_payload_fields(emulator) -> None:
    with client(emulator) as c:
        full = c.get(EVENTS, params={"full": "true", "per_page": 5}).json()
    assert set(full[0]) >= FULL_KEYS
    assert _dt(full[0]["dateReceived"]) >= _dt(full[0]["dateCreated"])
    assert full == emulator.events("backend")[:5]


def test_start_end_filter_is_half_open(emulator) -> None:
    events = emulator.events("backend")
    newest, oldest = _dt(events[5]["dateCreated"]), _dt(events[-5]["dateCreated"])
    start = oldest.replace(microsecond=0)
    end = newest.replace(microsecond=0)
    with client(emulator) as c:
        got = all_items(c, EVENTS, {"start": start.isoformat(), "end": end.isoformat()})
    want = [e["id"] for e in events
            if start <= _dt(e["dateCreated"]).replace(microsecond=0) < end]
    assert [e["id"] for e in got] == want


def test_stats_period(emulator) -> None:
    with client(emulator) as c:
        got = all_items(c, EVENTS, {"statsPeriod": "24h", "full": "1"})
    cutoff = emulator.now() - timedelta(hours=24)
    want = [e["id"] for e in emulator.events("backend") if _dt(e["dateCreated"]) >= cutoff - timedelta(seconds=1)]
    assert 0 < len(got) < len(emulator.events("backend"))
    assert abs(len(got) - len(want)) <= 1


@pytest.mark.parametrize("params", [{"start": "2024-01-01T00:00:00Z"}, {"end": "2024-01-01T00:00:00Z"}])
def test_start_without_end_is_400(emulator, params) -> None:
    with client(emulator) as c:
        r = c.get(EVENTS, params=params)
    assert (r.status_code, r.json()) == (400, {"detail": "start and end are both required"})


def test_late_events_are_invisible_until_received(make_emulator) -> None:
    # 600 events in the last 20 minutes: some were created but not yet received at start.
    emu = make_emulator(projects=1, events_per_project=600, days=20 / 1440)
    before = {e["id"] for e in emu.events("backend")}
    assert len(before) < 600
    emu.advance(601)
    after = emu.events("backend")
    assert len(after) == 600 and before < {e["id"] for e in after}
    arrived = [e for e in after if e["id"] not in before]
    assert any(_dt(e["dateReceived"]) - _dt(e["dateCreated"]) > timedelta(seconds=5) for e in arrived)


def test_add_events_late_by(emulator) -> None:
    emulator.advance(30)
    ids = emulator.add_events("backend", 3, late_by_seconds=3600)
    with client(emulator) as c:
        window = all_items(c, EVENTS, {"statsPeriod": "2h", "full": "true"})
    late = [e for e in window if e["id"] in ids]
    assert len(late) == 3
    for e in late:
        assert _dt(e["dateReceived"]) - _dt(e["dateCreated"]) == timedelta(seconds=3600)
    now_ids = emulator.add_events("backend", 1)
    assert emulator.events("backend")[0]["id"] == now_ids[0]


def test_retention_cuts_old_events(make_emulator) -> None:
    emu = make_emulator(projects=1, events_per_project=400, days=120, retention_days=90)
    cutoff = emu.now() - timedelta(days=90)
    with client(emu) as c:
        events = all_items(c, EVENTS, {"start": (emu.now() - timedelta(days=120)).isoformat(),
                                       "end": emu.now().isoformat()})
        assert all(_dt(e["dateCreated"]) >= cutoff - timedelta(seconds=1) for e in events)
        assert 250 < len(events) < 330
        emu.advance(10 * 86400)
        fewer = all_items(c, EVENTS)
    assert len(fewer) < len(events)


def test_issue_events_endpoint(emulator) -> None:
    issue = emulator.issues("frontend")[0]
    with client(emulator) as c:
        events = all_items(c, f"/api/0/organizations/acme/issues/{issue['id']}/events/", {"per_page": 5})
    assert events and {e["groupID"] for e in events} == {issue["id"]}
    assert len(events) == int(issue["count"])
