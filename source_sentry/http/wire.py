"""HTTP/1.1 on asyncio's own transports: the connector's only network code.

Every request of a sync is a GET answered with JSON, most of them pages of ten full events. A
general client's work per request (httpx's URL and header models, httpcore's scan of its pool,
h11's state machine) was two thirds of a read's CPU at that page size, measured; this module
does what these GETs need and nothing more, at about a fifth of that cost (docs/benchmarks.md):

- kept-alive connections per origin, at most ``max_connections`` requests at once;
- bodies by ``Content-Length``, chunked, or read to the close; ``gzip`` and ``deflate``;
- TLS with the caller's context; proxies from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``,
  ``ALL_PROXY``, ``NO_PROXY``, as curl and httpx read them): a tunnel (``CONNECT``) to an https
  origin, the absolute URL to an http one.

A request has no deadline of its own beyond the connect timeout: the caller puts one deadline
over the whole attempt (``asyncio.wait_for``), and a connection whose answer was not read to the
end (an error, a cancel) is closed, never used again. Redirects are answers like any other.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import select
import ssl
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "DecodingError",
    "Pool",
    "ProxyError",
    "ReadError",
    "RemoteProtocolError",
    "Response",
    "TransportError",
]

# Past this much unread data the socket stops being read (the server then waits): a bound on
# memory while an answer is taken apart, a few pages of events so the socket rarely waits.
_HIGH_WATER = 1 << 20
_MAX_HEAD = 64 << 10  # a response head (status line and headers) longer than this is refused
_MAX_LINE = 8 << 10  # a chunk-size or trailer line longer than this is refused
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Anything outside printable ASCII (spaces, CR/LF, non-ASCII) is percent-encoded in a request
# target: our URLs are encoded already, this keeps a stray one from breaking the request line.
_UNSAFE = re.compile(r"[^\x21-\x7e]")
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


class TransportError(Exception):
    """No whole answer came back: the connection failed, closed early, or sent no HTTP/1.1."""


class ConnectError(TransportError):
    """No connection to the server (or through the proxy): refused, unresolved, TLS."""


class ConnectTimeout(ConnectError):
    """No connection within the connect timeout."""


class ReadError(TransportError):
    """The connection failed or closed before the answer was whole."""


class RemoteProtocolError(TransportError):
    """The server sent something that is not an HTTP/1.1 answer."""


class DecodingError(TransportError):
    """The body's ``Content-Encoding`` could not be undone (a truncated or false gzip)."""


class ProxyError(ValueError):
    """A proxy setting in the environment that cannot be used (not ``http://``)."""


class Response(NamedTuple):
    status_code: int
    headers: dict[str, str]  # names in lower case; repeated headers joined with ", "
    content: bytes  # decoded from its Content-Encoding


@dataclass(frozen=True)
class _Proxy:
    host: str
    port: int
    authorization: bytes  # a whole "Proxy-Authorization: ...\r\n" line, or b""
    name: str  # host:port, for messages (never the credentials)


@dataclass(frozen=True)
class _Origin:
    key: str  # scheme://host:port as written in URLs
    host: str  # to connect to and to verify the certificate of (no IPv6 brackets)
    port: int
    tls: bool
    host_line: bytes  # b"Host: ...\r\n"
    proxy: _Proxy | None


class Pool:
    """Kept-alive connections for the origins a client talks to. Use ``get``, then ``aclose``."""

    def __init__(
        self, ssl_context: ssl.SSLContext, *, connect_timeout: float, max_connections: int = 32, trust_env: bool = True
    ) -> None:
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._proxies = _environment_proxies() if trust_env else {}
        self._origins: dict[str, _Origin] = {}
        self._idle: dict[str, list[_Connection]] = {}

    async def get(self, url: str, headers: bytes, on_sent: Callable[[], None] | None = None) -> Response:
        """GET ``url`` (absolute, encoded) with ``headers`` (whole ``Name: value\\r\\n`` lines).
        ``on_sent`` is called once the request is written."""
        scheme, _, rest = url.partition("://")
        netloc, slash, target = rest.partition("/")
        origin = self._origins.get(f"{scheme}://{netloc}") or self._origin(scheme, netloc)
        target = slash + target if slash else "/"
        if _UNSAFE.search(target):
            target = quote(target, safe=_SAFE)
        if origin.proxy is not None and not origin.tls:
            request_line = f"GET {origin.key}{target} HTTP/1.1\r\n".encode() + origin.proxy.authorization
        else:
            request_line = f"GET {target} HTTP/1.1\r\n".encode()
        request = request_line + origin.host_line + headers + b"\r\n"
        async with self._slots:
            connection = self._reuse(origin) or await self._connect(origin)
            return await self._exchange(connection, origin, request, on_sent)

    async def aclose(self) -> None:
        """Close every idle connection (one still answering closes when its request ends)."""
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _origin(self, scheme: str, netloc: str) -> _Origin:
        if scheme not in _DEFAULT_PORTS:
            raise ConnectError(f"unsupported URL scheme {scheme!r} (http or https)")
        hostport = netloc.rpartition("@")[2]
        parts = urlsplit(f"//{hostport}")
        host = parts.hostname or ""
        if not host:
            raise ConnectError(f"no host in the URL {scheme}://{netloc}")
        port = parts.port or _DEFAULT_PORTS[scheme]
        proxy = None if _bypassed(host, port, self._proxies.get("no", "")) else _proxy(self._proxies, scheme)
        origin = _Origin(
            key=f"{scheme}://{netloc}",
            host=host,
            port=port,
            tls=scheme == "https",
            host_line=f"Host: {hostport}\r\n".encode("idna" if not hostport.isascii() else "ascii"),
            proxy=proxy,
        )
        self._origins[origin.key] = origin
        return origin

    async def _exchange(
        self, connection: _Connection, origin: _Origin, request: bytes, on_sent: Callable[[], None] | None
    ) -> Response:
        try:
            connection.write(request)
            if on_sent is not None:
                on_sent()
            response, keep_alive = await connection.read_response()
        except BaseException:
            connection.close()
            raise
        if keep_alive:
            self._idle.setdefault(origin.key, []).append(connection)
        else:
            connection.close()
        return response

    def _reuse(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin.key)
        while idle:
            connection = idle.pop()
            if connection.reusable():
                return connection
            connection.close()  # the server closed it, or sent something unasked
        return None

    async def _connect(self, origin: _Origin) -> _Connection:
        where = f"{origin.host}:{origin.port}" + (f" through the proxy {origin.proxy.name}" if origin.proxy else "")
        try:
            return await asyncio.wait_for(self._open(origin), self._connect_timeout)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise ConnectTimeout(f"no connection to {where} within {self._connect_timeout:g} s") from exc
        except OSError as exc:  # refused, unresolved, reset, TLS (ssl.SSLError is an OSError)
            raise ConnectError(f"{exc or type(exc).__name__} ({where})") from exc

    async def _open(self, origin: _Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        proxy = origin.proxy
        if proxy is None:
            tls = self._ssl if origin.tls else None
            _, connection = await loop.create_connection(
                lambda: _Connection(loop), origin.host, origin.port, ssl=tls, server_hostname=origin.host if tls else None
            )
            return connection
        _, connection = await loop.create_connection(lambda: _Connection(loop), proxy.host, proxy.port)
        if origin.tls:
            try:
                await connection.tunnel(origin, proxy)
                await connection.start_tls(self._ssl, origin.host)
            except BaseException:
                connection.close()
                raise
        return connection


class _Connection(asyncio.Protocol):
    """One connection: what the server sends is buffered until an answer is taken from it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._closed = False  # no more data will come (EOF, error, or closed by us)
        self._error: BaseException | None = None
        self._paused_reading = False
        self._paused_writing = False
        self._waiter: asyncio.Future[None] | None = None  # a read or a drain waiting

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > _HIGH_WATER and not self._paused_reading and self._transport is not None:
            self._transport.pause_reading()
            self._paused_reading = True
        self._wake()

    def eof_received(self) -> bool:
        self._closed = True
        self._wake()
        return False  # close the transport: HTTP/1.1 has no use for a half-open connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._error = exc
        self._wake()

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        self._wake()

    # used by the pool
    def reusable(self) -> bool:
        """Idle and usable: not closed, and the server sent nothing since the last answer (asked
        of the socket too: a close that arrived is seen before the event loop delivers it)."""
        if self._closed or self._buffer or self._transport is None or self._transport.is_closing():
            return False
        sock = self._transport.get_extra_info("socket")
        try:
            return sock is None or not select.select([sock], [], [], 0)[0]
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    def write(self, data: bytes) -> None:
        if self._closed or self._transport is None or self._transport.is_closing():
            raise ReadError("the connection closed before the request was sent")
        self._transport.write(data)  # a GET is small: it never waits for the socket to drain

    async def tunnel(self, origin: _Origin, proxy: _Proxy) -> None:
        """Ask the proxy for a tunnel to ``origin`` (CONNECT); raises :class:`ConnectError`."""
        target = f"{origin.host}:{origin.port}" if ":" not in origin.host else f"[{origin.host}]:{origin.port}"
        self.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode() + proxy.authorization + b"\r\n")
        try:
            _, status, reason, _ = await self._read_head()
        except TransportError as exc:
            raise ConnectError(f"the proxy {proxy.name} did not answer CONNECT {target}: {exc}") from exc
        if not 200 <= status < 300:
            raise ConnectError(f"the proxy {proxy.name} answered {status} {reason} to CONNECT {target}")
        if self._buffer:
            raise ConnectError(f"the proxy {proxy.name} sent data before the tunnel to {target} was set up")

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        assert self._transport is not None
        transport = await self._loop.start_tls(self._transport, self, context, server_hostname=server_hostname)
        if transport is None:
            raise ConnectError("the connection closed during the TLS handshake")
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    async def read_response(self) -> tuple[Response, bool]:
        """The next answer, whole and decoded, and whether the connection can be used again."""
        version, status, _, headers = await self._read_head()
        while 100 <= status < 200 and status != 101:  # informational: the answer follows
            version, status, _, headers = await self._read_head()
        keep_alive = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        encoding = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if status in (204, 304):
            content = b""
        elif encoding is not None:
            if encoding.rsplit(",", 1)[-1].strip().lower() != "chunked":
                raise RemoteProtocolError(f"unsupported Transfer-Encoding {encoding!r}")
            content = await self._read_chunked()
        elif length is not None:
            content = await self._read_exact(_content_length(length))
        else:
            content, keep_alive = await self._read_to_close(), False
        coding = headers.get("content-encoding")
        if coding and content:
            content = _decoded(content, coding)
        return Response(status, headers, content), keep_alive

    # reading
    async def _read_head(self) -> tuple[str, int, str, dict[str, str]]:
        start = 0
        while (end := self._buffer.find(b"\r\n\r\n", start)) < 0:
            if len(self._buffer) > _MAX_HEAD:
                raise RemoteProtocolError(f"an answer's head longer than {_MAX_HEAD} bytes")
            start = max(0, len(self._buffer) - 3)
            await self._fill("before the answer's head")
        lines = self._take(end + 4)[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise RemoteProtocolError(f"not an HTTP/1.1 answer: {lines[0][:80]!r}")
        headers: dict[str, str] = {}
        name = ""
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and name:  # an obsolete folded line continues the last header
                headers[name] = f"{headers[name]} {line.strip()}"
                continue
            name, colon, value = line.partition(":")
            name = name.strip().lower()
            if not colon or not name:
                raise RemoteProtocolError(f"a malformed header line: {line[:80]!r}")
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return version, int(code), reason, headers

    async def _read_exact(self, size: int) -> bytes:
        if len(self._buffer) >= size:
            return self._take(size)
        parts: list[bytes] = []
        left = size
        while left:
            if not self._buffer:
                await self._fill(f"with {left} of {size} body bytes still to come")
            part = self._take(min(left, len(self._buffer)))
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    async def _read_line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > _MAX_LINE:
                raise RemoteProtocolError(f"a chunk line longer than {_MAX_LINE} bytes")
            await self._fill("within a chunked body")
        return self._take(end + 2)[:-2]

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            line = await self._read_line()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise RemoteProtocolError(f"a malformed chunk size {line[:40]!r}") from None
            if size == 0:
                while await self._read_line():  # trailers, unused
                    pass
                return b"".join(parts)
            parts.append(await self._read_exact(size))
            if await self._read_line():
                raise RemoteProtocolError("a chunk longer than its size")

    async def _read_to_close(self) -> bytes:
        parts: list[bytes] = []
        while True:
            if self._buffer:
                parts.append(self._take(len(self._buffer)))
            elif self._closed:
                if self._error is not None:
                    raise ReadError(f"the connection failed before the body ended ({self._error})")
                return b"".join(parts)
            else:
                await self._wait()

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        if self._paused_reading and len(self._buffer) <= _HIGH_WATER // 2 and self._transport is not None:
            self._paused_reading = False
            self._transport.resume_reading()
        return data

    async def _fill(self, where: str) -> None:
        """Wait for more data; raises :class:`ReadError` when none will come."""
        if self._closed:
            cause = f": {self._error}" if self._error is not None else ""
            raise ReadError(f"the server closed the connection {where}{cause}")
        await self._wait()

    async def _wait(self) -> None:
        waiter = self._loop.create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _content_length(value: str) -> int:
    # A repeated header arrives joined ("10, 10"): the same number each time is fine.
    lengths = {part.strip() for part in value.split(",")}
    if len(lengths) != 1 or not (length := lengths.pop()).isdigit():
        raise RemoteProtocolError(f"a malformed Content-Length {value!r}")
    return int(length)


def _decoded(content: bytes, codings: str) -> bytes:
    """``content`` with its codings undone, last applied first. A coding we never ask for is
    left as it is (the JSON reader then finds the body unreadable, and it is asked again)."""
    for coding in reversed([c.strip().lower() for c in codings.split(",")]):
        if coding in ("gzip", "x-gzip"):
            content = _inflate(content, zlib.MAX_WBITS | 16, coding)
        elif coding == "deflate":  # zlib-wrapped as the RFC says, or raw as some servers send it
            try:
                content = _inflate(content, zlib.MAX_WBITS, coding)
            except DecodingError:
                content = _inflate(content, -zlib.MAX_WBITS, coding)
    return content


def _inflate(content: bytes, wbits: int, coding: str) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(content) + inflater.flush()
    except zlib.error as exc:
        raise DecodingError(f"Content-Encoding {coding}: {exc}") from None
    if not inflater.eof:
        raise DecodingError(f"Content-Encoding {coding}: the body ends before its compressed stream does")
    return out


def _environment_proxies() -> dict[str, str]:
    """The proxy settings of the environment as curl reads them: ``http_proxy``, ``https_proxy``,
    ``all_proxy`` and ``no_proxy``, each in lower case first, then upper case."""
    proxies: dict[str, str] = {}
    for name in ("http", "https", "all", "no"):
        value = os.environ.get(f"{name}_proxy") or os.environ.get(f"{name.upper()}_PROXY")
        if value:
            proxies[name] = value.strip()
    for scheme in ("http", "https", "all"):
        if scheme in proxies:
            _proxy(proxies, scheme)  # a setting we cannot use is said at start, not mid-sync
    return proxies


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``no_proxy`` names ``host``: ``*``, the host itself, a domain it is in (with or
    without a leading dot), each optionally with a ``:port``."""
    host = host.lower()
    for entry in no_proxy.replace(" ", ",").split(","):
        entry = entry.strip().lower()
        if entry == "*":
            return True
        if entry.startswith("["):  # [IPv6] or [IPv6]:port
            entry, _, rest = entry[1:].partition("]")
            entry_port = rest.removeprefix(":")
        elif entry.count(":") == 1:  # host:port (an IPv6 address without brackets has several)
            entry, _, entry_port = entry.partition(":")
        else:
            entry_port = ""
        if entry_port and entry_port != str(port):
            continue
        entry = entry.lstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def _proxy(proxies: dict[str, str], scheme: str) -> _Proxy | None:
    url = proxies.get(scheme) or proxies.get("all")
    if not url:
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        name = f"{parts.scheme}://{parts.hostname or ''}"
        raise ProxyError(
            f"The environment sets a proxy for {scheme} URLs at {name}: only http:// proxies are supported "
            "(an https origin is reached through them by a CONNECT tunnel, so the traffic stays encrypted)."
        )
    port = parts.port or 80
    authorization = b""
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = b"Proxy-Authorization: Basic " + base64.b64encode(credentials) + b"\r\n"
    return _Proxy(parts.hostname, port, authorization, f"{parts.hostname}:{port}")
