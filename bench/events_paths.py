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

Two bounds per run. "Sustained": each route's requests at its sustained rate (requests /
limit x window), the slowest route. "From the start" (the one the target is measured against,
as ``bench/run.py``'s lower bound): the greedy schedule of each route's distinct successful
requests under its limit, window and concurrency, from the moment the connector process
started, in the window phase the run met (a first window that ends early still holds a full
limit), each request taking the emulator's service time; the issues' events lists no earlier
than the project's detail and the first page of the issue list (they need the project's id
and the issues' ids), and no earlier done than the longest issue's chain of pages after that.

Run ``i`` of ``--runs n`` starts ``i / n`` into a second (the phase of the 1-s windows it meets:
a start-up that ends after the first window has lost that window's requests).

Run: ``.venv/bin/python bench/events_paths.py [--events 6000] [--issues 150]
[--project-events 1800] [--paths issue,project] [--runs 1] [--exe PATH] [--latency-ms 30]`` (the project-list run reads
``--project-events`` events: at 600 a minute a larger one only takes longer).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # the benchmark suite's emulator process and connector runner

PAGE = 10
ISSUES = "/api/0/organizations/{org}/issues/"
ISSUE_EVENTS = "/api/0/organizations/{org}/issues/{issue_id}/events/"
PROJECT = "/api/0/projects/{org}/{project}/"
LIMITS = {  # route -> (requests, per seconds, at a time): sentry.io's, the emulator's "sentry" preset
    bench.EVENTS_ROUTE: (60, 60, 1),
    ISSUES: (40, 1, 25),
    ISSUE_EVENTS: (40, 1, 25),
    PROJECT: (40, 1, 25),
}


def _at_the_limit(requests: int, limit: tuple[int, int, int]) -> float:
    """The time ``requests`` take at ``limit``'s sustained rate. A run may beat it by up to one
    window's worth: the first window's requests go at once (60 pages of the project list)."""
    per, window, _ = limit
    return requests * window / per


def _from_the_start(reqs: list[dict[str, Any]], t0: float) -> float:
    """The shortest time from the process start ``t0`` in which the run's distinct successful
    requests fit Sentry's per-route limits (see the module docstring)."""
    needed: dict[tuple[str, str], dict[str, Any]] = {}
    for r in reqs:
        if r["status"] == 200:
            needed.setdefault((r["path"], bench._query_key(r["query"])), r)
    by_route: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(needed.values(), key=lambda r: r["received_at"]):
        by_route[r["route"]].append(r)

    def service(r: dict[str, Any]) -> float:
        return float(r["duration_ms"]) / 1000

    def first(route: str) -> float:
        return min((service(r) for r in by_route.get(route, [])), default=0.0)

    ends = [0.0]
    for route, rs in by_route.items():
        start = t0
        if route == ISSUE_EVENTS:  # the project's id, then the issues' ids
            start += first(PROJECT) + first(ISSUES)
        limit, window, at_a_time = LIMITS.get(route, LIMITS[PROJECT])
        ends.append(start - t0 + bench.min_time_for_class([service(r) for r in rs], limit, window, at_a_time, start))
    chains: dict[tuple[str, str], float] = defaultdict(float)
    for r in by_route.get(ISSUE_EVENTS, []):
        chains[(r["path"], bench._query_key(r["query"], drop=("cursor",)))] += service(r)
    if chains:
        ends.append(first(PROJECT) + first(ISSUES) + max(chains.values()))
    return max(ends)


def _token_without_event_read(emu: bench.Emu) -> str:
    body = json.dumps({"scopes": ["project:read", "org:read"]}).encode()
    req = urllib.request.Request(emu.base_url + "/_emulator/tokens", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return str(json.loads(resp.read())["token"])


def _run(emu: bench.Emu, tmp: Path, name: str, conn: bench.Connector, token: str | None = None) -> dict[str, Any]:
    if token is not None:
        config = conn.config

        def with_token(e: bench.Emu, project: str | None) -> dict[str, Any]:
            return {**config(e, project), "auth_token": token}

        conn.config = with_token  # type: ignore[method-assign,assignment]
    emu.clear_requests()
    result = bench.read(conn, emu, tmp / name, project=emu.info["projects"][0], timeout=3600, streams=["events"])
    reqs = emu.requests()
    routes = Counter(r["route"] for r in reqs)
    statuses = Counter(r["status"] for r in reqs)
    summary = bench.summarize_requests(reqs)
    # The time each route needs at its limit; the routes run in parallel: the slowest sets the bound.
    bound_s = max(_at_the_limit(n, LIMITS[route]) for route, n in routes.items() if route in LIMITS)
    start_bound_s = _from_the_start(reqs, result["t0"])
    first = min((r["received_at"] for r in reqs), default=result["t0"]) - result["t0"]
    # The same from the first request's arrival: what the process's start-up costs is the difference.
    first_bound_s = first + _from_the_start(reqs, result["t0"] + first)
    return {
        "connector": conn.name,
        "records": result["records"],
        "wall_s": result["wall_s"],
        "events_per_minute": result["records"] / result["wall_s"] * 60,
        "bound_s": bound_s,
        "bound_events_per_minute": result["records"] / bound_s * 60,
        "start_bound_s": start_bound_s,
        "wall_to_start_bound": result["wall_s"] / start_bound_s,
        "wall_to_bound_from_first_request": result["wall_s"] / first_bound_s,
        "first_request_s": first,
        "window_phase": result["t0"] % 1,
        "requests": dict(routes),
        "429s": statuses.get(429, 0),
        "repeated": summary["duplicate_200"],
        "rc": result["rc"],
        "load": Path("/proc/loadavg").read_text().split()[0],
    }


PATHS = {"issue": "issue by issue", "project": "project list"}
PEER = "project list, peer"  # the peer has one path: the project's list, rate-limit headers ignored


def measure_paths(paths: list[str], *, events: int, issues: int, project_events: int, runs: int,
                  exe: Path | None = None, peer: bench.Peer | None = None,
                  latency_ms: int = 30) -> dict[str, list[dict[str, Any]]]:
    """Runs of each path (``issue``, ``project``), one emulator per path, each answer
    ``latency_ms`` away; with ``peer``, the peer on the project path's data (a TLS emulator of
    its own: the peer forces https)."""
    exe = exe or Path(bench.ROOT / ".venv" / "bin" / "source-sentry")
    # One connector per path: the project path's runs swap its token for one without event:read.
    plan: list[tuple[str, int, bench.Connector]] = [
        (PATHS[p], events if p == "issue" else project_events, bench.Ours(exe)) for p in paths]
    if peer is not None:
        plan.append((PEER, project_events, peer))
    rows: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-events-paths-") as tmp:
        for name, n, conn in plan:
            kw = {"projects": 1, "events": n, "issues": issues, "releases": 5, "days": 30,
                  "rate_limits": "sentry", "latency_ms": latency_ms, "tls": conn is peer}
            with bench.Emu(**kw) as emu:  # type: ignore[arg-type]
                token = _token_without_event_read(emu) if name == PATHS["project"] else None
                for i in range(runs):
                    # Run i starts i / runs into a second: the phase of the 1-s windows it meets.
                    time.sleep((i / runs - time.time()) % 1.0)
                    row = _run(emu, Path(tmp), f"{name.replace(' ', '_').replace(',', '')}{i}", conn, token)
                    rows.setdefault(name, []).append(row)
                    print(name, json.dumps(row), file=sys.stderr, flush=True)
    return rows


def markdown_table(rows: dict[str, list[dict[str, Any]]]) -> str:
    """One line per run of each path, as docs/benchmarks.md shows them."""
    lines = ["| path | events | wall (s) | events/min | sustained bound (s) | events/min at it | bound from the start (s) "
             "| wall / bound from the start | start phase, first request (s) | wall / bound from the first request "
             "| requests by route | 429s | repeated |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for name, runs in rows.items():
        for r in runs:
            requests = ", ".join(f"`{route.split('/api/0/')[1]}` {n}" for route, n in sorted(r["requests"].items()))
            lines.append(
                f"| {name} | {r['records']:,} | {r['wall_s']:.1f} | {r['events_per_minute']:,.0f} | {r['bound_s']:.1f} | "
                f"{r['bound_events_per_minute']:,.0f} | {r['start_bound_s']:.2f} | {r['wall_to_start_bound']:.3f}x "
                f"| {r['window_phase']:.2f}, {r['first_request_s']:.2f} | {r['wall_to_bound_from_first_request']:.3f}x "
                f"| {requests} | {r['429s']} | {r['repeated']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--issues", type=int, default=150)
    parser.add_argument("--project-events", type=int, default=1800)
    parser.add_argument("--paths", default="issue,project", help="which paths to run: issue, project or both")
    parser.add_argument("--runs", type=int, default=1, help="runs of each path (one emulator per path)")
    parser.add_argument("--exe", type=Path, help="the connector's executable (default: this checkout's venv)")
    parser.add_argument("--latency-ms", type=int, default=30, help="the emulator's answer latency (default 30)")
    args = parser.parse_args()
    rows = measure_paths(args.paths.split(","), events=args.events, issues=args.issues,
                         project_events=args.project_events, runs=args.runs, exe=args.exe,
                         latency_ms=args.latency_ms)
    print("\n" + markdown_table(rows))
    if len(rows) == 2:
        ratio = rows[PATHS["issue"]][0]["events_per_minute"] / rows[PATHS["project"]][0]["events_per_minute"]
        print(f"\nissue by issue / project list: {ratio:.1f}x events per minute")


if __name__ == "__main__":
    main()
