"""The issue search syntax the issue lists accept (a useful subset of Sentry's)."""

from __future__ import annotations

import re
from collections.abc import Callable

from .models import Issue, issue_category, issue_type
from .timeutil import BadParam, parse_iso, parse_period

__all__ = ["SORTS", "parse_issue_query"]

Predicate = Callable[[Issue], bool]
_TOKEN = re.compile(r'!?[\w.]+:"[^"]*"|!?[\w.]+:\[[^\]]*\]|"[^"]*"|\S+')
_CMP = re.compile(r"^(>=|<=|>|<|=)?(.*)$")
_SUBSTATUSES = {"new", "ongoing", "regressed", "escalating", "archived_until_escalating",
                "archived_forever", "archived_until_condition_met"}
# sort name -> the aggregate it orders by (descending)
SORTS: dict[str, Callable[[Issue], int]] = {
    "date": lambda i: (i.agg.last_us or 0) // 1000,
    "new": lambda i: (i.first_seen_us or 0) // 1000,
    "freq": lambda i: i.times_seen,
    "user": lambda i: i.user_count,
}
for _alias in ("trends", "inbox", "recommended", "priority"):
    SORTS[_alias] = SORTS["date"]


def _is(value: str) -> Predicate:
    v = value.lower()
    if v in ("unresolved", "resolved", "ignored", "reprocessing", "pending_deletion", "pending_merge"):
        return lambda i: i.status == v
    if v == "archived":
        return lambda i: i.status == "ignored"
    if v in _SUBSTATUSES:
        return lambda i: i.substatus == v
    if v in ("assigned", "unassigned"):
        return lambda i: (i.assigned_to is not None) == (v == "assigned")
    if v == "for_review":
        return lambda i: i.in_inbox and i.status == "unresolved"
    if v in ("linked", "unlinked"):
        return lambda i: i.linked == (v == "linked")
    if v in ("bookmarked",):
        return lambda i: i.is_bookmarked
    raise BadParam(f"Invalid value for \"is\" search, valid values are {sorted(_SUBSTATUSES)}")


def _date(field: str, raw: str, now_us: int) -> Predicate:
    op, value = _CMP.match(raw).groups()  # type: ignore[union-attr]
    if value[:1] in "+-" and value[1:2].isdigit():
        # Relative: `-24h` = within the last 24 hours; `+24h` = older than 24 hours.
        bound = now_us - parse_period(value[1:])
        op = op or (">=" if value[0] == "-" else "<=")
    else:
        bound = parse_iso(value)
    get = (lambda i: i.agg.last_us) if field == "lastSeen" else (lambda i: i.first_seen_us)
    compare = {">": lambda t: t > bound, ">=": lambda t: t >= bound, "<": lambda t: t < bound,
               "<=": lambda t: t <= bound, "=": lambda t: t == bound, None: lambda t: t == bound}[op]
    return lambda i: get(i) is not None and compare(get(i))


def _number(get: Callable[[Issue], int], raw: str) -> Predicate:
    op, value = _CMP.match(raw).groups()  # type: ignore[union-attr]
    try:
        n = int(value)
    except ValueError:
        raise BadParam(f"Invalid number: {value}") from None
    return {">": lambda i: get(i) > n, ">=": lambda i: get(i) >= n, "<": lambda i: get(i) < n,
            "<=": lambda i: get(i) <= n}.get(op or "", lambda i: get(i) == n)


def _values(raw: str) -> list[str]:
    raw = raw.strip('"')
    if raw.startswith("[") and raw.endswith("]"):
        return [v.strip().strip('"') for v in raw[1:-1].split(",") if v.strip()]
    return [raw]


def _term(key: str, raw: str, now_us: int, slugs: dict[int, str]) -> Predicate:
    if key == "is":
        preds = [_is(v) for v in _values(raw)]
        return lambda i: any(p(i) for p in preds)
    if key in ("lastSeen", "firstSeen"):
        return _date(key, raw, now_us)
    if key in ("timesSeen", "times_seen"):
        return _number(lambda i: i.times_seen, raw)
    values = _values(raw)
    if key == "level":
        return lambda i: i.level in values
    if key == "environment":
        return lambda i: any(e in i.envs for e in values)
    if key in ("issue.priority", "priority"):
        return lambda i: i.priority in values
    if key == "project":
        return lambda i: slugs.get(i.project) in values
    if key in ("assigned", "assigned_or_suggested"):
        return lambda i: i.assigned_to is not None and (
            "me" in values or any(v.lstrip("#") in (i.assigned_to.get("name"), i.assigned_to.get("email"))
                                  for v in values))
    if key == "issue.category":
        return lambda i: issue_category(i) in values
    if key == "issue.type":
        return lambda i: issue_type(i) in values
    return lambda i: False  # any other key is a tag filter; generated issues carry no such tag


def parse_issue_query(query: str | None, now_us: int, slugs: dict[int, str]) -> Predicate:
    """A predicate for `query`; None (parameter absent) means Sentry's default `is:unresolved`."""
    if query is None:
        query = "is:unresolved"
    preds: list[Predicate] = []
    for token in _TOKEN.findall(query):
        negate = token.startswith("!") and ":" in token
        body = token[1:] if negate else token
        key, sep, raw = body.partition(":")
        if sep and key and not body.startswith('"') and raw:
            pred = _term(key, raw, now_us, slugs)
        else:
            text = token.strip('"').lower()
            pred = (lambda t: lambda i: t in i.title.lower() or t in i.culprit.lower()
                    or t == i.short_id.lower())(text)
        preds.append((lambda p: lambda i: not p(i))(pred) if negate else pred)
    return lambda i: all(p(i) for p in preds)
