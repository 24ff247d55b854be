"""Issue 19's targets, each judged from the saved results of ``bench/run.py`` (no measuring here).

``render_targets(results)`` gives the "Targets" table of the results section of
docs/benchmarks.md: per target the measured value, the target, met / not met (or not measured,
with the reason) and the ``bench/run.py`` command that reproduces the row. ``render_details``
gives the tables of the ``sync`` and ``events_paths`` scenarios the rows are drawn from.

Only the standard library and ``events_paths``' table formatter: a test renders a fixture.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HEADING = "#### Issue 19's targets, judged from these results"
MB_LIMIT = 150.0  # peak RSS under 150 MB, `read` and `sync`
ISSUE, PROJECT = "issue by issue", "project list"  # events_paths' path names (PATHS there)
RATE_LIMITED = ("full_sync", "full_sync_windows", "org")  # scenarios run on sentry.io's limits


@dataclass(frozen=True)
class Verdict:
    measured: str
    met: bool | None  # None: not measured (``measured`` says why)


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    scenario: str  # the --only name that measures it
    judge: Callable[[dict[str, Any]], Verdict]


def _get(tree: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _missing(scenarios: dict[str, Any], name: str, what: str = "") -> Verdict | None:
    """A verdict of "not measured" when scenario ``name`` (or its part ``what``) is not in the JSON."""
    res = scenarios.get(name)
    if res is None:
        return Verdict(f"not measured: no `{name}` scenario in the saved results", None)
    if "failed" in res:
        return Verdict(f"not measured: the `{name}` scenario failed ({res['failed']})", None)
    if what and res.get(what) is None:
        return Verdict(f"not measured: no {what} in the `{name}` results", None)
    return None


def _ratio_target(scenarios: dict[str, Any], name: str, ours: tuple[str, ...], peer: tuple[str, ...],
                  unit: str, fmt: str, at_least: float) -> Verdict:
    """Peer / ours of one measure of scenario ``name``: met at ``at_least`` x or more."""
    missing = _missing(scenarios, name, "ours")
    if missing:
        return missing
    o, p = _get(scenarios[name], "ours", *ours), _get(scenarios[name], "peer", *peer)
    if o is None or p is None or not o:
        return Verdict(f"not measured: no peer in the `{name}` results (run without `--no-peer`)", None)
    ratio = p / o
    return Verdict(f"{fmt.format(o)} against the peer's {fmt.format(p)} {unit}: **{ratio:.1f}x**", ratio >= at_least)


def spec(s: dict[str, Any]) -> Verdict:
    return _ratio_target(s, "spec", ("median_wall_s",), ("median_wall_s",), "(median wall)", "{:.3f} s", 40)


def cpu(s: dict[str, Any]) -> Verdict:
    return _ratio_target(s, "cpu", ("cpu_s_per_10k",), ("cpu_s_per_10k",), "CPU s per 10,000 records", "{:.2f}", 10)


def marginal(runs: dict[str, Any] | None, low: str = "10000", high: str = "100000") -> float | None:
    """CPU s per 10,000 events between two sizes of the `memory` scenario (start-up left out)."""
    a, b = _get(runs, low), _get(runs, high)
    if not a or not b or b["records"] <= a["records"]:
        return None
    return float((b["cpu_s"] - a["cpu_s"]) / (b["records"] - a["records"]) * 10000)


def margin(s: dict[str, Any]) -> Verdict:
    missing = _missing(s, "memory", "ours")
    if missing:
        return missing
    o, p = marginal(s["memory"].get("ours")), marginal(s["memory"].get("peer"))
    if o is None or p is None:
        return Verdict("not measured: the `memory` results lack a 10k and a 100k read of both connectors "
                       "(`--quick` reads the peer at 10k only)", None)
    if o <= 0:
        return Verdict(f"ours {o:.2f} against the peer's {p:.2f} CPU s per 10,000 events: noise", None)
    return Verdict(f"{o:.2f} against the peer's {p:.2f} CPU s per 10,000 events (10k to 100k): **{p / o:.1f}x**", p / o >= 15)


def _sync_sizes(s: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return sorted((int(n), res["median"]) for n, res in (_get(s, "sync", "sizes") or {}).items() if res.get("median"))


def _at_sizes(s: dict[str, Any], pick: Callable[[dict[str, Any]], float | None], fmt: str,
              ok: Callable[[float], bool], least: int = 0) -> Verdict:
    """One measure of the `sync` scenario at each size: met when it is ``ok`` at every size of at
    least ``least`` events; not measured when no such size was run."""
    missing = _missing(s, "sync", "sizes")
    if missing:
        return missing
    values = [(n, v) for n, m in _sync_sizes(s) if (v := pick(m)) is not None]
    text = "; ".join(f"{n:,}: {fmt.format(v)}" for n, v in values) or "nothing"
    judged = [v for n, v in values if n >= least]
    if not judged:
        return Verdict(f"not measured at {least:,} events or more (measured {text})", None)
    return Verdict(text, all(ok(v) for v in judged))


def sync_over_read(s: dict[str, Any]) -> Verdict:
    def pick(m: dict[str, Any]) -> float | None:
        return m.get("sync_over_read_wall")

    verdict = _at_sizes(s, pick, "**{:.2f}x**", lambda v: v <= 1.3, least=100_000)
    cpu = "; ".join(f"{n:,}: sync {m['sync']['cpu_seconds']:.1f} CPU s against read {m['read']['cpu_seconds']:.1f}"
                    for n, m in _sync_sizes(s) if "sync" in m and "read" in m)
    return Verdict(verdict.measured + (f" (CPU {cpu})" if cpu else ""), verdict.met)


def sync_peak(s: dict[str, Any]) -> Verdict:
    return _at_sizes(s, lambda m: _get(m, "sync", "peak_rss_mib_vmhwm"), "**{:.1f} MB**", lambda v: v < MB_LIMIT)


def read_peak(s: dict[str, Any]) -> Verdict:
    missing = _missing(s, "memory", "ours")
    if missing:
        return missing
    peaks = {int(n): r["maxrss_mb"] for n, r in s["memory"]["ours"].items()}
    text = "; ".join(f"{n:,}: **{mb:.0f} MB**" for n, mb in sorted(peaks.items()))
    return Verdict(text, max(peaks.values()) < MB_LIMIT)


def flat_read(s: dict[str, Any]) -> Verdict:
    missing = _missing(s, "memory", "ours")
    if missing:
        return missing
    peaks = sorted((int(n), r["maxrss_mb"]) for n, r in s["memory"]["ours"].items())
    if len(peaks) < 2:
        return Verdict("not measured: one size only", None)
    (lo, a), (hi, b) = peaks[0], peaks[-1]
    grow = b / a
    return Verdict(f"{a:.0f} MB at {lo:,}, {b:.0f} MB at {hi:,} events: **{grow:.2f}x**", grow <= 1.2)


def pyairbyte(s: dict[str, Any]) -> Verdict:
    why = _get(s, "sync", "pyairbyte_not_measured")
    if why:
        return Verdict(f"not measured: {why}", None)

    def pick(m: dict[str, Any]) -> float | None:
        return m.get("sync_over_pyairbyte_records_per_second")

    verdict = _at_sizes(s, pick, "**{:.2f}x**", lambda v: v >= 3)
    # PyAirbyte runs our `read`: sync / PyAirbyte is bounded by (PyAirbyte / read) / (sync / read).
    bounds = "; ".join(
        f"{n:,}: {m['sync']['records_per_second']:,.0f} against {m['pyairbyte']['records_per_second']:,.0f} records/s, "
        f"PyAirbyte {m['pyairbyte']['peak_rss_mib_vmhwm']:.0f} MB peak, at most "
        f"{m['pyairbyte']['wall_seconds'] / m['read']['wall_seconds'] / m['sync_over_read_wall']:.2f}x while sync / read is "
        f"{m['sync_over_read_wall']:.2f}x"
        for n, m in _sync_sizes(s) if {"sync", "read", "pyairbyte"} <= m.keys() and m.get("sync_over_read_wall"))
    return Verdict(verdict.measured + (f" ({bounds})" if bounds else ""), verdict.met)


def _paths(s: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return _get(s, "events_paths", "paths") or {}


def events_per_minute(s: dict[str, Any]) -> Verdict:
    missing = _missing(s, "events_paths", "paths")
    if missing:
        return missing
    paths = _paths(s)
    if ISSUE not in paths or PROJECT not in paths:
        return Verdict("not measured: the `events_paths` results lack a path", None)

    def median(name: str, key: str) -> float:
        return float(statistics.median(r[key] for r in paths[name]))

    issue, project = median(ISSUE, "events_per_minute"), median(PROJECT, "events_per_minute")
    at_bounds = median(ISSUE, "bound_events_per_minute") / median(PROJECT, "bound_events_per_minute")
    peer = [r for rs in paths.values() for r in rs if r.get("connector") == "peer"]
    peer_text = (f"; the peer (project list) {statistics.median(r['events_per_minute'] for r in peer):,.0f} a minute"
                 f" ({peer[0]['records']:,} events, exit {peer[0]['rc']})" if peer else "")
    return Verdict(f"{issue:,.0f} against {project:,.0f} events a minute: **{issue / project:.1f}x** "
                   f"({at_bounds:.1f}x at the sustained bounds{peer_text})", issue / project >= 10)


def no_429(s: dict[str, Any]) -> Verdict:
    counts: dict[str, int] = {}
    for name, runs in _paths(s).items():
        ours = [r["429s"] for r in runs if r.get("connector", "ours") == "ours"]
        if ours:
            counts[f"`events_paths` {name}"] = sum(ours)
    for name in RATE_LIMITED:
        n = _get(s, name, "ours", "requests", "429")
        if n is not None:
            counts[f"`{name}`"] = n
    if not counts:
        return Verdict("not measured: no rate-limited scenario (`events_paths`, `full_sync`, `org`) in the saved results", None)
    peer = [r["429s"] for rs in _paths(s).values() for r in rs if r.get("connector") == "peer"]
    peer += [n for name in RATE_LIMITED if (n := _get(s, name, "peer", "requests", "429")) is not None]
    text = ", ".join(f"{k} {v}" for k, v in counts.items())
    return Verdict(f"ours: {text}" + (f"; the peer {sum(peer)} in all" if peer else ""), sum(counts.values()) == 0)


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.3f}x" if f"{low:.3f}" == f"{high:.3f}" else f"{low:.3f}x to {high:.3f}x"


def within_bound(s: dict[str, Any]) -> Verdict:
    missing = _missing(s, "events_paths", "paths")
    if missing:
        return missing
    parts, worst = [], 0.0
    for name, runs in _paths(s).items():
        ours = [r for r in runs if r.get("connector", "ours") == "ours"]
        if not ours:
            continue
        start = [r["wall_to_start_bound"] for r in ours]
        first = [r["wall_to_bound_from_first_request"] for r in ours]
        worst = max(worst, *start)
        parts.append(f"{name}: **{_span(start)}** from the process start, {_span(first)} from the first request "
                     f"(first request {max(r['first_request_s'] for r in ours):.2f} s after the start at most; "
                     f"{len(ours)} run{'s' if len(ours) > 1 else ''})")
    if not parts:
        return Verdict("not measured: no run of ours in the `events_paths` results", None)
    return Verdict("; ".join(parts), worst <= 1.05)


TARGETS = [
    Target("`spec` start-up, beside the peer", "at least 40x faster", "spec", spec),
    Target("CPU per record, start-up included (`cpu`: all five streams)", "at least 10x less than the peer", "cpu", cpu),
    Target("CPU per event at the margin (events only, 10k to 100k events)", "at least 15x less than the peer", "memory", margin),
    Target("`sync` into DuckDB against `read` of the same events, wall time", "at most 1.3x at 100k (and 1M if measured)", "sync", sync_over_read),
    Target("`sync` peak RSS", "under 150 MB", "sync", sync_peak),
    Target("`read` peak RSS (events only)", "under 150 MB", "memory", read_peak),
    Target("`sync` records/s against PyAirbyte reading our connector into its DuckDB cache", "at least 3x", "sync", pyairbyte),
    Target("full events per minute on sentry.io's limits: issue by issue against the project's list",
           "at least 10x", "events_paths", events_per_minute),
    Target("429 responses (ours, rate-limited runs)", "0", "events_paths,full_sync,full_sync_windows,org", no_429),
    Target("events paths: wall time against the rate-limit lower bound of the path taken", "within 1.05x", "events_paths", within_bound),
    Target("`read` memory flat with the number of events", "within 1.2x from the smallest to the largest read", "memory", flat_read),
]


def command(scenario: str, quick: bool) -> str:
    return f"`.venv/bin/python bench/run.py --only {scenario}{' --quick' if quick else ''}`"


def render_targets(results: dict[str, Any]) -> str:
    scenarios = results.get("scenarios", {})
    quick = bool(results.get("quick"))
    rows = [HEADING, "", "| target (issue 19) | measured | target | met? | reproduce |", "|---|---|---|---|---|"]
    for t in TARGETS:
        v = t.judge(scenarios)
        met = "not measured" if v.met is None else ("met" if v.met else "**not met**")
        rows.append(f"| {t.name} | {v.measured} | {t.goal} | {met} | {command(t.scenario, quick)} |")
    if quick:
        rows[1:1] = ["", "Sizes of a `--quick` run: the targets name larger ones, so a row may say not measured "
                     "or judge smaller reads than the target's."]
    return "\n".join(rows)


def render_details(results: dict[str, Any]) -> str:
    """The tables of the `sync` and `events_paths` scenarios, when the saved results have them."""
    out = []
    sizes = _get(results, "scenarios", "sync", "sizes")
    if sizes:
        lines = ["| events | `read` wall, CPU, peak RSS | `sync` wall, CPU, peak RSS | sync / read wall (CPU) "
                 "| PyAirbyte wall, peak RSS | sync / PyAirbyte records/s |", "|---:|---|---|---|---|---|"]

        def tool(m: dict[str, Any], name: str) -> str:
            t = m.get(name)
            return f"{t['wall_seconds']:.1f} s, {t['cpu_seconds']:.1f} CPU s, {t['peak_rss_mib_vmhwm']:.1f} MB" if t else "not run"

        for n, m in _sync_sizes(results["scenarios"]):
            pa = m.get("pyairbyte")
            lines.append(
                f"| {n:,} | {tool(m, 'read')} | {tool(m, 'sync')} | {m.get('sync_over_read_wall', 'n/a')}x "
                f"({m.get('sync_over_read_cpu', 'n/a')}x) | "
                + (f"{pa['wall_seconds']:.1f} s, {pa['peak_rss_mib_vmhwm']:.0f} MB" if pa else "not run")
                + f" | {m.get('sync_over_pyairbyte_records_per_second', 'n/a')}x |")
        repeat = _get(results, "scenarios", "sync", "repeat")
        rounds = "one round" if repeat == 1 else f"medians of {repeat} rounds"
        out.append(f"`sync` into DuckDB beside `read` (`bench/bench_load.py`'s measure, {rounds}):\n\n" + "\n".join(lines))
    paths = _get(results, "scenarios", "events_paths", "paths")
    if paths:
        import events_paths  # here, not at the top: it imports run, which imports this module

        out.append("Events per minute on sentry.io's limits, each path (`bench/events_paths.py`'s measure):\n\n"
                   + events_paths.markdown_table(paths))
    return "\n\n".join(out)
