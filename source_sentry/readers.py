"""The stream readers: how each kind of stream in the table is read, page by page.

One class per ``StreamDef.kind`` (windowed, snapshot, child, usage), sharing one base that
knows partitions (projects), paging and checkpoint pacing. They emit through :class:`Output`,
which keeps the record counts between states, and read through the context's one client.
:mod:`source_sentry.read` decides which streams run and reports their outcome.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncGenerator, Iterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from . import protocol
from .client import Page, SentryClient
from .config import Config
from .errors import SentrySourceError, StreamAccessError, redact
from .state import fingerprint, format_time, parse_time
from .streams import DELETED_AT, ReadScope, StreamDef, parent_of

__all__ = ["READERS", "Output", "Project", "ReadContext", "ReadResult"]

# Snapshot streams checkpoint their fingerprints every page while the map is small, and
# less often when it is large, so the total state written stays proportional to the list.
_FINGERPRINTS_PER_CHECKPOINT_PAGE = 2000
_PARTITION_CONCURRENCY = 16
# Where the server allows more than one concurrent request on the events route (self-hosted
# servers; sentry.io allows one), a window with pages left splits its unread time range in two
# while a request slot is idle: a backfill spreads over parallel windows wherever its events
# are, and a list of one page stays one request. Only while each half should still hold this
# many pages (judged by the time the last page spanned): a split costs a short last page, and
# a half of less than a page would also drop the page its window had read ahead. Not below
# this span either, nor past this many entries in the state (finished windows next to each
# other are merged into one).
_MIN_PAGES_PER_HALF = 2
_MIN_SPLIT_SPAN = timedelta(hours=1)
_MAX_WINDOWS = 64


@dataclass(frozen=True)
class Project:
    id: str
    slug: str


@dataclass
class ReadResult:
    ok: bool = True
    records: dict[str, int] = field(default_factory=dict)
    failed_streams: list[str] = field(default_factory=list)


class Output:
    """Per-sync message bookkeeping: record counts between states, RUNNING status once."""

    def __init__(self, emit: protocol.Emit, result: ReadResult) -> None:
        self._emit = emit
        self._result = result
        self._since_state: dict[str, int] = {}
        self._running: set[str] = set()

    def status(self, stream: str, status: str) -> None:
        self._emit(protocol.stream_status(stream, status))

    def _mark_running(self, stream: str) -> None:
        if stream not in self._running:
            self._running.add(stream)
            self.status(stream, "RUNNING")

    def records(self, stream: str, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        self._mark_running(stream)
        emitted_at = protocol.now_ms()
        messages = [protocol.record_message(stream, item, emitted_at) for item in items]
        many = getattr(self._emit, "many", None)
        if many is not None:
            many(messages)
        else:
            for message in messages:
                self._emit(message)
        self._since_state[stream] = self._since_state.get(stream, 0) + len(items)
        self._result.records[stream] = self._result.records.get(stream, 0) + len(items)

    def state(self, stream: str, stream_state: dict[str, Any]) -> None:
        self._mark_running(stream)
        self._emit(protocol.state_message(stream, stream_state, self._since_state.pop(stream, 0)))

    def log(self, level: str, message: str) -> None:
        self._emit(protocol.log_message(level, redact(message)))

    def error(self, exc: BaseException, stream: str | None = None) -> None:
        if isinstance(exc, SentrySourceError):
            message, failure_type, internal = exc.message, exc.failure_type, exc.internal
            stack = None
        else:
            message = f"Unexpected error{f' in stream {stream}' if stream else ''}: {type(exc).__name__}: {exc}"
            failure_type, internal = "system_error", repr(exc)
            stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self._emit(
            protocol.error_trace(
                redact(message),
                failure_type,
                internal_message=redact(internal),
                stack_trace=redact(stack) if stack else None,
                stream=stream,
            )
        )


@dataclass
class ReadContext:
    config: Config
    client: SentryClient
    out: Output
    projects: list[Project]
    project_errors: dict[str, SentrySourceError]
    all_projects: bool
    now: datetime
    retention_floor: datetime  # the oldest time Sentry still keeps
    since: datetime  # the oldest time this sync reads: retention or start_date
    # Partitions (projects, lists) read at once across all streams; the budget paces requests.
    partitions: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(_PARTITION_CONCURRENCY))

    def scope(self) -> ReadScope:
        exact_retention = self.since == self.retention_floor
        return ReadScope(
            project_ids=tuple(p.id for p in self.projects),
            all_projects=self.all_projects,
            since_iso=format_time(self.since),
            stats_period=f"{self.config.retention_days}d" if exact_retention else None,
            until_iso=format_time(self.now),
        )


class _StreamReader:
    def __init__(self, ctx: ReadContext, stream: StreamDef, *, full_refresh: bool, state: dict[str, Any]) -> None:
        self.ctx = ctx
        self.stream = stream
        self.full_refresh = full_refresh
        self.state = state
        self.failures: list[SentrySourceError] = []

    async def run(self) -> list[SentrySourceError]:
        """Read the stream, emitting records and states; return per-partition failures."""
        raise NotImplementedError

    def _partitions(self, stream: StreamDef | None = None, *, report: bool = True) -> list[dict[str, str]]:
        stream = stream or self.stream
        org = self.ctx.config.organization
        if not stream.per_project:
            return [{"organization": org}]
        if report:
            self.failures.extend(self.ctx.project_errors.values())
        return [{"organization": org, "project": p.slug} for p in self.ctx.projects]

    def _pages(
        self,
        path: Mapping[str, str],
        params: dict[str, Any],
        cursor: str | None = None,
        stream: StreamDef | None = None,
        read_ahead: bool = True,
    ) -> AsyncGenerator[Page, None]:
        stream = stream or self.stream
        if stream.page_param is None:
            return self._one_page(stream, path, params)
        return self.ctx.client.pages(
            stream.route, path, params, cursor=cursor, page_param=stream.page_param, read_ahead=read_ahead
        )

    async def _one_page(
        self, stream: StreamDef, path: Mapping[str, str], params: dict[str, Any]
    ) -> AsyncGenerator[Page, None]:
        body, headers = await self.ctx.client.get(stream.route, path, params)
        items = body if isinstance(body, list) else [body]
        yield Page(items=items, cursor=None, next_cursor=None, headers=headers)

    def _base_params(self, stream: StreamDef | None = None) -> dict[str, Any]:
        stream = stream or self.stream
        params = dict(stream.params)
        if stream.params_hook is not None:
            params.update(stream.params_hook(self.ctx.scope()))
        return params

    def _delta_due(self, stream: StreamDef, known: bool, cursor: datetime | None, full_scan_at: datetime | None) -> bool:
        """Whether ``stream``'s list may be read as a delta (only what moved since ``cursor``):
        within full_scan_hours of its last complete full list, with what that list saw kept."""
        interval = self.ctx.config.full_scan
        return (
            stream.delta_hook is not None
            and known
            and cursor is not None
            and full_scan_at is not None
            and interval > timedelta(0)
            and self.ctx.now - full_scan_at < interval
        )

    def _delta_params(self, stream: StreamDef, cursor: datetime) -> dict[str, Any]:
        """The params of ``stream``'s delta read: what moved since ``cursor`` less the look-back."""
        assert stream.delta_hook is not None
        since = format_time(cursor - self.ctx.config.lookback_window)
        return {**dict(stream.params), **stream.delta_hook(self.ctx.scope(), since)}

    def _records(self, items: list[Any]) -> list[dict[str, Any]]:
        records = [i for i in items if isinstance(i, dict)]
        transform = self.stream.transform
        return [transform(r) for r in records] if transform else records

    def _no_projects_left(self) -> bool:
        """Every named project failed: a project filter left empty would mean "all projects"."""
        return not self.ctx.all_projects and not self.ctx.projects

    async def _each_partition(self, reads: list[Any], *, fatal: bool = False) -> None:
        """Run partition reads concurrently (the rate budget paces them); a partition that
        fails is recorded and the others go on, unless ``fatal`` (an organization-wide list)."""

        async def guarded(read: Any) -> None:
            async with self.ctx.partitions:
                try:
                    await read
                except SentrySourceError as exc:
                    if fatal:
                        raise
                    self.failures.append(exc)

        tasks = _Tasks()
        for read in reads:
            tasks.spawn(guarded(read))
        await tasks.wait()

    def _checkpoint_due(self, pages: int, entries: int) -> bool:
        return pages * _FINGERPRINTS_PER_CHECKPOINT_PAGE >= entries


class _SnapshotReader(_StreamReader):
    """Reads the whole list; emits new and changed records (all of them in full refresh)
    and a tombstone for each record that disappeared."""

    async def run(self) -> list[SentrySourceError]:
        stream, out = self.stream, self.ctx.out
        cursor_field = stream.cursor_field
        known = _fingerprints(self.state.get("fingerprints"))
        if "fingerprints" in self.state and known is None:
            out.log("WARN", f"Stream {stream.name}: the saved fingerprints are malformed; every record is sent again.")
        raw_cursor = self.state.get(cursor_field) if cursor_field else None
        old_cursor = parse_time(raw_cursor)
        if raw_cursor is not None and old_cursor is None:
            out.log("WARN", f"Stream {stream.name}: ignoring the unreadable saved cursor {raw_cursor!r}.")
        emit_all = self.full_refresh or (known is None and old_cursor is None)
        seen: dict[str, str] = {}
        max_cursor = old_cursor
        if stream.params_hook is not None and self._no_projects_left():
            return list(self.ctx.project_errors.values())
        base = self._base_params()
        # Between full lists (full_scan_hours), only what moved since the cursor.
        full_scan_at = parse_time(self.state.get("fullScanAt"))
        delta = not self.full_refresh and self._delta_due(stream, known is not None, old_cursor, full_scan_at)
        if delta:
            assert old_cursor is not None
            base = self._delta_params(stream, old_cursor)
        # Checkpoints keep the last complete full list's time (and, in a delta read, the old
        # cursor: the list is newest first): a sync stopped half-way must not be taken for
        # a complete one, or the next sync would read only a delta after it and skip the rest.
        self._full_scan_at = full_scan_at
        checkpoint_pages = 0

        async def read_list(path: dict[str, str], params: dict[str, Any]) -> None:
            nonlocal max_cursor, checkpoint_pages
            # A delta read stops at the first page without a change: no page read ahead.
            async with aclosing(self._pages(path, params, read_ahead=not delta)) as page_iter:
                async for page in page_iter:
                    batch = []
                    for item in self._records(page.items):
                        if item.get(stream.primary_key) is None:
                            continue
                        key = str(item[stream.primary_key])
                        digest = fingerprint(item, stream.volatile_fields)
                        cursor = parse_time(item.get(cursor_field)) if cursor_field else None
                        if cursor is not None and (max_cursor is None or cursor > max_cursor):
                            max_cursor = cursor
                        if seen.get(key, "").split("@")[0] == digest:
                            continue  # the same record twice in one read (a page boundary shift)
                        if emit_all:
                            changed = True
                        elif known is not None:
                            changed = known.get(key, "").split("@")[0] != digest
                        else:
                            # First sync after the Airbyte connector's state: only what is newer.
                            changed = cursor is None or old_cursor is None or cursor > old_cursor
                        if stream.retention_bound and cursor is not None:
                            digest = f"{digest}@{int(cursor.timestamp() // 86400)}"
                        seen[key] = digest
                        if changed:
                            batch.append(item)
                    out.records(stream.name, batch)
                    if delta and not batch:
                        break  # newest first: a page without a change ends what moved
                    checkpoint_pages += 1
                    if self._checkpoint_due(checkpoint_pages, len(seen) + len(known or ())):
                        checkpoint_pages = 0
                        cursor_so_far = old_cursor if delta else max_cursor
                        out.state(stream.name, self._state(cursor_so_far, {**(known or {}), **seen}))

        lists = [(path, {**base, **variant}) for variant in stream.variants for path in self._partitions()]
        await self._each_partition([read_list(path, params) for path, params in lists], fatal=not stream.per_project)
        if self.failures or delta:
            # A failed partition keeps its old fingerprints: nothing of it was re-read; a delta
            # read re-read only what moved.
            final = {**(known or {}), **seen}
        else:
            final = seen
            if stream.tombstones and known is not None and not self.full_refresh:
                out.records(stream.name, self._tombstones(known, seen))
        if not delta and not self.failures:
            self._full_scan_at = self.ctx.now  # a complete full list
        out.state(stream.name, self._state(old_cursor if delta and self.failures else max_cursor, final))
        return self.failures

    def _tombstones(self, known: dict[str, str], seen: dict[str, str]) -> list[dict[str, Any]]:
        """Records gone from a complete read: deleted or merged upstream."""
        deleted_at = format_time(self.ctx.now)
        # A record last seen near the start of the window may simply have aged out of it.
        aged_out_before = (self.ctx.since + timedelta(days=1)).timestamp() // 86400
        gone = []
        for key, value in known.items():
            if key in seen:
                continue
            if self.stream.retention_bound:
                day = value.partition("@")[2]
                if not day.isdigit() or int(day) <= aged_out_before:
                    continue
            gone.append({self.stream.primary_key: key, DELETED_AT: deleted_at})
        return gone

    def _state(self, cursor: datetime | None, fingerprints: dict[str, str]) -> dict[str, Any]:
        state: dict[str, Any] = {"fingerprints": fingerprints}
        if cursor is not None and self.stream.cursor_field:
            state[self.stream.cursor_field] = format_time(cursor)
        if self.stream.delta_hook is not None and self._full_scan_at is not None:
            state["fullScanAt"] = format_time(self._full_scan_at)
        return state


class _WindowedReader(_StreamReader):
    """Reads immutable records in server-side time windows, per project."""

    async def run(self) -> list[SentrySourceError]:
        ctx, stream = self.ctx, self.stream
        cursor_field = stream.cursor_field
        assert cursor_field is not None
        raw_projects = self.state.get("projects")
        projects: dict[str, dict[str, Any]] = {}
        if isinstance(raw_projects, dict):
            projects = {k: dict(v) for k, v in raw_projects.items() if isinstance(v, dict)}
        elif raw_projects is not None:
            ctx.out.log("WARN", f"Stream {stream.name}: ignoring malformed per-project state.")
        # The Airbyte connector's state: one cursor for its one project (config `project`).
        single = len(ctx.config.projects) == 1
        legacy = parse_time(self.state.get(cursor_field)) if single and not projects else None
        if self.full_refresh:
            projects, legacy = {}, None
        self._projects = projects
        await self._each_partition([self._read_project(p, p["project"], legacy) for p in self._partitions()])
        ctx.out.state(stream.name, self._stream_state())
        return self.failures

    async def _read_project(self, path: dict[str, str], slug: str, legacy: datetime | None) -> None:
        ctx, stream = self.ctx, self.stream
        cursor_field = stream.cursor_field
        assert cursor_field is not None
        lookback = ctx.config.lookback_window
        pstate = self._projects.get(slug, {})
        windows = _saved_windows(pstate)
        if windows is None:
            ctx.out.log("WARN", f"Stream {stream.name}, project {slug}: ignoring a malformed saved window.")
            windows = []
        pstate = {k: v for k, v in pstate.items() if k not in ("window", "windows")}
        while True:
            resumed = bool(windows)
            if not windows:
                resume = parse_time(pstate.get(cursor_field))
                if resume is None and pstate.get(cursor_field) is not None:
                    ctx.out.log("WARN", f"Stream {stream.name}, project {slug}: unreadable saved cursor; reading all retained data.")
                if resume is None and legacy is not None:
                    resume = legacy - lookback
                if resume is not None and resume < ctx.retention_floor:
                    ctx.out.log(
                        "WARN",
                        f"Stream {stream.name}, project {slug}: the saved cursor {format_time(resume)} is older than "
                        f"Sentry's {ctx.config.retention_days}-day retention; events between it and "
                        f"{format_time(ctx.retention_floor)} were deleted by Sentry before this sync and cannot be read.",
                    )
                start = ctx.since if resume is None else max(ctx.since, resume)
                if start >= ctx.now:
                    return  # nothing new yet (or a cursor in the future)
                windows = [{"start": format_time(start), "end": format_time(ctx.now), "cursor": None}]
            end = max(t for t in (parse_time(w["end"]) for w in windows) if t is not None)
            await self._read_windows(path, slug, pstate, windows)
            # The next window starts a look-back before this one's end, for late arrivals.
            pstate = {cursor_field: format_time(end - lookback)}
            self._projects[slug] = pstate
            ctx.out.state(stream.name, self._stream_state())
            if not resumed:
                return
            windows = []  # resumed windows are done: continue with fresh ones up to now

    async def _read_windows(
        self, path: dict[str, str], slug: str, pstate: dict[str, Any], windows: list[dict[str, Any]]
    ) -> None:
        """Read the open time windows of one project concurrently, splitting them while the
        server has idle request slots. After every page the state holds every window: each open
        one's page cursor, the finished ones marked done, so a resumed sync reads neither twice
        and knows where the whole span ends; the project's cursor moves once all are done."""
        ctx, stream = self.ctx, self.stream
        cursor_field = stream.cursor_field
        assert cursor_field is not None
        endpoint = ctx.client.budget.endpoint(stream.route)
        # Oldest record read so far per open window (pages come newest first): what is left of
        # a window is its start up to there.
        oldest: dict[int, datetime] = {}
        tasks = _Tasks()

        def checkpoint(*, emit: bool = True) -> None:
            self._projects[slug] = {**pstate, "windows": [dict(w) for w in windows]}
            if emit:
                ctx.out.state(stream.name, self._stream_state())

        def finish(window: dict[str, Any]) -> None:
            """Mark ``window`` done, in the same step as its last records go out: a checkpoint
            another window takes meanwhile must not pair them with this one's old cursor."""
            oldest.pop(id(window), None)
            window["cursor"], window["done"] = None, True
            windows[:] = _merge_done(windows)  # the state keeps one entry per run of done windows
            # The last one done leaves the project's cursor to the caller, which emits it.
            checkpoint(emit=not all(w.get("done") for w in windows))

        def left(window: dict[str, Any]) -> timedelta:
            start = parse_time(window["start"])
            seen = oldest.get(id(window))
            return seen - start if seen is not None and start is not None else timedelta(0)

        def split_off(window: dict[str, Any], page_span: timedelta) -> dict[str, Any] | None:
            """The older half of ``window``'s unread range as a new window, when a request slot
            is idle and each half should hold a few pages (a page covered ``page_span``);
            ``window`` keeps the newer half. Its page cursor stays valid: offsets count from
            the newest event, and the newer half's list is the start of the wider one."""
            parallel = endpoint.concurrency  # known here: a page of this route has been answered
            open_windows = [w for w in windows if not w.get("done")]
            if len(open_windows) >= parallel or endpoint.in_flight >= parallel or len(windows) >= _MAX_WINDOWS:
                return None
            span = left(window)
            if span < 2 * max(_MIN_SPLIT_SPAN, _MIN_PAGES_PER_HALF * page_span):
                return None
            start = parse_time(window["start"])
            assert start is not None
            middle = (start + span / 2).replace(microsecond=0)  # Sentry's ranges: whole seconds
            older = {"start": window["start"], "end": format_time(middle), "cursor": None}
            window["start"] = older["end"]
            return older

        async def read_window(window: dict[str, Any]) -> None:
            # The requests read this dict each time: a split narrows the range from the next one.
            params = {**self._base_params(), "start": window["start"], "end": window["end"]}
            narrowed_to: datetime | None = None  # the page read ahead before a split asked for more
            async with aclosing(self._pages(path, params, cursor=window["cursor"])) as pages:
                async for page in pages:
                    items = page.items
                    if narrowed_to is not None:
                        items = [i for i in items if not _before(i, cursor_field, narrowed_to)]
                        narrowed_to = None
                    ctx.out.records(stream.name, self._records(items))
                    if not page.next_cursor:
                        finish(window)
                        break
                    window["cursor"] = page.next_cursor
                    spanned = _span_of_newest_first(page.items, cursor_field)
                    if spanned is not None:
                        oldest[id(window)] = spanned[0]
                    older = split_off(window, spanned[1]) if spanned is not None else None
                    if older is not None:
                        windows.append(older)
                        tasks.spawn(read_window(older))
                        params["start"] = window["start"]
                        narrowed_to = parse_time(window["start"])
                    checkpoint()
            if not window.get("done"):
                finish(window)

        for window in windows:
            if not window.get("done"):
                tasks.spawn(read_window(window))
        await tasks.wait()

    def _stream_state(self) -> dict[str, Any]:
        cursor_field = self.stream.cursor_field
        assert cursor_field is not None
        state: dict[str, Any] = {"projects": self._projects}
        cursors = [c for c in (parse_time(p.get(cursor_field)) for p in self._projects.values()) if c]
        if cursors:
            # The oldest per-project cursor, for tools that look for one top-level value.
            state[cursor_field] = format_time(min(cursors))
        return state


class _ChildReader(_StreamReader):
    """Reads the children of each parent record that changed since the last sync."""

    async def run(self) -> list[SentrySourceError]:
        ctx, stream, out = self.ctx, self.stream, self.ctx.out
        ref, parent = stream.parent, parent_of(stream)
        assert ref is not None and parent is not None, f"{stream.name} needs a parent stream"
        saved = self.state.get("parents")
        if saved is not None and not isinstance(saved, dict):
            out.log("WARN", f"Stream {stream.name}: ignoring malformed parent state; reading every parent's children.")
        known: dict[str, Any] = saved if isinstance(saved, dict) and not self.full_refresh else {}
        # A state holding only a cursor (a platform's "future state", or a hand-written one):
        # children older than it are taken as read.
        floor = None if self.full_refresh or saved is not None else parse_time(self.state.get(stream.cursor_field or ""))
        if parent.params_hook is not None and self._no_projects_left():
            return list(ctx.project_errors.values())
        # Between full lists of the parents (full_scan_hours), only the parents that moved since
        # the newest one seen, as the parent stream reads them: an issue with new events, a new
        # release. A parent's other changes (a deploy to an old release) wait for the full list.
        full_scan_at = parse_time(self.state.get("fullScanAt"))
        parent_cursor = parse_time(self.state.get("parentCursor"))
        delta = self._delta_due(parent, bool(known), parent_cursor, full_scan_at)
        current: dict[str, str] = {}
        done = 0
        base = self._base_params()
        changed: list[tuple[dict[str, Any], str, str | None]] = []
        newest = parent_cursor

        def consider(items: list[Any]) -> int:
            """Sort a page of parents into unchanged and changed; return how many changed."""
            nonlocal newest
            moved = 0
            for item in items:
                if not isinstance(item, dict) or item.get(parent.primary_key) is None:
                    continue
                key = str(item.get(parent.primary_key))
                token = self._token(item)
                previous = known.get(key)
                seen_at = parse_time(item.get(parent.cursor_field)) if parent.cursor_field else None
                if seen_at is not None and (newest is None or seen_at > newest):
                    newest = seen_at
                if previous is not None and str(previous).partition("|")[0] == token:
                    current[key] = previous
                else:
                    changed.append((item, token, previous))
                    moved += 1
            return moved

        parent_params = self._delta_params(parent, parent_cursor) if delta and parent_cursor else self._base_params(parent)
        for variant in parent.variants:
            for parent_path in self._partitions(parent, report=False):
                pages = self._pages(parent_path, {**parent_params, **variant}, stream=parent, read_ahead=not delta)
                async with aclosing(pages) as page_iter:
                    async for page in page_iter:
                        if not consider(page.items) and delta:
                            break  # newest first: a page without a change ends what moved

        def state(parents: dict[str, str], complete: bool) -> dict[str, Any]:
            value: dict[str, Any] = {"parents": parents}
            if parent.delta_hook is not None:
                # Checkpoints keep the last complete full list's time and the old cursor: a sync
                # stopped half-way must not be taken for a full list, nor skip what it never read.
                scan_at = ctx.now if complete and not delta else full_scan_at
                cursor = newest if complete else parent_cursor
                if scan_at is not None:
                    value["fullScanAt"] = format_time(scan_at)
                if cursor is not None:
                    value["parentCursor"] = format_time(cursor)
            return value

        async def read_parent(item: dict[str, Any], token: str, previous: str | None) -> None:
            nonlocal done
            key = str(item.get(parent.primary_key))
            previous_token, _, previous_newest = str(previous or "").partition("|")
            path = {"organization": ctx.config.organization}
            path.update({p: str(item.get(f)) for p, f in ref.path_params.items() if item.get(f) is not None})
            if len(path) <= len(ref.path_params):
                return  # the parent lacks the field its children are found by
            since = parse_time(previous_token if ref.since_field else previous_newest)
            if since is not None:
                since -= ctx.config.lookback_window
            if floor is not None and (since is None or floor > since):
                since = floor
            extra = {field: item.get(parent_field) for field, parent_field in ref.record_fields.items()}
            try:
                newest = await self._read_children(path, base, since, extra)
            except StreamAccessError as exc:
                if "404" not in exc.message:
                    raise
                return  # the parent went away between the two lists: nothing to read
            if ref.stop_at_previous:
                newest = newest or parse_time(previous_newest)
                token = f"{token}|{format_time(newest)}" if newest else token
            # Only now is this parent's token saved: a checkpoint never covers children in flight.
            current[key] = token
            done += 1
            if self._checkpoint_due(done, len(known) + len(current)):
                done = 0
                out.state(stream.name, state({**known, **current}, complete=False))

        # Parents' children are read concurrently (the rate budget paces them); one parent's
        # failure is reported while the others go on.
        await self._each_partition([read_parent(*entry) for entry in changed])
        # A delta listed only the parents that moved: the others keep what they had.
        keep_known = bool(self.failures) or delta
        out.state(stream.name, state({**known, **current} if keep_known else current, complete=not self.failures))
        return self.failures

    def _token(self, parent: dict[str, Any]) -> str:
        ref = self.stream.parent
        assert ref is not None
        if ref.since_field:
            value = parent.get(ref.since_field)
            return str(value) if value is not None else ""
        return fingerprint({f: parent.get(f) for f in ref.change_fields})

    async def _read_children(
        self, path: dict[str, str], base: dict[str, Any], since: datetime | None, extra: dict[str, Any]
    ) -> datetime | None:
        """Emit the children of one parent (those after ``since``); return the newest cursor read."""
        stream, ref = self.stream, self.stream.parent
        assert ref is not None
        params = dict(base)
        server_filter = since is not None and ref.since_param is not None
        if server_filter:
            assert ref.since_param is not None and since is not None
            if since >= self.ctx.now:
                return None  # a cursor in the future: nothing can be newer
            params[ref.since_param] = format_time(since)
            params["end"] = format_time(self.ctx.now)  # Sentry wants start and end together
        newest: datetime | None = None
        may_stop = since is not None and not server_filter and ref.stop_at_previous
        async with aclosing(self._pages(path, params, read_ahead=not may_stop)) as pages:
            async for page in pages:
                batch = []
                older = False
                for record in self._records(page.items):
                    created = parse_time(record.get(stream.cursor_field)) if stream.cursor_field else None
                    if created is not None and (newest is None or created > newest):
                        newest = created
                    if since is not None and not server_filter and created is not None and created < since:
                        if ref.stop_at_previous:
                            older = True  # newest first: everything after this was read before
                            break
                        continue
                    record.update(extra)
                    batch.append(record)
                self.ctx.out.records(stream.name, batch)
                if older:
                    break
        return newest


class _UsageReader(_StreamReader):
    """Daily usage outcomes (stats_v2), one row per day and group, last day re-read."""

    FIELDS = ("sum(quantity)", "sum(times_seen)")

    async def run(self) -> list[SentrySourceError]:
        ctx, stream = self.ctx, self.stream
        saved = None if self.full_refresh else parse_time(self.state.get("interval"))
        if self._no_projects_left():
            return list(ctx.project_errors.values())
        earliest = _next_midnight(ctx.since)  # whole days only, never beyond retention
        start = earliest if saved is None else max(earliest, _midnight(saved))
        if start >= ctx.now:
            ctx.out.state(stream.name, dict(self.state) if not self.full_refresh else {})
            return []
        params = {
            **self._base_params(),
            "field": list(self.FIELDS),
            "groupBy": ["outcome", "category", "reason", "project"],
            "interval": "1d",
            "start": format_time(start),
            "end": format_time(ctx.now),
        }
        body, _ = await ctx.client.get(stream.route, {"organization": ctx.config.organization}, params)
        rows = list(_usage_rows(body))
        ctx.out.records(stream.name, rows)
        days = [d for d in (parse_time(r["interval"]) for r in rows) if d is not None]
        # The next sync starts a day before the newest day read: today is partial, and
        # yesterday's outcomes may still be counted. The state names that first day.
        cursor = max(days) - timedelta(days=1) if days else saved
        ctx.out.state(stream.name, {"interval": format_time(cursor)} if cursor else {})
        return []


def _usage_rows(body: Any) -> Iterator[dict[str, Any]]:
    """Flatten Sentry's stats_v2 body into rows; zero rows are left out."""
    if not isinstance(body, dict):
        return
    intervals = body.get("intervals") or []
    for group in body.get("groups") or []:
        if not isinstance(group, dict):
            continue
        by = group.get("by") or {}
        series = group.get("series") or {}
        quantities = series.get("sum(quantity)") or []
        times_seen = series.get("sum(times_seen)") or []
        for i, interval in enumerate(intervals):
            quantity = quantities[i] if i < len(quantities) else 0
            seen = times_seen[i] if i < len(times_seen) else 0
            if not quantity and not seen:
                continue
            key = [interval, by.get("project"), by.get("category"), by.get("outcome"), by.get("reason")]
            yield {
                "id": "|".join("" if k is None else str(k) for k in key),
                "interval": interval,
                "project": by.get("project"),
                "category": by.get("category"),
                "outcome": by.get("outcome"),
                "reason": by.get("reason"),
                "quantity": quantity,
                "times_seen": seen,
            }


def _midnight(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def _next_midnight(value: datetime) -> datetime:
    day = _midnight(value)
    return day if day == value else day + timedelta(days=1)


READERS: dict[str, type[_StreamReader]] = {
    "windowed": _WindowedReader,
    "snapshot": _SnapshotReader,
    "child": _ChildReader,
    "usage": _UsageReader,
}


class _Tasks:
    """Tasks run concurrently, more spawned while they run; when one fails, the others are
    cancelled and its error raised."""

    def __init__(self) -> None:
        self._running: set[asyncio.Future[Any]] = set()

    def spawn(self, coro: Any) -> None:
        self._running.add(asyncio.ensure_future(coro))

    async def wait(self) -> None:
        try:
            while self._running:
                done, _ = await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
                self._running -= done  # not the pending set: tasks spawned meanwhile are in ours
                for task in done:
                    task.result()
        except BaseException:
            for task in self._running:
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)
            raise


def _merge_done(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``windows`` oldest first, adjacent done windows merged into one (open ones untouched)."""
    merged: list[dict[str, Any]] = []
    for window in sorted(windows, key=lambda w: w["start"]):
        last = merged[-1] if merged else None
        if last is not None and last.get("done") and window.get("done") and last["end"] == window["start"]:
            merged[-1] = {**last, "end": window["end"]}
        else:
            merged.append(window)
    return merged


def _before(item: Any, cursor_field: str, start: datetime) -> bool:
    """Whether ``item`` is older than ``start`` (then a window split off has it)."""
    at = parse_time(item.get(cursor_field)) if isinstance(item, dict) else None
    return at is not None and at < start


def _span_of_newest_first(items: list[Any], cursor_field: str) -> tuple[datetime, timedelta] | None:
    """A page's oldest time and the time it spans, when the page runs newest first (as Sentry
    lists events), else None: splitting a window's range is only sound for such a list."""
    if not items or not isinstance(items[0], dict) or not isinstance(items[-1], dict):
        return None
    newest, oldest = parse_time(items[0].get(cursor_field)), parse_time(items[-1].get(cursor_field))
    return (oldest, newest - oldest) if newest is not None and oldest is not None and oldest <= newest else None


def _saved_windows(pstate: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The windows of a project's state, open and done (``windows``, or the one ``window`` that
    earlier versions wrote); ``None`` when they are malformed."""
    raw = pstate.get("windows")
    if raw is None:
        raw = [] if pstate.get("window") is None else [pstate.get("window")]
    if not isinstance(raw, list):
        return None
    windows = [_window(w) for w in raw]
    if any(w is None for w in windows):
        return None
    return [w for w in windows if w is not None]


def _window(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    start, end, cursor = parse_time(value.get("start")), parse_time(value.get("end")), value.get("cursor")
    if start is None or end is None or start >= end or not (cursor is None or isinstance(cursor, str)):
        return None
    window: dict[str, Any] = {"start": format_time(start), "end": format_time(end), "cursor": cursor}
    if value.get("done") is True:
        window.update(cursor=None, done=True)
    return window


def _fingerprints(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return None
    return value
