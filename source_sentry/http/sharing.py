"""Identical GETs of one sync asked once.

Before the streams start, the read declares how many readers each route has: a parent list is
read by its stream and by each child stream, the project is both resolved and read as
``project_detail``, the project list is read by discovery and by ``projects``. For a route with
several readers, the first to ask makes the request; the others wait for its answer or take it
as kept. An answer is kept until every declared reader has taken it, within a byte budget (the
oldest kept answer goes first). A reader that stops waiting cancels the request only when nobody
else waits for it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .paging import Answer

__all__ = ["SHARED_BYTES", "SharedAnswers"]

SHARED_BYTES = 8 << 20  # answers kept for readers still to come: at most this many bytes


@dataclass
class _Shared:
    """One GET that several readers make."""

    task: asyncio.Future[Answer]
    takers_left: int
    waiting: int = 0
    size: int = 0  # bytes counted against the budget once answered


class SharedAnswers:
    """The GETs of routes with several readers, asked once each (see the module docstring)."""

    def __init__(self, limit_bytes: int | None = None, on_hit: Callable[[], None] | None = None) -> None:
        self._limit = SHARED_BYTES if limit_bytes is None else limit_bytes
        self._on_hit = on_hit
        self._readers: dict[str, int] = {}
        self._entries: OrderedDict[tuple[str, bytes], _Shared] = OrderedDict()
        self._bytes = 0

    def declare(self, readers: Mapping[str, int]) -> None:
        """How many readers GET each route (templates); routes with one are never shared."""
        self._readers = {route: n for route, n in readers.items() if n > 1}

    def readers(self, route: str) -> int | None:
        """The declared readers of ``route`` when it is shared, else None."""
        return self._readers.get(route)

    async def answer(
        self,
        url: str,
        params: Mapping[str, Any],
        readers: int,
        request: Callable[[], Awaitable[Answer]],
        sent: asyncio.Event | None,
    ) -> Answer:
        """The answer to a GET that ``readers`` readers make: the first runs ``request``, the
        others wait for it or take it as kept. ``sent`` is set at once for those others."""
        key = (url, orjson.dumps(params, option=orjson.OPT_SORT_KEYS, default=str))
        shared = self._entries.get(key)
        if shared is None:
            shared = self._entries[key] = _Shared(asyncio.ensure_future(request()), readers)
        else:
            if self._on_hit is not None:
                self._on_hit()  # a reader takes another reader's answer
            if sent is not None:
                sent.set()  # asked already: nothing of this reader's to wait for on the wire
        shared.waiting += 1
        try:
            answer = await asyncio.shield(shared.task)
        except BaseException:
            if shared.waiting == 1 and not shared.task.done():
                shared.task.cancel()
            if shared.waiting == 1 or shared.task.done():
                self._forget(key, shared)  # a failed or abandoned GET is asked anew next time
            raise
        finally:
            shared.waiting -= 1
        shared.takers_left -= 1
        if shared.takers_left <= 0:
            self._forget(key, shared)
        elif not shared.size:
            shared.size = len(answer.content)
            self._bytes += shared.size
            while self._bytes > self._limit:
                oldest_key, oldest = next((k, v) for k, v in self._entries.items() if v.size)
                self._forget(oldest_key, oldest)  # an answer some reader never came back for
        return answer

    def kept(self) -> list[int]:
        """Readers still to come for each GET asked or kept (for tests and diagnostics)."""
        return [s.takers_left for s in self._entries.values()]

    def sizes(self) -> list[int]:
        """The bytes of each answer kept for readers still to come."""
        return [s.size for s in self._entries.values() if s.size]

    def _forget(self, key: tuple[str, bytes], shared: _Shared) -> None:
        if self._entries.get(key) is shared:
            del self._entries[key]
            self._bytes -= shared.size
