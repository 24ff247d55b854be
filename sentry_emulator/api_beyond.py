"""Endpoints beyond errors: release health (`sessions/`), Explore (`events/`) and `replays/`.

Registered on the route table of `api.py` (which imports this module); each handler takes the
`Api` and its `Request` like the methods there.
"""

from __future__ import annotations

from typing import Any

from .api import ORG, Api, ApiError, Reply, Request, explicit_range, route
from .explore import FIELD_TYPES, parse_timestamp_clauses
from .health import SESSION_FIELDS, SESSION_GROUP_BY, arrived, users_of
from .models import Project
from .pagination import MAX_PER_PAGE, offset_page, parse_cursor
from .replays import REPLAY_FIELDS, REPLAY_SORTS
from .timeutil import US, BadParam, iso_s, parse_period

__all__ = ["EXPLORE_ROUTE", "REPLAYS_ROUTE", "SESSIONS_ROUTE"]

SESSIONS_ROUTE = "/api/0/organizations/{org}/sessions/"
EXPLORE_ROUTE = "/api/0/organizations/{org}/events/"
REPLAYS_ROUTE = "/api/0/organizations/{org}/replays/"
EVENT = ("event:admin", "event:read", "event:write")
HOUR_US = 3600 * US
DAY_US = 86400 * US
MAX_FIELDS = 20
TOO_MANY_FIELDS = "You can view up to 20 fields at a time. Please delete some and try again."
TOO_MANY_INTERVALS = ("Your interval and date range would create too many results. Use a larger interval, "
                      "or a smaller date range.")


def _period_range(req: Request, default_us: int | None) -> tuple[int, int, bool] | None:
    """(start, end, explicit) from `statsPeriod` (it wins, as Sentry's get_date_range_from_params)
    or `start` + `end`; the default period when neither (None when there is no default)."""
    period = req.get("statsPeriod")
    if period:
        return req.now_us - parse_period(period), req.now_us, False
    explicit = explicit_range(req)
    if explicit is not None:
        return (*explicit, True)
    if default_us is None:
        return None
    return req.now_us - default_us, req.now_us, False


def _per_page(req: Request) -> int:
    raw = req.get("per_page")
    if raw is None or raw == "":
        return MAX_PER_PAGE
    try:
        size = int(raw)
    except ValueError:
        raise BadParam("Invalid per_page parameter.") from None
    if size > MAX_PER_PAGE:
        raise BadParam(f"Invalid per_page parameter. Max value is {MAX_PER_PAGE}.")
    if size < 1:
        raise BadParam("Invalid per_page parameter.")
    return size


def _projects(api: Api, req: Request) -> list[Project]:
    return [api.ds.projects[i] for i in sorted(api._project_filter(req))]


# ---------------------------------------------------------------- release health
def _interval(req: Request) -> int:
    try:
        interval = parse_period(req.get("interval") or "1h")
    except BadParam:
        raise BadParam("Invalid interval") from None
    if interval < HOUR_US or interval % HOUR_US:
        raise BadParam("The interval has to be a multiple of the minimum interval of one hour.")
    if interval > DAY_US:
        raise BadParam("The interval has to be less than one day.")
    if DAY_US % interval:
        raise BadParam("The interval should divide one day without a remainder.")
    return interval


@route(SESSIONS_ROUTE, "org:read", ORG)
def sessions(api: Api, req: Request) -> Reply:
    api._org(req)
    fields = req.getall("field")
    if not fields:
        raise BadParam('Request is missing a "field"')
    for f in fields:
        if f not in SESSION_FIELDS:
            raise BadParam(f'Invalid field: "{f}"')
    group_by = req.getall("groupBy")
    for g in group_by:
        if g not in SESSION_GROUP_BY:
            raise BadParam(f'Invalid groupBy: "{g}"')
    order_by = req.get("orderBy")
    if order_by and order_by.lstrip("-") not in fields:
        raise BadParam("'orderBy' must be one of the provided 'fields'")
    interval = _interval(req)
    rng = _period_range(req, 90 * DAY_US)
    assert rng is not None
    lo, hi, _ = rng
    start = lo // interval * interval
    end = max(-(-hi // interval) * interval, start + interval)  # at least one interval
    n = (end - start) // interval
    if n > 10_000:
        raise BadParam(TOO_MANY_INTERVALS)
    envs = set(req.getall("environment"))
    beyond = api.beyond
    # group key -> [sessions per interval, user sums per interval, busiest hour's users per interval]
    acc: dict[tuple[tuple[str, Any], ...], list[list[int]]] = {}
    totals_users: dict[tuple[tuple[str, Any], ...], list[int]] = {}
    for project in _projects(api, req):
        for t, rows in beyond.health.hours(project, start, end, req.now_us):
            j = (t - start) // interval
            this_hour: dict[tuple[tuple[str, Any], ...], list[int]] = {}
            for row in rows:
                if envs and row.environment not in envs:
                    continue
                values = {"project": int(project.id), "release": row.release, "environment": row.environment,
                          "session.status": row.status}
                key = tuple((g, values[g]) for g in group_by)
                got = this_hour.setdefault(key, [0, 0])
                sessions, users = arrived(row, t, req.now_us)  # the hour in progress, late sessions
                got[0] += sessions
                got[1] += users
            for key, (s, u) in this_hour.items():
                series = acc.setdefault(key, [[0] * n, [0] * n, [0] * n])
                series[0][j] += s
                series[1][j] += u
                series[2][j] = max(series[2][j], u)
                tot = totals_users.setdefault(key, [0, 0])
                tot[0] += u
                tot[1] = max(tot[1], u)
    include_totals = req.get("includeTotals") not in ("0", "false")
    include_series = req.get("includeSeries") not in ("0", "false")
    groups: list[tuple[tuple[tuple[str, Any], ...], dict[str, int], dict[str, list[int]]]] = []
    for key, (s_series, u_sum, u_max) in acc.items():
        if not any(s_series):
            continue
        per_interval = {"sum(session)": s_series,
                        "count_unique(user)": [users_of(a, b) for a, b in zip(u_sum, u_max, strict=True)]}
        totals = {"sum(session)": sum(s_series), "count_unique(user)": users_of(*totals_users[key])}
        groups.append((key, {f: totals[f] for f in fields}, {f: per_interval[f] for f in fields}))
    sort_field = (order_by or "-" + fields[0]).lstrip("-")
    descending = (order_by or "-").startswith("-")
    groups.sort(key=lambda g: str(g[0]))
    groups.sort(key=lambda g: g[1][sort_field], reverse=descending)
    # Sentry's limit: at most max_points data points; the other groups are dropped without a sign.
    groups = groups[:max(0, beyond.sessions_max_points // n)]
    out = []
    for key, totals, by_field in groups:
        group: dict[str, Any] = {"by": dict(key)}
        if include_totals:
            group["totals"] = totals
        if include_series:
            group["series"] = by_field
        out.append(group)
    return Reply({"start": iso_s(start), "end": iso_s(end), "intervals": [iso_s(start + i * interval) for i in range(n)],
                  "groups": out, "query": req.get("query") or ""})


# ---------------------------------------------------------------- Explore
def _sort_key(name: str, value_of: Any) -> Any:
    if name == "timestamp":  # the ISO strings sort as the seconds do
        return lambda row: (True, row.ts_s, row.id)

    def key(row: Any) -> tuple[Any, ...]:
        v = value_of(row, name)
        return (v is not None, v if v is not None else 0, row.id)

    return key


@route(EXPLORE_ROUTE, "event:read", EVENT)
def explore(api: Api, req: Request) -> Reply:
    api._org(req)
    dataset = req.get("dataset")
    served = api.beyond.explore_datasets  # a server of another version may serve fewer
    if dataset not in served:
        raise BadParam(f"dataset must be one of: {', '.join(served)}" if dataset is None
                       else f"{dataset} is not a valid dataset, must be one of: {', '.join(served)}")
    fields = req.getall("field")
    if not fields:
        raise BadParam("No columns selected")
    if len(fields) > MAX_FIELDS:
        raise BadParam(TOO_MANY_FIELDS)
    sort = req.get("sort") or "-timestamp"
    sort_name = sort.lstrip("-")
    if req.get("sort") and sort_name not in fields:
        raise BadParam("orderby must also be in the selected columns or groupby")
    limit = _per_page(req)
    cursor = parse_cursor(req.get("cursor"))
    beyond = api.beyond
    if cursor is not None and cursor.offset >= beyond.explore_max_offset:
        raise BadParam("Pagination offset too large")
    rng = _period_range(req, 14 * DAY_US)
    assert rng is not None
    lo, hi, explicit = rng
    if not explicit:
        hi += 1  # statsPeriod: up to and including now
    sampled = (lo < req.now_us - int(beyond.explore_full_fidelity_days * DAY_US)
               or (dataset == "spans" and explicit))
    q_lo, q_hi = parse_timestamp_clauses(req.get("query") or "")
    lo = lo if q_lo is None else max(lo, q_lo)
    hi = hi if q_hi is None else min(hi, q_hi)
    data = beyond.explore
    envs = set(req.getall("environment"))
    rows = [r for r in data.rows(dataset, _projects(api, req), lo, hi, req.now_us)
            if not (sampled and data.sampled_out(r))
            and (not envs or data.value(dataset, r, "environment") in envs)]
    rows.sort(key=_sort_key(sort_name, lambda r, n: data.value(dataset, r, n)), reverse=sort.startswith("-"))
    page = offset_page(len(rows), lambda o, k: [data.render(dataset, r, fields) for r in rows[o:o + k]], limit, cursor)
    types = FIELD_TYPES.get(dataset, {})
    meta = {"fields": {f: types.get(f, ("string", None))[0] for f in fields},
            "units": {f: types.get(f, ("string", None))[1] for f in fields},
            "dataset": dataset, "dataScanned": "partial" if sampled else "full", "isMetricsData": False}
    return Reply({"data": page.items, "meta": meta}, page)


# ---------------------------------------------------------------- replays
@route(REPLAYS_ROUTE, "org:read", ORG)
def replays(api: Api, req: Request) -> Reply:
    api._org(req)
    rng = _period_range(req, None)
    if rng is None:
        raise BadParam("You must provide either statsPeriod, or start and end.")
    lo, hi, _ = rng
    fields = [f for raw in req.getall("field") for f in raw.split(",") if f]
    bad = [f for f in fields if f not in REPLAY_FIELDS]
    if bad:
        raise ApiError(400, "", body={"field": [f'"{f}" is not a valid choice.' for f in bad]})
    sort = next((v for v in (req.get("sort"), req.get("sortBy"), req.get("orderBy")) if v), "-started_at")
    if sort.lstrip("-") not in REPLAY_SORTS:
        raise BadParam(f"Invalid sort: {sort}")
    limit = _per_page(req)
    cursor = parse_cursor(req.get("cursor"))
    envs = set(req.getall("environment"))
    data = api.beyond.replays
    now_s = req.now_us // US
    rows = [r for r in data.rows(_projects(api, req), lo, hi, req.now_us) if not envs or data.environment(r) in envs]
    name = sort.lstrip("-")
    ids = {p.idx: p.id for p in api.ds.projects}
    rows.sort(key=lambda r: (data.sort_value(r, name, now_s, ids[r.project]), r.id), reverse=sort.startswith("-"))

    def render(r: Any) -> dict[str, Any]:
        body = data.render(r, now_s)
        return body if not fields else {f: body[f] for f in fields}

    page = offset_page(len(rows), lambda o, k: [render(r) for r in rows[o:o + k]], limit, cursor)
    return Reply({"data": page.items}, page)
