"""Records that go out as Sentry wrote them: full events, split from the page's bytes.

The events stream decodes only each event's key and cursor and writes the RECORD around the
event's own bytes (``source_sentry.http.body.raw_items``). These tests read stdout as bytes: a
page written with Python's spacing keeps it (the bytes were not re-serialised), and a page the
raw path must not take as it is (line breaks between tokens, a byte that is no UTF-8) still
gives one valid, UTF-8 protocol message per line. The escaped token is in
``tests/reliability/test_reliability_token.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
from connector_helpers import CliRun, catalog_for, config_for, validated, write_json

EVENTS = "/events/$"


def _read(emu, tmp_path: Path, **config) -> tuple[bytes, CliRun]:
    """Read the events stream with the CLI; stdout as bytes, and validated as messages."""
    args = [
        "read",
        "--config", write_json(tmp_path / "config.json", config_for(emu, project=emu.project_slugs[0], **config)),
        "--catalog", write_json(tmp_path / "catalog.json", catalog_for(["events"])),
    ]
    proc = subprocess.run([sys.executable, "-m", "source_sentry", *args], capture_output=True, timeout=240,
                          env=dict(os.environ))
    return proc.stdout, validated(CliRun(proc.returncode, proc.stdout.decode(), proc.stderr.decode()))


def _expected(emu) -> dict[str, dict]:
    return {e["id"]: e for e in emu.events(emu.project_slugs[0])}


def _event_lines(stdout: bytes) -> list[bytes]:
    return [line for line in stdout.splitlines() if line.startswith(b'{"type":"RECORD","record":{"stream":"events"')]


def test_events_go_out_byte_for_byte_as_sentry_wrote_them(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=45, issues_per_project=3, days=0.04)
    emu.inject_fault("python_json", path=EVENTS, times=-1)  # ", " and ": " between tokens
    stdout, run = _read(emu, tmp_path)
    assert run.returncode == 0, run.stderr
    lines = _event_lines(stdout)
    assert len(lines) == len(_expected(emu)) == 45
    for line in lines:
        data = line.split(b',"data":', 1)[1].rsplit(b',"emitted_at":', 1)[0]
        # Python's spacing is still there: the event's own bytes, not orjson's re-serialisation.
        assert data.startswith(b'{"id": "') and b'", "' in data, data[:80]
    records = {r["id"]: r for r in run.records("events")}
    assert records == {i: orjson.loads(orjson.dumps(e)) for i, e in _expected(emu).items()}


def test_a_page_with_line_breaks_still_gives_one_message_per_line(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=25, issues_per_project=2, days=0.04)
    emu.inject_fault("pretty_json", path=EVENTS, times=-1)
    stdout, run = _read(emu, tmp_path)  # validated: every line one protocol message
    assert run.returncode == 0, run.stderr
    assert len(_event_lines(stdout)) == 25
    assert {r["id"] for r in run.records("events")} == set(_expected(emu))


def test_a_body_that_is_not_utf8_is_unreadable_and_never_reaches_stdout(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=25, issues_per_project=2, days=0.04)
    emu.inject_fault("invalid_utf8", path=EVENTS, times=-1)
    stdout, run = _read(emu, tmp_path, max_retries=1)
    stdout.decode("utf-8")  # strict: raises on the 0xFF had it gone out
    assert b"\xff" not in stdout
    assert run.returncode == 1
    assert not run.records("events")
    [error] = run.errors()
    assert error["stream_descriptor"]["name"] == "events"
    assert "invalid JSON" in error["message"] or "unreadable" in error["message"].lower(), error["message"]
