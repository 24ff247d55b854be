"""Identical GETs of one sync are asked once: a parent list read by its stream and its child
streams, the project resolved and read as project_detail."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest
from connector_helpers import Connector, config_for

from source_sentry import client as client_module
from source_sentry.client import SentryClient
from source_sentry.config import parse_config
from source_sentry.errors import TransientError
from source_sentry.streams import STREAMS

RELEASES = "organizations/{organization}/releases/"


def _repeats(emu: Any) -> dict[tuple[str, str], int]:
    """Requests the emulator saw more than once: same path, same query."""
    seen = Counter((r.path, repr(sorted(r.query.items()))) for r in emu.requests)
    return {key: n for key, n in seen.items() if n > 1}


def test_a_sync_of_every_stream_asks_no_request_twice(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, events_per_project=150, issues_per_project=30, releases=120)
    every = [s.name for s in STREAMS]
    for project in (None, emu.project_slugs[0]):  # every project (listed), one named (resolved)
        (tmp_path / str(project)).mkdir()
        conn = Connector(tmp_path / str(project), emu, project=project)
        emu.clear_requests()
        full = conn.read(every)
        assert full.returncode == 0, full.errors()
        assert _repeats(emu) == {}
        emu.advance(600)
        emu.clear_requests()
        idle = conn.read(every)
        assert idle.returncode == 0, idle.errors()
        assert _repeats(emu) == {}
    # What the child streams read from the shared lists is what they read alone.
    (tmp_path / "alone").mkdir()
    alone = Connector(tmp_path / "alone", emu).read(["release_deploys"])
    assert sorted(r["id"] for r in alone.records()) == sorted(r["id"] for r in full.records("release_deploys"))


async def _read_all(client: SentryClient, emu: Any, *, stop_after: int | None = None) -> list[str]:
    versions: list[str] = []
    async with aclosing(client.pages(RELEASES, {"organization": emu.organization}, {"status": "open"})) as pages:
        async for page in pages:
            versions += [r["version"] for r in page.items]
            if stop_after is not None and len(versions) >= stop_after:
                break
    return versions


def _client(emu: Any, **config: Any) -> SentryClient:
    return SentryClient(parse_config(config_for(emu, **config)))


def _release_requests(emu: Any) -> int:
    return emu.request_counts().get("/api/0/organizations/{org}/releases/", 0)


def test_readers_of_a_shared_route_take_one_answer_each_then_it_is_asked_anew(make_emulator) -> None:
    emu = make_emulator(projects=1, releases=250, latency_ms=20)

    async def run() -> tuple[list[list[str]], SentryClient]:
        async with _client(emu) as client:
            client.share({RELEASES: 2})
            together = await asyncio.gather(_read_all(client, emu), _read_all(client, emu))
            assert client._shared == {}  # both took every page: nothing kept
            third = await _read_all(client, emu)  # asks anew, keeping each page for a second reader
            assert [s.takers_left for s in client._shared.values()] == [1] * ((len(third) + 99) // 100)
            return [*together, third], client

    lists, client = asyncio.run(run())
    pages = (len(lists[0]) + 99) // 100
    assert len(lists[0]) > 100 and lists[0] == lists[1] == lists[2]
    assert _release_requests(emu) == 2 * pages
    assert client.stats.shared == pages


def test_a_reader_that_stops_early_leaves_the_others_their_pages(make_emulator) -> None:
    emu = make_emulator(projects=1, releases=350, latency_ms=20)

    async def run() -> tuple[list[str], list[str], SentryClient]:
        async with _client(emu) as client:
            client.share({RELEASES: 2})
            first, whole = await asyncio.gather(_read_all(client, emu, stop_after=100), _read_all(client, emu))
            assert client.budget.endpoint(RELEASES).in_flight == 0
            return first, whole, client

    first, whole, _ = asyncio.run(run())
    assert first == whole[:100] and len(whole) > 300
    # The page the early reader had read ahead is the other's next page: never asked twice.
    assert _release_requests(emu) == (len(whole) + 99) // 100


def test_answers_nobody_comes_back_for_are_dropped_past_the_byte_cap(make_emulator, monkeypatch) -> None:
    monkeypatch.setattr(client_module, "_SHARED_BYTES", 150_000)
    emu = make_emulator(projects=1, releases=450)

    async def run() -> SentryClient:
        async with _client(emu) as client:
            client.share({RELEASES: 3})  # declared, but one reader comes
            versions = await _read_all(client, emu)
            assert len(versions) > 400
            return client

    client = asyncio.run(run())
    sizes = [s.size for s in client._shared.values()]
    assert 0 < client._shared_bytes == sum(sizes) <= 150_000
    assert len(sizes) < 5


def test_a_failed_shared_request_fails_each_reader_and_is_asked_anew(make_emulator) -> None:
    emu = make_emulator(projects=1, releases=50, latency_ms=20)
    emu.inject_fault("500", path="/releases/", times=2)

    async def run() -> list[str]:
        async with _client(emu, max_retries=1) as client:
            client.share({RELEASES: 2})
            results = await asyncio.gather(_read_all(client, emu), _read_all(client, emu), return_exceptions=True)
            assert all(isinstance(r, TransientError) for r in results), results
            return await _read_all(client, emu)

    assert len(asyncio.run(run())) == 50
    assert _release_requests(emu) == 3  # two failed attempts, shared; then one answer


@pytest.mark.parametrize("streams", [["releases", "release_deploys"], ["release_deploys"]])
def test_only_routes_with_several_readers_are_shared(make_emulator, tmp_path: Path, streams: list[str]) -> None:
    emu = make_emulator(projects=1, releases=30)
    run = Connector(tmp_path, emu).read(streams)
    assert run.returncode == 0, run.errors()
    # One page per release status either way: shared by two readers, or read by one.
    assert _release_requests(emu) == 2
