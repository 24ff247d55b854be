"""Append + Deduped loads batches into the history and merges its unmerged rows into the final
table later: at the geometric threshold, at COMPLETE, at the end, and when a killed sync's file is
next opened. The final table may lag, but never holds two rows of one key at any committed point."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from dest_helpers import (
    catalog,
    configured_stream,
    event,
    paged,
    query,
    record,
    saved_states,
    state,
    status,
    sync,
    tables,
    unmerged,
)

from source_sentry.destination import DuckDBDestination
from source_sentry.destination.duckdb import MERGE_SLICE

EVENTS = "events"


def _counts(destination: DuckDBDestination) -> tuple[int, int, int]:
    """(final rows, distinct final keys, unmerged rows), read inside the writer's connection."""
    con = destination._con
    final = con.execute('SELECT count(*), count(DISTINCT id) FROM "events"').fetchall()[0]
    (pending,) = con.execute(unmerged(EVENTS, "count(*)")).fetchall()[0]
    return int(final[0]), int(final[1]), int(pending)


def _tombstone_schema_catalog() -> dict:
    schema = {"type": "object", "properties": {"id": {"type": "string"}, "v": {"type": "integer"},
                                               "_ab_cdc_deleted_at": {"type": ["string", "null"], "format": "date-time"}}}
    return catalog(configured_stream(EVENTS, "incremental", "append_dedup", schema=schema, primary_key=[["id"]]))


@pytest.mark.parametrize("merge_slice", [MERGE_SLICE, 7])
def test_a_long_sync_merges_mid_sync_at_the_geometric_threshold(tmp_path, merge_slice):
    """With a floor of 30, batches of 10 new keys are merged when pending reaches max(30, final rows):
    after 30, 60, 120 rows; in between the final table lags and the rows wait in the history."""
    path = tmp_path / "p.duckdb"
    cat = catalog(configured_stream(EVENTS, "incremental", "append_dedup"))
    destination = DuckDBDestination(path, cat, commit_records=1, merge_floor=30, merge_slice=merge_slice)
    destination.write(status(EVENTS, "STARTED"))
    seen = []
    for page in range(14):
        for i in range(10):
            destination.write(record(EVENTS, event(page * 10 + i)))
        destination.write(state(EVENTS, {"page": page}))
        seen.append(_counts(destination))
    merged_at = [rows for rows, keys, pending in seen if pending == 0]
    assert merged_at == [30, 60, 120]
    assert all(rows == keys for rows, keys, _ in seen)
    # Between merges: the final table holds the last merge's rows, the history the rest unmerged.
    assert seen[12] == (120, 120, 10)
    destination.write(status(EVENTS, "COMPLETE"))  # COMPLETE merges what is left
    assert _counts(destination) == (140, 140, 0)
    result = destination.close()
    assert result.streams[EVENTS].rows == 140


@pytest.mark.parametrize("merge_slice", [MERGE_SLICE, 2])  # one slice of keys, or several
def test_the_last_version_wins_across_merges_and_a_tombstone_keeps_the_last_known_row(tmp_path, merge_slice):
    path = tmp_path / "t.duckdb"
    cat = _tombstone_schema_catalog()
    gone = "2024-11-20T00:00:00Z"
    destination = DuckDBDestination(path, cat, commit_records=1, merge_floor=4, merge_slice=merge_slice)
    destination.write(status(EVENTS, "STARTED"))
    pages = [
        [{"id": "a", "v": 1}, {"id": "b", "v": 1}, {"id": "c", "v": 1}, {"id": "d", "v": 1}],  # merged: 4 >= 4
        [{"id": "a", "v": 2}, {"id": "b", "_ab_cdc_deleted_at": gone}],  # b: a tombstone of a merged row
        [{"id": "e", "v": 1}, {"id": "e", "_ab_cdc_deleted_at": gone}],  # e: live then gone, both pending
        [{"id": "f", "_ab_cdc_deleted_at": gone}, {"id": "a", "v": 3}],  # f: never seen live
    ]
    for n, page in enumerate(pages):
        for data in page:
            destination.write(record(EVENTS, data))
        destination.write(state(EVENTS, {"page": n}))
    destination.write(status(EVENTS, "COMPLETE"))
    destination.close()
    rows = query(path, 'SELECT id, v, _ab_cdc_deleted_at IS NOT NULL FROM "events" ORDER BY id')
    assert rows == [("a", 3, False), ("b", 1, True), ("c", 1, False), ("d", 1, False), ("e", 1, True)]
    assert query(path, unmerged(EVENTS, "count(*)")) == [(0,)]
    assert query(path, 'SELECT count(*) FROM "_airbyte_raw_events"') == [(10,)]  # every version, once


def test_overwrite_dedup_merges_its_own_staged_rows_before_the_swap(tmp_path):
    path = tmp_path / "o.duckdb"
    cat = catalog(configured_stream(EVENTS, "full_refresh", "overwrite_dedup", primary_key=[["id"]]))
    destination = DuckDBDestination(path, cat, commit_records=1, merge_floor=5)
    destination.write(status(EVENTS, "STARTED"))
    for page in range(6):
        for i in range(4):
            destination.write(record(EVENTS, event(i, version=page)))
        destination.write(state(EVENTS, {"page": page}))
    destination.write(status(EVENTS, "COMPLETE"))
    destination.close()
    assert query(path, 'SELECT id, size FROM "events" ORDER BY id') == [(str(i), 105) for i in range(4)]
    assert not {"_airbyte_staged_events", "_airbyte_tmp_events"} & tables(path)
    assert query(path, "SELECT count(*) FROM _airbyte_merged") == [(0,)]  # its watermark went with it


def test_a_file_of_the_pending_table_layout_has_its_pending_rows_merged_on_open_then_the_table_dropped(tmp_path):
    """Files written before the history was numbered kept unmerged rows in ``_airbyte_pending_S``
    (each also in an unnumbered history): the next open merges them, drops that table and numbers
    the history from then on; the old history rows are never merged again."""
    path = tmp_path / "old.duckdb"
    cat = _tombstone_schema_catalog()
    sync(path, cat, paged(EVENTS, [{"id": "a", "v": 1}, {"id": "b", "v": 1}], page=2))
    # The old layout, by SQL: no watermark, no order in the history, a pending table with one.
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE _airbyte_merged")
    con.execute('ALTER TABLE "_airbyte_raw_events" DROP COLUMN "\x01seq"')
    con.execute('CREATE TABLE "_airbyte_pending_events" AS SELECT *, 0::BIGINT AS "\x01seq" FROM "events" LIMIT 0')
    waiting = [("a", 2, None), ("c", 1, None), ("b", None, "2024-11-20T00:00:00Z")]  # b: a tombstone
    for seq, (key, v, gone) in enumerate(waiting, 1):
        con.execute(
            'INSERT INTO "_airbyte_pending_events" BY NAME SELECT uuid()::VARCHAR AS _airbyte_raw_id, '
            "now() AS _airbyte_extracted_at, 0 AS _airbyte_generation_id, '{\"changes\":[]}'::JSON AS _airbyte_meta, "
            '? AS id, ? AS v, ?::TIMESTAMPTZ AS _ab_cdc_deleted_at, ? AS "\x01seq"',
            [key, v, gone, (1 << 32) + seq],
        )
    con.execute('INSERT INTO "_airbyte_raw_events" BY NAME SELECT * EXCLUDE ("\x01seq") FROM "_airbyte_pending_events"')
    con.close()

    saved_states(path, catalog(configured_stream("other", "incremental", "append")))  # an open, of any catalog
    assert query(path, 'SELECT id, v, _ab_cdc_deleted_at IS NOT NULL FROM "events" ORDER BY id') == [
        ("a", 2, False), ("b", 1, True), ("c", 1, False)]
    assert "_airbyte_pending_events" not in tables(path)
    assert query(path, unmerged(EVENTS, "count(*)")) == [(0,)]
    # The next sync numbers its rows in the history and merges them; the old ones stay history.
    sync(path, cat, paged(EVENTS, [{"id": "c", "v": 2}, {"id": "d", "v": 1}], page=1))
    assert query(path, 'SELECT id, v, _ab_cdc_deleted_at IS NOT NULL FROM "events" ORDER BY id') == [
        ("a", 2, False), ("b", 1, True), ("c", 2, False), ("d", 1, False)]
    assert query(path, 'SELECT count(*), count("\x01seq") FROM "_airbyte_raw_events"') == [(7, 2)]


# A writer process that SIGKILLs itself at one point (an event in the writer, not a moment):
#   transaction - inside batch KILL's commit, its rows inserted, its state not yet stored;
#   committed   - right after batch KILL's commit returned (its rows may wait unmerged);
#   merge       - inside the first merge from batch KILL on, after it ran, before its COMMIT.
WRITER = r'''
import json, os, signal, sys
from source_sentry.destination import DuckDBDestination

path, catalog, BATCH, IDS, KILL, POINT = sys.argv[1], json.loads(sys.argv[2]), *map(int, sys.argv[3:6]), sys.argv[6]
batch = -1

def die():
    os.kill(os.getpid(), signal.SIGKILL)

class Dying(DuckDBDestination):
    def _store_state(self, stream, state):
        if POINT == "transaction" and state["stream"]["stream_state"]["batch"] == KILL:
            die()
        super()._store_state(stream, state)

    def _merge(self, *args):
        changed = super()._merge(*args)
        if POINT == "merge" and batch >= KILL:
            die()
        return changed

destination = Dying(path, catalog, commit_records=1, merge_floor=25)
start = destination.read_state()
batch = start[0]["stream"]["stream_state"]["batch"] + 1 if start else 0
destination.write({"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": 0.0,
                   "stream_status": {"stream_descriptor": {"name": "events"}, "status": "STARTED"}}})
while True:
    for j in range(BATCH):
        data = {"id": str((batch * 7 + j) % IDS), "version": batch}
        destination.write({"type": "RECORD", "record": {"stream": "events", "data": data, "emitted_at": 1732000000000}})
    destination.write({"type": "STATE", "state": {"type": "STREAM", "stream": {
        "stream_descriptor": {"name": "events"}, "stream_state": {"batch": batch}}}})
    if (batch, POINT) == (KILL, "committed"):
        die()
    batch += 1
'''
BATCH, IDS = 10, 40


def _schema_catalog() -> dict:
    schema = {"type": "object", "properties": {"id": {"type": "string"}, "version": {"type": "integer"}}}
    return catalog(configured_stream(EVENTS, "incremental", "append_dedup", schema=schema, primary_key=[["id"]]))


def _latest(last_batch: int) -> dict[str, int]:
    latest: dict[str, int] = {}
    for b in range(last_batch + 1):
        for j in range(BATCH):
            latest[str((b * 7 + j) % IDS)] = b
    return latest


def _kill(path: Path, cat: dict, tmp_path: Path, kill: int, point: str) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.run([sys.executable, str(script), str(path), json.dumps(cat), str(BATCH), str(IDS), str(kill), point],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, f"the writer was not killed at {point}: {proc.stderr}"


@pytest.mark.parametrize(("point", "kill"), [("committed", 4), ("transaction", 7), ("merge", 5), ("committed", 9), ("merge", 12)])
def test_a_killed_sync_never_leaves_a_key_twice_and_the_next_open_merges_its_pending_rows(tmp_path, point, kill):
    path = tmp_path / "k.duckdb"
    cat = _schema_catalog()
    for attempt in range(2):  # killed twice: the second run first merges what the first left
        _kill(path, cat, tmp_path, kill + 6 * attempt, point)
        # Read as the kill left it (read-only: nothing merges): the last committed state's rows are
        # all there, in the final table or waiting unmerged, and no key is in the final table twice.
        (committed,) = query(path, "SELECT (state->'stream'->'stream_state'->>'batch')::INT FROM _airbyte_state")[0]
        at = kill + 6 * attempt
        # A merge is part of the batch's commit that crossed the threshold: killed in it, that batch is lost.
        assert committed == at if point == "committed" else committed == at - 1 if point == "transaction" else committed >= at - 1
        final = query(path, 'SELECT id, version FROM "events"')
        assert len(final) == len({key for key, _ in final}), "a key twice in the deduped table"
        pending = query(path, unmerged(EVENTS, 'id, arg_max(version, "\x01seq")') + " GROUP BY id")
        assert {**dict(final), **dict(pending)} == _latest(committed)
        assert query(path, 'SELECT count(*) FROM "_airbyte_raw_events"') == [((committed + 1) * BATCH,)]
        if point == "committed" and attempt == 0:
            # Floor 25, 10 rows a batch, 40 keys: merged in batches 2, 5, 9, 13 (max(25, final rows)).
            assert bool(pending) == (kill not in (2, 5, 9, 13))
    # The next open (any catalog) merges them before anything else.
    saved_states(path, catalog(configured_stream("other", "incremental", "append")))
    assert dict(query(path, 'SELECT id, version FROM "events"')) == _latest(committed)
    assert query(path, 'SELECT count(*), count(DISTINCT id) FROM "events"') == [(len(_latest(committed)), len(_latest(committed)))]
    assert query(path, unmerged(EVENTS, "count(*)")) == [(0,)]
