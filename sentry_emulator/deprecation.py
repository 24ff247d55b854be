"""Deprecated endpoints: Sentry's `X-Sentry-Deprecation-Date` / `X-Sentry-Replacement-Endpoint`
headers, and scheduled brownouts (410 instead of the answer) for the next N matching requests."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

__all__ = ["BROWNOUT_DETAIL", "DEFAULT_DATE", "Deprecation", "DeprecationTable"]

DEFAULT_DATE = "2026-05-01T00:00:00Z"
BROWNOUT_DETAIL = "This endpoint is deprecated and is currently unavailable (brownout)."


@dataclass
class Deprecation:
    path: re.Pattern[str]
    date: str
    replacement: str | None
    brownouts: int  # matching requests still to answer 410

    def headers(self) -> dict[str, str]:
        out = {"X-Sentry-Deprecation-Date": self.date}
        if self.replacement:
            out["X-Sentry-Replacement-Endpoint"] = self.replacement
        return out


class DeprecationTable:
    """The newest matching entry decides (a later `add` overrides a default for the same path)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Deprecation] = []

    def add(self, path: str, date: str = DEFAULT_DATE, replacement: str | None = None, brownout_times: int = 0) -> None:
        if brownout_times < 0:
            raise ValueError("brownout_times must be >= 0")
        entry = Deprecation(re.compile(path), str(date), replacement, int(brownout_times))
        with self._lock:
            self._items.insert(0, entry)

    def take(self, path: str) -> tuple[dict[str, str], bool] | None:
        """(headers, brownout?) for a request to `path`, consuming one brownout; None when the
        path is not deprecated."""
        with self._lock:
            for entry in self._items:
                if entry.path.search(path):
                    brownout = entry.brownouts > 0
                    if brownout:
                        entry.brownouts -= 1
                    return entry.headers(), brownout
        return None

    def pending(self) -> list[dict[str, object]]:
        with self._lock:
            return [{"path": e.path.pattern, "date": e.date, "replacement": e.replacement, "brownout_times": e.brownouts}
                    for e in self._items]
