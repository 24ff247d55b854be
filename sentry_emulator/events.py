"""Lazy events of one project: event i is a pure function of (project key, i).

Generated events are never materialized. `dateCreated` is monotone in i over the span, so a time
range is a binary search on i and a page is computed on demand. The startup pass is O(N) but keeps
only one 4-byte index per event (grouped by issue) plus per-issue aggregates.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field

from .rand import MASK
from .timeutil import US

__all__ = ["MAX_DELAY_US", "GeneratedEvents", "IssueAgg", "VisibleRange"]

MAX_DELAY_US = 600 * US  # late arrivals: dateReceived up to ~10 minutes after dateCreated
_LATE_SLOTS = 2  # out of 64: about 3% of events arrive late
_C1, _C2, _C3 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


@dataclass
class IssueAgg:
    """Per-issue counters consistent with the issue's received events."""

    count: int = 0
    first_us: int | None = None
    last_us: int | None = None
    users: set[int] = field(default_factory=set)

    def add(self, t_us: int, user: int) -> None:
        self.count += 1
        self.users.add(user)
        self.first_us = t_us if self.first_us is None else min(self.first_us, t_us)
        self.last_us = t_us if self.last_us is None else max(self.last_us, t_us)

    def absorb(self, other: IssueAgg) -> None:
        self.count += other.count
        self.users |= other.users
        for t in (other.first_us, other.last_us):
            if t is not None:
                self.first_us = t if self.first_us is None else min(self.first_us, t)
                self.last_us = t if self.last_us is None else max(self.last_us, t)


class GeneratedEvents:
    """The N generated events of one project, spread over [end_us - span_us, end_us)."""

    def __init__(self, key: int, n: int, n_issues: int, end_us: int, span_us: int) -> None:
        self.key = key & MASK
        self.n = n
        self.n_issues = min(n_issues, n)
        self.start_us = end_us - span_us
        self.span_us = max(span_us, 1)
        self.users = max(1, min(2000, n // 4 + 1))
        # About 40% of issues stop occurring at some point after their first event (fixed bugs),
        # so long histories hold issues whose lastSeen is old. Issue 0 never stops.
        self.stops = []
        for k in range(self.n_issues):
            hk = (self.key ^ ((k + 1) * _C2)) & MASK
            hk = ((hk ^ (hk >> 31)) * _C3) & MASK
            seed_pos = ((2 * k + 1) * n) // (2 * self.n_issues)
            if k > 0 and hk % 10 < 4:
                self.stops.append(seed_pos + 1 + int(((hk >> 8) % 10_000) / 10_000 * (n - seed_pos - 1)))
            else:
                self.stops.append(n)

    # --- pure per-event functions -------------------------------------------------------
    def hash(self, i: int) -> int:
        x = (self.key + i + _C1) & MASK
        x = ((x ^ (x >> 30)) * _C2) & MASK
        x = ((x ^ (x >> 27)) * _C3) & MASK
        return x ^ (x >> 31)

    def time_us(self, i: int) -> int:
        h = self.hash(i)
        t = self.start_us + int((i + (h & 0xFFFFF) / 1048576.0) * self.span_us / self.n)
        if (h >> 61) == 0:
            # About 1 in 8 events comes from an SDK that sends whole-second timestamps. Only when
            # the whole second is still after every earlier event's time: dateCreated stays
            # monotone in i, which the binary searches need.
            whole = t - t % US
            if whole > self.start_us + (i * self.span_us) // self.n:
                return whole
        return t

    def received_us(self, i: int) -> int:
        h = self.hash(i)
        h2 = (h * _C2 + _C3) & MASK
        if ((h >> 52) & 63) < _LATE_SLOTS:
            return self.time_us(i) + 5 * US + h2 % (MAX_DELAY_US - 5 * US)
        return self.time_us(i) + 50_000 + h2 % 1_950_000

    def user(self, i: int) -> int:
        return ((self.hash(i) >> 40) & 0xFFF) % self.users

    def _seed_issue(self, i: int) -> int | None:
        # Issue k owns position floor((k + .5) * N / M), so every issue has at least one event.
        m, n = self.n_issues, self.n
        k = (2 * i * m) // (2 * n)
        for cand in (k - 1, k, k + 1):
            if 0 <= cand < m and ((2 * cand + 1) * n) // (2 * m) == i:
                return cand
        return None

    def issue(self, i: int) -> int:
        seeded = self._seed_issue(i)
        if seeded is not None:
            return seeded
        u = ((self.hash(i) >> 20) & 0xFFFFF) / 1048576.0
        return self._active(int(self.n_issues * u**2.5), i)  # power-law-ish: a few issues get most

    def _active(self, k: int, i: int) -> int:
        """k if issue k still occurs at event i, else the issue seeded nearby, else issue 0."""
        if i < self.stops[k]:
            return k
        near = (i * self.n_issues) // self.n
        return near if i < self.stops[near] else 0

    def live_issue(self, u: float) -> int:
        """The base issue of a live event (after the generated span) drawn with `u` in [0, 1):
        the same power law as the span's events, among issues still occurring at its end."""
        return self._active(int(self.n_issues * u**2.5), self.n - 1)

    def first_at_or_after(self, t_us: int) -> int:
        """Smallest i with time_us(i) >= t_us (N when none)."""
        return bisect_left(range(self.n), t_us, key=self.time_us)

    # --- startup pass -------------------------------------------------------------------
    def group(self, now_us: int) -> tuple[list[array], list[IssueAgg], list[tuple[int, int]]]:
        """One O(N) pass: event indices per issue, aggregates of received events, and the
        (dateReceived, i) of events not yet received at `now_us`, sorted by dateReceived."""
        m = self.n_issues
        per_issue = [array("I") for _ in range(m)]
        aggs = [IssueAgg() for _ in range(m)]
        pending: list[tuple[int, int]] = []
        tail = self.first_at_or_after(now_us - MAX_DELAY_US)
        seeds = {((2 * k + 1) * self.n) // (2 * m): k for k in range(m)}
        key, users, n_issues, stops = self.key, self.users, float(self.n_issues), self.stops
        appends = [a.append for a in per_issue]
        user_sets = [a.users for a in aggs]
        for i in range(self.n):
            x = (key + i + _C1) & MASK
            x = ((x ^ (x >> 30)) * _C2) & MASK
            x = ((x ^ (x >> 27)) * _C3) & MASK
            h = x ^ (x >> 31)
            k = seeds.get(i)
            if k is None:
                k = int(n_issues * (((h >> 20) & 0xFFFFF) / 1048576.0) ** 2.5)
                if i >= stops[k]:
                    k = self._active(k, i)
            appends[k](i)
            if i >= tail and self.received_us(i) > now_us:
                pending.append((self.received_us(i), i))
                continue
            user_sets[k].add(((h >> 40) & 0xFFF) % users)
        pending_ids = {i for _, i in pending}
        for k, idx in enumerate(per_issue):
            received = [i for i in idx[bisect_left(idx, tail):] if i not in pending_ids]
            head = idx[: bisect_left(idx, tail)]
            first = head[0] if head else (received[0] if received else None)
            last = received[-1] if received else (head[-1] if head else None)
            aggs[k].count = len(head) + len(received)
            if first is not None and last is not None:
                aggs[k].first_us, aggs[k].last_us = self.time_us(first), self.time_us(last)
        pending.sort()
        return per_issue, aggs, pending


class VisibleRange:
    """Positions [a, b) of a sorted index sequence minus a sorted `removed` subset, newest first."""

    def __init__(self, seq: Sequence[int], a: int, b: int, removed: Sequence[int]) -> None:
        self.seq, self.a, self.b = seq, a, max(a, b)
        lo_v = seq[a] if a < self.b else 0
        hi_v = seq[self.b - 1] + 1 if a < self.b else 0
        self.removed = removed
        self._r_lo, self._r_hi = bisect_left(removed, lo_v), bisect_left(removed, hi_v)
        self.length = (self.b - self.a) - (self._r_hi - self._r_lo)

    def __len__(self) -> int:
        return self.length

    def _visible_from(self, p: int) -> int:
        """Visible items at positions [p, b)."""
        return (self.b - p) - (self._r_hi - bisect_left(self.removed, self.seq[p], self._r_lo, self._r_hi))

    def nth_newest(self, k: int) -> int:
        """The event index of the k-th newest visible item (0 = newest)."""
        if self._r_hi == self._r_lo:
            return self.seq[self.b - 1 - k]
        lo, hi = self.a, self.b - 1  # largest p with _visible_from(p) >= k + 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._visible_from(mid) >= k + 1:
                lo = mid
            else:
                hi = mid - 1
        return self.seq[lo]
