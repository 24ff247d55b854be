"""Release health (sessions/), Explore (organization events/), replays/ and deprecations."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from emu_helpers import client, links

from sentry_emulator import Emulator

SESSIONS = "/api/0/organizations/acme/sessions/"
EXPLORE = "/api/0/organizations/acme/events/"
REPLAYS = "/api/0/organizations/acme/replays/"
ALL_FOUR = ["project", "release", "environment", "session.status"]
BOTH = ["sum(session)", "count_unique(user)"]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _midnight(emu: Emulator) -> datetime:
    return emu.now().replace(hour=0, minute=0, second=0, microsecond=0)


def _just_after_the_hour() -> datetime:
    """Late sessions arrive on whole hours: an emulator started here sees none arrive for an hour."""
    return datetime.now(timezone.utc).replace(minute=0, second=1, microsecond=0)


def _sessions(emu: Emulator, **params: Any) -> Any:
    with client(emu) as c:
        r = c.get(SESSIONS, params={"field": BOTH, **params})
    assert r.status_code == 200, r.text
    return r.json()


# ---------------------------------------------------------------- release health
def test_sessions_cap_drops_groups_silently(make_emulator) -> None:
    """90 days at 1d grouped by all four: floor(10000 / 91) groups although more exist."""
    start = _just_after_the_hour()  # no late sessions arrive between the two emulators' answers
    emu = make_emulator(releases=25, start_time=start)  # the Emulator's default dataset size
    truth_emu = make_emulator(releases=25, start_time=start, sessions_max_points=10**9)
    body = _sessions(emu, groupBy=ALL_FOUR, statsPeriod="90d", interval="1d")
    assert len(body["intervals"]) == 91 and len(body["groups"]) == 10000 // 91 == 109
    # A past range is settled: both emulators answer the same numbers; the capped one is the head.
    day0 = _midnight(emu)
    past = {"groupBy": ALL_FOUR, "start": _iso(day0 - timedelta(days=90, hours=12)), "end": _iso(day0), "interval": "1d"}
    capped, truth = _sessions(emu, **past), _sessions(truth_emu, **past)
    assert len(capped["intervals"]) == 91
    assert len(truth["groups"]) > 109
    assert capped["groups"] == truth["groups"][:109]
    ungrouped = _sessions(emu, **{**past, "groupBy": []})["groups"][0]["totals"]["sum(session)"]
    assert sum(g["totals"]["sum(session)"] for g in truth["groups"]) == ungrouped
    assert sum(g["totals"]["sum(session)"] for g in capped["groups"]) < ungrouped  # no sign of the loss
    # One day: far below the cap, everything is there.
    day = {"groupBy": ALL_FOUR, "start": _iso(day0 - timedelta(days=1)), "end": _iso(day0), "interval": "1d"}
    one, one_truth = _sessions(emu, **day), _sessions(truth_emu, **day)
    assert one == one_truth and len(one["intervals"]) == 1
    assert sum(g["totals"]["sum(session)"] for g in one["groups"]) == \
        _sessions(emu, **{**day, "groupBy": []})["groups"][0]["totals"]["sum(session)"]
    for g in one["groups"]:
        assert set(g["by"]) == set(ALL_FOUR) and isinstance(g["by"]["project"], int)
        assert g["totals"]["count_unique(user)"] <= g["totals"]["sum(session)"]
        assert sum(g["series"]["sum(session)"]) == g["totals"]["sum(session)"] > 0


def test_sessions_interval_rounding_and_errors(emulator) -> None:
    day0 = _midnight(emulator)
    body = _sessions(emulator, start=_iso(day0 - timedelta(hours=20, minutes=30)),
                     end=_iso(day0 - timedelta(hours=17, minutes=50)), groupBy=["session.status"])
    assert body["start"] == _iso(day0 - timedelta(hours=21)) and body["end"] == _iso(day0 - timedelta(hours=17))
    assert body["intervals"] == [_iso(day0 - timedelta(hours=h)) for h in (21, 20, 19, 18)]
    assert body["query"] == "" and {tuple(g["by"]) for g in body["groups"]} == {("session.status",)}
    body = _sessions(emulator, statsPeriod="2d", interval="6h", groupBy=["project"], project=["-1"])
    assert all(t.endswith(("T00:00:00Z", "T06:00:00Z", "T12:00:00Z", "T18:00:00Z")) for t in body["intervals"])
    assert len(body["intervals"]) in (9, 10)
    with client(emulator) as c:
        too_many = c.get(SESSIONS, params={"field": "sum(session)", "statsPeriod": "500d", "interval": "1h"})
        assert too_many.status_code == 400
        assert too_many.json() == {"detail": "Your interval and date range would create too many results. "
                                             "Use a larger interval, or a smaller date range."}
        for interval in ("30m", "2d", "5h", "90m", "soon"):
            r = c.get(SESSIONS, params={"field": "sum(session)", "statsPeriod": "1d", "interval": interval})
            assert r.status_code == 400, interval
        r = c.get(SESSIONS, params={"field": "p50(session.duration)", "statsPeriod": "1d"})
        assert r.status_code == 400 and r.json() == {"detail": 'Invalid field: "p50(session.duration)"'}
        r = c.get(SESSIONS, params={"field": "sum(session)", "groupBy": "transaction", "statsPeriod": "1d"})
        assert r.status_code == 400
        assert c.get(SESSIONS, params={"statsPeriod": "1d"}).status_code == 400
        assert c.get(SESSIONS, params={"field": "sum(session)", "interval": "60m", "statsPeriod": "1d"}).status_code == 200


def test_sessions_of_the_current_hour_arrive_late(make_emulator) -> None:
    now = datetime.now(timezone.utc)
    emu = make_emulator(start_time=now.replace(minute=10, second=0, microsecond=0))
    hour = _midnight(emu) + timedelta(hours=emu.now().hour)
    window = {"start": _iso(hour), "end": _iso(hour + timedelta(hours=1)), "groupBy": ["project", "release"]}

    def totals() -> tuple[int, int]:
        groups = _sessions(emu, **window)["groups"]
        return (sum(g["totals"]["sum(session)"] for g in groups), sum(g["totals"]["count_unique(user)"] for g in groups))

    early = totals()
    emu.advance(1200)
    later = totals()
    emu.advance(3600)
    done = totals()
    assert early[0] < later[0] < done[0]
    assert early[1] <= later[1] <= done[1]


def test_sessions_of_past_hours_arrive_late_too(make_emulator) -> None:
    emu = make_emulator(start_time=_just_after_the_hour())
    hour = emu.now().replace(minute=0, second=0, microsecond=0)
    window = {"start": _iso(hour - timedelta(hours=24)), "end": _iso(hour), "interval": "1h", "groupBy": ALL_FOUR}

    def points() -> dict[tuple[Any, ...], tuple[int, int]]:
        body = _sessions(emu, **window)
        return {(tuple(sorted(g["by"].items())), at): (g["series"]["sum(session)"][i], g["series"]["count_unique(user)"][i])
                for g in body["groups"] for i, at in enumerate(body["intervals"])}

    early = points()
    emu.advance(25 * 3600)
    settled = points()
    assert all(settled[k][0] >= s and settled[k][1] >= u for k, (s, u) in early.items())
    grown = [k for k in settled if settled[k] != early.get(k, (0, 0))]
    seen = [k for k, (s, _) in settled.items() if s]
    assert len(grown) > len(seen) / 20  # a fair part of the hours got sessions after they ended
    assert all(u <= s for s, u in settled.values())
    emu.advance(25 * 3600)
    assert points() == settled  # at most a day late


# ---------------------------------------------------------------- Explore
def _explore(c: Any, **params: Any) -> Any:
    return c.get(EXPLORE, params=params)


def test_explore_validation(emulator) -> None:
    with client(emulator) as c:
        r = _explore(c, dataset="spans", field=[f"f{i}" for i in range(21)])
        assert r.status_code == 400
        assert r.json() == {"detail": "You can view up to 20 fields at a time. Please delete some and try again."}
        assert _explore(c, dataset="spans", field=[f"f{i}" for i in range(20)]).status_code == 200
        r = _explore(c, dataset="spans", field=["id", "span.op"], sort="-timestamp")
        assert r.status_code == 400 and r.json() == {"detail": "orderby must also be in the selected columns or groupby"}
        assert _explore(c, field=["id"]).status_code == 400
        assert _explore(c, dataset="transactions", field=["id"]).status_code == 400
        assert _explore(c, dataset="logs").status_code == 400
        assert _explore(c, dataset="logs", field="id", per_page="101").status_code == 400
        r = _explore(c, dataset="errors", field=["id", "title"])
        assert r.status_code == 200 and r.json()["data"] == []


def test_explore_serves_only_the_datasets_it_is_told(make_emulator) -> None:
    emu = make_emulator(explore_datasets=["spans", "logs"])
    with client(emu) as c:
        assert _explore(c, dataset="logs", field=["id"], statsPeriod="1h").status_code == 200
        r = _explore(c, dataset="tracemetrics", field=["id"], statsPeriod="1h")
    assert r.status_code == 400
    assert r.json() == {"detail": "tracemetrics is not a valid dataset, must be one of: logs, spans"}


def test_explore_rows_shapes_and_sort(emulator) -> None:
    with client(emulator) as c:
        r = _explore(c, dataset="spans", field=["id", "timestamp", "span.duration", "is_transaction", "nope"],
                     sort="-span.duration", statsPeriod="1d", per_page="50")
    assert r.status_code == 200
    body = r.json()
    rows = body["data"]
    assert len(rows) == 50 and links(r)["next"][1] is True
    assert all(list(row) == ["id", "timestamp", "span.duration", "is_transaction", "nope"] for row in rows)
    assert all(row["nope"] is None and len(row["id"]) == 16 and row["timestamp"].endswith("+00:00") for row in rows)
    durations = [row["span.duration"] for row in rows]
    assert durations == sorted(durations, reverse=True)
    assert body["meta"]["fields"]["span.duration"] == "duration" and body["meta"]["units"]["span.duration"] == "millisecond"
    assert body["meta"]["dataset"] == "spans" and body["meta"]["dataScanned"] == "full"
    logs = emulator.explore_rows("logs")
    assert logs and all(len(row["id"]) == 32 and row["severity"] in ("trace", "debug", "info", "warn", "error", "fatal")
                        for row in logs)
    assert [(row["timestamp"], row["id"]) for row in logs] == sorted((row["timestamp"], row["id"]) for row in logs)


def test_explore_offset_cap_with_a_misleading_link(make_emulator) -> None:
    emu = make_emulator(explore_rows_per_hour={"spans": 20})  # 1,440 a day over 3 projects
    with client(emu) as c:
        r = _explore(c, dataset="spans", field=["id", "timestamp"], statsPeriod="14d", cursor="0:9900:0")
        assert r.status_code == 200 and len(r.json()["data"]) == 100
        _, more, cursor = links(r)["next"]
        assert more is True and cursor == "0:10000:0"  # there are more rows, and a client may follow
        r = c.get(links(r)["next"][0])
        assert r.status_code == 400 and r.json() == {"detail": "Pagination offset too large"}


def test_explore_sampling_rules(emulator) -> None:
    now = emulator.now()
    a, b = now - timedelta(days=2), now - timedelta(days=1)
    fields = ["id", "timestamp", "project.id"]
    with client(emulator) as c:
        # (a) a start further back than 30 days: sampled, about one row in five
        old = _explore(c, dataset="logs", field=fields, statsPeriod="31d", per_page="100").json()
        recent = _explore(c, dataset="logs", field=fields, statsPeriod="30d").json()
        assert old["meta"]["dataScanned"] == "partial" and recent["meta"]["dataScanned"] == "full"
        # (b) spans on an explicit range: sampled; logs on it are not
        span_range = _explore(c, dataset="spans", field=fields, start=_iso(a), end=_iso(b)).json()
        log_range = _explore(c, dataset="logs", field=fields, start=_iso(a), end=_iso(b)).json()
        assert span_range["meta"]["dataScanned"] == "partial" and log_range["meta"]["dataScanned"] == "full"
        # statsPeriod within 30 days plus timestamp clauses: full fidelity, exactly the truth
        query = f"timestamp:>={_iso(a)} timestamp:<{_iso(b)[:-1]}+00:00"
        full = [row for page in _pages(c, dataset="spans", field=fields, statsPeriod="3d", query=query,
                                       sort="timestamp") for row in page["data"]]
    truth = emulator.explore_rows("spans", start=_iso(a), end=_iso(b), fields=fields)
    assert full == truth and 300 < len(truth) < 500  # 6 an hour, 3 projects, 24 hours
    assert 0 < len(span_range["data"]) < len(truth) / 2
    assert {r["id"] for r in span_range["data"]} <= {r["id"] for r in truth}
    assert len(log_range["data"]) == 100  # a full page of the full answer


def _pages(c: Any, **params: Any) -> list[Any]:
    out = []
    r = _explore(c, **params)
    while True:
        assert r.status_code == 200, r.text
        out.append(r.json())
        url, more, _ = links(r)["next"]
        if not more:
            return out
        r = c.get(url)


def test_explore_ingestion_lag(make_emulator) -> None:
    emu = make_emulator(explore_rows_per_hour={"logs": 600})
    edge = emu.now()
    since = edge - timedelta(minutes=6)
    query = f"timestamp:>={_iso(since)} timestamp:<={_iso(edge)}"
    with client(emu) as c:
        served = [r for page in _pages(c, dataset="logs", field=["id"], statsPeriod="1h", query=query) for r in page["data"]]
        # The rows received by now, taken after the answer: emulator time runs on while it is
        # asked, so a row received between an earlier look and the request was served, rightly.
        before = emu.explore_rows("logs", start=since, end=edge)
        emu.advance(301)
        later = [r for page in _pages(c, dataset="logs", field=["id"], statsPeriod="1h", query=query) for r in page["data"]]
    after = emu.explore_rows("logs", start=since, end=edge)
    arrived = {r["id"] for r in after} - {r["id"] for r in before}
    assert arrived, "rows stamped before the edge arrive after it"
    assert not arrived & {r["id"] for r in served} and arrived <= {r["id"] for r in later}


def test_explore_has_its_own_rate_limit(make_emulator) -> None:
    emu = make_emulator(rate_limits="sentry")
    with client(emu) as c:
        r = _explore(c, dataset="logs", field=["id"], statsPeriod="1h")
        other = c.get(SESSIONS, params={"field": "sum(session)", "statsPeriod": "1d"})
    assert r.headers["X-Sentry-Rate-Limit-Limit"] == "30"
    assert r.headers["X-Sentry-Rate-Limit-ConcurrentLimit"] == "15"
    assert other.headers["X-Sentry-Rate-Limit-Limit"] == "40"


# ---------------------------------------------------------------- replays
def test_replays_range_overlap_fields_and_errors(make_emulator) -> None:
    emu = make_emulator(replays_per_hour=4)
    now = emu.now()
    long_done = next(r for r in emu.replays() if r["duration"] > 600
                     and datetime.fromisoformat(r["finished_at"]) < now - timedelta(hours=1))
    started = datetime.fromisoformat(long_done["started_at"])
    finished = datetime.fromisoformat(long_done["finished_at"])
    inside = {"start": _iso(started + timedelta(seconds=60)), "end": _iso(finished - timedelta(seconds=60))}
    after = {"start": _iso(finished + timedelta(seconds=1)), "end": _iso(finished + timedelta(seconds=2))}
    with client(emu) as c:
        r = c.get(REPLAYS, params={**inside, "field": ["id", "started_at", "finished_at"], "per_page": "100"})
        assert r.status_code == 200
        assert {"id": long_done["id"], "started_at": long_done["started_at"],
                "finished_at": long_done["finished_at"]} in r.json()["data"]
        r = c.get(REPLAYS, params={**after, "per_page": "100"})
        assert long_done["id"] not in {x["id"] for x in r.json()["data"]}
        assert c.get(REPLAYS).status_code == 400
        r = c.get(REPLAYS, params={"statsPeriod": "1d", "field": "nonsense"})
        assert r.status_code == 400
        assert c.get(REPLAYS, params={"statsPeriod": "1d", "per_page": "101"}).status_code == 400
        r = c.get(REPLAYS, params={"statsPeriod": "1d", "sort": "-duration", "per_page": "30"})
        durations = [x["duration"] for x in r.json()["data"]]
        assert durations == sorted(durations, reverse=True) and len(durations) == 30
        assert links(r)["next"][1] is True
        before = emu.now()
        listed = [x for page in _replay_pages(c, {"statsPeriod": "1d"}) for x in page]
        after = emu.now()
    # The clock runs on while the pages are read: the last day of then, whichever instant "then" was.
    ids = {x["id"] for x in listed}
    assert len(ids) == len(listed)
    replays = [(x["id"], datetime.fromisoformat(x["started_at"]), datetime.fromisoformat(x["finished_at"]))
               for x in emu.replays()]
    assert {i for i, started, finished in replays if started <= before and finished >= after - timedelta(days=1)} \
        <= ids <= {i for i, _, finished in replays if finished >= before - timedelta(days=1)}
    assert all(len(x["id"]) == 32 and isinstance(x["project_id"], str) for x in listed)


def _replay_pages(c: Any, params: dict[str, Any]) -> list[list[Any]]:
    out = []
    r = c.get(REPLAYS, params=params)
    while True:
        assert r.status_code == 200, r.text
        out.append(r.json()["data"])
        url, more, _ = links(r)["next"]
        if not more:
            return out
        r = c.get(url)


def test_replays_in_progress_grow(make_emulator) -> None:
    emu = make_emulator(replays_per_hour=60, days=2)
    now = emu.now().replace(microsecond=0)

    def in_progress() -> dict[str, Any]:
        return {r["id"]: r for r in emu.replays() if datetime.fromisoformat(r["finished_at"]) >= now - timedelta(seconds=1)}

    running = in_progress()
    assert running
    emu.advance(120)
    with client(emu) as c:
        served = {r["id"]: r for page in _replay_pages(c, {"statsPeriod": "1h"}) for r in page}
    grown = [rid for rid, r in running.items() if served[rid]["duration"] > r["duration"]]
    assert grown
    for rid in grown:
        assert served[rid]["finished_at"] > running[rid]["finished_at"]
        assert served[rid]["started_at"] == running[rid]["started_at"]


# ---------------------------------------------------------------- deprecations
def test_deprecation_headers_and_brownouts(emulator) -> None:
    with client(emulator) as c:
        r = c.get("/api/0/projects/acme/backend/issues/")
        assert r.status_code == 200
        assert r.headers["X-Sentry-Deprecation-Date"] == "2026-05-01T00:00:00Z"
        assert r.headers["X-Sentry-Replacement-Endpoint"] == "/api/0/organizations/acme/issues/"
        assert "X-Sentry-Deprecation-Date" not in c.get("/api/0/organizations/acme/issues/").headers
        emulator.deprecate(r"/organizations/[^/]+/releases/$", date="2026-09-01T00:00:00Z",
                           replacement="/api/0/organizations/acme/releases-v2/", brownout_times=2)
        answers = [c.get("/api/0/organizations/acme/releases/") for _ in range(3)]
    assert [a.status_code for a in answers] == [410, 410, 200]
    assert answers[0].json() == {"detail": "This endpoint is deprecated and is currently unavailable (brownout)."}
    for a in answers:
        assert a.headers["X-Sentry-Deprecation-Date"] == "2026-09-01T00:00:00Z"
        assert a.headers["X-Sentry-Replacement-Endpoint"] == "/api/0/organizations/acme/releases-v2/"
    assert emulator.deprecations()[0]["brownout_times"] == 0
