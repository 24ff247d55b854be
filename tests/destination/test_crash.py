"""SIGKILL a real writer process mid-sync; the reopened file must hold exactly what was committed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dest_helpers import catalog, configured_stream, paged, query, saved_states, sync

BATCH = 10
IDS = 40  # ids repeat across batches, so the deduped table sees many versions of each

WRITER = r'''
import json, sys
from source_sentry.destination import DuckDBDestination

path, catalog = sys.argv[1], json.loads(sys.argv[2])
BATCH, IDS = int(sys.argv[3]), int(sys.argv[4])
destination = DuckDBDestination(path, catalog, commit_records=1)  # every state commits
start = destination.read_state()
b = start[0]["stream"]["stream_state"]["batch"] + 1 if start else 0

def status(name, value):
    return {"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": 0.0,
            "stream_status": {"stream_descriptor": {"name": name}, "status": value}}}

def state(name, value):
    return {"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": name},
            "stream_state": value}, "sourceStats": {"recordCount": float(BATCH)}}}

destination.write(status("events", "STARTED"))
destination.write(status("projects", "STARTED"))
while True:
    for j in range(BATCH):
        data = {"id": str((b * 7 + j) % IDS), "version": b, "dateCreated": "2024-11-19T10:00:00Z"}
        destination.write({"type": "RECORD", "record": {"stream": "events", "data": data, "emitted_at": 1732000000000}})
        destination.write({"type": "RECORD", "record": {"stream": "projects", "data": {"id": f"new{b}-{j}"}, "emitted_at": 1732000000000}})
    destination.write(state("events", {"batch": b}))
    destination.write(state("projects", {"page": b}))
    print(b, flush=True)  # batch b is committed
    b += 1
'''


def _expected(last_batch: int) -> tuple[int, dict[str, int]]:
    """Raw row count and the latest version per id after batches 0..last_batch."""
    latest: dict[str, int] = {}
    for b in range(last_batch + 1):
        for j in range(BATCH):
            latest[str((b * 7 + j) % IDS)] = b
    return (last_batch + 1) * BATCH, latest


def _check(path: Path, cat: dict, at_least: int) -> int:
    states = saved_states(path, cat)  # reopening replays DuckDB's WAL
    (events_state,) = [s for s in states if s["stream"]["stream_descriptor"]["name"] == "events"]
    committed = events_state["stream"]["stream_state"]["batch"]
    assert committed >= at_least
    raw_count, latest = _expected(committed)
    assert query(path, 'SELECT count(*), max(version) FROM "_airbyte_raw_events"') == [(raw_count, committed)]
    final = query(path, 'SELECT id, version FROM "events"')
    assert len(final) == len({i for i, _ in final}), "a key appears twice in the deduped table"
    assert dict(final) == latest
    # The overwrite stream never completed: its previous table is intact.
    assert query(path, 'SELECT count(*), min(id) FROM "projects"') == [(5, "old0")]
    return committed


def _catalog() -> dict:
    schema = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "version": {"type": "integer"}, "dateCreated": {"type": "string", "format": "date-time"}},
    }
    return catalog(
        configured_stream("events", "incremental", "append_dedup", schema=schema, primary_key=[["id"]]),
        configured_stream("projects", "full_refresh", "overwrite", schema={"type": "object", "properties": {"id": {"type": "string"}}}),
    )


def _kill_writer(path: Path, cat: dict, tmp_path: Path, after_batches: int, rng: random.Random) -> int:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), json.dumps(cat), str(BATCH), str(IDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = -1
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            last = int(line)
            if last >= after_batches:
                break
        time.sleep(rng.uniform(0, 0.02))  # land anywhere: mid-buffer, mid-transaction, mid-commit
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    return last


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_mid_sync_resumes_without_loss_or_duplicates(tmp_path, seed):
    rng = random.Random(seed)
    path = tmp_path / "crash.duckdb"
    cat = _catalog()
    # A previous complete sync of the overwrite stream, which the killed syncs must not disturb.
    sync(path, catalog(cat["streams"][1]), paged("projects", [{"id": f"old{i}"} for i in range(5)], page=5))

    confirmed = _kill_writer(path, cat, tmp_path, after_batches=rng.randint(3, 12), rng=rng)
    committed = _check(path, cat, at_least=confirmed)
    # A second killed sync resumes from the stored state and keeps the invariants.
    confirmed = _kill_writer(path, cat, tmp_path, after_batches=committed + rng.randint(2, 6), rng=rng)
    _check(path, cat, at_least=confirmed)
