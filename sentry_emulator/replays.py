"""Session replays: `replays_per_hour` per project and hour, each a pure function of (seed,
project, hour, index). A replay lasts 10 s to 60 min; it is listed once it has started, and
while it is in progress its `finished_at` is now and its `duration` (and segments) grow.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from . import catalog as cat
from .dataset import Dataset
from .explore import iso_offset
from .models import Project
from .rand import hex32, mix, pick, unit
from .timeutil import US

__all__ = ["MAX_DURATION_S", "REPLAY_FIELDS", "REPLAY_SORTS", "ReplayData", "ReplayRow"]

HOUR_S = 3600
MAX_DURATION_S = 3600
# Every key of a replay (the OpenAPI item schema's properties and the `field` enum).
REPLAY_FIELDS = ("activity", "browser", "clicks", "count_dead_clicks", "count_errors", "count_infos",
                 "count_rage_clicks", "count_segments", "count_urls", "count_warnings", "device", "dist",
                 "duration", "environment", "error_ids", "finished_at", "has_viewed", "id", "info_ids",
                 "is_archived", "os", "ota_updates", "platform", "project_id", "releases", "replay_type", "sdk",
                 "segment_names", "started_at", "tags", "trace_ids", "urls", "user", "warning_ids")
REPLAY_SORTS = ("started_at", "finished_at", "duration", "count_errors", "count_urls", "count_segments",
                "count_dead_clicks", "count_rage_clicks", "activity", "project_id")
_CACHE_MAX = 200_000
_BROWSERS = [("Chrome", "131.0.0"), ("Firefox", "133.0"), ("Safari", "18.1"), ("Edge", "131.0.0")]
_OSES = [("Windows", "10"), ("Mac OS X", "14.6"), ("Linux", None), ("iOS", "18.1"), ("Android", "14")]
_DEVICES = [("iPhone 15", "Apple", "iPhone15,4", "iPhone"), ("Pixel 8", "Google", "shiba", "Pixel"),
            ("Galaxy S24", "samsung", "SM-S921B", "Galaxy")]
_PAGES = ["/", "/dashboard", "/orders", "/orders/1182", "/checkout", "/settings/profile", "/search?q=shoes"]


class ReplayRow(NamedTuple):
    start_s: int
    end_s: int  # when it ends (it may still be in progress at now)
    id: str
    h: int
    project: int


class ReplayData:
    def __init__(self, ds: Dataset, per_hour: int = 2) -> None:
        self.ds, self.per_hour = ds, int(per_hour)
        self._cache: dict[tuple[int, int], tuple[ReplayRow, ...]] = {}

    def rows(self, projects: list[Project], lo_us: int | None, hi_us: int | None, now_us: int) -> Iterator[ReplayRow]:
        """Replays started by now (within retention and the history) whose [started_at, finished
        at now] overlaps [lo_us, hi_us]."""
        if self.per_hour <= 0:
            return
        now_s = now_us // US
        first_s = max(self.ds.anchor_us - self.ds.span_us, now_us - self.ds.retention_us) // US
        lo_s = -(-lo_us // US) if lo_us is not None else first_s
        hi_s = min(hi_us // US, now_s) if hi_us is not None else now_s
        for project in projects:
            start_s = max(first_s, project.date_created_us // US)
            for hour in range(max(start_s, lo_s - MAX_DURATION_S) // HOUR_S, hi_s // HOUR_S + 1):
                for row in self._hour(project.idx, hour):
                    if start_s <= row.start_s <= min(now_s, hi_s) and min(row.end_s, now_s) >= lo_s:
                        yield row

    def _hour(self, p: int, hour: int) -> tuple[ReplayRow, ...]:
        key = (p, hour)
        rows = self._cache.get(key)
        if rows is None:
            if len(self._cache) > _CACHE_MAX:
                self._cache.clear()
            out = []
            for k in range(self.per_hour):
                h = mix(mix(self.ds._h("replay", p) ^ hour) ^ (k + 1))
                start = hour * HOUR_S + h % HOUR_S
                duration = int(10 * (MAX_DURATION_S / 10) ** unit(mix(h ^ 1)))  # 10 s .. 60 min, mostly short
                out.append(ReplayRow(start, start + duration, hex32(h), h, p))
            rows = self._cache[key] = tuple(out)
        return rows

    @staticmethod
    def environment(row: ReplayRow) -> str:
        return "production" if unit(mix(row.h ^ 20)) < 0.85 else "staging"

    @staticmethod
    def sort_value(row: ReplayRow, name: str, now_s: int, project_id: str) -> Any:
        end = min(row.end_s, now_s)
        if name == "started_at":
            return row.start_s
        if name == "finished_at":
            return end
        if name == "duration":
            return end - row.start_s
        if name == "project_id":
            return int(project_id)
        return _counts(row, end)[name]

    def render(self, row: ReplayRow, now_s: int) -> dict[str, Any]:
        h, p = row.h, row.project
        project = self.ds.projects[p]
        end = min(row.end_s, now_s)
        counts = _counts(row, end)
        mobile = project.platform == "react-native"
        release = self.ds.release_for(p, row.start_s * US)
        environment = self.environment(row)
        name, email, _ = pick(mix(h ^ 21), cat.PEOPLE)
        country, city, region = pick(mix(h ^ 22), cat.CITIES)
        browser = (None, None) if mobile else pick(mix(h ^ 23), _BROWSERS)
        os_name, os_version = pick(mix(h ^ 24), _OSES[3:] if mobile else _OSES[:3])
        device = pick(mix(h ^ 25), _DEVICES) if mobile else (None, None, None, None)
        sdk = cat.SDKS.get(project.platform, cat.SDKS["javascript"])
        urls = [pick(mix(h ^ (30 + j)), _PAGES) for j in range(counts["count_urls"])]
        error_ids = [hex32(mix(h ^ (40 + j))) for j in range(counts["count_errors"])]
        return {
            "activity": counts["activity"],
            "browser": {"name": browser[0], "version": browser[1]},
            "clicks": [],
            "count_dead_clicks": counts["count_dead_clicks"],
            "count_errors": counts["count_errors"],
            "count_infos": counts["count_infos"],
            "count_rage_clicks": counts["count_rage_clicks"],
            "count_segments": counts["count_segments"],
            "count_urls": counts["count_urls"],
            "count_warnings": counts["count_warnings"],
            "device": {"name": device[0], "brand": device[1], "model": device[2], "family": device[3]},
            "dist": None,
            "duration": end - row.start_s,
            "environment": environment,
            "error_ids": error_ids,
            "finished_at": iso_offset(end),
            "has_viewed": False,
            "id": row.id,
            "info_ids": [hex32(mix(h ^ (60 + j))) for j in range(counts["count_infos"])],
            "is_archived": None,
            "os": {"name": os_name, "version": os_version},
            "ota_updates": {"channel": None, "runtime_version": None, "update_id": None},
            "platform": "javascript",
            "project_id": project.id,
            "releases": [release.version] if release else [],
            "replay_type": "buffer" if error_ids and unit(mix(h ^ 26)) < 0.5 else "session",
            "sdk": {"name": sdk[0], "version": sdk[1]},
            "segment_names": [],
            "started_at": iso_offset(row.start_s),
            "tags": {"environment": [environment], **({"release": [release.version]} if release else {})},
            "trace_ids": [hex32(mix(h ^ (50 + j))) for j in range(1 + counts["count_urls"] // 2)],
            "urls": urls,
            "user": {"id": str(1 + mix(h ^ 27) % 50_000), "username": name.split()[0].lower(), "email": email,
                     "ip": f"203.0.113.{mix(h ^ 28) % 250 + 1}", "display_name": name,
                     "geo": {"city": city, "country_code": country, "region": region, "subdivision": None}},
            "warning_ids": [hex32(mix(h ^ (70 + j))) for j in range(counts["count_warnings"])],
        }


def _counts(row: ReplayRow, end_s: int) -> dict[str, int]:
    """The counters of a replay that has run until end_s (they grow while it is in progress)."""
    h = row.h
    seconds = max(0, end_s - row.start_s)
    full = max(1, row.end_s - row.start_s)
    done = seconds / full

    def grown(total: int) -> int:
        return int(total * done) if end_s < row.end_s else total

    errors = grown(0 if unit(mix(h ^ 2)) < 0.7 else 1 + mix(h ^ 3) % 5)
    rage = grown(1 if unit(mix(h ^ 4)) < 0.1 else 0)
    dead = grown(mix(h ^ 5) % 4 if unit(mix(h ^ 6)) < 0.3 else 0)
    urls = max(1, grown(1 + min(6, full // 120) * (mix(h ^ 7) % 3) // 2))
    return {
        "count_errors": errors,
        "count_rage_clicks": rage,
        "count_dead_clicks": dead,
        "count_urls": urls,
        "count_segments": 1 + seconds // 30,
        "count_warnings": grown(mix(h ^ 8) % 3),
        "count_infos": grown(mix(h ^ 9) % 4),
        "activity": min(10, 1 + errors * 2 + rage * 3 + dead + urls // 2),
    }
