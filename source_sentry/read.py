"""What runs: the streams of a catalog, the projects they cover, the region, and ``check``.

``run_read`` is shared by ``source-sentry read`` (messages to stdout) and
``source-sentry sync`` (messages to DuckDB). Streams, and the projects or parents within a
stream, run concurrently on one event loop and one rate budget, which paces every request by
Sentry's headers; the pages of one list are read in order, and a STATE message follows every
page (or small group of pages), so a retried sync resumes close to where the last one stopped.
A STATE only ever covers records already emitted.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from . import protocol
from .catalog import SelectedStream, select_streams
from .config import Config, is_saas_host
from .errors import ConfigError, HTTPStatusError, SentrySourceError
from .http import HttpStats, SentryClient
from .protocol import Output
from .readers import READERS, Project, ReadContext, cancel_all
from .state import parse_state
from .streams import CORE_STREAMS, ORGANIZATION, PROJECT, PROJECTS, STREAMS, ReadScope, StreamDef, parent_of
from .timeutil import format_time

__all__ = ["ConnectionCheck", "Project", "ReadResult", "check_connection", "resolve_projects", "run_read"]

# Never ask for events right at the retention edge: they may be deleted while we page.
_RETENTION_MARGIN = timedelta(minutes=1)

Warn = Callable[[str], None]


@dataclass
class ReadResult:
    ok: bool = True
    records: dict[str, int] = field(default_factory=dict)
    failed_streams: list[str] = field(default_factory=list)


async def resolve_projects(client: SentryClient, config: Config) -> tuple[list[Project], dict[str, SentrySourceError]]:
    """The projects this sync covers: those named in the config, or every visible one.

    A named project that cannot be read is returned in the error map (its streams fail
    alone, with a message naming it: not found, forbidden, renamed); a bad token raises,
    since nothing can be read at all.
    """
    org = config.organization
    if config.projects:
        found: list[Project] = []
        errors: dict[str, SentrySourceError] = {}
        for slug in config.projects:
            try:
                body, _ = await client.get(PROJECT, {"organization": org, "project": slug})
            except HTTPStatusError as exc:
                if exc.status == 401:
                    raise
                errors[slug] = _project_error(exc, org, slug)
                continue
            found.append(Project(id=str(body.get("id")), slug=str(body.get("slug") or slug)))
        return found, errors
    projects: list[Project] = []
    async for page in client.pages(PROJECTS, {"organization": org}):
        for item in page.items:
            if isinstance(item, dict) and item.get("slug"):
                projects.append(Project(id=str(item.get("id")), slug=str(item["slug"])))
    return projects, {}


def _project_error(exc: HTTPStatusError, org: str, slug: str) -> SentrySourceError:
    if exc.moved_to:
        return exc  # its message names the old and the new slug
    return HTTPStatusError(
        f"Project '{slug}' of organization '{org}' cannot be read: {exc.message}",
        status=exc.status,
        path=exc.path,
        code=exc.code,
        detail=exc.detail,
        extra=exc.extra,
    )


async def regional_config(client: SentryClient, warn: Warn) -> Config:
    """The config pointed at the organization's regional API host, from ``links.regionUrl``
    (the same config when it stays where it is).

    Only on sentry.io (or with ``region: auto``), and only to the same host name or one of
    sentry.io's own hosts, so the token never goes anywhere the user did not configure.
    """
    config = client.config
    if config.region in ("us", "de") or (config.region == "" and not config.is_saas):
        return config
    try:
        body, _ = await client.get(ORGANIZATION, {"organization": config.organization})
    except HTTPStatusError as exc:
        if exc.status == 404:
            raise ConfigError(
                f"Organization '{config.organization}' was not found on {config.host}, or the token cannot "
                "see it. Check the organization slug (the part after /organizations/ in Sentry's URLs)."
            ) from None
        if exc.status == 401:
            raise
        warn(f"Cannot read organization '{config.organization}' to find its region ({exc.message}); using {config.host}.")
        return config
    links = body.get("links") if isinstance(body, dict) else None
    url = links.get("regionUrl") if isinstance(links, dict) else None
    if not isinstance(url, str) or not url:
        return config
    try:
        region, configured = urlsplit(url), urlsplit(config.base_url)
        readable = bool(region.hostname) and region.port != -1  # .port raises ValueError when malformed
    except ValueError:
        readable = False
    if not readable:
        warn(f"Ignoring an unreadable links.regionUrl {url!r}; using {config.host}.")
        return config
    netloc = region.netloc.rpartition("@")[2]  # never credentials in a URL the token goes to
    base = f"{region.scheme}://{netloc}{region.path.rstrip('/')}"
    if base == config.base_url:
        return config
    region_host = region.hostname or ""
    trusted_host = region_host == configured.hostname or (is_saas_host(region_host) and config.is_saas)
    downgrade = region.scheme != "https" and configured.scheme == "https"
    if not trusted_host or downgrade or region.scheme not in ("http", "https"):
        warn(f"Ignoring links.regionUrl {url}: it is not {config.host} or a sentry.io host; using {config.host}.")
        return config
    return replace(config, base_url=base, host=netloc)


async def _connect(config: Config, warn: Warn, stats: HttpStats | None = None) -> tuple[SentryClient, Config]:
    """An open client for the organization's host (its region, when discovered)."""
    client = await SentryClient(config, stats=stats).__aenter__()
    client.on_warning = warn
    try:
        regional = await regional_config(client, warn)
    except BaseException:
        await client.__aexit__(None, None, None)
        raise
    if regional is config:
        return client, config
    await client.__aexit__(None, None, None)
    # Another host: another connection pool and another rate-limit budget.
    regional_client = await SentryClient(regional, stats=stats).__aenter__()
    regional_client.on_warning = warn
    return regional_client, regional


@dataclass(frozen=True)
class ConnectionCheck:
    """What ``check`` found: ``ok``, the one message for the user, and the notes within it
    (scopes other streams lack, a region followed) that do not fail it."""

    ok: bool
    message: str
    notes: tuple[str, ...] = ()


async def check_connection(config: Config, streams: Iterable[str] | None = None) -> ConnectionCheck:
    """A few cheap calls that tell a user what to fix: host, token, organization, projects, and
    the scopes the ``streams`` need (default: Airbyte's Sentry streams; every other stream's
    missing scope is a note, without failing the check)."""
    # A check should answer in seconds: few retries.
    config = replace(config, max_retries=min(config.max_retries, 1))
    org = config.organization
    required = set(streams) if streams is not None else set(CORE_STREAMS)
    warnings: list[str] = []
    given = config
    try:
        client, config = await _connect(config, warnings.append)
        try:
            try:
                await client.get(ORGANIZATION, {"organization": org})
            except HTTPStatusError as exc:
                if exc.status == 404:
                    return ConnectionCheck(False, (
                        f"Organization '{org}' was not found on {config.host}, or the token cannot see it. "
                        "Check the organization slug (the part after /organizations/ in Sentry's URLs) and hostname."
                    ))
                if exc.status == 403:
                    return ConnectionCheck(
                        False, f"The token cannot read organization '{org}' on {config.host}: it needs the scope 'org:read'.")
                raise
            projects, errors = await resolve_projects(client, config)
            if errors:
                slug, error = next(iter(errors.items()))
                if isinstance(error, HTTPStatusError) and error.moved_to:
                    return ConnectionCheck(False, error.message)
                return ConnectionCheck(False, (
                    f"Project '{slug}' was not found in organization '{org}' on {config.host}, or the token "
                    "cannot see it. Check the project slug and the token's project access."
                ))
            lacking = await _lacking_scopes(client, config, projects)
        finally:
            await client.__aexit__(None, None, None)
    except SentrySourceError as exc:
        return ConnectionCheck(False, exc.message)
    needed = {scope: names for scope, names in lacking.items() if required & set(names)}
    if needed:
        lacks = "; ".join(f"the scope '{scope}' (needed by {', '.join(n for n in names if n in required)})"
                          for scope, names in sorted(needed.items()))
        return ConnectionCheck(False, f"The auth token lacks {lacks}. Add the scopes to the token, or deselect those streams.")
    names = ", ".join(p.slug for p in projects[:5]) + (", ..." if len(projects) > 5 else "")
    where = config.host
    if config.base_url != given.base_url:
        where += " (the organization's region, from links.regionUrl)"
    elif config.region in ("us", "de"):
        where += f" (region {config.region})"
    notes = list(warnings)
    others = {scope: names for scope, names in lacking.items() if scope not in needed}
    if others:
        notes.append(
            "The token cannot read "
            + "; ".join(f"{', '.join(names)} (needs '{scope}')" for scope, names in sorted(others.items()))
            + ": select those streams only after adding the scope."
        )
    note = f" Note: {' '.join(notes)}" if notes else ""
    connected = f"Connected to {where} as organization '{org}' ({len(projects)} projects: {names or 'none'})."
    return ConnectionCheck(True, connected + note, tuple(notes))


async def _lacking_scopes(client: SentryClient, config: Config, projects: list[Project]) -> dict[str, list[str]]:
    """The scopes the token lacks, each with every stream that needs it: one cheap request (one
    record) per scope, to the simplest stream that needs it."""
    now = client.now()
    scope = ReadScope(
        project_ids=tuple(p.id for p in projects),
        all_projects=not config.projects,
        since_iso=format_time(now - timedelta(days=1)),
        stats_period="24h",
        until_iso=format_time(now),
    )
    by_scope: dict[str, list[StreamDef]] = {}
    for stream in STREAMS:
        by_scope.setdefault(stream.scope, []).append(stream)
    lacking: dict[str, list[str]] = {}
    for needed, streams in by_scope.items():
        probe = min((s for s in streams if s.kind in ("snapshot", "windowed")), key=lambda s: s.per_project, default=None)
        if probe is None or (probe.per_project and not projects):
            continue
        path = {"organization": config.organization}
        if probe.per_project:
            path["project"] = projects[0].slug
        params = {**probe.params, **(probe.params_hook(scope) if probe.params_hook else {})}
        if probe.page_param:
            params[probe.page_param] = 1
        try:
            await client.get(probe.endpoint, path, params)
        except HTTPStatusError as exc:
            if exc.status != 403:
                raise
            lacking[needed] = [s.name for s in streams]
    return lacking


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
    out = Output(emit)
    warnings: list[str] = []
    try:
        selected = select_streams(configured_catalog, warnings)
    except ConfigError as exc:
        out.error(exc)
        result.ok = False
        return result
    for warning in warnings:
        out.log("WARN", warning)
    states = parse_state(raw_state, lambda message: out.log("WARN", message))
    for chosen in selected:
        out.status(chosen.stream.name, "STARTED")
    try:
        given = config
        client, config = await _connect(config, lambda message: out.log("WARN", message), stats)
        try:
            if config.host != given.host:
                out.log("INFO", f"Reading organization '{config.organization}' from its region's host {config.host}.")
            outcomes = await _read_streams(client, config, selected, states, out)
        finally:
            await client.__aexit__(None, None, None)
    except SentrySourceError as exc:
        # Nothing could be read (a bad token, an unreachable host): fail every stream.
        out.error(exc)
        for chosen in selected:
            out.status(chosen.stream.name, "INCOMPLETE")
        result.ok = False
        result.failed_streams = [c.stream.name for c in selected]
        return result
    for chosen, ok in zip(selected, outcomes, strict=True):
        if not ok:
            result.ok = False
            result.failed_streams.append(chosen.stream.name)
    result.records = dict(out.records_per_stream)
    return result


async def _read_streams(
    client: SentryClient, config: Config, selected: list[SelectedStream], states: Mapping[str, dict[str, Any]], out: Output
) -> list[bool]:
    streams = [c.stream for c in selected]
    needs_projects = any(_needs_projects(s) for s in streams)
    client.share(_readers_per_route(streams, resolves=needs_projects, named=bool(config.projects)))
    projects, project_errors = await resolve_projects(client, config) if needs_projects else ([], {})
    if not client.clock_known:
        # Time windows and cursors follow the server's clock: ask it once (this also
        # checks the organization before any stream starts).
        await client.get(ORGANIZATION, {"organization": config.organization})
    now = client.now()
    floor = now - timedelta(days=config.retention_days) + _RETENTION_MARGIN
    since = max(floor, config.start_date) if config.start_date else floor
    ctx = ReadContext(config, client, out, projects, project_errors, not config.projects, now, floor, since)
    tasks = [asyncio.ensure_future(_run_stream(ctx, c.stream, c.full_refresh, states.get(c.stream.name))) for c in selected]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        # What escapes a stream (its messages could not be written: the destination failed;
        # or we are cancelled) ends them all: none may go on reading once the client closes,
        # in a process that lives on (listen).
        await cancel_all(tasks)
        raise


def _readers_per_route(streams: list[StreamDef], *, resolves: bool, named: bool) -> Counter[str]:
    """How many readers of this sync GET each route: each stream its own, a child stream also
    its parent's list, and the project resolution (when it ``resolves``) each ``named``
    project's detail or else the organization's project list."""
    # Streams of one route with other fixed params (the Explore datasets) read other lists.
    lists = Counter((s.route, repr(sorted(s.params.items()))) for s in streams)
    readers: Counter[str] = Counter()
    for (route, _), count in lists.items():
        readers[route] = max(readers[route], count)
    for stream in streams:
        parent = parent_of(stream)
        if parent is not None:
            readers[parent.route] += 1
    if resolves:
        readers[PROJECT.template if named else PROJECTS.template] += 1
    return readers


def _needs_projects(stream: StreamDef) -> bool:
    parent = parent_of(stream)
    return bool(stream.per_project or stream.params_hook or (parent and _needs_projects(parent)))


async def _run_stream(ctx: ReadContext, stream: StreamDef, full_refresh: bool, state: dict[str, Any] | None) -> bool:
    """Read one stream to the end; report its failure without stopping the others."""
    reader = READERS[stream.kind](ctx, stream, full_refresh=full_refresh, state=state or {})
    try:
        failures = await reader.run()
    except Exception as exc:  # one stream's failure (or our bug) must not stop the others
        ctx.out.error(exc, stream.name)
        ctx.out.status(stream.name, "INCOMPLETE")
        return False
    finally:
        if reader.without_key:
            ctx.out.log(
                "WARN",
                f"Stream {stream.name}: skipped {reader.without_key} records without a primary key "
                f"({' or '.join(repr(k) for k in stream.key_fields)} missing or null): they could not be told "
                "apart after deduplication.",
            )
    if failures:
        for failure in failures:
            ctx.out.error(failure, stream.name)
        ctx.out.status(stream.name, "INCOMPLETE")
        return False
    ctx.out.status(stream.name, "COMPLETE")
    return True
