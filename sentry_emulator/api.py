"""The /api/0/ endpoints: a route table of (template, scope, handler), handlers on `Api`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .auth import FORBIDDEN, ScopeRule, Token
from .beyond import Beyond
from .dataset import Dataset
from .details import live_detectors, live_workflows, member_detail, team_detail
from .models import Issue, Project, Release
from .pagination import FULL_PAGE_SIZE, Page, clamp_page_size, keyed_page, numbered_page, offset_page, parse_cursor, parse_page_size
from .search import SORTS, parse_issue_query
from .shapes import Shapes
from .timeutil import US, BadParam, iso_s, parse_iso, parse_period

__all__ = ["ROUTES", "Api", "ApiError", "Reply", "Request", "Route", "match_route"]

NOT_FOUND = "The requested resource does not exist"
STATS_GROUP_BY = ("outcome", "category", "reason", "project")
DAY_US = 86400 * US


class ApiError(Exception):
    """An error answer: `{"detail": detail}`, or `body` and extra `headers` when given."""

    def __init__(self, status: int, detail: str, body: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.body = {"detail": detail} if body is None else body
        self.headers = dict(headers or {})


@dataclass
class Request:
    path: str
    query: list[tuple[str, str]]
    params: dict[str, str]
    token: Token
    now_us: int
    query_string: str = ""  # as received, for URLs that keep it (a renamed project's redirect)

    def get(self, name: str) -> str | None:
        for k, v in self.query:
            if k in (name, name + "[]"):
                return v
        return None

    def getall(self, name: str) -> list[str]:
        return [v for k, v in self.query if k in (name, name + "[]")]

    def has(self, name: str) -> bool:
        return any(k in (name, name + "[]") for k, _ in self.query)


@dataclass
class Reply:
    body: Any
    page: Page | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    template: str
    scope: str | None
    handler: Callable[[Api, Request], Reply]
    regex: re.Pattern[str]


ROUTES: list[Route] = []


ORG = ("org:admin", "org:read", "org:write")
PROJECT = ("project:admin", "project:read", "project:write")
EVENT = ("event:admin", "event:read", "event:write")
RELEASES = ("org:ci", "project:admin", "project:read", "project:releases", "project:write")
MEMBER = ("member:admin", "member:read", "member:write")
TEAM = ("team:admin", "team:read", "team:write")
ORG_ISSUES = "/api/0/organizations/{org}/issues/"
PROJECT_ISSUES = "/api/0/projects/{org}/{project}/issues/"


def route(template: str, scope: str | None, sentry: tuple[str, ...] = ()
          ) -> Callable[[Callable[[Api, Request], Reply]], Callable[[Api, Request], Reply]]:
    """Register a handler. `scope`: the one scope "strict" rules require; `sentry`: the scopes
    Sentry accepts (any one of them; the operation's OpenAPI `security`), used by "sentry" rules."""
    rule = None if scope is None else ScopeRule(scope, sentry)
    pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"

    def register(fn: Callable[[Api, Request], Reply]) -> Callable[[Api, Request], Reply]:
        def settled(api: Api, req: Request) -> Reply:
            # Every answer shows what was received by its `now` (late and live events), never
            # what the last request that happened to settle left: the same time, the same body.
            api.ds.settle(req.now_us)
            return fn(api, req)

        ROUTES.append(Route(template, rule, settled, re.compile(pattern)))
        return fn

    return register


def match_route(path: str) -> tuple[Route, dict[str, str]] | None:
    for r in ROUTES:
        m = r.regex.match(path)
        if m:
            return r, {k: unquote(v) for k, v in m.groupdict().items()}
    return None


def explicit_range(req: Request) -> tuple[int, int] | None:
    """`start` and `end` (both or neither, in order) as epoch microseconds, or None."""
    start, end = req.get("start"), req.get("end")
    if (start is None) != (end is None):
        raise BadParam("start and end are both required")
    if start is None or end is None:
        return None
    s, e = parse_iso(start), parse_iso(end)
    if s > e:
        raise BadParam("start must be before end")
    return s, e


def _bool(raw: str | None) -> bool:
    return (raw or "").lower() in ("1", "true", "yes", "on")


class Api:
    """Endpoint handlers. They run under the dataset lock and raise ApiError / BadParam."""

    def __init__(self, ds: Dataset, shapes: Shapes, offset_paging: bool = False,
                 full_page_size: int | None = FULL_PAGE_SIZE, beyond: Beyond | None = None) -> None:
        self.ds, self.shapes = ds, shapes
        self.beyond = beyond or Beyond.build(ds)  # sessions, Explore, replays (api_beyond.py)
        self.offset_paging = offset_paging  # issues paged like releases (by offset), not keyed
        self.full_page_size = full_page_size  # most events per page with full=true; None/0: per_page

    # ------------------------------------------------------------ shared checks
    def _org(self, req: Request) -> None:
        if req.params.get("org") not in (self.ds.org_slug, self.ds.org_id):
            raise ApiError(404, NOT_FOUND)

    def _project(self, req: Request, slug: str | None = None) -> Project:
        self._org(req)
        key = slug or req.params["project"]
        project = self.ds.project(key)
        if project is None:
            self._raise_if_renamed(req, key)
            raise ApiError(404, NOT_FOUND)
        self._require_visible(req, project)
        return project

    def _raise_if_renamed(self, req: Request, old_slug: str) -> None:
        """Sentry's ProjectMoved (src/sentry/api/exceptions.py) for a slug a project was renamed
        from: 302 whose Location is the request's path and query with the new slug, body
        `{"detail": {"code": "resource-moved", "message", "extra": {"url", "slug"}}}`; with
        `location=False` renames, the same body and no Location (as some Sentry versions answer).
        A token that cannot see the project learns nothing (403)."""
        moved = self.ds.redirected_project(old_slug)
        if moved is None:
            return
        project, location = moved
        self._require_visible(req, project)
        org = req.params["org"]
        full = req.path + (f"?{req.query_string}" if req.query_string else "")
        url = full.replace(f"projects/{org}/{old_slug}/", f"projects/{org}/{project.slug}/", 1)
        body = {"detail": {"code": "resource-moved", "message": "Resource has been moved",
                           "extra": {"url": url, "slug": project.slug}}}
        raise ApiError(302, "", body=body, headers={"Location": url} if location else None)

    def _require_visible(self, req: Request, project: Project) -> None:
        """403 for a project outside a project-restricted token."""
        if not req.token.can_see(project.slug, project.id):
            raise ApiError(403, FORBIDDEN)

    def _visible_projects(self, req: Request) -> list[Project]:
        return [p for p in self.ds.live_projects if req.token.can_see(p.slug, p.id)]

    def _project_filter(self, req: Request, *, all_accessible: bool = False) -> set[int]:
        """The projects of Sentry's ``OrganizationEndpoint.get_projects``: the `project` ids
        (repeatable; each one the token can see, else 403), -1 = every project the token can see,
        absent = only those its user is a member of ("A project_id of -1 means 'all projects I
        have access to' While no project_ids means 'all projects I am a member of'",
        src/sentry/api/bases/organization.py), or every project it can see where the endpoint
        passes ``include_all_accessible`` (releases)."""
        visible = self._visible_projects(req)
        wanted = [v for raw in req.getall("project") for v in raw.split(",") if v != ""]
        if "-1" in wanted or (not wanted and all_accessible):
            return {p.idx for p in visible}
        if not wanted:
            return {p.idx for p in visible if req.token.is_member(p.team)}
        visible_ids = {p.idx for p in visible}
        chosen = set()
        for value in wanted:
            if not value.lstrip("-").isdigit():
                raise BadParam("Invalid project parameter. Values must be numbers.")
            project = next((p for p in self.ds.live_projects if p.id == value), None)
            if project is None or project.idx not in visible_ids:
                raise ApiError(403, FORBIDDEN)
            chosen.add(project.idx)
        return chosen

    def _issue(self, req: Request) -> Issue:
        self._org(req)
        issue = self.ds.issue(req.params["issue_id"]) or self._merged_into(req.params["issue_id"])
        if issue is None:
            raise ApiError(404, NOT_FOUND)
        project = self.ds.projects[issue.project]
        self._require_visible(req, project)
        return issue

    def _merged_into(self, issue_id: str) -> Issue | None:
        """The live issue a merged-away id now belongs to. Sentry (GroupRedirect, read by
        get_group_with_redirect) answers the merged-into issue's data, not a redirect."""
        issue = self.ds.issues.get(issue_id)
        if issue is None or not issue.merged_into:
            return None
        while issue is not None and issue.merged_into:  # no cycle: only live issues get merged
            issue = self.ds.issues.get(issue.merged_into)
        return None if issue is None else self.ds.issue(issue.id)

    def _range(self, req: Request, default_us: int | None) -> tuple[int | None, int | None]:
        """`start`/`end` (both or neither) or `statsPeriod`; else the last `default_us`."""
        explicit = explicit_range(req)
        if explicit is not None:
            return explicit
        period = req.get("statsPeriod")
        if period:
            return req.now_us - parse_period(period), None
        return (req.now_us - default_us if default_us else None), None

    @staticmethod
    def _offset_list(req: Request, items: list, render: Callable[[Any], Any]) -> Reply:
        limit = parse_page_size(req.get("per_page"))
        page = offset_page(len(items), lambda o, n: [render(x) for x in items[o:o + n]],
                           limit, parse_cursor(req.get("cursor")))
        return Reply(page.items, page)

    # ------------------------------------------------------------ organizations
    @route("/api/0/organizations/", "org:read", ORG)
    def organizations(self, req: Request) -> Reply:
        return self._offset_list(req, [None], lambda _: self.shapes.organization())

    @route("/api/0/organizations/{org}/", "org:read", ORG)
    def organization(self, req: Request) -> Reply:
        self._org(req)
        return Reply(self.shapes.organization())

    @route("/api/0/organizations/{org}/projects/", "org:read", ORG)
    def org_projects(self, req: Request) -> Reply:
        self._org(req)
        text = (req.get("query") or "").lower()
        items = [p for p in self._visible_projects(req) if text in p.slug or text in p.name.lower()]
        return self._offset_list(req, items, self.shapes.project_list_item)

    @route("/api/0/projects/{org}/{project}/", "project:read", PROJECT)
    def project_detail(self, req: Request) -> Reply:
        return Reply(self.shapes.project_detail(self._project(req)))

    @route("/api/0/organizations/{org}/teams/", "team:read", ORG)  # Sentry: org:*, not team:read
    def teams(self, req: Request) -> Reply:
        self._org(req)
        return self._offset_list(req, list(self.ds.teams), self.shapes.team)

    @route("/api/0/organizations/{org}/members/", "member:read", MEMBER)
    def members(self, req: Request) -> Reply:
        self._org(req)
        return self._offset_list(req, list(self.ds.members), self.shapes.member)

    @route("/api/0/organizations/{org}/environments/", "org:read", ORG)
    def environments(self, req: Request) -> Reply:
        self._org(req)
        visibility = req.get("visibility") or "visible"
        if visibility not in ("all", "hidden", "visible"):
            raise BadParam("Invalid value for 'visibility', valid values are: 'all', 'hidden', 'visible'")
        # Sentry lists the environments of the projects get_projects chooses (EnvironmentProject).
        projects = self._project_filter(req)
        envs = [e for e in self.ds.environments
                if (visibility == "all" or e.hidden == (visibility == "hidden"))
                and (projects if e.projects is None else projects & e.projects)]
        return Reply([self.shapes.environment(e) for e in envs])  # not paginated, like Sentry

    @route("/api/0/projects/{org}/{project}/keys/", "project:read", PROJECT)
    def project_keys(self, req: Request) -> Reply:
        project = self._project(req)
        status = req.get("status")
        keys = [k for k in self.ds.keys if k.project == project.idx
                and (status is None or (status == "active") == k.active)]
        return self._offset_list(req, keys, self.shapes.project_key)

    @route("/api/0/projects/{org}/{project}/user-feedback/", "event:read", ("project:read",))
    def user_feedback(self, req: Request) -> Reply:
        project = self._project(req)
        items = sorted((f for f in self.ds.feedback if f.project == project.idx),
                       key=lambda f: f.date_created_us, reverse=True)
        return self._offset_list(req, items, self.shapes.feedback)

    # ------------------------------------------------------------ events
    def _events_reply(self, req: Request, view_fn: Callable[[int | None, int | None], Any]) -> Reply:
        start, end = self._range(req, None)
        full = _bool(req.get("full"))
        limit = parse_page_size(req.get("per_page"))  # 400 above 100 either way
        if full:
            limit = clamp_page_size(limit, self.full_page_size)
        cursor = parse_cursor(req.get("cursor"))
        view = view_fn(start, end)
        page = offset_page(len(view), lambda o, n: [self.shapes.event(r, full) for r in view.page(o, n)],
                           limit, cursor)
        return Reply(page.items, page)

    @route("/api/0/projects/{org}/{project}/events/", "event:read", PROJECT)
    def project_events(self, req: Request) -> Reply:
        project = self._project(req)
        return self._events_reply(req, lambda s, e: self.ds.event_view(project, s, e, req.now_us))

    @route("/api/0/organizations/{org}/issues/{issue_id}/events/", "event:read", EVENT)
    def issue_events(self, req: Request) -> Reply:
        issue = self._issue(req)
        return self._events_reply(req, lambda s, e: self.ds.issue_event_view(issue, s, e, req.now_us))

    # ------------------------------------------------------------ issues
    def _issue_list(self, req: Request, projects: set[int], date_filter: bool) -> tuple[list[Issue], Callable]:
        sort = req.get("sort") or "date"
        if sort not in SORTS:
            raise BadParam("Invalid sort")
        slugs = {p.idx: p.slug for p in self.ds.projects}
        predicate = parse_issue_query(req.get("query") if req.has("query") else None, req.now_us, slugs)
        envs = req.getall("environment")
        lo = hi = None
        if date_filter:
            lo, hi = self._range(req, 90 * DAY_US)
        key = SORTS[sort]
        issues = [i for i in self.ds.visible_issues(req.now_us)
                  if i.project in projects and predicate(i)
                  and (not envs or any(e in i.envs for e in envs))
                  # An issue is in a date range when it has events in it.
                  and (lo is None or (i.agg.last_us or 0) >= lo)
                  and (hi is None or (i.first_seen_us or 0) < hi)]
        issues.sort(key=lambda i: (key(i), int(i.id)), reverse=True)
        return issues, key

    def _issues_reply(self, req: Request, issues: list[Issue], key: Callable, render: Callable) -> Reply:
        limit = parse_page_size(req.get("limit"), "limit")
        cursor = parse_cursor(req.get("cursor"))
        if self.offset_paging:
            page = numbered_page(len(issues), lambda o, n: issues[o:o + n], limit, cursor)
        else:
            page = keyed_page(issues, key, limit, cursor)
        page.items = [render(i, req.now_us) for i in page.items]
        reply = Reply(page.items, page)
        reply.headers["X-Hits"] = str(min(len(issues), 1000))
        reply.headers["X-Max-Hits"] = "1000"
        return reply

    @route("/api/0/organizations/{org}/issues/", "event:read", EVENT)
    def org_issues(self, req: Request) -> Reply:
        self._org(req)
        issues, key = self._issue_list(req, self._project_filter(req), date_filter=True)
        return self._issues_reply(req, issues, key, self.shapes.issue)

    @route("/api/0/projects/{org}/{project}/issues/", "event:read", ("event:read",))
    def project_issues(self, req: Request) -> Reply:
        project = self._project(req)
        # Here statsPeriod only picks the stats timeline ("" / 24h / 14d), it does not filter.
        if req.get("statsPeriod") not in (None, "", "24h", "14d"):
            raise BadParam("Invalid stats_period. Valid choices are '', '24h', and '14d'")
        issues, key = self._issue_list(req, {project.idx}, date_filter=False)
        reply = self._issues_reply(req, issues, key, self.shapes.project_issue)
        reply.headers["Deprecation"] = "true"
        return reply

    @route("/api/0/organizations/{org}/issues/{issue_id}/", "event:read", EVENT)
    def issue_detail(self, req: Request) -> Reply:
        body = self.shapes.issue_detail(self._issue(req), req.now_us)
        body["tags"] = api_peers.issue_tag_summaries(self, req)  # every key, from the issue's events
        return Reply(body)

    # ------------------------------------------------------------ releases
    def _release(self, req: Request) -> Release:
        self._org(req)
        release = self.ds.release(req.params["version"])
        visible = {p.idx for p in self._visible_projects(req)}
        if release is None or (release.projects and not visible.intersection(release.projects)):
            raise ApiError(404, NOT_FOUND)
        return release

    @route("/api/0/organizations/{org}/releases/", "project:releases", RELEASES)
    def releases(self, req: Request) -> Reply:
        self._org(req)
        # Sentry's OrganizationReleasesBaseEndpoint.get_projects passes include_all_accessible=True.
        projects = self._project_filter(req, all_accessible=True)
        text = (req.get("query") or "").lower()
        status = req.get("status") or "open"
        if status not in ("open", "archived"):
            raise BadParam("invalid status")
        if (req.get("sort") or "date") not in ("date", "build", "semver", "adoption", "crash_free_users",
                                               "crash_free_sessions", "sessions", "users"):
            raise BadParam("invalid sort")
        envs = set(req.getall("environment"))
        items = [r for r in self.ds.releases
                 if projects.intersection(r.projects) and text in r.version.lower() and r.status == status
                 and (not envs or envs.intersection(d.environment for d in r.deploys))]
        items.sort(key=lambda r: (r.date_created_us, r.id), reverse=True)
        limit = parse_page_size(req.get("per_page"))
        # Sentry pages releases with its OffsetPaginator and counts no hits (no X-Hits).
        page = numbered_page(len(items), lambda o, n: [self.shapes.release(r, req.now_us) for r in items[o:o + n]],
                             limit, parse_cursor(req.get("cursor")))
        return Reply(page.items, page)

    @route("/api/0/organizations/{org}/releases/{version}/", "project:releases", RELEASES)
    def release_detail(self, req: Request) -> Reply:
        return Reply(self.shapes.release(self._release(req), req.now_us))

    @route("/api/0/organizations/{org}/releases/{version}/deploys/", "project:releases", RELEASES)
    def release_deploys(self, req: Request) -> Reply:
        release = self._release(req)
        deploys = sorted(release.deploys, key=lambda d: d.date_finished_us, reverse=True)
        return self._offset_list(req, deploys, self.shapes.deploy)

    @route("/api/0/organizations/{org}/releases/{version}/commits/", "project:releases", RELEASES)
    def release_commits(self, req: Request) -> Reply:
        release = self._release(req)
        commits = sorted(release.commits, key=lambda c: c.date_created_us, reverse=True)
        return self._offset_list(req, commits, lambda c: self.shapes.commit(release, c))

    # ------------------------------------------------------------ monitors, usage
    @route("/api/0/organizations/{org}/monitors/", "alerts:read", ("alerts:read", *ORG))
    def monitors(self, req: Request) -> Reply:
        self._org(req)
        projects = self._project_filter(req)
        items = [m for m in self.ds.live_monitors() if m.project in projects]
        return self._offset_list(req, items, lambda m: self.shapes.monitor(m, req.now_us))

    @route("/api/0/organizations/{org}/monitors/{monitor}/checkins/", "alerts:read",
           ("alerts:read", "alerts:write", *PROJECT))
    def checkins(self, req: Request) -> Reply:
        self._org(req)
        monitor = self.ds.monitor(req.params["monitor"])
        if monitor is None:
            raise ApiError(404, NOT_FOUND)
        project = self.ds.projects[monitor.project]
        self._require_visible(req, project)
        keys = self.ds.checkin_keys(monitor, req.now_us)  # newest first; rendered per page only
        return self._offset_list(req, keys, lambda k: self.shapes.checkin_at(monitor, k))

    @route("/api/0/organizations/{org}/stats_v2/", "org:read", ORG)
    def stats_v2(self, req: Request) -> Reply:
        self._org(req)
        fields = req.getall("field")
        if not fields:
            raise BadParam('At least one "field" is required.')
        for f in fields:
            if f not in ("sum(quantity)", "sum(times_seen)"):
                raise BadParam(f'Invalid field: "{f}"')
        group_by = req.getall("groupBy")
        if not group_by:
            raise BadParam("At least one groupBy is required")
        for g in group_by:
            if g not in STATS_GROUP_BY:
                raise BadParam(f'Invalid groupBy: "{g}"')
        try:
            interval = parse_period(req.get("interval") or "1h")
        except BadParam:
            raise BadParam("Invalid interval") from None
        if interval < 3600 * US:
            raise BadParam("The interval has to be at least one hour")
        if interval > DAY_US:
            raise BadParam("The interval has to be less than one day.")
        if DAY_US % interval:
            raise BadParam("The interval should divide one day without a remainder.")
        wanted = {name: set(req.getall(name)) for name in ("category", "outcome", "reason")}
        lo, hi = self._range(req, 14 * DAY_US)
        hi = hi or req.now_us
        lo = max(lo or 0, req.now_us - self.ds.retention_us)
        start = lo // interval * interval
        edges = list(range(start, hi + interval, interval)) if hi > start else [start, start + interval]
        groups: dict[tuple, list[int]] = {}
        for p in (self.ds.projects[i] for i in sorted(self._project_filter(req))):
            for (outcome, category, reason), series in self.ds.outcomes(p, edges, req.now_us).items():
                row = {"outcome": outcome, "category": category, "reason": reason, "project": int(p.id)}
                if any(values and row[name] not in values for name, values in wanted.items()):
                    continue
                acc = groups.setdefault(tuple((g, row[g]) for g in group_by), [0] * (len(edges) - 1))
                for j, c in enumerate(series):
                    acc[j] += c
        body = {"start": iso_s(edges[0]), "end": iso_s(edges[-1]), "intervals": [iso_s(t) for t in edges[:-1]],
                "groups": [{"by": dict(k), "totals": {f: sum(v) for f in fields}, "series": dict.fromkeys(fields, v)}
                           for k, v in sorted(groups.items(), key=lambda kv: str(kv[0])) if any(v)]}
        return Reply(body)

    # ------------------------------------------------------------ alerts
    def _offset_with_hits(self, req: Request, items: list) -> Reply:
        reply = self._offset_list(req, items, lambda x: x)
        reply.headers["X-Hits"] = str(len(items))
        return reply

    @route("/api/0/organizations/{org}/detectors/", "alerts:read", ("alerts:read", *ORG))
    def detectors(self, req: Request) -> Reply:
        self._org(req)
        ids = {p.id for p in self.ds.projects if p.idx in self._project_filter(req)}
        return self._offset_with_hits(req, [d for d in live_detectors(self.ds, self.shapes) if d["projectId"] in ids])

    @route("/api/0/organizations/{org}/workflows/", "alerts:read", ("alerts:read", *ORG))
    def workflows(self, req: Request) -> Reply:
        self._org(req)
        # Sentry keeps, when get_projects chose any project, the workflows connected to a detector
        # of one of them or to none (OrganizationWorkflowIndexEndpoint.filter_workflows).
        ids = {p.id for p in self.ds.projects if p.idx in self._project_filter(req)}
        of_detector = {d["id"]: d["projectId"] for d in live_detectors(self.ds, self.shapes)}
        items = [w for w in live_workflows(self.ds, self.shapes)
                 if not ids or not w["detectorIds"] or any(of_detector.get(d) in ids for d in w["detectorIds"])]
        return self._offset_with_hits(req, items)

    # ------------------------------------------------------------ item details (confirm a deletion)
    @route("/api/0/teams/{org}/{team_id_or_slug}/", "team:read", TEAM)
    def team_detail(self, req: Request) -> Reply:
        self._org(req)
        team = self.ds.team(req.params["team_id_or_slug"])
        if team is None:
            raise ApiError(404, NOT_FOUND)
        return Reply(team_detail(self.shapes, team, req.getall("expand"), req.getall("collapse")))

    @route("/api/0/organizations/{org}/members/{member_id}/", "member:read", MEMBER)
    def member_detail(self, req: Request) -> Reply:
        self._org(req)
        member = next((m for m in self.ds.members if m.id == req.params["member_id"]), None)
        if member is None:
            raise ApiError(404, NOT_FOUND)
        admin = "member:admin" in req.token.scopes
        return Reply(member_detail(self.shapes, member, self.ds.members, admin))

    @route("/api/0/organizations/{org}/monitors/{monitor}/", "alerts:read", ("alerts:read", "alerts:write", *PROJECT))
    def monitor_detail(self, req: Request) -> Reply:
        self._org(req)
        monitor = self.ds.monitor(req.params["monitor"])
        if monitor is None:
            raise ApiError(404, NOT_FOUND)
        self._require_visible(req, self.ds.projects[monitor.project])
        return Reply(self.shapes.monitor(monitor, req.now_us))

    @route("/api/0/organizations/{org}/detectors/{detector_id}/", "alerts:read", ("alerts:read", *ORG))
    def detector_detail(self, req: Request) -> Reply:
        self._org(req)
        wanted = req.params["detector_id"]
        detector = next((d for d in live_detectors(self.ds, self.shapes) if d["id"] == wanted), None)
        if detector is None:  # a non-numeric id too: Sentry's to_valid_int_id(raise_404=True)
            raise ApiError(404, NOT_FOUND)
        project = next(p for p in self.ds.projects if p.id == detector["projectId"])
        self._require_visible(req, project)
        return Reply(detector)

    @route("/api/0/organizations/{org}/workflows/{workflow_id}/", "alerts:read", ("alerts:read", *ORG))
    def workflow_detail(self, req: Request) -> Reply:
        self._org(req)
        wanted = req.params["workflow_id"]
        workflow = next((w for w in live_workflows(self.ds, self.shapes) if w["id"] == wanted), None)
        if workflow is None:
            raise ApiError(404, NOT_FOUND)
        return Reply(workflow)

    # ------------------------------------------------------------ delete_after_page
    def delete_listed(self, template: str, item: Any) -> str | None:
        """Delete the record behind a list item (the `delete_after_page` fault) with the dataset
        mutation of its list; its id (version for releases), or None when the list has no
        deletion or the record is already gone. Runs under the dataset lock."""
        if not isinstance(item, dict):
            return None
        key = str(item.get("version") if template.endswith("/releases/") else item.get("id"))
        ds = self.ds
        issue = _deleter(ds.issue, ds.delete_issue)
        deleters: dict[str, Callable[[str], bool]] = {
            ORG_ISSUES: issue, PROJECT_ISSUES: issue,
            "/api/0/organizations/{org}/releases/": _deleter(ds.release, ds.delete_release),
            "/api/0/organizations/{org}/teams/": _deleter(ds.team, ds.delete_team),
            "/api/0/organizations/{org}/members/": _deleter(ds.member, ds.remove_member),
            "/api/0/organizations/{org}/monitors/": _deleter(ds.monitor, ds.delete_monitor),
            "/api/0/organizations/{org}/projects/": _deleter(ds.project, ds.delete_project),
            "/api/0/organizations/{org}/detectors/": lambda k: self._delete_alert("detector", k),
            "/api/0/organizations/{org}/workflows/": lambda k: self._delete_alert("workflow", k),
        }
        deleter = deleters.get(template)
        return key if deleter is not None and deleter(key) else None

    def _delete_alert(self, kind: str, key: str) -> bool:
        if (kind, key) in self.ds.deleted_alerts:
            return False
        self.ds.delete_alert(kind, key)
        return True


def _deleter(find: Callable[[str], Any], delete: Callable[[Any], None]) -> Callable[[str], bool]:
    """A deletion by key for delete_listed: True when the record existed and is gone now."""

    def delete_key(key: str) -> bool:
        record = find(key)
        if record is not None:
            delete(record)
        return record is not None

    return delete_key


# The routes beyond errors (sessions, Explore, replays) register on the same table.
from . import api_beyond, api_peers  # noqa: E402, F401
