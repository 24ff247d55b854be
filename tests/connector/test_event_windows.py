"""Events backfills in parallel time windows: when the server allows it, exactly once, resumable."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from connector_helpers import Connector

from sentry_emulator.pagination import FULL_PAGE_SIZE as PAGE
from source_sentry.timeutil import parse_time


def _event_requests(emu: Any) -> list[Any]:
    return [r for r in emu.requests if r.path.endswith("/events/")]


def _tiles(windows: list[dict[str, Any]]) -> bool:
    """Adjacent and half-open, oldest first: each window starts where the one before ends."""
    ordered = sorted(windows, key=lambda w: w["start"])
    return all(a["end"] == b["start"] for a, b in itertools.pairwise(ordered))


def _most_in_flight(emu: Any) -> int:
    """The most event requests the emulator was serving at one moment."""
    edges = []
    for r in emu.requests:
        if r.path.endswith("/events/"):
            edges += [(r.received_at, 1), (r.received_at + r.duration_ms / 1000, -1)]
    most = current = 0
    for _, step in sorted(edges):
        current += step
        most = max(most, current)
    return most


def _ids(records: list[dict[str, Any]]) -> list[str]:
    return [str(r["id"]) for r in records]


def test_a_backfill_splits_into_parallel_windows_on_a_server_without_rate_limit_headers(make_emulator, tmp_path: Path) -> None:
    # Self-hosted Sentry sends no X-Sentry-Rate-Limit-* headers: 8 requests at a time.
    emu = make_emulator(projects=1, events_per_project=60 * PAGE, latency_ms=40)  # 60 pages
    slug = emu.project_slugs[0]
    run = Connector(tmp_path, emu, project=slug).read(["events"])
    assert run.returncode == 0, run.errors()
    assert Counter(_ids(run.records("events"))) == Counter(e["id"] for e in emu.events(slug))
    assert _most_in_flight(emu) >= 6
    checkpoints = [s["stream"]["stream_state"]["projects"][slug] for s in run.states("events")]
    windows = [c["windows"] for c in checkpoints if "windows" in c]
    # Split in halves while slots were idle and each half held a few pages, up to 8 open at
    # once (60 pages are enough to reach the server's 8); together always the whole
    # span, finished neighbours merged (so at most one done entry on each side of an open one).
    spans = {(r.query["start"][0], r.query["end"][0]) for r in _event_requests(emu)}
    assert len(spans) >= 9
    assert max(sum(not w.get("done") for w in ws) for ws in windows) == 8
    assert max(len(ws) for ws in windows) <= 2 * 8 + 1
    requests = _event_requests(emu)
    span = (min(r.query["start"][0] for r in requests), max(r.query["end"][0] for r in requests))
    for ws in windows:
        assert _tiles(ws) and (min(w["start"] for w in ws), max(w["end"] for w in ws)) == span
    # Waste: each window may end with a short page. A split leaves each half a few pages, so
    # the page its window had read ahead for the wider range is never dropped.
    created = {end for _, end in spans}  # the first window's end, and one per split
    assert len(_event_requests(emu)) <= 60 + len(created)
    # A window holds a page of events or more, or none at all (a split cannot see where in
    # the unread range the events are: the first split of a backfill often gets the empty
    # days before the project's first event).
    times = [parse_time(e["dateCreated"]) for e in emu.events(slug)]
    for end in created:
        start = max(s for s, e in spans if e == end)  # its range once it stopped splitting
        held = sum(parse_time(start) <= t < parse_time(end) for t in times)
        assert held == 0 or held >= PAGE, (start, end, held)
    assert checkpoints[-1] == {"dateCreated": checkpoints[-1]["dateCreated"]}


def test_a_backfill_of_one_page_is_one_request(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=PAGE - 2, issues_per_project=2)  # all error events
    run = Connector(tmp_path, emu, project=emu.project_slugs[0]).read(["events"])
    assert run.returncode == 0, run.errors()
    assert len(run.records("events")) == PAGE - 2
    assert len(_event_requests(emu)) == 1


def test_on_sentry_io_limits_a_backfill_is_one_window(make_emulator, tmp_path: Path) -> None:
    # sentry.io allows one concurrent request on project events: more windows would not help.
    emu = make_emulator(projects=1, events_per_project=4 * PAGE + PAGE // 2, issues_per_project=2,
                        rate_limits="sentry", days=0.04)  # 5 pages, all error events, all in the last hour
    run = Connector(tmp_path, emu, project=emu.project_slugs[0]).read(["events"])
    assert run.returncode == 0, run.errors()
    assert len(run.records("events")) == 4 * PAGE + PAGE // 2
    assert len({(r.query["start"][0], r.query["end"][0]) for r in _event_requests(emu)}) == 1
    assert len(_event_requests(emu)) == 5


def test_a_read_stopped_with_windows_open_resumes_them_and_skips_the_finished_ones(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=30 * PAGE, latency_ms=10)  # 30 pages
    slug = emu.project_slugs[0]
    conn = Connector(tmp_path, emu, project=slug, lookback_window_minutes=0)
    first = conn.read(["events"])
    assert first.returncode == 0, first.errors()
    checkpoints = [s["stream"]["stream_state"]["projects"][slug] for s in first.states("events")]
    # A checkpoint with several windows, some half-read, as a sync killed right after it left.
    windows = next(
        c["windows"] for c in checkpoints if len(c.get("windows", [])) >= 3 and any(w["cursor"] for w in c["windows"])
    )
    # ... with the newest window done: when it finished first, the span's end is known only
    # from it (a resumed read once took the end from the open windows and read the rest again).
    newest = max(windows, key=lambda w: w["end"])
    newest.update(cursor=None, done=True)
    state = {"type": "STREAM", "stream": {"stream_descriptor": {"name": "events"},
                                          "stream_state": {"projects": {slug: {"windows": windows}}}}}
    emu.clear_requests()
    resumed = conn.read(["events"], state=[state])
    assert resumed.returncode == 0, resumed.errors()
    # Nothing in the finished window is asked again; then one fresh window from the span's
    # end to now, as after any finished span.
    starts = {r.query["start"][0] for r in _event_requests(emu)}
    assert {s for s in starts if s >= newest["start"]} <= {newest["end"]}, (starts, newest)
    again = _ids(resumed.records("events"))
    assert len(again) == len(set(again))
    first_start = min(w["start"] for w in windows)
    open_ids = {e["id"] for e in emu.events(slug) if first_start <= e["dateCreated"] < newest["start"]}
    assert set(again) <= open_ids
    # Every open window is read to its end: each from its cursor, or from its start.
    unread = [w for w in windows if not w.get("done") and not w["cursor"]]
    for w in unread:
        assert {e["id"] for e in emu.events(slug) if w["start"] <= e["dateCreated"] < w["end"]} <= set(again)
    final = resumed.states("events")[-1]["stream"]["stream_state"]["projects"][slug]
    assert list(final) == ["dateCreated"] and final["dateCreated"] >= newest["end"]


def test_a_state_of_an_earlier_version_with_one_window_resumes_it(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=4 * PAGE + PAGE // 2, issues_per_project=2,
                        rate_limits="sentry", days=0.04)  # 5 pages, all error events, all in the last hour
    slug = emu.project_slugs[0]
    conn = Connector(tmp_path, emu, project=slug, lookback_window_minutes=0)
    first = conn.read(["events"])
    [window] = first.states("events")[1]["stream"]["stream_state"]["projects"][slug]["windows"]
    assert window["cursor"]
    old = {"type": "STREAM", "stream": {"stream_descriptor": {"name": "events"},
                                        "stream_state": {"projects": {slug: {"window": window}}}}}
    resumed = conn.read(["events"], state=[old])
    assert resumed.returncode == 0, resumed.errors()
    assert len(resumed.records("events")) == 2 * PAGE + PAGE // 2  # two pages were checkpointed
    assert not resumed.logs("WARN")


def _listed_again(emu: Any, slug: str, pstate: dict[str, Any] | None, times: dict[str, datetime]) -> set[str]:
    """The events of ``slug`` (``times``: id -> dateCreated) a read resumed from ``pstate`` lists
    again (no look-back)."""
    if pstate is None:
        return set(times)
    if "windows" not in pstate:
        since = parse_time(pstate["dateCreated"])
        return {i for i, t in times.items() if t > since}
    again: set[str] = set()
    for w in pstate["windows"]:
        if not w.get("done"):
            again |= set(emu.events_listed(slug, w["start"], w["end"], w["cursor"]))
    end = max(parse_time(w["end"]) for w in pstate["windows"])
    return again | {i for i, t in times.items() if t >= end}


def test_every_checkpoint_covers_every_event_sent_before_it(make_emulator, tmp_path: Path) -> None:
    # Four projects' windows finish and checkpoint in any order: whatever STATE a platform
    # resumes from, no event it had before that STATE is listed again.
    emu = make_emulator(projects=4, events_per_project=10 * PAGE, latency_ms=5)  # 10 pages each
    run = Connector(tmp_path, emu, lookback_window_minutes=0).read(["events"])
    assert run.returncode == 0, run.errors()
    times = {slug: {e["id"]: parse_time(e["dateCreated"]) for e in emu.events(slug)} for slug in emu.project_slugs}
    project_of = {i: slug for slug, ids in times.items() for i in ids}
    sent: dict[str, set[str]] = {slug: set() for slug in emu.project_slugs}
    checked = 0
    for message in run.messages:
        if message["type"] == "RECORD":
            event_id = message["record"]["data"]["id"]
            sent[project_of[event_id]].add(event_id)
        elif message["type"] == "STATE":
            projects = message["state"]["stream"]["stream_state"]["projects"]
            for slug in emu.project_slugs:
                again = _listed_again(emu, slug, projects.get(slug), times[slug])
                assert not sent[slug] & again, (slug, projects.get(slug))
            checked += 1
    assert checked >= 30
