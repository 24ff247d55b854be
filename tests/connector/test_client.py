"""SentryClient in-process against the emulator: Link pagination with one page read ahead."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
import tracemalloc
from contextlib import aclosing
from datetime import datetime, timezone
from typing import Any

import orjson
import pytest
from connector_helpers import config_for

from sentry_emulator.pagination import FULL_PAGE_SIZE as PAGE
from source_sentry.config import parse_config
from source_sentry.http import Route, SentryClient
from source_sentry.http.client import _server_time

EVENTS = Route("projects/{organization}/{project}/events/", "project:read")
# Datasets of 2 issues below: both exceptions, so every generated event is an error event the
# project list serves (issue-platform issues' events are not), and page sizes are exact.


def _events_requests(emu: Any) -> list[Any]:
    return [r for r in emu.requests if r.path.endswith("/events/")]


def _wait_for_requests(emu: Any, count: int) -> int:
    """Poll the emulator's log (a request is logged once answered) until it holds ``count`` event
    requests; no deadline of its own (pytest-timeout ends a wait for one that never comes)."""
    while len(_events_requests(emu)) < count:
        time.sleep(0.02)
    return len(_events_requests(emu))


async def _first_page_then(emu: Any, check: Any, **pages_kw: Any) -> list[int]:
    """Take the first page of a project's events, run ``check(client)`` while holding it, read the rest."""
    config = parse_config(config_for(emu))
    sizes: list[int] = []
    async with SentryClient(config) as client:
        path = {"organization": emu.organization, "project": emu.project_slugs[0]}
        async with aclosing(client.pages(EVENTS, path, {"full": True}, **pages_kw)) as pages:
            async for page in pages:
                if not sizes:
                    # The emulator answers from threads: poll it without blocking our loop.
                    await asyncio.to_thread(check, client)
                sizes.append(len(page.items))
        assert client.budget.endpoint(EVENTS.template).in_flight == 0
    return sizes


def test_the_next_page_is_requested_while_the_caller_holds_this_one(make_emulator) -> None:
    emu = make_emulator(projects=1, events_per_project=2 * PAGE + PAGE // 2, issues_per_project=2)  # 3 pages

    def check(client: SentryClient) -> None:
        # The caller has not asked for page 2, yet its request is on its way.
        assert client.stats.requests == 2
        assert _wait_for_requests(emu, 2) == 2

    sizes = asyncio.run(_first_page_then(emu, check))
    assert sizes == [PAGE, PAGE, PAGE // 2]
    assert len(_events_requests(emu)) == 3  # read-ahead adds no request to a list read to its end


def test_without_read_ahead_the_next_page_waits_for_the_caller(make_emulator) -> None:
    emu = make_emulator(projects=1, events_per_project=2 * PAGE + PAGE // 2, issues_per_project=2)

    def check(client: SentryClient) -> None:
        # Page 2 is not asked for while the caller holds page 1 (with read-ahead it would have been
        # sent before page 1 was handed over: see the test above).
        assert client.stats.requests == 1
        assert len(_events_requests(emu)) == 1

    sizes = asyncio.run(_first_page_then(emu, check, read_ahead=False))
    assert sizes == [PAGE, PAGE, PAGE // 2]
    assert len(_events_requests(emu)) == 3


def test_stopping_early_cancels_the_page_read_ahead_and_frees_the_budget(make_emulator) -> None:
    emu = make_emulator(projects=1, events_per_project=2 * PAGE + PAGE // 2, issues_per_project=2, latency_ms=300)

    async def first_page_only() -> int:
        config = parse_config(config_for(emu))
        async with SentryClient(config) as client:
            path = {"organization": emu.organization, "project": emu.project_slugs[0]}
            async with aclosing(client.pages(EVENTS, path, {"full": True})) as pages:
                async for _page in pages:
                    break
            budget = client.budget.endpoint(EVENTS.template)
            assert budget.in_flight == 0  # the page read ahead was cancelled and released
            # The budget still works: the same list can be read again.
            async with aclosing(client.pages(EVENTS, path, {"full": True})) as pages:
                return sum([len(p.items) async for p in pages])

    assert asyncio.run(first_page_only()) == 2 * PAGE + PAGE // 2


def test_an_unreadable_page_is_read_again_and_its_cursor_comes_from_the_new_answer(make_emulator) -> None:
    emu = make_emulator(projects=1, events_per_project=3 * PAGE + PAGE // 2, issues_per_project=2)
    emu.inject_fault("truncated_json", path=".*/events/", times=1, after=1)
    sizes = asyncio.run(_first_page_then(emu, lambda client: None))
    assert sizes == [PAGE, PAGE, PAGE, PAGE // 2]
    faulted = [r for r in _events_requests(emu) if r.fault]
    assert len(faulted) == 1


def test_a_page_body_is_freed_with_its_page_not_left_to_the_cycle_collector(make_emulator) -> None:
    # httpx keeps each response in a reference cycle: a body cached on it lived until the
    # cyclic collector ran, several pages of hundreds of kilobytes at once. Pages of 100 full
    # events (the emulator's 10-event cap lifted): bodies far above _BIG, so they are told apart.
    emu = make_emulator(projects=1, events_per_project=800, full_page_size=None)

    async def big_blocks_while_reading() -> list[int]:
        config = parse_config(config_for(emu))
        counts: list[int] = []
        async with SentryClient(config) as client:
            path = {"organization": emu.organization, "project": emu.project_slugs[0]}
            async with aclosing(client.pages(EVENTS, path, {"full": True})) as pages:
                async for page in pages:
                    assert len(orjson.dumps(page.items)) > _BIG  # the pages are big enough to tell
                    snapshot = tracemalloc.take_snapshot()
                    counts.append(sum(1 for t in snapshot.traces if t.size >= _BIG and _ours(t.traceback)))
        return counts

    gc.disable()
    tracemalloc.start(1)  # a body is allocated where it is joined: in httpx, or in our client
    try:
        counts = asyncio.run(big_blocks_while_reading())
    finally:
        tracemalloc.stop()
        gc.enable()
    assert len(counts) == 8
    # This page's body and the one read ahead, never more however many pages went by.
    assert max(counts) <= 2, counts


_BIG = 64 * 1024


def _ours(traceback: tracemalloc.Traceback) -> bool:
    return any("source_sentry" in frame.filename or "httpx" in frame.filename for frame in traceback)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Thu, 03 Dec 2026 14:40:00 GMT", datetime(2026, 12, 3, 14, 40, tzinfo=timezone.utc)),  # IMF-fixdate
        ("Thursday, 03-Dec-26 14:40:00 GMT", datetime(2026, 12, 3, 14, 40, tzinfo=timezone.utc)),  # RFC 850
        ("Thu Dec  3 14:40:00 2026", datetime(2026, 12, 3, 14, 40, tzinfo=timezone.utc)),  # asctime
        ("Thu, 03 Dec 2026 15:40:00 +0100", datetime(2026, 12, 3, 14, 40, tzinfo=timezone.utc)),
        ("Thu, 31 Feb 2026 14:40:00 GMT", None),
        ("yesterday", None),
    ],
)
def test_the_servers_date_is_read_in_every_form_http_allows(header: str, expected: datetime | None) -> None:
    # The server's clock (its Date header) bounds every time window of a read.
    assert _server_time(header) == expected


def test_without_ca_bundle_the_client_trusts_certifis_bundle_without_importing_certifi() -> None:
    probe = (
        "import sys, ssl\n"
        "from source_sentry.http.client import _ssl_context\n"
        "ours = _ssl_context(True).cert_store_stats()\n"
        "imported = 'certifi' in sys.modules\n"
        "import certifi\n"
        "print(imported, ours == ssl.create_default_context(cafile=certifi.where()).cert_store_stats(), ours)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split(" ", 2)
    assert out[:2] == ["False", "True"], out
    assert "'x509_ca': 0" not in out[2]
