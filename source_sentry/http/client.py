"""The one HTTP client of a sync: session, auth, URLs, and the send path in layers.

Every request goes through :class:`SentryClient`: ``get`` (one object) and ``pages`` (a list,
see :mod:`.paging`). Below them, one layer per concern: a GET that several readers make is
asked once (:mod:`.sharing`); each request waits for its turn in the host's rate budget
(:mod:`.ratelimit`), and failures are retried or raised as :mod:`.retry` decides; one attempt
is one deadline over connect, headers and body, on HTTP/1.1 over asyncio's own transports
(:mod:`.wire`). Each URL is built from the configured base URL and a route template, so the
token only ever goes to the configured host; redirects are never followed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import ssl
import sys
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import quote_plus, urlsplit

import orjson

from .. import __version__
from ..config import Config
from ..errors import ConfigError, status_error
from . import wire
from .body import UnreadableBody, decode, raw_items
from .paging import PAGE_SIZE, Answer, ListGuard, Page, paginate
from .ratelimit import RateBudget
from .retry import Attempts, is_unresolved, retryable_status, transport_problem
from .route import Route
from .sharing import SharedAnswers

__all__ = ["HttpStats", "SentryClient"]

T = TypeVar("T")

# How many turns of the event loop a page gives the request of the next one to be on its way
# (one, on a kept-alive connection; none is enough when the rate budget holds it back or a
# connection is being opened: the page goes on without it, and it goes out at the next wait).
_READ_AHEAD_TURNS = 3
# Ignore clock differences smaller than this (the Date header has 1 s resolution).
_MIN_SKEW = 2.0


@dataclass
class HttpStats:
    """Counters for progress displays and benchmarks."""

    requests: int = 0
    pages: int = 0
    retries: int = 0
    rate_limited: int = 0  # 429 responses received
    rate_limit_wait_seconds: float = 0.0
    shared: int = 0  # GETs answered by another reader's identical request
    per_route: dict[str, int] = field(default_factory=dict)


class SentryClient:
    """Async client for one Sentry host. Use as ``async with SentryClient(config) as c``."""

    def __init__(self, config: Config, *, stats: HttpStats | None = None, budget: RateBudget | None = None) -> None:
        self.config = config
        self.stats = stats if stats is not None else HttpStats()
        self.budget = budget if budget is not None else RateBudget()
        self.shared = SharedAnswers(on_hit=self._count_shared)
        self._skew = 0.0
        self.clock_known = False  # True once a response's Date header told the server's time
        self._reached = False  # True once the host answered anything
        self._pool: wire.Pool | None = None
        self._headers = (  # the same on every request: written once, as the wire sends them
            f"Authorization: Bearer {config.auth_token}\r\nUser-Agent: source-sentry/{__version__}\r\n"
            "Accept: application/json\r\nAccept-Encoding: gzip, deflate\r\n"
        ).encode("ascii")
        # Routes Sentry said it is retiring (X-Sentry-Deprecation-Date), each told once.
        self.deprecated: dict[str, str] = {}
        self.on_warning: Callable[[str], None] | None = None

    async def __aenter__(self) -> SentryClient:
        # Redirects are never followed (the wire does not): one could carry the token elsewhere.
        try:
            self._pool = wire.Pool(_ssl_context(self.config.verify), connect_timeout=min(self.config.request_timeout, 15.0))
        except wire.ProxyError as exc:
            raise ConfigError(f"{exc} Set the proxy to an http:// URL, or unset it.") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    def share(self, readers: Mapping[str, int]) -> None:
        """Declare how many readers of this sync GET each route template (see :mod:`.sharing`)."""
        self.shared.declare(readers)

    def now(self) -> datetime:
        """The server's current time (its ``Date`` header), falling back to ours."""
        return datetime.now(timezone.utc) + timedelta(seconds=self._skew)

    async def get(
        self, route: Route, path: Mapping[str, str] | None = None, params: Mapping[str, Any] | None = None
    ) -> tuple[Any, Mapping[str, str]]:
        """GET ``/api/0/<route>`` (placeholders filled from ``path``): (JSON body, headers)."""
        request = _Request(route, path or {}, self.config.api_url(route.path(path)), _clean(params))
        body, answer = await self._parsed(request, await self._answer(request))
        return body, answer.headers

    async def pages(
        self,
        route: Route,
        path: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        cursor: str | None = None,
        page_param: str = "per_page",
        read_ahead: bool = True,
        items_key: str | None = None,
        limit: int | None = None,
        raw: tuple[str, ...] | None = None,
    ) -> AsyncGenerator[Page, None]:
        """Yield every page of a list endpoint from ``cursor`` on (see :func:`.paging.paginate`).
        ``params`` is read at each request, so a change the caller makes to it (the events reader
        narrows a window's range while it pages) applies from the next request on. With ``raw``
        (field names) the items are :class:`~source_sentry.protocol.RawItem` holding those fields
        and their own bytes, wherever :func:`.body.raw_items` can take a body as it is."""
        url = self.config.api_url(route.path(path))

        def request_at(at: str | None) -> _Request:
            query = {**_clean(params), page_param: PAGE_SIZE}
            return _Request(route, path or {}, url, {**query, "cursor": at} if at else query)

        async def fetch(at: str | None) -> asyncio.Future[Answer]:
            # A task only runs when this one waits: let the request reach the wire before
            # this page is parsed and handed over, or nothing would overlap.
            sent = asyncio.Event()
            future = asyncio.ensure_future(self._answer(request_at(at), sent))
            for _ in range(_READ_AHEAD_TURNS):
                await asyncio.sleep(0)
                if sent.is_set() or future.done():
                    break
            return future

        async def parse(answer: Answer, at: str | None) -> tuple[Any, Answer]:
            if raw is not None and items_key is None:
                items = raw_items(answer.content, answer.headers, raw)
                if items is not None:
                    return items, answer
            return await self._parsed(request_at(at), answer)

        guard = ListGuard(route.path(path), PAGE_SIZE)
        # Closed with this generator: a caller that stops early cancels the page read ahead now.
        paged = paginate(fetch, parse, guard, cursor=cursor, read_ahead=read_ahead, items_key=items_key, limit=limit)
        async with aclosing(paged) as pages:
            async for page in pages:
                self.stats.pages += 1
                yield page

    async def _parsed(self, request: _Request, answer: Answer) -> tuple[Any, Answer]:
        """The JSON body of ``answer``; an unreadable one is asked again with the retries left
        (the answer that was read comes back with its body)."""
        try:
            return decode(answer.content, answer.headers), answer
        except UnreadableBody as exc:
            return await self._request(request, parse=True, failed=_unreadable(exc))

    async def _answer(self, request: _Request, sent: asyncio.Event | None = None) -> Answer:
        """The 200 answer to ``request``: asked by this reader, or by another reader of a shared
        route (each reader parses its own copy)."""
        readers = self.shared.readers(request.route.template)
        if readers is None:
            _, answer = await self._request(request, sent=sent)
            return answer
        return await self.shared.answer(request.url, request.params, readers, lambda: self._only_answer(request, sent), sent)

    def _count_shared(self) -> None:
        self.stats.shared += 1

    async def _only_answer(self, request: _Request, sent: asyncio.Event | None) -> Answer:
        _, answer = await self._request(request, sent=sent)
        return answer

    async def _request(
        self, request: _Request, *, parse: bool = False, sent: asyncio.Event | None = None, failed: str | None = None
    ) -> tuple[Any, Answer]:
        """GET until a 200, retrying what is transient; its body parsed only if ``parse`` (an
        unreadable body is then retried too), else ``None`` and the caller parses. ``sent`` is set
        once the request is written; ``failed`` is the problem of an attempt the caller made."""
        endpoint = self.budget.endpoint(request.route.template)
        attempts = Attempts(self.config.max_retries, self.config.host, _path_of(request.url))
        if failed is not None:
            await self._failed(attempts, failed)
        while True:
            await endpoint.acquire()
            started = time.monotonic()
            answer: Answer | None = None
            problem: str | None = None
            try:
                self.stats.requests += 1
                self.stats.per_route[request.route.template] = self.stats.per_route.get(request.route.template, 0) + 1
                # One deadline for the whole attempt: connect, headers and the body, however it drips.
                answer = await _within(self._get(request, sent), self.config.request_timeout)
                self._reached = True
                self._learn_clock(answer.headers)
                self._learn_deprecation(request, answer.headers)
            except (wire.TransportError, asyncio.TimeoutError) as exc:
                if is_unresolved(exc) and not self._reached:
                    await attempts.unresolved(urlsplit(request.url).hostname or self.config.host)
                    continue
                problem = transport_problem(exc, self.config.host, self.config.request_timeout)
            finally:
                if answer is None:
                    await endpoint.release(None, self._skew)
                else:
                    await endpoint.release(answer.headers, self._skew, time.monotonic() - started)

            if answer is not None:
                status = answer.status_code
                if status == 200:
                    if not parse:
                        return None, answer
                    try:
                        return decode(answer.content, answer.headers), answer
                    except UnreadableBody as exc:
                        problem = _unreadable(exc)
                elif status == 429:
                    delay = await endpoint.exhausted(answer.headers, self._skew)
                    self.stats.rate_limited += 1
                    self.stats.rate_limit_wait_seconds += delay
                    await attempts.rate_limited(delay)
                    continue
                else:
                    body = _json_or_none(answer.content)
                    problem = retryable_status(status, _detail_text(body))
                    if problem is None:
                        raise status_error(
                            status,
                            body,
                            host=self.config.host,
                            path=_path_of(request.url),
                            scope=request.route.scope,
                            organization=self.config.organization,
                            path_params=request.path,
                            location=answer.headers.get("location", ""),
                            deprecation=self.deprecated.get(request.route.template, ""),
                        )
            assert problem is not None
            await self._failed(attempts, problem)

    async def _failed(self, attempts: Attempts, problem: str) -> None:
        self.stats.retries += 1
        await attempts.failed(problem)

    async def _get(self, request: _Request, sent: asyncio.Event | None) -> Answer:
        """One GET, its body read in full; ``sent`` is set once the request is written."""
        assert self._pool is not None, "use SentryClient as an async context manager"
        url = f"{request.url}?{_query(request.params)}" if request.params else request.url
        response = await self._pool.get(url, self._headers, sent.set if sent is not None else None)
        return Answer(response.status_code, response.headers, response.content)

    def _learn_deprecation(self, request: _Request, headers: Mapping[str, str]) -> None:
        """Warn once per route that Sentry marks as retiring, naming its replacement."""
        date = headers.get("x-sentry-deprecation-date")
        route = request.route.template
        if not date or route in self.deprecated:
            return
        replacement = headers.get("x-sentry-replacement-endpoint")
        instead = f"; Sentry names {replacement} as its replacement" if replacement else ""
        self.deprecated[route] = f"Sentry deprecated /api/0/{route} (from {date}){instead}"
        if self.on_warning is not None:
            self.on_warning(
                f"{self.deprecated[route]}. It will be answered with 410 during brownouts and then removed: "
                "upgrade source-sentry, or report it if no newer version uses another endpoint."
            )

    def _learn_clock(self, headers: Mapping[str, str]) -> None:
        date = headers.get("date")
        if not date:
            return
        server = _server_time(date)
        if server is None:
            return
        skew = (server - datetime.now(timezone.utc)).total_seconds()
        self._skew = skew if abs(skew) > _MIN_SKEW else 0.0
        self.clock_known = True


@dataclass(frozen=True)
class _Request:
    route: Route
    path: Mapping[str, str]  # the route's placeholders
    url: str
    params: dict[str, Any]


def _path_of(url: str) -> str:
    return urlsplit(url).path


def _query(params: Mapping[str, Any]) -> str:
    """``urlencode(params, doseq=True)``, each value's encoding remembered: a list's requests
    repeat all but the cursor (urlencode's quoting was a tenth of a read's CPU, measured)."""
    return "&".join(
        f"{_quoted(key)}={_quoted(str(item))}"
        for key, value in params.items()
        for item in (value if isinstance(value, (list, tuple)) else (value,))
    )


@lru_cache(maxsize=4)  # whole seconds: the answers of one second share their Date
def _server_time(date: str) -> datetime | None:
    """A ``Date`` header's time (UTC when it names no zone), or None when it is not a date."""
    parts = date.split()
    if len(parts) == 6 and parts[5] == "GMT" and parts[2] in _MONTHS:  # what servers send: Thu, 03 Dec 2026 14:40:00 GMT
        try:
            hour, minute, second = parts[4].split(":")
            return datetime(int(parts[3]), _MONTHS[parts[2]], int(parts[1]), int(hour), int(minute), int(second), tzinfo=timezone.utc)
        except ValueError:
            pass
    import email.utils  # the older forms HTTP still allows, and anything else: rare, ~6 ms of imports

    try:
        server = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    return server if server.tzinfo is not None else server.replace(tzinfo=timezone.utc)


_MONTHS = {
    name: number
    for number, name in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}


@lru_cache(maxsize=1024)
def _quoted(text: str) -> str:
    return quote_plus(text)


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        out[key] = value
    return out


def _json_or_none(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def _detail_text(body: Any) -> str:
    if isinstance(body, dict):
        detail = body.get("detail")
        return str(detail) if isinstance(detail, str) else ""
    return body if isinstance(body, str) else ""


def _unreadable(exc: ValueError) -> str:
    """The problem of a 200 whose body is not JSON (retried like a 5xx)."""
    return f"answered 200 with an unreadable body ({exc})"


if sys.version_info >= (3, 11):

    async def _within(attempt: Awaitable[T], seconds: float) -> T:
        """``attempt``'s result, or :class:`asyncio.TimeoutError` after ``seconds`` (no task
        of its own, unlike ``wait_for`` before Python 3.12: one less per request)."""
        async with asyncio.timeout(seconds):
            return await attempt

else:  # pragma: no cover - Python 3.10

    async def _within(attempt: Awaitable[T], seconds: float) -> T:
        return await asyncio.wait_for(attempt, seconds)


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else _certifi_bundle())


def _certifi_bundle() -> str:
    """certifi's CA bundle (slim images often lack system CAs). Found beside its module without
    running ``certifi.where()``: importing certifi pulls in ``importlib.resources`` and tempfile
    (0.05 s of CPU with ``where()``, measured under load)."""
    spec = importlib.util.find_spec("certifi")
    if spec is not None and spec.origin is not None:
        bundle = os.path.join(os.path.dirname(spec.origin), "cacert.pem")
        if os.path.isfile(bundle):
            return bundle
    import certifi  # a zipped install: let certifi extract its file

    return certifi.where()
