"""Message and catalog builders shared by the destination tests (real DuckDB files, no mocks)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

from source_sentry.destination import DuckDBDestination, SyncResult

EMITTED_AT = 1732000000123  # 2024-11-19T07:06:40.123Z

EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": True,
    "properties": {
        "id": {"type": ["string", "null"]},
        "title": {"type": ["string", "null"]},
        "dateCreated": {"type": ["string", "null"], "format": "date-time"},
        "size": {"type": ["integer", "null"]},
        "score": {"type": ["number", "null"]},
        "handled": {"type": ["boolean", "null"]},
        "user": {"type": ["object", "null"], "properties": {"id": {"type": ["string", "null"]}}},
        "tags": {"type": ["array", "null"]},
        "context": {},
    },
}


def configured_stream(
    name: str,
    sync_mode: str,
    destination_sync_mode: str,
    *,
    schema: dict[str, Any] | None = None,
    primary_key: list[list[str]] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "stream": {
            "name": name,
            "json_schema": schema if schema is not None else EVENT_SCHEMA,
            "supported_sync_modes": ["full_refresh", "incremental"],
            "source_defined_primary_key": [["id"]],
            "default_cursor_field": ["dateCreated"],
        },
        "sync_mode": sync_mode,
        "destination_sync_mode": destination_sync_mode,
    }
    if primary_key is not None:
        entry["primary_key"] = primary_key
    if sync_mode == "incremental":
        entry["cursor_field"] = ["dateCreated"]
    return entry


def catalog(*streams: dict[str, Any]) -> dict[str, Any]:
    return {"streams": list(streams)}


def record(stream: str, data: dict[str, Any], emitted_at: int = EMITTED_AT) -> dict[str, Any]:
    return {"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": emitted_at}}


def state(stream: str, stream_state: dict[str, Any], count: float = 1.0) -> dict[str, Any]:
    return {
        "type": "STATE",
        "state": {
            "type": "STREAM",
            "stream": {"stream_descriptor": {"name": stream}, "stream_state": stream_state},
            "sourceStats": {"recordCount": count},
        },
    }


def status(stream: str, value: str) -> dict[str, Any]:
    return {
        "type": "TRACE",
        "trace": {
            "type": "STREAM_STATUS",
            "emitted_at": float(EMITTED_AT),
            "stream_status": {"stream_descriptor": {"name": stream}, "status": value},
        },
    }


def error(stream: str | None, message: str = "boom") -> dict[str, Any]:
    err: dict[str, Any] = {"message": message, "failure_type": "transient_error"}
    if stream is not None:
        err["stream_descriptor"] = {"name": stream}
    return {"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": float(EMITTED_AT), "error": err}}


def event(i: int, version: int = 0, **extra: Any) -> dict[str, Any]:
    data = {
        "id": str(i),
        "title": f"Error {i} v{version}",
        "dateCreated": f"2024-11-{1 + i % 28:02d}T10:00:{i % 60:02d}Z",
        "size": 100 + version,
        "score": i / 2,
        "handled": i % 2 == 0,
        "user": {"id": f"u{i}"},
        "tags": [{"key": "level", "value": "error"}],
        "context": {"v": version},
    }
    data.update(extra)
    return data


def sync(path: Path, configured: dict[str, Any], messages: Iterable[dict[str, Any]]) -> SyncResult:
    """One sync: a new destination on ``path``, every message, close() (abort() if one raises)."""
    destination = DuckDBDestination(path, configured)
    try:
        for message in messages:
            destination.write(message)
    except BaseException:
        destination.abort()
        raise
    return destination.close()


def saved_states(path: Path, configured: dict[str, Any]) -> list[dict[str, Any]]:
    destination = DuckDBDestination(path, configured)
    try:
        return destination.read_state()
    finally:
        destination.abort()  # nothing written: abort only closes


def paged(stream: str, records: list[dict[str, Any]], page: int, *, start_cursor: int = 0) -> list[dict[str, Any]]:
    """STARTED, records with a STATE after every ``page`` of them, COMPLETE."""
    messages = [status(stream, "STARTED")]
    for n, first in enumerate(range(0, len(records), page)):
        chunk = records[first : first + page]
        messages += [record(stream, r) for r in chunk]
        messages.append(state(stream, {"cursor": start_cursor + n}, float(len(chunk))))
    messages.append(status(stream, "COMPLETE"))
    return messages


def query(path: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def table_columns(path: Path, table: str) -> dict[str, str]:
    rows = query(
        path,
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
        [table],
    )
    return dict(rows)


def tables(path: Path) -> set[str]:
    return {name for (name,) in query(path, "SELECT table_name FROM duckdb_tables()")}


def unmerged(stream: str, select: str = "*") -> str:
    """SQL selecting ``select`` over the history rows of a deduped ``stream`` not merged yet (numbered
    above the watermark the last merge stored)."""
    history = f"_airbyte_raw_{stream}"
    return (
        f'SELECT {select} FROM "{history}" WHERE "\x01seq" > '
        f"(SELECT coalesce(max(seq), 0) FROM _airbyte_merged WHERE table_name = '{history}')"
    )
