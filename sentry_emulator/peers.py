"""The data of the tables other Sentry connectors have (issue 21): issue hashes and tag values,
project users, service hooks, release files, repositories, integrations, Sentry app
installations, dashboards and ownership rules. Bodies in the shapes Sentry's OpenAPI documents;
the handlers are in `api_peers.py`.

Issue hashes, tag values and project users are computed from the events the dataset holds, so
they move with new events. Hot issues (many events) also carry feature-flag tags (`flag.*`),
one key per two events up to 120 (the tag endpoints only: event bodies do not list them), so a
hot issue has many keys, and its `user` tag many values. The rest is generated from the seed
and changed through the `Emulator` methods.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .dataset import Dataset
from .models import EventRef, Issue, Project, Release
from .rand import hex32, hkey, mix, uuid4_like
from .timeutil import US, iso_s

__all__ = ["TAG_NAMES", "PeerData"]

DAY_US = 86400 * US
MAX_FLAG_KEYS = 120
TAG_NAMES = {"browser": "Browser", "environment": "Environment", "handled": "Handled", "level": "Level",
              "os": "OS", "release": "Release", "server_name": "Server", "user": "User",
              "transaction": "Transaction", "blocked-uri": "Blocked URI", "effective-directive": "Effective Directive"}


@dataclass
class Hook:
    id: str
    project: int
    url: str
    secret: str
    events: list[str]
    date_created_us: int


@dataclass
class ReleaseFile:
    id: str
    version: str
    name: str
    size: int
    sha1: str
    date_created_us: int


@dataclass
class Repo:
    id: str
    name: str
    date_created_us: int
    status: str = "active"  # "hidden" once removed in Sentry (listed with status=deleted)
    gone: bool = False  # deleted for good: in neither list, its routes 404


@dataclass
class Integration:
    id: str
    name: str
    provider: str
    domain: str
    external_id: str
    status: str = "active"
    gone: bool = False


@dataclass
class Dashboard:
    id: str
    title: str
    date_created_us: int
    widgets: list[dict[str, Any]] = field(default_factory=list)
    gone: bool = False


@dataclass
class TagStat:
    count: int = 0
    first_us: int = 0
    last_us: int = 0


class PeerData:
    """The records of those tables, over a dataset (reads and changes hold its lock)."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        seed = ds.seed
        created = ds.org_created_us
        self.hooks: list[Hook] = []
        for project in ds.projects:
            for j in range(1 if project.idx % 2 == 0 else 0):
                self.add_hook(project, f"https://hooks.example.com/{project.slug}/{j}", project.date_created_us + DAY_US)
        self.files: list[ReleaseFile] = []
        for release in ds.releases:
            for j in range(1 + hkey(seed, "files", release.version) % 4):
                self.add_file(release, f"~/static/js/main.{j}.js", release.date_created_us + j * US)
        names = sorted({f"acme/{r.package or 'app'}" for r in ds.releases} | {"acme/infrastructure"})
        self.repos = [Repo(str(1 + hkey(name) % 100), name, created + i * DAY_US) for i, name in enumerate(names)]
        self.integrations = [
            Integration("2933", "acme", "github", "github.com/acme", str(mix(seed) % 10**8)),
            Integration(str(4000 + seed % 1000), "Acme Slack", "slack", "acme.slack.com", f"T{mix(seed + 1) % 10**9:09d}"),
        ]
        self.installations = [(uuid4_like(hkey(seed, "install", i)), slug, 9000 + i)
                              for i, slug in enumerate(("linear", "pagerduty-app"))]
        self.dashboards: list[Dashboard] = []
        for title in ("Backend health", "Frontend errors"):
            self.add_dashboard(title, created + (1 + len(self.dashboards)) * DAY_US)
        self.ownership: dict[int, str] = {
            p.idx: f"path:src/{p.slug}/* #{ds.teams[p.idx % len(ds.teams)].slug}\n" if ds.teams else ""
            for p in ds.projects
        }
        self.ownership_updated: dict[int, int] = {p.idx: p.date_created_us + DAY_US for p in ds.projects}
        self._tags: dict[tuple[str, int, int], dict[str, dict[str, TagStat]]] = {}

    # ------------------------------------------------------------ changes
    def add_hook(self, project: Project, url: str, now_us: int) -> Hook:
        n = len(self.hooks)
        hook = Hook(hex32(hkey(self.ds.seed, "hook", n)), project.idx, url,
                    hex32(hkey(self.ds.seed, "hook-secret", n)) + hex32(hkey(self.ds.seed, "hook-secret2", n)),
                    ["event.alert", "event.created"], now_us - now_us % US)
        self.hooks.append(hook)
        return hook

    def add_file(self, release: Release, name: str, now_us: int) -> ReleaseFile:
        n = len(self.files)
        h = hkey(self.ds.seed, "file", n)
        file = ReleaseFile(str(700_000_000 + h % 10**8), release.version, name, 1000 + h % 500_000,
                           hashlib.sha1(f"{release.version}/{name}/{n}".encode()).hexdigest(), now_us - now_us % US)
        self.files.append(file)
        return file

    def add_dashboard(self, title: str, now_us: int) -> Dashboard:
        n = len(self.dashboards)
        dashboard = Dashboard(str(10_000 + n), title, now_us - now_us % US)
        dashboard.widgets = [self.widget(dashboard, j, f"Errors by {by}", f"count() by {by}")
                             for j, by in enumerate(("project", "release"))]
        self.dashboards.append(dashboard)
        return dashboard

    def widget(self, dashboard: Dashboard, j: int, title: str, query: str) -> dict[str, Any]:
        widget_id = str(int(dashboard.id) * 10 + j)
        return {"id": widget_id, "title": title, "description": None, "displayType": "line", "thresholds": None,
                "interval": "1h", "dateCreated": iso_s(dashboard.date_created_us), "dashboardId": dashboard.id,
                "queries": [{"id": str(int(widget_id) * 10), "name": "", "fields": ["count()"], "aggregates": ["count()"],
                             "columns": [], "fieldAliases": [], "conditions": query, "orderby": "", "widgetId": widget_id,
                             "onDemand": [], "isHidden": False, "linkedDashboards": [], "selectedAggregate": None}],
                "limit": None, "widgetType": "error-events", "layout": {"x": 0, "y": 2 * j, "w": 2, "h": 2, "minH": 2},
                "axisRange": None, "legendType": None, "datasetSource": "user", "exploreUrls": None, "changedReason": None}

    # ------------------------------------------------------------ computed from events
    def _refs(self, issue: Issue, now_us: int) -> list[EventRef]:
        view = self.ds.issue_event_view(issue, None, None, now_us)
        return view.page(0, len(view))

    def hashes(self, issue: Issue, now_us: int) -> list[tuple[str, EventRef]]:
        """(hash, its latest event) of an issue: one hash, a second one for a tenth of the events
        of issues with 20 or more (as a grouping upgrade leaves behind)."""
        refs = self._refs(issue, now_us)
        latest: dict[str, EventRef] = {}
        primary = hex32(hkey("hash", issue.id))
        for ref in refs:  # newest first
            second = len(refs) >= 20 and ref.h % 10 == 0
            latest.setdefault(hex32(hkey("hash2", issue.id)) if second else primary, ref)
        return sorted(latest.items())

    def tags(self, issue: Issue, now_us: int, event_tags: Any) -> dict[str, dict[str, TagStat]]:
        """key -> value -> count, first and last seen, over the issue's events now."""
        refs = self._refs(issue, now_us)
        cache_key = (issue.id, self.ds.version, len(refs))
        cached = self._tags.get(cache_key)
        if cached is not None:
            return cached
        flags = min(MAX_FLAG_KEYS, len(refs) // 2) if len(refs) >= 40 else 0
        out: dict[str, dict[str, TagStat]] = {}

        def count(key: str, value: str, t_us: int) -> None:
            stat = out.setdefault(key, {}).setdefault(value, TagStat(0, t_us, t_us))
            stat.count += 1
            stat.first_us, stat.last_us = min(stat.first_us, t_us), max(stat.last_us, t_us)

        for ref in refs:
            for tag in event_tags(ref):
                count(tag["key"], tag["value"], ref.t_us)
            for k in range(flags):
                count(f"flag.feature_{k:03d}", "true" if mix(ref.h ^ k) % 3 else "false", ref.t_us)
        self._tags = {cache_key: out}  # the last issue asked: a reader asks for its keys one by one
        return out

    def users(self, project: Project, now_us: int, user_of: Any) -> list[tuple[dict[str, Any], int]]:
        """(user, first seen) of the users of a project's events now, oldest first."""
        view = self.ds.event_view(project, None, None, now_us)
        first: dict[str, tuple[dict[str, Any], int]] = {}
        for ref in view.page(0, len(view)):
            user = user_of(ref)
            seen = first.get(user["id"])
            if seen is None or ref.t_us < seen[1]:
                first[user["id"]] = (user, ref.t_us)
        return sorted(first.values(), key=lambda u: (u[1], u[0]["id"]))

    # ------------------------------------------------------------ bodies
    @staticmethod
    def user_body(user: dict[str, Any], first_us: int) -> dict[str, Any]:
        tag_value = f"id:{user['id']}"
        email = user.get("email") or ""
        return {"id": user["id"], "tagValue": tag_value, "identifier": user["id"], "username": f"user{user['id']}",
                "email": email, "name": f"User {user['id']}", "ipAddress": user.get("ip_address") or "",
                "avatarUrl": f"https://gravatar.com/avatar/{hashlib.md5(email.encode()).hexdigest()}?s=32&d=mm",
                "hash": hashlib.md5(tag_value.encode()).hexdigest(), "dateCreated": iso_s(first_us)}

    @staticmethod
    def hook_body(hook: Hook) -> dict[str, Any]:
        return {"id": hook.id, "url": hook.url, "secret": hook.secret, "status": "active", "events": list(hook.events),
                "dateCreated": iso_s(hook.date_created_us)}

    @staticmethod
    def file_body(file: ReleaseFile) -> dict[str, Any]:
        content_type = "application/json" if file.name.endswith(".map") else "application/javascript"
        return {"id": file.id, "name": file.name, "dist": None, "headers": {"Content-Type": content_type},
                "size": file.size, "sha1": file.sha1, "dateCreated": iso_s(file.date_created_us)}

    @staticmethod
    def repo_body(repo: Repo) -> dict[str, Any]:
        return {"id": repo.id, "name": repo.name, "url": f"https://github.com/{repo.name}",
                "provider": {"id": "integrations:github", "name": "GitHub"}, "status": repo.status,
                "integrationId": "2933", "externalSlug": repo.name, "externalId": str(mix(len(repo.name)) % 10**8),
                "dateCreated": iso_s(repo.date_created_us), "settings": None}

    def integration_body(self, integration: Integration, config: bool) -> dict[str, Any]:
        return {"id": integration.id, "name": integration.name, "icon": None, "domainName": integration.domain,
                "accountType": "Organization", "scopes": None, "outOfDate": False, "status": integration.status,
                "provider": {"key": integration.provider, "slug": integration.provider,
                             "name": integration.provider.title(), "canAdd": True, "canDisable": False,
                             "features": ["commits", "issue-basic"], "aspects": {}},
                "configOrganization": [] if config else None,
                "configData": {"webhookSecret": "whsec_do_not_copy"} if config else None,
                "externalId": integration.external_id, "organizationId": int(self.ds.org_id),
                "organizationIntegrationStatus": integration.status, "gracePeriodEnd": None}

    def installation_body(self, install: tuple[str, str, int]) -> dict[str, Any]:
        uuid, slug, app_id = install
        return {"app": {"uuid": uuid4_like(hkey(uuid)), "slug": slug, "sentryAppId": app_id},
                "organization": {"slug": self.ds.org_slug}, "uuid": uuid, "status": "installed"}

    def dashboard_body(self, dashboard: Dashboard, owner: dict[str, Any] | None, detail: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"id": dashboard.id, "title": dashboard.title, "dateCreated": iso_s(dashboard.date_created_us),
                                "createdBy": owner, "environment": [], "filters": {}, "projects": [],
                                "permissions": None, "isFavorited": False, "prebuiltId": None}
        if detail:
            body.update({"widgets": dashboard.widgets, "period": "14d", "utc": "false", "expired": False})
        else:
            body.update({"widgetDisplay": [w["displayType"] for w in dashboard.widgets],
                         # Sentry's preview: each widget's display type (its OpenAPI: string values).
                         "widgetPreview": [{"displayType": w["displayType"]} for w in dashboard.widgets],
                         "lastVisited": None})
        return body

    def ownership_body(self, project: Project) -> dict[str, Any]:
        raw = self.ownership.get(project.idx, "")
        rules = []
        for line in raw.splitlines():
            bits = line.split()
            if len(bits) >= 2 and ":" in bits[0]:
                kind, pattern = bits[0].split(":", 1)
                rules.append({"matcher": {"type": kind, "pattern": pattern},
                              "owners": [{"type": "team", "name": o.lstrip("#")} for o in bits[1:]]})
        return {"raw": raw, "fallthrough": True, "dateCreated": iso_s(project.date_created_us + DAY_US),
                "lastUpdated": iso_s(self.ownership_updated.get(project.idx, project.date_created_us)),
                "isActive": True, "autoAssignment": "Auto Assign to Issue Owner", "codeownersAutoSync": True,
                "schema": {"$version": 1, "rules": rules} if rules else None}
