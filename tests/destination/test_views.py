"""The analytics views ``sync`` creates, each recomputed from the raw tables or the emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from source_sentry.destination.views import VIEWS
from source_sentry.timeutil import parse_time


def _sync(emu: Any, tmp_path: Path, db: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auth_token": emu.token, "organization": emu.organization, "hostname": emu.base_url}))
    proc = subprocess.run([sys.executable, "-m", "source_sentry", "sync", "--config", str(config), "--destination", str(db),
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def synced(make_emulator: Any, tmp_path: Path) -> tuple[Any, Path, dict[str, str]]:
    """Two syncs with an issue resolved, one resolved then regressed, and a project gone quiet."""
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
    _sync(emu, tmp_path, db)
    emu.advance(600)
    emu.add_events(emu.project_slugs[0], 1, issue_id=regressed)  # a new event regresses it
    # A sync reads up to the server's Date header, whole seconds: an event from this very second
    # waits for the next sync. Let it be a second old so this sync is the one that reads it.
    emu.advance(2)
    _sync(emu, tmp_path, db)
    return emu, db, {"resolved": resolved, "regressed": regressed}


def test_every_view_exists_after_a_sync(synced: Any) -> None:
    _, db, _ = synced
    names = {row[0] for row in _rows(db, "select table_name from information_schema.tables where table_type = 'VIEW'")}
    assert {v.name for v in VIEWS} <= names


def test_issue_lifecycle_follows_the_status_history(synced: Any) -> None:
    emu, db, ids = synced
    rows = {r[0]: r for r in _rows(db, "select id, status, resolved_at, hours_to_resolve, regressions, events, first_seen "
                                       "from issue_lifecycle")}
    assert set(rows) == {str(i["id"]) for i in emu.issues()}
    _, status, resolved_at, hours, regressions, _, first_seen = rows[ids["resolved"]]
    assert status == "resolved" and resolved_at is not None and regressions == 0
    assert hours == pytest.approx((resolved_at - first_seen).total_seconds() / 3600)
    _, status, resolved_at, hours, regressions, _, _ = rows[ids["regressed"]]
    assert (status, resolved_at, hours, regressions) == ("unresolved", None, None, 1)
    # Sentry's count is text; here it is a number.
    assert {r[0]: r[5] for r in rows.values()} == {str(i["id"]): int(i["count"]) for i in emu.issues()}


def test_errors_daily_counts_every_event(synced: Any) -> None:
    emu, db, _ = synced
    expected: Counter[tuple[Any, ...]] = Counter()
    for slug in [*emu.project_slugs]:
        for event in emu.events(slug):
            tags = {t["key"]: t["value"] for t in event.get("tags") or []}
            day = parse_time(event["dateCreated"]).date()
            expected[(day, str(event["projectID"]), tags.get("release"), tags.get("environment"))] += 1
    got = {(r[0], r[1], r[2], r[3]): r[4] for r in _rows(db, "select day, project_id, release, environment, events from errors_daily")}
    assert got == dict(expected)


def test_issues_weekly_new_resolved_and_regressed(synced: Any) -> None:
    emu, db, _ = synced
    new: Counter[tuple[date, str]] = Counter()
    for issue in emu.issues():
        seen = parse_time(issue["firstSeen"]).date()
        new[(seen - timedelta(days=seen.weekday()), issue["project"]["slug"])] += 1
    rows = _rows(db, "select week, project, new_issues, resolved_issues, regressed_issues from issues_weekly")
    assert {(r[0], r[1]): r[2] for r in rows if r[2]} == dict(new)
    assert sum(r[3] for r in rows) == 2 and sum(r[4] for r in rows) == 1


def test_release_health_daily_rates_come_from_the_rows(synced: Any) -> None:
    _, db, _ = synced
    totals: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for day, project, release, env, status, sessions in _rows(
        db, "select cast(timezone('UTC', interval) as date), project, release, environment, session_status, sessions "
            "from release_health"):
        key = (day, int(project), release, env)
        totals[key][0] += sessions
        totals[key][1] += sessions if status == "crashed" else 0
    rows = _rows(db, "select day, project_id, release, environment, sessions, crashed_sessions, crash_free_session_rate "
                     "from release_health_daily")
    assert len(rows) == len(totals)
    for day, project, release, env, sessions, crashed, rate in rows:
        assert (sessions, crashed) == tuple(totals[(day, project, release, env)])
        assert rate == pytest.approx(1 - crashed / sessions)


def test_monitor_uptime_and_usage_outcomes(synced: Any) -> None:
    _, db, _ = synced
    checkins: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    for day, monitor, status in _rows(db, "select cast(timezone('UTC', \"dateCreated\") as date), \"monitorSlug\", status "
                                          "from monitor_checkins"):
        checkins[(day, monitor)][status] += 1
    uptime = {(r[0], r[1]): r[2:] for r in _rows(db, "select day, monitor, ok, error, missed, uptime_share from monitor_uptime_daily")}
    assert set(uptime) == set(checkins)
    for key, counts in checkins.items():
        ok, error, missed, share = uptime[key]
        assert (ok, error, missed) == (counts["ok"], counts["error"], counts["missed"])
        done = sum(n for s, n in counts.items() if s != "in_progress")
        assert share == pytest.approx(counts["ok"] / done)
    usage: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    for day, category, outcome, quantity in _rows(
            db, "select cast(timezone('UTC', interval) as date), category, outcome, quantity from usage_stats"):
        usage[(day, category)][outcome] += quantity
    got = {(r[0], r[1]): r[2:] for r in _rows(db, "select day, category, accepted, filtered, rate_limited, total "
                                                  "from usage_outcomes_daily")}
    assert got == {k: (c["accepted"], c["filtered"], c["rate_limited"], sum(c.values())) for k, c in usage.items()}


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
                con.execute(sql).fetchall()
            except duckdb.Error as exc:  # pragma: no cover - the message names the query
                raise AssertionError(f"{where}: {sql}\n{exc}") from None
        # The README's top issues come by their number of events, not by the text of Sentry's count.
        top = [row[2] for row in con.execute(next(sql for w, sql in statements if "short_id" in sql)).fetchall()]
        assert top == sorted(top, reverse=True) and len(top) == 10
        counts = sorted((int(r[0]) for r in con.execute(
            "select \"count\" from issues where status = 'unresolved'").fetchall()), reverse=True)[:10]
        assert top == counts


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
