"""Explore rows (the organization events endpoint's `spans`, `logs`, `uptime_results` and
`tracemetrics` datasets): a fixed number of rows per (dataset, project, hour), each a pure
function of (seed, dataset, project, hour, index), generated lazily and cached per hour.

A row becomes visible `lag` seconds after its timestamp (0 to 300 s, most under 60 s: ingestion
lag), so rows at the live edge appear as the clock advances.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from . import catalog as cat
from .dataset import Dataset
from .models import Project
from .rand import hex32, mix, pick, unit
from .timeutil import US, BadParam, parse_iso

__all__ = [
    "DATASETS",
    "DEFAULT_ROWS_PER_HOUR",
    "FIELD_TYPES",
    "ExploreData",
    "Row",
    "iso_offset",
    "parse_timestamp_clauses",
]

HOUR_S = 3600
DATASETS = ("errors", "logs", "profile_functions", "spans", "tracemetrics", "uptime_results")
DEFAULT_ROWS_PER_HOUR: dict[str, int] = {"spans": 6, "logs": 8, "uptime_results": 4, "tracemetrics": 3}
_COMMON = {"id": ("string", None), "timestamp": ("date", None), "project": ("string", None),
           "project.id": ("integer", None)}
# dataset -> field -> (meta type, unit)
FIELD_TYPES: dict[str, dict[str, tuple[str, str | None]]] = {
    "spans": {**_COMMON, "trace": ("string", None), "span.op": ("string", None), "span.description": ("string", None),
              "span.duration": ("duration", "millisecond"), "transaction": ("string", None),
              "is_transaction": ("boolean", None), "parent_span": ("string", None),
              "environment": ("string", None), "release": ("string", None)},
    "logs": {**_COMMON, "trace": ("string", None), "severity": ("string", None), "message": ("string", None),
             "environment": ("string", None), "release": ("string", None)},
    "uptime_results": {**_COMMON, "check_status": ("string", None), "http_status_code": ("integer", None),
                       "check_duration_us": ("duration", "microsecond"), "uptime_subscription_id": ("string", None),
                       "region": ("string", None), "request_url": ("string", None), "environment": ("string", None)},
    "tracemetrics": {**_COMMON, "trace": ("string", None), "metric.name": ("string", None),
                     "metric.type": ("string", None), "value": ("number", None), "environment": ("string", None),
                     "release": ("string", None)},
}
_CACHE_MAX = 200_000
_SPAN_OPS = [("db", 'SELECT "orders"."id", "orders"."total" FROM "orders" WHERE "orders"."user_id" = %s'),
             ("db", 'UPDATE "carts" SET "updated_at" = %s WHERE "id" = %s'),
             ("http.client", "GET https://payments.example.com/v1/charges"),
             ("cache.get", "user:session:*"), ("db.redis", "GET rate-limit:*"),
             ("serialize", "OrderSerializer"), ("queue.publish", "tasks.send_receipt")]
_SEVERITIES = [("info", 0.50), ("debug", 0.65), ("warn", 0.80), ("error", 0.90), ("trace", 0.96), ("fatal", 1.0)]
_LOG_MESSAGES = {
    "trace": ["entering handler {t}"], "debug": ["cache miss for key user:{n}", "sql took {n} ms"],
    "info": ["order {n} placed", "user {n} signed in", "sync finished: {n} records"],
    "warn": ["retrying request to payments (attempt {k})", "slow query: {n} ms"],
    "error": ["payment provider returned HTTP 502", "failed to send receipt for order {n}"],
    "fatal": ["worker out of memory, exiting"],
}
_METRICS = [("http.server.requests", "counter"), ("jobs.processed", "counter"), ("queue.depth", "gauge"),
            ("memory.rss_mb", "gauge"), ("db.query.duration", "distribution"), ("checkout.amount", "distribution")]
_REGIONS = ["us-east-1", "us-west-1", "eu-central-1"]
_CLAUSE = re.compile(r'(?<![\w.])timestamp:(>=|<=|>|<)"?([0-9][0-9T:.\-+Z ]*[0-9Z])"?')


class Row(NamedTuple):
    """What the sort, the filters and the rendering need; every other field derives from `h`."""

    ts_s: int  # epoch seconds
    visible_s: int  # when it can be read (timestamp + ingestion lag)
    id: str
    h: int
    project: int  # project index
    hour: int  # epoch hour
    k: int  # index in its hour


def iso_offset(seconds: int) -> str:
    """`2026-11-30T12:00:05+00:00` (Explore's timestamps)."""
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_timestamp_clauses(query: str) -> tuple[int | None, int | None]:
    """`timestamp:>=ISO timestamp:<ISO` ... in a query -> (lo, hi) epoch µs, lo inclusive, hi
    exclusive (None when absent); other query text is ignored."""
    lo: int | None = None
    hi: int | None = None
    for op, value in _CLAUSE.findall(query or ""):
        try:
            t = parse_iso(value)
        except BadParam:
            raise BadParam(f"Invalid date format for timestamp: {value}") from None
        if op in (">=", ">"):
            bound = t if op == ">=" else t + 1
            lo = bound if lo is None else max(lo, bound)
        else:
            bound = t if op == "<" else t + 1
            hi = bound if hi is None else min(hi, bound)
    return lo, hi


class ExploreData:
    """Rows of the served datasets, generated per (dataset, project, hour) on demand."""

    def __init__(self, ds: Dataset, rows_per_hour: Mapping[str, int] | None = None) -> None:
        self.ds = ds
        rates = dict(DEFAULT_ROWS_PER_HOUR)
        if rows_per_hour:
            unknown = set(rows_per_hour) - set(FIELD_TYPES)
            if unknown:
                raise ValueError(f"explore_rows_per_hour: no generated rows for {sorted(unknown)}")
            rates.update({k: int(v) for k, v in rows_per_hour.items()})
        self.rates = rates
        self._cache: dict[tuple[str, int, int], tuple[Row, ...]] = {}
        self._bases: dict[tuple[str, int], int] = {}  # (dataset, project) -> seed of its rows
        self._release_cache: dict[tuple[int, int, int], str | None] = {}

    # ------------------------------------------------------------ rows
    def first_us(self, now_us: int) -> int:
        """The oldest instant with rows: the history's start, within retention."""
        return max(self.ds.anchor_us - self.ds.span_us, now_us - self.ds.retention_us)

    def rows(self, dataset: str, projects: list[Project], lo_us: int, hi_us: int, now_us: int) -> Iterator[Row]:
        """Rows visible at now_us with lo_us <= timestamp < hi_us (any order)."""
        if not self.rates.get(dataset):
            return
        lo = max(lo_us, self.first_us(now_us))
        hi = min(hi_us, now_us + 1)
        if hi <= lo:
            return
        now_s = now_us // US
        for project in projects:
            start = max(lo, project.date_created_us)
            for hour in range(start // US // HOUR_S, (hi - 1) // US // HOUR_S + 1):
                for row in self._hour(dataset, project.idx, hour):
                    if row.visible_s <= now_s and lo <= row.ts_s * US < hi and row.ts_s * US >= start:
                        yield row

    def _hour(self, dataset: str, p: int, hour: int) -> tuple[Row, ...]:
        key = (dataset, p, hour)
        rows = self._cache.get(key)
        if rows is None:
            if len(self._cache) > _CACHE_MAX:
                self._cache.clear()
            rows = self._cache[key] = self._gen_hour(dataset, p, hour)
        return rows

    def _row_hash(self, dataset: str, p: int, hour: int, k: int) -> int:
        base = self._bases.get((dataset, p))
        if base is None:
            base = self._bases[(dataset, p)] = self.ds._h("explore", dataset, p)
        return mix(mix(base ^ hour) ^ (k + 1))

    def _gen_hour(self, dataset: str, p: int, hour: int) -> tuple[Row, ...]:
        out: list[Row] = []
        offset = 0
        for k in range(self.rates[dataset]):
            h = self._row_hash(dataset, p, hour, k)
            if not (k and unit(mix(h ^ 1)) < 0.2):  # else: the same second as the previous row
                offset = h % HOUR_S
            ts = hour * HOUR_S + offset
            lag = int(unit(mix(h ^ 2)) * 60) if unit(mix(h ^ 3)) < 0.85 else 60 + mix(h ^ 4) % 241
            row_id = f"{mix(h ^ 5):016x}" if dataset == "spans" else hex32(h)
            out.append(Row(ts, ts + lag, row_id, h, p, hour, k))
        return tuple(out)

    @staticmethod
    def sampled_out(row: Row) -> bool:
        """Sampled answers keep about one row in five, chosen by the row's id."""
        return mix(row.h ^ 0x5A5A) % 5 != 0

    # ------------------------------------------------------------ fields
    def value(self, dataset: str, row: Row, name: str) -> Any:
        """The row's value of `name`; None for a field the dataset does not have."""
        fields = FIELD_TYPES.get(dataset, {})
        if name not in fields:
            return None
        project = self.ds.projects[row.project]
        if name == "id":
            return row.id
        if name == "timestamp":
            return iso_offset(row.ts_s)
        if name == "project":
            return project.slug
        if name == "project.id":
            return int(project.id)
        if name == "release":
            return self._release(row)
        h = row.h
        if name == "environment":
            return "production" if unit(mix(h ^ 6)) < 0.8 or dataset == "uptime_results" else "staging"
        return getattr(self, "_" + dataset)(row, name, h)

    def _trace(self, row: Row) -> str:
        return hex32(self.ds._h("explore-trace", row.project, row.hour, row.k // 3))

    def _release(self, row: Row) -> str | None:
        key = (row.project, row.hour, len(self.ds.releases))  # a release added or deleted: anew
        if key not in self._release_cache:
            if len(self._release_cache) > _CACHE_MAX:
                self._release_cache.clear()
            release = self.ds.release_for(row.project, row.hour * HOUR_S * US)
            self._release_cache[key] = release.version if release else None
        return self._release_cache[key]

    def _spans(self, row: Row, name: str, h: int) -> Any:
        root_k = row.k - row.k % 3
        is_root = row.k == root_k
        op, description = ("http.server", None) if is_root else pick(mix(h ^ 7), _SPAN_OPS)
        transaction = pick(self.ds._h("explore-tx", row.project, row.hour, root_k), cat.TRANSACTIONS)
        if name == "trace":
            return self._trace(row)
        if name == "span.op":
            return op
        if name == "span.description":
            return f"GET {transaction}" if is_root else description
        if name == "span.duration":
            scale = 400.0 if is_root else 60.0
            return round(1 + scale * unit(mix(h ^ 8)) ** 2, 3)
        if name == "transaction":
            return transaction
        if name == "is_transaction":
            return is_root
        if name == "parent_span":
            if is_root:
                return None
            return f"{mix(self._row_hash('spans', row.project, row.hour, root_k) ^ 5):016x}"
        return None

    def _logs(self, row: Row, name: str, h: int) -> Any:
        u = unit(mix(h ^ 9))
        severity = next(s for s, edge in _SEVERITIES if u < edge)
        if name == "trace":
            return self._trace(row)
        if name == "severity":
            return severity
        if name == "message":
            return pick(mix(h ^ 10), _LOG_MESSAGES[severity]).format(
                n=mix(h ^ 11) % 100_000, k=1 + mix(h ^ 12) % 5, t=pick(mix(h ^ 13), cat.TRANSACTIONS))
        return None

    def _uptime_results(self, row: Row, name: str, h: int) -> Any:
        u = unit(mix(h ^ 14))
        status = "success" if u < 0.9 else "failure" if u < 0.97 else "missed_window"
        if name == "check_status":
            return status
        if name == "http_status_code":
            return {"success": 200, "failure": pick(mix(h ^ 15), [500, 502, 503])}.get(status)
        if name == "check_duration_us":
            return None if status == "missed_window" else 40_000 + mix(h ^ 16) % 900_000
        url_index = row.project % len(cat.UPTIME_CHECKS)
        if name == "uptime_subscription_id":
            return hex32(self.ds._h("uptime-subscription", row.project, url_index))
        if name == "region":
            return _REGIONS[row.k % len(_REGIONS)]
        if name == "request_url":
            return cat.UPTIME_CHECKS[url_index][0]
        return None

    def _tracemetrics(self, row: Row, name: str, h: int) -> Any:
        metric, kind = pick(mix(h ^ 17), _METRICS)
        if name == "trace":
            return self._trace(row)
        if name == "metric.name":
            return metric
        if name == "metric.type":
            return kind
        if name == "value":
            if kind == "counter":
                return float(1 + mix(h ^ 18) % 20)
            return round(1000 * unit(mix(h ^ 18)), 3)
        return None

    def render(self, dataset: str, row: Row, fields: list[str]) -> dict[str, Any]:
        return {name: self.value(dataset, row, name) for name in fields}
