"""ISO-8601 formatting and parsing in Sentry's styles, and `statsPeriod` durations."""

from __future__ import annotations

import re
from datetime import datetime, timezone

__all__ = ["US", "BadParam", "iso_auto", "iso_ms", "iso_s", "iso_us", "parse_iso", "parse_period", "whole_s"]

US = 1_000_000
_PERIOD = re.compile(r"^(\d+)([smhdw]?)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "": 1}


class BadParam(ValueError):
    """A request parameter Sentry would reject with a 400 and this message."""


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us // US, tz=timezone.utc).replace(microsecond=us % US)


def iso_us(us: int) -> str:
    """`2024-03-03T12:00:00.123456Z` (event payload dates, full=true)."""
    return _dt(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_ms(us: int) -> str:
    """`2018-11-06T21:19:58.536Z` (Django model dates: projects, orgs)."""
    return _dt(us).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def iso_auto(us: int) -> str:
    """Whole seconds without a fraction, others with microseconds: `...12:00:00Z` beside
    `...12:00:00.123456Z` (a datetime rendered by isoformat, as Django REST framework does)."""
    return iso_s(us) if us % US == 0 else iso_us(us)


def whole_s(us: int) -> int:
    """`us` truncated to whole seconds (a timestamp a client sent without a fraction)."""
    return us - us % US


def iso_s(us: int) -> str:
    """`2018-11-06T21:19:55Z` (snuba-backed dates: second precision)."""
    return _dt(us).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> int:
    """Parse an ISO-8601 datetime (naive means UTC) into epoch microseconds."""
    text = value.strip().replace(" ", "+")  # an unencoded '+' in a query string arrives as ' '
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadParam(f"{value} is not a valid ISO8601 date query") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    delta = parsed - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * US + delta.microseconds


def parse_period(value: str) -> int:
    """`24h`, `14d`, `90d`, `30m`, `2w` -> microseconds."""
    match = _PERIOD.match(value.strip())
    if not match:
        raise BadParam("Invalid statsPeriod")
    return int(match.group(1)) * _UNIT_S[match.group(2)] * US
