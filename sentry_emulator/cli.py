"""`sentry-emulator`: serve an emulated Sentry until SIGTERM/SIGINT; print one JSON line when ready."""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime, timezone

import orjson

from .emulator import Emulator
from .explore import DATASETS
from .faults import FaultTable, parse_fault_spec
from .pagination import FULL_PAGE_SIZE
from .ratelimit import RateLimits, RateLimitSetting
from .timeutil import US, BadParam, parse_iso

__all__ = ["build_parser", "main"]


def _one_line_help(prog: str) -> argparse.HelpFormatter:
    # Wide enough that every option and its help fit on one line.
    return argparse.HelpFormatter(prog, max_help_position=56, width=240)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sentry-emulator", formatter_class=_one_line_help,
                                description="Serve an emulated Sentry web API on loopback until SIGTERM/SIGINT; "
                                            "prints one JSON line (base_url, token, organization, projects) when ready.")
    p.add_argument("--port", type=int, default=0, help="TCP port to listen on; 0 picks a free one (default: 0)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated data: same seed, same ids and contents (default: 1)")
    p.add_argument("--organization", default="acme", help="slug of the one organization (default: acme)")
    p.add_argument("--projects", type=int, default=3, help="number of projects: backend, frontend, mobile, project-4, ... (default: 3)")
    p.add_argument("--events-per-project", type=int, default=300, help="generated events per project (default: 300)")
    p.add_argument("--issues-per-project", type=int, default=40,
                   help="generated issues per project, at most the events per project (default: 40)")
    p.add_argument("--releases", type=int, default=25, help="generated releases, org-wide (default: 25)")
    p.add_argument("--days", type=float, default=30,
                   help="days of history the generated events span, ending at the anchor (see --start-time) "
                        "(default: 30)")
    p.add_argument("--retention-days", type=float, default=90, help="event retention in days: older events are gone (default: 90)")
    p.add_argument("--rate-limits", choices=["none", "sentry", "custom"], default="none",
                   help="none: no limits, no headers; sentry: 40/1 s, 25 concurrent, events 60/60 s, 1 concurrent; "
                        "custom: the --limit ... --events-concurrent values (default: none)")
    defaults = RateLimits()
    for flag, value, meaning in (
            ("limit", defaults.limit, "requests per window, per token and endpoint"),
            ("window", defaults.window, "window length in seconds"),
            ("concurrent", defaults.concurrent, "requests in flight per token and endpoint"),
            ("events-limit", defaults.events_limit, "requests per window on the project events list"),
            ("events-window", defaults.events_window, "window length in seconds on the project events list"),
            ("events-concurrent", defaults.events_concurrent, "requests in flight on the project events list"),
            ("explore-limit", defaults.explore_limit, "requests per window on Explore (organization events)"),
            ("explore-window", defaults.explore_window, "window length in seconds on Explore"),
            ("explore-concurrent", defaults.explore_concurrent, "requests in flight on Explore")):
        p.add_argument(f"--{flag}", type=int, default=value,
                       help=f"with --rate-limits custom: {meaning} (default: {value})")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay before every API answer, in milliseconds (default: 0)")
    p.add_argument("--jitter-ms", type=float, default=0.0,
                   help="extra uniform random delay of 0 to this many milliseconds per answer (default: 0)")
    p.add_argument("--tls", action="store_true",
                   help="serve https with a throwaway CA; the ready line gains ca_cert (needs trustme) (default: off)")
    p.add_argument("--admin", action="store_true", help="enable the /_emulator/ admin paths (default: off)")
    p.add_argument("--token", default=None, help="use this value as the all-scopes token (default: a generated sntryu_ token)")
    p.add_argument("--token-teams", default=None, metavar="SLUGS",
                   help="comma-separated team slugs the token's user is a member of; an organization endpoint "
                        "asked without project= serves only their projects (default: a member of every project)")
    p.add_argument("--region-url", default=None, help="links.regionUrl of the organization (default: the emulator's own URL)")
    p.add_argument("--scope-rules", choices=["strict", "sentry"], default="sentry",
                   help="sentry: any scope Sentry accepts per endpoint; strict: exactly one scope each (default: sentry)")
    p.add_argument("--teams", type=int, default=None, help="number of teams (default: about one per two projects, at most 4)")
    p.add_argument("--members", type=int, default=None, help="active members, plus one pending invite (default: 6)")
    p.add_argument("--monitors", type=int, default=None, help="cron monitors (default: min(3, projects))")
    p.add_argument("--offset-paging", action="store_true",
                   help="page the issues lists by offset (LIMIT:PAGE:0 cursors) like releases, not keyed (default: off)")
    p.add_argument("--fault", action="append", default=[], metavar="KIND[:PATH_REGEX[:TIMES]]",
                   help="inject a fault at start (repeatable): KIND an HTTP status (503) or a named kind of docs/emulator.md, "
                        "PATH_REGEX default .*, TIMES default 1, -1 = forever (default: none)")
    p.add_argument("--fault-seconds", type=float, default=30.0, help="how long a stall fault holds a request, in seconds (default: 30)")
    p.add_argument("--fault-bytes-per-second", type=float, default=20.0,
                   help="rate at which a drip fault writes the body, in bytes per second (default: 20)")
    p.add_argument("--start-time", type=_start_time, default=None, metavar="ISO",
                   help="pin the data anchor and the clock's start (default: history ends at 00:00 UTC today, "
                        "clock = wall clock)")
    p.add_argument("--live-events-per-hour", type=float, default=0.0,
                   help="per project: generated events that keep arriving after the anchor, per hour (default: 0)")
    p.add_argument("--full-page-size", type=int, default=FULL_PAGE_SIZE,
                   help=f"most events per page with full=true, as Sentry since 2026-09 0: as per_page asks (default: {FULL_PAGE_SIZE})")
    p.add_argument("--sessions-max-points", type=int, default=10_000, metavar="N",
                   help="most data points (groups x intervals) a sessions answer holds; more groups are dropped (default: 10000)")
    p.add_argument("--explore-rows-per-hour", action="append", default=[], metavar="DATASET=N",
                   help="Explore rows per project and hour of spans, logs, uptime_results or tracemetrics (default: 6, 8, 4, 3)")
    p.add_argument("--explore-max-offset", type=int, default=10_000, metavar="N",
                   help="an Explore page from this row offset on is a 400 'Pagination offset too large' (default: 10000)")
    p.add_argument("--explore-full-fidelity-days", type=float, default=30, metavar="DAYS",
                   help="Explore samples queries whose start lies further back, in days (default: 30)")
    p.add_argument("--replays-per-hour", type=int, default=2, help="session replays per project and hour (default: 2)")
    p.add_argument("--explore-datasets", metavar="LIST",
                   help="comma-separated Explore datasets served, as an older server serves fewer (default: all six)")
    return p


def _rows_per_hour(specs: list[str]) -> dict[str, int]:
    out = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not value.strip().isdigit():
            raise ValueError(f"expected DATASET=N, not {spec!r}")
        out[name.strip()] = int(value)
    return out


def _faults(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """The --fault specs parsed and checked (an unknown kind is a usage error, before serving)."""
    table, parsed = FaultTable(), []
    for spec in args.fault:
        kind, path, times = parse_fault_spec(spec)
        table.add(kind, path, times)  # raises ValueError on a bad kind or regex
        parsed.append((kind, path, times))
    return parsed


def _start_time(text: str) -> datetime:
    """An ISO-8601 datetime (naive = UTC) as a tz-aware datetime."""
    try:
        us = parse_iso(text)
    except BadParam as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return datetime.fromtimestamp(us / US, tz=timezone.utc)


def _rate_limits(args: argparse.Namespace) -> RateLimitSetting:
    if args.rate_limits == "sentry":
        return "sentry"
    if args.rate_limits != "custom":
        return "none"
    return RateLimits(limit=args.limit, window=args.window, concurrent=args.concurrent,
                      events_limit=args.events_limit, events_window=args.events_window,
                      events_concurrent=args.events_concurrent, explore_limit=args.explore_limit,
                      explore_window=args.explore_window, explore_concurrent=args.explore_concurrent)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults = _faults(args)
    except (ValueError, re.error) as err:
        parser.error(f"--fault: {err}")
    try:
        rows_per_hour = _rows_per_hour(args.explore_rows_per_hour)
    except ValueError as err:
        parser.error(f"--explore-rows-per-hour: {err}")
    datasets = [d for d in args.explore_datasets.split(",") if d] if args.explore_datasets else None
    if datasets is not None and set(datasets) - set(DATASETS):
        parser.error(f"--explore-datasets: each one of {', '.join(DATASETS)}")
    emu = Emulator(
        seed=args.seed, organization=args.organization, projects=args.projects,
        events_per_project=args.events_per_project, issues_per_project=args.issues_per_project,
        releases=args.releases, days=args.days, retention_days=args.retention_days,
        rate_limits=_rate_limits(args), latency_ms=args.latency_ms, jitter_ms=args.jitter_ms,
        tls=args.tls, admin=args.admin, host=args.host, port=args.port, token=args.token,
        token_teams=None if args.token_teams is None else [t for t in args.token_teams.split(",") if t],
        region_url=args.region_url, scope_rules=args.scope_rules, teams=args.teams, members=args.members,
        monitors=args.monitors, offset_paging=args.offset_paging, full_page_size=args.full_page_size or None,
        start_time=args.start_time, live_events_per_hour=args.live_events_per_hour,
        sessions_max_points=args.sessions_max_points, explore_rows_per_hour=rows_per_hour or None,
        explore_max_offset=args.explore_max_offset, explore_full_fidelity_days=args.explore_full_fidelity_days,
        replays_per_hour=args.replays_per_hour,
        explore_datasets=datasets,
    )
    for kind, path, times in faults:
        emu.inject_fault(kind, path=path, times=times, seconds=args.fault_seconds,
                         bytes_per_second=args.fault_bytes_per_second)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    emu.start()
    ready = {"base_url": emu.base_url, "token": emu.token, "organization": emu.organization,
             "projects": emu.project_slugs}
    if emu.ca_cert_path:
        ready["ca_cert"] = emu.ca_cert_path
    sys.stdout.write(orjson.dumps(ready).decode() + "\n")
    sys.stdout.flush()
    while not done.wait(0.5):
        pass
    emu.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
