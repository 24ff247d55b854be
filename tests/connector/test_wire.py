"""HTTP/1.1 on asyncio's transports (``source_sentry.http.wire``), over real connections to the
emulator, directly and through a forward proxy on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import urllib.request
from contextlib import aclosing
from typing import Any

import pytest
from connector_helpers import config_for
from proxy_helpers import ForwardProxy

from sentry_emulator.pagination import FULL_PAGE_SIZE as PAGE
from source_sentry.config import parse_config
from source_sentry.errors import ConfigError, TransientError
from source_sentry.http import Route, SentryClient, wire

EVENTS = Route("projects/{organization}/{project}/events/", "project:read")
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def _event_ids(emu: Any, **config: Any) -> tuple[list[str], SentryClient]:
    """Every event of the first project, read page by page with full bodies."""
    ids: list[str] = []
    async with SentryClient(parse_config(config_for(emu, **config))) as client:
        path = {"organization": emu.organization, "project": emu.project_slugs[0]}
        async with aclosing(client.pages(EVENTS, path, {"full": True})) as pages:
            async for page in pages:
                ids += [e["id"] for e in page.items]
    return ids, client


def _served(emu: Any) -> list[str]:
    return [e["id"] for e in emu.events(emu.project_slugs[0])]


def _three_pages(make_emulator: Any, tls: bool = False) -> Any:
    return make_emulator(projects=1, events_per_project=2 * PAGE + PAGE // 2, issues_per_project=2, tls=tls)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_gzipped_chunked_answers_are_decoded_whole(make_emulator: Any, tls: bool) -> None:
    emu = _three_pages(make_emulator, tls)
    ids, client = asyncio.run(_event_ids(emu))
    assert ids == _served(emu) and client.stats.requests == 3 and client.stats.retries == 0
    # The same page, plain (urllib asks for no encoding) and through the wire (gzip, chunked).
    url = f"{emu.base_url}/api/0/projects/{emu.organization}/{emu.project_slugs[0]}/events/?full=true"
    context = ssl.create_default_context(cafile=emu.ca_cert_path) if tls else None
    plain = urllib.request.Request(url, headers={"Authorization": f"Bearer {emu.token}"})
    with urllib.request.urlopen(plain, context=context, timeout=10) as answer:
        expected = json.loads(answer.read())

    async def wired() -> wire.Response:
        pool = wire.Pool(context or ssl.create_default_context(), connect_timeout=5)
        try:
            return await pool.get(url, f"Authorization: Bearer {emu.token}\r\nAccept-Encoding: gzip\r\n".encode())
        finally:
            await pool.aclose()

    response = asyncio.run(wired())
    assert response.headers["content-encoding"] == "gzip" and response.headers["transfer-encoding"] == "chunked"
    assert json.loads(response.content) == expected


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_pages_arrive_whole_when_the_socket_is_paused_between_reads(make_emulator, monkeypatch, tls: bool) -> None:
    # A read buffer far smaller than a page: reading pauses and resumes many times a page.
    monkeypatch.setattr(wire, "_HIGH_WATER", 4096)
    emu = _three_pages(make_emulator, tls)
    ids, client = asyncio.run(_event_ids(emu))
    assert ids == _served(emu)
    assert client.stats.requests == 3 and client.stats.retries == 0


@pytest.mark.parametrize("kind", ["chunked", "close_delimited"])
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_odd_chunks_and_bodies_ended_by_a_close_are_read_exactly(make_emulator, kind: str, tls: bool) -> None:
    emu = _three_pages(make_emulator, tls)
    emu.inject_fault(kind, path="/events/", times=-1)
    ids, client = asyncio.run(_event_ids(emu))
    assert ids == _served(emu)
    assert client.stats.requests == 3 and client.stats.retries == 0
    assert [r.fault for r in emu.requests] == [kind] * 3


def test_a_stalled_answer_times_out_and_is_asked_again(make_emulator) -> None:
    emu = make_emulator(projects=1, events_per_project=PAGE + PAGE // 2, issues_per_project=2)  # 2 pages
    # The stall outlasts the test (stop() ends it): only the client's own timeout gets past it.
    emu.inject_fault("stall", path="/events/", after=1, seconds=3600)
    ids, client = asyncio.run(_event_ids(emu, request_timeout_seconds=1))
    assert len(ids) == PAGE + PAGE // 2 and client.stats.retries == 1
    # The stalled request is logged when its stall ends: the read finished while it still hung.
    assert [r.fault for r in emu.requests] == [None, None]


@pytest.mark.parametrize("kind", ["reset", "short_body"])
def test_a_connection_cut_mid_answer_is_replaced(make_emulator, kind: str) -> None:
    emu = make_emulator(projects=1, events_per_project=250)
    emu.inject_fault(kind, path="/events/", after=1, times=2)
    ids, client = asyncio.run(_event_ids(emu))
    # Each cut is one failed attempt, asked again on a new connection: never more requests.
    assert ids == _served(emu) and client.stats.retries == 2
    assert [r.fault for r in emu.requests].count(kind) == 2 and client.stats.requests == 27


def test_a_closed_port_is_a_connect_error_retried_then_reported(make_emulator) -> None:
    emu = make_emulator(projects=1, events_per_project=10)
    port = int(emu.base_url.rsplit(":", 1)[1].rstrip("/"))
    emu.stop()

    async def read() -> None:
        await _event_ids(emu, hostname=f"http://127.0.0.1:{port}", max_retries=1)

    with pytest.raises(TransientError, match=f"connection failed .*127.0.0.1:{port}"):
        asyncio.run(read())


def test_an_https_origin_is_reached_through_a_tunnel_kept_alive(make_emulator, monkeypatch) -> None:
    emu = _three_pages(make_emulator, tls=True)
    proxy = ForwardProxy()
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("http://", "http://someone:p%40ss@"))
        ids, client = asyncio.run(_event_ids(emu))
    finally:
        proxy.close()
    port = emu.base_url.rsplit(":", 1)[1].rstrip("/")
    assert ids == _served(emu) and client.stats.retries == 0
    # One tunnel for the three pages; the proxy saw the credentials it was given, never the token.
    assert [s.line for s in proxy.seen] == [f"CONNECT 127.0.0.1:{port} HTTP/1.1"]
    assert proxy.seen[0].headers["proxy-authorization"] == "Basic " + base64.b64encode(b"someone:p@ss").decode()
    assert all("authorization" not in s.headers for s in proxy.seen)


def test_an_http_origin_is_asked_through_the_proxy_by_its_absolute_url(make_emulator, monkeypatch) -> None:
    emu = _three_pages(make_emulator)
    proxy = ForwardProxy()
    try:
        monkeypatch.setenv("http_proxy", proxy.url)
        ids, client = asyncio.run(_event_ids(emu))
    finally:
        proxy.close()
    assert ids == _served(emu)
    # One answer per connection (the proxy asks with Connection: close, the answer says so):
    # each request opens a new one, and none fails for a connection closed under it.
    assert client.stats.requests == 3 and client.stats.retries == 0
    lines = [s.line for s in proxy.seen]
    assert len(lines) == 3 and all(line.startswith(f"GET {emu.base_url}/api/0/projects/") for line in lines)


def test_no_proxy_names_the_hosts_reached_directly(make_emulator, monkeypatch) -> None:
    emu = _three_pages(make_emulator)
    proxy = ForwardProxy()
    try:
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
        ids, _ = asyncio.run(_event_ids(emu))
    finally:
        proxy.close()
    assert ids == _served(emu) and proxy.seen == []


def test_a_proxy_that_refuses_is_named_without_its_credentials(make_emulator, monkeypatch) -> None:
    emu = make_emulator(projects=1, events_per_project=10, tls=True)
    proxy = ForwardProxy(refuse=407)
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("http://", "http://someone:secret@"))
        with pytest.raises(TransientError) as failure:
            asyncio.run(_event_ids(emu, max_retries=1))
    finally:
        proxy.close()
    message = str(failure.value)
    assert "407" in message and proxy.url.split("//")[1] in message and "secret" not in message


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypassed"),
    [
        ("sentry.io", 443, "*", True),
        ("us.sentry.io", 443, "sentry.io", True),
        ("us.sentry.io", 443, ".sentry.io", True),
        ("notsentry.io", 443, "sentry.io", False),
        ("sentry.example.com", 443, "example.com:8443, other.org", False),
        ("sentry.example.com", 8443, "example.com:8443", True),
        ("127.0.0.1", 9000, "localhost,127.0.0.1", True),
        ("::1", 443, "::1", True),
        ("::1", 443, "[::1]:443", True),
        ("::1", 80, "[::1]:443", False),
        ("sentry.io", 443, "", False),
    ],
)
def test_no_proxy_is_read_as_curl_reads_it(host: str, port: int, no_proxy: str, bypassed: bool) -> None:
    assert wire._bypassed(host, port, no_proxy) is bypassed


@pytest.mark.parametrize("setting", ["socks5://127.0.0.1:1080", "https://user:secret@proxy.example:3128"])
def test_a_proxy_we_cannot_use_is_a_config_error_at_start(make_emulator, monkeypatch, setting: str) -> None:
    emu = make_emulator(projects=1, events_per_project=10, tls=True)
    monkeypatch.setenv("HTTPS_PROXY", setting)
    with pytest.raises(ConfigError, match="only http:// proxies") as failure:
        asyncio.run(_event_ids(emu))
    assert "secret" not in str(failure.value)
