"""SIGKILL at random points of `read` and `sync`, then resume: nothing lost, duplicates bounded.

`read`: the CLI runs under Popen; its stdout is consumed line by line like a platform would, and
it is killed after a seeded random number of lines (sometimes right after a STATE, usually
mid-page between records). The last STATE of each stream seen before the kill is handed to the
next attempt; after the final, uninterrupted attempt the deduplicated records equal the
emulator's, and every duplicate was emitted after the last checkpoint of its attempt.

`sync`: killed once the emulator answered a seeded random number of its requests (every later
request hangs until the kill, so the sync cannot run past that point first, whatever the machine's
speed), resumed from the DuckDB file it left behind.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from reliability_helpers import (
    CORE_STREAMS,
    SEEDS,
    catalog_for,
    config_for,
    data_ids,
    duplicates,
    expected,
    kill_and_resume_read,
    settle,
    tally,
    write_json,
)

# 3 projects x ~35 event pages (10 full events a page), 2 issue pages, 3 release pages; latency so
# kills land mid-stream.
DATASET = {"projects": 3, "events_per_project": 380, "issues_per_project": 40, "releases": 150, "latency_ms": 4}


def _check_resumed(attempts, emu, streams, mode: str = "incremental") -> None:
    final = attempts[-1]
    assert not final.killed and final.returncode == 0
    seen = {s: [r for a in attempts for r in a.committed.get(s, []) + a.uncommitted.get(s, [])] for s in streams}
    # Nothing missing: the union of everything delivered equals the emulator's data.
    assert data_ids(seen, emu) == expected(emu, streams)
    if mode != "incremental":
        return
    for stream in streams:
        committed = [r for a in attempts for r in a.committed.get(stream, [])]
        after_checkpoint = sum(len(a.uncommitted.get(stream, [])) for a in attempts if a.killed)
        # What a destination keeps (records covered by a STATE) has no duplicate at all ...
        assert duplicates(committed) == 0, stream
        # ... and every duplicate delivered was emitted after the last checkpoint of a killed attempt.
        assert duplicates(seen[stream]) <= after_checkpoint, stream


def _read_cases() -> list:
    return [pytest.param(seed, marks=[pytest.mark.slow] if i >= 2 else [], id=str(seed)) for i, seed in enumerate(SEEDS[:14])]


@pytest.mark.parametrize("seed", _read_cases())
def test_read_killed_at_random_lines_resumes_to_exact_data(make_emulator, tmp_path: Path, seed: int) -> None:
    emu = settle(make_emulator(seed=seed, **DATASET))
    rng = random.Random(seed)
    kills = 4 if seed in SEEDS[:2] else 8
    attempts, _ = kill_and_resume_read(tmp_path, emu, CORE_STREAMS, rng, kills=kills, max_lines=900)
    _check_resumed(attempts, emu, CORE_STREAMS)
    for attempt in attempts:
        if attempt.killed:
            last = attempt.messages[-1]
            where = {"STATE": "right after a STATE", "RECORD": "mid-page (after a RECORD)"}.get(last["type"], "after a status/log")
            tally("crash_read", where)
    tally("records_lost", "read-kill", 0)


@pytest.mark.parametrize("kill_at", [2, 25, 101])
def test_read_killed_at_the_very_start_or_inside_the_first_page_resumes(make_emulator, tmp_path: Path, kill_at: int) -> None:
    """Fixed points: before any STATE (line 2: statuses), mid first page (25), right after it (101)."""
    emu = settle(make_emulator(seed=5, projects=2, events_per_project=220, issues_per_project=10, releases=8))

    class Fixed(random.Random):
        def randint(self, a: int, b: int) -> int:
            return kill_at

        def random(self) -> float:
            return 0.99  # never "after a STATE": exactly at the line

    attempts, _ = kill_and_resume_read(tmp_path, emu, ["events", "issues"], Fixed(), kills=1)
    assert attempts[0].killed and attempts[0].lines == kill_at
    _check_resumed(attempts, emu, ["events", "issues"])
    tally("crash_read", "fixed_point")


def test_read_killed_repeatedly_in_full_refresh_loses_nothing(make_emulator, tmp_path: Path) -> None:
    """Full refresh has no state to resume from: every attempt starts over; the last one is complete."""
    emu = settle(make_emulator(seed=9, **DATASET))
    attempts, _ = kill_and_resume_read(tmp_path, emu, CORE_STREAMS, random.Random(9), kills=2, mode="full_refresh")
    _check_resumed(attempts, emu, CORE_STREAMS, mode="full_refresh")
    final = {s: attempts[-1].committed.get(s, []) + attempts[-1].uncommitted.get(s, []) for s in CORE_STREAMS}
    assert data_ids(final, emu) == expected(emu)
    tally("crash_read", "full_refresh", 2)


# ---------------------------------------------------------------- sync into DuckDB


class Sync:
    def __init__(self, tmp_path: Path, emu, catalog: dict | None = None) -> None:
        self.db = str(tmp_path / "sentry.duckdb")
        self.config = write_json(tmp_path / "config.json", config_for(emu, lookback_window_minutes=0))
        self.extra = ["--catalog", write_json(tmp_path / "catalog.json", catalog)] if catalog else []

    def args(self) -> list[str]:
        return [sys.executable, "-m", "source_sentry", "sync", "--config", self.config, "--destination", self.db,
                "--quiet", *self.extra]

    def kill_after_requests(self, emu, n: int) -> bool:
        """Run the sync and SIGKILL it once the emulator answered ``n`` of its requests; False when
        it finished first (it needed no more). Requests after the n-th hang until the kill."""
        emu.clear_faults()
        emu.clear_requests()
        emu.inject_fault("stall", path=".*", times=-1, after=n, seconds=3600)  # stop() ends a stall
        proc = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # The log holds answered requests only (a stalled one is logged when its stall ends).
            while len(emu.requests) < n:
                if proc.poll() is not None:
                    return False
                time.sleep(0.005)  # polls an event; the kill does not depend on how long this takes
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return proc.returncode == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            emu.clear_faults()

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.args(), capture_output=True, text=True, timeout=300)

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(self.db, read_only=True) as con:
            return con.execute(sql).fetchall()


def _table_ids(sync: Sync, emu) -> dict:
    records = {}
    for stream in CORE_STREAMS:
        if stream == "events":
            rows = sync.query('select id, "projectID" from events')
            records[stream] = [{"id": i, "projectID": p} for i, p in rows]
        else:
            records[stream] = [{"id": i} for (i,) in sync.query(f'select id from "{stream}"')]
    return records


def _sync_cases() -> list:
    cases = []
    for i, seed in enumerate(SEEDS[:10]):
        for dest in ("append_dedup", "append"):
            slow = i >= 1
            cases.append(pytest.param(seed, dest, marks=[pytest.mark.slow] if slow else [], id=f"{dest}-{seed}"))
    return cases


@pytest.mark.parametrize(("seed", "destination_mode"), _sync_cases())
def test_sync_killed_after_random_numbers_of_requests_resumes_from_the_database(
    make_emulator, tmp_path: Path, seed: int, destination_mode: str
) -> None:
    emu = settle(make_emulator(seed=seed, **{**DATASET, "events_per_project": 1500}))
    rng = random.Random(seed)
    sync = Sync(tmp_path, emu, catalog_for(CORE_STREAMS, "incremental", destination_mode))
    kills = 0
    for attempt in range(3 if seed == SEEDS[0] else 5):
        # A full sync of this dataset asks about 60 requests; a resumed one fewer.
        if sync.kill_after_requests(emu, rng.randint(1, max(4, 40 >> attempt))):
            kills += 1
            tally("crash_sync", destination_mode)
    assert kills >= 1, "the sync finished before any kill: make the dataset larger"
    done = sync.run()
    assert done.returncode == 0, done.stderr[-2000:]
    tables = _table_ids(sync, emu)
    assert data_ids(tables, emu) == expected(emu)
    # Records and their STATE are committed together: even append tables hold no duplicate.
    for stream, rows in tables.items():
        assert duplicates(rows) == 0, stream
    tally("records_lost", f"sync-kill-{destination_mode}", 0)
