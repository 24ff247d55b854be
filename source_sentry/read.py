"""The reader: drives every selected stream through the client and emits protocol messages.

``run_read`` is shared by ``source-sentry read`` (messages to stdout) and
``source-sentry sync`` (messages to DuckDB). Streams run concurrently on one event loop and
one rate budget; within a stream, projects and pages are read in order, and a STATE message
follows every page, so a retried sync resumes close to where the last one stopped.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from . import protocol
from .client import HttpStats, Page, SentryClient
from .config import Config
from .errors import ConfigError, SentrySourceError, StreamAccessError, redact
from .state import fingerprint, format_time, parse_state, parse_time
from .streams import ReadScope, StreamDef, stream_by_name

__all__ = ["Project", "ReadResult", "check_connection", "resolve_projects", "run_read"]

# Never ask for events right at the retention edge: they may be deleted while we page.
_RETENTION_MARGIN = timedelta(minutes=1)
# Snapshot streams checkpoint their fingerprints every page while the map is small, and
# less often when it is large, so the total state written stays proportional to the list.
_FINGERPRINTS_PER_CHECKPOINT_PAGE = 2000


@dataclass(frozen=True)
class Project:
    id: str
    slug: str


@dataclass
class ReadResult:
    ok: bool = True
    records: dict[str, int] = field(default_factory=dict)
    failed_streams: list[str] = field(default_factory=list)


class _Output:
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
        emit = self._emit
        for item in items:
            emit(protocol.record_message(stream, item, emitted_at))
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
class _Context:
    config: Config
    client: SentryClient
    out: _Output
    projects: list[Project]
    project_errors: dict[str, SentrySourceError]
    all_projects: bool
    now: datetime
    retention_floor: datetime  # the oldest time Sentry still keeps
    since: datetime  # the oldest time this sync reads: retention or start_date

    def scope(self) -> ReadScope:
        exact_retention = self.since == self.retention_floor
        return ReadScope(
            project_ids=tuple(p.id for p in self.projects),
            all_projects=self.all_projects,
            since_iso=format_time(self.since),
            stats_period=f"{self.config.retention_days}d" if exact_retention else None,
            until_iso=format_time(self.now),
        )


async def resolve_projects(client: SentryClient, config: Config) -> tuple[list[Project], dict[str, SentrySourceError]]:
    """The projects this sync covers: those named in the config, or every visible one.

    A named project that cannot be read is returned in the error map (its streams fail
    alone); a bad token raises, since nothing can be read at all.
    """
    org = config.organization
    if config.projects:
        found: list[Project] = []
        errors: dict[str, SentrySourceError] = {}
        for slug in config.projects:
            try:
                body, _ = await client.get("projects/{organization}/{project}/", {"organization": org, "project": slug})
            except StreamAccessError as exc:
                errors[slug] = StreamAccessError(
                    f"Project '{slug}' of organization '{org}' cannot be read: {exc.message}",
                )
                continue
            found.append(Project(id=str(body.get("id")), slug=str(body.get("slug") or slug)))
        return found, errors
    projects: list[Project] = []
    async for page in client.pages("organizations/{organization}/projects/", {"organization": org}):
        for item in page.items:
            if isinstance(item, dict) and item.get("slug"):
                projects.append(Project(id=str(item.get("id")), slug=str(item["slug"])))
    return projects, {}


async def check_connection(config: Config) -> tuple[bool, str]:
    """A few cheap calls that tell a user what to fix: token, organization, projects, scopes."""
    # A check should answer in seconds: few retries.
    config = replace(config, max_retries=min(config.max_retries, 1))
    org = config.organization
    try:
        async with SentryClient(config) as client:
            try:
                await client.get("organizations/{organization}/", {"organization": org})
            except StreamAccessError as exc:
                if "404" in exc.message:
                    return False, (
                        f"Organization '{org}' was not found on {config.host}, or the token cannot see it. "
                        "Check the organization slug (the part after /organizations/ in Sentry's URLs) and hostname."
                    )
                return False, f"The token cannot read organization '{org}' on {config.host}: it needs the scope 'org:read'."
            projects, errors = await resolve_projects(client, config)
            if errors:
                slug = next(iter(errors))
                return False, (
                    f"Project '{slug}' was not found in organization '{org}' on {config.host}, or the token "
                    "cannot see it. Check the project slug and the token's project access."
                )
            if projects:
                try:
                    await client.get(
                        "projects/{organization}/{project}/events/",
                        {"organization": org, "project": projects[0].slug},
                        {"per_page": 1},
                    )
                except StreamAccessError:
                    return False, (
                        f"The token cannot read events of project '{projects[0].slug}': it needs the scope 'event:read'."
                    )
            names = ", ".join(p.slug for p in projects[:5]) + (", ..." if len(projects) > 5 else "")
            return True, f"Connected to {config.host} as organization '{org}' ({len(projects)} projects: {names or 'none'})."
    except SentrySourceError as exc:
        return False, exc.message


async def run_read(
    config: Config,
    configured_catalog: Mapping[str, Any],
    raw_state: Any,
    emit: protocol.Emit,
    *,
    stats: HttpStats | None = None,
) -> ReadResult:
    """Read the catalog's streams, emitting messages; never raises for a user-caused failure.

    Returns which streams failed; each failure has been emitted as an ERROR trace with its
    ``failure_type`` and the stream's status INCOMPLETE.
    """
    result = ReadResult()
    out = _Output(emit, result)
    try:
        selected = _selected_streams(configured_catalog)
    except ConfigError as exc:
        out.error(exc)
        result.ok = False
        return result
    states = parse_state(raw_state, lambda message: out.log("WARN", message))
    for stream, _ in selected:
        out.status(stream.name, "STARTED")
    try:
        async with SentryClient(config, stats=stats) as client:
            needs_projects = any(s.per_project or s.params_hook for s, _ in selected)
            projects, project_errors = await resolve_projects(client, config) if needs_projects else ([], {})
            now = client.now()
            floor = now - timedelta(days=config.retention_days) + _RETENTION_MARGIN
            since = max(floor, config.start_date) if config.start_date else floor
            ctx = _Context(config, client, out, projects, project_errors, not config.projects, now, floor, since)
            tasks = [_run_stream(ctx, stream, mode, states.get(stream.name)) for stream, mode in selected]
            outcomes = await asyncio.gather(*tasks)
    except SentrySourceError as exc:
        # Nothing could be read (a bad token, an unreachable host): fail every stream.
        out.error(exc)
        for stream, _ in selected:
            out.status(stream.name, "INCOMPLETE")
        result.ok = False
        result.failed_streams = [s.name for s, _ in selected]
        return result
    for (stream, _), ok in zip(selected, outcomes):
        if not ok:
            result.ok = False
            result.failed_streams.append(stream.name)
    return result


def _selected_streams(catalog: Mapping[str, Any]) -> list[tuple[StreamDef, str]]:
    entries = catalog.get("streams") if isinstance(catalog, Mapping) else None
    if not isinstance(entries, list):
        raise ConfigError('The configured catalog must be a JSON object with a "streams" list.')
    selected: list[tuple[StreamDef, str]] = []
    for entry in entries:
        stream = entry.get("stream") if isinstance(entry, dict) else None
        name = stream.get("name") if isinstance(stream, dict) else None
        definition = stream_by_name(name) if isinstance(name, str) else None
        if definition is None:
            raise ConfigError(
                f"The configured catalog names a stream this source does not have: {name!r}. "
                "Run discover and build the catalog from its streams.",
            )
        mode = entry.get("sync_mode", "full_refresh")
        if mode not in ("full_refresh", "incremental"):
            raise ConfigError(f"Stream {name!r}: sync_mode must be full_refresh or incremental, not {mode!r}.")
        if mode == "incremental" and not definition.incremental:
            raise ConfigError(f"Stream {name!r} supports only full_refresh.")
        selected.append((definition, mode))
    return selected


async def _run_stream(ctx: _Context, stream: StreamDef, mode: str, state: dict[str, Any] | None) -> bool:
    """Read one stream to the end; report its failure without stopping the others."""
    reader = _WindowedReader if stream.kind == "windowed" else _SnapshotReader
    try:
        failures = await reader(ctx, stream, full_refresh=mode == "full_refresh", state=state or {}).run()
    except SentrySourceError as exc:
        ctx.out.error(exc, stream.name)
        ctx.out.status(stream.name, "INCOMPLETE")
        return False
    except Exception as exc:  # noqa: BLE001 - our bug: report it as such, keep the others going
        ctx.out.error(exc, stream.name)
        ctx.out.status(stream.name, "INCOMPLETE")
        return False
    if failures:
        for exc in failures:
            ctx.out.error(exc, stream.name)
        ctx.out.status(stream.name, "INCOMPLETE")
        return False
    ctx.out.status(stream.name, "COMPLETE")
    return True


class _StreamReader:
    def __init__(self, ctx: _Context, stream: StreamDef, *, full_refresh: bool, state: dict[str, Any]) -> None:
        self.ctx = ctx
        self.stream = stream
        self.full_refresh = full_refresh
        self.state = state
        self.failures: list[SentrySourceError] = []

    def _partitions(self) -> list[dict[str, str]]:
        org = self.ctx.config.organization
        if not self.stream.per_project:
            return [{"organization": org}]
        for slug, error in self.ctx.project_errors.items():
            self.failures.append(error)
        return [{"organization": org, "project": p.slug} for p in self.ctx.projects]

    async def _pages(self, path: dict[str, str], params: dict[str, Any], cursor: str | None = None) -> AsyncIterator[Page]:
        stream = self.stream
        if stream.page_param is None:
            body, headers = await self.ctx.client.get(stream.route, path, params)
            items = body if isinstance(body, list) else [body]
            yield Page(items=items, cursor=None, next_cursor=None, headers=headers)
            return
        async for page in self.ctx.client.pages(stream.route, path, params, cursor=cursor, page_param=stream.page_param):
            yield page

    def _base_params(self) -> dict[str, Any]:
        params = dict(self.stream.params)
        if self.stream.params_hook is not None:
            params.update(self.stream.params_hook(self.ctx.scope()))
        return params


class _SnapshotReader(_StreamReader):
    """Reads the whole list; emits new and changed records (all of them in full refresh)."""

    async def run(self) -> list[SentrySourceError]:
        stream, out = self.stream, self.ctx.out
        cursor_field = stream.cursor_field
        known = _fingerprints(self.state.get("fingerprints"))
        if "fingerprints" in self.state and known is None:
            out.log("WARN", f"Stream {stream.name}: the saved fingerprints are malformed; every record is sent again.")
        old_cursor = parse_time(self.state.get(cursor_field))
        if self.state.get(cursor_field) is not None and old_cursor is None:
            out.log("WARN", f"Stream {stream.name}: ignoring the unreadable saved cursor {self.state.get(cursor_field)!r}.")
        emit_all = self.full_refresh or (known is None and old_cursor is None)
        seen: dict[str, str] = {}
        max_cursor = old_cursor
        pages_since_checkpoint = 0
        base = self._base_params()
        if stream.params_hook is not None and not self.ctx.all_projects and not self.ctx.projects:
            # Every named project failed: an empty project filter would mean "all projects".
            return list(self.ctx.project_errors.values())
        for variant in stream.variants:
            for path in self._partitions():
                try:
                    async for page in self._pages(path, {**base, **variant}):
                        batch = []
                        for item in page.items:
                            if not isinstance(item, dict) or item.get(stream.primary_key) is None:
                                continue
                            key = str(item[stream.primary_key])
                            digest = fingerprint(item, stream.volatile_fields)
                            cursor = parse_time(item.get(cursor_field))
                            if cursor is not None and (max_cursor is None or cursor > max_cursor):
                                max_cursor = cursor
                            if seen.get(key) == digest:
                                continue  # the same record twice in one read (a page boundary shift)
                            if emit_all:
                                changed = True
                            elif known is not None:
                                changed = known.get(key) != digest
                            else:
                                # First sync after the Airbyte connector's state: only what is newer.
                                changed = cursor is None or old_cursor is None or cursor > old_cursor
                            seen[key] = digest
                            if changed:
                                batch.append(item)
                        out.records(stream.name, batch)
                        pages_since_checkpoint += 1
                        if pages_since_checkpoint * _FINGERPRINTS_PER_CHECKPOINT_PAGE >= len(seen) + len(known or ()):
                            pages_since_checkpoint = 0
                            out.state(stream.name, self._state(max_cursor, {**(known or {}), **seen}))
                except StreamAccessError as exc:
                    if not stream.per_project:
                        raise
                    self.failures.append(exc)
        # A failed partition keeps its old fingerprints: nothing of it was re-read.
        final = {**(known or {}), **seen} if self.failures else seen
        out.state(stream.name, self._state(max_cursor, final))
        return self.failures

    def _state(self, cursor: datetime | None, fingerprints: dict[str, str]) -> dict[str, Any]:
        state: dict[str, Any] = {"fingerprints": fingerprints}
        if cursor is not None:
            state[self.stream.cursor_field] = format_time(cursor)
        return state


class _WindowedReader(_StreamReader):
    """Reads immutable records in server-side time windows, per project."""

    async def run(self) -> list[SentrySourceError]:
        ctx, stream = self.ctx, self.stream
        cursor_field = stream.cursor_field
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
        for path in self._partitions():
            slug = path["project"]
            try:
                await self._read_project(path, slug, legacy)
            except StreamAccessError as exc:
                self.failures.append(exc)
        ctx.out.state(stream.name, self._stream_state())
        return self.failures

    async def _read_project(self, path: dict[str, str], slug: str, legacy: datetime | None) -> None:
        ctx, stream = self.ctx, self.stream
        lookback = ctx.config.lookback_window
        pstate = self._projects.get(slug, {})
        window = _window(pstate.get("window"))
        if pstate.get("window") is not None and window is None:
            ctx.out.log("WARN", f"Stream {stream.name}, project {slug}: ignoring a malformed saved window.")
        while True:
            resumed = window is not None
            if window is None:
                resume = parse_time(pstate.get(stream.cursor_field))
                if resume is None and pstate.get(stream.cursor_field) is not None:
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
                window = {"start": format_time(start), "end": format_time(ctx.now), "cursor": None}
            params = {**self._base_params(), "start": window["start"], "end": window["end"]}
            async for page in self._pages(path, params, cursor=window["cursor"]):
                ctx.out.records(stream.name, [i for i in page.items if isinstance(i, dict)])
                if page.next_cursor:
                    window = {**window, "cursor": page.next_cursor}
                    self._projects[slug] = pstate = {**pstate, "window": window}
                    ctx.out.state(stream.name, self._stream_state())
            end = parse_time(window["end"])
            assert end is not None
            # The next window starts a look-back before this one's end, for late arrivals.
            pstate = {stream.cursor_field: format_time(end - lookback)}
            self._projects[slug] = pstate
            ctx.out.state(stream.name, self._stream_state())
            if not resumed:
                return
            window = None  # a resumed window is done: continue with a fresh one up to now

    def _stream_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"projects": self._projects}
        cursors = [c for c in (parse_time(p.get(self.stream.cursor_field)) for p in self._projects.values()) if c]
        if cursors:
            # The oldest per-project cursor, for tools that look for one top-level value.
            state[self.stream.cursor_field] = format_time(min(cursors))
        return state


def _window(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    start, end, cursor = parse_time(value.get("start")), parse_time(value.get("end")), value.get("cursor")
    if start is None or end is None or start >= end or not (cursor is None or isinstance(cursor, str)):
        return None
    return {"start": format_time(start), "end": format_time(end), "cursor": cursor}


def _fingerprints(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return None
    return value
