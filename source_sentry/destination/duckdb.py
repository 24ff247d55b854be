"""The embedded destination: Airbyte protocol messages in, typed DuckDB tables out.

Tables (per stream ``S``; every identifier quoted, so any stream or field name works):

- ``S``: the stream's table. Append modes add to it; Append + Deduped keeps the latest version of
  each primary key; overwrite modes replace it by swapping in the staging table.
- ``_airbyte_raw_S``: Append + Deduped only, every record version (history), each with its order
  of arrival (column ``\\x01seq``; NULL in rows written before files had it, all merged);
  ``_airbyte_staged_S`` is its Overwrite + Deduped twin (this sync's versions), merged into the
  staging table, dropped with it.
- ``_airbyte_merged``: per history (or staged) table, the last ``\\x01seq`` merged into its
  table (the watermark): the rows above it are not merged yet.
- ``_airbyte_tmp_S``: overwrite modes only, this sync's rows until the stream COMPLETEs.
- ``_airbyte_dedup``: the primary key of each Append + Deduped stream, for merging its history's
  unmerged rows when the file is next opened, whatever that sync's catalog.
- ``_airbyte_state``: one stored STATE per incremental stream, for the next sync.
- ``_airbyte_columns``: which record field lives in which column (a field DuckDB or a person
  could not use as a name, ``""`` for one, or two differing only by case, get another name: see
  ``columns``; so the mapping has to be remembered).

Transactions: a stream's records wait in a batch file and are written when a STATE of that stream
arrives (states are grouped: a few megabytes or seconds of records at a time), in ONE transaction
with the state row (and the history rows, a dedup merge if one is due, and any new columns). A killed sync
therefore resumes from its last committed state with nothing lost or duplicated in the deduped
table. Records of a
stream that ends INCOMPLETE or with an ERROR after its last state are dropped; records after the
last state of a stream that COMPLETEs are kept.

Loading: records reach :meth:`DuckDBDestination.write_records` as the JSON bytes of each one's data
(the read side's :class:`~source_sentry.protocol.RecordSink`), or as RECORD dicts through
:meth:`DuckDBDestination.write`, serialised once with orjson. Either way each record becomes one
line of an NDJSON batch file, untouched but for an envelope (sequence number, emitted_at, changes).
DuckDB does the rest per batch: ``read_json`` loads the file, ``json_keys`` finds fields the schema
lacks (new columns), one ``json_extract`` per record pulls every column's value, SQL macros type
them (``columns.SQL_MACROS``): a value that does not fit its column is NULL, noted in
``_airbyte_meta``. What orjson refuses in a dict (a lone surrogate, replaced by U+FFFD and noted;
an integer beyond 64 bits; deep nesting) is encoded field by field; a batch of bytes DuckDB refuses
(a lone surrogate escape, invalid UTF-8) is parsed again in Python and written the dict way; one
whose object outgrows the memory cap goes again with more memory.

Dedup (as Airbyte's destinations load raw rows and "type and dedupe" less often): a batch goes
into the history once, numbered, in its state's transaction, with no join against the deduped
table: its cost is the batch's, whatever the table's size (a ``DELETE ... USING`` per batch
scanned the table's keys: 262 ms a batch at 1M rows; an index did not fit the memory cap). The
history's rows above the watermark are merged into ``S`` (``_merge_history``: per key the last
version received wins; a tombstone keeps the last known version with its deletion time) and the
watermark raised, in one transaction, when the stream COMPLETEs, when the sync ends (closed or
aborted), when the file is next opened (a killed sync's rows, every stream's, before anything
else), and mid-sync whenever max(``MERGE_FLOOR``, ``S``'s rows) rows wait: a geometric schedule,
so the merges of a sync cost O(rows received) in all and each batch an amortised constant. The
numbers only grow, so the unmerged rows are the history's last row groups: DuckDB's zone maps
skip the others, and a merge costs its rows, not the history's. So ``S`` may lag a running (or
killed, until the next open) sync by at most that many rows, but never holds one key twice; what
a state covers is committed in the history. Batches are numbered by a sequence in the file, and
commits never interleave, so the last received wins even between two writers of it
(``listen``). Each record is written twice (history, then ``S``); files written when the
unmerged rows also went into a pending table ``_airbyte_pending_S`` have it merged and dropped
on open.

Threads: with ``background=True`` (``sync``) the database work runs on a writer thread of its own
while the caller goes on reading: DuckDB releases the GIL while it works, so loading overlaps the
HTTP reads. At most ``_QUEUE_DEPTH`` batches wait (memory stays flat: they are files); a failed
batch stops every later one (so no later state is stored) and its error is raised to the caller
at its next call. A stream's COMPLETE waits for the writer: a stream reported complete is in the
file. Without it (the default: tests, webhooks) the work runs on the caller's thread.

Opening: a path that cannot be a database this process writes raises ``DestinationError`` with
one sentence saying what to do (see ``errors``).
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

import duckdb
import orjson

from ..catalog import ConfiguredStream
from ..errors import redact_bytes
from .catalog import destination_streams, expiring_overwrite_warning
from .columns import (
    JSON,
    META_COLUMNS,
    SERIALIZATION_ERROR,
    SQL_MACROS,
    TYPECAST_ERROR,
    VARCHAR,
    Column,
    ColumnSet,
    column_type_for_json_type,
    column_type_for_schema,
    encode_value,
    json_pointer,
    quote_ident,
    quote_literal,
    sql_misfit,
    sql_value,
    storable_field,
)
from .errors import check_path, connect_error, not_duckdb

__all__ = ["BUFFER_LIMIT", "DuckDBDestination", "StreamResult", "SyncResult", "connect_database", "quiet_progress"]

# Records waiting for a state before they are written without one.
BUFFER_LIMIT = 20_000
# DuckDB's buffer pool (it spills to disk beyond it). With the process's own ~75 MB (Python, the
# read, DuckDB's library and catalog) this keeps a sync's peak RSS near 150 MB, measured.
_MEMORY_LIMIT = "48MB"
# States are committed in groups: this many bytes of records, or this many records, or this long
# since the last commit. One transaction costs milliseconds whatever its size, and DuckDB loads a
# large batch far faster per record than a page of 10; but the memory of a load grows with the
# batch (read buffers, parsed JSON, typed copy): 2 MB (~550 full Sentry events) kept the peak
# lowest for the same speed, measured with bench/bench_load.py. A kill loses at most one group.
_COMMIT_BYTES = 2 << 20
_COMMIT_RECORDS = 50_000
_COMMIT_SECONDS = 5.0
# DuckDB checkpoints (compresses into the file what the WAL holds) once the WAL reaches this. At
# its default of 16 MB a sync of full events checkpointed every few batches, each time rewriting
# the history's growing last row group (and, when a pending table held the unmerged rows too,
# writing rows that the next merge deleted): half the destination's time, measured
# (bench/bench_load.py). The WAL stays
# durable (a commit is on disk either way) and the rows not yet checkpointed live in the capped
# buffer pool, spilled to disk beyond it.
_CHECKPOINT_THRESHOLD = "256MB"
# Batches waiting for the background writer (each a file on disk, not memory).
_QUEUE_DEPTH = 2

STATE_TABLE = "_airbyte_state"
COLUMNS_TABLE = "_airbyte_columns"
RAW_PREFIX = "_airbyte_raw_"
TMP_PREFIX = "_airbyte_tmp_"
PENDING_PREFIX = "_airbyte_pending_"
STAGED_PREFIX = "_airbyte_staged_"
DEDUP_TABLE = "_airbyte_dedup"
MERGED_TABLE = "_airbyte_merged"
BATCH_TABLE = "_airbyte_batch"
WINNERS_TABLE = "_airbyte_winners"
# Numbers each loaded batch: a history row's order is (batch number, place in the batch), so the
# last received version wins even across two writers of one file (``listen``: a sync, webhooks).
# (Named when the rows waited in a pending table: the files written since keep the name.)
ORDER_SEQUENCE = "_airbyte_pending_order"
# Unmerged rows merged into the final table once they reach max(this, the table's rows): a
# geometric schedule, so merges cost O(rows received) over a sync, and a batch O(batch).
MERGE_FLOOR = 50_000
# Unmerged rows merged per slice of keys: one merge of 1M unmerged rows into 1M ran out of the
# 48 MB pool; slices of 250,000 fit it (32-character keys too), and took 4.5 s where slices of
# 100,000 took 7.9 s (one more scan of each table per slice), measured.
MERGE_SLICE = 250_000

_EMPTY_META = '{"changes":[]}'
# Names of the loader's own columns beside the record's: no column name holds a control character
# (``columns.column_name``), so these never clash with one.
_SEQ_NAME = "\x01seq"
_SEQ = f'"{_SEQ_NAME}"'
# A history row's order: its batch's number times this, plus its place in the batch.
_BATCH_ORDER = 1 << 32

_SCHEMA_DDL = (
    f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} ("
    "stream_name VARCHAR PRIMARY KEY, state JSON, updated_at TIMESTAMPTZ)",
    f"CREATE TABLE IF NOT EXISTS {COLUMNS_TABLE} ("
    "stream_name VARCHAR, field_name VARCHAR, column_name VARCHAR, column_type VARCHAR, "
    "position INTEGER, PRIMARY KEY (stream_name, field_name))",
    f"CREATE TABLE IF NOT EXISTS {DEDUP_TABLE} (stream_name VARCHAR PRIMARY KEY, primary_key JSON)",
    f"CREATE TABLE IF NOT EXISTS {MERGED_TABLE} (table_name VARCHAR, seq BIGINT)",
    f"CREATE SEQUENCE IF NOT EXISTS {ORDER_SEQUENCE}",
)

T = TypeVar("T")


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
    # Timestamps without an offset are UTC (Sentry's are), whatever the machine's zone.
    con.execute("SET TimeZone = 'UTC'")
    quiet_progress(con)
    return con


def quiet_progress(con: duckdb.DuckDBPyConnection) -> None:
    """Keep DuckDB's own progress bar off stdout: it prints one for any statement that runs over
    2 s (a large merge, a checkpoint), into ``sync --quiet``'s output and beside our progress."""
    con.execute("SET enable_progress_bar = false")
    # Printing off too: a later ``SET progress_bar_time`` turns the bar back on, not its printing.
    con.execute("SET enable_progress_bar_print = false")


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


@dataclass
class _Batch:
    """Records waiting in an NDJSON file: one line per record, in arrival order."""

    path: str
    out: BinaryIO
    records: int = 0
    size: int = 0
    longest: int = 0  # longest line: read_json's buffer must hold it


@dataclass(frozen=True)
class _Sealed:
    """A closed batch file, handed to the writer."""

    path: str
    records: int
    size: int
    longest: int


class _Run:
    """One stream during this sync: its config, columns, batch and progress."""

    def __init__(self, config: ConfiguredStream, columns: ColumnSet, generation: int) -> None:
        self.config = config
        self.columns = columns  # the writer's (changed by commits only)
        self.generation = generation
        self.batch: _Batch | None = None
        self.seq = 0  # sequence number of the next record: the dedup's "last received"
        self.staging_ready = False
        self.swapped = False
        self.warned_buffer = False
        self.warned_late = False
        # The newest state received but not yet committed, and how much of the batch it covers.
        self.pending_state: dict[str, Any] | None = None
        self.pending_records = 0
        self.pending_size = 0
        self.last_commit = time.monotonic()
        # Dedup (the writer's): history rows not yet merged, and the target's rows at the last
        # merge (the geometric threshold). Another writer of the file (``listen``) may merge them
        # meanwhile: then the count is high, and a merge comes early, never late.
        self.unmerged_rows = 0
        self.target_rows = 0
        self.result = StreamResult(config.name, config.sync_mode, config.destination_sync_mode)

    @property
    def buffered(self) -> int:
        """Records received and not yet handed to the writer."""
        return self.batch.records if self.batch is not None else 0

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
    def target(self) -> str:
        """The table batches end up in: the staging table when overwriting, else the final one."""
        return self.staging if self.config.overwrite else self.final

    @property
    def history(self) -> str:
        """Dedup: the table every batch goes into, numbered, merged from into ``target``: the
        history, or when overwriting this sync's own (``_airbyte_staged_S``, dropped with it)."""
        return STAGED_PREFIX + self.config.name if self.config.overwrite else self.raw

    @property
    def tables(self) -> tuple[str, ...]:
        """Every table this stream may own (existing or not)."""
        return (self.final, self.raw, self.staging, STAGED_PREFIX + self.config.name)

    @property
    def closed(self) -> bool:
        return self.result.status in ("COMPLETE", "INCOMPLETE")


class _Writer:
    """Runs the destination's database work in submission order, each job holding ``lock``: on the
    caller's thread, or (``background``) on a thread of its own with at most ``_QUEUE_DEPTH`` jobs
    waiting. After a job fails no later job runs, and every later call raises its error."""

    def __init__(self, lock: threading.RLock, background: bool) -> None:
        self._lock = lock
        self._error: BaseException | None = None
        self._queue: queue.Queue[Callable[[], None] | None] | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(maxsize=_QUEUE_DEPTH)
            self._thread = threading.Thread(target=self._loop, name="duckdb-writer", daemon=True)
            self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` after every earlier one (at once, without a background thread)."""
        self._raise()
        if self._queue is None:
            self._run(job)
            self._raise()
        else:
            self._queue.put(lambda: self._run(job))

    def call(self, job: Callable[[], T]) -> T:
        """Run ``job`` after every earlier one and return its result (waits for the writer)."""
        self._raise()
        if self._queue is None:
            with self._lock:
                return job()
        box: list[T] = []
        done = threading.Event()

        def run() -> None:
            try:
                self._run(lambda: box.append(job()))
            finally:
                done.set()

        self._queue.put(run)
        done.wait()
        self._raise()
        return box[0]

    def close(self) -> None:
        """Wait for the queued jobs and stop the thread (a failed job's error is not raised here)."""
        if self._queue is not None and self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self, job: Callable[[], Any]) -> None:
        if self._error is not None:
            return  # a batch failed: nothing after it may be committed (a state would skip it)
        try:
            with self._lock:
                job()
        except BaseException as exc:
            self._error = exc

    def _loop(self) -> None:
        assert self._queue is not None
        while (job := self._queue.get()) is not None:
            job()


class DuckDBDestination:
    """Writes one sync's Airbyte messages for ``configured_catalog`` into the DuckDB file ``path``.

    Use as a context manager (``close()`` on success, ``abort()`` on an exception), or call
    :meth:`write` per message (:meth:`write_records` for records as JSON bytes) then :meth:`close`
    / :meth:`abort`. Thread-safe: every public method holds one lock, so concurrent stream readers
    may share the sink.

    Raises :class:`DestinationError` when ``path`` cannot be used (a directory, a missing
    directory, no permission, locked by another process, not a DuckDB file) and ConfigError for a
    catalog it cannot apply. ``expiring_streams``: streams whose source forgets old records (Sentry's
    retention); each of them configured Full Refresh | Overwrite gets a warning that the overwrite
    deletes what the source no longer has. ``lock``: the lock of another writer of the same file in
    this process to share (its commits and ours then never interleave; held by each database job,
    never while waiting for one). ``background``: write on a thread of its own (see the module
    docstring); an error of the writer is raised by the next call after it. ``merge_floor``: the
    fewest unmerged rows a long sync merges into a deduplicated table (see the module docstring);
    ``merge_slice``: the most unmerged rows merged at once (a slice of the keys).
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
        commit_bytes: int = _COMMIT_BYTES,
        lock: threading.RLock | None = None,
        background: bool = False,
        merge_floor: int = MERGE_FLOOR,
        merge_slice: int = MERGE_SLICE,
    ) -> None:
        self._merge_floor = merge_floor
        self._merge_slice = merge_slice
        self._commit_records = commit_records
        self._commit_seconds = commit_seconds
        self._commit_bytes = commit_bytes
        self.configs = destination_streams(configured_catalog)
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self._on_warning = on_warning
        self._buffer_limit = buffer_limit
        # The caller side's state (runs, batches); database work goes through the writer, which
        # holds the file's lock, shared by its writers in one process (``listen``: a sync and
        # webhooks), so their commits never interleave.
        self._lock = threading.RLock()
        self._closed = False
        self._unknown_streams: set[str] = set()
        self._con = connect_database(os.fspath(path))
        if background:
            # One DuckDB thread: the other core is the read's (its event loop parses the pages).
            self._con.execute("SET threads = 1")
        self._con.execute(f"SET checkpoint_threshold = '{_CHECKPOINT_THRESHOLD}'")
        self._dir = tempfile.mkdtemp(prefix="source-sentry-")
        self._files = 0
        self._writer = _Writer(lock if lock is not None else threading.RLock(), background)
        try:
            self._writer.call(self._setup)
            configs = list(self.configs.values())
            self._runs = {config.name: self._writer.call(lambda c=config: self._open_stream(c)) for config in configs}  # type: ignore[misc]
            for run in self._runs.values():
                if run.config.name in expiring_streams and run.config.overwrite:
                    self._warn(expiring_overwrite_warning(run.config.name))
        except BaseException:
            self._writer.close()
            self._con.close()
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    # ---------------------------------------------------------------- public API

    def read_state(self) -> list[dict[str, Any]]:
        """Stored states of this catalog's incremental streams, as AirbyteStateMessage dicts
        (``{"type": "STREAM", "stream": {...}}``): the list ``read --state`` takes."""
        with self._lock:
            rows = self._writer.call(
                lambda: self._con.execute(f"SELECT stream_name, state FROM {STATE_TABLE} ORDER BY 1").fetchall()
            )
        wanted = {name for name, config in self.configs.items() if config.keeps_state}
        return [orjson.loads(state) for name, state in rows if name in wanted]

    def reset_state(self, streams: Iterable[str] | None = None) -> None:
        """Forget the stored state of ``streams`` (None: every stream of the catalog), so the next
        incremental read starts over: the way to force a full re-read without an overwrite."""
        names = list(self.configs if streams is None else streams)

        def reset() -> None:
            for name in names:
                self._con.execute(f"DELETE FROM {STATE_TABLE} WHERE stream_name = ?", [name])

        with self._lock:
            self._writer.call(lambda: self._transaction(reset))

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

    def write_records(self, stream: str, data: list[bytes], emitted_at: int) -> None:
        """Take records of ``stream`` as the JSON bytes of each one's ``data`` object (as a
        :class:`~source_sentry.protocol.RecordSink` does): written as they are, never parsed here."""
        with self._lock:
            if self._closed:
                raise RuntimeError("DuckDBDestination is closed")
            run = self._accepting(stream, len(data))
            if run is not None and data:
                self._append(run, data, emitted_at, None)

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
                        if not run.config.overwrite:
                            self._commit(run, None, merge=True)  # what states covered reaches the table
                        if run.result.status == "STARTED":
                            run.result.status = "INCOMPLETE"
                for run in self._runs.values():
                    run.result.rows = self._writer.call(lambda r=run: self._count_rows(r.final))  # type: ignore[misc]
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
                        if not run.config.overwrite:
                            self._commit(run, None, merge=True)  # else the next open merges it
                self._writer.call(lambda: None)  # wait for the writer
            except Exception:
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

    def _accepting(self, name: Any, records: int) -> _Run | None:
        """The run that takes ``records`` records of stream ``name`` now, or None (counted as dropped)."""
        run = self._run_for(name)
        if run is None:
            return None
        if run.closed:
            # After INCOMPLETE the stream's data is not trusted; after COMPLETE (and, for overwrite,
            # the swap) there is nowhere consistent to put it. Either way the reader misbehaved.
            run.result.records_dropped += records
            if run.result.status == "COMPLETE" and not run.warned_late:
                run.warned_late = True
                self._warn(f"stream {run.config.name!r}: dropping records received after COMPLETE")
            return None
        self._start(run)
        return run

    def _on_record(self, record: dict[str, Any]) -> None:
        run = self._accepting(record.get("stream"), 1)
        if run is None:
            return
        line, changes = _encode_record(record.get("data") or {})
        meta = record.get("meta")
        carried = meta.get("changes") if isinstance(meta, dict) else None
        if isinstance(carried, list) and carried:  # the source's own changes (Airbyte's meta.changes)
            changes = carried + (changes or [])
        emitted_at = record.get("emitted_at")
        if not isinstance(emitted_at, (int, float)) or isinstance(emitted_at, bool) or not math.isfinite(emitted_at):
            emitted_at = time.time() * 1000
        self._append(run, [line], int(emitted_at), orjson.dumps(changes) if changes else None)

    def _append(self, run: _Run, data: list[bytes], emitted_at: int, changes: bytes | None) -> None:
        """Add records to the run's batch file: each line an envelope around the record's bytes."""
        batch = run.batch
        if batch is None:
            self._files += 1
            path = os.path.join(self._dir, f"{self._files}.ndjson")
            batch = run.batch = _Batch(path, open(path, "wb", buffering=1 << 20))  # noqa: SIM115 - sealed later
        seq = run.seq
        middle = b',"e":%d%s,"d":' % (emitted_at, b',"m":' + changes if changes else b"")
        # A server may echo the token inside a record: it must not reach the file (one search).
        payload = _redact_strings(b"".join([b'{"n":%d%s%s}\n' % (seq + i, middle, item) for i, item in enumerate(data)]))
        batch.out.write(payload)
        run.seq = seq + len(data)
        batch.records += len(data)
        batch.size += len(payload)
        batch.longest = max(batch.longest, max(map(len, data)) + len(middle) + 32)  # the envelope too
        run.result.records_received += len(data)
        if batch.records >= self._buffer_limit:
            self._flush_pending(run)
        if run.buffered >= self._buffer_limit:
            if not run.warned_buffer:
                run.warned_buffer = True
                self._warn(
                    f"stream {run.config.name!r}: {run.buffered} records without a state; "
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
        run.pending_records = run.buffered
        run.pending_size = run.batch.size if run.batch is not None else 0
        # One transaction per state costs tens of milliseconds: group states, megabytes or seconds
        # at a time. A crash loses only the uncommitted group, resumed from the last committed
        # state (records and state are still committed together).
        if (
            run.pending_size >= self._commit_bytes
            or run.pending_records >= self._commit_records
            or time.monotonic() - run.last_commit >= self._commit_seconds
        ):
            self._flush_pending(run)

    def _flush_pending(self, run: _Run) -> None:
        """Commit the records the newest received state covers, together with that state."""
        if run.pending_state is None:
            return
        rest = self._split(run, run.pending_size)
        self._commit(run, run.pending_state)
        run.batch = rest
        run.pending_state = None
        run.pending_records = 0
        run.pending_size = 0
        run.last_commit = time.monotonic()

    def _split(self, run: _Run, size: int) -> _Batch | None:
        """Cut the run's batch file at ``size`` bytes: the run keeps the head, the tail (records
        after the pending state, usually none) is returned as a batch of its own."""
        batch = run.batch
        if batch is None or batch.size == size:
            return None
        batch.out.flush()
        with open(batch.path, "rb") as source:
            source.seek(size)
            tail = source.read()
        batch.out.truncate(size)
        batch.out.seek(size)
        self._files += 1
        path = os.path.join(self._dir, f"{self._files}.ndjson")
        rest = _Batch(path, open(path, "wb", buffering=1 << 20))  # noqa: SIM115 - sealed later
        rest.out.write(tail)
        rest.records = batch.records - run.pending_records
        rest.size = len(tail)
        rest.longest = batch.longest
        batch.records, batch.size = run.pending_records, size
        return rest

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
                # A stream said COMPLETE is in the file: whoever hears it next (the progress
                # line, a person, a test that kills the sync) may rely on it.
                self._writer.call(lambda: None)
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

    def _setup(self) -> None:
        self._transaction(lambda: [self._con.execute(sql) for sql in _SCHEMA_DDL])
        for sql in SQL_MACROS:
            self._con.execute(sql)
        self._merge_left_over()

    def _merge_left_over(self) -> None:
        """Merge every stream's unmerged history rows (a sync killed before its merge, of any
        catalog) into its final table, each stream in a transaction: before anything reads or
        writes. A file written when rows waited in a pending table (``_airbyte_pending_S``) has
        that table merged, then dropped, and its history numbered from then on."""
        registered = self._con.execute(f"SELECT stream_name, primary_key FROM {DEDUP_TABLE} ORDER BY 1").fetchall()
        for stream, key in registered:
            history, pending = RAW_PREFIX + stream, PENDING_PREFIX + stream
            legacy = self._table_columns(pending) is not None
            if self._table_columns(stream) is None:
                if legacy:  # its table was overwritten since: nothing to merge into
                    self._transaction(lambda p=pending: self._con.execute(f"DROP TABLE {quote_ident(p)}"))  # type: ignore[misc]
                continue
            if not legacy and not self._unmerged_rows(history):
                continue
            rows = self._con.execute(
                f"SELECT field_name, column_name, column_type FROM {COLUMNS_TABLE} WHERE stream_name = ? ORDER BY position",
                [stream],
            ).fetchall()
            columns = ColumnSet(Column(f, n, t) for f, n, t in rows)
            primary_key = tuple(tuple(path) for path in orjson.loads(key))

            def merge(stream: str = stream, history: str = history, pending: str = pending, legacy: bool = legacy,
                      columns: ColumnSet = columns, primary_key: tuple[tuple[str, ...], ...] = primary_key) -> None:
                if legacy:
                    # Its rows are in the history too (unnumbered there: never merged again).
                    self._merge(pending, stream, columns, primary_key, None)
                    self._con.execute(f"DROP TABLE {quote_ident(pending)}")
                    if self._table_columns(history) is not None and _SEQ_NAME not in (self._table_columns(history) or set()):
                        self._con.execute(f"ALTER TABLE {quote_ident(history)} ADD COLUMN {_SEQ} BIGINT")
                else:
                    self._merge_history(history, stream, columns, primary_key)

            self._transaction(merge)

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
                self._ensure_table(run, run.raw, ordered=True)
                # The next open merges what a killed sync left unmerged, whatever its catalog.
                self._con.execute(
                    f"INSERT OR REPLACE INTO {DEDUP_TABLE} VALUES (?, ?::JSON)",
                    [config.name, orjson.dumps(config.primary_key).decode()],
                )

        self._transaction(create)
        if config.dedup and not config.overwrite:
            run.target_rows = self._count_rows(run.final) or 0
            run.unmerged_rows = self._unmerged_rows(run.history)  # another writer's, mid-sync
        return run

    def _start(self, run: _Run) -> None:
        """Mark the stream started; for overwrite, create its empty staging table once per sync."""
        if run.result.status == "PENDING":
            run.result.status = "STARTED"
        if run.config.overwrite and not run.staging_ready:

            def recreate() -> None:
                self._drop_staged(run)
                self._ensure_table(run, run.staging)
                if run.config.dedup:
                    self._ensure_table(run, run.history, ordered=True)

            self._writer.submit(lambda: self._transaction(recreate))
            run.staging_ready = True

    def _finish(self, run: _Run) -> None:
        """The stream COMPLETEd: commit what is left and, for overwrite, swap the staging table in
        (DROP old + RENAME, in the same transaction, so readers see the old or the new table)."""
        self._flush_pending(run)
        if run.config.overwrite and not run.swapped:
            self._commit(run, None, swap=True)
            run.swapped = True
        elif run.buffered or run.config.dedup:
            self._commit(run, None, merge=True)

    def _fail(self, run: _Run) -> None:
        """The stream ended INCOMPLETE or with an error: keep what states cover, drop the rest."""
        if run.result.status != "INCOMPLETE":
            self._flush_pending(run)
        run.result.status = "INCOMPLETE"
        self._drop_buffer(run)

    def _drop_buffer(self, run: _Run) -> None:
        batch, run.batch = run.batch, None
        if batch is not None:
            run.result.records_dropped += batch.records
            batch.out.close()
            os.unlink(batch.path)

    def _drop_staging(self, run: _Run) -> None:
        if run.config.overwrite and run.staging_ready and not run.swapped:
            self._writer.submit(lambda: self._transaction(lambda: self._drop_staged(run)))

    def _drop_staged(self, run: _Run) -> None:
        """Drop an overwrite's staging table and its staged history, with that one's watermark
        (inside the caller's transaction)."""
        staged = STAGED_PREFIX + run.config.name
        self._con.execute(f"DROP TABLE IF EXISTS {quote_ident(run.staging)}")
        self._con.execute(f"DROP TABLE IF EXISTS {quote_ident(staged)}")
        self._con.execute(f"DELETE FROM {MERGED_TABLE} WHERE table_name = ?", [staged])

    # ---------------------------------------------------------------- the write transaction

    def _commit(self, run: _Run, state: dict[str, Any] | None, *, swap: bool = False, merge: bool = False) -> None:
        """Hand the run's batch, its state (if kept), with ``merge`` the dedup merge of what is
        unmerged, and with ``swap`` the table swap (merge first) to the writer: all in one
        transaction. The run starts a new batch."""
        batch, run.batch = run.batch, None
        sealed = None
        if batch is not None:
            batch.out.close()
            sealed = _Sealed(batch.path, batch.records, batch.size, batch.longest)
        store_state = state is not None and run.config.keeps_state
        merge = (merge or swap) and run.config.dedup
        if sealed is None and not store_state and not swap and not merge:
            return
        self._writer.submit(lambda: self._write_batch(run, sealed, state if store_state else None, swap, merge))

    def _write_batch(self, run: _Run, batch: _Sealed | None, state: dict[str, Any] | None, swap: bool, merge: bool) -> None:
        """The writer's job: load ``batch``, store ``state``, merge what is unmerged (with ``merge``
        or past the threshold), swap: one transaction (retried as the module docstring says when
        DuckDB refuses the batch's JSON or runs out of memory)."""
        # Dedup counts, set once the transaction committed (a retried body starts from them again).
        counts: list[tuple[int, int]] = []

        def body() -> None:
            counts.clear()
            if batch is not None:
                self._con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {BATCH_TABLE} AS SELECT * FROM read_json("
                    f"{quote_literal(batch.path)}, format='newline_delimited', "
                    "columns={'n': 'BIGINT', 'e': 'BIGINT', 'm': 'JSON', 'd': 'JSON'}, "
                    f"maximum_object_size={max(batch.longest + 1024, 1 << 20)})"
                )
                self._load(run)
            if run.config.dedup:
                unmerged, target = run.unmerged_rows + (batch.records if batch is not None else 0), run.target_rows
                if unmerged and (merge or unmerged >= max(self._merge_floor, target)):
                    target += self._merge_history(run.history, run.target, run.columns, run.config.primary_key)
                    unmerged = 0
                counts.append((unmerged, target))
            if state is not None:
                self._store_state(run.config.name, state)
            if swap:
                if run.config.dedup:
                    self._con.execute(f"DROP TABLE IF EXISTS {quote_ident(run.history)}")
                    self._con.execute(f"DELETE FROM {MERGED_TABLE} WHERE table_name = ?", [run.history])
                self._con.execute(f"DROP TABLE IF EXISTS {quote_ident(run.final)}")
                self._con.execute(f"ALTER TABLE {quote_ident(run.staging)} RENAME TO {quote_ident(run.final)}")
                # The table now holds this full refresh; an older incremental cursor no longer
                # describes it, so the next incremental sync starts over (a full refresh always does).
                self._con.execute(f"DELETE FROM {STATE_TABLE} WHERE stream_name = ?", [run.config.name])

        columns = run.columns
        reencoded = raised_memory = False
        try:
            while True:
                try:
                    self._transaction(body)
                    if counts:
                        run.unmerged_rows, run.target_rows = counts[0]
                    break
                except duckdb.InvalidInputException as exc:
                    run.columns = columns  # the rolled-back columns
                    if reencoded or batch is None or "Malformed JSON" not in str(exc):
                        raise
                    # DuckDB's parser refuses a lone surrogate escape or invalid UTF-8: the batch
                    # goes again, each line parsed by Python and written the way a dict is (rare).
                    reencoded = True
                    _reencode(batch.path)
                except duckdb.OutOfMemoryException:
                    run.columns = columns
                    if raised_memory or batch is None:
                        raise
                    # read_json's buffer for one object of ~10 MB or more outgrows the usual cap:
                    # allow this batch what it needs (read buffers of twice the largest line per
                    # thread, the parsed batch, its typed copy: 8 times the batch and 16 times its
                    # largest line is more, measured), then cap again.
                    raised_memory = True
                    limit_mb = max(256, (8 * batch.size + 16 * batch.longest) >> 20)
                    self._con.execute(f"SET memory_limit = '{limit_mb}MB'")
        finally:
            if raised_memory:
                self._con.execute(f"SET memory_limit = '{_MEMORY_LIMIT}'")
            if batch is not None:
                os.unlink(batch.path)
                self._con.execute(f"DROP TABLE IF EXISTS {BATCH_TABLE}")
        if batch is not None:
            run.result.records_committed += batch.records

    def _store_state(self, stream: str, state: dict[str, Any] | None) -> None:
        # UPDATE is about twice as fast as INSERT OR REPLACE on the primary key: insert only the
        # first time a stream gets a state.
        text = _redact_strings(orjson.dumps(state)).decode()
        updated = self._con.execute(
            f"UPDATE {STATE_TABLE} SET state = ?::JSON, updated_at = now() WHERE stream_name = ?",
            [text, stream],
        ).fetchone()
        if not updated or not updated[0]:
            self._con.execute(f"INSERT INTO {STATE_TABLE} VALUES (?, ?::JSON, now())", [stream, text])

    def _new_columns(self, run: _Run) -> None:
        """Schema evolution: a column for each field of the batch that has none yet, typed by its
        first non-null value (a field always null gets none), added to every table of the stream."""
        columns = run.columns
        keys = self._con.execute(f"SELECT DISTINCT unnest(json_keys(d)) FROM {BATCH_TABLE}").fetchall()
        new = [key for (key,) in keys if columns.get(key) is None]
        if not new:
            return
        # Typed by the first non-null value (one json_extract per record for all new fields);
        # ordered as the records show them first.
        pointers = "[" + ", ".join(quote_literal(json_pointer(key)) for key in new) + "]"
        firsts = self._con.execute(
            f"SELECT i, arg_min(json_type(v), n), min(n) FROM (SELECT n, unnest(json_extract(d, {pointers})) AS v, "
            f"unnest(range({len(new)})) AS i FROM {BATCH_TABLE}) WHERE v IS NOT NULL AND v::VARCHAR <> 'null' GROUP BY i"
        ).fetchall()
        first_rows = ", ".join(str(n) for _, _, n in firsts) or "NULL"
        positions = {
            (n, key): position
            for n, keys in self._con.execute(f"SELECT n, json_keys(d) FROM {BATCH_TABLE} WHERE n IN ({first_rows})").fetchall()
            for position, key in enumerate(keys)
        }
        found = [
            (new[i], kind)
            for _, _, i, kind in sorted((n, positions.get((n, new[i]), 0), i, kind) for i, kind, n in firsts)
        ]
        added = columns.copy()
        start = len(added)
        for key, json_type in found:
            added.add(key, column_type_for_json_type(json_type))
        if len(added) > start:
            self._add_columns(run, added, start)
            run.columns = added

    def _load(self, run: _Run) -> None:
        """Insert the batch table into the stream's target table(s) (inside the caller's transaction)."""
        self._new_columns(run)
        config, columns, con = run.config, run.columns, self._con
        pointers = "[" + ", ".join(quote_literal(json_pointer(c.field)) for c in columns) + "]"
        # Three steps: one json_extract per record gives every column's JSON value (x), the macros
        # type each once (c1, c2, ...), and a value that is not null but typed NULL is a misfit.
        values = ", ".join(f"{sql_value(c.type, f'x[{i}]')} AS c{i}" for i, c in enumerate(columns, 1))
        misfits = [
            (column.field, f"(x[{i}]::VARCHAR <> 'null' AND c{i} IS NULL)")
            for i, column in enumerate(columns, 1)
            if sql_misfit(column.type, "x") is not None
        ]
        nulled = (
            "list_filter([" + ", ".join(f"CASE WHEN {misfit} THEN {quote_literal(name)} END" for name, misfit in misfits)
            + "], lambda f: f IS NOT NULL)"
            if misfits
            else "[]::VARCHAR[]"
        )
        change = f"{{'field': f, 'change': 'NULLED', 'reason': '{TYPECAST_ERROR}'}}"
        any_misfit = " OR ".join(misfit for _, misfit in misfits) or "false"
        meta = (
            f"CASE WHEN m IS NULL AND NOT ({any_misfit}) THEN {quote_literal(_EMPTY_META)}::JSON "
            f"ELSE json_object('changes', list_concat(coalesce(m::JSON[], []::JSON[]), "
            f"list_transform({nulled}, lambda f: to_json({change})))) END"
        )
        select = [
            'gen_random_uuid()::VARCHAR AS "_airbyte_raw_id"',
            "timezone('UTC', epoch_ms(e)) AS \"_airbyte_extracted_at\"",
            f'{int(run.generation)}::BIGINT AS "_airbyte_generation_id"',
            f'{meta} AS "_airbyte_meta"',
            *(f"c{i} AS {quote_ident(column.name)}" for i, column in enumerate(columns, 1)),
            f"n AS {_SEQ}",
        ]
        names = ", ".join(quote_ident(name) for name in [*(name for name, _ in META_COLUMNS), *(c.name for c in columns)])
        typed = (
            f"SELECT {', '.join(select)} FROM (SELECT n, e, m, x, {values} FROM "
            f"(SELECT n, e, m, json_extract(d, {pointers}) AS x FROM {BATCH_TABLE}))"
        )
        target = quote_ident(run.staging if config.overwrite else run.final)
        if not config.dedup:
            con.execute(f"INSERT INTO {target} ({names}) SELECT * EXCLUDE ({_SEQ}) FROM ({typed})")
            return
        # Dedup: the batch goes whole into the history, numbered after every batch before it; the
        # merge (``_merge_history``) finds each key's last version later. No join against the
        # target: the cost is the batch's, whatever the table's size.
        con.execute(
            f"INSERT INTO {quote_ident(run.history)} ({names}, {_SEQ}) SELECT * REPLACE ({_SEQ} + "
            f"(SELECT nextval('{ORDER_SEQUENCE}') * {_BATCH_ORDER} - min(n) FROM {BATCH_TABLE}) AS {_SEQ}) FROM ({typed})"
        )

    def _merge_history(self, history: str, target: str, columns: ColumnSet, primary_key: tuple[tuple[str, ...], ...]) -> int:
        """Merge the rows of ``history`` numbered above its watermark into ``target`` and raise the
        watermark past them (inside the caller's transaction); the change in the target's row count.

        The watermark is the last number merged (``_airbyte_merged``): numbers only grow, so the
        rows above it are in the history's last row groups, and DuckDB's zone maps skip the rest."""
        above = self._watermark(history)
        changed, last = self._merge(history, target, columns, primary_key, above)
        if last is not None:
            updated = self._con.execute(f"UPDATE {MERGED_TABLE} SET seq = ? WHERE table_name = ?", [last, history]).fetchone()
            if not updated or not updated[0]:
                self._con.execute(f"INSERT INTO {MERGED_TABLE} VALUES (?, ?)", [history, last])
        return changed

    def _watermark(self, history: str) -> int:
        """The last number of ``history`` merged into its target (0: none; numbers start above)."""
        row = self._con.execute(f"SELECT max(seq) FROM {MERGED_TABLE} WHERE table_name = ?", [history]).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _unmerged_rows(self, history: str) -> int:
        """Rows of ``history`` not merged yet (0 if it has no numbered rows)."""
        if _SEQ_NAME not in (self._table_columns(history) or set()):
            return 0
        row = self._con.execute(
            f"SELECT count(*) FROM {quote_ident(history)} WHERE {_SEQ} > {self._watermark(history)}"
        ).fetchone()
        return int(row[0]) if row else 0

    def _merge(
        self, source: str, target: str, columns: ColumnSet, primary_key: tuple[tuple[str, ...], ...], above: int | None
    ) -> tuple[int, int | None]:
        """Merge the rows of ``source`` numbered above ``above`` (None: all of them) into ``target``
        (inside the caller's transaction); the change in the target's row count and the last
        number merged (None: no row).

        Per key, the last version received wins: it replaces the target's row. A tombstone
        (``_ab_cdc_deleted_at`` set) keeps the key's last known version, with that time: the last
        live version merged if any, else the target's row. Found by an aggregate over the keys
        (narrow: no sort of whole rows) and a join on the winning versions' order, a slice of the
        keys (by hash) at a time: each slice's join fits the memory cap (all at once, 1M rows did
        not), for one more scan of the tables per ``merge_slice`` rows."""
        con = self._con
        stored = self._table_columns(source) or set()
        columns = ColumnSet(c for c in columns if c.name.lower() in stored)
        key_exprs = [_key_expr(columns, path) for path in primary_key]
        key_columns = [quote_ident(columns.get(path[0]).name) for path in primary_key]  # type: ignore[union-attr]
        keys = [expr(col) for expr, col in zip(key_exprs, key_columns, strict=True)]
        deleted = columns.get(DELETED_AT)
        column = quote_ident(deleted.name) if deleted is not None else None
        tomb = f"arg_max_null({column}, {_SEQ})" if column else "NULL"  # the last version's deletion time
        live = f"max({_SEQ}) FILTER (WHERE {column} IS NULL)" if column else f"max({_SEQ})"
        matches = " AND ".join(f"{expr(quote_ident(target) + '.' + col)} IS NOT DISTINCT FROM w.k{i}"
                               for i, (expr, col) in enumerate(zip(key_exprs, key_columns, strict=True)))
        names = [name for name, _ in META_COLUMNS] + [c.name for c in columns]
        values = ", ".join("w.tomb" if column and quote_ident(name) == column else f"p.{quote_ident(name)}" for name in names)
        # A constant bound: DuckDB skips the row groups whose zone map lies below it.
        def numbered(ref: str) -> str:
            return f"{ref} > {int(above)}" if above is not None else "true"

        rows = numbered(_SEQ)
        row = con.execute(f"SELECT count(*), max({_SEQ}) FROM {quote_ident(source)} WHERE {rows}").fetchone()
        if not row or not row[0]:
            return 0, None
        count, last = int(row[0]), int(row[1])
        slices = max(1, -(-count // self._merge_slice))
        changed = 0
        for part in range(slices):
            where = f"WHERE {rows}" + (f" AND hash({', '.join(keys)}) % {slices} = {part}" if slices > 1 else "")
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {WINNERS_TABLE} AS SELECT "
                + "".join(f"{key} AS k{i}, " for i, key in enumerate(keys))
                + f"{live} AS live, {tomb} AS tomb FROM {quote_ident(source)} {where} GROUP BY ALL"
            )
            # Keys with a live version: the last one replaces the stored row (marked deleted if a
            # tombstone came after it).
            row = con.execute(
                f"DELETE FROM {quote_ident(target)} USING {WINNERS_TABLE} AS w WHERE w.live IS NOT NULL AND {matches}"
            ).fetchone()
            changed -= int(row[0]) if row else 0
            row = con.execute(
                f"INSERT INTO {quote_ident(target)} ({', '.join(quote_ident(name) for name in names)}) "
                f"SELECT {values} FROM {quote_ident(source)} AS p JOIN {WINNERS_TABLE} AS w ON p.{_SEQ} = w.live "
                f"WHERE {numbered('p.' + _SEQ)}"
            ).fetchone()
            changed += int(row[0]) if row else 0
            if column:
                # Keys with only tombstones to merge: the stored row (if any) gets the deletion time.
                con.execute(
                    f"UPDATE {quote_ident(target)} SET {column} = w.tomb FROM {WINNERS_TABLE} AS w "
                    f"WHERE w.live IS NULL AND {matches}"
                )
            con.execute(f"DROP TABLE {WINNERS_TABLE}")
        return changed, last

    # ---------------------------------------------------------------- tables and columns

    def _table_columns(self, table: str) -> set[str] | None:
        """Lower-cased column names of ``table``, or None if it does not exist."""
        rows = self._con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND schema_name = 'main' "
            "AND database_name = current_database()",
            [table],
        ).fetchall()
        return {name.lower() for (name,) in rows} if rows else None

    def _ensure_table(self, run: _Run, table: str, *, ordered: bool = False) -> None:
        """Create ``table`` with the stream's columns (``ordered``: and the rows' order of arrival),
        or add the columns it lacks (a history written before it had the order gets it: NULL)."""
        existing = self._table_columns(table)
        if existing is None:
            defs = [f"{quote_ident(n)} {t}" for n, t in META_COLUMNS]
            defs += [f"{quote_ident(c.name)} {c.type}" for c in run.columns]
            defs += [f"{_SEQ} BIGINT"] if ordered else []
            self._con.execute(f"CREATE TABLE {quote_ident(table)} ({', '.join(defs)})")
            return
        for column in run.columns:
            if column.name.lower() not in existing:
                self._con.execute(f"ALTER TABLE {quote_ident(table)} ADD COLUMN {quote_ident(column.name)} {column.type}")
        if ordered and _SEQ_NAME not in existing:
            self._con.execute(f"ALTER TABLE {quote_ident(table)} ADD COLUMN {_SEQ} BIGINT")

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
        self._writer.close()
        for run in self._runs.values():
            if run.batch is not None:
                run.batch.out.close()
                run.batch = None
        self._con.close()
        shutil.rmtree(self._dir, ignore_errors=True)


# A JSON string token (quotes, escapes and all) in serialized JSON.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _redact_strings(payload: bytes) -> bytes:
    """``payload`` with the registered secrets masked inside its strings only: a secret's
    characters found in a number or across JSON syntax stay (masking them would break the JSON)."""
    if redact_bytes(payload) is payload:  # the common case: no secret anywhere (no copy made)
        return payload
    return _JSON_STRING.sub(lambda match: redact_bytes(match.group(0)), payload)


def _change(field: str, change: str, reason: str) -> dict[str, str]:
    return {"field": field, "change": change, "reason": reason}


def _encode_record(data: dict[str, Any]) -> tuple[bytes, list[dict[str, str]] | None]:
    """A record's data as JSON bytes, with the ``_airbyte_meta`` changes writing it made.

    One orjson call; a top-level NaN or infinity (no JSON form: written as null) is noted as
    NULLED. What orjson refuses goes field by field through :func:`encode_value`: a lone
    surrogate in a value becomes U+FFFD (noted), in a key its escape (:func:`storable_field`).
    """
    changes = [
        _change(key, "NULLED", TYPECAST_ERROR)
        for key, value in data.items()
        if value.__class__ is float and not math.isfinite(value)
    ] or None
    try:
        return orjson.dumps(data), changes
    except (orjson.JSONEncodeError, TypeError):
        pass
    parts = []
    for key, value in data.items():
        field = storable_field(str(key))
        encoded, lossy = encode_value(value)
        parts.append(orjson.dumps(field) + b":" + encoded)
        if lossy:
            changes = (changes or []) + [_change(field, "TRUNCATED", SERIALIZATION_ERROR)]
    return b"{" + b",".join(parts) + b"}", changes


def _reencode(path: str) -> None:
    """Rewrite a batch file DuckDB's parser refused, each record parsed by Python's json (which
    takes lone surrogate escapes) and written as :func:`_encode_record` writes a dict. Bytes that
    are not UTF-8 become U+FFFD, noted in the record's changes for the fields holding one."""
    lines = []
    with open(path, "rb") as source:
        for line in source:
            try:
                text, replaced = line.decode(), False
            except UnicodeDecodeError:
                text, replaced = line.decode("utf-8", "replace"), True
            envelope = json.loads(text)
            data = envelope.get("d")
            if not isinstance(data, dict):
                data = {}
            encoded, changes = _encode_record(data)
            changes = (envelope.get("m") or []) + (changes or [])
            if replaced:
                changes += [
                    _change(storable_field(key), "TRUNCATED", SERIALIZATION_ERROR)
                    for key, value in data.items()
                    if "\ufffd" in key or "\ufffd" in encode_value(value)[0].decode()
                ]
            middle = b',"m":' + orjson.dumps(changes) if changes else b""
            lines.append(b'{"n":%d,"e":%d%s,"d":%s}\n' % (envelope["n"], envelope["e"], middle, _redact_strings(encoded)))
    with open(path, "wb") as out:
        out.writelines(lines)


# Airbyte's CDC deletion column; the source emits a record carrying it as a tombstone.
DELETED_AT = "_ab_cdc_deleted_at"


def _key_expr(columns: ColumnSet, path: tuple[str, ...]) -> Callable[[str], str]:
    """SQL for one primary-key path given its column's SQL; a nested path reads the JSON column."""
    if len(path) == 1:
        return lambda ref: ref
    json_path = quote_literal("$" + "".join("." + orjson.dumps(part).decode() for part in path[1:]))
    return lambda ref: f"json_extract_string({ref}, {json_path})"
