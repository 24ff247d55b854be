"""The stream table: every stream the connector offers, declared as data.

A stream is a route (a path template under ``/api/0/``), the scope it needs, its primary
key and cursor, whether it fans out over projects or over the records of a parent stream,
and how it is read incrementally (``kind``):

- ``windowed``: immutable records with a server-side time filter (events). Each sync reads
  one time window per project, from the saved cursor less a look-back to now, page by page;
  the page cursor is checkpointed so an interrupted window resumes where it stopped.
- ``snapshot``: lists without a usable "updated since" filter (issues, projects, releases,
  teams, ...). Each sync reads the whole list and emits only records whose content changed
  since the last sync, told by a short fingerprint per record kept in the state; records
  that disappeared are emitted as tombstones (``_ab_cdc_deleted_at``).
- ``child``: records under each record of a parent list (deploys of a release, events of an
  issue, check-ins of a monitor). Each sync lists the parents and reads the children only of
  parents that changed since the last sync.
- ``usage``: the daily usage outcomes of ``stats_v2``, flattened into one row per day and
  group, re-reading the last complete day.
- ``sessions``: release health (``sessions``), one row per interval and group, re-reading a
  tail of recent intervals (sessions arrive late) and splitting any range whose answer may
  have been cut by Sentry's 10,000 data points.
- ``timeline``: time-ordered rows without ids to page by (Explore datasets, replays), read in
  time windows oldest first up to a hold-back from the live edge; a window cut by Sentry's row
  cap goes on from the last second read.

A stream also declares how a deletion is confirmed (``detail``: the item's own route, which
answers 404 once the record is gone), which statuses of its list mean "nothing to read"
(``ignored_statuses``: the children of a parent deleted between two lists), and what the
connector adds (fields, a transform). Everything else derives from this table: the catalog,
the schemas (``scripts/gen_schemas.py``), the scopes ``check`` probes, the docs' stream tables.

Mechanics live in :mod:`source_sentry.readers`; nothing here performs I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .http.route import Route
from .spec import EXPLORE_FIELDS

__all__ = [
    "ALL_ACCESSIBLE_PROJECTS",
    "CORE_STREAMS",
    "DELETED_AT",
    "ISSUE_TAG_KEYS_PER_ISSUE",
    "ORGANIZATION",
    "PROJECT",
    "PROJECTS",
    "PROJECT_USER_PERSONAL",
    "STREAMS",
    "Detail",
    "FanOut",
    "ParentRef",
    "ReadScope",
    "StreamDef",
    "parent_of",
    "stream_by_name",
]

# Airbyte's CDC column: destinations treat a record carrying it as a deletion.
DELETED_AT = "_ab_cdc_deleted_at"
# Sentry's project id for "every project the token can access" (ALL_ACCESS_PROJECTS).
ALL_ACCESSIBLE_PROJECTS = "-1"


@dataclass(frozen=True)
class ReadScope:
    """What a params hook may look at: the selected projects and the sync's time range."""

    project_ids: tuple[str, ...]
    all_projects: bool
    since_iso: str  # the oldest time the sync asks for (retention or start_date)
    stats_period: str | None  # e.g. "90d" when the range is exactly the retention window
    until_iso: str

    @property
    def project_param(self) -> list[str]:
        """The ``project`` values for an organization list that chooses its projects with Sentry's
        ``OrganizationEndpoint.get_projects``: the named projects' ids, or -1 when every project is
        in scope. Without ``project`` such a list serves only the projects of the token user's
        teams; -1 is "all projects I have access to" (src/sentry/api/bases/organization.py)."""
        return [ALL_ACCESSIBLE_PROJECTS] if self.all_projects else list(self.project_ids)


ParamsHook = Callable[[ReadScope], Mapping[str, Any]]
Transform = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ParentRef:
    """How a child stream hangs off the records of its parent stream."""

    stream: str
    path_params: Mapping[str, str]  # route placeholder -> parent field
    record_fields: Mapping[str, str]  # field added to each child record -> parent field
    # Children are read again only when these parent fields changed since the last sync...
    change_fields: tuple[str, ...] = ()
    # ...or, for time-ordered children, when this parent timestamp moved; children older than
    # its previous value (less the look-back) are then skipped.
    since_field: str | None = None
    since_param: str | None = None  # server-side filter for that, when the endpoint has one
    # Children come newest first with no time filter: remember the newest one read per parent
    # and stop paging at it (less the look-back) next time.
    stop_at_previous: bool = False
    # The children are listed once per key of each parent (an issue's tag keys), the keys read
    # from another route of the parent.
    fan_out: FanOut | None = None


@dataclass(frozen=True)
class FanOut:
    """Keys a child route is read once for, per parent: ``route`` (filled as the child route
    is) answers an object whose ``list_field`` holds items carrying the key in ``key_field``; it
    fills the child route's ``placeholder``. At most ``limit`` keys per parent are read (those
    ``order_field`` ranks highest); a parent with more gets a warning naming what was left out."""

    route: str
    list_field: str
    key_field: str
    placeholder: str
    limit: int
    order_field: str | None = None


@dataclass(frozen=True)
class Detail:
    """A record's own route, to confirm that a record missing from a full list is gone. Its
    last placeholder is filled from the record's key, or from ``locator`` when the route finds
    records by another field (a release by its version). Any status in ``gone`` confirms it."""

    route: str
    locator: str | None = None
    gone: tuple[int, ...] = (404,)
    # The route answers a list under the record (its commits), not the record: any answer
    # but ``gone`` means the record exists.
    listing: bool = False

    @property
    def placeholder(self) -> str:
        return self.route.rsplit("{", 1)[1].split("}", 1)[0]


@dataclass(frozen=True)
class StreamDef:
    name: str
    route: str
    scope: str
    cursor_field: str | None
    kind: Literal["windowed", "snapshot", "child", "usage", "sessions", "timeline"] = "snapshot"
    per_project: bool = False
    primary_key: str = "id"
    # Further fields of a composite primary key (span ids are unique only within their trace).
    key_extra: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    # Lists read once per entry, e.g. releases in both statuses (the default is "open" only).
    variants: tuple[Mapping[str, Any], ...] = ({},)
    page_param: str | None = "per_page"  # None: not paginated, one object or one list
    params_hook: ParamsHook | None = None
    parent: ParentRef | None = None
    # Fields left out of the change fingerprint: they move without the record changing.
    volatile_fields: tuple[str, ...] = ()
    # Emit a tombstone for a record that disappeared (snapshot streams).
    tombstones: bool = False
    # The list only holds records seen within retention: a record that ages out is not a
    # deletion. The cursor's day is kept beside the fingerprint to tell the two apart.
    retention_bound: bool = False
    transform: Transform | None = None
    # Between full lists (config full_scan_hours), the params of a cheap delta read of
    # what moved since the given time: newest first, stopping at the first page without a change.
    delta_hook: Callable[[ReadScope, str], Mapping[str, Any]] | None = None
    # Fields the connector adds to each record, with their JSON schemas.
    extra_fields: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    incremental: bool = True
    # How a record that disappeared from a full list is confirmed gone (tombstone streams).
    detail: Detail | None = None
    # Lists filtered by the configured projects: the project a record belongs to. A record of a
    # project no longer read (dropped from the config, or no longer visible) is never a deletion.
    partition_of: Callable[[Mapping[str, Any]], str | None] | None = None
    # Statuses of this stream's list that mean "nothing to read here", not a failure.
    ignored_statuses: tuple[int, ...] = ()
    # Sentry deletes these records after its retention period: a destination that overwrites
    # the stream's table loses the older ones.
    expires: bool = False
    # Schema generation: further OpenAPI routes merged into the record schema (events listed
    # with full=true carry the event detail's fields), or a row schema of the connector's own.
    schema_routes: tuple[str, ...] = ()
    row_schema: Mapping[str, Any] | None = None
    # A fact for the docs' stream tables that the fields above do not tell.
    note: str = ""
    # The list's records sit under this key of an object answer (``{"data": [...], "meta": ...}``).
    items_key: str | None = None
    # An Explore dataset (``timeline`` streams of organizations/{org}/events/): its name.
    dataset: str | None = None
    # Far larger than errors: ``sync`` reads it only when chosen (--streams, a catalog, or the
    # config's explore_datasets).
    opt_in: bool = False
    # Personal data of people outside the organization (end users' emails, names, IPs): kept,
    # hashed or dropped as the config's ``personal_data`` says.
    personal_fields: tuple[str, ...] = ()
    # Per-project streams whose records do not name their project: fields added to each record
    # from the project read (added field -> ``id`` or ``slug``).
    project_fields: Mapping[str, str] = field(default_factory=dict)
    # The list's items are summaries: each record is read from this route instead (its last
    # placeholder filled from the item's primary key), one request per record and sync.
    expand: str | None = None

    @property
    def endpoint(self) -> Route:
        """The list's route, with the scope it needs."""
        return Route(self.route, self.scope)

    @property
    def key_fields(self) -> tuple[str, ...]:
        """The primary key's fields."""
        return (self.primary_key, *self.key_extra)


_TIME = {"type": ["string", "null"], "format": "date-time"}
_DELETED_FIELD = {DELETED_AT: {**_TIME, "description": "Set when the record disappeared from Sentry (deleted or merged)."}}


def _issue_params(scope: ReadScope) -> Mapping[str, Any]:
    params: dict[str, Any] = {
        # An empty query means every status; without it Sentry applies is:unresolved.
        "query": "",
        # firstSeen never changes, so new issues only ever insert at the head while paging.
        "sort": "new",
        # No stats timeline: it shifts every hour and would look like a change.
        "groupStatsPeriod": "",
    }
    params.update(_project_filter(scope))
    if scope.stats_period:
        params["statsPeriod"] = scope.stats_period
    else:
        params["start"] = scope.since_iso
        params["end"] = scope.until_iso
    return params


def _issue_delta_params(scope: ReadScope, since_iso: str) -> Mapping[str, Any]:
    """Issues whose lastSeen moved since ``since_iso``: new issues and new occurrences."""
    params = dict(_issue_params(scope))
    params["query"] = f"lastSeen:>={since_iso}"
    params["sort"] = "date"
    return params


def _newest_first(scope: ReadScope, since_iso: str) -> Mapping[str, Any]:
    """Releases newest first (Sentry's default order): new ones lead the first page."""
    return {"sort": "date"}


def _project_filter(scope: ReadScope) -> Mapping[str, Any]:
    """The params hook of every organization list that chooses projects with ``get_projects``."""
    return {"project": scope.project_param}


def _without_dsn_secrets(key: dict[str, Any]) -> dict[str, Any]:
    """Client keys carry the DSN secret; it is not data anyone should copy to a warehouse."""
    key = dict(key)
    if "secret" in key:
        key["secret"] = None
    dsn = key.get("dsn")
    if isinstance(dsn, dict) and "secret" in dsn:
        key["dsn"] = {**dsn, "secret": None}
    return key


def _without_hook_secret(hook: dict[str, Any]) -> dict[str, Any]:
    """A service hook's secret signs its deliveries: dropped as DSN secrets are."""
    return {**hook, "secret": None} if "secret" in hook else hook


def _of_each_release(change_fields: tuple[str, ...]) -> dict[str, Any]:
    """The fields of a stream listed under each release that changed (``change_fields``)."""
    return {
        "kind": "child",
        # The release was deleted between its list and this request: nothing to read.
        "ignored_statuses": (404,),
        "parent": ParentRef(stream="releases", path_params={"version": "version"},
                            record_fields={"releaseVersion": "version"}, change_fields=change_fields),
        "extra_fields": {"releaseVersion": {"type": ["string", "null"]}},
    }


def _without_integration_config(integration: dict[str, Any]) -> dict[str, Any]:
    """An integration's configuration may hold the third party's settings and credentials: it
    is asked for with includeConfig=0 and dropped if sent anyway."""
    return {**integration, **{k: None for k in ("configData", "configOrganization") if k in integration}}


# Tag keys per issue whose values issue_tag_values reads (the most frequent first); an issue with
# more gets a warning naming how many keys were left out.
ISSUE_TAG_KEYS_PER_ISSUE = 100

# The fields of project_users that identify a person (config personal_data: keep, hash, drop).
# avatarUrl is a Gravatar URL made of the email's MD5; ``hash`` (the key) is Sentry's own MD5 of
# the identifier and is kept.
PROJECT_USER_PERSONAL = ("email", "username", "name", "ipAddress", "identifier", "tagValue", "avatarUrl")


def _project_of_issue(issue: Mapping[str, Any]) -> str | None:
    project = issue.get("project")
    pid = project.get("id") if isinstance(project, Mapping) else None
    return str(pid) if pid is not None else None


def _alerts_list(name: str, detail: str) -> StreamDef:
    """Monitors, detectors and workflows: organization lists filtered by project."""
    return StreamDef(
        name=name,
        route=f"organizations/{{organization}}/{name}/",
        scope="alerts:read",
        cursor_field="dateCreated",
        params_hook=_project_filter,
        tombstones=True,
        detail=Detail(f"organizations/{{organization}}/{name}/{{{detail}}}/"),
        extra_fields=_DELETED_FIELD,
    )


# The rows of usage_stats: stats_v2 answers one object of intervals and groups; the connector
# flattens it into one row per day and group (see readers).
USAGE_STATS_ROW: dict[str, Any] = {
    "id": {"type": ["string", "null"], "description": "Synthetic key: interval and group-by values."},
    "interval": {"type": ["string", "null"], "format": "date-time"},
    "category": {"type": ["string", "null"]},
    "outcome": {"type": ["string", "null"]},
    "reason": {"type": ["string", "null"]},
    "project": {"type": ["number", "null"], "description": "Project id."},
    "quantity": {"type": ["number", "null"], "description": "sum(quantity) in the interval."},
    "times_seen": {"type": ["number", "null"], "description": "sum(times_seen) in the interval."},
}


# The rows of release_health: sessions answers intervals and groups like stats_v2.
RELEASE_HEALTH_ROW: dict[str, Any] = {
    "id": {"type": ["string", "null"], "description": "Synthetic key: resolution, interval and group-by values."},
    "interval": {"type": ["string", "null"], "format": "date-time", "description": "Start of the interval."},
    "resolution": {"type": ["string", "null"], "description": "The interval's length: 1h or 1d."},
    "project": {"type": ["number", "null"], "description": "Project id."},
    "release": {"type": ["string", "null"]},
    "environment": {"type": ["string", "null"]},
    "session_status": {"type": ["string", "null"], "description": "healthy, errored, crashed or abnormal."},
    "sessions": {"type": ["number", "null"], "description": "sum(session) in the interval."},
    "users": {"type": ["number", "null"], "description": "count_unique(user) in the interval."},
}

_STRING = {"type": ["string", "null"]}
_NUMBER = {"type": ["number", "null"]}
# What Explore says of each field (meta.fields) -> its JSON schema; unlisted fields are strings.
_EXPLORE_TYPES: dict[str, Mapping[str, Any]] = {
    "timestamp": _TIME,
    "project.id": {**_NUMBER, "airbyte_type": "integer"},
    "span.duration": {**_NUMBER, "description": "Milliseconds."},
    "is_transaction": {"type": ["boolean", "null"]},
    "http_status_code": {**_NUMBER, "airbyte_type": "integer"},
    "check_duration_us": {**_NUMBER, "airbyte_type": "integer", "description": "Microseconds."},
    "value": _NUMBER,
}
SAMPLED = "sampled"


def _explore_row(dataset: str) -> dict[str, Any]:
    return {name: dict(_EXPLORE_TYPES.get(name, _STRING)) for name in EXPLORE_FIELDS[dataset]}


def _explore(dataset: str, name: str | None = None) -> StreamDef:
    """An Explore dataset read through organizations/{org}/events/ (see ``timeline``)."""
    return StreamDef(
        name=name or dataset,
        route="organizations/{organization}/events/",
        scope="event:read",
        cursor_field="timestamp",
        kind="timeline",
        key_extra=("trace",) if dataset == "spans" else (),
        params={"dataset": dataset, "sort": "timestamp"},
        params_hook=_project_filter,
        items_key="data",
        dataset=dataset,
        opt_in=True,
        expires=True,
        row_schema=_explore_row(dataset),
        extra_fields={SAMPLED: {"type": ["boolean", "null"], "description": (
            "True when Sentry answered this row's query from sampled data (meta.dataScanned = partial).")}},
        note="Explore dataset; opt-in",
    )


STREAMS: tuple[StreamDef, ...] = (
    # --- The four streams of Airbyte's Sentry connector, and its project_detail.
    StreamDef(
        name="events",
        route="projects/{organization}/{project}/events/",
        scope="project:read",
        cursor_field="dateCreated",
        kind="windowed",
        per_project=True,
        # full=true adds entries, contexts, tags, sdk, dateReceived, ... (the whole event).
        params={"full": "true"},
        expires=True,
        schema_routes=("projects/{organization}/{project}/events/{event_id}/",),
    ),
    StreamDef(
        name="issues",
        route="organizations/{organization}/issues/",
        scope="event:read",
        cursor_field="lastSeen",
        page_param="limit",
        params_hook=_issue_params,
        delta_hook=_issue_delta_params,
        volatile_fields=("stats", "lifetime", "filtered"),
        tombstones=True,
        retention_bound=True,
        # A merged-away issue's own route answers the issue it was merged into (another id).
        detail=Detail("organizations/{organization}/issues/{issue_id}/"),
        partition_of=_project_of_issue,
        expires=True,
        note="every status (Sentry's default query is `is:unresolved`)",
        extra_fields=_DELETED_FIELD,
    ),
    StreamDef(
        name="projects",
        route="organizations/{organization}/projects/",
        scope="org:read",
        cursor_field="dateCreated",
        tombstones=True,
        detail=Detail("projects/{organization}/{project}/"),
        extra_fields=_DELETED_FIELD,
    ),
    StreamDef(
        name="releases",
        route="organizations/{organization}/releases/",
        scope="project:releases",
        cursor_field="dateCreated",
        variants=({"status": "open"}, {"status": "archived"}),
        delta_hook=_newest_first,
        tombstones=True,
        detail=Detail("organizations/{organization}/releases/{version}/", locator="version"),
        extra_fields=_DELETED_FIELD,
    ),
    StreamDef(
        name="project_detail",
        route="projects/{organization}/{project}/",
        scope="project:read",
        cursor_field="dateCreated",
        per_project=True,
        page_param=None,
    ),
    # --- Organization-wide streams users ask for beyond those.
    StreamDef(
        name="teams",
        route="organizations/{organization}/teams/",
        scope="org:read",
        cursor_field="dateCreated",
        tombstones=True,
        detail=Detail("teams/{organization}/{team}/"),
        extra_fields=_DELETED_FIELD,
    ),
    StreamDef(
        name="members",
        route="organizations/{organization}/members/",
        scope="member:read",
        cursor_field="dateCreated",
        # lastActive/lastLogin of the embedded user move whenever someone uses Sentry.
        volatile_fields=("user",),
        note="pending invites included",
        tombstones=True,
        detail=Detail("organizations/{organization}/members/{member_id}/"),
        extra_fields=_DELETED_FIELD,
    ),
    StreamDef(
        name="environments",
        route="organizations/{organization}/environments/",
        scope="org:read",
        cursor_field=None,
        page_param=None,
        # Sentry lists the environments of the projects get_projects chooses.
        params_hook=_project_filter,
        incremental=False,
    ),
    StreamDef(
        name="release_deploys",
        route="organizations/{organization}/releases/{version}/deploys/",
        scope="project:releases",
        cursor_field="dateFinished",
        **_of_each_release(("deployCount", "lastDeploy")),
    ),
    StreamDef(
        name="release_commits",
        route="organizations/{organization}/releases/{version}/commits/",
        scope="project:releases",
        cursor_field="dateCreated",
        kind="child",
        # The parent was deleted between its list and this request: nothing to read.
        ignored_statuses=(404,),
        parent=ParentRef(
            stream="releases",
            path_params={"version": "version"},
            record_fields={"releaseVersion": "version"},
            change_fields=("commitCount", "lastCommit"),
        ),
        extra_fields={"releaseVersion": {"type": ["string", "null"]}},
    ),
    StreamDef(
        name="issue_events",
        route="organizations/{organization}/issues/{issue_id}/events/",
        scope="event:read",
        cursor_field="dateCreated",
        kind="child",
        # The parent was deleted between its list and this request: nothing to read.
        ignored_statuses=(404,),
        params={"full": "true"},
        parent=ParentRef(
            stream="issues",
            path_params={"issue_id": "id"},
            record_fields={"issueId": "id"},
            since_field="lastSeen",
            since_param="start",
        ),
        expires=True,
        extra_fields={"issueId": {"type": ["string", "null"]}},
    ),
    StreamDef(
        name="project_keys",
        route="projects/{organization}/{project}/keys/",
        scope="project:read",
        cursor_field="dateCreated",
        per_project=True,
        transform=_without_dsn_secrets,
        note="DSN secrets (`secret`, `dsn.secret`) are dropped (set to null)",
    ),
    StreamDef(
        name="user_feedback",
        route="projects/{organization}/{project}/user-feedback/",
        scope="project:read",
        cursor_field="dateCreated",
        per_project=True,
    ),
    _alerts_list("monitors", "monitor"),
    StreamDef(
        name="monitor_checkins",
        route="organizations/{organization}/monitors/{monitor}/checkins/",
        scope="alerts:read",
        cursor_field="dateCreated",
        kind="child",
        # The parent was deleted between its list and this request: nothing to read.
        ignored_statuses=(404,),
        parent=ParentRef(
            stream="monitors",
            path_params={"monitor": "slug"},
            record_fields={"monitorSlug": "slug"},
            # A check-in moves the monitor's environments' lastCheckIn and status.
            change_fields=("environments", "status"),
            stop_at_previous=True,
        ),
        extra_fields={"monitorSlug": {"type": ["string", "null"]}},
        expires=True,
    ),
    _alerts_list("detectors", "detector_id"),
    _alerts_list("workflows", "workflow_id"),
    StreamDef(
        name="usage_stats",
        route="organizations/{organization}/stats_v2/",
        scope="org:read",
        cursor_field="interval",
        kind="usage",
        page_param=None,
        params={
            "field": ["sum(quantity)", "sum(times_seen)"],
            "groupBy": ["outcome", "category", "reason", "project"],
            "interval": "1d",
        },
        params_hook=_project_filter,
        expires=True,
        row_schema=USAGE_STATS_ROW,
    ),
    # --- Beyond errors: release health, Explore datasets, session replays.
    StreamDef(
        name="release_health",
        route="organizations/{organization}/sessions/",
        scope="org:read",
        cursor_field="interval",
        kind="sessions",
        page_param=None,
        params={
            "field": ["sum(session)", "count_unique(user)"],
            "groupBy": ["project", "release", "environment", "session.status"],
            "includeTotals": "0",
        },
        params_hook=_project_filter,
        expires=True,
        row_schema=RELEASE_HEALTH_ROW,
        note="one row per interval (config release_health_interval) and group",
    ),
    _explore("spans"),
    _explore("logs"),
    _explore("uptime_results"),
    _explore("tracemetrics"),
    StreamDef(
        name="replays",
        route="organizations/{organization}/replays/",
        scope="org:read",
        cursor_field="finished_at",
        kind="timeline",
        params={"sort": "finished_at"},
        params_hook=_project_filter,
        items_key="data",
        expires=True,
        note="incremental on the replay's end",
    ),
    # --- The tables peers have (issue 21): issue hashes and tag values, project users, service
    # hooks, release files, repositories, integrations, dashboards, ownership rules.
    StreamDef(
        name="issue_hashes",
        route="organizations/{organization}/issues/{issue_id}/hashes/",
        scope="event:read",
        # Hashes carry no time: the issue's lastSeen when they were read stands for it.
        cursor_field="issueLastSeen",
        kind="child",
        # A hash is unique within its project only: the same code in two projects hashes alike.
        key_extra=("issueId",),
        ignored_statuses=(404,),
        # The latest event in its short form: the full one is issue_events' to carry.
        params={"full": "false"},
        parent=ParentRef(
            stream="issues",
            path_params={"issue_id": "id"},
            record_fields={"issueId": "id", "issueLastSeen": "lastSeen"},
            since_field="lastSeen",
        ),
        extra_fields={"issueId": {"type": ["string", "null"]},
                      "issueLastSeen": _TIME},
        note="all hashes of each issue whose `lastSeen` moved; `issueLastSeen` is the issue's `lastSeen` then",
    ),
    StreamDef(
        name="issue_tag_values",
        route="organizations/{organization}/issues/{issue_id}/tags/{key}/values/",
        scope="event:read",
        cursor_field="lastSeen",
        kind="child",
        primary_key="issueId",
        key_extra=("key", "value"),
        ignored_statuses=(404,),
        parent=ParentRef(
            stream="issues",
            path_params={"issue_id": "id"},
            record_fields={"issueId": "id"},
            since_field="lastSeen",
            fan_out=FanOut(
                route="organizations/{organization}/issues/{issue_id}/",
                list_field="tags",
                key_field="key",
                placeholder="key",
                limit=ISSUE_TAG_KEYS_PER_ISSUE,
                order_field="totalValues",
            ),
        ),
        expires=True,
        extra_fields={"issueId": {"type": ["string", "null"]}},
        note=(
            f"every value of each tag key (its count, first and last seen) of each issue whose `lastSeen` moved; "
            f"the keys from the issue's own route, at most {ISSUE_TAG_KEYS_PER_ISSUE} per issue (the most "
            "frequent; more are warned about)"
        ),
    ),
    StreamDef(
        name="project_users",
        route="projects/{organization}/{project}/users/",
        scope="project:read",
        cursor_field="dateCreated",
        per_project=True,
        primary_key="hash",
        # Sentry's user hash is unique within a project: the same user of two projects has one.
        key_extra=("projectId",),
        project_fields={"projectId": "id"},
        extra_fields={"projectId": {"type": ["string", "null"], "description": "The project the user was seen in."}},
        personal_fields=PROJECT_USER_PERSONAL,
        expires=True,
        note="personal data hashed by default (config `personal_data`)",
    ),
    StreamDef(
        name="service_hooks",
        route="projects/{organization}/{project}/hooks/",
        scope="project:read",
        cursor_field="dateCreated",
        per_project=True,
        transform=_without_hook_secret,
        note="the hook `secret` is dropped (set to null)",
    ),
    StreamDef(
        name="release_files",
        route="organizations/{organization}/releases/{version}/files/",
        scope="project:releases",
        cursor_field="dateCreated",
        # CI uploads a release's artifacts with its commits, before it finalizes or deploys it.
        **_of_each_release(("dateReleased", "lastCommit", "lastDeploy")),
        note="metadata only (name, size, sha1, headers), never the contents; a file uploaded to a release "
        "that changes nothing else of it (no commit, deploy or release date) arrives with the next full refresh",
    ),
    StreamDef(
        name="repositories",
        route="organizations/{organization}/repos/",
        scope="org:read",
        cursor_field="dateCreated",
        # Sentry lists visible repositories by default; "deleted" lists the others (hidden,
        # pending deletion): together the whole table, so a removal shows as a status change.
        variants=({"status": "active"}, {"status": "deleted"}),
        tombstones=True,
        # No GET of one repository: its commits answer 404 once it no longer exists.
        detail=Detail("organizations/{organization}/repos/{repo_id}/commits/", listing=True),
        extra_fields=_DELETED_FIELD,
        note="active and deleted (hidden) repositories",
    ),
    StreamDef(
        name="integrations",
        route="organizations/{organization}/integrations/",
        scope="org:read",
        # No timestamp in Sentry's answer: full refresh only, as environments.
        cursor_field=None,
        incremental=False,
        params={"includeConfig": "0"},
        transform=_without_integration_config,
        note="`configData` and `configOrganization` are dropped (set to null); an uninstalled integration "
        "leaves the table with the next overwrite",
    ),
    StreamDef(
        name="sentry_app_installations",
        route="organizations/{organization}/sentry-app-installations/",
        scope="org:read",
        cursor_field=None,  # no timestamp either: full refresh only
        incremental=False,
        primary_key="uuid",
        note="installed Sentry apps (integration platform); no tokens",
    ),
    StreamDef(
        name="dashboards",
        route="organizations/{organization}/dashboards/",
        scope="org:read",
        cursor_field="dateCreated",
        expand="organizations/{organization}/dashboards/{dashboard_id}/",
        schema_routes=("organizations/{organization}/dashboards/{dashboard_id}/",),
        tombstones=True,
        detail=Detail("organizations/{organization}/dashboards/{dashboard_id}/"),
        extra_fields=_DELETED_FIELD,
        note="each dashboard read from its own route: widgets and their queries as JSON",
    ),
    StreamDef(
        name="project_ownership",
        route="projects/{organization}/{project}/ownership/",
        scope="project:read",
        cursor_field="lastUpdated",
        per_project=True,
        page_param=None,
        primary_key="projectId",
        project_fields={"projectId": "id", "projectSlug": "slug"},
        extra_fields={"projectId": {"type": ["string", "null"]}, "projectSlug": {"type": ["string", "null"]}},
        note="one record per project: its ownership rules (`raw`, parsed `schema`)",
    ),
)

_BY_NAME = {s.name: s for s in STREAMS}

# Routes read outside the stream table: the organization (its region, the server's clock) and
# the project resolution (the named projects' details, or the list of every project).
ORGANIZATION = Route("organizations/{organization}/", "org:read")
PROJECT = _BY_NAME["project_detail"].endpoint
PROJECTS = _BY_NAME["projects"].endpoint


# The streams of Airbyte's Sentry connector (project_detail: its "projects" of one project): what
# ``check`` and ``sync`` require scopes for when the user chose no streams.
CORE_STREAMS = ("events", "issues", "projects", "releases", "project_detail")


def stream_by_name(name: str) -> StreamDef | None:
    return _BY_NAME.get(name)


def parent_of(stream: StreamDef) -> StreamDef | None:
    """The stream whose records ``stream`` reads children of, if it is a child stream."""
    return _BY_NAME.get(stream.parent.stream) if stream.parent else None
