"""``source-sentry report``: one self-contained HTML file of what a synced DuckDB file says.

The report reads the analytics views (:mod:`source_sentry.destination.views`). Its charts are
drawn by matplotlib and embedded as inline SVG, so the file opens offline, with nothing fetched.
It shows:

- errors per day by project;
- the top unresolved issues, each linking to the issue in Sentry;
- the crash-free session rate per release;
- the time to resolve, week by week;
- monitor uptime;
- usage outcomes;
- the freshness of each stream: its last sync and its last record.

A section whose stream was not synced says so.
"""

from __future__ import annotations

import argparse
import html
import io
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

__all__ = ["build_report", "run_report"]

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1f2430; background: #fff; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2.2rem; }
.meta { color: #667; font-size: 0.9rem; }
section { border-top: 1px solid #e3e5ea; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.35rem 0.5rem; border-bottom: 1px solid #eef0f3; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
figure.chart { margin: 0.5rem 0; } figure.chart svg { width: 100%; height: auto; }
p.missing { color: #8a5a00; background: #fff7e6; padding: 0.6rem 0.8rem; border-radius: 4px; }
"""
_COLORS = ["#4c6ef5", "#f76707", "#2b8a3e", "#c2255c", "#7048e8", "#1098ad", "#e67700", "#5c940d"]


def build_report(path: str, days: int = 30, now: datetime | None = None) -> str:
    """The report's HTML for the DuckDB file at ``path``, over the last ``days`` days."""
    import duckdb

    now = now or datetime.now(timezone.utc)
    since = (now - timedelta(days=days)).date()
    from .destination.duckdb import quiet_progress

    with duckdb.connect(path, read_only=True) as con:
        quiet_progress(con)
        relations = {row[0] for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").fetchall()}

        def rows(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
            return con.execute(sql, list(params)).fetchall()

        sections = [
            _section("Errors per day by project", "errors_daily", relations, lambda: _errors(rows, since, relations)),
            _section("Top unresolved issues", "issue_lifecycle", relations, lambda: _top_issues(rows)),
            _section("Crash-free sessions per release", "release_health_daily", relations, lambda: _crash_free(rows, since)),
            _section("Time to resolve", "issue_lifecycle", relations, lambda: _time_to_resolve(rows, since)),
            _section("Monitor uptime", "monitor_uptime_daily", relations, lambda: _uptime(rows, since)),
            _section("Usage outcomes", "usage_outcomes_daily", relations, lambda: _usage(rows, since)),
            _section("Freshness", "_airbyte_state", relations, lambda: _freshness(rows, relations)),
        ]
    title = f"Sentry report: last {days} days"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class=\"meta\">{html.escape(Path(path).name)}, written "
        f"{now.strftime('%Y-%m-%d %H:%M')} UTC by source-sentry</p>{''.join(sections)}</body></html>\n"
    )


def _section(title: str, source: str, relations: set[str], body: Callable[[], str]) -> str:
    slug = title.lower().replace(" ", "-")
    if source not in relations:
        stream = {"errors_daily": "events", "issue_lifecycle": "issues", "release_health_daily": "release_health",
                  "monitor_uptime_daily": "monitor_checkins", "usage_outcomes_daily": "usage_stats"}.get(source, source)
        inner = f'<p class="missing">Not synced: the <code>{html.escape(stream)}</code> stream is not in this file.</p>'
    else:
        inner = body()
    return f'<section id="{slug}"><h2>{html.escape(title)}</h2>{inner}</section>'


def _figure(name: str, draw: Callable[[Any], None], height: float = 3.2) -> str:
    """A matplotlib chart as inline SVG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(10, height))
    try:
        draw(axes)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    finally:
        plt.close(figure)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # no XML prolog inside HTML
    return f'<figure class="chart" data-chart="{name}">{svg}</figure>'


def _empty(what: str) -> str:
    return f'<p class="missing">No {html.escape(what)} in the last days of this file.</p>'


def _errors(rows: Callable[..., list[tuple[Any, ...]]], since: date, relations: set[str]) -> str:
    # Projects by slug where the projects stream was synced, else by id.
    slugs = "(SELECT id, slug FROM projects)" if "projects" in relations else "(SELECT NULL AS id, NULL AS slug)"
    data = rows(
        "SELECT e.day, coalesce(p.slug, e.project_id) AS project, sum(e.events) FROM errors_daily e "
        f"LEFT JOIN {slugs} p ON p.id = e.project_id WHERE e.day >= ? GROUP BY 1, 2 ORDER BY 1",
        [since],
    )
    if not data:
        return _empty("events")
    series: dict[str, dict[date, float]] = {}
    for day, project, events in data:
        series.setdefault(str(project), {})[day] = events

    def draw(ax: Any) -> None:
        for i, (project, points) in enumerate(sorted(series.items())):
            ax.plot(list(points), list(points.values()), marker="o", markersize=3, label=project,
                    color=_COLORS[i % len(_COLORS)])
        ax.set_ylabel("events")
        ax.legend(frameon=False)
        ax.tick_params(axis="x", labelrotation=30)

    return _figure("errors_daily", draw)


def _top_issues(rows: Callable[..., list[tuple[Any, ...]]]) -> str:
    data = rows(
        "SELECT short_id, title, project, events, users, last_seen, permalink FROM issue_lifecycle "
        "WHERE status = 'unresolved' ORDER BY events DESC NULLS LAST LIMIT 15"
    )
    if not data:
        return _empty("unresolved issues")
    body = "".join(
        f"<tr><td><a href=\"{html.escape(str(link or ''))}\">{html.escape(str(short))}</a></td>"
        f"<td>{html.escape(str(title))}</td><td>{html.escape(str(project))}</td>"
        f"<td class=\"num\">{events or 0:,}</td><td class=\"num\">{users or 0:,}</td>"
        f"<td>{last.strftime('%Y-%m-%d %H:%M') if last else ''}</td></tr>"
        for short, title, project, events, users, last, link in data
    )
    head = ("<tr><th>Issue</th><th>Title</th><th>Project</th><th class=\"num\">Events</th>"
            "<th class=\"num\">Users</th><th>Last seen</th></tr>")
    return f'<table data-table="top_issues">{head}{body}</table>'


def _crash_free(rows: Callable[..., list[tuple[Any, ...]]], since: date) -> str:
    data = rows(
        "SELECT release, 1 - sum(crashed_sessions) / sum(sessions) AS rate, sum(sessions) FROM release_health_daily "
        "WHERE day >= ? AND release IS NOT NULL GROUP BY 1 HAVING sum(sessions) > 0 ORDER BY 3 DESC LIMIT 15",
        [since],
    )
    if not data:
        return _empty("sessions")
    data.sort(key=lambda r: str(r[0]))

    def draw(ax: Any) -> None:
        names = [str(r[0]) for r in data]
        ax.barh(names, [100 * r[1] for r in data], color=_COLORS[0])
        ax.set_xlabel("crash-free sessions (%)")
        ax.set_xlim(min(100 * r[1] for r in data) - 1, 100)

    return _figure("crash_free", draw, height=max(2.5, 0.3 * len(data) + 1))


def _time_to_resolve(rows: Callable[..., list[tuple[Any, ...]]], since: date) -> str:
    data = rows(
        "SELECT CAST(date_trunc('week', timezone('UTC', resolved_at)) AS DATE) AS week, median(hours_to_resolve), count(*) "
        "FROM issue_lifecycle WHERE resolved_at IS NOT NULL AND CAST(timezone('UTC', resolved_at) AS DATE) >= ? "
        "GROUP BY 1 ORDER BY 1",
        [since - timedelta(days=7)],
    )
    if not data:
        return ('<p class="missing">No issue resolved in the last days of this file that the status history '
                "shows: a resolution is timed by the sync or webhook that saw it, so issues resolved before "
                "the first sync have no time to resolve.</p>")

    def draw(ax: Any) -> None:
        weeks = [r[0] for r in data]
        ax.plot(weeks, [r[1] for r in data], marker="o", color=_COLORS[2])
        ax.set_ylabel("median hours to resolve")
        ax.set_xlim(min(weeks) - timedelta(days=7), max(weeks) + timedelta(days=7))
        ax.set_ylim(bottom=0)

    return _figure("time_to_resolve", draw)


def _uptime(rows: Callable[..., list[tuple[Any, ...]]], since: date) -> str:
    data = rows(
        "SELECT monitor, sum(ok) / nullif(sum(ok + error + missed + timeout), 0) FROM monitor_uptime_daily "
        "WHERE day >= ? GROUP BY 1 ORDER BY 1",
        [since],
    )
    data = [r for r in data if r[1] is not None]
    if not data:
        return _empty("check-ins")

    def draw(ax: Any) -> None:
        ax.barh([str(r[0]) for r in data], [100 * r[1] for r in data], color=_COLORS[5])
        ax.set_xlabel("uptime (% of finished check-ins that were ok)")
        ax.set_xlim(0, 100)

    return _figure("monitor_uptime", draw, height=max(2.5, 0.35 * len(data) + 1))


def _usage(rows: Callable[..., list[tuple[Any, ...]]], since: date) -> str:
    data = rows(
        "SELECT category, sum(accepted), sum(filtered), sum(rate_limited), sum(invalid), sum(client_discard) "
        "FROM usage_outcomes_daily WHERE day >= ? GROUP BY 1 ORDER BY 1",
        [since],
    )
    if not data:
        return _empty("usage outcomes")
    outcomes = ["accepted", "filtered", "rate_limited", "invalid", "client_discard"]

    def draw(ax: Any) -> None:
        left = [0.0] * len(data)
        names = [str(r[0]) for r in data]
        for i, outcome in enumerate(outcomes):
            values = [float(r[i + 1] or 0) for r in data]
            ax.barh(names, values, left=left, label=outcome, color=_COLORS[i])
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.set_xlabel("quantity")
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))

    return _figure("usage_outcomes", draw, height=max(2.5, 0.5 * len(data) + 1.2))


def _freshness(rows: Callable[..., list[tuple[Any, ...]]], relations: set[str]) -> str:
    # Every stream with a table or a state; a stream without state (a full refresh) last synced
    # when its records were written.
    state = dict(rows("SELECT stream_name, updated_at FROM _airbyte_state"))
    tables = relations & {name for (name,) in rows("SELECT DISTINCT stream_name FROM _airbyte_columns")} \
        if "_airbyte_columns" in relations else set()
    body = []
    for stream in sorted(set(state) | tables):
        last = rows(f'SELECT max(_airbyte_extracted_at) FROM "{stream}"')[0][0] if stream in tables else None
        updated = state.get(stream, last)
        body.append(f"<tr><td>{html.escape(str(stream))}</td><td>{_when(updated)}</td><td>{_when(last)}</td></tr>")
    head = "<tr><th>Stream</th><th>Last sync</th><th>Last record written</th></tr>"
    return f'<table data-table="freshness">{head}{"".join(body)}</table>'


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if isinstance(value, datetime) else "never"


def run_report(args: argparse.Namespace) -> int:
    """Write the report; the exit code."""
    from .errors import ConfigError

    if not Path(args.destination).is_file():
        raise ConfigError(f"{args.destination} does not exist: run source-sentry sync with --destination {args.destination} first.")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("report draws its charts with matplotlib: pip install 'source-sentry[report]'.") from None
    output = Path(args.output)
    output.write_text(build_report(args.destination, args.days), encoding="utf-8")
    print(output.resolve())
    return 0
