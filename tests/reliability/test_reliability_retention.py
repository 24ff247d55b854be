"""Sentry's retention: a resumed cursor older than retention names the gap; an overwrite of events warns."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from reliability_helpers import (
    Connector,
    catalog_for,
    config_for,
    data_ids,
    expected,
    run_records,
    settle,
    tally,
    write_json,
)


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _state(stream_state: dict) -> list[dict]:
    return [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "events"}, "stream_state": stream_state}}]


def _gap_warnings(run) -> list[str]:
    return [w for w in run.logs("WARN") if "retention" in w]


def test_a_cursor_older_than_retention_warns_and_names_the_gap(make_emulator, tmp_path: Path) -> None:
    emu = settle(make_emulator(projects=2, events_per_project=100, retention_days=30, days=20))
    old = emu.now() - timedelta(days=45)
    slug = emu.project_slugs[0]
    state = _state({"projects": {slug: {"dateCreated": _iso(old)}}, "dateCreated": _iso(old)})
    run = Connector(tmp_path, emu, retention_days=30).read(["events"], state=state)
    assert run.returncode == 0, run.errors()
    [warning] = _gap_warnings(run)
    # Names the stream, the project and both ends of the gap.
    assert "events" in warning and slug in warning
    assert old.strftime("%Y-%m-%dT%H:%M") in warning
    floor = emu.now() - timedelta(days=30)
    assert floor.strftime("%Y-%m-%d") in warning
    # Only that project had a stale cursor; the data is still complete for what Sentry keeps.
    assert data_ids(run_records(run, ["events"]), emu) == expected(emu, ["events"])
    tally("retention", "stale-cursor")


def test_an_airbyte_connector_cursor_older_than_retention_warns(make_emulator, tmp_path: Path) -> None:
    """The state Airbyte's own Sentry connector leaves: one top-level dateCreated, one project."""
    emu = settle(make_emulator(projects=1, events_per_project=60, retention_days=30, days=20))
    old = emu.now() - timedelta(days=100)
    run = Connector(tmp_path, emu, retention_days=30, project=emu.project_slugs[0]).read(
        ["events"], state={"events": {"dateCreated": _iso(old)}}
    )
    assert run.returncode == 0, run.errors()
    assert len(_gap_warnings(run)) == 1, run.logs()
    tally("retention", "legacy-cursor")


def test_a_saved_window_older_than_retention_warns(make_emulator, tmp_path: Path) -> None:
    """A sync interrupted mid-window long ago: the window's remaining pages were deleted meanwhile."""
    emu = settle(make_emulator(projects=1, events_per_project=60, retention_days=30, days=20))
    slug = emu.project_slugs[0]
    start, end = emu.now() - timedelta(days=50), emu.now() - timedelta(days=40)
    state = _state({"projects": {slug: {"window": {"start": _iso(start), "end": _iso(end), "cursor": "0:100:0"}}}})
    run = Connector(tmp_path, emu, retention_days=30).read(["events"], state=state)
    assert run.returncode == 0, run.errors()
    warnings = _gap_warnings(run)
    assert warnings, run.logs()
    assert data_ids(run_records(run, ["events"]), emu) == expected(emu, ["events"])
    tally("retention", "stale-window")


def test_a_recent_cursor_does_not_warn(make_emulator, tmp_path: Path) -> None:
    emu = settle(make_emulator(projects=1, events_per_project=60, retention_days=30, days=20))
    recent = emu.now() - timedelta(days=29)
    state = _state({"projects": {emu.project_slugs[0]: {"dateCreated": _iso(recent)}}})
    run = Connector(tmp_path, emu, retention_days=30).read(["events"], state=state)
    assert run.returncode == 0
    assert _gap_warnings(run) == []


def _sync(tmp_path: Path, emu, *extra: str) -> subprocess.CompletedProcess[str]:
    config = write_json(tmp_path / "config.json", config_for(emu))
    return subprocess.run(
        [sys.executable, "-m", "source_sentry", "sync", "--config", config, "--destination", str(tmp_path / "s.duckdb"), *extra],
        capture_output=True, text=True, timeout=300,
    )


def test_a_full_refresh_overwrite_of_events_warns_that_history_is_dropped(make_emulator, tmp_path: Path) -> None:
    emu = settle(make_emulator(projects=1, events_per_project=60, issues_per_project=5))
    catalog = write_json(tmp_path / "catalog.json", catalog_for(["events", "issues"], "full_refresh", "overwrite"))
    proc = _sync(tmp_path, emu, "--catalog", catalog)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stderr.split())  # the display wraps long lines
    assert "WARN: stream 'events' runs Full Refresh | Overwrite" in text, proc.stderr
    warning = text.split("WARN: stream 'events'", 1)[1][:200]
    assert "retention" in warning and "dropped" in warning, warning
    # The --full-refresh flag says it too; an incremental sync does not.
    assert "dropped" in _sync(tmp_path, emu, "--full-refresh", "--streams", "events").stderr
    assert "dropped" not in _sync(tmp_path, emu, "--streams", "events").stderr
    tally("retention", "overwrite-warning", 2)
