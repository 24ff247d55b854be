"""Sentry's cursors (`value:offset:is_prev`), page sizes and the `Link` header."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from .timeutil import BadParam

__all__ = [
    "FULL_PAGE_SIZE",
    "Cursor",
    "Page",
    "clamp_page_size",
    "keyed_page",
    "link_header",
    "numbered_page",
    "offset_page",
    "parse_cursor",
    "parse_page_size",
]

T = TypeVar("T")
MAX_PER_PAGE = 100
# Since Sentry's changes of 2026-08/09 (getsentry/sentry #122718: issue events; #123694: project
# events and issue hashes) a list of full events holds at most 10 per page, whatever per_page asks.
FULL_PAGE_SIZE = 10


@dataclass(frozen=True)
class Cursor:
    value: int
    offset: int
    is_prev: bool

    def __str__(self) -> str:
        return f"{self.value}:{self.offset}:{int(self.is_prev)}"


@dataclass
class Page:
    items: list
    next: Cursor
    has_next: bool
    prev: Cursor
    has_prev: bool
    hits: int | None = None


def parse_cursor(raw: str | None) -> Cursor | None:
    """Parse `value:offset:is_prev`; anything else is Sentry's 400 "Invalid cursor parameter."."""
    if raw is None or raw == "":
        return None
    bits = raw.split(":")
    try:
        if len(bits) != 3:
            raise ValueError
        value = int(float(bits[0])) if "." in bits[0] else int(bits[0])
        offset, is_prev = int(bits[1]), int(bits[2])
        if offset < 0 or is_prev not in (0, 1):
            raise ValueError
    except ValueError:
        raise BadParam("Invalid cursor parameter.") from None
    return Cursor(value, offset, bool(is_prev))


def parse_page_size(raw: str | None, name: str = "per_page") -> int:
    """`per_page` (or `limit`): default and maximum 100; above it Sentry answers 400."""
    if raw is None or raw == "":
        return MAX_PER_PAGE
    try:
        size = int(raw)
    except ValueError:
        raise BadParam(f"Invalid {name} parameter.") from None
    if size > MAX_PER_PAGE:
        raise BadParam(f"Invalid {name} value. Cannot exceed {MAX_PER_PAGE}.")
    if size < 1:
        raise BadParam(f"Invalid {name} value.")
    return size


def clamp_page_size(limit: int, cap: int | None) -> int:
    """`limit` held to `cap` (None or 0: no cap). A valid per_page above the cap is not an error:
    the page is just shorter, and its Link cursor continues from where it ends."""
    return min(limit, cap) if cap else limit


def offset_page(total: int, fetch: Callable[[int, int], list], limit: int, cursor: Cursor | None) -> Page:
    """Sentry's GenericOffsetPaginator: cursor `0:OFFSET:0`; `is_prev` does not change the offset."""
    offset = cursor.offset if cursor else 0
    items = fetch(offset, limit) if offset < total else []
    return Page(items, Cursor(0, offset + limit, False), offset + limit < total,
                Cursor(0, max(0, offset - limit), True), offset > 0)


def numbered_page(total: int, fetch: Callable[[int, int], list], limit: int, cursor: Cursor | None) -> Page:
    """Sentry's OffsetPaginator (the releases list): cursor `LIMIT:PAGE:IS_PREV`, rows from
    PAGE * LIMIT of the cursor, `is_prev` ignored.

    Nothing anchors a page to the items already returned: deleting one of them between two
    requests shifts the next page by one, so one item is never served.
    """
    size = cursor.value if cursor else 0
    number = cursor.offset if cursor else 0
    start = number * size
    stop = start + (size or limit) + 1  # one more than a page: is there a next one?
    window = fetch(start, stop - start) if start < total else []
    if size != limit:  # the client changed per_page: Sentry keeps the last limit + 1 rows
        window = window[-(limit + 1):]
    return Page(window[:limit], Cursor(limit, number + 1, False), len(window) > limit,
                Cursor(limit, number - 1, True), number > 0)


def keyed_page(items: Sequence[T], key: Callable[[T], int], limit: int, cursor: Cursor | None,
               hits: bool = True) -> Page:
    """Sentry's BasePaginator over a list sorted by `key` descending (e.g. epoch ms of lastSeen).

    The cursor holds the key of the last item returned and how many items with that same key were
    already returned, so items inserted at the head or removed before the cursor never shift the
    next page (offset paging would skip one item per deletion).
    """
    keys = [key(x) for x in items]
    if cursor is None or not cursor.is_prev:
        start = 0 if cursor is None else _first_at_or_below(keys, cursor.value) + cursor.offset
        chosen = list(items[start:start + limit])
        has_next = start + limit < len(items)
        has_prev = start > 0
    else:
        end = _first_at_or_below(keys, cursor.value + 1)  # items strictly above the key (newer)
        start = max(0, end - limit)
        chosen, has_next, has_prev = list(items[start:end]), True, start > 0
    if chosen:
        last = key(chosen[-1])
        same = sum(1 for x in chosen if key(x) == last)
        # A page ending inside a run of equal keys continues the run (Sentry's build_cursor).
        if cursor is not None and not cursor.is_prev and last == cursor.value:
            same += cursor.offset
        nxt = Cursor(last, same, False)
        prv = Cursor(key(chosen[0]), 0, True)
    else:
        nxt = cursor if cursor is not None and not cursor.is_prev else Cursor(0, 0, False)
        prv = Cursor(0, 0, True)
    return Page(chosen, nxt, has_next, prv, has_prev, len(items) if hits else None)


def _first_at_or_below(desc_keys: list[int], value: int) -> int:
    """Index of the first key <= value in a descending list (binary search)."""
    lo, hi = 0, len(desc_keys)
    while lo < hi:
        mid = (lo + hi) // 2
        if desc_keys[mid] > value:
            lo = mid + 1
        else:
            hi = mid
    return lo


def link_header(base_url: str, path: str, query: list[tuple[str, str]], page: Page) -> str:
    """`<url?&cursor=...>; rel="previous"; results="..."; cursor="...", <...>; rel="next"; ...`."""
    rest = urlencode([(k, v) for k, v in query if k != "cursor"])
    uri = f"{base_url}{path}?{rest}"

    def one(rel: str, cursor: Cursor, results: bool) -> str:
        return (f'<{uri}&cursor={cursor}>; rel="{rel}"; results="{"true" if results else "false"}"; '
                f'cursor="{cursor}"')

    return f"{one('previous', page.prev, page.has_prev)}, {one('next', page.next, page.has_next)}"
