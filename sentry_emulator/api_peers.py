"""Endpoints of the tables other Sentry connectors have: issue hashes and tag values, project
users, service hooks, release files, repositories, integrations, Sentry app installations,
dashboards and ownership. Registered on the route table of `api.py` (which imports this
module); the data is `peers.py`'s. Lists page by offset with Link headers as Sentry's
OffsetPaginator does; each route answers 403 without one of the scopes its OpenAPI `security` names.
"""

from __future__ import annotations

from typing import Any, TypeVar

from .api import EVENT, NOT_FOUND, ORG, PROJECT, RELEASES, Api, ApiError, Reply, Request, route
from .peers import TAG_NAMES, Dashboard, Integration, PeerData, Repo
from .timeutil import BadParam, iso_s

__all__: list[str] = []

INTEGRATIONS = ("org:admin", "org:integrations", "org:read", "org:write")
REPOS = ("org:admin", "org:ci", "org:integrations", "org:read", "org:write")
_ORG = "/api/0/organizations/{org}"
_PROJECT = "/api/0/projects/{org}/{project}"


def _peers(api: Api) -> PeerData:
    return api.beyond.peers


def _tag_key(api: Api, req: Request) -> tuple[Any, dict[str, Any]]:
    issue = api._issue(req)
    tags = _peers(api).tags(issue, req.now_us, lambda ref: api.shapes._event_common(ref)[0]["tags"])
    return issue, tags


@route(f"{_ORG}/issues/{{issue_id}}/hashes/", "event:read", EVENT)
def issue_hashes(api: Api, req: Request) -> Reply:
    issue = api._issue(req)
    full = (req.get("full") or "true").lower() not in ("0", "false")
    hashes = _peers(api).hashes(issue, req.now_us)
    return api._offset_list(req, hashes, lambda h: {"id": h[0], "latestEvent": api.shapes.event(h[1], full),
                                                    "mergedBySeer": False, "seerMatchDistance": None})


@route(f"{_ORG}/issues/{{issue_id}}/tags/{{key}}/values/", "event:read", EVENT)
def issue_tag_values(api: Api, req: Request) -> Reply:
    _, tags = _tag_key(api, req)
    key = req.params["key"]
    values = tags.get(key)
    if values is None:
        raise ApiError(404, NOT_FOUND)
    sort = req.get("sort") or "-count"
    orders = {"-count": lambda v: (-v[1].count, v[0]), "-last_seen": lambda v: (-v[1].last_us, v[0]),
              "-first_seen": lambda v: (-v[1].first_us, v[0]), "-id": lambda v: v[0]}
    if sort not in orders:
        raise BadParam("Invalid sort")
    items = sorted(values.items(), key=orders[sort])
    name = _tag_name(key)
    return api._offset_list(req, items, lambda v: {
        "key": key, "name": name, "value": v[0], "count": v[1].count, "query": f'{key}:"{v[0]}"',
        "firstSeen": iso_s(v[1].first_us), "lastSeen": iso_s(v[1].last_us)})


def issue_tag_summaries(api: Api, req: Request) -> list[dict[str, Any]]:
    """The issue detail's `tags`: every key of the issue with its name and total count."""
    _, tags = _tag_key(api, req)
    return [{"key": key, "name": _tag_name(key), "totalValues": sum(s.count for s in values.values())}
            for key, values in sorted(tags.items())]


def _tag_name(key: str) -> str:
    return TAG_NAMES.get(key, key)


@route(f"{_PROJECT}/users/", "project:read", PROJECT)
def project_users(api: Api, req: Request) -> Reply:
    project = api._project(req)
    users = _peers(api).users(project, req.now_us, api.shapes._user)
    text = req.get("query") or ""
    if text:
        field, _, value = text.partition(":")
        users = [u for u in users if str(u[0].get({"id": "id", "email": "email"}.get(field, field)) or "") == value]
    return api._offset_list(req, users, lambda u: PeerData.user_body(*u))


@route(f"{_PROJECT}/hooks/", "project:read", ("project:read",))
def service_hooks(api: Api, req: Request) -> Reply:
    project = api._project(req)
    hooks = [h for h in _peers(api).hooks if h.project == project.idx]
    return api._offset_list(req, sorted(hooks, key=lambda h: h.date_created_us, reverse=True), PeerData.hook_body)


@route(f"{_ORG}/releases/{{version}}/files/", "project:releases", RELEASES)
def release_files(api: Api, req: Request) -> Reply:
    release = api._release(req)
    files = sorted((f for f in _peers(api).files if f.version == release.version), key=lambda f: (f.name, f.id))
    return api._offset_list(req, files, PeerData.file_body)


_Live = TypeVar("_Live", Repo, Integration, Dashboard)


def _live(api: Api, req: Request, items: list[_Live], param: str) -> _Live:
    """The item of ``items`` whose id is the path's ``param``, unless gone (a 404 then)."""
    api._org(req)
    found = next((i for i in items if i.id == req.params[param] and not i.gone), None)
    if found is None:
        raise ApiError(404, NOT_FOUND)
    return found


@route(f"{_ORG}/repos/", "org:read", REPOS)
def repositories(api: Api, req: Request) -> Reply:
    api._org(req)
    status = req.get("status") or "active"
    live = [r for r in _peers(api).repos if not r.gone]
    if status == "active":
        repos = [r for r in live if r.status == "active"]
    elif status == "deleted":
        repos = [r for r in live if r.status != "active"]
    else:
        repos = []  # Sentry: an unknown status lists nothing
    return api._offset_list(req, sorted(repos, key=lambda r: (r.name, r.id)), PeerData.repo_body)


@route(f"{_ORG}/repos/{{repo_id}}/commits/", "org:read", REPOS)
def repository_commits(api: Api, req: Request) -> Reply:
    repo = _live(api, req, _peers(api).repos, "repo_id")
    commits = [(r, c) for r in api.ds.releases for c in r.commits if f"acme/{r.package or 'app'}" == repo.name]
    commits.sort(key=lambda rc: rc[1].date_created_us, reverse=True)
    return api._offset_list(req, commits, lambda rc: api.shapes.commit(rc[0], rc[1]))


@route(f"{_ORG}/integrations/", "org:read", INTEGRATIONS)
def integrations(api: Api, req: Request) -> Reply:
    api._org(req)
    config = (req.get("includeConfig") or "1").lower() not in ("0", "false")
    items = [i for i in _peers(api).integrations if not i.gone]
    return api._offset_list(req, items, lambda i: _peers(api).integration_body(i, config))


@route(f"{_ORG}/integrations/{{integration_id}}/", "org:read", INTEGRATIONS)
def integration_detail(api: Api, req: Request) -> Reply:
    return Reply(_peers(api).integration_body(_live(api, req, _peers(api).integrations, "integration_id"), True))


@route(f"{_ORG}/sentry-app-installations/", "org:read", ("org:read", "org:integrations"))
def sentry_app_installations(api: Api, req: Request) -> Reply:
    api._org(req)
    return api._offset_list(req, list(_peers(api).installations), _peers(api).installation_body)


def _owner(api: Api) -> dict[str, Any] | None:
    members = [m for m in api.ds.members if not m.pending]
    return api.shapes.user(members[0]) if members else None


@route(f"{_ORG}/dashboards/", "org:read", ORG)
def dashboards(api: Api, req: Request) -> Reply:
    api._org(req)
    items = sorted((d for d in _peers(api).dashboards if not d.gone), key=lambda d: (d.title.lower(), d.id))
    return api._offset_list(req, items, lambda d: _peers(api).dashboard_body(d, _owner(api), detail=False))


@route(f"{_ORG}/dashboards/{{dashboard_id}}/", "org:read", ORG)
def dashboard_detail(api: Api, req: Request) -> Reply:
    return Reply(_peers(api).dashboard_body(_live(api, req, _peers(api).dashboards, "dashboard_id"), _owner(api), detail=True))


@route(f"{_PROJECT}/ownership/", "project:read", PROJECT)
def project_ownership(api: Api, req: Request) -> Reply:
    return Reply(_peers(api).ownership_body(api._project(req)))

