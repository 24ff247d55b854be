"""`Emulator`: the public face: build the dataset, serve it over HTTP, and drive it from tests."""

from __future__ import annotations

import os
import random
import ssl
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from .admin import Admin
from .api import Api
from .auth import ALL_READ_SCOPES, TokenStore
from .beyond import Beyond
from .clock import Clock, data_anchor_us
from .dataset import Dataset, Sizes
from .deprecation import DEFAULT_DATE, DeprecationTable
from .details import live_detectors, live_workflows
from .explore import DATASETS, FIELD_TYPES
from .faults import FaultTable
from .models import EventRef, Issue, Monitor, Project, Release
from .pagination import FULL_PAGE_SIZE, parse_cursor
from .rand import hex32, hkey, uuid4_like
from .ratelimit import RateLimiter, RateLimitSetting, resolve
from .server import App, EmulatorHTTPServer, RequestLog, RequestRecord
from .shapes import Shapes
from .timeutil import US, iso_us, parse_iso
from .webhooks import RESOURCES, SENTRY_ACTOR, Hook, WebhookSender, error_payload, metric_alert_payload

__all__ = ["Emulator"]


class Emulator:
    """A Sentry API emulator on loopback; deterministic from `seed`.

    Use as `with Emulator(...) as emu:` or call `start()` / `stop()`.
    """

    def __init__(
        self,
        seed: int = 1,
        organization: str = "acme",
        projects: int = 3,
        events_per_project: int = 300,
        issues_per_project: int = 40,
        releases: int = 25,
        days: float = 30,
        retention_days: float = 90,
        rate_limits: RateLimitSetting = "none",
        latency_ms: float = 0.0,
        jitter_ms: float = 0.0,
        tls: bool = False,
        admin: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        token_teams: Iterable[str] | None = None,
        start_time: datetime | None = None,
        request_log_size: int | None = 100_000,
        region_url: str | None = None,
        scope_rules: str = "sentry",
        teams: int | None = None,
        members: int | None = None,
        monitors: int | None = None,
        offset_paging: bool = False,
        full_page_size: int | None = FULL_PAGE_SIZE,
        live_events_per_hour: float = 0.0,
        sessions_max_points: int = 10_000,
        explore_rows_per_hour: Mapping[str, int] | None = None,
        explore_max_offset: int = 10_000,
        explore_full_fidelity_days: float = 30,
        replays_per_hour: int = 2,
        explore_datasets: Iterable[str] | None = None,
    ) -> None:
        # The clock runs from the real start (or from start_time); the history is anchored apart.
        self.clock = Clock(start_time)
        anchor = data_anchor_us(start_time, self.clock.time())
        sizes = Sizes(projects, events_per_project, issues_per_project, releases, days, retention_days,
                      teams=teams, members=members, monitors=monitors, live_per_hour=live_events_per_hour)
        self._ds = Dataset(seed=seed, organization=organization, sizes=sizes, anchor_us=anchor)
        self._tokens = TokenStore(seed, scope_rules)
        self.token = self._tokens.create(value=token, teams=token_teams)
        self._limits = resolve(rate_limits)
        self._limiter = RateLimiter(self._limits, self.clock.time) if self._limits else None
        self._faults = FaultTable()
        self._log = RequestLog(request_log_size)
        self._latency = (latency_ms, jitter_ms)
        self._offset_paging = offset_paging
        self.full_page_size = full_page_size
        self._tls, self._admin, self._host, self._port = tls, admin, host, port
        self.ca_cert_path: str | None = None
        self.base_url = f"{'https' if tls else 'http'}://{host}:{port}"
        self._shapes = Shapes(self._ds, self.base_url, region_url)
        self._beyond = Beyond.build(
            self._ds, sessions_max_points=sessions_max_points, explore_rows_per_hour=explore_rows_per_hour,
            explore_max_offset=explore_max_offset, explore_full_fidelity_days=explore_full_fidelity_days,
            replays_per_hour=replays_per_hour, explore_datasets=explore_datasets)
        self._deprecations = DeprecationTable()
        # Sentry's own deprecated routes that the emulator serves (getsentry/sentry#118963, #106905).
        self._deprecations.add(r"^/api/0/projects/[^/]+/[^/]+/issues/$",
                               replacement=f"/api/0/organizations/{self._ds.org_slug}/issues/")
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._app: App | None = None
        # Outgoing webhooks (configure_webhooks): one installation of one internal integration.
        self._hooks = WebhookSender(self.clock.time, uuid4_like(hkey(seed, organization, "installation")))
        self._app_uuid = uuid4_like(hkey(seed, organization, "sentry-app"))
        self._comments = 0
        self._alert_rules: dict[str, str] = {}  # metric alert name -> rule id
        self._incidents: dict[str, dict[str, str]] = {}  # open metric-alert incident per alert name
        self._incident_seq = 0

    # ------------------------------------------------------------ lifecycle
    def start(self) -> Emulator:
        """Bind and serve in a background thread; returns self once connections are accepted."""
        if self._server is not None:
            return self
        context = self._tls_context() if self._tls else None
        self._app = App(
            api=Api(self._ds, self._shapes, self._offset_paging, self.full_page_size, self._beyond),
            tokens=self._tokens, clock=self.clock, limiter=self._limiter,
            faults=self._faults, log=self._log, latency=self._delay,
            admin=Admin(self) if self._admin else None, base_url=lambda: self.base_url,
            deprecations=self._deprecations,
        )
        self._server = EmulatorHTTPServer((self._host, self._port), self._app, context)
        port = self._server.server_address[1]
        self.base_url = f"{'https' if self._tls else 'http'}://{self._host}:{port}"
        self._shapes.base_url = self.base_url
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"sentry-emulator:{port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections, join threads; idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        assert self._app is not None and self._thread is not None
        self._app.stopping.set()
        server.shutdown()
        server.close_all()
        server.server_close()
        self._thread.join(5)
        if self.ca_cert_path and os.path.exists(self.ca_cert_path):
            os.unlink(self.ca_cert_path)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tls_context(self) -> ssl.SSLContext:
        import trustme  # optional dependency: only needed for tls=True

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        fd, path = tempfile.mkstemp(prefix="sentry-emulator-ca-", suffix=".pem")
        os.close(fd)
        ca.cert_pem.write_to_path(path)
        self.ca_cert_path = path
        return context

    def _delay(self) -> float:
        base, jitter = self._latency
        return (base + (random.uniform(0, jitter) if jitter else 0.0)) / 1000.0

    # ------------------------------------------------------------ identity, tokens
    @property
    def organization(self) -> str:
        return self._ds.org_slug

    @property
    def project_slugs(self) -> list[str]:
        return [p.slug for p in self._ds.live_projects]

    @property
    def region_url(self) -> str:
        """`links.regionUrl` of the organization: `base_url` unless set (constructor or assignment)."""
        return self._shapes.region_url or self.base_url

    @region_url.setter
    def region_url(self, url: str | None) -> None:
        self._shapes.region_url = url.rstrip("/") if url else None

    def create_token(self, scopes: Iterable[str] | None = None, projects: Iterable[str] | None = None,
                     teams: Iterable[str] | None = None) -> str:
        """A new token with these scopes (default: all read scopes), optionally limited to projects,
        whose user is a member of these teams (slugs; default None: a member of every project)."""
        return self._tokens.create(ALL_READ_SCOPES if scopes is None else scopes, projects, teams=teams)

    def revoke_token(self, token: str) -> None:
        """Afterwards the token gets 401 {"detail": "Token expired"}."""
        self._tokens.revoke(token)

    # ------------------------------------------------------------ clock
    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # ------------------------------------------------------------ ground truth
    def _project(self, slug: str) -> Project:
        project = self._ds.project(slug)
        if project is None:
            raise KeyError(f"unknown project {slug!r}")
        return project

    def _issue(self, issue_id: str) -> Issue:
        issue = self._ds.issue(str(issue_id))
        if issue is None:
            raise KeyError(f"unknown issue {issue_id!r}")
        return issue

    def _release(self, version: str) -> Release:
        release = self._ds.release(version)
        if release is None:
            raise KeyError(f"unknown release {version!r}")
        return release

    def events(self, project_slug: str) -> list[dict[str, Any]]:
        """Visible events of a project (received, within retention), full=true shape, newest first."""
        with self._ds.lock:
            view = self._ds.event_view(self._project(project_slug), None, None, self.clock.now_us())
            return [self._shapes.event(r, True) for r in view.page(0, len(view))]

    def events_listed(self, project_slug: str, start: str, end: str, cursor: str | None = None) -> list[str]:
        """Ids of the events that the project's events list with this ``start``/``end`` serves from
        ``cursor`` (``value:offset:is_prev``) to its last page, newest first."""
        parsed = parse_cursor(cursor)
        offset = parsed.offset if parsed else 0
        with self._ds.lock:
            view = self._ds.event_view(self._project(project_slug), parse_iso(start), parse_iso(end), self.clock.now_us())
            return [self._shapes.event(r, False)["id"] for r in view.page(offset, max(0, len(view) - offset))]

    def event_count(self, project_slug: str) -> int:
        """How many events `events(project_slug)` would return (cheap, even for millions)."""
        with self._ds.lock:
            return len(self._ds.event_view(self._project(project_slug), None, None, self.clock.now_us()))

    def issues(self, project_slug: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Every issue the API can serve now (any status, within retention), lastSeen desc."""
        with self._ds.lock:
            now = self.clock.now_us()
            wanted = None if project_slug is None else self._project(project_slug).idx
            items = [i for i in self._ds.visible_issues(now)
                     if (wanted is None or i.project == wanted) and (status is None or i.status == status)]
            items.sort(key=lambda i: (i.agg.last_us or 0, int(i.id)), reverse=True)
            return [self._shapes.issue(i, now) for i in items]

    def issue(self, issue_id: str) -> dict[str, Any]:
        with self._ds.lock:
            self._ds.settle(self.clock.now_us())  # its counts: events received by now
            return self._shapes.issue_detail(self._issue(issue_id), self.clock.now_us())

    def issue_events(self, issue_id: str) -> list[dict[str, Any]]:
        with self._ds.lock:
            view = self._ds.issue_event_view(self._issue(issue_id), None, None, self.clock.now_us())
            return [self._shapes.event(r, True) for r in view.page(0, len(view))]

    def projects(self) -> list[dict[str, Any]]:
        with self._ds.lock:
            return [self._shapes.project_list_item(p) for p in self._ds.live_projects]

    def project_detail(self, project_slug: str) -> dict[str, Any]:
        with self._ds.lock:
            return self._shapes.project_detail(self._project(project_slug))

    def releases(self, status: str | None = None) -> list[dict[str, Any]]:
        """Releases (every status unless given), newest dateCreated first."""
        with self._ds.lock:
            live = {p.idx for p in self._ds.live_projects}
            # As the API: a release whose projects were all deleted is no longer listed.
            items = [r for r in self._ds.releases
                     if (status is None or r.status == status) and live.intersection(r.projects)]
            items.sort(key=lambda r: (r.date_created_us, r.id), reverse=True)
            now = self.clock.now_us()
            self._ds.settle(now)  # firstEvent/lastEvent: the events received by now
            return [self._shapes.release(r, now) for r in items]

    def deploys(self, version: str) -> list[dict[str, Any]]:
        with self._ds.lock:
            release = self._release(version)
            return [self._shapes.deploy(d) for d in sorted(release.deploys, key=lambda d: d.date_finished_us,
                                                            reverse=True)]

    def commits(self, version: str) -> list[dict[str, Any]]:
        with self._ds.lock:
            release = self._release(version)
            return [self._shapes.commit(release, c)
                    for c in sorted(release.commits, key=lambda c: c.date_created_us, reverse=True)]

    def teams(self) -> list[dict[str, Any]]:
        with self._ds.lock:
            return [self._shapes.team(t) for t in self._ds.teams]

    def members(self) -> list[dict[str, Any]]:
        with self._ds.lock:
            return [self._shapes.member(m) for m in self._ds.members]

    def environments(self, visibility: str = "visible") -> list[dict[str, Any]]:
        with self._ds.lock:
            return [self._shapes.environment(e) for e in self._ds.environments
                    if visibility == "all" or e.hidden == (visibility == "hidden")]

    def keys(self, project_slug: str) -> list[dict[str, Any]]:
        with self._ds.lock:
            idx = self._project(project_slug).idx
            return [self._shapes.project_key(k) for k in self._ds.keys if k.project == idx]

    def feedback(self, project_slug: str) -> list[dict[str, Any]]:
        with self._ds.lock:
            idx = self._project(project_slug).idx
            self._ds.settle(self.clock.now_us())  # the embedded issues' counts
            items = sorted((f for f in self._ds.feedback if f.project == idx),
                           key=lambda f: f.date_created_us, reverse=True)
            return [self._shapes.feedback(f) for f in items]

    def monitors(self) -> list[dict[str, Any]]:
        with self._ds.lock:
            return [self._shapes.monitor(m, self.clock.now_us()) for m in self._ds.live_monitors()]

    def checkins(self, monitor_slug: str) -> list[dict[str, Any]]:
        """Check-ins of a monitor (scheduled ones and add_checkin() ones), newest first."""
        with self._ds.lock:
            monitor = self._monitor(monitor_slug)
            return [self._shapes.checkin_at(monitor, k) for k in self._ds.checkin_keys(monitor, self.clock.now_us())]

    def _monitor(self, slug: str) -> Monitor:
        monitor = self._ds.monitor(slug)
        if monitor is None:
            raise KeyError(f"unknown monitor {slug!r}")
        return monitor

    def detectors(self) -> list[dict[str, Any]]:
        with self._ds.lock:
            return live_detectors(self._ds, self._shapes)

    def workflows(self) -> list[dict[str, Any]]:
        with self._ds.lock:
            return live_workflows(self._ds, self._shapes)

    # ------------------------------------------------------------ mutations
    def add_events(self, project_slug: str, n: int, *, late_by_seconds: float = 0,
                   issue_id: str | None = None) -> list[str]:
        """Add n events now (dateCreated = now - late_by, dateReceived = now); returns their ids.

        Each is an occurrence of `issue_id` (or of an issue picked like the generator does): it
        moves the issue's lastSeen and count, and regresses a resolved issue to unresolved.
        """
        with self._ds.lock:
            project = self._project(project_slug)
            before = self._hook_snapshot(project)
            ids = self._ds.add_events(project, n, self.clock.now_us(), int(late_by_seconds * US),
                                      None if issue_id is None else str(issue_id))
            hooks = self._issue_hooks_after(project, before)
            hooks += self._error_hooks(self._ds.added_refs(project, event_ids=ids))
        self._send_hooks(hooks)
        return ids

    def add_issue(self, project_slug: str, **fields: Any) -> str:
        """A new issue with one event now; `fields` override Issue attributes (title, level,
        status, substatus, culprit, priority, assignee=...); `events=N` sets the first events."""
        with self._ds.lock:
            project = self._project(project_slug)
            before = self._hook_snapshot(project)
            issue_id = self._ds.add_issue(project, self.clock.now_us(), **fields)
            hooks = self._issue_hooks_after(project, before)
            hooks += self._error_hooks(self._ds.added_refs(project, issue_id=issue_id))
        self._send_hooks(hooks)
        return issue_id

    def set_issue_status(self, issue_id: str, status: str, substatus: str | None = None) -> None:
        """resolved | unresolved | ignored (alias archived) ...; lastSeen does not move."""
        with self._ds.lock:
            issue = self._issue(issue_id)
            self._ds.set_issue_status(issue, status, substatus, self.clock.now_us())
            action = {"resolved": "resolved", "ignored": "ignored", "unresolved": "unresolved"}.get(issue.status)
            hooks = self._issue_hook(issue, action, self._user_actor()) if action else []
        self._send_hooks(hooks)

    def assign_issue(self, issue_id: str, assignee: Any) -> None:
        """Assign to a member (email, user id, name), a team ("team:slug"), or None; lastSeen stays."""
        with self._ds.lock:
            issue = self._issue(issue_id)
            self._ds.assign_issue(issue, assignee)
            # Sentry sends issue.assigned on an assignment; unassigning sends nothing.
            hooks = self._issue_hook(issue, "assigned", self._user_actor()) if issue.assigned_to else []
        self._send_hooks(hooks)

    def delete_issue(self, issue_id: str) -> None:
        """The issue and its events disappear from every list; its detail answers 404."""
        with self._ds.lock:
            self._ds.delete_issue(self._issue(issue_id))

    def merge_issues(self, target_id: str, source_ids: list[str]) -> None:
        """Move the sources' events into the target (same project); the sources disappear."""
        with self._ds.lock:
            self._ds.merge_issues(self._issue(target_id), [self._issue(s) for s in source_ids])

    def add_release(self, version: str | None = None, projects: list[str] | None = None, **fields: Any) -> str:
        """A release created now (default: linked to the first project); returns its version."""
        with self._ds.lock:
            chosen = [self._project(s) for s in projects] if projects else self._ds.live_projects[:1]
            return self._ds.add_release(version, chosen, self.clock.now_us(), **fields).version

    def update_release(self, version: str, **fields: Any) -> None:
        """Set dateReleased (epoch microseconds), status, ref, url, owner, data, or any body field."""
        with self._ds.lock:
            self._ds.update_release(self._release(version), **fields)

    def add_deploy(self, version: str, environment: str = "production") -> dict[str, Any]:
        """A deploy finished now; moves the release's lastDeploy and deployCount."""
        with self._ds.lock:
            return self._shapes.deploy(self._ds.add_deploy(self._release(version), environment,
                                                           self.clock.now_us()))

    def add_project(self, slug: str) -> dict[str, Any]:
        with self._ds.lock:
            return self._shapes.project_list_item(self._ds.add_project(slug, self.clock.now_us()))

    def update_project(self, slug: str, /, **fields: Any) -> None:
        """Set name, platform, team, or any other body field of a project; a new `slug` is a
        rename_project() (the old slug answers Sentry's 302)."""
        new_slug = fields.pop("slug", None)
        with self._ds.lock:
            project = self._project(slug)
            if fields:
                self._ds.update_project(project, **fields)
            if new_slug is not None and new_slug != project.slug:
                self._rename(project, str(new_slug), True)

    def rename_project(self, old_slug: str, new_slug: str, *, location: bool = True) -> None:
        """Change a project's slug, as Sentry does (a ProjectRedirect): the new slug serves it
        everywhere (same id; issue short ids take the new prefix) and every project-scoped route
        addressed by the old slug answers 302. `location=True` (Sentry now): `Location` = the
        request's path and query with the new slug, body `{"detail": {"code": "resource-moved",
        "message": "Resource has been moved", "extra": {"url": <Location>, "slug": new}}}` (Sentry's
        ProjectMoved). `location=False`: the same body with no Location (as some Sentry versions
        answered, getsentry/sentry#15278). Ground truth takes the new slug only."""
        with self._ds.lock:
            self._rename(self._project(old_slug), new_slug, location)

    def _rename(self, project: Project, new_slug: str, location: bool) -> None:
        old = project.slug
        self._ds.rename_project(project, new_slug, location)
        self._tokens.rename_project(old, new_slug)

    def delete_project(self, slug: str) -> None:
        """The project leaves every list; its endpoints (and its issues, events, keys, feedback,
        monitors) answer 404; releases stay but no longer list it."""
        with self._ds.lock:
            self._ds.delete_project(self._project(slug))

    def delete_release(self, version: str) -> None:
        """The release leaves the list; it and its deploys/commits answer 404."""
        with self._ds.lock:
            self._ds.delete_release(self._release(version))

    def add_commit(self, version: str, message: str, author: str | None = None) -> dict[str, Any]:
        """A commit dated now in the release (`author`: a name or email); moves commitCount."""
        with self._ds.lock:
            release = self._release(version)
            return self._shapes.commit(release, self._ds.add_commit(release, message, author, self.clock.now_us()))

    def add_team(self, slug: str, name: str | None = None) -> dict[str, Any]:
        with self._ds.lock:
            return self._shapes.team(self._ds.add_team(slug, name, self.clock.now_us()))

    def delete_team(self, slug: str) -> None:
        """Its projects stay, without a team (`team: null`, `teams: []`); members leave it."""
        with self._ds.lock:
            team = self._ds.team(slug)
            if team is None:
                raise KeyError(f"unknown team {slug!r}")
            self._ds.delete_team(team)

    def add_member(self, email: str, name: str | None = None, role: str = "member",
                   teams: list[str] | None = None, pending: bool = False) -> dict[str, Any]:
        """A member who joined now (or, with pending=True, an invite: `user` null)."""
        with self._ds.lock:
            return self._shapes.member(self._ds.add_member(email, name, role, list(teams or []), pending,
                                                           self.clock.now_us()))

    def remove_member(self, member_id_or_email: str) -> None:
        with self._ds.lock:
            member = self._ds.member(str(member_id_or_email))
            if member is None:
                raise KeyError(f"unknown member {member_id_or_email!r}")
            self._ds.remove_member(member)

    def add_environment(self, name: str, hidden: bool = False, projects: Iterable[str] | None = None) -> dict[str, Any]:
        """A new environment, seen in these projects (slugs; default every project)."""
        with self._ds.lock:
            idx = None if projects is None else frozenset(self._project(slug).idx for slug in projects)
            return self._shapes.environment(self._ds.add_environment(name, hidden, idx))

    def add_monitor(self, slug: str, project_slug: str, name: str | None = None,
                    interval_minutes: int = 60) -> dict[str, Any]:
        """A cron monitor created now; its scheduled check-ins start at the next interval boundary
        (advance() the clock to see them) and add_checkin() adds one at once."""
        with self._ds.lock:
            monitor = self._ds.add_monitor(slug, self._project(project_slug), name, int(interval_minutes),
                                           self.clock.now_us())
            return self._shapes.monitor(monitor, self.clock.now_us())

    def delete_monitor(self, slug: str) -> None:
        with self._ds.lock:
            self._ds.delete_monitor(self._monitor(slug))

    def delete_detector(self, detector_id: str) -> None:
        """The detector leaves the list (and workflows' detectorIds); its detail answers 404."""
        self._delete_alert("detector", str(detector_id), self.detectors)

    def delete_workflow(self, workflow_id: str) -> None:
        """The workflow leaves the list (and detectors' workflowIds); its detail answers 404."""
        self._delete_alert("workflow", str(workflow_id), self.workflows)

    def _delete_alert(self, kind: str, alert_id: str, listed: Callable[[], list[dict[str, Any]]]) -> None:
        with self._ds.lock:
            if alert_id not in {a["id"] for a in listed()}:
                raise KeyError(f"unknown {kind} {alert_id!r}")
            self._ds.delete_alert(kind, alert_id)

    def add_checkin(self, monitor_slug: str, status: str = "ok", duration: int | None = None) -> dict[str, Any]:
        """A check-in finished now (ok | error | missed | timeout | in_progress); newest in the list."""
        with self._ds.lock:
            monitor = self._monitor(monitor_slug)
            self._ds.add_checkin(monitor, status, duration, self.clock.now_us())
            return self._shapes.checkin_at(monitor, (0, 1, len(monitor.added) - 1))

    def add_feedback(self, project_slug: str, **fields: Any) -> dict[str, Any]:
        """User feedback dated now; fields: name, email, comments, event_id, issue_id."""
        with self._ds.lock:
            return self._shapes.feedback(self._ds.add_feedback(self._project(project_slug), self.clock.now_us(),
                                                               **fields))

    def add_key(self, project_slug: str, name: str = "Default") -> dict[str, Any]:
        """A client key (DSN with public and secret key) created now."""
        with self._ds.lock:
            return self._shapes.project_key(self._ds.add_key(self._project(project_slug), name, self.clock.now_us()))

    # ------------------------------------------------------------ the tables of issue 21 (peers.py)
    def add_service_hook(self, project_slug: str, url: str) -> dict[str, Any]:
        """A service hook of a project, created now (its body shows its secret, as Sentry's does)."""
        with self._ds.lock:
            hook = self._beyond.peers.add_hook(self._project(project_slug), url, self.clock.now_us())
            return self._beyond.peers.hook_body(hook)

    def add_release_file(self, version: str, name: str) -> dict[str, Any]:
        """An artifact uploaded to a release now."""
        with self._ds.lock:
            return self._beyond.peers.file_body(self._beyond.peers.add_file(self._release(version), name, self.clock.now_us()))

    def remove_repository(self, name: str, *, for_good: bool = False) -> None:
        """Hide a repository (Sentry lists it with status=deleted), or delete it ``for_good``."""
        with self._ds.lock:
            repo = next(r for r in self._beyond.peers.repos if r.name == name)
            repo.status, repo.gone = "hidden", for_good
            self._ds.version += 1

    def remove_integration(self, integration_id: str) -> None:
        """Uninstall an integration: gone from the list, its route answers 404."""
        with self._ds.lock:
            next(i for i in self._beyond.peers.integrations if i.id == integration_id).gone = True

    def add_dashboard(self, title: str) -> dict[str, Any]:
        """A dashboard created now, with two widgets; returns its detail body."""
        with self._ds.lock:
            dashboard = self._beyond.peers.add_dashboard(title, self.clock.now_us())
            return self._beyond.peers.dashboard_body(dashboard, None, detail=True)

    def add_dashboard_widget(self, dashboard_id: str, title: str, query: str) -> None:
        """A widget added to a dashboard: the list does not change, the dashboard's route does."""
        with self._ds.lock:
            dashboard = next(d for d in self._beyond.peers.dashboards if d.id == dashboard_id)
            dashboard.widgets.append(self._beyond.peers.widget(dashboard, len(dashboard.widgets), title, query))

    def delete_dashboard(self, dashboard_id: str) -> None:
        with self._ds.lock:
            next(d for d in self._beyond.peers.dashboards if d.id == dashboard_id).gone = True

    def set_ownership(self, project_slug: str, raw: str) -> None:
        """Replace a project's ownership rules (``path:src/* #team`` lines), updated now."""
        with self._ds.lock:
            project = self._project(project_slug)
            self._beyond.peers.ownership[project.idx] = raw
            self._beyond.peers.ownership_updated[project.idx] = self.clock.now_us() // US * US

    # ------------------------------------------------------------ beyond errors
    def explore_rows(self, dataset: str, *, start: str | datetime | None = None, end: str | datetime | None = None,
                     fields: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Every Explore row of `dataset` visible now (ingestion lag passed, within retention) with
        start <= timestamp < end (ISO strings or aware datetimes; None: no bound), at full fidelity,
        sorted by timestamp then id; with `fields` (default: every field of the dataset)."""
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}")
        chosen = list(fields) if fields is not None else list(FIELD_TYPES.get(dataset, {"id": ("string", None)}))
        with self._ds.lock:
            now = self.clock.now_us()
            data = self._beyond.explore
            rows = sorted(data.rows(dataset, self._ds.live_projects, _bound(start, 0), _bound(end, now + 1), now),
                          key=lambda r: (r.ts_s, r.id))
            return [data.render(dataset, r, chosen) for r in rows]

    def replays(self) -> list[dict[str, Any]]:
        """Every replay visible now (started, within retention), as the replays list serves it,
        newest started_at first."""
        with self._ds.lock:
            now = self.clock.now_us()
            data = self._beyond.replays
            rows = sorted(data.rows(self._ds.live_projects, None, None, now), key=lambda r: (r.start_s, r.id),
                          reverse=True)
            return [data.render(r, now // US) for r in rows]

    def deprecate(self, path: str, *, date: str = DEFAULT_DATE, replacement: str | None = None,
                  brownout_times: int = 0) -> None:
        """Requests whose path matches the regex `path` get `X-Sentry-Deprecation-Date: date` (and
        `X-Sentry-Replacement-Endpoint` when given); the next `brownout_times` of them answer 410
        `{"detail": "This endpoint is deprecated and is currently unavailable (brownout)."}` with
        those headers instead of their body. Overrides an earlier entry for the same requests."""
        self._deprecations.add(path, date, replacement, brownout_times)

    def deprecations(self) -> list[dict[str, Any]]:
        """Deprecated paths, newest first: path, date, replacement, brownout_times (still to come)."""
        return self._deprecations.pending()

    # ------------------------------------------------------------ outgoing webhooks
    def configure_webhooks(self, url: str, secret: str, resources: Iterable[str] = RESOURCES, *,
                           timeout: float = 5.0, verify: bool | str = True) -> None:
        """From now on, mutations POST Sentry's integration-platform webhooks of these `resources`
        to `url`, signed with `secret`, synchronously (the mutation returns once the receiver
        answered or the delivery failed; a failure never raises). `timeout` in seconds per POST;
        `verify`: TLS verification of an https receiver (False, or a CA bundle path)."""
        self._hooks.configure(url, secret, resources, timeout, verify)

    def stop_webhooks(self) -> None:
        """Mutations deliver no more webhooks (the delivery log stays)."""
        self._hooks.stop()

    @property
    def webhook_installation(self) -> str:
        """`installation.uuid` of every delivery (fixed per seed and organization)."""
        return self._hooks.installation_uuid

    @property
    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Every POST so far, in order: resource, action, request_id, status (0: no answer),
        bytes (of the body), sent_at (emulator clock, epoch seconds)."""
        return self._hooks.deliveries()

    def send_webhook(self, resource: str, action: str, data: dict[str, Any], *, secret: str | None = None,
                     timestamp: int | None = None, request_id: str | None = None, pad_bytes: int = 0,
                     url: str | None = None, actor: dict[str, Any] | None = None) -> int:
        """One delivery, hostile if asked: another `secret` (a bad signature), a `timestamp`
        (epoch seconds: a stale one), a repeated `request_id` (a redelivery), `pad_bytes` (a
        `_padding` field making the body that much larger), another `url`. Ignores the
        subscribed resources. Returns the HTTP status, 0 when no answer came."""
        return self._hooks.send(resource, action, data, actor=actor, secret=secret, timestamp=timestamp,
                                request_id=request_id, pad_bytes=pad_bytes, url=url)

    def redeliver(self, request_id: str) -> int:
        """Send a delivery again as Sentry's retries do: same body, headers and Request-ID, a
        fresh Sentry-Hook-Timestamp. Returns the HTTP status (0: no answer)."""
        return self._hooks.redeliver(request_id)

    def add_comment(self, issue_id: str, text: str, user_email: str | None = None) -> dict[str, Any]:
        """A comment on the issue now, by the member `user_email` (default: the first member);
        moves the issue's numComments; delivers `comment`/`created`. Returns the webhook data."""
        with self._ds.lock:
            issue = self._issue(issue_id)
            actor = self._user_actor(user_email)
            self._comments += 1
            issue.num_comments += 1
            self._ds.version += 1
            comment = {"comment_id": 1000 + self._comments, "issue_id": int(issue.id),
                       "project_slug": self._ds.projects[issue.project].slug,
                       "timestamp": iso_us(self.clock.now_us()), "comment": text}
        self._send_hooks([("comment", "created", dict(comment), actor)])
        return comment

    def fire_event_alert(self, issue_id: str, rule: str = "High error rate") -> None:
        """An issue alert rule fired on the issue's newest event: `event_alert`/`triggered`."""
        with self._ds.lock:
            issue = self._issue(issue_id)
            refs = self._ds.issue_event_view(issue, None, None, self.clock.now_us()).page(0, 1)
            if not refs:
                raise ValueError(f"issue {issue_id} has no visible event")
            data = {"event": error_payload(self._shapes, refs[0]), "triggered_rule": rule}
        self._send_hooks([("event_alert", "triggered", data, SENTRY_ACTOR)])

    def fire_metric_alert(self, action: str = "critical", name: str = "p95 latency") -> None:
        """A metric alert named `name` changed state: `metric_alert`/`critical|warning|resolved`.
        critical/warning open an incident (or keep the open one); resolved closes it."""
        if action not in ("critical", "warning", "resolved"):
            raise ValueError(f"metric alert action must be critical, warning or resolved, not {action!r}")
        with self._ds.lock:
            now = iso_us(self.clock.now_us())
            rule_id = self._alert_rules.setdefault(name, str(1001 + len(self._alert_rules)))
            incident = self._incidents.get(name)
            if incident is None:
                self._incident_seq += 1
                incident = {"id": str(5000 + self._incident_seq), "identifier": str(self._incident_seq),
                            "started": now}
                self._incidents[name] = incident
            if action == "resolved":
                del self._incidents[name]
            data = metric_alert_payload(
                base_url=self.base_url, org_slug=self._ds.org_slug, org_id=self._ds.org_id,
                projects=[p.slug for p in self._ds.live_projects[:1]], action=action, name=name, rule_id=rule_id,
                incident_id=incident["id"], identifier=incident["identifier"], started=incident["started"],
                now=now, created=iso_us(self._ds.org_created_us))
        self._send_hooks([("metric_alert", action, data, SENTRY_ACTOR)])

    def install_integration(self, action: str = "created") -> None:
        """The emulator's integration was installed or uninstalled: `installation`/`created|deleted`."""
        if action not in ("created", "deleted"):
            raise ValueError(f"installation action must be created or deleted, not {action!r}")
        with self._ds.lock:
            org = self._ds.org_slug
            data = {"installation": {
                "uuid": self._hooks.installation_uuid, "status": "installed",
                "app": {"uuid": self._app_uuid, "slug": f"{org}-emulator-hooks"},
                "organization": {"slug": org}, "code": hex32(hkey(self._ds.seed, org, "installation-code"))}}
            actor = self._user_actor()
        self._send_hooks([("installation", action, data, actor)])

    def _send_hooks(self, hooks: list[Hook]) -> None:
        """Deliver what a mutation built under the dataset lock, after releasing it (a receiver
        may call the API back before it answers)."""
        for resource, action, data, actor in hooks:
            self._hooks.deliver(resource, action, data, actor)

    def _user_actor(self, email: str | None = None) -> dict[str, Any]:
        """`actor` of a user's action: the member with this email, else the first member."""
        members = [m for m in self._ds.members if not m.pending and m.user_id]
        if email is not None:
            members = [m for m in members if m.email == email]
            if not members:
                raise KeyError(f"unknown member {email!r}")
        if not members:
            return dict(SENTRY_ACTOR)
        m = members[0]
        uid: Any = int(m.user_id) if m.user_id and m.user_id.isdigit() else m.user_id
        return {"type": "user", "id": uid, "name": m.name}

    def _issue_hook(self, issue: Issue, action: str, actor: dict[str, Any]) -> list[Hook]:
        if not self._hooks.wants("issue"):
            return []
        return [("issue", action, {"issue": self.issue(issue.id)}, actor)]

    def _hook_snapshot(self, project: Project) -> tuple[int, list[Issue]] | None:
        """Before a mutation that adds events: how many issues exist and which of the project's
        are resolved (a new event regresses them); None when no issue webhook is wanted."""
        if not self._hooks.wants("issue"):
            return None
        return len(self._ds.issues), [i for i in self._ds.issues.values()
                                      if i.project == project.idx and i.status == "resolved"]

    def _issue_hooks_after(self, project: Project, before: tuple[int, list[Issue]] | None) -> list[Hook]:
        """issue.created for the issues a mutation made, issue.unresolved for those it regressed."""
        if before is None:
            return []
        count, resolved = before
        hooks: list[Hook] = []
        for issue in list(self._ds.issues.values())[count:]:
            hooks += self._issue_hook(issue, "created", SENTRY_ACTOR)
        for issue in resolved:
            if issue.status == "unresolved":
                hooks += self._issue_hook(issue, "unresolved", SENTRY_ACTOR)
        return hooks

    def _error_hooks(self, refs: list[EventRef]) -> list[Hook]:
        if not self._hooks.wants("error"):
            return []
        return [("error", "created", {"error": error_payload(self._shapes, r)}, SENTRY_ACTOR) for r in refs]

    # ------------------------------------------------------------ faults
    def inject_fault(self, kind: str, *, path: str = ".*", times: int = 1, after: int = 0,
                     seconds: float = 30.0, bytes_per_second: float = 20.0) -> None:
        """Apply `kind` to the next `times` requests whose path matches `path` (regex), after
        letting `after` of them through. times=-1 means every matching request. `seconds`: how
        long a `stall` lasts; `bytes_per_second`: the rate of a `drip`."""
        self._faults.add(str(kind), path, times, after, seconds, bytes_per_second)

    def clear_faults(self) -> None:
        self._faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        return self._faults.pending()

    # ------------------------------------------------------------ request log
    @property
    def requests(self) -> list[RequestRecord]:
        return self._log.snapshot()

    def request_counts(self) -> dict[str, int]:
        return dict(Counter(r.route for r in self._log.snapshot()))

    def count_429(self) -> int:
        return sum(1 for r in self._log.snapshot() if r.status == 429)

    def clear_requests(self) -> None:
        self._log.clear()


def _bound(value: str | datetime | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a timezone-aware datetime is required")
        return int(value.timestamp()) * US + value.microsecond
    return parse_iso(value)
