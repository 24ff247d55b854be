"""The network under httpx: an httpcore backend on asyncio's own transports.

httpx's default async backend goes through anyio, which costs a cancel scope per read and
does TLS in Python one record (16 KB) at a time: a 300 KB page of events took about twenty
reads, each a trip through h11. Here a read takes whatever the event loop has buffered (up to
the 64 KB httpcore asks for), and a timeout is one timer: 8% less CPU for a read of 10k events,
measured (bench/run.py --only cpu). Only the client's pools use it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore

__all__ = ["AsyncioBackend", "use_asyncio_backend"]

# Past this much unread data the socket stops being read (the server then waits): a bound on
# memory however slowly the caller consumes, a few pages of events so the socket rarely waits.
_HIGH_WATER = 1 << 20


class _Stream(asyncio.Protocol, httpcore.AsyncNetworkStream):
    """One connection: bytes received are buffered until ``read`` takes them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._closed = False  # the peer ended the connection (EOF or error)
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

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout: float | None, timeout_error: type[Exception]) -> None:
        """Wait for the next event on the connection, or raise ``timeout_error``."""
        waiter = self._loop.create_future()
        self._waiter = waiter
        timer = None
        if timeout is not None:
            timer = self._loop.call_later(timeout, _expire, waiter, timeout_error)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None

    # httpcore.AsyncNetworkStream
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        while not self._buffer:
            if self._closed:
                if self._error is not None:
                    raise httpcore.ReadError(str(self._error) or type(self._error).__name__)
                return b""
            await self._wait(timeout, httpcore.ReadTimeout)
        if len(self._buffer) <= max_bytes:
            data = bytes(self._buffer)
            self._buffer.clear()
        else:
            data = bytes(self._buffer[:max_bytes])
            del self._buffer[:max_bytes]
        if self._paused_reading and len(self._buffer) <= _HIGH_WATER // 2 and self._transport is not None:
            self._paused_reading = False
            self._transport.resume_reading()
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._closed or self._transport is None or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        while self._paused_writing and not self._closed:
            await self._wait(timeout, httpcore.WriteTimeout)

    async def aclose(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._closed = True

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        assert self._transport is not None
        try:
            transport = await self._loop.start_tls(
                self._transport, self, ssl_context, server_hostname=server_hostname, ssl_handshake_timeout=timeout
            )
        except (asyncio.TimeoutError, TimeoutError) as exc:
            self._transport.close()
            raise httpcore.ConnectTimeout(str(exc) or "TLS handshake timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc)) from exc
        if transport is None:
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # httpcore asks before reusing a kept-alive connection: readable means the server
            # sent something unasked (it closed the connection), so a new one is needed.
            return self._closed or bool(self._buffer)
        if self._transport is None:
            return None
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


def _expire(waiter: asyncio.Future[None], error: type[Exception]) -> None:
    if not waiter.done():
        waiter.set_exception(error("timed out"))


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections as :class:`_Stream` protocols on the running loop."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            _, stream = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Stream(loop),
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                ),
                timeout,
            )
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise httpcore.ConnectTimeout(f"no connection to {host}:{port} within {timeout} s") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock = stream.get_extra_info("socket")
        for option in socket_options or ():
            if sock is not None:
                sock.setsockopt(*option)
        return stream

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by this connector")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def use_asyncio_backend(client: Any) -> bool:
    """Put :class:`AsyncioBackend` under every connection pool of an ``httpx.AsyncClient``
    (its own and the proxies' from the environment). httpx has no public way to choose the
    backend, so this sets the pools' ``_network_backend``; it returns False, leaving httpx's
    default in place, when a version lays its pools out differently."""
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    found = [getattr(t, "_pool", None) for t in transports if t is not None]
    pools = [p for p in found if isinstance(p, httpcore.AsyncConnectionPool) and hasattr(p, "_network_backend")]
    if not pools or len(pools) != len(found):
        return False
    backend = AsyncioBackend()
    for pool in pools:
        pool._network_backend = backend
    return True

