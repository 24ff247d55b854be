"""Plain records the dataset keeps; response bodies are built from them in `shapes.py`."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .events import GeneratedEvents, IssueAgg

__all__ = [
    "AddedCheckin",
    "Commit",
    "Deploy",
    "Environment",
    "EventRef",
    "ExplicitEvent",
    "Feedback",
    "Issue",
    "Member",
    "Monitor",
    "Project",
    "ProjectKey",
    "Release",
    "Team",
]


@dataclass
class Team:
    id: str
    slug: str
    name: str
    date_created_us: int


@dataclass
class Member:
    id: str
    user_id: str | None  # None for a pending invite
    email: str
    name: str
    role: str
    date_created_us: int
    pending: bool = False
    teams: list[str] = field(default_factory=list)


@dataclass
class Issue:
    id: str
    project: int  # project index
    short_id: str
    title: str
    culprit: str
    exc_type: str
    exc_value: str
    filename: str
    function: str
    level: str
    platform: str
    logger: str | None
    status: str
    substatus: str | None
    priority: str
    envs: tuple[str, ...]
    linked: bool
    in_inbox: bool
    is_bookmarked: bool
    has_seen: bool
    num_comments: int
    agg: IssueAgg
    assigned_to: dict[str, Any] | None = None
    sources: list[int] = field(default_factory=list)  # base indices of generated events it owns
    status_changed_us: int | None = None
    deleted: bool = False
    merged_into: str | None = None
    first_release: str | None = None
    # What kind of issue (see catalog.ISSUE_KINDS): error (exceptions), default (messages) and csp
    # are error-category issues whose events the project events list serves; performance, cron,
    # feedback and uptime are issue-platform issues whose events only their issue lists.
    kind: str = "error"
    detail: dict[str, Any] = field(default_factory=dict)  # the kind's own values (message, query, ...)
    # Occurrences before the generated history (long expired): count, users, and the first one.
    hist_count: int = 0
    hist_users: int = 0
    hist_first_us: int | None = None

    @property
    def is_error(self) -> bool:
        """Error category: its events are in the project events list (the errors dataset)."""
        return self.kind in ("error", "default", "csp")

    @property
    def times_seen(self) -> int:
        """`count`: every occurrence ever (Sentry's times_seen), expired ones included."""
        return self.hist_count + self.agg.count

    @property
    def user_count(self) -> int:
        return self.hist_users + len(self.agg.users)

    @property
    def first_seen_us(self) -> int | None:
        """`firstSeen`: the first occurrence ever, before the generated history when it had one."""
        if self.hist_first_us is None or self.agg.first_us is None:
            return self.agg.first_us if self.hist_first_us is None else self.hist_first_us
        return min(self.hist_first_us, self.agg.first_us)


class ExplicitEvent(NamedTuple):
    """An event added through a mutation (stored, unlike generated events)."""

    seq: int
    event_id: str
    project: int
    base_issue: str  # id of the issue it was added to (merges redirect it)
    t_us: int
    recv_us: int
    h: int
    user: int


class EventRef(NamedTuple):
    """Everything needed to render one event body."""

    event_id: str
    project: int
    issue: Issue
    t_us: int
    recv_us: int
    h: int
    user: int


@dataclass
class Deploy:
    id: str
    environment: str
    date_started_us: int | None
    date_finished_us: int
    name: str | None
    url: str | None


@dataclass
class Commit:
    id: str
    message: str
    date_created_us: int
    author_name: str
    author_email: str


@dataclass
class Release:
    id: int
    version: str
    package: str | None
    date_created_us: int
    date_released_us: int | None
    projects: list[int]  # project indices
    ref: str | None
    url: str | None
    status: str = "open"
    owner: dict[str, Any] | None = None
    deploys: list[Deploy] = field(default_factory=list)
    commits: list[Commit] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # update_release() fields left as given


@dataclass
class Environment:
    id: str
    name: str
    hidden: bool = False
    projects: frozenset[int] | None = None  # indexes of the projects seen in it; None = every project


@dataclass
class ProjectKey:
    id: str
    project: int
    label: str
    public: str
    secret: str
    date_created_us: int
    active: bool = True


@dataclass
class Feedback:
    id: str
    project: int
    event_id: str
    issue_id: str | None
    name: str
    email: str
    comments: str
    date_created_us: int


@dataclass
class Monitor:
    id: str
    slug: str
    name: str
    project: int
    interval_minutes: int
    first_us: int  # expected time of the first check-in
    date_created_us: int
    environment: str = "production"
    added: list[AddedCheckin] = field(default_factory=list)  # add_checkin(), oldest first


@dataclass
class AddedCheckin:
    """A check-in added through a mutation (generated ones are a pure function of their index)."""

    id: str
    t_us: int
    status: str
    duration: int | None


@dataclass
class Project:
    idx: int
    id: str
    slug: str
    name: str
    platform: str
    date_created_us: int
    team: str | None  # team slug (None once its team is deleted)
    events: GeneratedEvents
    per_issue: list[array]
    base_owner: list[Issue | None]  # base issue index -> issue that owns those events now
    pending: list[tuple[int, int]]  # (dateReceived, i) of generated events not yet received
    explicit: list[ExplicitEvent] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # update_project() fields
    removed_cache: tuple[int, list[int]] | None = None
    deleted: bool = False
    live_next: int = 0  # live events (after the anchor) below this number were looked at
    live_late: list[tuple[int, int]] = field(default_factory=list)  # heap of (dateReceived, j) not yet received


# issueCategory and issueType of the non-error kinds (errors, messages and CSP reports: "error").
_CATEGORY = {"performance": "performance", "cron": "cron", "uptime": "uptime", "feedback": "feedback"}
_ISSUE_TYPE = {"cron": "monitor_check_in_failure", "uptime": "uptime_domain_failure", "feedback": "feedback"}


def issue_category(issue: Issue) -> str:
    """Sentry's ``issueCategory`` of an issue (``issue.category`` in a search)."""
    return _CATEGORY.get(issue.kind, "error")


def issue_type(issue: Issue) -> str:
    """Sentry's ``issueType`` of an issue (``issue.type`` in a search)."""
    return str(issue.detail.get("issue_type") or _ISSUE_TYPE.get(issue.kind, "error"))
