"""The reader: drives every selected stream through the client and emits protocol messages.

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
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx

from . import protocol
from .client import HttpStats, SentryClient, register_route_scope
from .config import Config, is_saas_host
from .errors import ConfigError, SentrySourceError, StreamAccessError
from .ratelimit import RateBudget
from .readers import READERS, Output, Project, ReadContext, ReadResult
from .state import parse_state
from .streams import STREAMS, StreamDef, parent_of, stream_by_name

for _stream in STREAMS:
    register_route_scope(_stream.route, _stream.scope)

__all__ = ["Project", "ReadResult", "check_connection", "resolve_projects", "run_read"]

PROJECT_ROUTE = "projects/{organization}/{project}/"
PROJECTS_ROUTE = "organizations/{organization}/projects/"
# Never ask for events right at the retention edge: they may be deleted while we page.
_RETENTION_MARGIN = timedelta(minutes=1)


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
                body, _ = await client.get(PROJECT_ROUTE, {"organization": org, "project": slug})
            except StreamAccessError as exc:
                errors[slug] = StreamAccessError(
                    f"Project '{slug}' of organization '{org}' cannot be read: {exc.message}",
                )
                continue
            found.append(Project(id=str(body.get("id")), slug=str(body.get("slug") or slug)))
        return found, errors
    projects: list[Project] = []
    async for page in client.pages(PROJECTS_ROUTE, {"organization": org}):
        for item in page.items:
            if isinstance(item, dict) and item.get("slug"):
                projects.append(Project(id=str(item.get("id")), slug=str(item["slug"])))
    return projects, {}


async def discover_region(client: SentryClient, warn: Any) -> str | None:
    """Point ``client`` at the organization's regional API host, from ``links.regionUrl``.

    Only on sentry.io (or with ``region: auto``), and only to the same host name or one of
    sentry.io's own hosts, so the token never goes anywhere the user did not configure.
    Returns the new host, or None when the configured one stays.
    """
    config = client.config
    if config.region in ("us", "de") or (config.region == "" and not config.is_saas):
        return None
    try:
        body, _ = await client.get("organizations/{organization}/", {"organization": config.organization})
    except StreamAccessError as exc:
        if "404" in exc.message:
            raise ConfigError(
                f"Organization '{config.organization}' was not found on {config.host}, or the token cannot "
                "see it. Check the organization slug (the part after /organizations/ in Sentry's URLs)."
            ) from None
        warn(f"Cannot read organization '{config.organization}' to find its region ({exc.message}); using {config.host}.")
        return None
    links = body.get("links") if isinstance(body, dict) else None
    url = links.get("regionUrl") if isinstance(links, dict) else None
    if not isinstance(url, str) or not url:
        return None
    try:
        region = httpx.URL(url)
        configured = httpx.URL(config.base_url)
    except (httpx.InvalidURL, ValueError):
        warn(f"Ignoring an unreadable links.regionUrl {url!r}; using {config.host}.")
        return None
    base = f"{region.scheme}://{region.netloc.decode()}{region.path.rstrip('/')}"
    if base == config.base_url:
        return None
    trusted_host = region.host == configured.host or (is_saas_host(region.host) and config.is_saas)
    downgrade = region.scheme != "https" and configured.scheme == "https"
    if not trusted_host or downgrade or region.scheme not in ("http", "https"):
        warn(f"Ignoring links.regionUrl {url}: it is not {config.host} or a sentry.io host; using {config.host}.")
        return None
    client.config = replace(config, base_url=base, host=region.netloc.decode())
    client.budget = RateBudget()  # another host: another rate-limit budget
    return client.config.host


async def check_connection(config: Config) -> tuple[bool, str]:
    """A few cheap calls that tell a user what to fix: token, organization, projects, scopes."""
    # A check should answer in seconds: few retries.
    config = replace(config, max_retries=min(config.max_retries, 1))
    org = config.organization
    warnings: list[str] = []
    try:
        async with SentryClient(config) as client:
            region = await discover_region(client, warnings.append)
            config = client.config
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
            try:
                # Issues (and issue events) need event:read; a cheap one-item query tells.
                await client.get(
                    "organizations/{organization}/issues/",
                    {"organization": org},
                    {"limit": 1, "query": "", "statsPeriod": "24h"},
                )
            except StreamAccessError:
                return False, f"The token cannot read issues of organization '{org}': it needs the scope 'event:read'."
            names = ", ".join(p.slug for p in projects[:5]) + (", ..." if len(projects) > 5 else "")
            where = config.host
            if region:
                where += " (the organization's region, from links.regionUrl)"
            elif config.region in ("us", "de"):
                where += f" (region {config.region})"
            note = f" Note: {' '.join(warnings)}" if warnings else ""
            return True, (
                f"Connected to {where} as organization '{org}' ({len(projects)} projects: {names or 'none'}).{note}"
            )
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
    out = Output(emit, result)
    warnings: list[str] = []
    try:
        selected = _selected_streams(configured_catalog, warnings)
    except ConfigError as exc:
        out.error(exc)
        result.ok = False
        return result
    for warning in warnings:
        out.log("WARN", warning)
    states = parse_state(raw_state, lambda message: out.log("WARN", message))
    for stream, _ in selected:
        out.status(stream.name, "STARTED")
    try:
        async with SentryClient(config, stats=stats) as client:
            host = await discover_region(client, lambda message: out.log("WARN", message))
            if host:
                out.log("INFO", f"Reading organization '{config.organization}' from its region's host {host}.")
            config = client.config
            needs_projects = any(_needs_projects(s) for s, _ in selected)
            client.share(_readers_per_route([s for s, _ in selected], resolves=needs_projects, named=bool(config.projects)))
            projects, project_errors = await resolve_projects(client, config) if needs_projects else ([], {})
            if not client.clock_known:
                # Time windows and cursors follow the server's clock: ask it once (this also
                # checks the organization before any stream starts).
                await client.get("organizations/{organization}/", {"organization": config.organization})
            now = client.now()
            floor = now - timedelta(days=config.retention_days) + _RETENTION_MARGIN
            since = max(floor, config.start_date) if config.start_date else floor
            ctx = ReadContext(config, client, out, projects, project_errors, not config.projects, now, floor, since)
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
    for (stream, _), ok in zip(selected, outcomes, strict=False):
        if not ok:
            result.ok = False
            result.failed_streams.append(stream.name)
    return result


def _readers_per_route(streams: list[StreamDef], *, resolves: bool, named: bool) -> Counter[str]:
    """How many readers of this sync GET each route: each stream its own, a child stream also
    its parent's list, and the project resolution (when it ``resolves``) each ``named``
    project's detail or else the organization's project list."""
    readers: Counter[str] = Counter(s.route for s in streams)
    for stream in streams:
        parent = parent_of(stream)
        if parent is not None:
            readers[parent.route] += 1
    if resolves:
        readers[PROJECT_ROUTE if named else PROJECTS_ROUTE] += 1
    return readers


def _needs_projects(stream: StreamDef) -> bool:
    parent = parent_of(stream)
    return bool(stream.per_project or stream.params_hook or (parent and _needs_projects(parent)))


def _selected_streams(catalog: Mapping[str, Any], warnings: list[str]) -> list[tuple[StreamDef, str]]:
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
            # As Airbyte's CDK does: read it in full (a catalog asking incremental for every stream,
            # like PyAirbyte's select_all_streams, must still work).
            warnings.append(f"Stream {name!r} supports only full_refresh: reading it in full.")
            mode = "full_refresh"
        selected.append((definition, mode))
    return selected


async def _run_stream(ctx: ReadContext, stream: StreamDef, mode: str, state: dict[str, Any] | None) -> bool:
    """Read one stream to the end; report its failure without stopping the others."""
    reader = READERS[stream.kind]
    try:
        failures = await reader(ctx, stream, full_refresh=mode == "full_refresh", state=state or {}).run()
    except Exception as exc:
        ctx.out.error(exc, stream.name)
        ctx.out.status(stream.name, "INCOMPLETE")
        return False
    if failures:
        for failure in failures:
            ctx.out.error(failure, stream.name)
        ctx.out.status(stream.name, "INCOMPLETE")
        return False
    ctx.out.status(stream.name, "COMPLETE")
    return True
