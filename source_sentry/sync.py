"""``source-sentry sync``: the connector's own reader writing straight into DuckDB.

The same :func:`source_sentry.read.run_read` that serves ``read`` produces the messages;
instead of stdout they go to :class:`~source_sentry.destination.duckdb.DuckDBDestination`,
which commits each stream's records together with the state that covers them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from .config import load_config_file
from .errors import ConfigError
from .http import HttpStats
from .memory import trimming_heap

__all__ = ["run_sync"]


def run_sync(args: argparse.Namespace) -> int:
    """Run one sync; returns the exit code (0 when every stream completed)."""
    from .catalog import discovered_streams
    from .destination import DuckDBDestination, default_configured_catalog
    from .progress import SyncProgress
    from .read import run_read

    config = load_config_file(args.config)
    if args.catalog:
        try:
            catalog = orjson.loads(Path(args.catalog).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"Cannot read the catalog file {args.catalog}: {exc}.") from None
    else:
        streams = [s.strip() for s in args.streams.split(",") if s.strip()] if args.streams else None
        try:
            catalog = default_configured_catalog({"streams": discovered_streams()}, streams, args.full_refresh)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    names = _catalog_stream_names(catalog, args.catalog)
    progress = SyncProgress(names, quiet=args.quiet)
    stats = HttpStats()
    try:
        destination = DuckDBDestination(
            args.destination,
            catalog,
            # Destination warnings (an events overwrite drops history) go where the reader's do.
            on_warning=lambda text: progress.on_message({"type": "LOG", "log": {"level": "WARN", "message": text}}),
        )
    except ValueError as exc:  # the catalog's modes or keys do not fit the streams
        raise ConfigError(f"The catalog {args.catalog or ''} cannot be used: {exc}") from None
    ok = False
    try:
        if args.full_refresh:
            destination.reset_state(names)
        state = destination.read_state()

        def emit(message: dict[str, Any]) -> None:
            destination.write(message)
            progress.on_message(message)

        started = time.monotonic()
        result = asyncio.run(trimming_heap(_with_progress(run_read(config, catalog, state, emit, stats=stats), progress, stats)))
        ok = result.ok
        destination.close()
    except BaseException:
        destination.abort()
        raise
    finally:
        progress.on_http(stats.requests, stats.pages, stats.rate_limited, stats.rate_limit_wait_seconds)
        progress.finish(ok)
    if not args.quiet:
        elapsed = time.monotonic() - started
        path = Path(args.destination).resolve()
        print(f"\nSynced into {path} in {elapsed:.1f} s.", file=sys.stderr)
        query = "select status, count(*) from issues group by 1"
        print(f"Query it:  {sys.executable} -c 'import duckdb; duckdb.connect(\"{path}\").sql(\"{query}\").show()'", file=sys.stderr)
    return 0 if ok else 1


def _catalog_stream_names(catalog: Any, path: str | None) -> list[str]:
    """The stream names of a configured catalog, or a ConfigError saying what is wrong with it."""
    where = f"The catalog {path}" if path else "The catalog"
    entries = catalog.get("streams") if isinstance(catalog, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f'{where} must be a JSON object with a non-empty "streams" list (an Airbyte configured catalog).')
    names = []
    for i, entry in enumerate(entries):
        stream = entry.get("stream") if isinstance(entry, dict) else None
        name = stream.get("name") if isinstance(stream, dict) else None
        if not isinstance(name, str):
            raise ConfigError(f'{where}: streams[{i}] needs a "stream" object with a "name".')
        names.append(name)
    return names


async def _with_progress(coro: Any, progress: Any, stats: HttpStats) -> Any:
    """Run ``coro`` while feeding HTTP counters to the progress display twice a second."""
    task = asyncio.ensure_future(coro)
    while not task.done():
        await asyncio.wait({task}, timeout=0.5)
        progress.on_http(stats.requests, stats.pages, stats.rate_limited, stats.rate_limit_wait_seconds)
    return task.result()

