"""The analytics views ``sync`` creates, each recomputed from the raw tables or the emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

from source_sentry.destination.views import VIEWS
from source_sentry.timeutil import parse_time


def _sync(emu: Any, tmp_path: Path, db: Path, *extra: str, **settings: Any) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auth_token": emu.token, "organization": emu.organization, "hostname": emu.base_url,
                                  **settings}))
    proc = subprocess.run([sys.executable, "-m", "source_sentry", "sync", "--config", str(config), "--destination", str(db),
                           "--quiet", *extra], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def synced(make_emulator: Any, tmp_path: Path) -> tuple[Any, Path, dict[str, str]]:
    """Three syncs with an issue resolved, one resolved then regressed, one born and resolved
    between two syncs, a check-in in progress, and a project gone quiet."""
    emu = make_emulator(projects=3, issues_per_project=20, events_per_project=120, monitors=3)
    emu.add_project("quiet")
    emu.add_events("quiet", 5, late_by_seconds=3 * 86400)
    db = tmp_path / "sentry.duckdb"
    _sync(emu, tmp_path, db)
    unresolved = [i for i in emu.issues(emu.project_slugs[0]) if i["status"] == "unresolved"]
    resolved, regressed = str(unresolved[0]["id"]), str(unresolved[1]["id"])
    emu.advance(600)
    emu.set_issue_status(resolved, "resolved")
    emu.set_issue_status(regressed, "resolved")
    born = emu.add_issue(emu.project_slugs[1], title="Born and resolved between two syncs")
    emu.set_issue_status(born, "resolved")
    emu.advance(2)
    _sync(emu, tmp_path, db)
    emu.advance(600)
    emu.add_events(emu.project_slugs[0], 1, issue_id=regressed)  # a new event regresses it
    emu.add_checkin(emu.monitors()[0]["slug"], "in_progress")
    # A sync reads up to the server's Date header, whole seconds: an event from this very second
    # waits for the next sync. Let it be a second old so this sync is the one that reads it.
    emu.advance(2)
    _sync(emu, tmp_path, db)
    already = next(i for i in emu.issues() if i["status"] == "resolved" and str(i["id"]) not in (resolved, born))
    return emu, db, {"resolved": resolved, "regressed": regressed, "born": born, "already": str(already["id"])}


def _transitions(db: Path) -> dict[str, list[tuple[str, Any]]]:
    """Per issue, the status changes its history shows ("resolved" or "regressed", when), as
    docs/views.md defines them: a change from the version before, or the first version of an issue
    first seen after the first sync of issues."""
    history = _rows(db, 'select h.id, h.status, h._airbyte_extracted_at, i."firstSeen" from _airbyte_raw_issues h '
                        "join issues i using (id) where h._ab_cdc_deleted_at is null "
                        "order by h._airbyte_extracted_at, h._airbyte_raw_id")
    first_sync = min(row[2] for row in history)
    previous: dict[str, str] = {}
    out: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for issue, status, at, first_seen in history:
        before = previous.get(issue)
        if status == "resolved" and before != "resolved" and (before is not None or first_seen > first_sync):
            out[issue].append(("resolved", at))
        if status == "unresolved" and before == "resolved":
            out[issue].append(("regressed", at))
        previous[issue] = status
    return out


def test_every_view_exists_after_a_sync(synced: Any) -> None:
    _, db, _ = synced
    names = {row[0] for row in _rows(db, "select table_name from information_schema.tables where table_type = 'VIEW'")}
    assert {v.name for v in VIEWS} <= names


def test_issue_lifecycle_follows_the_status_history(synced: Any) -> None:
    emu, db, ids = synced
    rows = {r[0]: r[1:] for r in _rows(db, "select id, project, level, category, first_seen, last_seen, status, "
                                           "resolved_at, hours_to_resolve, regressions, events, users from issue_lifecycle")}
    issues = {str(i["id"]): i for i in emu.issues()}
    assert set(rows) == set(issues)
    changes = _transitions(db)
    for issue_id, (project, level, category, first_seen, last_seen, status, resolved_at, hours, regressions, events,
                   users) in rows.items():
        sentry = issues[issue_id]
        assert (project, level, category, status) == (sentry["project"]["slug"], sentry["level"],
                                                      sentry["issueCategory"], sentry["status"])
        assert (first_seen, last_seen) == (parse_time(sentry["firstSeen"]), parse_time(sentry["lastSeen"]))
        # Sentry's count is text; here it is a number, like userCount.
        assert (events, users) == (int(sentry["count"]), int(sentry["userCount"]))
        resolutions = [at for what, at in changes[issue_id] if what == "resolved"]
        expected = max(resolutions) if status == "resolved" and resolutions else None
        assert resolved_at == expected, issue_id
        # Whole seconds; the emulator's clock runs ahead of the sync's here, so a time can be negative.
        assert hours == (None if expected is None else
                         pytest.approx((expected - first_seen).total_seconds() / 3600, abs=1 / 3600))
        assert regressions == sum(what == "regressed" for what, _ in changes[issue_id])
    extracted = sorted({r[0] for r in _rows(db, "select _airbyte_extracted_at from _airbyte_raw_issues")})
    resolved_at, regressions = rows[ids["resolved"]][6], rows[ids["resolved"]][8]
    assert resolved_at in extracted[1:] and regressions == 0  # the second sync saw it resolved
    assert rows[ids["regressed"]][5:9] == ("unresolved", None, None, 1)
    assert rows[ids["born"]][5] == "resolved" and rows[ids["born"]][6] is not None
    # Resolved before the first sync: the history cannot say when.
    assert rows[ids["already"]][5:8] == ("resolved", None, None)


def test_errors_daily_counts_every_event(synced: Any) -> None:
    emu, db, _ = synced
    expected: Counter[tuple[Any, ...]] = Counter()
    groups: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for slug in [*emu.project_slugs]:
        for event in emu.events(slug):
            tags = {t["key"]: t["value"] for t in event.get("tags") or []}
            day = parse_time(event["dateCreated"]).date()
            key = (day, str(event["projectID"]), tags.get("release"), tags.get("environment"))
            expected[key] += 1
            groups[key].add(str(event["groupID"]))
    got = {tuple(r[:4]): r[4:] for r in _rows(db, "select day, project_id, release, environment, events, issues "
                                                  "from errors_daily")}
    assert got == {key: (n, len(groups[key])) for key, n in expected.items()}


def test_issues_weekly_new_resolved_and_regressed(synced: Any) -> None:
    emu, db, _ = synced
    expected: dict[tuple[date, str], Counter[str]] = defaultdict(Counter)

    def week(at: date) -> date:
        return at - timedelta(days=at.weekday())

    project = {str(i["id"]): i["project"]["slug"] for i in emu.issues()}
    for issue in emu.issues():
        expected[(week(parse_time(issue["firstSeen"]).date()), issue["project"]["slug"])]["new"] += 1
    for issue_id, changes in _transitions(db).items():
        for what, at in changes:
            expected[(week(at.astimezone(timezone.utc).date()), project[issue_id])][what] += 1
    rows = _rows(db, "select week, project, new_issues, resolved_issues, regressed_issues from issues_weekly")
    assert {(r[0], r[1]): r[2:] for r in rows} == {k: (c["new"], c["resolved"], c["regressed"]) for k, c in expected.items()}
    assert sum(r[3] for r in rows) == 3 and sum(r[4] for r in rows) == 1  # resolved, regressed and born


def _release_health_matches_its_rows(db: Path, resolution: str) -> None:
    """release_health_daily is the day's sums of release_health's rows of that resolution."""
    sums: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    for day, project, release, env, status, sessions, users in _rows(
        db, "select cast(timezone('UTC', interval) as date), project, release, environment, session_status, sessions, "
            f"users from release_health where resolution = '{resolution}'"):
        counts = sums[(day, int(project), release, env)]
        counts["sessions"] += sessions
        counts["users"] += users
        counts[f"{status}_sessions"] += sessions
        counts[f"{status}_users"] += users
    assert all(any(c[f"{s}_sessions"] for c in sums.values()) for s in ("crashed", "errored", "abnormal"))
    rows = _rows(db, "select day, project_id, release, environment, sessions, crashed_sessions, errored_sessions, "
                     "abnormal_sessions, users, crashed_users, crash_free_session_rate, crash_free_user_rate "
                     "from release_health_daily")
    assert len(rows) == len(sums)
    for day, project, release, env, *numbers, session_rate, user_rate in rows:
        c = sums[(day, project, release, env)]
        assert numbers == [c["sessions"], c["crashed_sessions"], c["errored_sessions"], c["abnormal_sessions"],
                           c["users"], c["crashed_users"]]
        assert session_rate == pytest.approx(1 - c["crashed_sessions"] / c["sessions"])
        assert user_rate == pytest.approx(1 - c["crashed_users"] / c["users"])


def test_release_health_daily_rates_come_from_the_rows(synced: Any) -> None:
    _, db, _ = synced
    _release_health_matches_its_rows(db, "1d")


def test_release_health_daily_from_hourly_rows(make_emulator: Any, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, days=3)
    db = tmp_path / "hourly.duckdb"
    _sync(emu, tmp_path, db, "--streams", "release_health", release_health_interval="1h")
    assert {r[0] for r in _rows(db, "select distinct resolution from release_health")} == {"1h"}
    _release_health_matches_its_rows(db, "1h")


def test_monitor_uptime_and_usage_outcomes(synced: Any) -> None:
    _, db, _ = synced
    checkins: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    for day, monitor, env, status in _rows(db, "select cast(timezone('UTC', \"dateCreated\") as date), \"monitorSlug\", "
                                               "environment, status from monitor_checkins"):
        checkins[(day, monitor, env)][status] += 1
    statuses = ("ok", "error", "missed", "timeout", "in_progress")
    assert all(any(c[s] for c in checkins.values()) for s in statuses)  # every status is there to count
    uptime = {tuple(r[:3]): r[3:] for r in _rows(
        db, "select day, monitor, environment, ok, error, missed, timeout, in_progress, uptime_share from monitor_uptime_daily")}
    assert set(uptime) == set(checkins)
    for key, counts in checkins.items():
        *numbers, share = uptime[key]
        assert numbers == [counts[s] for s in statuses]
        done = sum(n for s, n in counts.items() if s != "in_progress")
        assert share == pytest.approx(counts["ok"] / done)
    usage: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    for day, category, outcome, quantity in _rows(
            db, "select cast(timezone('UTC', interval) as date), category, outcome, quantity from usage_stats"):
        usage[(day, category)][outcome] += quantity
    outcomes = ("accepted", "filtered", "rate_limited", "invalid", "client_discard")
    assert all(any(c[o] for c in usage.values()) for o in outcomes)
    got = {(r[0], r[1]): r[2:] for r in _rows(db, "select day, category, accepted, filtered, rate_limited, invalid, "
                                                  "client_discard, total from usage_outcomes_daily")}
    assert got == {k: (*(c[o] for o in outcomes), sum(c.values())) for k, c in usage.items()}


def test_silent_projects_had_events_the_week_before_and_none_since(synced: Any) -> None:
    emu, db, _ = synced
    silent = {r[0] for r in _rows(db, "select project from silent_projects")}
    assert "quiet" in silent
    now = emu.now()
    for slug in emu.project_slugs:
        times = [parse_time(e["dateCreated"]) for e in emu.events(slug)]
        recent = any(t >= now - timedelta(days=1) for t in times)
        week = any(now - timedelta(days=8) <= t < now - timedelta(days=1) for t in times)
        assert (slug in silent) == (week and not recent), slug


def _sql_blocks() -> list[tuple[str, str]]:
    """Every statement of every ```sql block in the README and docs/, with where it is."""
    root = Path(__file__).resolve().parents[2]
    found = []
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for block in text.split("```sql")[1:]:
            body = block.split("```", 1)[0]
            for statement in body.split(";"):
                lines = [line for line in statement.splitlines() if line.strip() and not line.strip().startswith("--")]
                if lines:
                    found.append((doc.name, "\n".join(lines)))
    return found


def test_every_documented_query_runs_on_a_synced_file(synced: Any) -> None:
    _, db, _ = synced
    statements = _sql_blocks()
    assert len(statements) >= 10
    with duckdb.connect(str(db), read_only=True) as con:
        for where, sql in statements:
            try:
                answer = con.execute(sql).fetchall()
            except duckdb.Error as exc:  # pragma: no cover - the message names the query
                raise AssertionError(f"{where}: {sql}\n{exc}") from None
            assert answer, f"{where}: no rows from\n{sql}"  # this dataset has an answer to every question
        # The README's top issues come by their number of events, not by the text of Sentry's count.
        top = [row[2] for row in con.execute(next(sql for w, sql in statements if "short_id" in sql)).fetchall()]
        assert top == sorted(top, reverse=True) and len(top) == 10
        counts = sorted((int(r[0]) for r in con.execute(
            "select \"count\" from issues where status = 'unresolved'").fetchall()), reverse=True)[:10]
        assert top == counts


def test_a_full_refresh_keeps_the_issue_views(make_emulator: Any, tmp_path: Path) -> None:
    """An overwrite keeps no history table: the issues stand in for it, with no resolution time."""
    emu = make_emulator(projects=2)
    db = tmp_path / "full.duckdb"
    _sync(emu, tmp_path, db, "--full-refresh", "--streams", "issues")
    assert _rows(db, "select count(*) from information_schema.tables where table_name = '_airbyte_raw_issues'") == [(0,)]
    [(issues, resolved, timed, regressions)] = _rows(
        db, "select count(*), count(*) filter (where status = 'resolved'), count(resolved_at), sum(regressions) "
            "from issue_lifecycle")
    assert (issues, timed, regressions) == (len(emu.issues()), 0, 0) and resolved > 0
    assert _rows(db, "select sum(new_issues), sum(resolved_issues) from issues_weekly") == [(len(emu.issues()), 0)]


def test_a_table_typed_otherwise_leaves_its_views_out(tmp_path: Path) -> None:
    """A catalog whose events have no schema types dateCreated as text: the views over events are
    left out (they failed the whole sync with a traceback), the others are made."""
    from source_sentry.destination.views import create_views

    with duckdb.connect(str(tmp_path / "s.duckdb")) as con:
        con.execute('CREATE TABLE events ("dateCreated" VARCHAR, "projectID" VARCHAR)')
        con.execute('CREATE TABLE projects (id VARCHAR, slug VARCHAR, "_ab_cdc_deleted_at" TIMESTAMPTZ)')
        con.execute('CREATE TABLE monitor_checkins ("dateCreated" TIMESTAMPTZ, "monitorSlug" VARCHAR, environment VARCHAR, '
                    "status VARCHAR)")
        con.execute('CREATE VIEW errors_daily AS SELECT 1 AS stale')  # a previous sync's view goes
        made = create_views(con)
        views = {row[0] for row in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert made == ["monitor_uptime_daily"] and views == {"monitor_uptime_daily"}
