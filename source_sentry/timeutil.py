"""Sentry's timestamps: ISO-8601 UTC, with or without fractions, 'Z' or an offset."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

__all__ = ["format_time", "parse_datetime", "parse_time"]


# Fallback for what datetime.fromisoformat rejects (Python 3.10: 'Z', >6 fraction digits).
_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_datetime(text: str) -> datetime | None:
    """Parse ISO-8601 (with or without fractions, 'Z' or an offset) to an aware UTC datetime.

    A value without an offset is taken as UTC (Sentry's timestamps are UTC). None if unparseable.
    """
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = _parse_datetime_fallback(text)
        if parsed is None:
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _parse_datetime_fallback(text: str) -> datetime | None:
    match = _ISO_RE.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    if offset and offset not in ("Z", "z"):
        digits = offset[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        tz = timezone(-delta if offset[0] == "-" else delta)
    try:
        return datetime(
            int(year), int(month), int(day),
            int(hour or 0), int(minute or 0), int(second or 0), micros, tzinfo=tz,
        )
    except ValueError:  # e.g. month 13
        return None


def parse_time(value: Any) -> datetime | None:
    """:func:`parse_datetime` for any value: None unless it is a parseable string."""
    if not isinstance(value, str) or not value.strip():
        return None
    return parse_datetime(value.strip())


@lru_cache(maxsize=4096)  # a checkpoint formats every window's bounds again: mostly the same ones
def format_time(value: datetime) -> str:
    """Format as ISO-8601 UTC with microseconds and ``Z``, the form we save in state."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
