"""SIGKILL a real writer process mid-sync; the reopened file must hold exactly what was committed.

The writer kills itself at a point named by the test (mid-buffer, inside a commit's transaction,
right after a commit), so each kill lands where it claims, whatever the machine's speed.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from dest_helpers import catalog, configured_stream, paged, query, saved_states, sync

BATCH = 10
IDS = 40  # ids repeat across batches, so the deduped table sees many versions of each

# The writer SIGKILLs itself at one point of one batch, given on its command line:
#   buffer      - after `record` records of the batch were written (buffered, no state yet);
#   transaction - inside the batch's commit: its rows inserted, its state not yet, no COMMIT;
#   committed   - right after the batch's commit returned.
# A point is an event in the writer, not a moment: the same on a fast or a slow machine.
WRITER = r'''
import json, os, signal, sys
from source_sentry.destination import DuckDBDestination

path, catalog = sys.argv[1], json.loads(sys.argv[2])
BATCH, IDS = int(sys.argv[3]), int(sys.argv[4])
KILL_BATCH, POINT, RECORD = int(sys.argv[5]), sys.argv[6], int(sys.argv[7])
# "background": as sync writes: events as bytes (write_records), commits on the writer thread.
BACKGROUND = sys.argv[8] == "background"

def die():
    os.kill(os.getpid(), signal.SIGKILL)

class Dying(DuckDBDestination):
    def _store_state(self, stream, state):
        # Called inside the commit's transaction, after the batch's rows were inserted.
        if POINT == "transaction" and stream == "events" and state["stream"]["stream_state"]["batch"] == KILL_BATCH:
            die()
        super()._store_state(stream, state)

destination = Dying(path, catalog, commit_records=1, background=BACKGROUND)  # every state commits
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
while b <= KILL_BATCH:  # a kill point that never fires ends the writer with exit code 0
    for j in range(BATCH):
        if (b, POINT, j) == (KILL_BATCH, "buffer", RECORD):
            die()
        data = {"id": str((b * 7 + j) % IDS), "version": b, "dateCreated": "2024-11-19T10:00:00Z"}
        if BACKGROUND:
            destination.write_records("events", [json.dumps(data).encode()], 1732000000000)
        else:
            destination.write({"type": "RECORD", "record": {"stream": "events", "data": data, "emitted_at": 1732000000000}})
        destination.write({"type": "RECORD", "record": {"stream": "projects", "data": {"id": f"new{b}-{j}"}, "emitted_at": 1732000000000}})
    destination.write(state("events", {"batch": b}))
    if (b, POINT) == (KILL_BATCH, "committed"):
        die()
    destination.write(state("projects", {"page": b}))
    b += 1
destination.close()  # the background writer may still hold the kill point's batch
'''
KILL_POINTS = ("buffer", "transaction", "committed")


def _expected(last_batch: int) -> tuple[int, dict[str, int]]:
    """Raw row count and the latest version per id after batches 0..last_batch."""
    latest: dict[str, int] = {}
    for b in range(last_batch + 1):
        for j in range(BATCH):
            latest[str((b * 7 + j) % IDS)] = b
    return (last_batch + 1) * BATCH, latest


def _check(path: Path, cat: dict, committed: int) -> None:
    """The file holds batches 0..committed exactly: their rows, their state, nothing of later ones."""
    states = saved_states(path, cat)  # reopening replays DuckDB's WAL
    (events_state,) = [s for s in states if s["stream"]["stream_descriptor"]["name"] == "events"]
    assert events_state["stream"]["stream_state"]["batch"] == committed
    raw_count, latest = _expected(committed)
    assert query(path, 'SELECT count(*), max(version) FROM "_airbyte_raw_events"') == [(raw_count, committed)]
    final = query(path, 'SELECT id, version FROM "events"')
    assert len(final) == len({i for i, _ in final}), "a key appears twice in the deduped table"
    assert dict(final) == latest
    # The overwrite stream never completed: its previous table is intact.
    assert query(path, 'SELECT count(*), min(id) FROM "projects"') == [(5, "old0")]


def _catalog() -> dict:
    schema = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "version": {"type": "integer"}, "dateCreated": {"type": "string", "format": "date-time"}},
    }
    return catalog(
        configured_stream("events", "incremental", "append_dedup", schema=schema, primary_key=[["id"]]),
        configured_stream("projects", "full_refresh", "overwrite", schema={"type": "object", "properties": {"id": {"type": "string"}}}),
    )


def _kill_writer(
    path: Path, cat: dict, tmp_path: Path, batch: int, point: str, record: int, mode: str = "inline"
) -> int:
    """Run the writer until it kills itself at ``point`` of ``batch``; the last batch it committed
    (inline: known from the point; background: what the file says, see the test)."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.run(
        [sys.executable, str(script), str(path), json.dumps(cat), str(BATCH), str(IDS), str(batch), point, str(record), mode],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -signal.SIGKILL, f"the writer was not killed at {point}: {proc.stderr}"
    if mode == "background" and point != "transaction":
        # The reader ran ahead of the writer thread: the batches still queued at the kill (two at
        # most, and the one being handed over) are lost, never half-written.
        (events_state,) = [s for s in saved_states(path, cat) if s["stream"]["stream_descriptor"]["name"] == "events"]
        stored = int(events_state["stream"]["stream_state"]["batch"])
        assert batch - 4 <= stored <= batch
        return stored
    return batch if point == "committed" else batch - 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_mid_sync_resumes_without_loss_or_duplicates(tmp_path, seed):
    """Killed twice, at two of the three kill points (all three across the seeds), at seeded batches."""
    rng = random.Random(seed)
    path = tmp_path / "crash.duckdb"
    cat = _catalog()
    # A previous complete sync of the overwrite stream, which the killed syncs must not disturb.
    sync(path, catalog(cat["streams"][1]), paged("projects", [{"id": f"old{i}"} for i in range(5)], page=5))

    first, second = KILL_POINTS[seed], KILL_POINTS[(seed + 1) % len(KILL_POINTS)]
    committed = _kill_writer(path, cat, tmp_path, rng.randint(3, 12), first, rng.randrange(BATCH))
    _check(path, cat, committed)
    # A second killed sync resumes from the stored state and keeps the invariants.
    committed = _kill_writer(path, cat, tmp_path, committed + rng.randint(2, 6), second, rng.randrange(BATCH))
    _check(path, cat, committed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_with_the_background_writer_resumes_exactly(tmp_path, seed):
    """As sync writes (bytes, commits on the writer thread): a kill anywhere leaves the last state's
    batches exactly, and the next (killed) sync resumes from it without loss or duplicates."""
    rng = random.Random(seed)
    path = tmp_path / "crash.duckdb"
    cat = _catalog()
    sync(path, catalog(cat["streams"][1]), paged("projects", [{"id": f"old{i}"} for i in range(5)], page=5))

    first, second = KILL_POINTS[seed], KILL_POINTS[(seed + 1) % len(KILL_POINTS)]
    committed = _kill_writer(path, cat, tmp_path, rng.randint(5, 12), first, rng.randrange(BATCH), "background")
    _check(path, cat, committed)
    committed = _kill_writer(path, cat, tmp_path, committed + rng.randint(5, 8), second, rng.randrange(BATCH), "background")
    _check(path, cat, committed)
