"""Sentry's Link pagination, read with suspicion, one page ahead.

Sentry sends a ``Link`` header with every page of a list: follow ``rel="next"``'s ``cursor``
while its ``results`` is ``"true"``. Only the cursor is taken, never the URL (the token goes
nowhere but the configured host). A list is a chain of requests, so the next page is asked as
soon as this page's header names it and its round trip overlaps the caller's work.

A server can lie, and trusting it loses data or never ends, so every list is checked
(:class:`ListGuard`): a page that may be full without a usable next cursor (no ``Link``, one
nobody can parse, ``results="true"`` without a cursor) is an error, not the last page; and a
list ends in an error when a cursor comes back, when pages only repeat records it served just
before, when empty pages keep promising more, or when it serves far more records than the
server said it holds (``X-Hits``). Nothing here assumes a page size: Sentry clamps lists of
full events to 10 per page whatever ``per_page`` asks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import PaginationError

__all__ = ["PAGE_SIZE", "ListGuard", "Page", "paginate", "parse_link_header"]

PAGE_SIZE = 100  # what we ask for: Sentry's maximum (a larger value is a 400)
# No Sentry list pages smaller than this (full events: 10 per page). A page this long, or as
# long as asked for, may be full: without a next cursor nobody can tell whether more follow.
_SMALLEST_PAGE = 10
# A list ends in an error after this many empty pages in a row that promise more...
_MAX_EMPTY_PAGES = 3
# ...or this many pages in a row holding only records it served within the last few pages
# (a page may legitimately repeat a few: items shift when records are added while paging).
_MAX_REPEATED_PAGES = 2
_RECENT_PAGES = 8

# An answer on its way: the parsed body is the caller's to make.
Fetch = Callable[[str | None], Awaitable["asyncio.Future[Answer]"]]


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, headers and the whole body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint: its items and the cursor of the next page, if any."""

    items: list[Any]
    cursor: str | None  # the cursor this page was requested with
    next_cursor: str | None
    headers: Mapping[str, str]
    # An object answer's ``meta`` (Explore says there whether it sampled: ``dataScanned``).
    meta: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class _Next:
    cursor: str | None
    more: bool | None  # None: the header does not say (missing, unparsable)


def parse_link_header(value: str) -> dict[str, dict[str, str]]:
    """Parse an RFC 8288 ``Link`` header into ``{rel: {"url": ..., param: value}}``."""
    links: dict[str, dict[str, str]] = {}
    i, n = 0, len(value)
    while i < n:
        start = value.find("<", i)
        if start < 0:
            break
        end = value.find(">", start)
        if end < 0:
            break
        entry = {"url": value[start + 1 : end]}
        i = end + 1
        # Parameters: ; name="value" or ; name=value, until a comma outside quotes.
        while i < n:
            while i < n and value[i] in " \t":
                i += 1
            if i >= n or value[i] != ";":
                break
            i += 1
            eq = value.find("=", i)
            if eq < 0:
                i = n
                break
            name = value[i:eq].strip().lower()
            i = eq + 1
            if i < n and value[i] == '"':
                close = value.find('"', i + 1)
                close = n if close < 0 else close
                entry[name] = value[i + 1 : close]
                i = close + 1
            else:
                stop = min((p for p in (value.find(";", i), value.find(",", i)) if p >= 0), default=n)
                entry[name] = value[i:stop].strip()
                i = stop
        comma = value.find(",", i)
        i = n if comma < 0 else comma + 1
        if "rel" in entry:
            links[entry["rel"]] = entry
    return links


def _next_of(headers: Mapping[str, str]) -> _Next:
    return _next_of_link(headers.get("link", ""))


@lru_cache(maxsize=16)  # a page's header is read twice: before its body is parsed and after
def _next_of_link(link: str) -> _Next:
    nxt = parse_link_header(link).get("next")
    if nxt is None or nxt.get("results") not in ("true", "false"):
        return _Next(None, None)
    return _Next(nxt.get("cursor") or None, nxt["results"] == "true")


class ListGuard:
    """The checks of one list (see the module docstring); raises :class:`PaginationError`.

    Memory stays flat: only the keys of the last few pages are kept.
    """

    def __init__(self, path: str, page_size: int) -> None:
        self._path = path
        self.page_size = page_size
        self._cursors: set[str] = set()
        self._recent: deque[set[Any]] = deque(maxlen=_RECENT_PAGES)
        self._empty_run = 0
        self._repeat_run = 0
        self._served = 0
        self._hits: int | None = None

    def next_cursor(self, headers: Mapping[str, str], items: list[Any] | None) -> str | None:
        """The cursor of the next page, or None at the end of the list. ``items`` None: the
        page is not parsed yet (only a usable cursor is returned then, else None)."""
        nxt = _next_of(headers)
        if nxt.more and nxt.cursor is None:
            raise self._error('says more pages follow (results="true") but gives no cursor for them')
        if nxt.more:
            assert nxt.cursor is not None
            if nxt.cursor in self._cursors:
                raise self._error(f"gave the cursor {nxt.cursor} a second time")
            return nxt.cursor
        if nxt.more is None and items is not None and len(items) >= min(self.page_size, _SMALLEST_PAGE):
            header = headers.get("link")
            what = "no Link header" if header is None else "a Link header without a usable next cursor"
            raise self._error(
                f"holds {len(items)} records, which may be a full page, but has {what}: it cannot tell whether "
                "more pages follow (a proxy between us and Sentry may strip the header)"
            )
        return None

    def check(self, items: list[Any], next_cursor: str | None, headers: Mapping[str, str]) -> None:
        """Account for a parsed page whose next page is ``next_cursor``."""
        if next_cursor is not None:
            self._cursors.add(next_cursor)
        if self._hits is None and not self._served:
            self._hits = _hits(headers)
        self._served += len(items)
        if self._hits is not None and self._served > 2 * self._hits + 3 * max(self.page_size, len(items)):
            raise self._error(f"served {self._served} records where it said it holds {self._hits} (X-Hits)")
        if next_cursor is None:
            return
        self._empty_run = self._empty_run + 1 if not items else 0
        if self._empty_run > _MAX_EMPTY_PAGES:
            raise self._error(f"served {self._empty_run} empty pages in a row, each promising more")
        keys = {item.get("id") for item in items if isinstance(item, dict) and item.get("id") is not None}
        repeated = bool(keys) and all(any(key in page for page in self._recent) for key in keys)
        self._repeat_run = self._repeat_run + 1 if repeated else 0
        if self._repeat_run > _MAX_REPEATED_PAGES:
            raise self._error(f"served the same records again on {self._repeat_run} pages in a row")
        self._recent.append(keys)

    def _error(self, what: str) -> PaginationError:
        return PaginationError(
            f"Sentry's answer to {self._path} {what}. The stream stops here and keeps its previous cursor, "
            "so the next sync reads this list again; if it persists, the server or a proxy in front of it "
            "is paging wrongly."
        )


def _hits(headers: Mapping[str, str]) -> int | None:
    """The list's total from ``X-Hits``, unless Sentry capped it (``X-Max-Hits``)."""
    try:
        hits = int(headers.get("x-hits", ""))
    except ValueError:
        return None
    try:
        cap = int(headers.get("x-max-hits", ""))
    except ValueError:
        cap = None
    return None if cap is not None and hits >= cap else hits


async def paginate(
    fetch: Fetch,
    parse: Callable[[Answer, str | None], Awaitable[tuple[Any, Answer]]],
    guard: ListGuard,
    *,
    cursor: str | None,
    read_ahead: bool,
    items_key: str | None = None,
    limit: int | None = None,
) -> AsyncGenerator[Page, None]:
    """Yield every page from ``cursor`` on. ``fetch(cursor)`` puts a request on its way and
    returns its answer to come; ``parse(answer, cursor)`` returns the JSON body of an answer,
    asking again (with the retries left) when the body is unreadable, with the answer it read.

    With ``read_ahead`` the next page is requested as soon as this page's ``Link`` header
    names it, so its round trip overlaps the parsing of this page and the caller's work on it.
    At most one page is fetched ahead. A caller that may stop early (newest-first lists read
    down to a known point) passes ``False``: a page read ahead and never used is a wasted request.

    ``items_key``: the records are that key's list in an object answer (its ``meta`` goes with
    the page). ``limit``: no page is asked for beyond this many records (Explore refuses
    offsets past its row cap); the last page yielded then still names its next cursor.
    """
    ahead: asyncio.Future[Answer] | None = await fetch(cursor)
    served = 0
    try:
        while ahead is not None:
            answer = await ahead
            ahead = None
            early = guard.next_cursor(answer.headers, None)
            # Before parsing, the page's length is unknown: read ahead only when the next page
            # starts within the limit even if this one is as long as asked for.
            within = limit is None or served + guard.page_size < limit
            if early is not None and read_ahead and within:
                ahead = await fetch(early)
            try:
                body, parsed = await parse(answer, cursor)
            except BaseException:
                if ahead is not None:
                    await _cancel(ahead)
                    ahead = None
                raise
            if parsed is not answer:
                # Read again after an unreadable body: its cursors come from the new answer.
                if ahead is not None:
                    await _cancel(ahead)
                    ahead = None
                answer = parsed
            items, meta = _items_of(body, items_key)
            next_cursor = guard.next_cursor(answer.headers, items)
            guard.check(items, next_cursor, answer.headers)
            served += len(items)
            yield Page(items=items, cursor=cursor, next_cursor=next_cursor, headers=answer.headers, meta=meta)
            if limit is not None and served >= limit:
                return
            if next_cursor and ahead is None:
                ahead = await fetch(next_cursor)
            cursor = next_cursor
    finally:
        if ahead is not None:
            await _cancel(ahead)


def _items_of(body: Any, items_key: str | None) -> tuple[list[Any], Mapping[str, Any] | None]:
    """A page's records (and ``meta``, for an object answer)."""
    if items_key is None:
        if not isinstance(body, list):
            raise PaginationError(f"Sentry answered a list request with a {type(body).__name__} where a list was expected.")
        return body, None
    items = body.get(items_key) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise PaginationError(f"Sentry answered a list request without a list under '{items_key}'.")
    meta = body.get("meta")
    return items, meta if isinstance(meta, dict) else None


async def _cancel(future: asyncio.Future[Any]) -> None:
    """Cancel a request fetched ahead and wait until it has released its rate budget."""
    future.cancel()
    await asyncio.wait([future])  # raises only if *we* are cancelled meanwhile
    if not future.cancelled():
        future.exception()  # its outcome no longer matters; retrieved so asyncio does not warn
