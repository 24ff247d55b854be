"""``source-sentry listen``: one process that owns a DuckDB file, syncs it and applies Sentry's
webhooks between syncs, so the file is fresh within seconds.

- **Syncs**: an incremental sync at start and every ``--sync-every`` minutes (0: only the first),
  the same as ``source-sentry sync`` with the default streams. Polling stays the source of
  completeness; webhooks only make changes arrive sooner.
- **Webhooks**: ``POST /`` from a Sentry internal integration, verified with the config's
  ``webhook_secret`` (:func:`source_sentry.webhooks.verify`; 401 otherwise), at most
  ``--max-body-bytes`` (413), applied from the payload and committed before the 200: ``issue``
  upserts the issue in ``issues`` (its history in ``_airbyte_raw_issues``), ``error`` adds the
  event to ``events`` unless a sync already stored it, ``comment``, ``event_alert``,
  ``metric_alert`` and ``installation`` go to tables of their own. A redelivery (same
  ``Request-ID``) is acknowledged and not applied again (``_sentry_webhooks`` keeps them). An
  issue or event the sync would not read (another project than the config's, or before its
  ``start_date``) is acknowledged and not written: no sync would ever replace or remove it.
- **Reconciling**: an issue a webhook changed is forgotten from the ``issues`` state at the next
  sync, so that sync emits Sentry's own version of it: after any mix of webhooks and syncs the
  deduplicated tables hold what the API serves.

One lock orders every commit to the file (a sync's and a webhook's); SIGINT or SIGTERM stops the
process once the commit in progress is done (a sync cut short resumes from its last checkpoint).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import orjson

from .config import Config, load_config_file
from .errors import ConfigError, SentrySourceError, redact
from .timeutil import parse_time
from .webhooks import SIDE_TABLES, event_record, issue_record, side_row, verify

__all__ = ["Listener", "run_listen"]

DEFAULT_MAX_BODY_BYTES = 10 << 20
_MAX_HEADER_BYTES = 64 << 10
_READ_TIMEOUT = 30.0
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Content Too Large", 500: "Internal Server Error"}
# Webhooks seen (redeliveries are acknowledged, not applied again) and issues changed by one since
# the last sync (forgotten from the issues state, so the sync emits Sentry's version).
_DDL = (
    "CREATE TABLE IF NOT EXISTS _sentry_webhooks (request_id VARCHAR PRIMARY KEY, resource VARCHAR, "
    "action VARCHAR, received_at TIMESTAMPTZ, applied_to VARCHAR)",
    "CREATE SEQUENCE IF NOT EXISTS _sentry_webhook_seq",
    "CREATE TABLE IF NOT EXISTS _sentry_webhook_changed (seq BIGINT DEFAULT nextval('_sentry_webhook_seq'), "
    "stream VARCHAR, key VARCHAR)",
    *(
        f'CREATE TABLE IF NOT EXISTS "{table.table}" (request_id VARCHAR, received_at TIMESTAMPTZ, action VARCHAR, '
        + "".join(f'"{column}" VARCHAR, ' for column in table.columns)
        + "payload JSON)"
        for table in SIDE_TABLES.values()
    ),
)


class Listener:
    """Applies verified webhooks to the DuckDB file at ``path`` and syncs it; every method is
    blocking (``run_listen`` calls them from worker threads) and holds the file's one lock while
    it writes."""

    def __init__(self, config: Config, path: str, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        from .destination.duckdb import connect_database

        if not config.webhook_secret:
            raise ConfigError(
                "webhook_secret is required by listen: the client secret of the Sentry internal integration "
                "that sends the webhooks (Settings > Developer Settings > your integration)."
            )
        self.config = config
        self.path = path
        self.max_body_bytes = max_body_bytes
        self.lock = threading.RLock()
        self.syncing = False
        self._con = connect_database(path)
        with self.lock:
            for sql in _DDL:
                self._con.execute(sql)
        # The ids of the config's projects (an error names its project by id only), from the
        # synced ``projects`` table: None until a sync stored it, or when every project is read.
        self._project_ids: frozenset[str] | None = None
        self._learn_projects()

    # ---------------------------------------------------------------- webhooks

    def receive(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Verify and apply one delivery; (HTTP status, JSON answer). ``headers``: lowercased."""
        assert self.config.webhook_secret
        problem = verify(body, headers, self.config.webhook_secret, time.time())
        if problem is not None:
            return 401, {"error": problem}
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 400, {"error": "the body is not JSON"}
        if not isinstance(payload, dict):
            return 400, {"error": "the body is not a JSON object"}
        resource = headers.get("sentry-hook-resource", "")
        action = str(payload.get("action") or "")
        request_id = headers.get("request-id") or ""
        with self.lock:
            if request_id and self._con.execute(
                "SELECT 1 FROM _sentry_webhooks WHERE request_id = ?", [request_id]
            ).fetchone():
                return 200, {"status": "already applied"}
            applied_to = self._apply(resource, action, request_id, payload)
            if request_id:
                self._con.execute(
                    "INSERT INTO _sentry_webhooks VALUES (?, ?, ?, now(), ?)", [request_id, resource, action, applied_to]
                )
        return 200, {"status": "applied", "table": applied_to}

    def _apply(self, resource: str, action: str, request_id: str, payload: dict[str, Any]) -> str | None:
        if resource == "issue":
            record = issue_record(payload)
            if record is None or not self._in_scope("issues", record):
                return None
            self._write_record("issues", record)
            self._con.execute("INSERT INTO _sentry_webhook_changed (stream, key) VALUES ('issues', ?)", [record["id"]])
            return "issues"
        if resource == "error":
            record = event_record(payload)
            if record is None or not self._in_scope("events", record):
                return None
            if self._stored("events", record["id"]):
                return None  # a sync stored Sentry's own version already
            self._write_record("events", record)
            return "events"
        row = side_row(resource, payload)
        if row is None:
            return None  # a resource nobody asked us to keep (seer, ...): acknowledged
        table = SIDE_TABLES[resource].table
        rest = [action, *row.values(), orjson.dumps(payload).decode()]
        marks = ", ".join("?" for _ in rest)
        self._con.execute(f'INSERT INTO "{table}" SELECT ?, now(), {marks}', [request_id, *rest])
        return table

    def _write_record(self, stream: str, record: dict[str, Any]) -> None:
        """Upsert one record into the stream's deduplicated table (and its raw history), as a sync
        would, without touching the stream's state."""
        from .destination import DuckDBDestination
        from .sync import default_catalog

        catalog = default_catalog(self.config, [stream])
        with DuckDBDestination(self.path, catalog, lock=self.lock) as destination:
            now = int(time.time() * 1000)
            destination.write({"type": "RECORD", "record": {"stream": stream, "data": record, "emitted_at": now}})
            destination.write({"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": now, "stream_status": {
                "stream_descriptor": {"name": stream}, "status": "COMPLETE"}}})

    def _in_scope(self, stream: str, record: Mapping[str, Any]) -> bool:
        """Whether a sync reads ``record`` (of ``issues`` or ``events``): one of another project
        than the config's, or older than its ``start_date``, would stay in the table for good."""
        if stream == "issues":
            project = record.get("project")
            in_projects = isinstance(project, Mapping) and project.get("slug") in self.config.projects
            when = parse_time(record.get("lastSeen"))
        else:  # an error names its project by id only
            in_projects = self._project_ids is not None and record.get("projectID") in self._project_ids
            when = parse_time(record.get("dateCreated"))
        if self.config.projects and not in_projects:
            return False
        return self.config.start_date is None or when is None or when >= self.config.start_date

    def _learn_projects(self) -> None:
        if not self.config.projects:
            return
        with self.lock:
            if not self._stored_table("projects"):
                return
            rows = self._con.execute("SELECT CAST(id AS VARCHAR) FROM projects WHERE slug IN (SELECT unnest(?))",
                                     [list(self.config.projects)]).fetchall()
        self._project_ids = frozenset(pid for (pid,) in rows)

    def _stored_table(self, table: str) -> bool:
        return bool(self._con.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_name = ? AND table_schema = current_schema()", [table]
        ).fetchone())

    def _stored(self, table: str, key: str) -> bool:
        """Whether a sync stored ``key`` in ``table``: merged, or still waiting in its history."""
        from .destination.duckdb import RAW_PREFIX

        return any(
            self._stored_table(name) and self._con.execute(f'SELECT 1 FROM "{name}" WHERE id = ?', [key]).fetchone()
            for name in (table, RAW_PREFIX + table)
        )

    # ---------------------------------------------------------------- syncs

    def sync(self) -> bool:
        """One incremental sync of the default streams; issues webhooks changed since the last one
        are read as new, so the table gets Sentry's version of them."""
        from .progress import SyncProgress
        from .sync import default_catalog, sync_into

        with self.lock:
            changed = self._con.execute("SELECT max(seq), list(DISTINCT key) FROM _sentry_webhook_changed").fetchone()
        upto, keys = (changed or (None, None))
        forget = set(keys or ())
        catalog = default_catalog(self.config)
        names = [entry["stream"]["name"] for entry in catalog["streams"]]
        self.syncing = True
        try:
            ok = sync_into(self.config, catalog, self.path, SyncProgress(names, quiet=True), lock=self.lock,
                           adjust_state=lambda states: [_forget(s, "issues", forget) for s in states])
        finally:
            self.syncing = False
        if ok and upto is not None:
            with self.lock:
                self._con.execute("DELETE FROM _sentry_webhook_changed WHERE seq <= ?", [upto])
        self._learn_projects()
        return ok

    def close(self) -> None:
        with self.lock:
            self._con.close()


def _forget(state: dict[str, Any], stream: str, keys: set[str]) -> dict[str, Any]:
    """``state`` (a stored STATE message) without the fingerprints of ``keys`` when it is
    ``stream``'s: the next read emits those records again."""
    descriptor = (state.get("stream") or {}).get("stream_descriptor") or {}
    if not keys or descriptor.get("name") != stream:
        return state
    value = dict(state["stream"].get("stream_state") or {})
    prints = value.get("fingerprints")
    if isinstance(prints, dict):
        value["fingerprints"] = {
            group: ({k: v for k, v in entries.items() if k not in keys} if isinstance(entries, dict) else entries)
            for group, entries in prints.items()
            if group not in keys
        }
    return {**state, "stream": {**state["stream"], "stream_state": value}}


# -------------------------------------------------------------------- the HTTP side


async def _handle(listener: Listener, apply: concurrent.futures.Executor, reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> None:
    status, answer = 500, {"error": "internal error"}
    try:
        status, answer = await asyncio.wait_for(_answer(listener, apply, reader), _READ_TIMEOUT)
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        status, answer = 400, {"error": "incomplete or malformed request"}
    except Exception as exc:  # our bug: the sender retries; the process goes on
        print(f"source-sentry listen: {redact(repr(exc))}", file=sys.stderr, flush=True)
    body = orjson.dumps(answer)
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    try:
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


async def _answer(listener: Listener, apply: concurrent.futures.Executor,
                  reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if target.split("?", 1)[0] != "/":
        return 404, {"error": "webhooks are received at /"}
    if method != "POST":
        return 405, {"error": "only POST"}
    if "chunked" in headers.get("transfer-encoding", "").lower() or "content-length" not in headers:
        return 411, {"error": "a Content-Length is required"}
    length = int(headers["content-length"])
    if length < 0 or length > listener.max_body_bytes:
        return 413, {"error": f"the body is larger than {listener.max_body_bytes} bytes"}
    body = await reader.readexactly(length)
    loop = asyncio.get_running_loop()
    status, answer = await loop.run_in_executor(apply, listener.receive, headers, body)
    resource = headers.get("sentry-hook-resource", "?")
    print(f"webhook {resource}: {status} {answer.get('status') or answer.get('error')}", file=sys.stderr, flush=True)
    return status, answer


async def _serve(listener: Listener, host: str, port: int, sync_every: float) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    apply = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhooks")
    syncs = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync")
    server = await asyncio.start_server(lambda r, w: _handle(listener, apply, r, w), host, port,
                                        limit=_MAX_HEADER_BYTES)
    bound = server.sockets[0].getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    print(orjson.dumps({"url": f"http://{shown}:{bound[1]}/"}).decode(), flush=True)

    async def syncing() -> None:
        while True:
            started = time.monotonic()
            try:
                ok = await loop.run_in_executor(syncs, listener.sync)
            except Exception as exc:  # the process goes on: webhooks, and the next sync
                print(f"source-sentry listen: the sync stopped: {_failure(exc)}", file=sys.stderr, flush=True)
                ok = False
            at = datetime.now(timezone.utc).strftime("%H:%M:%S")
            print(f"sync at {at}: {'ok' if ok else 'failed'} in {time.monotonic() - started:.1f} s",
                  file=sys.stderr, flush=True)
            if sync_every <= 0:
                return
            await asyncio.sleep(sync_every * 60)

    task = asyncio.ensure_future(syncing())
    await stop.wait()
    server.close()
    task.cancel()
    # Webhooks being applied finish and get their answer; then the sync's commit in progress,
    # if any, ends before the lock is ours (held from here to the exit).
    await loop.run_in_executor(None, lambda: apply.shutdown(wait=True))
    await asyncio.sleep(0.1)  # their answers go out
    listener.lock.acquire()
    if listener.syncing:
        print("source-sentry listen: stopped during a sync; the next one resumes from its last checkpoint.",
              file=sys.stderr, flush=True)
        sys.stderr.flush()
        os._exit(0)  # the sync's thread cannot be interrupted; everything it committed stays
    listener.close()
    syncs.shutdown(wait=False)


def _failure(exc: Exception) -> str:
    """What a user reads of a sync's exception: a user-caused one's message, else the stack."""
    if isinstance(exc, SentrySourceError):
        return redact(exc.message)
    return redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def run_listen(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; the exit code."""
    config = load_config_file(args.config)
    listener = Listener(config, args.destination, max_body_bytes=args.max_body_bytes)
    asyncio.run(_serve(listener, args.host, args.port, args.sync_every))
    return 0
