"""``source-sentry sync``: the connector's own reader writing straight into DuckDB.

The same :func:`source_sentry.read.run_read` that serves ``read`` produces the messages;
instead of stdout they go to :class:`~source_sentry.destination.duckdb.DuckDBDestination`,
which commits each stream's records together with the state that covers them. Records reach it
as JSON bytes (the sync's emitter is a :class:`~source_sentry.protocol.RecordSink`), and it loads
them on a writer thread of its own, so DuckDB's work overlaps the HTTP reads.

A person runs this command: what they got wrong (the config, the catalog, the destination file,
a host, token, organization or project that does not answer) is found before anything is read
and raised as a :class:`ConfigError` or :class:`DestinationError`, which the CLI prints as one line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .catalog import SelectedStream, discovered_streams, select_streams
from .config import Config, load_config_file, load_json_file
from .errors import ConfigError
from .http import HttpStats
from .memory import trimming_heap
from .streams import CORE_STREAMS, STREAMS

__all__ = ["default_catalog", "run_sync", "sync_into"]


def run_sync(args: argparse.Namespace) -> int:
    """Run one sync; returns the exit code (0 when every stream completed).

    Raises :class:`ConfigError` or :class:`~source_sentry.destination.DestinationError` for what
    the user must fix, before any stream is read.
    """
    from .destination.catalog import destination_streams
    from .progress import SyncProgress

    config = load_config_file(args.config)
    if args.catalog:
        catalog = load_json_file(args.catalog, "catalog")
        where = f"The catalog {args.catalog}"
    else:
        streams = [s.strip() for s in args.streams.split(",") if s.strip()] if args.streams else None
        catalog = default_catalog(config, streams, args.full_refresh)
        where = "The catalog"
    warnings: list[str] = []
    selected = select_streams(catalog, warnings, where)
    if not selected:
        raise ConfigError(f"{where} selects no stream: name at least one.")
    names = [s.stream.name for s in selected]
    destination_streams(catalog, where)  # what the destination cannot write, named before any request
    chosen = bool(args.catalog or args.streams)
    notes = _preflight(config, selected, chosen)
    progress = SyncProgress(names, quiet=args.quiet)
    for text in warnings + notes:
        progress.on_message({"type": "LOG", "log": {"level": "WARN", "message": text}})
    started = time.monotonic()
    ok = sync_into(config, catalog, args.destination, progress, reset=names if args.full_refresh else ())
    if ok and not args.quiet:
        path = Path(args.destination).resolve()
        print(f"\nSynced into {path} in {time.monotonic() - started:.1f} s.", file=sys.stderr)
        query = "select status, count(*) from issues group by 1"
        print(f"Query it:  {sys.executable} -c 'import duckdb; duckdb.connect(\"{path}\").sql(\"{query}\").show()'", file=sys.stderr)
    return 0 if ok else 1


def sync_into(
    config: Config,
    catalog: dict[str, Any],
    path: str,
    progress: Any,
    *,
    reset: Iterable[str] = (),
    lock: threading.RLock | None = None,
    adjust_state: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
) -> bool:
    """Read ``catalog``'s streams into the DuckDB file at ``path`` (its stored states first
    forgotten for ``reset``, then passed through ``adjust_state``); whether every stream completed.
    ``lock``: shared with the file's other writers in this process (``listen``)."""
    from .destination import DuckDBDestination
    from .read import run_read

    destination = DuckDBDestination(
        path,
        catalog,
        # Destination warnings (an overwrite drops history) go where the reader's do.
        on_warning=lambda text: progress.on_message({"type": "LOG", "log": {"level": "WARN", "message": text}}),
        expiring_streams=[s.name for s in STREAMS if s.expires],
        lock=lock,
        # DuckDB loads on a thread of its own (it releases the GIL) while the event loop reads.
        background=True,
    )
    stats = HttpStats()
    ok = False
    try:
        if reset:
            destination.reset_state(reset)
        state = destination.read_state()
        if adjust_state is not None:
            state = adjust_state(state)

        emit = _SyncSink(destination, progress)
        result = asyncio.run(trimming_heap(_with_progress(run_read(config, catalog, state, emit, stats=stats), progress, stats)))
        ok = result.ok
        destination.close()
    except BaseException:
        destination.abort()
        raise
    finally:
        progress.on_http(stats.requests, stats.pages, stats.rate_limited, stats.rate_limit_wait_seconds)
        progress.finish(ok)
    _refresh_views(path, lock)
    return ok


class _SyncSink:
    """The read's emitter in a sync (a :class:`~source_sentry.protocol.RecordSink`): every message to
    the destination and the progress display; records as bytes, never a dict per record."""

    def __init__(self, destination: Any, progress: Any) -> None:
        self._destination = destination
        self._progress = progress

    def __call__(self, message: dict[str, Any]) -> None:
        self._destination.write(message)
        self._progress.on_message(message)

    def records(self, stream: str, data: list[bytes], emitted_at: int) -> None:
        self._destination.write_records(stream, data, emitted_at)
        self._progress.on_records(stream, len(data))


def _refresh_views(path: str, lock: threading.RLock | None) -> None:
    """Create or replace the analytics views over whatever the file now holds."""
    from .destination.duckdb import connect_database
    from .destination.views import create_views

    with lock if lock is not None else threading.RLock():
        con = connect_database(path)
        try:
            create_views(con)
        finally:
            con.close()


def default_catalog(config: Config, streams: list[str] | None = None, full_refresh: bool = False) -> dict[str, Any]:
    """The configured catalog ``sync`` uses without one: ``streams`` (default: every stream, but
    the Explore datasets only where the config names them), incremental and deduplicated."""
    from .destination import default_configured_catalog

    if streams is None:
        # The Explore datasets can be far larger than everything else together.
        streams = [s.name for s in STREAMS if not s.opt_in or s.dataset in config.explore_datasets]
    return default_configured_catalog({"streams": discovered_streams()}, streams, full_refresh)


def _preflight(config: Config, selected: list[SelectedStream], chosen: bool) -> list[str]:
    """Check the connection as ``check`` does, before the destination is opened; returns its notes.

    Raises :class:`ConfigError` with check's message when it fails: a host that does not resolve,
    a bad token, an unknown organization or project, a missing scope. Scopes fail it for the
    streams the user chose (``--streams`` or a catalog); for the default selection (every stream)
    only for Airbyte's Sentry streams, the rest being noted and failed alone by the read.
    """
    from .read import check_connection

    names = [s.stream.name for s in selected]
    required = names if chosen else [name for name in names if name in CORE_STREAMS]
    result = asyncio.run(check_connection(config, required))
    if not result.ok:
        raise ConfigError(result.message)
    return list(result.notes)


async def _with_progress(coro: Any, progress: Any, stats: HttpStats) -> Any:
    """Run ``coro`` while feeding HTTP counters to the progress display twice a second."""
    task = asyncio.ensure_future(coro)
    while not task.done():
        await asyncio.wait({task}, timeout=0.5)
        progress.on_http(stats.requests, stats.pages, stats.rate_limited, stats.rate_limit_wait_seconds)
    return task.result()
