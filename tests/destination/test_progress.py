"""SyncProgress: quiet prints only errors; non-terminal output is plain lines plus a summary."""

from __future__ import annotations

import io
import re

import pytest
from dest_helpers import error, paged, record

from source_sentry import progress as progress_module
from source_sentry.progress import SyncProgress

ANSI = re.compile(r"\x1b\[")


def _feed(progress: SyncProgress) -> None:
    for message in paged("events", [{"id": str(i)} for i in range(25)], page=10) + paged("issues", [{"id": "1"}], page=1):
        progress.on_message(message)
    progress.on_message({"type": "LOG", "log": {"level": "INFO", "message": "quiet info"}})
    progress.on_http(requests=12, pages=11, rate_limit_waits=2, wait_seconds=3.5)


def test_quiet_prints_nothing_on_success():
    out = io.StringIO()
    progress = SyncProgress(["events", "issues"], quiet=True, stream=out)
    _feed(progress)
    progress.finish(ok=True)
    assert out.getvalue() == ""


def test_quiet_still_prints_errors():
    out = io.StringIO()
    progress = SyncProgress(["events"], quiet=True, stream=out)
    progress.on_message(record("events", {"id": "1"}))
    progress.on_message(error("events", "token lacks event:read"))
    progress.finish(ok=False)
    text = out.getvalue()
    assert "token lacks event:read" in text and "events" in text
    assert "sync failed" in text


def test_plain_output_has_no_ansi_and_ends_with_summary(monkeypatch):
    monkeypatch.setattr(progress_module, "PLAIN_INTERVAL_SECONDS", 0.0)  # a progress line per message
    out = io.StringIO()
    progress = SyncProgress(["events", "issues"], quiet=False, stream=out)
    _feed(progress)
    progress.on_message({"type": "LOG", "log": {"level": "WARN", "message": "slow down"}})
    progress.finish(ok=True)
    text = out.getvalue()
    assert not ANSI.search(text)
    assert "events: STARTED" in text and "events: COMPLETE (25 records)" in text
    assert "WARN: slow down" in text and "quiet info" not in text
    summary = text[text.index("sync summary"):]
    assert re.search(r"events\s*\|\s*25\s*\|\s*COMPLETE", summary)
    assert re.search(r"issues\s*\|\s*1\s*\|\s*COMPLETE", summary)
    assert text.rstrip().splitlines()[-1].startswith("sync finished in ")
    assert "26 records, 12 requests, 11 pages, 2 rate-limit (429) waits (3.5 s)" in text


class _FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_output_uses_a_live_display_and_summary():
    out = _FakeTty()
    progress = SyncProgress(["events"], quiet=False, stream=out)
    _feed(progress)
    progress.finish(ok=False)
    text = out.getvalue()
    assert "sync summary" in text and "sync FAILED" in text
    assert ANSI.search(text)  # rich's live display drew on the "terminal"


@pytest.mark.parametrize("message", [{}, {"type": "RECORD"}, {"type": "TRACE", "trace": {}}, {"type": "STATE", "state": {}}])
def test_odd_messages_do_not_raise(message):
    progress = SyncProgress(["events"], quiet=False, stream=io.StringIO())
    progress.on_message(message)
    progress.finish(ok=True)
