"""Release health: sessions per (project, release, environment, session.status, hour).

Every hourly number is a pure function of (seed, project, release, environment, hour), computed
lazily and cached per (project, hour); an hour counts only once its time has come, and the hour
that holds `now` counts the elapsed part of it only (its numbers grow as the clock advances).
Sessions also arrive late after their hour has ended (offline clients send them when they are
back): some rows hold back a part of their sessions that arrives 1 to 24 hours after the hour.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from .dataset import Dataset
from .models import Project, Release
from .rand import mix, unit
from .timeutil import US

__all__ = ["SESSION_ENVIRONMENTS", "SESSION_FIELDS", "SESSION_GROUP_BY", "SESSION_STATUSES", "HealthData", "HourRow",
           "arrived", "users_of"]

HOUR_US = 3600 * US
SESSION_ENVIRONMENTS = ("production", "staging")
SESSION_STATUSES = ("healthy", "errored", "crashed", "abnormal")
SESSION_FIELDS = ("sum(session)", "count_unique(user)")
SESSION_GROUP_BY = ("project", "release", "environment", "session.status")
ACTIVE_RELEASES = 3  # a project's latest releases that still receive sessions
_ADOPTION = (1.0, 0.45, 0.15)  # share of the newest, second and third release
_ENV_SHARE = {"production": 1.0, "staging": 0.3}
_CACHE_MAX = 400_000
_LATE_SHARE = 0.4  # rows with late sessions (1 to a third of theirs)


@dataclass(frozen=True)
class HourRow:
    release: str
    environment: str
    status: str
    sessions: int  # the whole hour, late ones included
    users: int  # <= sessions
    late: int = 0  # of the sessions, those that arrive `late_hours` after the hour ends
    late_users: int = 0
    late_hours: int = 0


class HealthData:
    """Hourly session counts, generated on demand."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self._cache: dict[tuple[int, int, tuple[str, ...]], tuple[HourRow, ...]] = {}

    def _releases(self, project: Project) -> list[Release]:
        return sorted((r for r in self.ds.releases if project.idx in r.projects),
                      key=lambda r: (r.date_created_us, r.id))

    def hours(self, project: Project, lo_us: int, hi_us: int, now_us: int) -> list[tuple[int, tuple[HourRow, ...]]]:
        """(hour start, rows) of each hour of the project that starts in [lo_us, hi_us), within
        retention and not after now (what of them has arrived by now: :func:`arrived`)."""
        releases = self._releases(project)
        created = [r.date_created_us for r in releases]
        first = max(lo_us, now_us - self.ds.retention_us, project.date_created_us)
        start = -(-first // HOUR_US) * HOUR_US  # whole hours only
        out = []
        for t in range(start, min(hi_us, now_us), HOUR_US):
            n = bisect.bisect_left(created, t + HOUR_US)  # releases created before the hour ends
            if n == 0:
                continue
            active = tuple(r.version for r in releases[max(0, n - ACTIVE_RELEASES):n])
            rows = self._hour(project, t // HOUR_US, active)
            if rows:
                out.append((t, rows))
        return out

    def _hour(self, project: Project, hour: int, active: tuple[str, ...]) -> tuple[HourRow, ...]:
        key = (project.idx, hour, active)
        rows = self._cache.get(key)
        if rows is None:
            if len(self._cache) > _CACHE_MAX:
                self._cache.clear()
            rows = self._cache[key] = self._gen_hour(project, hour, active)
        return rows

    def _gen_hour(self, project: Project, hour: int, active: tuple[str, ...]) -> tuple[HourRow, ...]:
        out = []
        for rank, version in enumerate(reversed(active)):  # rank 0: the newest release
            for env in SESSION_ENVIRONMENTS:
                h = self.ds._h("sessions", project.idx, version, env, hour)
                if unit(h) < 0.12:  # a quiet hour for this release and environment
                    continue
                healthy = round(((h >> 8) % 41) * _ADOPTION[rank] * _ENV_SHARE[env])
                errored = math.floor(healthy * 0.15 * unit(mix(h ^ 1)))
                crashed = 1 + (h >> 40) % 2 if unit(mix(h ^ 2)) < 0.07 else 0
                abnormal = 1 if unit(mix(h ^ 3)) < 0.03 else 0
                for k, (status, n) in enumerate(zip(SESSION_STATUSES, (healthy, errored, crashed, abnormal), strict=True)):
                    if n:
                        share = 0.55 + 0.45 * unit(mix(h ^ (10 + k)))
                        users = max(1, min(n, round(n * share)))
                        g = mix(h ^ (20 + k))
                        late = 1 + math.floor((n - 1) * 0.3 * unit(g)) if n > 1 and unit(mix(g)) < _LATE_SHARE else 0
                        early_users = min(users - users * late // n, n - late)
                        out.append(HourRow(version, env, status, n, users, late, users - early_users, 1 + g % 24))
        return tuple(out)


def arrived(row: HourRow, hour_us: int, now_us: int) -> tuple[int, int]:
    """The sessions and users of ``row`` (of the hour starting at ``hour_us``) that have arrived by
    ``now_us``: the hour in progress counts its elapsed part, and the late ones come all at once
    ``late_hours`` after the hour ends."""
    if now_us >= hour_us + (1 + row.late_hours) * HOUR_US:
        return row.sessions, row.users
    sessions, users = row.sessions - row.late, row.users - row.late_users
    fraction = (now_us - hour_us) / HOUR_US
    if fraction < 1:
        return int(sessions * fraction), int(users * fraction)
    return sessions, users


def users_of(total: int, top: int) -> int:
    """count_unique(user) over several hours from the sum of the hourly users and the busiest
    hour's: between the two (users come back), never decreasing as hours grow or arrive."""
    return (total + top) // 2
