"""A read whose messages cannot be written stops every stream, not only the one that wrote.

A stream's own failure is reported and the others go on (test_read.py); but when the emitter
itself raises (``sync``'s destination failed), the read ends with that error. Every other
stream must end with it: in a process that lives on (``listen``), a stream left running would
go on asking Sentry through a client that is already closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from connector_helpers import catalog_for

from source_sentry.config import parse_config
from source_sentry.read import run_read


class _DiskFull(Exception):
    pass


def _stream_of(message: dict[str, Any]) -> str | None:
    if message["type"] == "RECORD":
        return message["record"]["stream"]
    if message["type"] == "TRACE":
        trace = message["trace"]
        found = trace.get("error") or trace.get("stream_status") or {}
        return found.get("stream_descriptor", {}).get("name")
    return None


def test_an_emitter_that_fails_ends_every_stream_of_the_read(make_emulator: Any) -> None:
    emu = make_emulator(projects=1, events_per_project=600, issues_per_project=30, latency_ms=20)
    config = parse_config({"auth_token": emu.token, "organization": emu.organization, "hostname": emu.base_url})
    written: list[dict[str, Any]] = []
    full = False

    def emit(message: dict[str, Any]) -> None:
        # The releases' table is on a disk that filled with its first record; events has tens
        # of pages still to read, and its messages could still be written.
        nonlocal full
        if _stream_of(message) == "releases" and message["type"] in ("RECORD", "TRACE"):
            full = full or message["type"] == "RECORD"
            if full:
                raise _DiskFull("no space left on device")
        written.append(message)

    async def in_a_process_that_lives_on() -> tuple[list[dict[str, Any]], int]:
        with pytest.raises(_DiskFull):
            await run_read(config, catalog_for(["events", "releases"]), [], emit)
        ended = len(written)
        await asyncio.sleep(0.2)  # answers to requests already on their way are logged
        asked = len(emu.requests)
        await asyncio.sleep(0.5)  # the loop goes on, as listen's does
        return written[ended:], len(emu.requests) - asked

    after, more_requests = asyncio.run(in_a_process_that_lives_on())
    # Without the others cancelled, events went on: its next request found the client closed
    # ("use SentryClient as an async context manager"), reported as its own error.
    assert after == []
    assert more_requests == 0
