"""``source-sentry sync`` into DuckDB: the four sync modes end to end against the emulator."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from connector_helpers import catalog_for, config_for, write_json

from source_sentry.streams import STREAMS


class Sync:
    """A config and a DuckDB file in a temp dir, synced again and again."""

    def __init__(self, tmp_path: Path, emu: Any, **config: Any) -> None:
        self.emu = emu
        self.dir = tmp_path
        self.db = str(tmp_path / "sentry.duckdb")
        self.config = write_json(tmp_path / "config.json", config_for(emu, **config))
        self.n = 0

    def args(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "source_sentry", "sync", "--config", self.config, "--destination", self.db, *extra]

    def run(self, *extra: str, catalog: dict | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        self.n += 1
        if catalog is not None:
            extra = (*extra, "--catalog", write_json(self.dir / f"catalog{self.n}.json", catalog))
        proc = subprocess.run(self.args(*extra), capture_output=True, text=True, timeout=300)
        if ok:
            assert proc.returncode == 0, proc.stderr + proc.stdout
        return proc

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(self.db, read_only=True) as con:
            return con.sql(sql).fetchall()

    def ids(self, table: str) -> list[str]:
        return sorted(str(r[0]) for r in self.query(f'select id from "{table}"'))


def _expected_events(emu: Any) -> list[str]:
    return sorted(e["id"] for slug in emu.project_slugs for e in emu.events(slug))


def _issue_statuses(emu: Any) -> dict[str, str]:
    return {str(i["id"]): i["status"] for i in emu.issues()}


def test_default_incremental_dedup_matches_the_emulator_across_syncs(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, events_per_project=230, issues_per_project=40, releases=25)
    sync = Sync(tmp_path, emu)
    first = sync.run()
    assert "Synced into" in first.stderr
    assert sync.ids("events") == _expected_events(emu)
    assert dict(sync.query('select id, status from issues')) == _issue_statuses(emu)
    assert sync.ids("releases") == sorted(str(r["id"]) for r in emu.releases())
    assert sync.ids("projects") == sorted(str(p["id"]) for p in emu.projects())

    # Time moves: new and late events, status changes, a new occurrence, a deploy.
    emu.advance(900)
    emu.add_events(emu.project_slugs[0], 12)
    emu.add_events(emu.project_slugs[1], 4, late_by_seconds=600)
    issues = [i for i in emu.issues() if i["status"] == "unresolved"]
    emu.set_issue_status(str(issues[0]["id"]), "resolved")
    emu.set_issue_status(str(issues[1]["id"]), "ignored")
    emu.add_events(issues[2]["project"]["slug"], 2, issue_id=str(issues[2]["id"]))
    version = emu.releases()[3]["version"]
    emu.add_deploy(version)
    emu.advance(5)
    sync.run()

    assert sync.ids("events") == _expected_events(emu)
    assert dict(sync.query("select id, status from issues")) == _issue_statuses(emu)
    counts = dict(sync.query('select id, "count" from issues'))
    assert counts[str(issues[2]["id"])] == next(i["count"] for i in emu.issues() if str(i["id"]) == str(issues[2]["id"]))
    assert sync.query(f"select \"deployCount\" from releases where version = '{version}'")[0][0] >= 1
    # The deduped table has one row per key; the raw table keeps every version.
    for table in ["events", "issues", "releases", "projects"]:
        [(rows, keys)] = sync.query(f'select count(*), count(distinct id) from "{table}"')
        assert rows == keys
    [(versions,)] = sync.query(f"select count(*) from _airbyte_raw_issues where id = '{issues[0]['id']}'")
    assert versions == 2
    # Every stream but the Explore datasets, which sync reads only when chosen.
    incremental = {s.name for s in STREAMS if s.incremental and not s.opt_in}
    assert {row[0] for row in sync.query("select stream_name from _airbyte_state")} == incremental


def test_full_refresh_overwrite_replaces_tables_and_warns_about_retention(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=120, issues_per_project=30)
    sync = Sync(tmp_path, emu)
    sync.run("--streams", "events,issues")
    gone = str(emu.issues()[0]["id"])
    emu.delete_issue(gone)
    proc = sync.run("--streams", "events,issues", "--full-refresh")
    assert "retention" in proc.stderr
    assert gone not in sync.ids("issues")
    assert dict(sync.query("select id, status from issues")) == _issue_statuses(emu)
    assert sync.ids("events") == _expected_events(emu)
    # After a full refresh, the next default sync is incremental again and reads nothing new.
    sync.run("--streams", "issues")
    [(n,)] = sync.query("select count(*) from _airbyte_raw_issues")
    assert n == len(emu.issues()) + 30  # the first sync's 30 versions + the state-less re-read


def test_full_refresh_append_keeps_every_copy(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, releases=15)
    sync = Sync(tmp_path, emu)
    catalog = catalog_for(["releases"], mode="full_refresh", destination_mode="append")
    sync.run(catalog=catalog)
    sync.run(catalog=catalog)
    [(rows, keys)] = sync.query("select count(*), count(distinct id) from releases")
    assert (rows, keys) == (30, 15)
    [(generations,)] = sync.query("select count(distinct _airbyte_generation_id) from releases")
    assert generations == 2


def test_incremental_append_adds_only_new_or_changed_records(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, issues_per_project=25)
    sync = Sync(tmp_path, emu, full_scan_hours=0)  # a status change arrives with the next sync
    catalog = catalog_for(["issues"], mode="incremental", destination_mode="append")
    sync.run(catalog=catalog)
    changed = str(emu.issues()[5]["id"])
    emu.set_issue_status(changed, "resolved")
    sync.run(catalog=catalog)
    sync.run(catalog=catalog)
    [(rows,)] = sync.query("select count(*) from issues")
    assert rows == 26
    assert sync.query(f"select status from issues where id = '{changed}' order by _airbyte_extracted_at")[-1] == ("resolved",)


def test_new_fields_from_the_api_add_columns(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2)
    sync = Sync(tmp_path, emu)
    sync.run("--streams", "projects")
    emu.update_project(emu.project_slugs[0], brandNewField="hello", name="Renamed")
    sync.run("--streams", "projects")
    rows = dict(sync.query('select slug, "brandNewField" from projects'))
    assert rows[emu.project_slugs[0]] is not None and "hello" in str(rows[emu.project_slugs[0]])
    assert rows[emu.project_slugs[1]] is None


def test_bad_stream_name_and_bad_token_say_what_to_fix(emulator, tmp_path: Path) -> None:
    sync = Sync(tmp_path, emulator)
    proc = sync.run("--streams", "events,nope", ok=False)
    assert proc.returncode != 0
    assert "nope" in proc.stderr and "events" in proc.stderr
    assert "Traceback" not in proc.stderr
    (tmp_path / "bad").mkdir()
    bad = Sync(tmp_path / "bad", emulator, auth_token="definitely-wrong-token")
    proc = bad.run("--quiet", ok=False)
    assert proc.returncode == 1
    assert "auth token" in proc.stderr and "definitely-wrong-token" not in proc.stderr + proc.stdout


# Project events lists only (issue events have their own stream, left to run).
PROJECT_EVENTS = r"/projects/acme/[^/]+/events/$"


def _wait_for_statuses(proc: subprocess.Popen[str], streams: set[str], status: str) -> None:
    """Read the sync's stderr until its progress lines said ``status`` for every one of ``streams``.

    The lines read ``[   1.2s] issues: COMPLETE (400 records)``.
    """
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        streams = {s for s in streams if f"] {s}: {status} (" not in line}
        if not streams:
            return
    raise AssertionError(f"the sync ended before {sorted(streams)} were {status}:\n{''.join(seen)}")


@pytest.mark.parametrize("pages_before_kill", [1, 12])
def test_a_sync_killed_mid_way_resumes_with_exact_tables(make_emulator, tmp_path: Path, pages_before_kill: int) -> None:
    """Killed once other streams committed and events are part-read: the next sync completes them exactly.

    Events pages after the first ``pages_before_kill`` hang until the kill, so the sync cannot get
    past that point first, however fast the machine; the kill waits for the progress lines that say
    issues and releases completed (the destination commits a stream before that line is printed).
    """
    emu = make_emulator(projects=2, events_per_project=1500, issues_per_project=200, releases=150)
    emu.inject_fault("stall", path=PROJECT_EVENTS, times=-1, after=pages_before_kill, seconds=3600)
    sync = Sync(tmp_path, emu)
    proc = subprocess.Popen(sync.args(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_statuses(proc, {"issues", "releases"}, "COMPLETE")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    emu.clear_faults()
    served = [r for r in emu.requests if r.route == "/api/0/projects/{org}/{project}/events/" and r.status == 200]
    assert len(served) == pages_before_kill  # the kill came mid-events, after this many pages
    # What completed before the kill is in the file; events are part-read.
    assert dict(sync.query("select id, status from issues")) == _issue_statuses(emu)
    assert len(sync.ids("events")) <= pages_before_kill * 100 < len(_expected_events(emu))

    sync.run("--quiet")
    assert sync.ids("events") == _expected_events(emu)
    assert dict(sync.query("select id, status from issues")) == _issue_statuses(emu)
    assert sync.ids("releases") == sorted(str(r["id"]) for r in emu.releases())
    for table in ["events", "issues", "releases"]:
        [(rows, keys)] = sync.query(f'select count(*), count(distinct id) from "{table}"')
        assert rows == keys


# `sync`, SIGKILLed by itself when it is about to merge the events' unmerged rows into `events`
# (at the stream's COMPLETE: every state was committed, the merge not).
_DIES_AT_MERGE = r"""
import os, signal, sys
from source_sentry.cli import main
from source_sentry.destination.duckdb import DuckDBDestination

merge = DuckDBDestination._merge

def dying(self, pending, target, *rest):
    if target == "events":
        os.kill(os.getpid(), signal.SIGKILL)
    return merge(self, pending, target, *rest)

DuckDBDestination._merge = dying
sys.exit(main(sys.argv[1:]))
"""


def test_a_sync_killed_before_its_merge_loses_nothing_and_the_next_open_merges(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=230)
    sync = Sync(tmp_path, emu)
    script = tmp_path / "dies_at_merge.py"
    script.write_text(_DIES_AT_MERGE)
    args = [sys.executable, str(script), *sync.args("--streams", "events")[3:]]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # Killed before the merge: the final table lags, every event waits unmerged in the history
    # (no watermark stored yet), with its state.
    assert sync.query("select count(*) from events") == [(0,)]
    assert sync.query("select count(*) from _airbyte_merged") == [(0,)]
    assert sorted({str(i) for (i,) in sync.query("select id from _airbyte_raw_events")}) == _expected_events(emu)
    assert sync.query("select count(*) from _airbyte_state where stream_name = 'events'") == [(1,)]
    # The next open of the file merges them, whatever it syncs (here another stream only).
    sync.run("--streams", "projects")
    assert sync.ids("events") == _expected_events(emu)  # one row per key
    [(merged, last)] = sync.query("select (select seq from _airbyte_merged where table_name = '_airbyte_raw_events'), "
                                  'max("\x01seq") from _airbyte_raw_events')
    assert merged == last  # the watermark: every history row merged
