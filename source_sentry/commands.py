"""The commands (spec, check, discover, read, sync, listen, report) behind :mod:`.cli`.

Protocol commands write only protocol messages to stdout. Every failure a user can cause
ends as a CONNECTION_STATUS (check) or an ERROR trace with its ``failure_type`` and a
non-zero exit; an unexpected exception is reported as a ``system_error`` trace, never as a
bare traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from collections.abc import Callable

from . import __version__, protocol
from .config import Config, load_config_file, load_json_file
from .errors import ConfigError, SentrySourceError, redact

__all__ = ["main"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, as Airbyte (or `docker stop`) sends to cancel: stops a command as Ctrl-C does."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``source-sentry``; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    writer = protocol.StdoutWriter()
    # In a container the connector is PID 1, which the kernel sends no SIGTERM it has no handler
    # for: without this, `docker stop` (or Airbyte cancelling a sync) waits for its SIGKILL.
    # `listen` installs its own handler (a graceful stop).
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.handler(args, writer))
    except SentrySourceError as exc:
        writer(protocol.error_trace(redact(exc.message), exc.failure_type, internal_message=redact(exc.internal)))
        return 1
    except KeyboardInterrupt as exc:
        return 128 + signal.SIGTERM if isinstance(exc, Terminated) else 130
    except Exception as exc:
        stack = redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        writer(
            protocol.error_trace(
                redact(f"source-sentry failed unexpectedly: {type(exc).__name__}: {exc}"),
                "system_error",
                internal_message=redact(repr(exc)),
                stack_trace=stack,
            )
        )
        return 1
    finally:
        writer.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="source-sentry",
        description="Airbyte source for Sentry: copies events, issues, projects and releases incrementally.",
    )
    parser.add_argument("--version", action="version", version=f"source-sentry {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("spec", help="print the connector's configuration specification")
    p.set_defaults(handler=_spec)

    p = sub.add_parser("check", help="check that the config can connect and read")
    p.add_argument("--config", required=True, help="path to the config JSON file")
    p.add_argument(
        "--catalog",
        help="a configured catalog: check the scopes its streams need (default: events, issues, projects, releases)",
    )
    p.set_defaults(handler=_check)

    p = sub.add_parser("discover", help="print the catalog of streams and their schemas")
    p.add_argument("--config", required=True, help="path to the config JSON file")
    p.set_defaults(handler=_discover)

    p = sub.add_parser("read", help="read the configured streams as Airbyte protocol messages")
    p.add_argument("--config", required=True, help="path to the config JSON file")
    p.add_argument("--catalog", required=True, help="path to the configured catalog JSON file")
    p.add_argument("--state", help="path to the state JSON file (a list of state messages)")
    p.set_defaults(handler=_read)

    p = sub.add_parser("sync", help="sync streams into a local DuckDB file (no Airbyte needed)")
    p.add_argument("--config", required=True, help="path to the config JSON file")
    p.add_argument("--destination", required=True, help="path of the DuckDB file to write (created if missing)")
    p.add_argument(
        "--streams", help="comma-separated stream names (default: all but the Explore datasets the config does not name)"
    )
    p.add_argument("--catalog", help="an Airbyte configured catalog JSON file: per-stream sync_mode and destination_sync_mode")
    p.add_argument("--full-refresh", action="store_true", help="read everything again and replace the tables (Full Refresh | Overwrite)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(handler=_sync)

    p = sub.add_parser("listen", help="own a DuckDB file: sync it now and then, apply Sentry's webhooks in between")
    p.add_argument("--config", required=True, help="path to the config JSON file (with webhook_secret)")
    p.add_argument("--destination", required=True, help="path of the DuckDB file to write (created if missing)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free one (default: 8765)")
    p.add_argument("--sync-every", type=float, default=15.0, metavar="MINUTES",
                   help="minutes between incremental syncs; 0: only the one at start (default: 15)")
    p.add_argument("--max-body-bytes", type=int, default=10 << 20, help="larger webhooks get 413 (default: 10 MB)")
    p.set_defaults(handler=_listen)

    p = sub.add_parser("report", help="write one self-contained HTML report of a synced DuckDB file")
    p.add_argument("--destination", required=True, help="the DuckDB file sync wrote")
    p.add_argument("--output", default="report.html", help="the HTML file to write (default: report.html)")
    p.add_argument("--days", type=int, default=30, help="how many days back the charts go (default: 30)")
    p.set_defaults(handler=_report)
    return parser


def _spec(args: argparse.Namespace, emit: protocol.Emit) -> int:
    from .spec import SPEC

    emit(protocol.spec_message(SPEC))
    return 0


def _check(args: argparse.Namespace, emit: protocol.Emit) -> int:
    import asyncio  # here, not at the top: spec needs neither asyncio nor the ssl it imports

    from .catalog import select_streams
    from .read import check_connection

    try:
        config = load_config_file(args.config)
        streams = None
        if args.catalog:
            streams = [s.stream.name for s in select_streams(load_json_file(args.catalog, "catalog"), [])]
    except ConfigError as exc:
        emit(protocol.connection_status(False, redact(exc.message)))
        return 0
    result = asyncio.run(check_connection(config, streams))
    emit(protocol.connection_status(result.ok, redact(result.message)))
    return 0


def _discover(args: argparse.Namespace, emit: protocol.Emit) -> int:
    from .catalog import discovered_streams

    load_config_file(args.config)  # a broken config fails here, as it would in read
    emit(protocol.catalog_message(discovered_streams()))
    return 0


def _read(args: argparse.Namespace, emit: protocol.Emit) -> int:
    import asyncio

    from .memory import trimming_heap, tune_gc
    from .read import run_read

    config: Config = load_config_file(args.config)
    catalog = load_json_file(args.catalog, "catalog")
    state = load_json_file(args.state, "state") if args.state else None
    tune_gc()
    result = asyncio.run(trimming_heap(run_read(config, catalog, state, emit)))
    return 0 if result.ok else 1


def _sync(args: argparse.Namespace, emit: protocol.Emit) -> int:
    from .sync import run_sync

    return _for_a_person("sync", run_sync, args)


def _listen(args: argparse.Namespace, emit: protocol.Emit) -> int:
    from .listen import run_listen

    try:
        return _for_a_person("listen", run_listen, args)
    except OSError as exc:  # the address is taken or not ours
        print(f"source-sentry listen: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def _report(args: argparse.Namespace, emit: protocol.Emit) -> int:
    from .report import run_report

    return _for_a_person("report", run_report, args)


def _for_a_person(command: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command a person runs (sync, listen): what they must fix is one plain sentence on
    stderr and exit code 1, not protocol messages."""
    from .destination import DestinationError

    try:
        return run(args)
    except (SentrySourceError, DestinationError) as exc:
        print(f"source-sentry {command}: {redact(exc.message)}", file=sys.stderr)
        return 1
