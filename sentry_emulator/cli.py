"""`sentry-emulator`: serve an emulated Sentry until SIGTERM/SIGINT; print one JSON line when ready."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime, timezone

import orjson

from .emulator import Emulator
from .pagination import FULL_PAGE_SIZE
from .ratelimit import RateLimits, RateLimitSetting
from .timeutil import US, BadParam, parse_iso

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sentry-emulator", description="Serve an emulated Sentry web API.")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--organization", default="acme")
    p.add_argument("--projects", type=int, default=3)
    p.add_argument("--events-per-project", type=int, default=300)
    p.add_argument("--issues-per-project", type=int, default=40)
    p.add_argument("--releases", type=int, default=25)
    p.add_argument("--days", type=float, default=30)
    p.add_argument("--retention-days", type=float, default=90)
    p.add_argument("--rate-limits", choices=["none", "sentry", "custom"], default="none")
    defaults = RateLimits()
    for flag, value in (("limit", defaults.limit), ("window", defaults.window),
                        ("concurrent", defaults.concurrent), ("events-limit", defaults.events_limit),
                        ("events-window", defaults.events_window), ("events-concurrent", defaults.events_concurrent)):
        p.add_argument(f"--{flag}", type=int, default=value, help=f"custom rate limits (default {value})")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--tls", action="store_true", help="serve https with a throwaway CA (needs trustme)")
    p.add_argument("--admin", action="store_true", help="enable the /_emulator/ admin paths")
    p.add_argument("--token", default=None, help="use this value as the all-scopes token")
    p.add_argument("--region-url", default=None, help="links.regionUrl of the organization (default: itself)")
    p.add_argument("--scope-rules", choices=["strict", "sentry"], default="sentry")
    p.add_argument("--teams", type=int, default=None)
    p.add_argument("--members", type=int, default=None)
    p.add_argument("--monitors", type=int, default=None)
    p.add_argument("--start-time", type=_start_time, default=None, metavar="ISO",
                   help="pin the data anchor and the clock's start (default: history ends at 00:00 UTC today, "
                        "clock = wall clock)")
    p.add_argument("--live-events-per-hour", type=float, default=0.0,
                   help="per project: generated events that keep arriving after the anchor (default 0)")
    p.add_argument("--full-page-size", type=int, default=FULL_PAGE_SIZE,
                   help=f"most events per page with full=true, as Sentry since 2026-09 (default {FULL_PAGE_SIZE}; 0: per_page)")
    return p


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
                      events_concurrent=args.events_concurrent)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    emu = Emulator(
        seed=args.seed, organization=args.organization, projects=args.projects,
        events_per_project=args.events_per_project, issues_per_project=args.issues_per_project,
        releases=args.releases, days=args.days, retention_days=args.retention_days,
        rate_limits=_rate_limits(args), latency_ms=args.latency_ms, jitter_ms=args.jitter_ms,
        tls=args.tls, admin=args.admin, host=args.host, port=args.port, token=args.token,
        region_url=args.region_url, scope_rules=args.scope_rules, teams=args.teams, members=args.members,
        monitors=args.monitors, full_page_size=args.full_page_size or None, start_time=args.start_time,
        live_events_per_hour=args.live_events_per_hour,
    )
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
