"""Benchmark: records/s that DuckDBDestination writes for synthetic Sentry-event-like records,
and the cost of one deduplicating batch as the table grows.

Not a test. Run: ``.venv/bin/python bench/bench_duckdb_write.py [--records 100000]``.
Each scenario writes into a fresh DuckDB file in a temp directory, records as bytes through
``write_records`` (sync's path); a STATE follows every ``--page`` records: 10 is a page of events
(Sentry's full=true lists hold 10 since 2026-09), 100 a page of the other lists. States are
committed in groups (see ``_COMMIT_BYTES`` in the destination), as in a sync.

``--dedup 10000,100000,1000000``: for each table size, a table of that many rows (and its
history) is made in SQL, then ``--rounds`` batches of ``--batch`` records (half of them new
versions of stored keys, half new keys) are committed one at a time, each timed: Append + Deduped
against Append, the difference being what the dedup costs per batch at that size. Where the
destination merges a pending table (``_merge``), the merge is timed too: a pending table of
max(``MERGE_FLOOR``, size) rows (the geometric threshold; half of them new versions of stored
keys) merged into the table of that size, and that cost spread over the threshold's batches (the
amortised merge per batch). The deduped table is checked for one row per key at the end.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import duckdb
import orjson

from source_sentry.destination import DuckDBDestination

EVENT_SCHEMA = {
    "type": "object",
    "additionalProperties": True,
    "properties": {
        "id": {"type": ["string", "null"]},
        "eventID": {"type": ["string", "null"]},
        "groupID": {"type": ["string", "null"]},
        "title": {"type": ["string", "null"]},
        "message": {"type": ["string", "null"]},
        "platform": {"type": ["string", "null"]},
        "dateCreated": {"type": ["string", "null"], "format": "date-time"},
        "dateReceived": {"type": ["string", "null"], "format": "date-time"},
        "size": {"type": ["integer", "null"]},
        "crashFile": {"type": ["string", "null"]},
        "location": {"type": ["string", "null"]},
        "culprit": {"type": ["string", "null"]},
        "user": {"type": ["object", "null"]},
        "tags": {"type": ["array", "null"]},
        "projectID": {"type": ["string", "null"]},
        "type": {"type": ["string", "null"]},
        "metadata": {"type": ["object", "null"]},
    },
}


def make_records(n: int) -> list[dict]:
    """Event-like records (about 700 bytes of JSON each)."""
    records = []
    for i in range(n):
        records.append(
            {
                "id": str(i),
                "eventID": uuid.uuid4().hex,
                "groupID": str(1000 + i % 500),
                "title": f"TypeError: Cannot read properties of undefined (reading 'x{i % 97}')",
                "message": "Something failed while rendering the dashboard widget",
                "platform": "javascript",
                "dateCreated": f"2024-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
                "dateReceived": f"2024-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 60:02d}Z",
                "size": 1000 + i % 4096,
                "crashFile": None,
                "location": "app/components/widget.tsx",
                "culprit": "renderWidget(app/components/widget)",
                "user": {"id": str(i % 3000), "email": f"user{i % 3000}@example.com", "ip_address": "10.0.0.1"},
                "tags": [
                    {"key": "browser", "value": "Chrome 131"},
                    {"key": "environment", "value": "production"},
                    {"key": "level", "value": "error"},
                ],
                "projectID": "42",
                "type": "error",
                "metadata": {"type": "TypeError", "value": "Cannot read properties of undefined"},
                "event.type": "error",  # not in the schema: a column added on the fly
            }
        )
    return records


def run(records: list[dict], mode: tuple[str, str], page: int, workdir: Path) -> float:
    sync_mode, destination_sync_mode = mode
    catalog = {
        "streams": [
            {
                "stream": {
                    "name": "events",
                    "json_schema": EVENT_SCHEMA,
                    "supported_sync_modes": ["full_refresh", "incremental"],
                    "source_defined_primary_key": [["id"]],
                },
                "sync_mode": sync_mode,
                "destination_sync_mode": destination_sync_mode,
                "primary_key": [["id"]],
            }
        ]
    }
    path = workdir / f"{sync_mode}-{destination_sync_mode}-{page}.duckdb"
    messages: list[dict] = [
        {"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": 0, "stream_status": {"stream_descriptor": {"name": "events"}, "status": "STARTED"}}}
    ]
    data = [orjson.dumps(r) for r in records]
    began = time.perf_counter()
    with DuckDBDestination(path, catalog) as destination:
        destination.write(messages[0])
        for start in range(0, len(data), page):
            destination.write_records("events", data[start : start + page], 1732000000000)
            destination.write(_state(start))
        destination.write(_status("COMPLETE"))
    return time.perf_counter() - began


def _state(cursor: int) -> dict:
    return {"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "events"}, "stream_state": {"cursor": cursor}}}}


def _status(value: str) -> dict:
    return {"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": 0, "stream_status": {"stream_descriptor": {"name": "events"}, "status": value}}}


def _catalog(destination_sync_mode: str) -> dict:
    return {"streams": [{"stream": {"name": "events", "json_schema": EVENT_SCHEMA, "supported_sync_modes": ["incremental"],
                                    "source_defined_primary_key": [["id"]]},
                         "sync_mode": "incremental", "destination_sync_mode": destination_sync_mode, "primary_key": [["id"]]}]}


def batch_seconds(size: int, mode: str, batch: int, rounds: int, workdir: Path) -> list[float]:
    """Seconds per committed batch of ``batch`` records into a table of ``size`` rows."""
    path = workdir / f"dedup-{mode}-{size}.duckdb"
    template = make_records(1)[0]
    destination = DuckDBDestination(path, _catalog(mode), commit_records=1)
    tables = ['"events"', '"_airbyte_raw_events"'] if mode == "append_dedup" else ['"events"']
    for table in tables:  # the stored rows, made in SQL: as a long history of syncs would leave them
        destination._con.execute(
            f"INSERT INTO {table} (_airbyte_raw_id, _airbyte_extracted_at, _airbyte_generation_id, _airbyte_meta, id, "
            "title, \"dateCreated\", size, \"user\") SELECT uuid()::VARCHAR, now(), 0, '{\"changes\":[]}', i::VARCHAR, "
            "'title ' || i, now(), i, '{\"id\":1}' FROM range(?) t(i)",
            [size],
        )
    destination._con.execute("CHECKPOINT")
    destination.write(_status("STARTED"))
    rng = random.Random(size)
    seconds = []
    for n in range(rounds):
        ids = [rng.randrange(size) for _ in range(batch // 2)] + [size + n * batch + k for k in range(batch - batch // 2)]
        data = [orjson.dumps({**template, "id": str(i), "eventID": uuid.uuid4().hex}) for i in ids]
        destination.write_records("events", data, 1732000000000)
        began = time.perf_counter()
        destination.write(_state(n))  # commits the batch, inline: timed to its end
        seconds.append(time.perf_counter() - began)
    destination.close()
    _check_one_row_per_key(path, mode)
    return seconds


def _check_one_row_per_key(path: Path, mode: str) -> None:
    # count(DISTINCT) of 1M keys needs more than the destination's 48 MB: a connection of its own.
    with duckdb.connect(str(path), config={"memory_limit": "1GB"}) as con:
        rows = con.execute('SELECT count(*), count(DISTINCT id) FROM "events"').fetchone()
    assert rows is not None and (mode != "append_dedup" or rows[0] == rows[1]), rows


def merge_seconds(size: int, workdir: Path) -> tuple[int, float] | None:
    """(unmerged rows, seconds) of one merge of the history's unmerged rows at the threshold into a
    table of ``size`` rows; None where the destination merges every batch (no ``_merge``)."""
    if not hasattr(DuckDBDestination, "_merge"):
        return None
    from source_sentry.destination.duckdb import MERGE_FLOOR

    pending = max(MERGE_FLOOR, size)
    path = workdir / f"merge-{size}.duckdb"
    destination = DuckDBDestination(path, _catalog("append_dedup"))
    columns = "_airbyte_raw_id, _airbyte_extracted_at, _airbyte_generation_id, _airbyte_meta, id, title, \"dateCreated\", size, \"user\""
    values = "uuid()::VARCHAR, now(), 0, '{{\"changes\":[]}}', {key}, 'title ' || i, now(), i, '{{\"id\":1}}'"
    for table in ('"events"', '"_airbyte_raw_events"'):
        destination._con.execute(f"INSERT INTO {table} ({columns}) SELECT {values.format(key='i::VARCHAR')} FROM range(?) t(i)", [size])
    # Half new versions of stored keys (some of them twice), half new keys; in order of arrival,
    # numbered above the stored rows (unnumbered: merged) and the watermark (none yet: 0).
    key = f"CASE WHEN i % 2 = 0 THEN (hash(i) % {size})::VARCHAR ELSE ({size} + i)::VARCHAR END"
    destination._con.execute(
        f'INSERT INTO "_airbyte_raw_events" ({columns}, "\x01seq") SELECT {values.format(key=key)}, i + 1 FROM range(?) t(i)',
        [pending],
    )
    destination._con.execute("CHECKPOINT")
    run = destination._runs["events"]
    began = time.perf_counter()
    destination._writer.call(lambda: destination._transaction(
        lambda: destination._merge_history(run.history, run.target, run.columns, run.config.primary_key)))
    seconds = time.perf_counter() - began
    destination.close()
    _check_one_row_per_key(path, "append_dedup")
    return pending, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--dedup", help="table sizes (comma-separated): the cost of one batch at each, instead")
    parser.add_argument("--batch", type=int, default=2000, help="records per batch for --dedup")
    parser.add_argument("--rounds", type=int, default=7, help="batches timed per size for --dedup (median)")
    args = parser.parse_args()
    if args.dedup:
        with tempfile.TemporaryDirectory() as tmp:
            for size in (int(text) for text in args.dedup.split(",")):
                dedup = statistics.median(batch_seconds(size, "append_dedup", args.batch, args.rounds, Path(tmp)))
                append = statistics.median(batch_seconds(size, "append", args.batch, args.rounds, Path(tmp)))
                print(
                    f"table {size:>9,} rows: batch of {args.batch:,}: append+dedup {dedup * 1000:7.1f} ms, "
                    f"append {append * 1000:7.1f} ms, dedup part {(dedup - append) * 1000:7.1f} ms (medians of {args.rounds})",
                    flush=True,
                )
                merged = merge_seconds(size, Path(tmp))
                if merged is not None:
                    pending, seconds = merged
                    print(
                        f"    merge of {pending:,} pending rows: {seconds * 1000:7.1f} ms, "
                        f"amortised {seconds * 1000 * args.batch / pending:5.1f} ms per batch of {args.batch:,}",
                        flush=True,
                    )
        return
    records = make_records(args.records)
    scenarios = [
        (("incremental", "append_dedup"), 10),
        (("incremental", "append_dedup"), 100),
        (("incremental", "append_dedup"), 1000),
        (("incremental", "append"), 10),
        (("incremental", "append"), 100),
        (("full_refresh", "overwrite"), 1000),
        (("full_refresh", "overwrite"), 20_000),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for mode, page in scenarios:
            seconds = run(records, mode, page, Path(tmp))
            print(
                f"{mode[0]:>12} | {mode[1]:<12} state every {page:>6}: "
                f"{args.records / seconds:>9,.0f} records/s ({seconds:.2f} s for {args.records:,})"
            )


if __name__ == "__main__":
    main()
