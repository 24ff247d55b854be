"""The one HTTP client: auth, timeouts, retries, Sentry's rate limits and Link pagination.

Every request of a sync goes through :class:`SentryClient`. It builds each URL from the
configured base URL and a route template, so the token only ever goes to the configured
host (a ``Link`` header is read for its ``cursor`` and nothing else). Failures are mapped
here, once, into the exceptions of :mod:`source_sentry.errors`.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import ssl
from collections import OrderedDict
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import certifi
import httpx
import orjson

from . import __version__
from .config import Config
from .errors import ConfigError, SentrySourceError, StreamAccessError, TransientError, redact
from .ratelimit import RateBudget
from .transport import use_asyncio_backend

__all__ = ["HttpStats", "Page", "SentryClient", "parse_link_header"]

PAGE_SIZE = 100  # Sentry's maximum; a larger value is a 400
# Retries back off from 0.5 s, doubling, to at most this long between attempts.
_MAX_BACKOFF = 30.0
# A request that keeps hitting 429s gives up after this long (Sentry's windows are <= 60 s).
_RATE_LIMIT_BUDGET = 15 * 60.0
# How long a page waits for the request of the next one to be on its way (it is, within a
# millisecond, unless the rate budget holds it back: then the page goes on without it).
_READ_AHEAD_WAIT = 0.05
# Ignore clock differences smaller than this (the Date header has 1 s resolution).
_MIN_SKEW = 2.0
# Answers kept for other readers of the same GET (see SentryClient.share): at most this much.
_SHARED_BYTES = 8 << 20


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


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint: its items and the cursor of the next page, if any."""

    items: list[Any]
    cursor: str | None  # the cursor this page was requested with
    next_cursor: str | None
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, headers and the whole body."""

    status_code: int
    headers: httpx.Headers
    content: bytes


@dataclass
class _Shared:
    """One GET that several readers make: asked once, kept until each has taken its answer."""

    task: asyncio.Future[tuple[Any, Answer]]
    takers_left: int
    waiting: int = 0
    size: int = 0  # bytes counted against _SHARED_BYTES once answered


class SentryClient:
    """Async client for one Sentry host. Use as ``async with SentryClient(config) as c``."""

    def __init__(self, config: Config, *, stats: HttpStats | None = None, budget: RateBudget | None = None) -> None:
        self.config = config
        self.stats = stats if stats is not None else HttpStats()
        self.budget = budget if budget is not None else RateBudget()
        self._skew = 0.0
        self.clock_known = False  # True once a response's Date header told the server's time
        self._http: httpx.AsyncClient | None = None
        self._sharing: dict[str, int] = {}
        self._shared: OrderedDict[tuple[str, bytes], _Shared] = OrderedDict()
        self._shared_bytes = 0

    def share(self, readers: Mapping[str, int]) -> None:
        """Declare how many readers of this sync GET each route. For a route with several (a
        parent list read by its stream and by each child stream, the project both resolved and
        read as ``project_detail``), identical GETs are asked once and the answer kept until
        each reader has taken it, within ``_SHARED_BYTES``. Each reader parses its own copy."""
        self._sharing = {route: n for route, n in readers.items() if n > 1}

    async def __aenter__(self) -> SentryClient:
        self._http = httpx.AsyncClient(
            headers={
                "Authorization": f"Bearer {self.config.auth_token}",
                "User-Agent": f"source-sentry/{__version__}",
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(self.config.request_timeout, connect=min(self.config.request_timeout, 15.0)),
            verify=_ssl_context(self.config.verify),
            follow_redirects=False,  # a redirect could carry the token to another host
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        use_asyncio_backend(self._http)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def now(self) -> datetime:
        """The server's current time (its ``Date`` header), falling back to ours."""
        return datetime.now(timezone.utc) + timedelta(seconds=self._skew)

    async def get(
        self, route: str, path: Mapping[str, str] | None = None, params: Mapping[str, Any] | None = None
    ) -> tuple[Any, httpx.Headers]:
        """GET ``/api/0/<route>`` (placeholders filled from ``path``) and return (JSON body, headers)."""
        return await self._send(route, self._url(route, path), _clean(params))

    async def pages(
        self,
        route: str,
        path: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        cursor: str | None = None,
        page_param: str = "per_page",
        read_ahead: bool = True,
    ) -> AsyncGenerator[Page, None]:
        """Yield every page of a list endpoint, starting at ``cursor``, following ``next``.

        With ``read_ahead`` the next page is requested as soon as this page's ``Link`` header
        names it, so its round trip overlaps the parsing of this page and the caller's work on
        it: a list is a chain of requests (Sentry's strictest endpoint allows one at a time),
        and this keeps the chain busy. At most one page is fetched ahead. A caller that may
        stop early (newest-first lists read down to a known point) passes ``False``: a page
        read ahead and never used would be a wasted request. ``params`` is read at each request,
        so a change the caller makes to it applies from the next request on.
        """
        url = self._url(route, path)

        def query(at: str | None) -> dict[str, Any]:
            # Read at each request: a caller may narrow a list's range while it pages (the
            # events reader does, splitting a time window).
            base = _clean(params)
            base[page_param] = PAGE_SIZE
            return {**base, "cursor": at} if at else base

        async def fetch(at: str | None) -> asyncio.Future[tuple[Any, Answer]]:
            # A task only runs when this one waits: let the request reach the wire before
            # this page is parsed and handed over, or nothing would overlap.
            sent = asyncio.Event()
            future = asyncio.ensure_future(self._answer(route, url, query(at), parse=False, sent=sent))
            waiter = asyncio.ensure_future(sent.wait())
            await asyncio.wait([waiter, future], timeout=_READ_AHEAD_WAIT, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            return future

        seen: set[str] = set()
        ahead: asyncio.Future[tuple[Any, Answer]] | None = await fetch(cursor)
        try:
            while ahead is not None:
                _, response = await ahead
                ahead = None
                next_cursor = _next_cursor(response.headers)
                if next_cursor in seen:
                    # A server bug would otherwise loop forever; stop loudly rather than silently.
                    raise TransientError(f"Sentry returned the same page cursor twice for {route} ({next_cursor}).")
                if next_cursor and read_ahead:
                    ahead = await fetch(next_cursor)
                try:
                    body = _json(response)
                except ValueError as exc:
                    # Unreadable page: drop the page fetched ahead on its word and ask again
                    # with the retries left; the cursor that follows comes from the new answer.
                    if ahead is not None:
                        await _cancel(ahead)
                        ahead = None
                    problem = _unreadable(exc)
                    body, response = await self._request(route, url, query(cursor), parse=True, failed=problem)
                    next_cursor = _next_cursor(response.headers)
                if not isinstance(body, list):
                    raise TransientError(
                        f"Sentry answered {route} with a {type(body).__name__} where a list was expected.",
                    )
                if next_cursor:
                    seen.add(next_cursor)
                self.stats.pages += 1
                yield Page(items=body, cursor=cursor, next_cursor=next_cursor, headers=response.headers)
                if next_cursor and ahead is None:
                    ahead = await fetch(next_cursor)
                cursor = next_cursor
        finally:
            if ahead is not None:
                await _cancel(ahead)

    def _url(self, route: str, path: Mapping[str, str] | None) -> str:
        return self.config.api_url(route.format(**{k: quote(str(v), safe="") for k, v in (path or {}).items()}))

    async def _send(self, route: str, url: str, params: dict[str, Any]) -> tuple[Any, httpx.Headers]:
        """One GET with every retry: (JSON body, headers) of its 200 answer."""
        body, response = await self._answer(route, url, params, parse=True)
        return body, response.headers

    async def _answer(
        self, route: str, url: str, params: dict[str, Any], *, parse: bool, sent: asyncio.Event | None = None
    ) -> tuple[Any, Answer]:
        """``_request``, or the answer another reader of a shared route asked for (see
        ``share``); each reader parses its own copy."""
        readers = self._sharing.get(route)
        if readers is None:
            return await self._request(route, url, params, parse=parse, sent=sent)
        answer = await self._shared_answer(route, url, params, readers, sent)
        if not parse:
            return None, answer
        try:
            return _json(answer), answer
        except ValueError as exc:
            return await self._request(route, url, params, parse=True, failed=_unreadable(exc))

    async def _shared_answer(
        self, route: str, url: str, params: dict[str, Any], readers: int, sent: asyncio.Event | None
    ) -> Answer:
        """The answer to a GET that ``readers`` readers make: the first asks, the others wait
        for it or take it as kept. A reader that stops waiting cancels the request only when
        nobody else waits for it."""
        key = (url, orjson.dumps(params, option=orjson.OPT_SORT_KEYS, default=str))
        shared = self._shared.get(key)
        if shared is None:
            task = asyncio.ensure_future(self._request(route, url, params, parse=False, sent=sent))
            shared = self._shared[key] = _Shared(task, readers)
        else:
            self.stats.shared += 1
            if sent is not None:
                sent.set()  # asked already: nothing of this reader's to wait for on the wire
        shared.waiting += 1
        try:
            _, answer = await asyncio.shield(shared.task)
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
            self._shared_bytes += shared.size
            while self._shared_bytes > _SHARED_BYTES:
                oldest_key, oldest = next((k, v) for k, v in self._shared.items() if v.size)
                self._forget(oldest_key, oldest)  # an answer some reader never came back for
        return answer

    def _forget(self, key: tuple[str, bytes], shared: _Shared) -> None:
        if self._shared.get(key) is shared:
            del self._shared[key]
            self._shared_bytes -= shared.size

    async def _request(
        self,
        route: str,
        url: str,
        params: dict[str, Any],
        *,
        parse: bool,
        sent: asyncio.Event | None = None,
        failed: str | None = None,
    ) -> tuple[Any, Answer]:
        """GET until a 200 (retrying what is transient); its body parsed only if ``parse``
        (an unreadable body is then retried too), else ``None`` and the caller parses.
        ``sent`` is set once the request has been written to the connection; ``failed`` is
        the problem of an attempt the caller already made (it counts against the retries)."""
        extensions: dict[str, Any] = {}
        if sent is not None:

            async def trace(event: str, info: Any) -> None:
                if event.endswith("send_request_body.complete"):
                    sent.set()

            extensions["trace"] = trace
        endpoint = self.budget.endpoint(route)
        attempt = 0
        if failed is not None:
            attempt = await self._retry_after(attempt, failed, url)
        rate_limited_for = 0.0
        while True:
            await endpoint.acquire()
            headers: httpx.Headers | None = None
            problem: str | None
            try:
                self.stats.requests += 1
                self.stats.per_route[route] = self.stats.per_route.get(route, 0) + 1
                response = await self._get(url, params, extensions)
                headers = response.headers
                self._learn_clock(headers)
            except httpx.TimeoutException as exc:
                problem = f"timed out after {self.config.request_timeout:g} s ({type(exc).__name__})"
            except httpx.TransportError as exc:
                _raise_if_tls(exc, self.config.host)
                problem = f"connection failed ({_describe(exc)})"
            else:
                problem = None
            finally:
                await endpoint.release(headers, self._skew)

            if problem is None:
                status = response.status_code
                if status == 200:
                    if not parse:
                        return None, response
                    try:
                        return _json(response), response
                    except ValueError as exc:
                        problem = _unreadable(exc)
                elif status == 429:
                    delay = await endpoint.exhausted(response.headers, self._skew)
                    self.stats.rate_limited += 1
                    self.stats.rate_limit_wait_seconds += delay
                    rate_limited_for += delay
                    if rate_limited_for > _RATE_LIMIT_BUDGET:
                        raise TransientError(
                            f"Sentry kept rate-limiting {route} on {self.config.host} for {rate_limited_for:.0f} s; "
                            "try again later or reduce other API usage of this organization.",
                        )
                    await asyncio.sleep(delay)
                    continue
                elif status >= 500 or status == 408:
                    problem = f"answered HTTP {status}"
                elif status == 400 and "timeout" in _detail(response).lower():
                    problem = f"answered HTTP 400 ({_detail(response)})"
                else:
                    raise self._client_error(route, url, response)

            attempt = await self._retry_after(attempt, problem, url)

    async def _get(self, url: str, params: dict[str, Any], extensions: dict[str, Any]) -> Answer:
        """One GET, its body read in full. httpx keeps a response in a reference cycle (with its
        stream), so a body it caches lives until the cyclic garbage collector runs: several pages
        of hundreds of kilobytes each, measured. Read here, a body is freed with its page."""
        assert self._http is not None, "use SentryClient as an async context manager"
        request = self._http.build_request("GET", url, params=params, extensions=extensions)
        response = await self._http.send(request, stream=True)
        try:
            content = b"".join([chunk async for chunk in response.aiter_bytes()])
        finally:
            await response.aclose()
        return Answer(response.status_code, response.headers, content)

    async def _retry_after(self, attempt: int, problem: str | None, url: str) -> int:
        """Count a failed attempt: raise when retries are exhausted, else back off."""
        attempt += 1
        if attempt > self.config.max_retries:
            raise TransientError(
                f"Sentry at {self.config.host} {problem} for {_path_of(url)} ({attempt} attempts); "
                "this is usually temporary: try again later.",
            )
        self.stats.retries += 1
        await asyncio.sleep(min(_MAX_BACKOFF, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2))
        return attempt

    def _learn_clock(self, headers: httpx.Headers) -> None:
        date = headers.get("date")
        if not date:
            return
        try:
            server = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return
        if server.tzinfo is None:
            server = server.replace(tzinfo=timezone.utc)
        skew = (server - datetime.now(timezone.utc)).total_seconds()
        self._skew = skew if abs(skew) > _MIN_SKEW else 0.0
        self.clock_known = True

    def _client_error(self, route: str, url: str, response: Answer) -> SentrySourceError:
        status = response.status_code
        detail = _detail(response)
        host = self.config.host
        what = _path_of(url)
        if status == 401:
            return ConfigError(
                f"Sentry at {host} rejected the auth token ({detail or 'HTTP 401'}). Check auth_token: it may be "
                f"mistyped, revoked or expired; create one at https://{host}/settings/account/api/auth-tokens/ "
                "with the scopes org:read, project:read, event:read and project:releases.",
            )
        if status == 403:
            scope = _ROUTE_SCOPES.get(route, "the right scopes")
            return StreamAccessError(
                f"The auth token may not read {what} on {host} (HTTP 403: {detail or 'forbidden'}). "
                f"Give the token the scope '{scope}' and access to the project, or deselect this stream.",
            )
        if status == 404:
            return StreamAccessError(
                f"Sentry at {host} says {what} does not exist (HTTP 404). Check the organization slug "
                f"'{self.config.organization}' and the project slugs in the config.",
            )
        if status in (301, 302, 303, 307, 308):
            location = httpx.URL(response.headers.get("location", ""))
            return ConfigError(
                f"Sentry at {host} redirected {route} to {location.host or 'another address'}; redirects are not "
                "followed (they could carry the token elsewhere). Set hostname to the server's final address.",
            )
        return SentrySourceError(
            f"Sentry at {host} refused a request for {what} (HTTP {status}: {detail or 'no detail'}).",
        )


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


# The scope each route needs, for 403 messages that say what to fix. The stream table
# registers its routes (register_route_scope); these are the routes only checks use.
_ROUTE_SCOPES: dict[str, str] = {
    "organizations/": "org:read",
    "organizations/{organization}/": "org:read",
}


def register_route_scope(route: str, scope: str) -> None:
    """Let the stream table declare the scope of its routes."""
    _ROUTE_SCOPES[route] = scope


def _path_of(url: str) -> str:
    return httpx.URL(url).path


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        out[key] = value
    return out


def _next_cursor(headers: Mapping[str, str]) -> str | None:
    """The cursor of the next page, when Sentry's ``Link`` header says it has results."""
    nxt = parse_link_header(headers.get("link", "")).get("next", {})
    return nxt.get("cursor") if nxt.get("results") == "true" else None


async def _cancel(future: asyncio.Future[Any]) -> None:
    """Cancel a request fetched ahead and wait until it has released its rate budget."""
    future.cancel()
    await asyncio.wait([future])  # raises only if *we* are cancelled meanwhile
    if not future.cancelled():
        future.exception()  # its outcome no longer matters; retrieved so asyncio does not warn


def _json(response: Answer) -> Any:
    content = response.content
    if not content:
        raise ValueError("empty body")
    ctype = response.headers.get("content-type", "")
    if "html" in ctype:
        raise ValueError(f"content-type {ctype}, probably a proxy's error page")
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None


def _detail(response: Answer) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(body, dict):
        detail = body.get("detail")
        return redact(str(detail)) if detail is not None else ""
    if isinstance(body, str):
        return redact(body)
    return ""


def _unreadable(exc: ValueError) -> str:
    """The problem of a 200 whose body is not JSON (retried like a 5xx)."""
    return f"answered 200 with an unreadable body ({exc})"


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return redact(text)


def _raise_if_tls(exc: httpx.TransportError, host: str) -> None:
    """TLS failures are the user's to fix (CA bundle, hostname): never retried."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            raise ConfigError(
                f"TLS verification failed for {host}: {redact(str(cause))}. If the server uses a private CA, "
                "set ca_bundle to its PEM file; check that hostname is the certificate's name.",
            ) from None
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or ("SSL" in text and "certificate" in text.lower()):
        raise ConfigError(
            f"TLS verification failed for {host}: {redact(text)}. If the server uses a private CA, set ca_bundle.",
        ) from None


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    # certifi's bundle by default (httpx's own choice): slim images often lack system CAs.
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else certifi.where())
