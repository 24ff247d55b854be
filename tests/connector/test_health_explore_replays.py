"""Release health, the Explore datasets and replays, read end to end against the emulator.

Each stream: a full read equal to what the emulator holds, a no-change incremental read that
emits nothing, then new data. And what Sentry does to such reads: the 10,000 data points of
release health, the 10,000-row cap and the sampling of Explore, rows that arrive late, and
endpoints Sentry is retiring.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from connector_helpers import Connector

from source_sentry.timeutil import parse_time

HOUR = 3600


def _hour_start() -> datetime:
    """A start time just after a whole hour: the current hour holds no sessions yet, so a read a
    few seconds later sees the same numbers (Sentry counts the elapsed part of an hour)."""
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return now + timedelta(seconds=1)


def _mid_hour() -> datetime:
    """A start time five minutes into an hour: a read in the next seconds starts its range on the
    same whole hour and ends it on the same whole minute as the test computes afterwards."""
    return _hour_start() + timedelta(minutes=5)


def _next_hour(at: datetime) -> datetime:
    """The first whole hour at or after ``at``: where a first sync's range starts."""
    hour = at.replace(minute=0, second=0, microsecond=0)
    return hour if hour == at else hour + timedelta(hours=1)


def _cursor(run: Any, stream: str, field: str) -> datetime:
    [state] = [s for s in run.final_states() if s["stream"]["stream_descriptor"]["name"] == stream]
    value = parse_time(state["stream"]["stream_state"][field])
    assert value is not None
    return value


# --------------------------------------------------------------------------- release health


def _sessions_truth(emu: Any, start: datetime, end: datetime, interval: str = "1d") -> dict[str, tuple[float, float]]:
    """Every group of [start, end) per ``interval`` asked one day at a time (a day's answer is never cut)."""
    truth: dict[str, tuple[float, float]] = {}
    day = start
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.token}"}) as http:
        while day < end:
            params = {
                "field": ["sum(session)", "count_unique(user)"],
                "groupBy": ["project", "release", "environment", "session.status"],
                "interval": interval,
                "start": day.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": min(day + timedelta(days=1), end).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            answer = http.get(f"/api/0/organizations/{emu.organization}/sessions/", params=params)
            assert answer.status_code == 200, answer.text
            data = answer.json()
            for group in data["groups"]:
                by = group["by"]
                for i, at in enumerate(data["intervals"]):
                    sessions = group["series"]["sum(session)"][i]
                    users = group["series"]["count_unique(user)"][i]
                    if not sessions and not users:
                        continue
                    key = "|".join([interval, at, str(by["project"]), by["release"], by["environment"], by["session.status"]])
                    truth[key] = (sessions, users)
            day += timedelta(days=1)
    return truth


def test_release_health_reads_every_group_despite_the_data_point_cap(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(start_time=_hour_start())
    connector = Connector(tmp_path, emu)
    run = connector.read(["release_health"])
    assert run.statuses("release_health")[-1] == "COMPLETE", run.errors()
    rows = run.records("release_health")
    got = {r["id"]: (r["sessions"], r["users"]) for r in rows}
    assert len(got) == len(rows)  # one record per group and interval
    first = min(parse_time(r["interval"]) for r in rows)
    truth = _sessions_truth(emu, first, emu.now() + timedelta(days=1))
    assert got == truth
    # What the cap hides: one answer for the whole range holds fewer groups than there are.
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.token}"}) as http:
        whole = http.get(
            f"/api/0/organizations/{emu.organization}/sessions/",
            params={"field": ["sum(session)", "count_unique(user)"], "interval": "1d", "statsPeriod": "90d",
                    "groupBy": ["project", "release", "environment", "session.status"]},
        ).json()
    assert len(whole["groups"]) == 10_000 // len(whole["intervals"])
    assert len(whole["groups"]) < len({k.split("|", 2)[2] for k in truth})

    again = connector.read(["release_health"])
    assert again.statuses("release_health")[-1] == "COMPLETE"
    assert again.records("release_health") == []  # nothing changed: nothing emitted

    emu.advance(3 * HOUR)
    later = connector.read(["release_health"])
    changed = later.records("release_health")
    assert changed, "three more hours of sessions change today's rows"
    today = emu.now().replace(hour=0, minute=0, second=0, microsecond=0)
    assert {parse_time(r["interval"]) for r in changed} <= {today, today - timedelta(days=1), today - timedelta(days=2)}
    fresh = _sessions_truth(emu, today, today + timedelta(days=1))
    # Applied to what the first read gave, the changed rows make today's rows what Sentry says now.
    merged = {**got, **{r["id"]: (r["sessions"], r["users"]) for r in changed}}
    assert {k: v for k, v in merged.items() if k.split("|")[1] == today.strftime("%Y-%m-%dT%H:%M:%SZ")} == fresh
    assert all(got.get(r["id"]) != (r["sessions"], r["users"]) for r in changed)  # only what changed


def test_release_health_splits_an_interval_sentry_cuts_per_project(make_emulator, tmp_path: Path) -> None:
    """450 projects hold more than 10,000 groups in one day: the day is asked project by project."""
    start = _hour_start()
    big = {"projects": 450, "releases": 40, "events_per_project": 0, "issues_per_project": 0, "days": 2}
    emu = make_emulator(start_time=start, **big)
    since = (emu.now() - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    run = Connector(tmp_path, emu, start_date=since.strftime("%Y-%m-%d")).read(["release_health"])
    assert run.statuses("release_health")[-1] == "COMPLETE", run.errors()
    truth = _sessions_truth(make_emulator(start_time=start, sessions_max_points=10**9, **big), since,
                            emu.now() + timedelta(days=1))
    assert len({k for k in truth if k.split("|")[1] == since.strftime("%Y-%m-%dT%H:%M:%SZ")}) > 10_000
    assert {r["id"]: (r["sessions"], r["users"]) for r in run.records("release_health")} == truth
    asked = [r for r in emu.requests if r.path.endswith("/sessions/")]
    assert len([r for r in asked if len(r.query.get("project") or []) == 1 and r.query["project"] != ["-1"]]) >= 450


def test_release_health_hourly(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(start_time=_hour_start(), days=3)
    connector = Connector(tmp_path, emu, release_health_interval="1h", start_date=(emu.now() - timedelta(days=2)).strftime("%Y-%m-%d"))
    run = connector.read(["release_health"])
    assert run.statuses("release_health")[-1] == "COMPLETE", run.errors()
    rows = run.records("release_health")
    assert rows and {r["resolution"] for r in rows} == {"1h"}
    hours = {r["interval"] for r in rows}
    assert len(hours) > 24
    # Per day, the hourly rows add up to the daily numbers Sentry gives.
    start = min(parse_time(h) for h in hours).replace(hour=0)
    truth = _sessions_truth(emu, start + timedelta(days=1), start + timedelta(days=2))
    daily: Counter[str] = Counter()
    for r in rows:
        at = parse_time(r["interval"])
        if start + timedelta(days=1) <= at < start + timedelta(days=2):
            key = "|".join(["1d", (start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), str(r["project"]),
                            r["release"], r["environment"], r["session_status"]])
            daily[key] += r["sessions"]
    assert dict(daily) == {k: v[0] for k, v in truth.items()}


def test_release_health_reads_again_the_tail_that_late_sessions_arrive_in(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(start_time=_hour_start(), days=4)
    hourly = {"release_health_interval": "1h", "start_date": (emu.now() - timedelta(days=3)).strftime("%Y-%m-%d")}
    (tmp_path / "tail").mkdir()
    (tmp_path / "no tail").mkdir()
    connectors = {"tail": Connector(tmp_path / "tail", emu, **hourly),
                  "no tail": Connector(tmp_path / "no tail", emu, release_health_tail_hours=0, **hourly)}
    got: dict[str, dict[str, tuple[float, float]]] = {name: {} for name in connectors}
    first_hour = emu.now().replace(minute=0, second=0, microsecond=0)  # the hour the first reads end in
    for advance in (6 * HOUR, 0):  # sessions of the hours before arrive late meanwhile
        for name, connector in connectors.items():
            run = connector.read(["release_health"])
            assert run.statuses("release_health")[-1] == "COMPLETE", run.errors()
            got[name].update({r["id"]: (r["sessions"], r["users"]) for r in run.records("release_health")})
        emu.advance(advance)
    start = min(parse_time(k.split("|")[1]) for k in got["tail"])
    truth = _sessions_truth(emu, start, emu.now(), "1h")
    assert got["tail"] == truth
    # Without the tail, rows of hours before the first reads' last one kept their early numbers.
    stale = {k for k, v in truth.items() if got["no tail"].get(k) != v}
    assert stale and all(parse_time(k.split("|")[1]) < first_hour for k in stale)


# --------------------------------------------------------------------------- Explore


def _ids(rows: list[dict[str, Any]], *keys: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r[k] for k in keys) for r in rows)


@pytest.mark.parametrize("dataset", ["spans", "logs", "uptime_results", "tracemetrics"])
def test_explore_dataset_full_then_nothing_then_new_rows(make_emulator, tmp_path: Path, dataset: str) -> None:
    emu = make_emulator(days=10, start_time=_mid_hour())
    connector = Connector(tmp_path, emu)
    keys = ("id", "trace") if dataset == "spans" else ("id",)
    run = connector.read([dataset])
    assert run.statuses(dataset)[-1] == "COMPLETE", run.errors()
    upper = _cursor(run, dataset, "timestamp")
    assert emu.now() - timedelta(minutes=12) < upper <= emu.now() - timedelta(minutes=10)
    truth = emu.explore_rows(dataset, end=upper)
    rows = run.records(dataset)
    assert rows and _ids(rows, *keys) == _ids(truth, *keys)
    assert not any(r["sampled"] for r in rows)
    assert not run.logs("WARN"), run.logs("WARN")
    # Read at full fidelity: a range relative to now, the window in the query.
    asked = [r for r in emu.requests if r.path.endswith("/events/") and r.query.get("dataset") in (dataset, [dataset])]
    assert asked and all("statsPeriod" in r.query and "start" not in r.query for r in asked)

    again = connector.read([dataset])
    assert again.records(dataset) == []

    emu.advance(2 * HOUR)
    later = connector.read([dataset])
    new_upper = _cursor(later, dataset, "timestamp")
    new_truth = emu.explore_rows(dataset, start=upper, end=new_upper)
    assert new_truth and _ids(later.records(dataset), *keys) == _ids(new_truth, *keys)


def test_explore_holds_back_the_live_edge_so_late_rows_are_not_lost(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(days=2, explore_rows_per_hour={"logs": 400}, start_time=_mid_hour())
    (tmp_path / "held").mkdir()
    (tmp_path / "eager").mkdir()
    held = Connector(tmp_path / "held", emu, explore_days=1)
    eager = Connector(tmp_path / "eager", emu, explore_days=1, ingestion_lag_minutes=0)
    got: dict[str, set[str]] = {"held": set(), "eager": set()}
    start = _next_hour(emu.now() - timedelta(days=1) + timedelta(minutes=1))
    for _ in range(3):
        for name, connector in (("held", held), ("eager", eager)):
            run = connector.read(["logs"])
            assert run.statuses("logs")[-1] == "COMPLETE", run.errors()
            got[name] |= {r["id"] for r in run.records("logs")}
        emu.advance(20 * 60)
    last = held.read(["logs"])
    got["held"] |= {r["id"] for r in last.records("logs")}
    held_upper = _cursor(last, "logs", "timestamp")
    truth = {r["id"] for r in emu.explore_rows("logs", end=held_upper) if parse_time(r["timestamp"]) >= start}
    assert {i for i in got["held"] if i in truth} == truth
    # Without the hold-back, rows that arrived after a read of their time were never read.
    assert truth - got["eager"]


def test_explore_window_cut_by_the_row_cap_goes_on_from_its_last_second(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, days=2, explore_rows_per_hour={"spans": 1500}, start_time=_mid_hour())
    connector = Connector(tmp_path, emu, explore_days=1)
    run = connector.read(["spans"])
    assert run.statuses("spans")[-1] == "COMPLETE", run.errors()
    upper = _cursor(run, "spans", "timestamp")
    # The first sync starts explore_days before now; its upper bound is now less the lag.
    truth = emu.explore_rows("spans", start=_next_hour(upper + timedelta(minutes=10) - timedelta(days=1)), end=upper)
    assert len(truth) > 25_000
    rows = run.records("spans")
    assert set(_ids(rows, "id", "trace")) == set(_ids(truth, "id", "trace"))
    assert len(rows) < len(truth) * 1.01  # only the second each continuation starts at is read twice
    refused = [r for r in emu.requests if r.status == 400]
    assert refused == []  # never asked past the cap


def test_explore_warns_of_history_sentry_keeps_only_sampled(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, days=40)
    connector = Connector(tmp_path, emu, explore_days=40)
    run = connector.read(["logs"])
    assert run.statuses("logs")[-1] == "COMPLETE", run.errors()
    warnings = [w for w in run.logs("WARN") if "logs" in w]
    assert any("full fidelity" in w for w in warnings)
    assert sum("meta.dataScanned" in w for w in warnings) == 1  # once per sync
    rows = run.records("logs")
    edge = emu.now() - timedelta(days=30)
    old = [r for r in rows if parse_time(r["timestamp"]) < edge - timedelta(hours=1)]
    recent = [r for r in rows if parse_time(r["timestamp"]) >= edge + timedelta(hours=1)]
    assert old and all(r["sampled"] for r in old)
    assert recent and not any(r["sampled"] for r in recent)


def test_a_dataset_sentry_does_not_serve_is_warned_about_not_failed(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(days=2, explore_datasets=["errors", "logs", "spans", "uptime_results"])  # no tracemetrics yet
    connector = Connector(tmp_path, emu, explore_days=1)
    run = connector.read(["logs", "tracemetrics"])
    assert run.errors() == []
    assert run.statuses("tracemetrics")[-1] == "COMPLETE" and run.records("tracemetrics") == []
    [warning] = [w for w in run.logs("WARN") if "tracemetrics" in w]
    assert "does not serve the Explore dataset tracemetrics" in warning
    assert run.statuses("logs")[-1] == "COMPLETE" and run.records("logs")


def test_explore_fields_are_configurable_within_sentrys_limit(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(days=2)
    connector = Connector(tmp_path, emu, explore_fields={"logs": ["message", "severity"]}, explore_days=1)
    run = connector.read(["logs"])
    rows = run.records("logs")
    assert rows and set(rows[0]) == {"id", "timestamp", "project.id", "message", "severity", "sampled"}

    many = [f"tags[t{i}]" for i in range(20)]
    (tmp_path / "bad").mkdir()
    failed = Connector(tmp_path / "bad", emu, explore_fields={"logs": many}).read(["logs"])
    [error] = failed.errors()
    assert error["failure_type"] == "config_error"
    assert "at most 20" in error["message"] and "explore_fields.logs" in error["message"]


# --------------------------------------------------------------------------- replays


def test_replays_full_then_nothing_then_new_replays(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(days=5)
    connector = Connector(tmp_path, emu)
    run = connector.read(["replays"])
    assert run.statuses("replays")[-1] == "COMPLETE", run.errors()
    upper = _cursor(run, "replays", "finished_at")
    rows = run.records("replays")
    truth = [r for r in emu.replays() if parse_time(r["finished_at"]) < upper]
    assert rows and sorted(r["id"] for r in rows) == sorted(r["id"] for r in truth)
    assert {r["id"]: r["finished_at"] for r in rows} == {r["id"]: r["finished_at"] for r in truth}

    assert connector.read(["replays"]).records("replays") == []

    emu.advance(3 * HOUR)
    later = connector.read(["replays"])
    new_upper = _cursor(later, "replays", "finished_at")
    new_truth = [r for r in emu.replays() if upper <= parse_time(r["finished_at"]) < new_upper]
    assert new_truth and sorted(r["id"] for r in later.records("replays")) == sorted(r["id"] for r in new_truth)


# --------------------------------------------------------------------------- deprecations


def test_a_deprecated_endpoint_is_named_once_with_its_replacement(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(issues_per_project=150)
    emu.deprecate(r"/organizations/[^/]+/issues/$", date="2027-01-15T00:00:00Z",
                  replacement="/api/0/organizations/{organization_id_or_slug}/issues-v2/")
    run = Connector(tmp_path, emu).read(["issues"])
    assert run.statuses("issues")[-1] == "COMPLETE"
    warned = [w for w in run.logs("WARN") if "deprecated" in w]
    assert len(warned) == 1, warned
    assert "issues-v2" in warned[0] and "2027-01-15" in warned[0]


def test_a_brownout_is_a_transient_failure_that_says_so(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator()
    emu.deprecate(r"/organizations/[^/]+/releases/$", replacement="/api/0/organizations/{org}/releases-v2/",
                  brownout_times=100)
    run = Connector(tmp_path, emu).read(["releases", "projects"])
    assert run.statuses("projects")[-1] == "COMPLETE"
    assert run.statuses("releases")[-1] == "INCOMPLETE"
    [error] = run.errors()
    assert error["failure_type"] == "transient_error"
    assert "brownout" in error["message"] and "releases-v2" in error["message"]


def test_no_stream_reads_an_endpoint_sentry_marks_deprecated(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator()
    from source_sentry.streams import STREAMS

    run = Connector(tmp_path, emu).read([s.name for s in STREAMS])
    assert not [w for w in run.logs("WARN") if "deprecated" in w]


# --------------------------------------------------------------------------- DuckDB


def test_sync_stores_them_and_reads_explore_only_when_chosen(make_emulator, tmp_path: Path) -> None:
    import duckdb
    from test_sync import Sync

    emu = make_emulator(days=3, start_time=_mid_hour())
    sync = Sync(tmp_path, emu, explore_datasets=["logs"], explore_days=2)
    sync.run()
    with duckdb.connect(sync.db, read_only=True) as con:
        tables = {row[0] for row in con.sql("select table_name from information_schema.tables").fetchall()}
    assert {"release_health", "replays", "logs"} <= tables
    assert not {"spans", "uptime_results", "tracemetrics"} & tables  # not chosen
    [(logs,)] = sync.query('select count(*) from logs')
    assert logs > 0
    [(columns,)] = sync.query("""select count(*) from information_schema.columns
                                 where table_name = 'logs' and column_name in ('project.id', 'sampled')""")
    assert columns == 2

    before = emu.now()
    sync.run("--streams", "spans,uptime_results,tracemetrics")
    for table in ("uptime_results", "tracemetrics"):
        [(rows, keys)] = sync.query(f'select count(*), count(distinct id) from "{table}"')
        assert rows == keys > 0
    # Away from the edges of the range read (its start and the live edge), the table is the truth.
    low, high = _next_hour(before - timedelta(days=2) + timedelta(minutes=1)), before - timedelta(minutes=10)
    truth = {(r["id"], r["trace"]) for r in emu.explore_rows("spans", start=low, end=high)}
    stored = sync.query(
        f"select id, trace from spans where timestamp >= '{low.isoformat()}' and timestamp < '{high.isoformat()}'"
    )
    assert truth and set(stored) == truth and len(stored) == len(truth)


def test_explore_streams_share_explores_own_rate_limit_without_a_429(make_emulator, tmp_path: Path) -> None:
    from sentry_emulator import RateLimits

    emu = make_emulator(days=3, rate_limits=RateLimits(explore_limit=8, explore_window=1, explore_concurrent=2))
    run = Connector(tmp_path, emu, explore_days=2).read(["spans", "logs", "uptime_results", "tracemetrics"])
    for stream in ("spans", "logs", "uptime_results", "tracemetrics"):
        assert run.statuses(stream)[-1] == "COMPLETE", run.errors()
    explore = [r for r in emu.requests if r.path.endswith(f"/organizations/{emu.organization}/events/")]
    assert len(explore) > 8  # more than one window's worth: the limit was in play
    assert emu.count_429() == 0
