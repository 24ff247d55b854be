"""``source-sentry listen`` as a real subprocess: the emulator delivers signed webhooks to it, as
Sentry does, and the DuckDB file holds each change once the 200 came back (the process is then
killed outright, so only what was committed can be there)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest
from connector_helpers import config_for, run_cli, write_json

from source_sentry.streams import stream_by_name

SECRET = "whsec-0123456789abcdef"


_RUNNING: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_listen_left() -> Iterator[None]:
    """A failed test must not leave its listen process behind."""
    yield
    while _RUNNING:
        proc = _RUNNING.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


class Listen:
    """A running ``listen``; its stderr lines collected as they come."""

    def __init__(self, tmp_path: Path, emu: Any, db: Path, *extra: str, fault: str = "", **config_fields: Any) -> None:
        """``fault``: Python run in the process before the command (to break it from inside)."""
        config = write_json(tmp_path / "listen-config.json", config_for(emu, webhook_secret=SECRET, **config_fields))
        start = ["-c", f"{fault}\nimport sys\nfrom source_sentry.cli import main\nsys.exit(main())"] if fault else [
            "-m", "source_sentry"]
        self.proc = subprocess.Popen(
            [sys.executable, *start, "listen", "--config", config, "--destination", str(db),
             "--port", "0", "--sync-every", "0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        _RUNNING.append(self.proc)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read() if self.proc.stderr else ""
        self.url = json.loads(line)["url"]
        self.lines: list[str] = []
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, "".join(self.lines)
            time.sleep(0.05)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(60)


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql).fetchall()


def _fresh_sync(tmp_path: Path, emu: Any, **config_fields: Any) -> Path:
    """A new file synced with ``source-sentry sync`` (no webhooks): what the API serves now."""
    fresh = tmp_path / "fresh.duckdb"
    config = write_json(tmp_path / "fresh-config.json", config_for(emu, **config_fields))
    run = run_cli("sync", "--config", config, "--destination", str(fresh), "--quiet", raw=True)
    assert run.returncode == 0, run.stderr
    return fresh


# Not compared with a new file's: an incremental sync of issue_tag_values, webhooks or not, reads
# only the values whose lastSeen moved, so a value that was not among an issue's 100 most
# frequent tag keys before and is now (its lastSeen older) is missing from it.
# Nor release_health, which no webhook touches: the emulator's sessions keep arriving (late ones
# up to a day after their hour, as Sentry's), so a new file synced seconds later counts more.
_NOT_COMPARED = frozenset({"issue_tag_values", "release_health"})


def _differences(columns: list[str], con_rows: list[list[tuple[Any, ...]]]) -> list[str]:
    """Each row only one side has, by its ``id`` (else its first column): the columns that differ,
    and both values (a failure message short enough to read)."""
    key_at = columns.index("id") if "id" in columns else 0
    ours, theirs = ({row[key_at]: row for row in rows} for rows in con_rows)
    found = []
    for key in sorted(set(ours) | set(theirs), key=str):
        mine, fresh = ours.get(key), theirs.get(key)
        if mine is None or fresh is None:
            found.append(f"{key}: only in {'the fresh file' if mine is None else 'ours'}")
        elif mine != fresh:
            found += [f"{key}.{c}: ours {a!r} fresh {b!r}" for c, a, b in zip(columns, mine, fresh, strict=True) if a != b]
    return found


def _compared_columns(table: str, columns: list[str]) -> list[str]:
    """``columns`` less the stream's volatile fields: a change of those alone is not emitted (as
    documented), so a row the syncs kept holds them as they were when it last changed (an issue's
    ``stats.24h`` moves by an hour at every full hour)."""
    stream = stream_by_name(table)
    return [c for c in columns if stream is None or c not in stream.volatile_fields]


def _assert_same_tables(db: Path, fresh: Path, tables: tuple[str, ...] = ()) -> list[str]:
    """Every stream table of ``fresh`` (or ``tables``) holds the same rows in ``db``, column for
    column but for the stream's volatile fields; a column only ``db`` has (a field of a webhook's
    payload the API does not serve) is empty. Returns the tables compared."""
    with duckdb.connect(str(db), read_only=True) as ours, duckdb.connect(str(fresh), read_only=True) as theirs:
        def columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
            return [c for (c,) in con.execute("select column_name from information_schema.columns where table_name = ?"
                                              " order by ordinal_position", [table]).fetchall()
                    if not c.startswith("_airbyte")]

        names = tables or tuple(t for (t,) in theirs.execute(
            "select table_name from information_schema.tables where table_type = 'BASE TABLE'").fetchall()
            if not t.startswith("_") and t not in _NOT_COMPARED)
        for table in names:
            shared = _compared_columns(table, columns(theirs, table))
            extra = [c for c in columns(ours, table) if c not in columns(theirs, table)]
            listed = ", ".join(f'"{c}"::VARCHAR' for c in shared)
            rows = [sorted(map(repr, con.execute(f'select {listed} from "{table}"').fetchall())) for con in (ours, theirs)]
            assert rows[0] == rows[1], (table, _differences(shared, con_rows=[
                con.execute(f'select {listed} from "{table}"').fetchall() for con in (ours, theirs)]))
            for column in extra:
                assert ours.execute(f'select count(*) from "{table}" where "{column}" is not null').fetchone() == (0,), (
                    table, column)
        return list(names)


def test_signed_webhooks_are_committed_before_the_200(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, issues_per_project=30)
    db = tmp_path / "sentry.duckdb"
    listen = Listen(tmp_path, emu, db)
    listen.wait_for("sync at")  # the first sync: every table as Sentry has it
    emu.clear_requests()
    emu.configure_webhooks(listen.url, SECRET)
    unresolved = [i for i in emu.issues() if i["status"] == "unresolved"]
    resolved, ignored, assigned = (str(i["id"]) for i in unresolved[:3])
    emu.set_issue_status(resolved, "resolved")
    emu.set_issue_status(ignored, "ignored", "archived_forever")
    emu.assign_issue(assigned, emu.members()[0]["email"])
    new_issue = emu.add_issue(emu.project_slugs[0], title="Webhook-born")
    new_events = emu.add_events(emu.project_slugs[1], 3)
    emu.add_comment(resolved, "fixed in the next release")
    emu.fire_metric_alert(action="critical", name="p95 latency")
    emu.fire_event_alert(new_issue, rule="High error rate")
    emu.install_integration("created")
    deliveries = emu.webhook_deliveries
    assert deliveries and all(d["status"] == 200 for d in deliveries), deliveries
    # Past the default limit of 10 MB: 413, nothing applied.
    assert emu.send_webhook("issue", "created", {"issue": {**emu.issue(resolved), "status": "ignored"}},
                            pad_bytes=10 << 20) == 413
    listen.kill()  # no clean shutdown: only what was committed before each 200 is in the file
    assert emu.requests == []  # applied from the payloads alone

    rows = _query(db, 'select id, status, substatus, "assignedTo", "statusDetails" from issues')
    stored = {r[0]: (r[1], r[2], json.loads(r[3]) if r[3] else None, json.loads(r[4]) if r[4] else None) for r in rows}
    for issue_id in (resolved, ignored, assigned, new_issue):
        issue = emu.issue(issue_id)
        assert stored[issue_id] == (issue["status"], issue["substatus"], issue["assignedTo"], issue["statusDetails"])
    assert stored[ignored][:2] == ("ignored", "archived_forever") and stored[assigned][2] is not None
    stored_events = {row[0] for row in _query(db, "select id from events")}
    assert set(new_events) <= stored_events
    history = _query(db, f"select status from _airbyte_raw_issues where id = '{resolved}' order by _airbyte_extracted_at")
    assert [s for (s,) in history][-2:] == ["unresolved", "resolved"]  # the change kept in the history
    # listen's sync made the views; they read the webhook's change as it was committed.
    [(status, resolved_at, webhook_at)] = _query(
        db, "select l.status, l.resolved_at, max(h._airbyte_extracted_at) from issue_lifecycle l "
            f"join _airbyte_raw_issues h using (id) where id = '{resolved}' group by all")
    assert status == "resolved" and resolved_at == webhook_at
    [(comment,)] = _query(db, "select comment from webhook_comments")
    assert comment == "fixed in the next release"
    [(name, action)] = _query(db, "select alert_rule_name, action from webhook_metric_alerts")
    assert (name, action) == ("p95 latency", "critical")
    [(rule, alerted)] = _query(db, "select triggered_rule, issue_id from webhook_event_alerts")
    assert (rule, alerted) == ("High error rate", new_issue)
    [(uuid, action)] = _query(db, "select installation_uuid, action from webhook_installations")
    assert (uuid, action) == (emu.webhook_installation, "created")
    [(applied,)] = _query(db, "select count(*) from _sentry_webhooks")
    assert applied == len(deliveries)


def test_bad_signatures_stale_timestamps_replays_and_oversized_bodies_change_nothing(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, issues_per_project=10)
    db = tmp_path / "sentry.duckdb"
    listen = Listen(tmp_path, emu, db, "--max-body-bytes", "100000")
    listen.wait_for("sync at")
    emu.configure_webhooks(listen.url, SECRET)
    first, second = (dict(i) for i in [i for i in emu.issues() if i["status"] == "unresolved"][:2])
    forged = {**first, "status": "resolved"}
    assert emu.send_webhook("issue", "resolved", {"issue": forged}, secret="not-the-secret") == 401
    assert emu.send_webhook("issue", "resolved", {"issue": forged}, timestamp=int(time.time()) - 3600) == 401
    assert emu.send_webhook("issue", "resolved", {"issue": forged}, timestamp=int(time.time()) + 3600) == 401
    assert emu.send_webhook("issue", "resolved", {"issue": forged}, pad_bytes=200_000) == 413
    # A redelivery is acknowledged and not applied twice.
    accepted = {**second, "status": "resolved"}
    assert emu.send_webhook("issue", "resolved", {"issue": accepted}, request_id="req-1") == 200
    assert emu.send_webhook("issue", "ignored", {"issue": {**second, "status": "ignored"}}, request_id="req-1") == 200
    listen.kill()
    statuses = dict(_query(db, "select id, status from issues"))
    assert statuses[str(first["id"])] == "unresolved"  # nothing refused was applied
    assert statuses[str(second["id"])] == "resolved"  # req-1 once, not its replay
    versions = dict(_query(db, "select id, count(*) from _airbyte_raw_issues group by id"))
    assert versions[str(first["id"])] == 1 and versions[str(second["id"])] == 2
    assert _query(db, "select count(*) from _sentry_webhooks") == [(1,)]
    assert not any(SECRET in line for line in listen.lines)


def test_after_webhooks_and_syncs_every_table_is_as_sentry_serves_it(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, issues_per_project=25)
    db = tmp_path / "sentry.duckdb"
    issues = [str(i["id"]) for i in emu.issues()]
    member, team = emu.members()[0]["email"], f"team:{emu.teams()[0]['slug']}"
    rounds = [  # webhooks between syncs: each round is one listen, its sync at start, then these
        lambda: (emu.set_issue_status(issues[0], "resolved"), emu.set_issue_status(issues[1], "resolved"),
                 emu.set_issue_status(issues[1], "unresolved"), emu.assign_issue(issues[2], team),
                 emu.add_events(emu.project_slugs[0], 4, issue_id=issues[-1]),
                 emu.add_issue(emu.project_slugs[1], title="Seen first by a webhook"),
                 # The issue as it stands: the list serves what the last sync saw, the table holds
                 # the webhook's (detail) shape until the sync reads it again.
                 emu.send_webhook("issue", "assigned", {"issue": emu.issue(issues[4])})),
        lambda: (emu.set_issue_status(issues[0], "unresolved"), emu.set_issue_status(issues[3], "ignored"),
                 emu.assign_issue(issues[2], member), emu.add_events(emu.project_slugs[1], 3),
                 emu.add_comment(issues[3], "muted until the next release")),
    ]
    for stop_with, webhooks in zip((signal.SIGTERM, signal.SIGINT), rounds, strict=True):
        listen = Listen(tmp_path, emu, db)
        listen.wait_for("sync at")
        assert ": ok in" in "".join(listen.lines), "".join(listen.lines)
        emu.configure_webhooks(listen.url, SECRET)
        emu.advance(60)
        webhooks()
        assert emu.webhook_deliveries and all(d["status"] == 200 for d in emu.webhook_deliveries)
        assert listen.stop(stop_with) == 0
    # The next listen syncs at start: Sentry's own versions replace what the webhooks wrote. An
    # hour later, so every issue's stats.24h has moved, and the rows no change re-emitted hold
    # them as they were (volatile: see _compared_columns).
    emu.stop_webhooks()
    emu.advance(3600)
    again = Listen(tmp_path, emu, db)
    again.wait_for("sync at")
    assert ": ok in" in "".join(again.lines), "".join(again.lines)
    assert again.stop() == 0
    expected = {str(i["id"]): (i["status"], json.dumps(i["assignedTo"], sort_keys=True), i["count"]) for i in emu.issues()}
    rows = _query(db, 'select id, status, "assignedTo", "count" from issues')
    got = {r[0]: (r[1], json.dumps(json.loads(r[2]) if r[2] else None, sort_keys=True), r[3]) for r in rows}
    assert got == expected
    events = {row[0] for row in _query(db, "select id from events")}
    assert events == {e["id"] for slug in emu.project_slugs for e in emu.events(slug)}
    # And every table, column for column, as a sync into a new file has it.
    compared = _assert_same_tables(db, _fresh_sync(tmp_path, emu))
    assert {"issues", "events", "issue_events", "projects", "releases"} <= set(compared)


def test_webhooks_the_sync_would_not_read_are_acknowledged_and_not_applied(make_emulator, tmp_path: Path) -> None:
    """With ``project`` or ``start_date`` in the config, an issue or event outside them would
    stay in the table for good: no sync reads it again."""
    emu = make_emulator(projects=2, issues_per_project=40)
    mine, other = emu.project_slugs
    since = datetime.now(timezone.utc) - timedelta(days=10)
    scope = {"project": mine, "start_date": since.strftime("%Y-%m-%dT%H:%M:%SZ")}
    old = [i for i in emu.issues(mine, status="unresolved") if datetime.fromisoformat(i["lastSeen"]) < since]
    recent = [i for i in emu.issues(mine, status="unresolved") if datetime.fromisoformat(i["lastSeen"]) >= since]
    assert old and recent
    db = tmp_path / "sentry.duckdb"
    listen = Listen(tmp_path, emu, db, **scope)
    listen.wait_for("sync at")
    emu.configure_webhooks(listen.url, SECRET)
    emu.set_issue_status(str(recent[0]["id"]), "resolved")
    emu.set_issue_status(str(old[0]["id"]), "resolved")
    emu.set_issue_status(str(emu.issues(other, status="unresolved")[0]["id"]), "resolved")
    others = emu.add_events(other, 2) + [e["id"] for e in emu.issue_events(emu.add_issue(other, title="Elsewhere"))]
    ours = emu.add_events(mine, 2)
    assert all(d["status"] == 200 for d in emu.webhook_deliveries)  # acknowledged, all of them
    listen.kill()
    statuses = dict(_query(db, "select id, status from issues"))
    assert statuses[str(recent[0]["id"])] == "resolved"
    assert str(old[0]["id"]) not in statuses
    assert _query(db, f"select count(*) from issues where json_extract_string(project, '$.slug') <> '{mine}'") == [(0,)]
    stored = {e for (e,) in _query(db, "select id from events")}
    assert set(ours) <= stored and not set(others) & stored
    # What a sync then leaves is what a sync alone would have written.
    emu.stop_webhooks()
    again = Listen(tmp_path, emu, db, **scope)
    again.wait_for("sync at")
    assert again.stop() == 0
    _assert_same_tables(db, _fresh_sync(tmp_path, emu, **scope), ("issues", "events"))


def test_listen_needs_the_webhook_secret(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1)
    config = write_json(tmp_path / "config.json", config_for(emu))
    proc = subprocess.run(
        [sys.executable, "-m", "source_sentry", "listen", "--config", config, "--destination", str(tmp_path / "x.duckdb"),
         "--port", "0"],
        capture_output=True, text=True, timeout=60, env={**os.environ},
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "webhook_secret is required" in proc.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_it_syncs_every_interval_and_stops_cleanly_on_a_signal(make_emulator, tmp_path: Path, signum: int) -> None:
    emu = make_emulator(projects=1, issues_per_project=10)
    db = tmp_path / "sentry.duckdb"
    listen = Listen(tmp_path, emu, db, "--sync-every", "0.02")  # every 1.2 s
    listen.wait_for("sync at")
    emu.add_events(emu.project_slugs[0], 2)
    deadline = time.monotonic() + 60
    while sum("sync at" in line for line in listen.lines) < 3:
        assert time.monotonic() < deadline, "".join(listen.lines)
        time.sleep(0.1)
    assert listen.stop(signum) == 0
    assert listen.proc.stdout is not None and listen.proc.stdout.read() == ""  # the url line was the only one
    assert all(": ok in" in line for line in listen.lines if "sync at" in line)
    stored = {row[0] for row in _query(db, "select id from events")}
    assert stored == {e["id"] for e in emu.events(emu.project_slugs[0])}


# The first sync raises (a bug of ours, or the destination's disk filling); the next succeeds.
_FIRST_SYNC_RAISES = """
from source_sentry.listen import Listener
sync, calls = Listener.sync, []
def first_raises(self):
    calls.append(1)
    if len(calls) == 1:
        raise RuntimeError("the destination's disk is full")
    return sync(self)
Listener.sync = first_raises
"""


def test_a_sync_that_raises_is_reported_and_the_next_one_still_runs(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, issues_per_project=5)
    db = tmp_path / "sentry.duckdb"
    listen = Listen(tmp_path, emu, db, "--sync-every", "0.01", fault=_FIRST_SYNC_RAISES)  # every 0.6 s
    listen.wait_for(": ok in", timeout=60)
    assert listen.stop() == 0
    said = "".join(listen.lines)
    assert "source-sentry listen: the sync stopped: Traceback" in said and "disk is full" in said, said
    assert said.index(": failed in") < said.index(": ok in"), said
    assert _query(db, "select count(*) from events") == [(len(emu.events(emu.project_slugs[0])),)]
