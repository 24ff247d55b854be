"""The asyncio network backend under httpx, over real connections to the emulator."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import Any

import httpcore
import pytest
from connector_helpers import config_for

from sentry_emulator.pagination import FULL_PAGE_SIZE as PAGE
from source_sentry.config import parse_config
from source_sentry.errors import TransientError
from source_sentry.http import Route, SentryClient, transport

EVENTS = Route("projects/{organization}/{project}/events/", "project:read")


async def _event_ids(emu: Any, **config: Any) -> tuple[list[str], SentryClient]:
    """Every event of the first project, read page by page with full bodies."""
    ids: list[str] = []
    async with SentryClient(parse_config(config_for(emu, **config))) as client:
        path = {"organization": emu.organization, "project": emu.project_slugs[0]}
        async with aclosing(client.pages(EVENTS, path, {"full": True})) as pages:
            async for page in pages:
                ids += [e["id"] for e in page.items]
    return ids, client


def _pools(client: SentryClient) -> list[Any]:
    http = client._http
    assert http is not None
    transports = [http._transport, *(t for t in http._mounts.values() if t is not None)]
    return [t._pool for t in transports]


def test_every_pool_of_the_client_reads_through_the_asyncio_backend(make_emulator, monkeypatch) -> None:
    # A proxy from the environment gets its own pool: it must not fall back to anyio.
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    emu = make_emulator(projects=1, events_per_project=10)

    async def check() -> None:
        async with SentryClient(parse_config(config_for(emu))) as client:
            pools = _pools(client)
            assert len(pools) >= 2
            assert all(isinstance(p._network_backend, transport.AsyncioBackend) for p in pools)

    asyncio.run(check())


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_pages_arrive_whole_when_the_socket_is_paused_between_reads(make_emulator, monkeypatch, tls: bool) -> None:
    # A read buffer far smaller than a page: reading pauses and resumes many times a page.
    monkeypatch.setattr(transport, "_HIGH_WATER", 4096)
    emu = make_emulator(projects=1, events_per_project=2 * PAGE + PAGE // 2, issues_per_project=2, tls=tls)  # 3 pages
    ids, client = asyncio.run(_event_ids(emu))
    assert ids == [e["id"] for e in emu.events(emu.project_slugs[0])]
    assert client.stats.requests == 3 and client.stats.retries == 0


def test_a_stalled_answer_times_out_and_is_asked_again(make_emulator) -> None:
    emu = make_emulator(projects=1, events_per_project=PAGE + PAGE // 2, issues_per_project=2)  # 2 pages
    # The stall outlasts the test (stop() ends it): only the client's own timeout gets past it.
    emu.inject_fault("stall", path="/events/", after=1, seconds=3600)
    ids, client = asyncio.run(_event_ids(emu, request_timeout_seconds=1))
    assert len(ids) == PAGE + PAGE // 2 and client.stats.retries == 1
    # The stalled request is logged when its stall ends: the read finished while it still hung.
    assert [r.fault for r in emu.requests] == [None, None]


def test_a_reset_connection_is_replaced(make_emulator) -> None:
    emu = make_emulator(projects=1, events_per_project=250)
    emu.inject_fault("reset", path="/events/", after=1, times=2)
    ids, client = asyncio.run(_event_ids(emu))
    assert len(ids) == 250 and client.stats.retries == 2


def test_a_closed_port_is_a_connect_error_retried_then_reported(make_emulator) -> None:
    emu = make_emulator(projects=1, events_per_project=10)
    port = int(emu.base_url.rsplit(":", 1)[1].rstrip("/"))
    emu.stop()

    async def read() -> None:
        await _event_ids(emu, hostname=f"http://127.0.0.1:{port}", max_retries=1)

    with pytest.raises(TransientError, match="connection failed"):
        asyncio.run(read())


def test_a_read_timeout_is_httpcore_s_own(make_emulator) -> None:
    # The backend's errors are httpcore's, so httpx maps them to its own (TimeoutException).
    emu = make_emulator(projects=1, events_per_project=10)
    emu.inject_fault("stall", path="/events/", seconds=5)
    host, port = emu.base_url.split("//", 1)[1].rstrip("/").split(":")

    async def read() -> None:
        stream = await transport.AsyncioBackend().connect_tcp(host, int(port), timeout=5)
        path = f"/api/0/projects/{emu.organization}/{emu.project_slugs[0]}/events/"
        await stream.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(), timeout=5)
        try:
            await stream.read(65536, timeout=0.3)
        finally:
            await stream.aclose()

    with pytest.raises(httpcore.ReadTimeout):
        asyncio.run(read())
