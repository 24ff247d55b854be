"""The stream readers: how each kind of stream in the table is read, page by page.

One class per ``StreamDef.kind`` (windowed, snapshot, child, usage), on one base that knows
partitions (projects), paging and checkpoint pacing. A reader drives the requests and reports
what it saw to its state value (:mod:`source_sentry.state`), which decides what a checkpoint
holds; records and states go out through :class:`~source_sentry.protocol.Output`.
:mod:`source_sentry.read` decides which streams run and reports their outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .config import Config
from .errors import HTTPStatusError, PaginationError, SentrySourceError
from .http import PAGE_SIZE, Page, Route, SentryClient
from .protocol import Output
from .state import (
    ChildState,
    Entry,
    ParentEntry,
    ProjectEvents,
    SessionsState,
    SnapshotProgress,
    SnapshotState,
    TimelineState,
    UsageState,
    Window,
    WindowedState,
    fingerprint,
)
from .streams import DELETED_AT, SAMPLED, ReadScope, StreamDef, parent_of
from .timeutil import format_time, parse_time

if TYPE_CHECKING:
    from .http.ratelimit import EndpointBudget

__all__ = ["READERS", "Project", "ReadContext", "cancel_all"]

# Snapshot streams checkpoint their fingerprints every page while the map is small, and
# less often when it is large, so the total state written stays proportional to the list.
_FINGERPRINTS_PER_CHECKPOINT_PAGE = 2000
_PARTITION_CONCURRENCY = 16
# Records missing from a full list whose deletion one sync confirms, one request each; the
# rest wait for the next full list (nothing is tombstoned unconfirmed).
_MAX_CONFIRMATIONS = 500
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
# Where Sentry's headers show the project events list as the narrow route (one request at a
# time, or its window already waited for), the older part of a window with at least this many
# pages left is read issue by issue: each issue's events list is a route of its own, with its
# own limits (sentry.io: the default, 40 a second, 25 at a time, against 60 a minute, one at a
# time). Only events older than _SETTLED: an issue's lastSeen, which picks the issues that have
# events in a range, is updated after its events are stored.
_MIN_PAGES_FOR_ISSUES = 5
_SETTLED = timedelta(hours=1)
_ISSUES = Route("organizations/{organization}/issues/", "event:read")
_ISSUE_EVENTS = Route("organizations/{organization}/issues/{issue_id}/events/", "event:read")
# How often the issue chains look again at their route's fill while none of them ends.
_FILL_RECHECK_S = 0.05
# Issues listed ahead of those being read, so that the longest chains of the next pages start
# first too (issues are listed newest first; older ones tend to have more events). Bounded: the
# state keeps the issues read since the oldest listed page with some unread.
_ISSUES_AHEAD = 500
# So a checkpoint lists up to about 600 issues read; one after every issue read wrote state bytes
# growing with issues x that (13.7 MB of STATE beside 36.8 MB of records for 10,700 events over
# 1,600 issues). A checkpoint once the issues read since the last reach 1/_CHECKPOINT_SHARE of
# those it lists keeps them a few ids per issue read; a resumed read repeats at most that share
# of the issues read (or _CHECKPOINT_EVERY_S of reading) beside those that were being read.
_CHECKPOINT_SHARE = 8
_CHECKPOINT_EVERY_S = 5.0


@dataclass(frozen=True)
class Project:
    id: str
    slug: str


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
        self.without_key = 0  # records skipped for want of a primary key

    async def run(self) -> list[SentrySourceError]:
        """Read the stream, emitting records and states; return per-partition failures."""
        raise NotImplementedError

    def _warn(self, message: str) -> None:
        self.ctx.out.log("WARN", f"Stream {self.stream.name}: {message}.")

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
        limit: int | None = None,
        raw: tuple[str, ...] | None = None,
    ) -> AsyncGenerator[Page, None]:
        stream = stream or self.stream
        if stream.page_param is None:
            return self._one_page(stream.endpoint, path, params)
        return self.ctx.client.pages(
            stream.endpoint, path, params, cursor=cursor, page_param=stream.page_param, read_ahead=read_ahead,
            items_key=stream.items_key, limit=limit, raw=raw,
        )

    async def _one_page(self, route: Route, path: Mapping[str, str], params: dict[str, Any]) -> AsyncGenerator[Page, None]:
        body, headers = await self.ctx.client.get(route, path, params)
        items = body if isinstance(body, list) else [body]
        yield Page(items=items, cursor=None, next_cursor=None, headers=headers)

    def _base_params(self, stream: StreamDef | None = None) -> dict[str, Any]:
        stream = stream or self.stream
        params = dict(stream.params)
        if stream.params_hook is not None:
            params.update(stream.params_hook(self.ctx.scope()))
        return params

    def _delta_due(self, stream: StreamDef, known: int | None, cursor: datetime | None, full_scan_at: datetime | None) -> bool:
        """Whether ``stream``'s list may be read as a delta (only what moved since ``cursor``): a
        list of more than full_list_max_records (``known``: how many its last full list saw),
        within full_scan_hours of that list. A smaller list is read whole every sync, so a change
        without a new event (a resolve, an assignment) arrives with the next sync."""
        interval = self.ctx.config.full_scan
        return (
            stream.delta_hook is not None
            and known is not None
            and known > self.ctx.config.full_list_max_records
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

    def _records(self, items: list[Any], stream: StreamDef | None = None) -> list[dict[str, Any]]:
        """The page's records: objects with a primary key (a record without one could not be
        told apart from others after deduplication: it is skipped and counted), transformed."""
        stream = stream or self.stream
        keys = stream.key_fields
        if len(keys) == 1:  # most streams: one check a record, without a generator
            key = keys[0]
            records = [i for i in items if isinstance(i, dict) and i.get(key) is not None]
        else:
            records = [i for i in items if isinstance(i, dict) and all(i.get(key) is not None for key in keys)]
        if len(records) < len(items) and stream is self.stream:
            self.without_key += len(items) - len(records)
        transform = stream.transform
        records = [transform(r) for r in records] if transform else records
        if stream.personal_fields and self.ctx.config.personal_data != "keep":
            records = [_personal(r, stream.personal_fields, self.ctx.config.personal_data) for r in records]
        return records

    def _raw_fields(self) -> tuple[str, ...] | None:
        """What to decode of this stream's items when its records go out as Sentry wrote them
        (see :func:`source_sentry.http.body.raw_items`): the key and cursor fields, or None
        when the connector changes its records (a transform, added or personal fields)."""
        stream = self.stream
        if stream.transform or stream.personal_fields or stream.extra_fields or stream.project_fields or stream.expand:
            return None
        return tuple(dict.fromkeys((*stream.key_fields, *((stream.cursor_field,) if stream.cursor_field else ()))))

    def _no_projects_left(self) -> bool:
        """Every named project failed: a project filter left empty would mean "all projects"."""
        return not self.ctx.all_projects and not self.ctx.projects

    async def _each_partition(self, reads: list[Awaitable[None]], *, fatal: bool = False) -> None:
        """Run partition reads concurrently (the rate budget paces them); a partition that
        fails is recorded and the others go on, unless ``fatal`` (an organization-wide list)."""

        async def guarded(read: Awaitable[None]) -> None:
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
    """Reads the whole list; emits new and changed records (all of them in full refresh) and a
    tombstone for each record that disappeared and that Sentry confirms gone."""

    async def run(self) -> list[SentrySourceError]:
        stream, out, ctx = self.stream, self.ctx.out, self.ctx
        saved = SnapshotState.load(self.state, stream.cursor_field, self._warn)
        if stream.params_hook is not None and self._no_projects_left():
            return list(ctx.project_errors.values())
        # Between full lists (full_scan_hours), only what moved since the cursor.
        known = len(saved.known) if saved.known is not None else None
        delta = not self.full_refresh and self._delta_due(stream, known, saved.cursor, saved.full_scan_at)
        params = self._delta_params(stream, saved.cursor) if delta and saved.cursor else self._base_params()
        progress = SnapshotProgress(
            saved, emit_all=self.full_refresh or (saved.known is None and saved.cursor is None), delta=delta
        )
        checkpoint_pages = 0

        async def read_list(path: dict[str, str], list_params: dict[str, Any]) -> None:
            nonlocal checkpoint_pages
            # A delta read stops at the first page without a change: no page read ahead.
            async with aclosing(self._pages(path, list_params, read_ahead=not delta)) as pages:
                async for page in pages:
                    records = self._records(self._with_project(page.items, path))
                    if stream.expand:
                        records = await self._expanded(records)
                    batch = [record for record in records if self._see(progress, record)]
                    out.records(stream.name, batch)
                    if delta and not batch:
                        break  # newest first: a page without a change ends what moved
                    checkpoint_pages += 1
                    if self._checkpoint_due(checkpoint_pages, progress.size()):
                        checkpoint_pages = 0
                        out.state(stream.name, progress.checkpoint(stream.cursor_field))

        lists = [(path, {**params, **variant}) for variant in stream.variants for path in self._partitions()]
        await self._each_partition([read_list(path, p) for path, p in lists], fatal=not stream.per_project)
        if delta and not self.failures and len(lists) == 1:
            await self._read_slice(progress, lists[0][0])
        failed = bool(self.failures)
        kept: dict[str, Entry] = {}
        if not failed and not delta and not self.full_refresh and stream.tombstones and saved.known is not None:
            kept = await self._tombstones(progress)
        out.state(stream.name, progress.complete(stream.cursor_field, ctx.now, failed=failed, kept=kept))
        return self.failures

    async def _read_slice(self, progress: SnapshotProgress, path: dict[str, str]) -> None:
        """Between full lists of a large list, read its next slice (full_list_max_records of it,
        from where the last slice ended) and emit what changed: a resolve or an assignment
        without a new event arrives within as many syncs as the list has slices, and at the
        latest with the next full list."""
        stream, out = self.stream, self.ctx.out
        budget = max(PAGE_SIZE, self.ctx.config.full_list_max_records)
        params = {**self._base_params(), **stream.variants[0]}
        resume = progress.saved.rotation
        try:
            async with aclosing(self._pages(path, params, cursor=resume, limit=budget)) as pages:
                async for page in pages:
                    out.records(stream.name, [r for r in self._records(page.items) if self._see(progress, r)])
                    progress.rotation = page.next_cursor  # None at the end: the head next time
        except HTTPStatusError as exc:
            if exc.status != 400 or resume is None:
                raise
            progress.rotation = None  # the server no longer takes the saved cursor: the head next time
            self._warn(f"the saved slice cursor was refused ({exc.message}); the next slice starts at the head")

    def _with_project(self, items: list[Any], path: Mapping[str, str]) -> list[Any]:
        """The items with the stream's ``project_fields`` added from the project of ``path``."""
        wanted = self.stream.project_fields
        project = next((p for p in self.ctx.projects if p.slug == path.get("project")), None)
        if not wanted or project is None:
            return items
        added = {name: getattr(project, attribute) for name, attribute in wanted.items()}
        return [{**item, **added} if isinstance(item, dict) else item for item in items]

    async def _expanded(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each record read from the stream's ``expand`` route, concurrently; a record whose
        route answers 404 (deleted since the list) is left out: the next full list tombstones it."""
        stream, ctx = self.stream, self.ctx
        assert stream.expand is not None
        route = Route(stream.expand, stream.scope)
        placeholder = stream.expand.rsplit("{", 1)[1].split("}", 1)[0]
        found: dict[int, dict[str, Any]] = {}

        async def expand(i: int, record: dict[str, Any]) -> None:
            path = {"organization": ctx.config.organization, placeholder: str(record[stream.primary_key])}
            try:
                body, _ = await ctx.client.get(route, path)
            except HTTPStatusError as exc:
                if exc.status != 404:
                    raise
                return
            if isinstance(body, dict) and body.get(stream.primary_key) is not None:
                found[i] = {**record, **body}

        tasks = _Tasks()
        for i, record in enumerate(records):
            tasks.spawn(expand(i, record))
        await tasks.wait()
        return self._records([found[i] for i in sorted(found)])

    def _see(self, progress: SnapshotProgress, record: dict[str, Any]) -> bool:
        """Report ``record`` to the read; whether to emit it."""
        stream = self.stream
        cursor = parse_time(record.get(stream.cursor_field)) if stream.cursor_field else None
        day = int(cursor.timestamp() // 86400) if stream.retention_bound and cursor is not None else None
        detail = stream.detail
        locator = record.get(detail.locator) if detail is not None and detail.locator else None
        entry = Entry(
            fingerprint(record, stream.volatile_fields),
            day,
            stream.partition_of(record) if stream.partition_of else None,
            str(locator) if locator is not None else None,
        )
        # A composite key (a user hash within its project) keeps one fingerprint per whole key.
        key = "|".join(str(record[k]) for k in stream.key_fields) if stream.key_extra else str(record[stream.primary_key])
        return progress.see(key, entry, cursor)

    async def _tombstones(self, progress: SnapshotProgress) -> dict[str, Entry]:
        """Emit a tombstone for each known record this complete list missed and Sentry confirms
        gone (its own route answers 404); return those still kept (they exist, or were not
        confirmed either way). A record of a project no longer read is never a deletion."""
        ctx, stream = self.ctx, self.stream
        scope = {p.id for p in ctx.projects}
        by_project = stream.partition_of is not None and stream.params_hook is not None

        def in_scope(entry: Entry) -> bool:
            return not by_project or entry.partition is None or entry.partition in scope

        # A record last seen near the start of the retention window may simply have aged out of it.
        aged_out = int((ctx.since + timedelta(days=1)).timestamp() // 86400) if stream.retention_bound else None
        missing = progress.missing(in_scope, aged_out)
        if not missing:
            return {}
        detail = stream.detail
        if detail is None:
            # Nothing can confirm a deletion: no tombstone, and the state forgets them (one that
            # was only missed while the list moved is emitted again when it is next listed).
            return {}
        checked = dict(list(missing.items())[:_MAX_CONFIRMATIONS])
        kept = {key: entry for key, entry in missing.items() if key not in checked}
        gone: list[str] = []
        route = Route(detail.route, stream.scope)

        async def confirm(key: str, entry: Entry) -> None:
            value = entry.locator if detail.locator else key
            if value is None:
                return  # saved by an earlier version without what finds it: drop it, unconfirmed
            path = {"organization": ctx.config.organization, detail.placeholder: value}
            try:
                body, _ = await ctx.client.get(route, path)
            except HTTPStatusError as exc:
                if exc.status in detail.gone:
                    gone.append(key)
                else:
                    kept[key] = entry  # forbidden or otherwise unknown: not a confirmed deletion
                return
            if detail.listing:
                kept[key] = entry  # the route lists under the record: the record exists
                return
            if not isinstance(body, dict) or str(body.get(stream.primary_key)) != key:
                gone.append(key)  # another record answers for it: merged into it (Sentry's GroupRedirect)
                return
            partition = stream.partition_of(body) if stream.partition_of else entry.partition
            if partition != entry.partition:
                entry = Entry(entry.digest, entry.day, partition, entry.locator)
            if in_scope(entry):
                kept[key] = entry  # it exists: it moved across a page boundary while we paged

        await self._each_partition([confirm(key, entry) for key, entry in checked.items()])
        if self.failures:
            # A confirmation that failed (a network error) must not cost the records their state.
            kept.update({key: entry for key, entry in checked.items() if key not in gone})
            self._warn(
                f"{len(self.failures)} possible deletions could not be confirmed ({self.failures[0].message}); "
                "they are checked again at the next full list"
            )
            self.failures = []
        deleted_at = format_time(ctx.now)
        ctx.out.records(stream.name, [{stream.primary_key: key, DELETED_AT: deleted_at} for key in gone])
        return kept


class _WindowedReader(_StreamReader):
    """Reads immutable records in server-side time windows, per project."""

    async def run(self) -> list[SentrySourceError]:
        ctx, stream = self.ctx, self.stream
        cursor_field = stream.cursor_field
        assert cursor_field is not None
        single = len(ctx.config.projects) == 1
        if self.full_refresh:
            self._state = WindowedState()
        else:
            self._state = WindowedState.load(self.state, cursor_field, single_project=single, warn=self._warn)
        self._project_ids = {p.slug: p.id for p in ctx.projects}
        self._issues_refused = False  # once refused (a token without event:read), never asked again
        await self._each_partition([self._read_project(p, p["project"]) for p in self._partitions()])
        ctx.out.state(stream.name, self._state.to_json(cursor_field))
        return self.failures

    async def _read_project(self, path: dict[str, str], slug: str) -> None:
        ctx, stream = self.ctx, self.stream
        assert stream.cursor_field is not None
        lookback = ctx.config.lookback_window
        project = self._state.projects.setdefault(slug, ProjectEvents())
        while True:
            resumed = bool(project.windows)
            if not resumed:
                resume = project.cursor
                if resume is None and self._state.legacy is not None:
                    resume = self._state.legacy - lookback
                if resume is not None and resume < ctx.retention_floor:
                    self._warn(
                        f"project {slug}: the saved cursor {format_time(resume)} is older than Sentry's "
                        f"{ctx.config.retention_days}-day retention; events between it and {format_time(ctx.retention_floor)} "
                        "were deleted by Sentry before this sync and cannot be read"
                    )
                start = ctx.since if resume is None else max(ctx.since, resume)
                if start >= ctx.now:
                    return  # nothing new yet (or a cursor in the future)
                project.windows = [Window(start, ctx.now)]
            await self._read_windows(path, project)
            project.close(lookback)  # the next span starts a look-back before this one's end, for late arrivals
            ctx.out.state(stream.name, self._state.to_json(stream.cursor_field))
            if not resumed:
                return
            # Resumed windows are done: continue with fresh ones up to now.

    async def _read_windows(self, path: dict[str, str], project: ProjectEvents) -> None:
        """Read the open time windows of one project concurrently, splitting them while the
        server has idle request slots. After every page the state holds every window: each open
        one's page cursor, the finished ones marked done, so a resumed sync reads neither twice
        and knows where the whole span ends; the project's cursor moves once all are done."""
        ctx, stream = self.ctx, self.stream
        cursor_field = stream.cursor_field
        assert cursor_field is not None
        endpoint = ctx.client.budget.endpoint(stream.route)
        raw = self._raw_fields()
        # Oldest record read so far per open window (pages come newest first): what is left of
        # a window is its start up to there.
        oldest: dict[int, datetime] = {}
        tasks = _Tasks()

        def checkpoint() -> None:
            ctx.out.state(stream.name, self._state.to_json(cursor_field))

        def finish(window: Window) -> None:
            """Mark ``window`` done, in the same step as its last records go out: a checkpoint
            another window takes meanwhile must not pair them with this one's old cursor."""
            oldest.pop(id(window), None)
            project.finish(window)
            if project.open_windows():
                checkpoint()  # the last one done leaves the project's cursor to the caller

        def hand_to_issues(window: Window, page_span: timedelta) -> Window | None:
            """The older part of ``window``'s unread range as a window read issue by issue, when
            the project's list is the narrow route and enough of it is left (see _SETTLED)."""
            if window.issues is not None or self._issues_refused or not endpoint.limited:
                return None
            if path.get("project") not in self._project_ids:
                return None
            if endpoint.concurrency > 1 and not endpoint.waits:
                return None
            seen = oldest.get(id(window))
            # Once the list has paged past the settled edge: what is older holds events then.
            if seen is None or seen > ctx.now - _SETTLED:
                return None
            edge = seen.replace(microsecond=0)
            if edge - window.start < _MIN_PAGES_FOR_ISSUES * max(page_span, timedelta(seconds=1)):
                return None
            older = project.split(window, edge)
            older.issues = ""
            return older

        async def read_by_issues(window: Window) -> bool:
            """Read ``window`` issue by issue; False when Sentry refuses that way (a token
            without event:read, a server without the query): the caller reads the project's list."""
            org = ctx.config.organization
            span = {"start": format_time(window.start), "end": format_time(window.end)}
            # Every status (Sentry's default query is is:unresolved); errors only, as the
            # project's events list holds (other issue categories' events live elsewhere).
            params = {"project": self._project_ids[path["project"]], **span, "query": "issue.category:error", "sort": "new"}
            chains = _IssueChains(window, ctx.client.budget.endpoint(_ISSUE_EVENTS.template), checkpoint)
            try:
                async with aclosing(ctx.client.pages(_ISSUES, {"organization": org}, params,
                                                     cursor=window.issues or None, page_param="limit")) as issues:
                    await chains.run(aiter(issues), lambda issue_id: read_issue(issue_id, span))
            except HTTPStatusError as exc:
                if exc.status not in (400, 403):
                    raise
                if not self._issues_refused:
                    self._warn(f"reading events issue by issue was refused ({exc.message}); reading each project's "
                               "events list instead")
                self._issues_refused = True
                window.issues, window.issues_done = None, []
                return False
            finish(window)
            return True

        async def read_issue(issue_id: str, span: dict[str, str]) -> None:
            """Emit one issue's events of ``span`` (the checkpoint after it counts it read: a
            resumed read repeats only the issues that were being read)."""
            issue_path = {"organization": ctx.config.organization, "issue_id": issue_id}
            try:
                async with aclosing(ctx.client.pages(_ISSUE_EVENTS, issue_path, {**stream.params, **span}, raw=raw)) as pages:
                    async for page in pages:
                        ctx.out.records(stream.name, self._records(page.items))
            except HTTPStatusError as exc:
                if exc.status != 404:
                    raise  # a 404: deleted since it was listed, and its events with it

        def split_off(window: Window, page_span: timedelta) -> Window | None:
            """The older half of ``window``'s unread range as a new window, when a request slot
            is idle and each half should hold a few pages (a page covered ``page_span``)."""
            parallel = endpoint.concurrency  # known here: a page of this route has been answered
            if len(project.open_windows()) >= parallel or endpoint.in_flight >= parallel or len(project.windows) >= _MAX_WINDOWS:
                return None
            seen = oldest.get(id(window))
            span = seen - window.start if seen is not None else timedelta(0)
            if span < 2 * max(_MIN_SPLIT_SPAN, _MIN_PAGES_PER_HALF * page_span):
                return None
            middle = (window.start + span / 2).replace(microsecond=0)  # Sentry's ranges: whole seconds
            return project.split(window, middle)

        async def read_window(window: Window) -> None:
            if window.issues is not None and await read_by_issues(window):
                return
            # The requests read this dict each time: a split narrows the range from the next one.
            params = {**self._base_params(), "start": format_time(window.start), "end": format_time(window.end)}
            narrowed_to: datetime | None = None  # the page read ahead before a split asked for more
            async with aclosing(self._pages(path, params, cursor=window.cursor, raw=raw)) as pages:
                async for page in pages:
                    items = page.items
                    if narrowed_to is not None:
                        items = [i for i in items if not _before(i, cursor_field, narrowed_to)]
                        narrowed_to = None
                    ctx.out.records(stream.name, self._records(items))
                    if not page.next_cursor:
                        finish(window)
                        break
                    window.cursor = page.next_cursor
                    spanned = _span_of_newest_first(page.items, cursor_field)
                    if spanned is not None:
                        oldest[id(window)] = spanned[0]
                    older = None
                    if spanned is not None:
                        older = hand_to_issues(window, spanned[1]) or split_off(window, spanned[1])
                    if older is not None:
                        tasks.spawn(read_window(older))
                        params["start"] = format_time(window.start)
                        narrowed_to = window.start
                    checkpoint()
            if not window.done:
                finish(window)

        for window in project.open_windows():
            tasks.spawn(read_window(window))
        await tasks.wait()


class _ChildReader(_StreamReader):
    """Reads the children of each parent record that changed since the last sync."""

    async def run(self) -> list[SentrySourceError]:
        ctx, stream, out = self.ctx, self.stream, self.ctx.out
        ref, parent = stream.parent, parent_of(stream)
        assert ref is not None and parent is not None, f"{stream.name} needs a parent stream"
        saved = ChildState.load(self.state, stream.cursor_field, self._warn)
        known = {} if self.full_refresh else saved.parents
        floor = None if self.full_refresh else saved.floor
        if parent.params_hook is not None and self._no_projects_left():
            return list(ctx.project_errors.values())
        # Between full lists of the parents (full_scan_hours), only the parents that moved since
        # the newest one seen, as the parent stream reads them: an issue with new events, a new
        # release. A parent's other changes (a deploy to an old release) wait for the full list.
        delta = self._delta_due(parent, len(known) if known else None, saved.parent_cursor, saved.full_scan_at)
        parent_params = (
            self._delta_params(parent, saved.parent_cursor) if delta and saved.parent_cursor else self._base_params(parent)
        )
        newest = saved.parent_cursor
        current: dict[str, ParentEntry] = {}
        changed: list[tuple[dict[str, Any], str, ParentEntry | None]] = []
        for variant in parent.variants:
            for parent_path in self._partitions(parent, report=False):
                pages = self._pages(parent_path, {**parent_params, **variant}, stream=parent, read_ahead=not delta)
                async with aclosing(pages) as page_iter:
                    async for page in page_iter:
                        moved = 0
                        for item in self._records(page.items, parent):
                            key, token = str(item[parent.primary_key]), self._token(item)
                            seen_at = parse_time(item.get(parent.cursor_field)) if parent.cursor_field else None
                            if seen_at is not None and (newest is None or seen_at > newest):
                                newest = seen_at
                            previous = known.get(key)
                            if previous is not None and previous.token == token:
                                current[key] = previous
                            else:
                                changed.append((item, token, previous))
                                moved += 1
                        if delta and not moved:
                            break  # newest first: a page without a change ends what moved

        def checkpoint(parents: dict[str, ParentEntry], complete: bool) -> dict[str, Any]:
            # A checkpoint keeps the last complete full list's time and the old cursor: a sync
            # stopped half-way must not be taken for a full list, nor skip what it never read.
            with_delta = parent.delta_hook is not None
            return saved.to_json(
                parents,
                full_scan_at=(ctx.now if complete and not delta else saved.full_scan_at) if with_delta else None,
                parent_cursor=(newest if complete else saved.parent_cursor) if with_delta else None,
            )

        done = 0

        async def read_parent(item: dict[str, Any], token: str, previous: ParentEntry | None) -> None:
            nonlocal done
            key = str(item[parent.primary_key])
            path = {"organization": ctx.config.organization}
            path.update({p: str(item[f]) for p, f in ref.path_params.items() if item.get(f) is not None})
            if len(path) <= len(ref.path_params):
                return  # the parent lacks the field its children are found by
            since = parse_time(previous.token) if previous is not None and ref.since_field else None
            if previous is not None and not ref.since_field:
                since = previous.newest
            if since is not None:
                since -= ctx.config.lookback_window
            if floor is not None and (since is None or floor > since):
                since = floor
            extra = {name: item.get(parent_field) for name, parent_field in ref.record_fields.items()}
            try:
                if ref.fan_out is not None:
                    newest_child = await self._read_fanned_out(path, since, extra)
                else:
                    newest_child = await self._read_children(path, since, extra)
            except HTTPStatusError as exc:
                if exc.status not in stream.ignored_statuses:
                    raise
                return  # the parent went away between the two lists: nothing to read
            entry = ParentEntry(token)
            if ref.stop_at_previous:
                entry = ParentEntry(token, newest_child or (previous.newest if previous else None))
            # Only now is this parent's entry saved: a checkpoint never covers children in flight.
            current[key] = entry
            done += 1
            if self._checkpoint_due(done, len(known) + len(current)):
                done = 0
                out.state(stream.name, checkpoint({**known, **current}, complete=False))

        # Parents' children are read concurrently (the rate budget paces them); one parent's
        # failure is reported while the others go on.
        await self._each_partition([read_parent(*entry) for entry in changed])
        # A delta listed only the parents that moved: the others keep what they had.
        keep_known = bool(self.failures) or delta
        out.state(stream.name, checkpoint({**known, **current} if keep_known else current, complete=not self.failures))
        return self.failures

    def _token(self, parent: dict[str, Any]) -> str:
        ref = self.stream.parent
        assert ref is not None
        if ref.since_field:
            value = parent.get(ref.since_field)
            return str(value) if value is not None else ""
        return fingerprint({f: parent.get(f) for f in ref.change_fields})

    async def _read_children(self, path: dict[str, str], since: datetime | None, extra: dict[str, Any]) -> datetime | None:
        """Emit the children of one parent (those after ``since``); return the newest cursor read."""
        stream, ref = self.stream, self.stream.parent
        assert ref is not None
        params = self._base_params()
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
                # The parent's fields first: they may be part of the child's key.
                for record in self._records([{**i, **extra} if isinstance(i, dict) else i for i in page.items]):
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


    async def _read_fanned_out(self, path: dict[str, str], since: datetime | None, extra: dict[str, Any]) -> datetime | None:
        """Emit the children of one parent once per key its ``fan_out`` route lists (the most
        frequent ``limit`` of them, warning about the rest); return the newest cursor read."""
        ref = self.stream.parent
        assert ref is not None and ref.fan_out is not None
        fan = ref.fan_out
        body, _ = await self.ctx.client.get(Route(fan.route, self.stream.scope), path)
        listed = body.get(fan.list_field) if isinstance(body, dict) else None
        items = [i for i in listed or [] if isinstance(i, dict) and i.get(fan.key_field) is not None]
        if fan.order_field is not None:
            order = fan.order_field

            def rank(item: dict[str, Any]) -> float:
                value = item.get(order)
                return float(value) if isinstance(value, (int, float)) else 0.0

            items.sort(key=rank, reverse=True)  # stable: Sentry's order among equals
        if len(items) > fan.limit:
            left = ", ".join(str(i[fan.key_field]) for i in items[fan.limit:][:10])
            self._warn(
                f"{'/'.join(path.values())} has {len(items)} {fan.list_field}; only the {fan.limit} most frequent are "
                f"read ({len(items) - fan.limit} left out: {left}{', ...' if len(items) - fan.limit > 10 else ''})"
            )
        newest: datetime | None = None
        for item in items[: fan.limit]:
            read = await self._read_children({**path, fan.placeholder: str(item[fan.key_field])}, since, extra)
            if read is not None and (newest is None or read > newest):
                newest = read
        return newest


class _UsageReader(_StreamReader):
    """Daily usage outcomes (stats_v2), one row per day and group, last day re-read."""

    async def run(self) -> list[SentrySourceError]:
        ctx, stream = self.ctx, self.stream
        saved = UsageState() if self.full_refresh else UsageState.load(self.state)
        if self._no_projects_left():
            return list(ctx.project_errors.values())
        earliest = _next_midnight(ctx.since)  # whole days only, never beyond retention
        start = earliest if saved.interval is None else max(earliest, _midnight(saved.interval))
        if start >= ctx.now:
            ctx.out.state(stream.name, saved.to_json())
            return []
        params = {**self._base_params(), "start": format_time(start), "end": format_time(ctx.now)}
        body, _ = await ctx.client.get(stream.endpoint, {"organization": ctx.config.organization}, params)
        rows = list(_usage_rows(body, params.get("field") or []))
        ctx.out.records(stream.name, rows)
        days = [d for d in (parse_time(r["interval"]) for r in rows) if d is not None]
        # The next sync starts a day before the newest day read: today is partial, and
        # yesterday's outcomes may still be counted. The state names that first day.
        ctx.out.state(stream.name, UsageState(max(days) - timedelta(days=1) if days else saved.interval).to_json())
        return []


# Sentry's sessions endpoint answers at most this many data points (intervals x groups): it
# keeps floor(10,000 / intervals) groups and drops the rest without saying so.
_SESSIONS_MAX_POINTS = 10_000
_RESOLUTIONS = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}
# Before the first answer tells how many groups a range holds, this many are assumed; each
# request then asks for as many intervals as keep half the cap free.
_SESSIONS_GROUPS_GUESS = 200


class _SessionsReader(_StreamReader):
    """Release health (``sessions``): one row per interval and group. Each sync reads from the
    last complete interval less a tail (sessions arrive late) to now; an answer that may have
    been cut by Sentry's data-point cap is asked again in halves (then per project)."""

    async def run(self) -> list[SentrySourceError]:
        ctx, stream, config = self.ctx, self.stream, self.ctx.config
        resolution = config.release_health_interval
        step = _RESOLUTIONS[resolution]
        saved = SessionsState() if self.full_refresh else SessionsState.load(self.state, self._warn)
        if saved.resolution and saved.resolution != resolution:
            self._warn(
                f"release_health_interval changed from {saved.resolution} to {resolution}: reading the whole "
                f"history again at {resolution} (rows of each resolution have their own ids; filter on resolution)"
            )
            saved = SessionsState()
        if self._no_projects_left():
            return list(ctx.project_errors.values())
        complete = _floor(ctx.now, step)  # where the last complete interval ends
        earliest = _ceil(ctx.since, step)  # whole intervals within retention only
        start = earliest
        if saved.interval is not None:
            start = max(earliest, _floor(saved.interval - config.release_health_tail, step))
        if start >= ctx.now:  # a saved interval in the future: nothing to read yet
            ctx.out.state(stream.name, saved.to_json())
            return []
        next_start = max(earliest, _floor(complete - config.release_health_tail, step))
        recent: dict[str, str] = {}
        async for rows in self._ranges(start, ctx.now, step, resolution):
            batch = []
            for row in rows:
                digest = fingerprint(row)
                at = parse_time(row["interval"])
                if at is not None and at >= next_start:
                    recent[row["id"]] = digest  # read again next time: emitted again only if it changed
                if saved.recent.get(row["id"]) != digest:
                    batch.append(row)
            ctx.out.records(stream.name, batch)
        ctx.out.state(stream.name, SessionsState(complete, resolution, recent).to_json())
        return []

    async def _ranges(
        self, start: datetime, end: datetime, step: timedelta, resolution: str
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """The rows of [start, end), one request's worth at a time, none of them cut."""
        ctx = self.ctx
        path = {"organization": ctx.config.organization}
        per_request = max(1, _SESSIONS_MAX_POINTS // (2 * _SESSIONS_GROUPS_GUESS))
        # (start, end, project id or None for the stream's own filter)
        pending: list[tuple[datetime, datetime, str | None]] = [(start, end, None)]
        while pending:
            a, b, project = pending.pop(0)
            if _intervals(a, b, step) > per_request:
                middle = a + per_request * step
                pending.insert(0, (middle, b, project))
                b = middle
            params = {**self._base_params(), "interval": resolution, "start": format_time(a), "end": format_time(b)}
            if project is not None:
                params["project"] = [project]
            body, _ = await ctx.client.get(self.stream.endpoint, path, params)
            intervals = body.get("intervals") if isinstance(body, dict) else None
            groups = body.get("groups") if isinstance(body, dict) else None
            if not isinstance(intervals, list) or not isinstance(groups, list):
                raise PaginationError(f"Sentry's answer to {self.stream.route} has no intervals and groups.")
            cap = _SESSIONS_MAX_POINTS // max(1, len(intervals))
            if len(groups) >= cap:
                count = _intervals(a, b, step)
                if count > 1:  # may be cut: ask again in halves
                    middle = a + (count // 2) * step
                    pending[0:0] = [(a, middle, project), (middle, b, project)]
                    per_request = max(1, count // 2)
                    continue
                if project is None and len(ctx.projects) > 1:
                    pending[0:0] = [(a, b, p.id) for p in ctx.projects]
                    continue
                self._warn(
                    f"Sentry's answer for {format_time(a)}{f' (project {project})' if project else ''} holds "
                    f"{len(groups)} groups, its cap for one interval: groups beyond it may be missing"
                )
            else:
                per_request = max(1, min(_SESSIONS_MAX_POINTS // max(1, 2 * len(groups)), 10 * per_request))
            yield list(_sessions_rows(body, resolution))


def _sessions_rows(body: dict[str, Any], resolution: str) -> Iterator[dict[str, Any]]:
    """Flatten a sessions answer into rows; intervals without sessions or users are left out."""
    for interval, by, (sessions, users) in _series_points(body, ("sum(session)", "count_unique(user)")):
        values = [by.get("project"), by.get("release"), by.get("environment"), by.get("session.status")]
        yield {
            "id": "|".join([resolution, str(interval), *("" if v is None else str(v) for v in values)]),
            "interval": interval,
            "resolution": resolution,
            "project": values[0],
            "release": values[1],
            "environment": values[2],
            "session_status": values[3],
            "sessions": sessions,
            "users": users,
        }


def _series_points(body: Any, fields: tuple[str, ...]) -> Iterator[tuple[Any, Mapping[str, Any], list[Any]]]:
    """(interval, group-by values, each field's value) of a time-series answer (``intervals``
    and ``groups`` of ``by`` and ``series``, as stats_v2 and sessions answer); points where every
    field is zero or missing are left out."""
    if not isinstance(body, dict):
        return
    intervals = body.get("intervals") or []
    for group in body.get("groups") or []:
        if not isinstance(group, dict):
            continue
        by = group.get("by") or {}
        series = group.get("series") or {}
        columns = [series.get(f) or [] for f in fields]
        for i, interval in enumerate(intervals):
            values = [column[i] if i < len(column) else 0 for column in columns]
            if any(values):
                yield interval, by, values


def _intervals(start: datetime, end: datetime, step: timedelta) -> int:
    return max(1, -(-(end - start) // step))


def _floor(value: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + ((value - epoch) // step) * step


def _ceil(value: datetime, step: timedelta) -> datetime:
    floor = _floor(value, step)
    return floor if floor == value else floor + step


# Explore serves at most this many rows of one query (offsets beyond are refused), and answers
# at full fidelity only for ranges relative to now within this many days: older windows, or
# explicit start/end ranges of spans, come back sampled.
_ROW_CAP = 10_000
_FULL_FIDELITY = timedelta(days=30)
_FIDELITY_MARGIN = timedelta(minutes=10)
_FIRST_WINDOW = timedelta(days=1)
_MAX_WINDOW = timedelta(days=7)
_MIN_WINDOW = timedelta(minutes=1)


class _TimelineReader(_StreamReader):
    """Explore datasets and replays: rows in time order without an id to page by. Each sync
    reads from the saved cursor to now less the ingestion lag, in windows oldest first; each
    window's rows are sorted by the cursor field, so a window that hits Sentry's row cap goes on
    from the second of its last row (rows of that second already emitted are skipped)."""

    async def run(self) -> list[SentrySourceError]:
        ctx, stream, config = self.ctx, self.stream, self.ctx.config
        field_name = stream.cursor_field
        assert field_name is not None
        saved = TimelineState() if self.full_refresh else TimelineState.load(self.state, field_name, self._warn)
        if self._no_projects_left():
            return list(ctx.project_errors.values())
        first = ctx.since
        if stream.dataset is not None:
            first = max(first, ctx.now - timedelta(days=config.explore_days))
        # Whole hours from the start and whole minutes to the live edge: two reads in a row
        # cover the same range.
        first = _ceil(first, timedelta(hours=1))
        cursor = max(first, saved.cursor) if saved.cursor is not None else first
        cursor = cursor.replace(microsecond=0)
        upper = _floor(ctx.now - config.ingestion_lag, timedelta(minutes=1))
        if stream.dataset is not None and cursor < ctx.now - _FULL_FIDELITY + _FIDELITY_MARGIN:
            self._warn(
                f"reading from {format_time(cursor)}, more than the {_FULL_FIDELITY.days} days Sentry keeps at full "
                "fidelity: Sentry may answer older windows from sampled data (their rows carry sampled = true)"
            )
        self._sampled_windows = 0
        span = _FIRST_WINDOW
        # No window straddles the edge of full fidelity: the part after it is not sampled.
        fidelity_edge = (ctx.now - _FULL_FIDELITY + 2 * _FIDELITY_MARGIN).replace(microsecond=0)
        if cursor >= upper:
            ctx.out.state(stream.name, TimelineState(saved.cursor or cursor).to_json(field_name))
        while cursor < upper:
            end = min(cursor + span, upper)
            if stream.dataset is not None and cursor < fidelity_edge < end:
                end = fidelity_edge
            try:
                rows, capped = await self._window(cursor, end)
            except HTTPStatusError as exc:
                if stream.dataset is None or not _unserved_dataset(exc, stream.dataset):
                    raise
                self._warn(
                    f"Sentry at {config.host} does not serve the Explore dataset {stream.dataset} (HTTP 400: "
                    f"{exc.detail}): nothing read; the stream reads it from {format_time(cursor)} once Sentry does"
                )
                return []
            cursor = end
            ctx.out.state(stream.name, TimelineState(cursor).to_json(field_name))
            if capped:
                span = max(_MIN_WINDOW, span / 4)
            elif rows < _ROW_CAP // 4:
                span = min(_MAX_WINDOW, span * 2)
        if self._sampled_windows:
            self._warn(
                f"Sentry answered {self._sampled_windows} windows from sampled data (meta.dataScanned = partial): "
                "their rows carry sampled = true, and rows Sentry left out of the sample were not read"
            )
        return []

    async def _window(self, start: datetime, end: datetime) -> tuple[int, bool]:
        """Emit the rows of [start, end); return how many were read and whether the row cap cut it."""
        ctx, stream = self.ctx, self.stream
        field_name = stream.cursor_field
        assert field_name is not None
        path = {"organization": ctx.config.organization}
        total, capped_once = 0, False
        skip: set[tuple[Any, ...]] = set()  # keys emitted in the second a continuation starts at
        a = start
        while True:
            read, capped, last = 0, False, None
            edge: set[tuple[Any, ...]] = set()
            sampled = False
            try:
                async with aclosing(self._pages(path, self._window_params(a, end), limit=_ROW_CAP)) as pages:
                    async for page in pages:
                        read += len(page.items)
                        sampled = sampled or (page.meta or {}).get("dataScanned") == "partial"
                        batch = []
                        for record in self._records(page.items):
                            at = parse_time(record.get(field_name))
                            if at is not None and not a <= at < end:
                                continue  # a replay that overlaps the window but ended outside it
                            key = tuple(record.get(k) for k in stream.key_fields)
                            if at is not None and at < a + timedelta(seconds=1) and key in skip:
                                continue
                            if at is not None:
                                if last is None or at.replace(microsecond=0) > last:
                                    last, edge = at.replace(microsecond=0), set()
                                if at.replace(microsecond=0) == last:
                                    edge.add(key)
                            if stream.dataset is not None:
                                record[SAMPLED] = (page.meta or {}).get("dataScanned") == "partial"
                            batch.append(record)
                        ctx.out.records(stream.name, batch)
                        if read >= _ROW_CAP and page.next_cursor:
                            capped = True
            except HTTPStatusError as exc:
                if exc.status != 400 or "offset" not in exc.detail.lower():
                    raise
                capped = True  # the server's cap is lower than ours: go on from the last row as well
            if sampled:
                self._sampled_windows += 1
            total += read
            if not capped:
                return total, capped_once
            capped_once = True
            if last is None or last <= a:
                self._warn(
                    f"more than {read} rows at {format_time(a)}, more than Sentry serves for one query: the rest "
                    "of that second cannot be read"
                )
                a, skip = a + timedelta(seconds=1), set()
            else:
                a, skip = last, edge
            ctx.out.state(stream.name, TimelineState(a).to_json(field_name))

    def _window_params(self, start: datetime, end: datetime) -> dict[str, Any]:
        stream, ctx = self.stream, self.ctx
        params = self._base_params()
        if stream.dataset is None:
            return {**params, "start": _whole_seconds(start), "end": _whole_seconds(end)}
        params["field"] = list(ctx.config.explore_fields.get(stream.dataset) or ())
        if start >= ctx.client.now() - _FULL_FIDELITY + _FIDELITY_MARGIN:
            # Relative ranges within 30 days are answered at full fidelity; the window goes in the query.
            params["statsPeriod"] = f"{_FULL_FIDELITY.days}d"
            params["query"] = f"timestamp:>={_whole_seconds(start)} timestamp:<{_whole_seconds(end)}"
        else:
            params["start"], params["end"] = _whole_seconds(start), _whole_seconds(end)
        return params


def _unserved_dataset(exc: HTTPStatusError, dataset: str) -> bool:
    """Whether ``exc`` is Sentry saying it serves no Explore ``dataset`` of that name (a server
    older than the dataset: ``dataset must be one of: ...`` without it)."""
    said, listed, options = exc.detail.partition("must be one of")
    return exc.status == 400 and bool(listed) and "dataset" in said and dataset not in re.split(r"[\s,:]+", options)


def _personal(record: dict[str, Any], fields: tuple[str, ...], mode: str) -> dict[str, Any]:
    """``record`` with its personal ``fields`` dropped (``mode`` "drop": null) or replaced by the
    SHA-256 hex digest of their text ("hash": unsalted, so equal values still match)."""
    out = dict(record)
    for name in fields:
        value = out.get(name)
        if value is None:
            continue
        out[name] = None if mode == "drop" else hashlib.sha256(str(value).encode()).hexdigest()
    return out


def _whole_seconds(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usage_rows(body: Any, fields: list[str]) -> Iterator[dict[str, Any]]:
    """Flatten Sentry's stats_v2 body into rows (``fields``: quantity, then times seen); zero
    rows are left out."""
    quantity_field, seen_field = [*fields, "", ""][:2]
    for interval, by, (quantity, seen) in _series_points(body, (quantity_field, seen_field)):
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
    "sessions": _SessionsReader,
    "timeline": _TimelineReader,
}


class _IssueChains:
    """The issues of one window read issue by issue, each issue's events a chain of pages (each
    page needs the previous one's cursor), the longest chains first.

    A route's window of requests (sentry.io: 40 a second) is spent by the chains running in it;
    with as many chains as the concurrency allows, each gets a turn or two of a window and a
    long chain runs on alone at the end, a page at a time. So the issues are started by their
    event count (the list's ``count``), most first, and no more run at once than the route's
    :attr:`~source_sentry.http.ratelimit.EndpointBudget.fill` needs to spend each window: a long
    chain then gets many pages of every window. The issue list is read beside the chains, ahead of
    them by up to ``_ISSUES_AHEAD`` issues waiting: the first chains start with the first page
    listed, the longest of the issues waiting first, and no page of the list waits for the last
    chain of the page before it.

    The window's state: ``issues`` the cursor of the oldest listed page with issues still
    unread, ``issues_done`` the issues read of that page and the pages after it; checkpointed
    after an issue's read once those read since the last checkpoint are an eighth of
    ``issues_done`` (every issue while it is short) or 5 s have passed."""

    def __init__(self, window: Window, budget: EndpointBudget, checkpoint: Callable[[], None]) -> None:
        self._window = window
        self._budget = budget
        self._checkpoint = checkpoint
        self._waiting: list[tuple[int, int, str]] = []  # heap: (-events, listed order, issue id)
        # Listed pages not all read: the cursor each was asked with, its issues, those unread.
        self._pages: list[tuple[str, set[str], set[str]]] = []
        self._after_last = window.issues or ""  # the cursor of the page after the last listed
        self._done = set(window.issues_done)  # read before a resume, or since the oldest page
        self._listed: set[str] = set()  # an issue on two pages (the list moved) is read once
        self._unsaved = 0  # issues read since the last checkpoint
        self._saved_at = time.monotonic()

    async def run(self, pages: AsyncIterator[Page], read: Callable[[str], Awaitable[None]]) -> None:
        running: dict[asyncio.Future[None], str] = {}
        listing: asyncio.Future[Page | None] | None = None  # the next page of the list, on its way
        more = True
        try:
            while True:
                fill = max(1, self._budget.fill)
                if more and listing is None and len(self._waiting) < max(fill, _ISSUES_AHEAD):
                    listing = asyncio.ensure_future(anext(pages, None))
                while self._waiting and len(running) < fill:
                    issue_id = heapq.heappop(self._waiting)[2]
                    running[asyncio.ensure_future(read(issue_id))] = issue_id
                if not running and listing is None:
                    break
                # Until a chain ends or a page is listed, or a while: the route's answers may
                # have changed its fill.
                waiting_on: set[asyncio.Future[Any]] = {*running, *([listing] if listing else [])}
                done, _ = await asyncio.wait(waiting_on, timeout=_FILL_RECHECK_S, return_when=asyncio.FIRST_COMPLETED)
                if listing is not None and listing in done:
                    page, listing = listing.result(), None
                    more = page is not None and bool(page.next_cursor)
                    if page is not None:
                        self._list(page)
                for task in done:
                    if task in running:
                        task.result()
                        self._read(running.pop(task))
        except BaseException:
            await cancel_all([*running, *([listing] if listing else [])])
            raise

    def _list(self, page: Page) -> None:
        on_page: set[str] = set()
        unread: set[str] = set()
        self._pages.append((page.cursor or "", on_page, unread))
        self._after_last = page.next_cursor or ""
        for issue in page.items:
            if not isinstance(issue, dict) or issue.get("id") is None:
                continue
            issue_id = str(issue["id"])
            on_page.add(issue_id)
            if issue_id in self._done or issue_id in self._listed:
                continue
            unread.add(issue_id)
            self._listed.add(issue_id)
            heapq.heappush(self._waiting, (-_int_or_zero(issue.get("count")), len(self._listed), issue_id))
        self._advance()

    def _read(self, issue_id: str) -> None:
        self._done.add(issue_id)
        for _, _, unread in self._pages:
            unread.discard(issue_id)
        self._advance()
        self._unsaved += 1
        now = time.monotonic()
        if self._unsaved * _CHECKPOINT_SHARE >= len(self._done) or now - self._saved_at >= _CHECKPOINT_EVERY_S:
            self._unsaved, self._saved_at = 0, now
            self._checkpoint()

    def _advance(self) -> None:
        """Drop the oldest listed pages all read (and their issues from the done ones)."""
        while self._pages and not self._pages[0][2]:
            self._done -= self._pages.pop(0)[1]
        window = self._window
        window.issues = self._pages[0][0] if self._pages else self._after_last
        window.issues_done = sorted(self._done)


def _int_or_zero(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


class _Tasks:
    """Tasks run concurrently, more spawned while they run; when one fails, the others are
    cancelled and its error raised."""

    def __init__(self) -> None:
        self._running: set[asyncio.Future[Any]] = set()

    def spawn(self, coro: Awaitable[Any]) -> None:
        self._running.add(asyncio.ensure_future(coro))

    async def wait(self) -> None:
        try:
            while self._running:
                done, _ = await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
                self._running -= done  # not the pending set: tasks spawned meanwhile are in ours
                for task in done:
                    task.result()
        except BaseException:
            await cancel_all(self._running)
            raise


async def cancel_all(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until each has ended (what they raise is dropped: the caller
    is raising its own error)."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


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
