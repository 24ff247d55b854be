"""The stream table: every stream the connector offers, declared as data.

A stream is a route (a path template under ``/api/0/``), the scope it needs, its primary
key and cursor, whether it fans out over projects, and how it is read incrementally:

- ``windowed``: immutable records with a server-side time filter (events). Each sync reads
  one time window per project, from the saved cursor less a look-back to now, page by page;
  the page cursor is checkpointed so an interrupted window resumes where it stopped.
- ``snapshot``: small or mutable lists without a usable "updated" filter (issues, projects,
  releases, ...). Each sync reads the whole list and emits only records whose content
  changed since the last sync, told by a short fingerprint per record kept in the state.

Mechanics live in :mod:`source_sentry.read`; nothing here performs I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["STREAMS", "StreamDef", "stream_by_name"]

ParamsHook = Callable[["ReadScope"], Mapping[str, Any]]


@dataclass(frozen=True)
class ReadScope:
    """What a params hook may look at: the selected projects and the sync's time range."""

    project_ids: tuple[str, ...]
    all_projects: bool
    since_iso: str | None  # the oldest time the sync asks for (retention or start_date)
    stats_period: str | None  # e.g. "90d" when the range is exactly the retention window
    until_iso: str


@dataclass(frozen=True)
class StreamDef:
    name: str
    route: str
    scope: str
    cursor_field: str
    kind: Literal["windowed", "snapshot"] = "snapshot"
    per_project: bool = False
    primary_key: str = "id"
    params: Mapping[str, Any] = field(default_factory=dict)
    # Lists read once per entry, e.g. releases in both statuses (the default is "open" only).
    variants: tuple[Mapping[str, Any], ...] = ({},)
    page_param: str | None = "per_page"  # None: not paginated, one object or one list
    params_hook: ParamsHook | None = None
    # Fields left out of the change fingerprint: they move without the record changing.
    volatile_fields: tuple[str, ...] = ()
    incremental: bool = True


def _issue_params(scope: ReadScope) -> Mapping[str, Any]:
    params: dict[str, Any] = {
        # An empty query means every status; without it Sentry applies is:unresolved.
        "query": "",
        # firstSeen never changes, so new issues only ever insert at the head while paging.
        "sort": "new",
        # No stats timeline: it shifts every hour and would look like a change.
        "groupStatsPeriod": "",
    }
    if not scope.all_projects:
        params["project"] = list(scope.project_ids)
    if scope.stats_period:
        params["statsPeriod"] = scope.stats_period
    else:
        params["start"] = scope.since_iso
        params["end"] = scope.until_iso
    return params


STREAMS: tuple[StreamDef, ...] = (
    StreamDef(
        name="events",
        route="projects/{organization}/{project}/events/",
        scope="event:read",
        cursor_field="dateCreated",
        kind="windowed",
        per_project=True,
        # full=true adds entries, contexts, tags, sdk, dateReceived, ... (the whole event).
        params={"full": "true"},
    ),
    StreamDef(
        name="issues",
        route="organizations/{organization}/issues/",
        scope="event:read",
        cursor_field="lastSeen",
        page_param="limit",
        params_hook=_issue_params,
        volatile_fields=("stats", "lifetime", "filtered"),
    ),
    StreamDef(
        name="projects",
        route="organizations/{organization}/projects/",
        scope="org:read",
        cursor_field="dateCreated",
    ),
    StreamDef(
        name="releases",
        route="organizations/{organization}/releases/",
        scope="project:releases",
        cursor_field="dateCreated",
        variants=({"status": "open"}, {"status": "archived"}),
    ),
    StreamDef(
        name="project_detail",
        route="projects/{organization}/{project}/",
        scope="project:read",
        cursor_field="dateCreated",
        per_project=True,
        page_param=None,
    ),
)

_BY_NAME = {s.name: s for s in STREAMS}


def stream_by_name(name: str) -> StreamDef | None:
    return _BY_NAME.get(name)
