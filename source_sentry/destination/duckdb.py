"""The embedded destination: Airbyte protocol messages in, typed DuckDB tables out.

Tables (per stream ``S``; every identifier quoted, so any stream or field name works):

- ``S``: the stream's table. Append modes add to it; Append + Deduped keeps the latest version of
  each primary key; overwrite modes replace it by swapping in the staging table.
- ``_airbyte_raw_S``: Append + Deduped only, every record version (history).
- ``_airbyte_tmp_S``: overwrite modes only, this sync's rows until the stream COMPLETEs.
- ``_airbyte_state``: one stored STATE per incremental stream, for the next sync.
- ``_airbyte_columns``: which record field lives in which column (a field DuckDB or a person
  could not use as a name, ``""`` for one, or two differing only by case, get another name: see
  ``columns``; so the mapping has to be remembered).

Transactions: a stream's records are buffered in memory and written when a STATE of that stream
arrives, in ONE transaction with the state row (and the dedup upsert, and any new columns). A
killed sync therefore resumes from its last committed state with nothing lost or duplicated in
the deduped table. Records of a stream that ends INCOMPLETE or with an ERROR after its last
state are dropped; records after the last state of a stream that COMPLETEs are kept.

Loading: records are cast in Python (see ``columns``), written as one JSON array file per batch with
positional keys, and inserted with ``INSERT ... SELECT FROM read_json(...)`` (the fastest of the
dependency-free paths measured: see ``bench/bench_duckdb_write.py``). Any value a JSON parser
hands over is written, never failing the sync: what orjson refuses (a lone surrogate, replaced by
U+FFFD and noted in ``_airbyte_meta``; an integer beyond 64 bits; deep nesting) is encoded row by
row, a batch deeper than read_json's 128 levels goes again with its JSON as text, and one whose
object outgrows the memory cap goes again with more memory.

Opening: a path that cannot be a database this process writes raises ``DestinationError`` with
one sentence saying what to do (see ``errors``).
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import duckdb
import orjson

from ..catalog import ConfiguredStream
from ..errors import redact_bytes
from .catalog import destination_streams, expiring_overwrite_warning
from .columns import (
    JSON,
    META_COLUMNS,
    SERIALIZATION_ERROR,
    TIMESTAMPTZ,
    VARCHAR,
    Column,
    ColumnSet,
    column_type_for_schema,
    column_type_for_value,
    encode_value,
    quote_ident,
    quote_literal,
)
from .errors import check_path, connect_error, not_duckdb

__all__ = ["BUFFER_LIMIT", "DuckDBDestination", "StreamResult", "SyncResult", "connect_database"]

# Records buffered per stream before they are written without waiting for a state.
BUFFER_LIMIT = 20_000
_MEMORY_LIMIT = "128MB"
# States are committed in groups: at least this many records, or this long since the last commit.
_COMMIT_RECORDS = 2000
_COMMIT_SECONDS = 2.0

STATE_TABLE = "_airbyte_state"
COLUMNS_TABLE = "_airbyte_columns"
RAW_PREFIX = "_airbyte_raw_"
TMP_PREFIX = "_airbyte_tmp_"

# read_json refuses larger objects by default (16 MB); a Sentry event with big stack traces and
# breadcrumbs can get close, so allow up to 512 MB per record.
_EMPTY_META = '{"changes":[]}'

_SCHEMA_DDL = (
    f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} ("
    "stream_name VARCHAR PRIMARY KEY, state JSON, updated_at TIMESTAMPTZ)",
    f"CREATE TABLE IF NOT EXISTS {COLUMNS_TABLE} ("
    "stream_name VARCHAR, field_name VARCHAR, column_name VARCHAR, column_type VARCHAR, "
    "position INTEGER, PRIMARY KEY (stream_name, field_name))",
)


def connect_database(path: str) -> duckdb.DuckDBPyConnection:
    """Open (or create) the database file, or raise a DestinationError saying what to fix."""
    check_path(path)
    try:
        # DuckDB's buffer pool defaults to 80% of RAM and grows with the file: cap it so a
        # sync's memory stays flat however large the tables get (DuckDB spills to disk).
        con = duckdb.connect(path, config={"memory_limit": _MEMORY_LIMIT, "preserve_insertion_order": False})
    except duckdb.Error as exc:
        raise connect_error(path, exc) from None
    # Given an existing .json, .csv or .parquet file that is not a database, DuckDB opens an
    # in-memory database instead, without a word: the whole sync would vanish at exit.
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    if not path.startswith(":memory:") and (row is None or row[0] is None):
        con.close()
        raise not_duckdb(path)
    return con


@dataclass
class StreamResult:
    """What one sync did to one stream."""

    name: str
    sync_mode: str
    destination_sync_mode: str
    status: str = "PENDING"  # PENDING | STARTED | COMPLETE | INCOMPLETE
    records_received: int = 0
    records_committed: int = 0
    records_dropped: int = 0
    rows: int | None = None  # rows in the stream's table after the sync (None: no table)


@dataclass
class SyncResult:
    """Per-stream results of one sync, plus the warnings and stream errors seen."""

    streams: dict[str, StreamResult]
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and all(s.status == "COMPLETE" for s in self.streams.values())


class _Run:
    """One stream during this sync: its config, columns, buffer and progress."""

    def __init__(self, config: ConfiguredStream, columns: ColumnSet, generation: int) -> None:
        self.config = config
        self.columns = columns
        self.generation = generation
        self.buffer: list[tuple[dict[str, Any], Any]] = []
        self.staging_ready = False
        self.swapped = False
        self.warned_buffer = False
        self.warned_late = False
        # The newest state received but not yet committed, and how many buffered records it covers.
        self.pending_state: dict[str, Any] | None = None
        self.pending_upto = 0
        self.last_commit = time.monotonic()
        self.result = StreamResult(config.name, config.sync_mode, config.destination_sync_mode)

    @property
    def final(self) -> str:
        return self.config.name

    @property
    def raw(self) -> str:
        return RAW_PREFIX + self.config.name

    @property
    def staging(self) -> str:
        return TMP_PREFIX + self.config.name

    @property
    def tables(self) -> tuple[str, ...]:
        """Every table this stream may own (existing or not)."""
        return (self.final, self.raw, self.staging)

    @property
    def closed(self) -> bool:
        return self.result.status in ("COMPLETE", "INCOMPLETE")


class DuckDBDestination:
    """Writes one sync's Airbyte messages for ``configured_catalog`` into the DuckDB file ``path``.

    Use as a context manager (``close()`` on success, ``abort()`` on an exception), or call
    :meth:`write` per message then :meth:`close` / :meth:`abort`. Thread-safe: every public
    method holds one lock, so concurrent stream readers may share the sink.

    Raises :class:`DestinationError` when ``path`` cannot be used (a directory, a missing
    directory, no permission, locked by another process, not a DuckDB file) and ConfigError for a
    catalog it cannot apply. ``expiring_streams``: streams whose source forgets old records (Sentry's
    retention); each of them configured Full Refresh | Overwrite gets a warning that the overwrite
    deletes what the source no longer has. ``lock``: the lock of another writer of the same file in
    this process to share (its commits and ours then never interleave).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        configured_catalog: dict[str, Any],
        *,
        on_warning: Callable[[str], None] | None = None,
        expiring_streams: Collection[str] = (),
        buffer_limit: int = BUFFER_LIMIT,
        commit_records: int = _COMMIT_RECORDS,
        commit_seconds: float = _COMMIT_SECONDS,
        lock: threading.RLock | None = None,
    ) -> None:
        self._commit_records = commit_records
        self._commit_seconds = commit_seconds
        self.configs = destination_streams(configured_catalog)
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self._on_warning = on_warning
        self._buffer_limit = buffer_limit
        # Shared by the writers of one file in one process (``listen``: a sync and webhooks), so
        # their commits never interleave.
        self._lock = lock if lock is not None else threading.RLock()
        self._closed = False
        self._unknown_streams: set[str] = set()
        self._batch_bytes = 0  # size of the last batch file written
        self._con = connect_database(os.fspath(path))
        fd, self._batch_path = tempfile.mkstemp(prefix="source-sentry-", suffix=".json")
        os.close(fd)
        try:
            self._transaction(lambda: [self._con.execute(sql) for sql in _SCHEMA_DDL])
            self._runs = {name: self._open_stream(config) for name, config in self.configs.items()}
            for run in self._runs.values():
                if run.config.name in expiring_streams and run.config.overwrite:
                    self._warn(expiring_overwrite_warning(run.config.name))
        except BaseException:
            self._con.close()
            os.unlink(self._batch_path)
            raise

    # ---------------------------------------------------------------- public API

    def read_state(self) -> list[dict[str, Any]]:
        """Stored states of this catalog's incremental streams, as AirbyteStateMessage dicts
        (``{"type": "STREAM", "stream": {...}}``): the list ``read --state`` takes."""
        with self._lock:
            rows = self._con.execute(f"SELECT stream_name, state FROM {STATE_TABLE} ORDER BY 1").fetchall()
        wanted = {name for name, config in self.configs.items() if config.keeps_state}
        return [orjson.loads(state) for name, state in rows if name in wanted]

    def reset_state(self, streams: Iterable[str] | None = None) -> None:
        """Forget the stored state of ``streams`` (None: every stream of the catalog), so the next
        incremental read starts over: the way to force a full re-read without an overwrite."""
        names = list(self.configs if streams is None else streams)
        with self._lock:
            self._transaction(
                lambda: [
                    self._con.execute(f"DELETE FROM {STATE_TABLE} WHERE stream_name = ?", [name])
                    for name in names
                ]
            )

    def write(self, message: dict[str, Any]) -> None:
        """The sink: take one Airbyte message (a dict, as it would be printed on stdout)."""
        kind = message.get("type")
        with self._lock:
            if self._closed:
                raise RuntimeError("DuckDBDestination is closed")
            if kind == "RECORD":
                self._on_record(message["record"])
            elif kind == "STATE":
                self._on_state(message["state"])
            elif kind == "TRACE":
                self._on_trace(message["trace"])
            # LOG, CONTROL and the rest do not touch the database.

    def close(self) -> SyncResult:
        """Finish the sync: write what COMPLETEd streams still buffer, drop the staging of streams
        that did not complete, drop other uncommitted records, and report per-stream counts."""
        with self._lock:
            if self._closed:
                raise RuntimeError("DuckDBDestination is closed")
            try:
                for run in self._runs.values():
                    if run.result.status == "COMPLETE":
                        self._finish(run)  # normally done when COMPLETE arrived
                    else:
                        self._flush_pending(run)
                        self._drop_buffer(run)
                        self._drop_staging(run)
                        if run.result.status == "STARTED":
                            run.result.status = "INCOMPLETE"
                for run in self._runs.values():
                    run.result.rows = self._count_rows(run.final)
                return SyncResult(
                    {name: run.result for name, run in self._runs.items()},
                    list(self.warnings),
                    list(self.errors),
                )
            finally:
                self._shutdown()

    def abort(self) -> None:
        """Give up: drop uncommitted buffers and staging tables. Committed rows and states stay,
        and the tables of overwrite streams that did not complete are left as they were."""
        with self._lock:
            if self._closed:
                return
            try:
                for run in self._runs.values():
                    self._flush_pending(run)  # what a received state covers is good data
                    self._drop_buffer(run)
                    if run.result.status != "COMPLETE":
                        self._drop_staging(run)
            except duckdb.Error:
                pass  # the previous tables are untouched either way; staging is recreated next time
            finally:
                self._shutdown()

    def __enter__(self) -> DuckDBDestination:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # ---------------------------------------------------------------- messages

    def _run_for(self, name: Any) -> _Run | None:
        run = self._runs.get(name)
        if run is None and name not in self._unknown_streams:
            self._unknown_streams.add(name)
            self._warn(f"ignoring messages of stream {name!r}: it is not in the configured catalog")
        return run

    def _on_record(self, record: dict[str, Any]) -> None:
        run = self._run_for(record.get("stream"))
        if run is None:
            return
        if run.closed:
            # After INCOMPLETE the stream's data is not trusted; after COMPLETE (and, for overwrite,
            # the swap) there is nowhere consistent to put it. Either way the reader misbehaved.
            run.result.records_dropped += 1
            if run.result.status == "COMPLETE" and not run.warned_late:
                run.warned_late = True
                self._warn(f"stream {run.config.name!r}: dropping records received after COMPLETE")
            return
        self._start(run)
        run.buffer.append((record.get("data") or {}, record.get("emitted_at")))
        run.result.records_received += 1
        if len(run.buffer) >= self._buffer_limit:
            self._flush_pending(run)
        if len(run.buffer) >= self._buffer_limit:
            if not run.warned_buffer:
                run.warned_buffer = True
                self._warn(
                    f"stream {run.config.name!r}: {len(run.buffer)} records without a state; "
                    "writing them without one (a resumed sync may append them again)"
                )
            self._commit(run, None)

    def _on_state(self, state: dict[str, Any]) -> None:
        if state.get("type", "STREAM") != "STREAM":
            self._warn(f"ignoring a {state.get('type')} state: only per-stream states are supported")
            return
        stream = state.get("stream") or {}
        run = self._run_for((stream.get("stream_descriptor") or {}).get("name"))
        if run is None or run.result.status == "INCOMPLETE":
            return
        self._start(run)
        # Stored without sourceStats: the stored message is what the next `read --state` takes.
        run.pending_state = {"type": "STREAM", "stream": stream}
        run.pending_upto = len(run.buffer)
        # One transaction per state costs ~30 ms: group states, a few thousand records or a few
        # seconds at a time. A crash loses only the uncommitted group, resumed from the last
        # committed state (records and state are still committed together).
        if len(run.buffer) >= self._commit_records or time.monotonic() - run.last_commit >= self._commit_seconds:
            self._flush_pending(run)

    def _flush_pending(self, run: _Run) -> None:
        """Commit the records the newest received state covers, together with that state."""
        if run.pending_state is None:
            return
        rest = run.buffer[run.pending_upto :]
        run.buffer = run.buffer[: run.pending_upto]
        try:
            self._commit(run, run.pending_state)
        finally:
            run.buffer = run.buffer + rest  # empty covered part after a successful commit
        run.pending_state = None
        run.pending_upto = 0
        run.last_commit = time.monotonic()

    def _on_trace(self, trace: dict[str, Any]) -> None:
        if trace.get("type") == "STREAM_STATUS":
            status = trace.get("stream_status") or {}
            run = self._run_for((status.get("stream_descriptor") or {}).get("name"))
            if run is None:
                return
            value = status.get("status")
            if value == "STARTED":
                self._start(run)
            elif value == "COMPLETE" and run.result.status != "INCOMPLETE":
                self._start(run)
                run.result.status = "COMPLETE"
                self._finish(run)
            elif value == "INCOMPLETE":
                self._fail(run)
        elif trace.get("type") == "ERROR":
            error = trace.get("error") or {}
            descriptor = error.get("stream_descriptor") or {}
            name = descriptor.get("name")
            self.errors.append(f"{name}: {error.get('message')}" if name else str(error.get("message")))
            if name is not None:
                run = self._run_for(name)
                if run is not None:
                    self._fail(run)

    # ---------------------------------------------------------------- stream lifecycle

    def _open_stream(self, config: ConfiguredStream) -> _Run:
        """Load the stream's column mapping, merge its schema, create its append tables."""
        rows = self._con.execute(
            f"SELECT field_name, column_name, column_type FROM {COLUMNS_TABLE} "
            "WHERE stream_name = ? ORDER BY position",
            [config.name],
        ).fetchall()
        stored = ColumnSet(Column(f, n, t) for f, n, t in rows)
        columns = stored.copy()
        properties = config.json_schema.get("properties") or {}
        for name, schema in properties.items():
            if columns.get(name) is None:
                columns.add(name, column_type_for_schema(schema))
        # Primary-key fields must be columns even if the schema forgot them.
        for path in config.primary_key:
            if columns.get(path[0]) is None:
                columns.add(path[0], VARCHAR if len(path) == 1 else JSON)

        previous = self._max_generation(config.name)
        generation = (0 if previous is None else previous + 1) if config.sync_mode == "full_refresh" else previous or 0
        run = _Run(config, columns, generation)

        def create() -> None:
            self._insert_column_rows(config.name, run.columns, len(stored))
            if not config.overwrite:
                self._ensure_table(run, run.final)
            if config.dedup and not config.overwrite:
                self._ensure_table(run, run.raw)

        self._transaction(create)
        return run

    def _start(self, run: _Run) -> None:
        """Mark the stream started; for overwrite, create its empty staging table once per sync."""
        if run.result.status == "PENDING":
            run.result.status = "STARTED"
        if run.config.overwrite and not run.staging_ready:

            def recreate() -> None:
                self._con.execute(f"DROP TABLE IF EXISTS {quote_ident(run.staging)}")
                self._ensure_table(run, run.staging)

            self._transaction(recreate)
            run.staging_ready = True

    def _finish(self, run: _Run) -> None:
        """The stream COMPLETEd: commit what is left and, for overwrite, swap the staging table in
        (DROP old + RENAME, in the same transaction, so readers see the old or the new table)."""
        self._flush_pending(run)
        if run.config.overwrite and not run.swapped:
            self._commit(run, None, swap=True)
            run.swapped = True
        elif run.buffer:
            self._commit(run, None)

    def _fail(self, run: _Run) -> None:
        """The stream ended INCOMPLETE or with an error: keep what states cover, drop the rest."""
        if run.result.status != "INCOMPLETE":
            self._flush_pending(run)
        run.result.status = "INCOMPLETE"
        self._drop_buffer(run)

    def _drop_buffer(self, run: _Run) -> None:
        run.result.records_dropped += len(run.buffer)
        run.buffer = []

    def _drop_staging(self, run: _Run) -> None:
        if run.config.overwrite and run.staging_ready and not run.swapped:
            self._transaction(lambda: self._con.execute(f"DROP TABLE IF EXISTS {quote_ident(run.staging)}"))

    # ---------------------------------------------------------------- the write transaction

    def _commit(self, run: _Run, state: dict[str, Any] | None, *, swap: bool = False) -> None:
        """Write the stream's buffer, its state (if kept) and, with ``swap``, replace its table:
        all in one transaction. The buffer is cleared only once the commit succeeded."""
        records = run.buffer
        columns = run.columns.copy()
        added_from = len(columns)
        for data, _ in records:
            for name, value in data.items():
                if value is not None and columns.get(name) is None:
                    columns.add(name, column_type_for_value(value))
        store_state = state is not None and run.config.keeps_state

        if not records and not store_state and not swap:
            return

        json_as_text = False

        def body() -> None:
            if len(columns) > added_from:
                self._add_columns(run, columns, added_from)
            if records:
                self._load(run, columns, records, json_as_text=json_as_text)
            if store_state:
                self._store_state(run.config.name, state)
            if swap:
                self._con.execute(f"DROP TABLE IF EXISTS {quote_ident(run.final)}")
                self._con.execute(f"ALTER TABLE {quote_ident(run.staging)} RENAME TO {quote_ident(run.final)}")
                # The table now holds this full refresh; an older incremental cursor no longer
                # describes it, so the next incremental sync starts over (a full refresh always does).
                self._con.execute(f"DELETE FROM {STATE_TABLE} WHERE stream_name = ?", [run.config.name])

        raised_memory = False
        try:
            while True:
                try:
                    self._transaction(body)
                    break
                except duckdb.InvalidInputException as exc:
                    if json_as_text or "maximum recursion depth" not in str(exc):
                        raise
                    # read_json parses 128 levels at most: the rolled-back batch goes again with its
                    # JSON values as text, which DuckDB's cast to JSON takes at any depth (rare, slower).
                    json_as_text = True
                except duckdb.OutOfMemoryException:
                    if raised_memory:
                        raise
                    # read_json's buffer for one object of ~10 MB or more outgrows the usual cap:
                    # allow this batch what it needs (a few times its largest object, measured;
                    # 8 times the whole batch is more), then cap again.
                    raised_memory = True
                    limit_mb = max(256, 8 * self._batch_bytes >> 20)
                    self._con.execute(f"SET memory_limit = '{limit_mb}MB'")
        finally:
            if raised_memory:
                self._con.execute(f"SET memory_limit = '{_MEMORY_LIMIT}'")
        run.columns = columns
        run.buffer = []
        run.result.records_committed += len(records)

    def _store_state(self, stream: str, state: dict[str, Any] | None) -> None:
        # UPDATE is about twice as fast as INSERT OR REPLACE on the primary key, and this runs
        # once per page: insert only the first time a stream gets a state.
        text = _redact_json(orjson.dumps(state)).decode()
        updated = self._con.execute(
            f"UPDATE {STATE_TABLE} SET state = ?::JSON, updated_at = now() WHERE stream_name = ?",
            [text, stream],
        ).fetchone()
        if not updated or not updated[0]:
            self._con.execute(f"INSERT INTO {STATE_TABLE} VALUES (?, ?::JSON, now())", [stream, text])

    def _load(
        self, run: _Run, columns: ColumnSet, records: list[tuple[dict[str, Any], Any]], *, json_as_text: bool = False
    ) -> None:
        """Insert ``records`` into the stream's target table(s) (inside the caller's transaction).

        ``json_as_text``: JSON columns travel as JSON text in a string, cast by DuckDB (any depth).
        """
        config = run.config
        keys = {column.field: f"c{i}" for i, column in enumerate(columns)}
        fields = {key: field for field, key in keys.items()}
        rows = []
        extracted_ms: Any = object()
        extracted_iso = ""
        for data, emitted_at in records:
            if emitted_at != extracted_ms:  # records of one page share emitted_at: convert once
                extracted_ms, extracted_iso = emitted_at, _ms_to_iso(emitted_at)
            row: dict[str, Any] = {"_e": extracted_iso}
            changes = columns.cast_record(data, keys, row)
            if changes:
                row["_m"] = {"changes": changes}
            rows.append(row)
        if config.dedup:
            # Last received wins: mark each key's last row in the batch (in Python, cheaper than a
            # window function), and give rows their ids here so raw and final rows share them.
            latest: dict[tuple[Any, ...], dict[str, Any]] = {}
            deleted_key = keys.get(DELETED_AT)
            for row in rows:
                row["_r"] = str(uuid.uuid4())
                latest[tuple(_key_value(row, keys, columns, path) for path in config.primary_key)] = row
            for row in latest.values():
                if deleted_key is not None and row.get(deleted_key) is not None:
                    row["_t"] = True  # a tombstone: flag the kept row instead of replacing it
                else:
                    row["_l"] = True
        if json_as_text:  # after the dedup marks, which read the values
            json_keys = [keys[column.field] for column in columns if column.type == JSON]
            for row in rows:
                _json_values_as_text(row, json_keys, fields)
        # One dumps of the whole array: 100k small dumps cost several times more (allocation).
        with open(self._batch_path, "wb") as out:
            # A server may echo the token inside a record: it must not reach the file.
            payload = _redact_json(_dump_rows(rows, fields))
            out.write(payload)
        self._batch_bytes = len(payload)
        # DuckDB sizes its read buffer by maximum_object_size: just what this batch needs.
        object_size = max(len(payload) + 1024, 1 << 20)

        spec = {"_e": "VARCHAR", "_m": "JSON", "_r": "VARCHAR", "_l": "BOOLEAN", "_t": "BOOLEAN"}
        select = [
            ("_r" if config.dedup else "gen_random_uuid()::VARCHAR") + ' AS "_airbyte_raw_id"',
            'CAST(_e AS TIMESTAMPTZ) AS "_airbyte_extracted_at"',
            f'{int(run.generation)}::BIGINT AS "_airbyte_generation_id"',
            f"COALESCE(_m, {quote_literal(_EMPTY_META)}::JSON) AS \"_airbyte_meta\"",
        ]
        for column in columns:
            key = keys[column.field]
            # Timestamps travel as ISO text with an offset; DuckDB casts them exactly.
            as_text = column.type == TIMESTAMPTZ or (json_as_text and column.type == JSON)
            spec[key] = VARCHAR if as_text else column.type
            select.append(f"CAST({key} AS {column.type}) AS {quote_ident(column.name)}")
        spec_sql = "{" + ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in spec.items()) + "}"
        source = (
            f"read_json({quote_literal(self._batch_path)}, format='array', "
            f"columns={spec_sql}, maximum_object_size={object_size})"
        )
        names = [name for name, _ in META_COLUMNS] + [column.name for column in columns]
        insert = f"({', '.join(map(quote_ident, names))}) SELECT {', '.join(select)} FROM {source}"
        con = self._con

        if not config.dedup:
            con.execute(f"INSERT INTO {quote_ident(run.staging if config.overwrite else run.final)} {insert}")
            return
        # Dedup: the batch goes whole into the history, then replaces the keys it carries in the
        # deduped table by its last version of each. The batch file is read three times: cheaper
        # than a TEMP table (DDL) for page-sized batches.
        if not config.overwrite:
            con.execute(f"INSERT INTO {quote_ident(run.raw)} {insert}")
        target = quote_ident(run.staging if config.overwrite else run.final)
        key_exprs = [_key_expr(columns, path) for path in config.primary_key]
        batch_keys = ", ".join(
            f"{expr(f'CAST({keys[path[0]]} AS {columns.get(path[0]).type})')} AS k{i}"  # type: ignore[union-attr]
            for i, (expr, path) in enumerate(zip(key_exprs, config.primary_key, strict=False))
        )
        matches = " AND ".join(
            f"{expr(target + '.' + quote_ident(columns.get(path[0]).name))} IS NOT DISTINCT FROM batch.k{i}"  # type: ignore[union-attr]
            for i, (expr, path) in enumerate(zip(key_exprs, config.primary_key, strict=False))
        )
        con.execute(
            f"DELETE FROM {target} USING (SELECT DISTINCT {batch_keys} FROM {source} WHERE _l) AS batch WHERE {matches}"
        )
        con.execute(f"INSERT INTO {target} {insert} WHERE _l")
        deleted = columns.get(DELETED_AT)
        if deleted is not None and any(row.get("_t") for row in rows):
            # Soft delete: the last known version stays, with the time it disappeared upstream.
            con.execute(
                f"UPDATE {target} SET {quote_ident(deleted.name)} = batch.d FROM (SELECT {batch_keys}, "
                f"CAST({keys[DELETED_AT]} AS {deleted.type}) AS d FROM {source} WHERE _t) AS batch WHERE {matches}"
            )

    # ---------------------------------------------------------------- tables and columns

    def _table_columns(self, table: str) -> set[str] | None:
        """Lower-cased column names of ``table``, or None if it does not exist."""
        rows = self._con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND schema_name = 'main' "
            "AND database_name = current_database()",
            [table],
        ).fetchall()
        return {name.lower() for (name,) in rows} if rows else None

    def _ensure_table(self, run: _Run, table: str) -> None:
        """Create ``table`` with the stream's columns, or add the columns it lacks."""
        existing = self._table_columns(table)
        if existing is None:
            defs = [f"{quote_ident(n)} {t}" for n, t in META_COLUMNS]
            defs += [f"{quote_ident(c.name)} {c.type}" for c in run.columns]
            self._con.execute(f"CREATE TABLE {quote_ident(table)} ({', '.join(defs)})")
            return
        for column in run.columns:
            if column.name.lower() not in existing:
                self._con.execute(f"ALTER TABLE {quote_ident(table)} ADD COLUMN {quote_ident(column.name)} {column.type}")

    def _add_columns(self, run: _Run, columns: ColumnSet, start: int) -> None:
        """Schema evolution: add ``columns[start:]`` to every existing table of the stream."""
        new = columns.columns[start:]
        for table in run.tables:
            if self._table_columns(table) is None:
                continue
            for column in new:
                self._con.execute(f"ALTER TABLE {quote_ident(table)} ADD COLUMN {quote_ident(column.name)} {column.type}")
        self._insert_column_rows(run.config.name, columns, start)

    def _insert_column_rows(self, stream: str, columns: ColumnSet, start: int) -> None:
        for position in range(start, len(columns)):
            column = columns.columns[position]
            self._con.execute(
                f"INSERT OR REPLACE INTO {COLUMNS_TABLE} VALUES (?, ?, ?, ?, ?)",
                [stream, column.field, column.name, column.type, position],
            )

    def _max_generation(self, table: str) -> int | None:
        if self._table_columns(table) is None:
            return None
        row = self._con.execute(f'SELECT max("_airbyte_generation_id") FROM {quote_ident(table)}').fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _count_rows(self, table: str) -> int | None:
        if self._table_columns(table) is None:
            return None
        row = self._con.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchone()
        return int(row[0]) if row else 0

    # ---------------------------------------------------------------- plumbing

    def _transaction(self, body: Callable[[], Any]) -> None:
        self._con.begin()
        try:
            body()
        except BaseException:
            self._con.rollback()
            raise
        self._con.commit()

    def _warn(self, text: str) -> None:
        self.warnings.append(text)
        if self._on_warning is not None:
            self._on_warning(text)

    def _shutdown(self) -> None:
        self._closed = True
        for run in self._runs.values():
            run.buffer = []
        self._con.close()
        try:
            os.unlink(self._batch_path)
        except FileNotFoundError:
            pass



# Airbyte's CDC deletion column; the source emits a record carrying it as a tombstone.
DELETED_AT = "_ab_cdc_deleted_at"


def _key_expr(columns: ColumnSet, path: tuple[str, ...]) -> Callable[[str], str]:
    """SQL for one primary-key path given its column's SQL; a nested path reads the JSON column."""
    if len(path) == 1:
        return lambda ref: ref
    json_path = quote_literal("$" + "".join("." + orjson.dumps(part).decode() for part in path[1:]))
    return lambda ref: f"json_extract_string({ref}, {json_path})"


# A JSON string token (quotes, escapes and all) in serialized JSON.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _redact_json(payload: bytes) -> bytes:
    """``payload`` with the registered secrets masked inside its strings only: a secret's
    characters found in a number or across JSON syntax stay (masking them would break the JSON)."""
    if redact_bytes(payload) is payload:  # the common case: no secret anywhere (no copy made)
        return payload
    return _JSON_STRING.sub(lambda match: redact_bytes(match.group(0)), payload)


def _dump_rows(rows: list[dict[str, Any]], fields: dict[str, str]) -> bytes:
    """The batch as one JSON array: one orjson call, or row by row when orjson refuses a value."""
    try:
        return orjson.dumps(rows)
    except orjson.JSONEncodeError:
        return b"[" + b",".join(_dump_row(row, fields) for row in rows) + b"]"


def _dump_row(row: dict[str, Any], fields: dict[str, str]) -> bytes:
    """One row's JSON; values orjson refuses are encoded by ``encode_value`` (noted when lossy)."""
    try:
        return orjson.dumps(row)
    except orjson.JSONEncodeError:
        pass
    for key, value in list(row.items()):
        field = fields.get(key)
        if field is None:
            continue  # _e, _m, _r, _l, _t: built here, always encodable
        encoded, lossy = encode_value(value)
        row[key] = orjson.Fragment(encoded)
        if lossy:
            _note_replaced(row, field)
    return orjson.dumps(row)


def _json_values_as_text(row: dict[str, Any], json_keys: list[str], fields: dict[str, str]) -> None:
    """Replace the row's JSON-column values by their JSON text (for ``CAST(... AS JSON)``)."""
    for key in json_keys:
        value = row.get(key)
        if value is None:
            continue
        encoded, lossy = encode_value(value)
        row[key] = encoded.decode()
        if lossy:
            _note_replaced(row, fields[key])


def _note_replaced(row: dict[str, Any], field: str) -> None:
    """Note in the row's ``_airbyte_meta`` that characters of ``field`` were replaced by U+FFFD.

    Airbyte's changes are NULLED or TRUNCATED: the value is kept but altered, the closer of the two.
    """
    changes = row.setdefault("_m", {"changes": []})["changes"]
    change = {"field": field, "change": "TRUNCATED", "reason": SERIALIZATION_ERROR}
    if change not in changes:
        changes.append(change)


def _key_value(row: dict[str, Any], keys: dict[str, str], columns: ColumnSet, path: tuple[str, ...]) -> Any:
    """A primary-key path's value in a cast row (hashable), as the SQL comparison sees it."""
    value = row.get(keys[path[0]])
    for part in path[1:]:
        value = value.get(part) if isinstance(value, dict) else None
    if len(path) > 1 and value is not None and not isinstance(value, str):
        value = encode_value(value)[0]  # json_extract_string gives JSON text for non-strings
    elif isinstance(value, (dict, list)):
        value = encode_value(value)[0]
    return value


def _ms_to_iso(emitted_at: Any) -> str:
    """Airbyte's emitted_at (epoch milliseconds) as ISO-8601 UTC; now if it is missing."""
    if isinstance(emitted_at, (int, float)) and not isinstance(emitted_at, bool):
        moment = datetime.fromtimestamp(emitted_at / 1000, tz=timezone.utc)
    else:
        moment = datetime.now(timezone.utc)
    return moment.isoformat()
