"""Benchmark: records/s that DuckDBDestination writes for synthetic Sentry-event-like records.

Not a test. Run: ``.venv/bin/python bench/bench_duckdb_write.py [--records 100000]``.
Each scenario writes into a fresh DuckDB file in a temp directory; a STATE follows every
``--page`` records, so each page is one transaction: 10 is a page of events (Sentry's full=true
lists hold 10 since 2026-09), 100 a page of the other lists.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

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
    for start in range(0, len(records), page):
        for data in records[start : start + page]:
            messages.append({"type": "RECORD", "record": {"stream": "events", "data": data, "emitted_at": 1732000000000}})
        messages.append(
            {"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "events"}, "stream_state": {"cursor": start}}, "sourceStats": {"recordCount": float(page)}}}
        )
    messages.append(
        {"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": 0, "stream_status": {"stream_descriptor": {"name": "events"}, "status": "COMPLETE"}}}
    )
    began = time.perf_counter()
    with DuckDBDestination(path, catalog) as destination:
        for message in messages:
            destination.write(message)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
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
