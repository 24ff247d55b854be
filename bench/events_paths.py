"""Events per minute on sentry.io's limits, each way the connector reads them.

sentry.io serves at most 10 full events a page; its project events list allows 60 requests a
minute, one at a time; each issue's events list has the default limit, 40 a second and 25 at
a time (the emulator's ``sentry`` preset). The connector reads a narrow project list's older
windows issue by issue (README, "Events issue by issue"); with a token without ``event:read``
it cannot, and reads the project's list. Both are run here against the emulator in its own
process (30 ms latency, no TLS), each beside the bound of its path:

- project list: 60 pages a minute, 600 events a minute (the first 60 pages go at once, a
  fixed window: a run beats the sustained rate by that, so it reads several minutes' worth);
- issue by issue: each route's requests at its own limit, in parallel (the issue lists and the
  issues' events lists at 40 a second, the project list's newest hour at 1 a second); the
  slowest route sets the time.

Run: ``.venv/bin/python bench/events_paths.py [--events 6000] [--issues 150]
[--project-events 1800]`` (the project-list run reads ``--project-events`` events: at 600 a
minute a larger one only takes longer).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # the benchmark suite's emulator process and connector runner

PAGE = 10
LIMITS = {  # route -> (requests, per seconds): sentry.io's, as the emulator's "sentry" preset
    bench.EVENTS_ROUTE: (60, 60),
    "/api/0/organizations/{org}/issues/": (40, 1),
    "/api/0/organizations/{org}/issues/{issue_id}/events/": (40, 1),
}


def _at_the_limit(requests: int, limit: tuple[int, int]) -> float:
    """The time ``requests`` take at ``limit``'s sustained rate. A run may beat it by up to one
    window's worth: the first window's requests go at once (60 pages of the project list)."""
    per, window = limit
    return requests * window / per


def _token_without_event_read(emu: bench.Emu) -> str:
    body = json.dumps({"scopes": ["project:read", "org:read"]}).encode()
    req = urllib.request.Request(emu.base_url + "/_emulator/tokens", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return str(json.loads(resp.read())["token"])


def _run(emu: bench.Emu, tmp: Path, name: str, token: str | None = None) -> dict[str, Any]:
    ours = bench.Ours(Path(bench.ROOT / ".venv" / "bin" / "source-sentry"))
    if token is not None:
        config = ours.config

        def with_token(e: bench.Emu, project: str | None) -> dict[str, Any]:
            return {**config(e, project), "auth_token": token}

        ours.config = with_token  # type: ignore[method-assign]
    emu.clear_requests()
    result = bench.read(ours, emu, tmp / name, project=emu.info["projects"][0], timeout=3600, streams=["events"])
    routes = Counter(r["route"] for r in emu.requests())
    statuses = Counter(r["status"] for r in emu.requests())
    # The time each route needs at its limit; the routes run in parallel: the slowest sets the bound.
    bound_s = max(_at_the_limit(n, LIMITS[route]) for route, n in routes.items() if route in LIMITS)
    return {
        "records": result["records"],
        "wall_s": result["wall_s"],
        "events_per_minute": result["records"] / result["wall_s"] * 60,
        "bound_s": bound_s,
        "bound_events_per_minute": result["records"] / bound_s * 60,
        "requests": dict(routes),
        "429s": statuses.get(429, 0),
        "rc": result["rc"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--issues", type=int, default=150)
    parser.add_argument("--project-events", type=int, default=1800)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, events in (("issue by issue", args.events), ("project list", args.project_events)):
            kw = {"projects": 1, "events": events, "issues": args.issues, "releases": 5, "days": 30,
                  "rate_limits": "sentry", "latency_ms": 30}
            with bench.Emu(**kw) as emu:  # type: ignore[arg-type]
                token = _token_without_event_read(emu) if name == "project list" else None
                rows[name] = _run(emu, Path(tmp), name.replace(" ", "_"), token)
            print(name, json.dumps(rows[name]), flush=True)
    print("\n| path | events | wall (s) | events/min | bound (s) | events/min at the bound | requests by route | 429s |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for name, r in rows.items():
        requests = ", ".join(f"`{route.split('/api/0/')[1]}` {n}" for route, n in sorted(r["requests"].items()))
        print(f"| {name} | {r['records']:,} | {r['wall_s']:.1f} | {r['events_per_minute']:,.0f} | {r['bound_s']:.1f} | "
              f"{r['bound_events_per_minute']:,.0f} | {requests} | {r['429s']} |")
    ratio = rows["issue by issue"]["events_per_minute"] / rows["project list"]["events_per_minute"]
    print(f"\nissue by issue / project list: {ratio:.1f}x events per minute")


if __name__ == "__main__":
    main()
