"""Emulator time (real UTC time plus an offset that tests can move forward) and the data anchor."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

__all__ = ["DAY_S", "Clock", "data_anchor_us"]

DAY_S = 86400


def data_anchor_us(start: datetime | None, now_s: float) -> int:
    """Where the generated history ends, in whole seconds (epoch microseconds).

    `start` when pinned; otherwise 00:00 UTC of the day of `now_s`, so every start on one UTC
    day generates the same records (same timestamps, not only the same ids), and the next day
    moves the whole history forward by a day.
    """
    seconds = int(start.timestamp()) if start is not None else int(now_s // DAY_S) * DAY_S
    return seconds * 1_000_000


class Clock:
    """Thread-safe clock; `now_us()` is emulator time in integer microseconds since the epoch."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        # Pinning the start makes every timestamp reproducible from the seed alone.
        self._offset = 0.0 if start is None else start.timestamp() - time.time()

    def time(self) -> float:
        """Emulator time as epoch seconds (float)."""
        with self._lock:
            return time.time() + self._offset

    def now_us(self) -> int:
        return int(self.time() * 1_000_000)

    def now(self) -> datetime:
        """Emulator time as a tz-aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), tz=timezone.utc)

    def advance(self, seconds: float) -> None:
        """Move emulator time forward; time never goes back (windows and visibility rely on it)."""
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        with self._lock:
            self._offset += seconds
