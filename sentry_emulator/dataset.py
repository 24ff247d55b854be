"""The emulated organization: deterministic generation from the seed, visibility rules, mutations.

All reads and writes happen under `Dataset.lock`; the HTTP handlers take it while building a page.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from array import array
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import catalog as cat
from .events import MAX_DELAY_US, GeneratedEvents, IssueAgg, VisibleRange
from .models import (
    AddedCheckin,
    Commit,
    Deploy,
    Environment,
    EventRef,
    ExplicitEvent,
    Feedback,
    Issue,
    Member,
    Monitor,
    Project,
    ProjectKey,
    Release,
    Team,
)
from .rand import hex32, hkey, mix, pick, unit, uuid4_like
from .timeutil import US, whole_s

__all__ = ["ISSUE_STATUSES", "Dataset", "EventView"]

DAY_US = 86400 * US
ISSUE_STATUSES = ("unresolved", "resolved", "ignored", "pending_deletion", "pending_merge", "reprocessing")
# stats_v2 rows besides accepted errors: (outcome, category, reason, P(hour has some), min, max).
_DERIVED_OUTCOMES = (
    ("filtered", "error", "browser-extensions", 0.10, 1, 3),
    ("rate_limited", "error", "smart_rate_limit", 0.02, 5, 40),
    ("client_discard", "error", "sample_rate", 0.05, 1, 4),
    ("accepted", "transaction", "none", 0.50, 1, 8),
    ("invalid", "error", "too_large", 0.03, 1, 3),
)
_DEFAULT_SUBSTATUS = {"unresolved": "ongoing", "ignored": "archived_until_escalating"}


class EventView:
    """Visible events of a query, newest first: lazily generated ones merged with stored ones."""

    def __init__(self, gen: VisibleRange | None, gen_ref: Callable[[int], EventRef],
                 gen_time: Callable[[int], int], stored: list[tuple[ExplicitEvent, EventRef]]) -> None:
        self._gen, self._gen_ref, self._gen_time = gen, gen_ref, gen_time
        self._stored = stored  # newest first
        self._n_gen = len(gen) if gen is not None else 0

    def __len__(self) -> int:
        return self._n_gen + len(self._stored)

    def _gkey(self, k: int) -> tuple[int, int, int]:
        assert self._gen is not None
        i = self._gen.nth_newest(k)
        return (self._gen_time(i), 0, i)

    def _skey(self, k: int) -> tuple[int, int, int]:
        e = self._stored[k][0]
        return (e.t_us, 1, e.seq)

    def page(self, offset: int, limit: int) -> list[EventRef]:
        """Items [offset, offset + limit) of the newest-first merge."""
        n_s, n_g = len(self._stored), self._n_gen
        # Binary search how many stored events sit among the first `offset` items.
        lo, hi = max(0, offset - n_g), min(offset, n_s)
        while lo < hi:
            mid = (lo + hi) // 2
            g = offset - mid
            if g > 0 and self._skey(mid) > self._gkey(g - 1):
                lo = mid + 1
            else:
                hi = mid
        s, g = lo, offset - lo
        out: list[EventRef] = []
        while len(out) < limit and (s < n_s or g < n_g):
            if g >= n_g or (s < n_s and self._skey(s) > self._gkey(g)):
                out.append(self._stored[s][1])
                s += 1
            else:
                out.append(self._gen_ref(self._gen.nth_newest(g)))  # type: ignore[union-attr]
                g += 1
        return out


@dataclass(frozen=True)
class Sizes:
    projects: int
    events_per_project: int
    issues_per_project: int
    releases: int
    days: float
    retention_days: float
    teams: int | None = None  # None: about one per two projects (at most 4)
    members: int | None = None  # active members; None: 6 (plus one pending invite either way)
    monitors: int | None = None  # None: min(3, projects)
    live_per_hour: float = 0.0  # per project: generated events arriving after the anchor (0: none)


class Dataset:
    """Everything the emulated Sentry organization holds."""

    def __init__(self, *, seed: int, organization: str, sizes: Sizes, anchor_us: int) -> None:
        self.lock = threading.RLock()
        self.seed = seed
        self.sizes = sizes
        self.anchor_us = anchor_us
        self.span_us = int(sizes.days * DAY_US)
        self.retention_us = int(sizes.retention_days * DAY_US)
        self.org_slug = organization
        self.org_id = str(1 + seed % 1000)
        self.org_created_us = anchor_us - self.span_us - 400 * DAY_US
        self.version = 0  # bumped by every mutation (invalidates caches)
        self._counter = 0  # ids and choices of mutations, deterministic from the seed
        self._seqs: dict[str, int] = {}  # next id per kind for records added later (never reused)
        # Ids in sentry.io's ranges today: releases 9-10 digits, issues 10, projects 16 (below).
        # Sentry-wide sequences: other organizations' records leave gaps between ours.
        self._next_release_id = 300_000_000 + self._h("release-ids") % 2_700_000_000
        self._next_deploy_id = 1000
        self.issues: dict[str, Issue] = {}
        self._next_issue_id = 4_000_000_000 + self._h("issue-ids") % 3_000_000_000
        self._project_id_base = 4_504_000_000_000_000 + (self._h("project-ids") % 10**9) * 10_000
        self.teams = self._gen_teams()
        self.members = self._gen_members()
        self.environments = [Environment(str(i + 1), n, h) for i, (n, h) in enumerate(cat.ENVIRONMENTS)]
        self.projects: list[Project] = []
        for p in range(sizes.projects):
            self._gen_project(p, self._project_slug(p))
        self.releases: list[Release] = []
        self._gen_releases(sizes.releases)
        self.keys = [k for p in self.projects for k in self._gen_keys(p)]
        self.feedback = [f for p in self.projects for f in self._gen_feedback(p)]
        self.monitors = self._gen_monitors()
        # Mutations of the hostile modes: old slug -> (project idx, answer with Location?), and
        # deleted ("detector" | "workflow", id) pairs (both lists are computed from the projects).
        self.project_redirects: dict[str, tuple[int, bool]] = {}
        self.deleted_alerts: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ generation
    def _h(self, *parts: int | str) -> int:
        return hkey(self.seed, *parts)

    def _next(self) -> int:
        self._counter += 1
        return self._h("mutation", self._counter)

    @staticmethod
    def _project_slug(p: int) -> str:
        return cat.PROJECT_SLUGS[p] if p < len(cat.PROJECT_SLUGS) else f"project-{p + 1}"

    def _seq(self, kind: str, start: int) -> str:
        n = self._seqs.get(kind, start)
        self._seqs[kind] = n + 1
        return str(n)

    def _gen_teams(self) -> list[Team]:
        n = self.sizes.teams
        if n is None:
            n = max(1, min(len(cat.TEAM_SLUGS), (self.sizes.projects + 1) // 2 + 1))
        slugs = [cat.TEAM_SLUGS[i] if i < len(cat.TEAM_SLUGS) else f"team-{i + 1}" for i in range(n)]
        self._seqs["team"] = 10 + n
        return [Team(str(10 + i), s, s.replace("-", " ").title(), self.org_created_us + i * DAY_US)
                for i, s in enumerate(slugs)]

    def _gen_members(self) -> list[Member]:
        out = []
        n = len(cat.PEOPLE) if self.sizes.members is None else self.sizes.members
        people = [cat.PEOPLE[i] if i < len(cat.PEOPLE) else (f"Member {i + 1}", f"member{i + 1}@example.com", "member")
                  for i in range(n)]
        for i, (name, email, role) in enumerate(people):
            teams = [t.slug for j, t in enumerate(self.teams) if (i + j) % 2 == 0 or role == "owner"]
            out.append(Member(str(100 + i), str(1 + i), email, name, role,
                              self.org_created_us + i * 3 * DAY_US, teams=teams))
        _, email, role = cat.PENDING_INVITE
        out.append(Member(str(100 + len(out)), None, email, email, role,
                          self.anchor_us - 2 * DAY_US, pending=True))
        self._seqs["member"], self._seqs["user"] = 100 + len(out), 1 + len(out)
        return out

    def _gen_project(self, p: int, slug: str, created_us: int | None = None,
                     n_events: int | None = None, n_issues: int | None = None) -> Project:
        platform = cat.PLATFORMS.get(slug) or pick(self._h("platform", p), cat.EXTRA_PLATFORMS)
        n_ev = self.sizes.events_per_project if n_events is None else n_events
        n_is = self.sizes.issues_per_project if n_issues is None else n_issues
        gen = GeneratedEvents(self._h("events", p), n_ev, n_is, self.anchor_us, self.span_us)
        per_issue, aggs, pending = gen.group(self.anchor_us) if n_ev else ([], [], [])
        created = created_us if created_us is not None else self.anchor_us - self.span_us - (30 + 7 * p) * DAY_US
        project = Project(
            idx=p, id=self._project_id(p), slug=slug, name=slug.replace("-", " ").title(),
            platform=platform, date_created_us=created,
            team=self.teams[p % len(self.teams)].slug if self.teams else None,
            events=gen, per_issue=per_issue, base_owner=[], pending=pending,
        )
        self.projects.append(project)
        for k, agg in enumerate(aggs):
            project.base_owner.append(self._gen_issue(project, k, agg))
        return project

    def _project_id(self, p: int) -> str:
        """16 digits, like sentry.io's project ids today (4504212345678912); rising with p."""
        return str(self._project_id_base + (p + 1) * 97 + self._h("project-id", p) % 97)

    def _new_issue_id(self) -> str:
        issue_id = str(self._next_issue_id)
        self._next_issue_id += 1 + self._h("issue-gap", issue_id) % 40
        return issue_id

    def _issue_kind(self, project: Project, k: int, h: int) -> tuple[str, dict[str, Any]]:
        """The kind of generated issue k and its own values: about 78% exceptions, then messages,
        CSP reports (browser projects), performance, cron (projects with monitors), feedback and
        uptime issues. The two busiest issues stay exceptions."""
        u, hv = unit(mix(h ^ 5)), mix(h ^ 6)
        if k < 2 or u >= 0.22:
            return "error", {}
        if u < 0.07:
            message, logger, level = pick(hv, cat.MESSAGES[project.platform])
            return "default", {"message": message, "logger": logger, "level": level}
        if u < 0.10:
            if project.platform != "javascript":
                return "error", {}
            directive, host = pick(hv, cat.CSP_VIOLATIONS)
            return "csp", {"directive": directive, "host": host}
        if u < 0.15:
            issue_type, type_id, title, description, op = pick(hv, cat.PERFORMANCE_PROBLEMS)
            return "performance", {"issue_type": issue_type, "type_id": type_id, "title": title,
                                   "description": description, "op": op,
                                   "transaction": pick(hv >> 8, cat.TRANSACTIONS)}
        if u < 0.18:
            monitors = [(slug, name) for slug, name, _, p in self._monitor_specs() if p == project.idx]
            if not monitors:
                return "error", {}
            slug, name = pick(hv, monitors)
            return "cron", {"monitor": slug, "name": name}
        if u < 0.20:
            name, email, _ = pick(hv >> 8, cat.PEOPLE)
            return "feedback", {"comment": pick(hv, cat.FEEDBACK_COMMENTS), "name": name, "email": email}
        url, reason = pick(hv, cat.UPTIME_CHECKS)
        return "uptime", {"url": url, "reason": reason}

    def _history(self, h: int, first_us: int | None) -> tuple[int, int, int | None]:
        """(count, users, first) of an issue's occurrences before the generated history: about
        15% of issues are older and were noisy once, from tens to millions of events."""
        u = unit(mix(h ^ 7))
        if first_us is None or u >= 0.15:
            return 0, 0, None
        count = int(10 ** (1 + 6 * unit(mix(h ^ 8))))
        first = first_us - (30 + int(unit(mix(h ^ 9)) * 300)) * DAY_US - (mix(h ^ 10) % DAY_US)
        return count, int(count ** 0.6), first

    def _gen_issue(self, project: Project, k: int, agg: IssueAgg, kind: str | None = None) -> Issue:
        h = self._h("issue", project.idx, k)
        exc_type, value, filename, function, module = pick(h, cat.ERRORS[project.platform])
        variant = (h >> 8) % 4
        if k >= len(cat.ERRORS[project.platform]):
            function = f"{function}_{variant}" if variant else function
        kind, detail = (kind, {}) if kind is not None else self._issue_kind(project, k, h)
        hist_count, hist_users, hist_first = self._history(h, agg.first_us)  # none for added issues
        u_status, u_sub, u_assign = unit(mix(h ^ 1)), unit(mix(h ^ 2)), unit(mix(h ^ 3))
        first = agg.first_us if agg.first_us is not None else self.anchor_us
        first = min(first, hist_first) if hist_first is not None else first
        if u_status < 0.66:
            status = "unresolved"
            if first > self.anchor_us - 7 * DAY_US:
                substatus: str | None = "new"
            else:
                substatus = "regressed" if u_sub < 0.15 else ("escalating" if u_sub < 0.22 else "ongoing")
        elif u_status < 0.84:
            status, substatus = "resolved", None
        else:
            status = "ignored"
            substatus = ("archived_until_escalating", "archived_forever", "archived_until_condition_met")[int(u_sub * 3)]
        issue = Issue(
            id=self._new_issue_id(), project=project.idx,
            short_id=f"{project.slug.upper()}-{k + 1:X}",
            title=f"{exc_type}: {value}", culprit=f"{module} in {function}",
            exc_type=exc_type, exc_value=value, filename=filename, function=function,
            level=("error", "error", "error", "fatal", "warning")[(h >> 16) % 5],
            platform=project.platform, logger=None, status=status, substatus=substatus,
            priority=("high", "medium", "medium", "low")[(h >> 20) % 4],
            envs=("production", "staging") if (h >> 24) % 3 == 0 else ("production",),
            linked=(h >> 28) % 10 == 0,
            in_inbox=status == "unresolved" and substatus in ("new", "regressed", "escalating") and u_sub < 0.5,
            is_bookmarked=(h >> 32) % 17 == 0, has_seen=(h >> 36) % 2 == 0,
            num_comments=(h >> 40) % 4 if (h >> 44) % 3 == 0 else 0, agg=agg, sources=[k],
            status_changed_us=None if status == "unresolved" else (agg.last_us or self.anchor_us),
            kind=kind, detail=detail, hist_count=hist_count, hist_users=hist_users, hist_first_us=hist_first,
        )
        self._apply_kind(issue)
        if u_assign < 0.18:
            issue.assigned_to = self._assignee(h)
        self.issues[issue.id] = issue
        return issue

    @staticmethod
    def _apply_kind(issue: Issue) -> None:
        """Title, culprit, level and logger as Sentry shows them for the issue's kind."""
        d = issue.detail
        if issue.kind == "default":
            issue.title, issue.level, issue.logger = d["message"], d["level"], d["logger"]
        elif issue.kind == "csp":
            blocked = d["directive"].split("-")[0]
            issue.title, issue.culprit, issue.logger = f"Blocked '{blocked}' from '{d['host']}'", d["directive"], "csp"
            issue.level = "error"
        elif issue.kind == "performance":
            issue.title, issue.culprit, issue.level = d["title"], d["transaction"], "info"
        elif issue.kind == "cron":
            issue.title, issue.culprit, issue.level = f"Cron failure: {d['name']}", "", "error"
        elif issue.kind == "feedback":
            issue.title, issue.culprit, issue.level = "User Feedback", "user", "info"
        elif issue.kind == "uptime":
            issue.title, issue.culprit, issue.level = f"Downtime detected for {d['url']}", "", "error"

    def _assignee(self, h: int) -> dict[str, Any]:
        if (h >> 48) % 4 == 0:
            team = pick(h >> 50, self.teams)
            return {"type": "team", "id": team.id, "name": team.slug}
        active = [m for m in self.members if not m.pending]
        m = pick(h >> 50, active)
        return {"type": "user", "id": m.user_id, "name": m.name, "email": m.email}

    def _gen_releases(self, n: int) -> None:
        patch_by_pkg: dict[str, int] = {}
        for r in range(n):
            h = self._h("release", r)
            primary = self.projects[r % len(self.projects)] if self.projects else None
            package = primary.slug if primary else "app"
            patch_by_pkg[package] = patch_by_pkg.get(package, 0) + 1
            seq = patch_by_pkg[package]
            created = self.anchor_us - self.span_us + int((r + unit(h) * 0.9) * self.span_us / max(n, 1))
            projects = [primary.idx] if primary else []
            projects += [p.idx for p in self.projects if p is not primary and unit(mix(h ^ p.idx)) < 0.3]
            self._make_release(h, f"{package}@1.{seq // 10}.{seq % 10}", package, created, sorted(projects))

    def _make_release(self, h: int, version: str, package: str | None, created: int,
                      projects: list[int], deploys: bool = True) -> Release:
        released = created + (5 + h % 55) * 60 * US if unit(mix(h ^ 7)) < 0.8 else None
        if released is not None and (h >> 20) % 2:
            released = whole_s(released)  # finalized by a client that sent whole seconds
        release = Release(
            id=self._next_release_id, version=version, package=package, date_created_us=created,
            date_released_us=released, projects=projects, ref="main",
            url=f"https://github.com/acme/{package or 'app'}/releases/tag/{version.split('@')[-1]}",
        )
        self._next_release_id += 1 + self._h("release-gap", version) % 5000
        for c in range(1 + h % 5):
            ch = mix(h ^ (100 + c))
            name, email, _ = pick(ch >> 8, cat.PEOPLE)
            release.commits.append(Commit(
                f"{mix(ch):016x}{mix(ch ^ 1):016x}{mix(ch ^ 2) & 0xFFFFFFFF:08x}",
                pick(ch, cat.COMMIT_MESSAGES), created - (c + 1) * 3600 * US, name, email))
        if deploys and unit(mix(h ^ 9)) >= 0.2:  # about 20% never deployed: lastDeploy null
            for d, env in enumerate(("staging", "production")[: 1 + (h >> 12) % 2]):
                finished = created + (20 + 40 * d) * 60 * US
                if finished <= self.anchor_us:
                    release.deploys.append(self._deploy(release, env, finished))
        self.releases.append(release)
        return release

    def _deploy(self, release: Release, env: str, finished_us: int) -> Deploy:
        self._next_deploy_id += 1
        deploy_id = str(self._next_deploy_id - 1)
        if self._h("deploy", deploy_id) % 2:
            finished_us = whole_s(finished_us)  # reported by a CI job with whole-second times
        return Deploy(deploy_id, env, finished_us - 90 * US, finished_us, f"{release.version} to {env}", None)

    def _gen_keys(self, project: Project) -> list[ProjectKey]:
        out = []
        for j in range(2 if project.idx == 0 else 1):
            h = self._h("key", project.idx, j)
            public = hex32(mix(h ^ 1))  # Sentry uses the public key as the key id
            out.append(ProjectKey(public, project.idx, "Default" if j == 0 else "Backend jobs",
                                  public, hex32(mix(h ^ 2)), project.date_created_us + j * DAY_US))
        return out

    def _gen_feedback(self, project: Project) -> list[Feedback]:
        gen, out = project.events, []
        count = min(5, gen.n // 20)
        for j in range(count):
            i = gen.n - 1 - (j * gen.n) // max(count, 1) - 1
            i = max(0, min(gen.n - 1, i))
            name, email, _ = pick(self._h("fb", project.idx, j), cat.PEOPLE)
            owner = project.base_owner[gen.issue(i)]
            created = min(self.anchor_us, gen.time_us(i) + 120 * US)
            out.append(Feedback(str(500 + 10 * project.idx + j),
                                project.idx, hex32(gen.hash(i)), owner.id if owner else None, name, email,
                                "It broke when I clicked save.", created))
        return out

    def _monitor_specs(self) -> list[tuple[str, str, int, int]]:
        """(slug, name, interval minutes, project index) of the generated monitors."""
        n_projects = self.sizes.projects
        if not n_projects:
            return []
        n = min(3, n_projects) if self.sizes.monitors is None else self.sizes.monitors
        specs = [cat.MONITORS[j] if j < len(cat.MONITORS)
                 else (f"job-{j + 1}", f"Job {j + 1}", cat.MONITORS[j % len(cat.MONITORS)][2]) for j in range(n)]
        return [(slug, name, minutes, j % n_projects) for j, (slug, name, minutes) in enumerate(specs)]

    def _gen_monitors(self) -> list[Monitor]:
        out: list[Monitor] = []
        for j, (slug, name, minutes, p) in enumerate(self._monitor_specs()):
            step = minutes * 60 * US
            first = ((self.anchor_us - self.span_us) // step + 1) * step
            out.append(Monitor(uuid4_like(self._h("monitor", j)), slug, name, p, minutes, first, first - DAY_US))
        return out

    # ------------------------------------------------------------------ lookups
    @property
    def live_projects(self) -> list[Project]:
        """Projects not deleted (`projects` keeps deleted ones: it is indexed by `Project.idx`)."""
        return [p for p in self.projects if not p.deleted]

    def project(self, slug_or_id: str) -> Project | None:
        for p in self.projects:
            if not p.deleted and (p.slug == slug_or_id or p.id == slug_or_id):
                return p
        return None

    def team(self, slug_or_id: str) -> Team | None:
        return next((t for t in self.teams if slug_or_id in (t.slug, t.id)), None)

    def member(self, key: str) -> Member | None:
        """By member id, email or user id."""
        return next((m for m in self.members if key in (m.id, m.email, m.user_id)), None)

    def live_monitors(self) -> list[Monitor]:
        return [m for m in self.monitors if not self.projects[m.project].deleted]

    def monitor(self, slug_or_id: str) -> Monitor | None:
        return next((m for m in self.live_monitors() if slug_or_id in (m.slug, m.id)), None)

    def issue(self, issue_id: str) -> Issue | None:
        """A live issue (not deleted, not merged away); also accepts a short id."""
        issue = self.issues.get(issue_id)
        if issue is None:
            issue = next((i for i in self.issues.values() if i.short_id == issue_id), None)
        if issue is None or issue.deleted or issue.merged_into or self.projects[issue.project].deleted:
            return None
        return issue

    def _resolve(self, issue_id: str) -> Issue | None:
        issue = self.issues.get(issue_id)
        while issue is not None and issue.merged_into:
            issue = self.issues.get(issue.merged_into)
        return None if issue is None or issue.deleted else issue

    def release(self, version: str) -> Release | None:
        return next((r for r in self.releases if r.version == version), None)

    def release_for(self, project: int, t_us: int) -> Release | None:
        """Latest release of the project created at or before t (the release an event carries)."""
        best = None
        for r in self.releases:
            if project in r.projects and r.date_created_us <= t_us and (best is None or r.date_created_us > best.date_created_us):
                best = r
        return best

    def release_events(self, release: Release, now_us: int) -> tuple[int, int] | None:
        """dateCreated of the first and the last visible error event carrying `release` (the
        latest release of its project created at or before the event), over its projects."""
        first: int | None = None
        last: int | None = None
        for p in release.projects:
            project = self.projects[p]
            if project.deleted or self.release_for(p, release.date_created_us) is not release:
                continue
            later = [r.date_created_us for r in self.releases
                     if p in r.projects and r.date_created_us > release.date_created_us]
            lo = max(release.date_created_us, now_us - self.retention_us)
            view = self._project_view(project, lo, min(later, default=now_us + 1), now_us)
            if len(view):
                newest, oldest = view.page(0, 1)[0].t_us, view.page(len(view) - 1, 1)[0].t_us
                first = oldest if first is None else min(first, oldest)
                last = newest if last is None else max(last, newest)
        return None if first is None or last is None else (first, last)

    # ------------------------------------------------------------------ visibility
    def settle(self, now_us: int) -> None:
        """Apply generated events whose dateReceived has come (late arrivals become visible), and
        the live events received by now."""
        for project in self.projects:
            if self.sizes.live_per_hour > 0 and project.events.n_issues and not project.deleted:
                self._settle_live(project, now_us)
            moved = 0
            while moved < len(project.pending) and project.pending[moved][0] <= now_us:
                i = project.pending[moved][1]
                owner = project.base_owner[project.events.issue(i)]
                if owner is not None:
                    owner.agg.add(project.events.time_us(i), project.events.user(i))
                moved += 1
            if moved:
                del project.pending[:moved]
                self.version += 1

    # ------------------------------------------------------------------ live events
    def live_event(self, project: Project, j: int) -> tuple[int, int, int]:
        """(dateCreated, dateReceived, hash) of live event j of a project: a pure function of
        (seed, project, j), spread evenly after the anchor at `live_per_hour`."""
        h = self._h("live", project.idx, j)
        step = 3600 * US / self.sizes.live_per_hour
        t = self.anchor_us + int((j + unit(h)) * step)
        h2 = mix(h ^ 0x5BD1E995)
        late = h2 % 64 < 2  # about 3% arrive 5 s to 10 min late, as in the generated span
        delay = 5 * US + h2 % (MAX_DELAY_US - 5 * US) if late else 50_000 + h2 % 1_950_000
        return t, t + delay, h

    def _settle_live(self, project: Project, now_us: int) -> None:
        """Receive the project's live events with dateReceived <= now, whenever this runs: the
        set received by a given time does not depend on when requests came."""
        while True:
            t, recv, _ = self.live_event(project, project.live_next)
            if t > now_us:
                break
            heapq.heappush(project.live_late, (recv, project.live_next))
            project.live_next += 1
        while project.live_late and project.live_late[0][0] <= now_us:
            _, j = heapq.heappop(project.live_late)
            self._receive_live(project, j)

    def _receive_live(self, project: Project, j: int) -> None:
        t, recv, h = self.live_event(project, j)
        gen = project.events
        owner = project.base_owner[gen.live_issue(unit(mix(h ^ 3)))]
        if owner is None:  # its issue was deleted: the event goes with it, like generated ones
            return
        user = (h >> 40) % gen.users
        # Negative sequence numbers: live events never collide with add_events() ones.
        e = ExplicitEvent(-1 - j, hex32(h), project.idx, owner.id, t, recv, h, user)
        insort(project.explicit, e, key=lambda x: (x.t_us, x.seq))
        owner.agg.add(t, user)  # statuses stay as generated (no regression), as in the span
        self.version += 1

    def _removed(self, project: Project) -> list[int]:
        """Sorted generated indices the project events list hides now: not yet received, of a
        deleted issue, or of an issue-platform issue (performance, cron, ...: not error events)."""
        if project.removed_cache and project.removed_cache[0] == self.version:
            return project.removed_cache[1]
        hidden: Iterable[int] = [i for _, i in project.pending]
        deleted = [project.per_issue[k] for k, o in enumerate(project.base_owner) if o is None or not o.is_error]
        removed = sorted(set(hidden).union(*deleted)) if deleted else sorted(hidden)
        project.removed_cache = (self.version, removed)
        return removed

    def gen_ref(self, project: Project, i: int) -> EventRef:
        gen = project.events
        owner = project.base_owner[gen.issue(i)]
        assert owner is not None
        h = gen.hash(i)
        return EventRef(hex32(h), project.idx, owner, gen.time_us(i), gen.received_us(i), h, gen.user(i))

    def added_refs(self, project: Project, *, event_ids: Iterable[str] = (), issue_id: str | None = None) -> list[EventRef]:
        """Stored (added) events of a project by id, or those added to `issue_id`, oldest first."""
        wanted = set(event_ids)
        out = []
        for e in project.explicit:
            if e.event_id in wanted or (issue_id is not None and e.base_issue == issue_id):
                owner = self._resolve(e.base_issue)
                if owner is not None:
                    out.append(EventRef(e.event_id, e.project, owner, e.t_us, e.recv_us, e.h, e.user))
        return out

    def _stored(self, events: Iterable[ExplicitEvent], lo_us: int, hi_us: int, now_us: int,
                issue: Issue | None = None) -> list[tuple[ExplicitEvent, EventRef]]:
        """Stored events received by now in [lo, hi): of `issue`, or else the error events."""
        out = []
        for e in events:
            if e.recv_us > now_us or not lo_us <= e.t_us < hi_us:
                continue
            owner = self._resolve(e.base_issue)
            if owner is None or (owner is not issue if issue is not None else not owner.is_error):
                continue
            out.append((e, EventRef(e.event_id, e.project, owner, e.t_us, e.recv_us, e.h, e.user)))
        out.sort(key=lambda pair: (pair[0].t_us, pair[0].seq), reverse=True)
        return out

    def _bounds(self, start_us: int | None, end_us: int | None, now_us: int) -> tuple[int, int]:
        # Snuba stores event timestamps at second precision and truncates the bounds likewise.
        lo = max(now_us - self.retention_us, (start_us // US) * US if start_us is not None else 0)
        hi = (end_us // US) * US if end_us is not None else now_us + 1
        return lo, hi

    def event_view(self, project: Project, start_us: int | None, end_us: int | None, now_us: int) -> EventView:
        """Error events of a project visible now with dateCreated in [start, end) (whole seconds,
        as snuba compares them), newest first."""
        self.settle(now_us)
        lo, hi = self._bounds(start_us, end_us, now_us)
        return self._project_view(project, lo, hi, now_us)

    def _project_view(self, project: Project, lo: int, hi: int, now_us: int) -> EventView:
        """Error events of a project received by now with lo <= dateCreated < hi, newest first."""
        gen = project.events
        rng = VisibleRange(range(gen.n), gen.first_at_or_after(lo), gen.first_at_or_after(hi),
                           self._removed(project)) if gen.n else None
        return EventView(rng, lambda i: self.gen_ref(project, i), gen.time_us,
                         self._stored(project.explicit, lo, hi, now_us))

    def issue_event_view(self, issue: Issue, start_us: int | None, end_us: int | None, now_us: int) -> EventView:
        self.settle(now_us)
        project = self.projects[issue.project]
        lo, hi = self._bounds(start_us, end_us, now_us)
        gen = project.events
        seq: Sequence[int]
        arrays = [project.per_issue[k] for k in issue.sources if k < len(project.per_issue)]
        seq = arrays[0] if len(arrays) == 1 else array("I", heapq.merge(*arrays))
        pending = sorted(i for _, i in project.pending if project.base_owner[gen.issue(i)] is issue)
        rng = VisibleRange(seq, bisect_left(seq, lo, key=gen.time_us), bisect_left(seq, hi, key=gen.time_us),
                           pending) if len(seq) else None
        return EventView(rng, lambda i: self.gen_ref(project, i), gen.time_us,
                         self._stored(project.explicit, lo, hi, now_us, issue))

    def visible_issues(self, now_us: int) -> list[Issue]:
        """Issues the API can return now: seen at least once, within retention."""
        self.settle(now_us)
        floor = now_us - self.retention_us
        return [i for i in self.issues.values()
                if not i.deleted and not i.merged_into and i.agg.last_us is not None and i.agg.last_us >= floor
                and not self.projects[i.project].deleted]

    def issue_hourly(self, issue: Issue, now_us: int, hours: int = 24) -> list[tuple[int, int]]:
        """[(bucket epoch seconds, events)] for the last `hours` hours (the `stats.24h` series)."""
        project = self.projects[issue.project]
        gen = project.events
        end = (now_us // (3600 * US) + 1) * 3600 * US
        starts = [end - (hours - j) * 3600 * US for j in range(hours + 1)]
        counts = [0] * hours
        for k in issue.sources:
            idx = project.per_issue[k] if k < len(project.per_issue) else []
            pos = [bisect_left(idx, t, key=gen.time_us) for t in starts]
            for j in range(hours):
                counts[j] += pos[j + 1] - pos[j]
        for e in project.explicit:
            if self._resolve(e.base_issue) is issue and starts[0] <= e.t_us < end:
                counts[(e.t_us - starts[0]) // (3600 * US)] += 1
        return [(starts[j] // US, counts[j]) for j in range(hours)]

    def outcomes(self, project: Project, edges: list[int], now_us: int) -> dict[tuple[str, str, str], list[int]]:
        """stats_v2 rows of a project: (outcome, category, reason) -> count per [edges[j], edges[j+1]).

        Accepted errors are the project's visible events (so they match the events endpoint);
        the other rows are a pure function of (seed, project, hour) inside the data window, so
        any interval (a whole number of hours dividing a day) sums the same hours.
        """
        n = len(edges) - 1
        out = {("accepted", "error", "none"): [len(self.event_view(project, a, b, now_us))
                                               for a, b in itertools.pairwise(edges)]}
        hour = 3600 * US
        lo = max(edges[0], self.anchor_us - self.span_us, project.date_created_us) // hour * hour
        hi = min(edges[-1], now_us)
        width = edges[1] - edges[0] if n else hour
        for k, (outcome, category, reason, prob, least, most) in enumerate(_DERIVED_OUTCOMES):
            series = [0] * n
            for t in range(lo, hi, hour):
                h = mix(self._h("outcomes", project.idx, t // hour) ^ (k + 1))
                if t >= edges[0] and unit(h) < prob:
                    series[(t - edges[0]) // width] += least + (h >> 8) % (most - least + 1)
            out[(outcome, category, reason)] = series
        return out

    def checkin_keys(self, monitor: Monitor, now_us: int) -> list[tuple[int, int, int]]:
        """Visible check-ins newest first as (time, kind, n): kind 0 = generated number n,
        kind 1 = `monitor.added[n]`."""
        first, total = self.checkin_count(monitor, now_us)
        step = monitor.interval_minutes * 60 * US
        keys = [(monitor.first_us + j * step, 0, j) for j in range(first, total)]
        if monitor.added:
            floor = now_us - self.retention_us
            keys += [(c.t_us, 1, n) for n, c in enumerate(monitor.added) if floor <= c.t_us <= now_us]
            keys.sort()
        keys.reverse()
        return keys

    def checkin_count(self, monitor: Monitor, now_us: int) -> tuple[int, int]:
        """(first visible index, count) of a monitor's check-ins expected by now, within retention."""
        step = monitor.interval_minutes * 60 * US
        if now_us < monitor.first_us:
            return 0, 0
        total = (now_us - monitor.first_us) // step + 1
        floor = now_us - self.retention_us
        first = max(0, -(-(floor - monitor.first_us) // step))
        return min(first, total), total

    # ------------------------------------------------------------------ mutations
    def add_events(self, project: Project, n: int, now_us: int, late_by_us: int = 0,
                   issue_id: str | None = None) -> list[str]:
        self.settle(now_us)
        target = self._resolve(issue_id) if issue_id else None
        if issue_id and (target is None or target.project != project.idx):
            raise KeyError(f"issue {issue_id} not found in project {project.slug}")
        ids = []
        for _ in range(n):
            h = self._next()
            issue = target or self._pick_issue(project, h, now_us)
            t = now_us - late_by_us
            e = ExplicitEvent(self._counter, hex32(h), project.idx, issue.id, t, now_us, h,
                              (h >> 40) % project.events.users)
            insort(project.explicit, e, key=lambda x: (x.t_us, x.seq))
            issue.agg.add(t, e.user)
            if issue.status == "resolved":  # a new occurrence of a resolved issue is a regression
                issue.status, issue.substatus, issue.status_changed_us = "unresolved", "regressed", now_us
                issue.in_inbox = True
            ids.append(e.event_id)
        self.version += 1
        return ids

    def _pick_issue(self, project: Project, h: int, now_us: int) -> Issue:
        # add_events() adds error events (what the project events list serves).
        live = [i for i in self.issues.values()
                if i.project == project.idx and not i.deleted and not i.merged_into and i.is_error]
        if not live:
            return self.issues[self.add_issue(project, now_us, events=0)]
        live.sort(key=lambda i: int(i.id))
        return live[int(len(live) * unit(h) ** 2.5)]

    def add_issue(self, project: Project, now_us: int, *, events: int = 1, **fields: Any) -> str:
        k = len(project.base_owner)
        issue = self._gen_issue(project, k, IssueAgg(), kind="error")  # an exception, seen from now on
        issue.sources = []
        issue.status, issue.substatus, issue.in_inbox, issue.assigned_to = "unresolved", "new", True, None
        issue.status_changed_us = None
        if events:  # first occurrences before the fields, so a given status is not regressed
            self.add_events(project, events, now_us, issue_id=issue.id)
        for name, value in fields.items():
            if name == "assignee":
                issue.assigned_to = self._assignee_for(value)
            elif hasattr(issue, name) and name not in ("id", "agg", "sources", "project"):
                setattr(issue, name, value)
            else:
                raise TypeError(f"unknown issue field {name!r}")
        self.version += 1
        return issue.id

    def set_issue_status(self, issue: Issue, status: str, substatus: str | None, now_us: int) -> None:
        status = "ignored" if status == "archived" else status
        if status not in ISSUE_STATUSES:
            raise ValueError(f"unknown issue status {status!r}")
        issue.status = status
        issue.substatus = substatus if substatus is not None else _DEFAULT_SUBSTATUS.get(status)
        issue.status_changed_us = now_us
        issue.in_inbox = False
        self.version += 1

    def _assignee_for(self, assignee: Any) -> dict[str, Any] | None:
        if assignee is None or isinstance(assignee, dict):
            return assignee
        text = str(assignee)
        if text.startswith("team:"):
            team = next((t for t in self.teams if t.slug == text[5:] or t.id == text[5:]), None)
            if team is None:
                raise KeyError(f"unknown team {text}")
            return {"type": "team", "id": team.id, "name": team.slug}
        m = next((m for m in self.members if not m.pending and text in (m.email, m.user_id, m.id, m.name)), None)
        if m is None:
            raise KeyError(f"unknown member {text}")
        return {"type": "user", "id": m.user_id, "name": m.name, "email": m.email}

    def assign_issue(self, issue: Issue, assignee: Any) -> None:
        issue.assigned_to = self._assignee_for(assignee)
        self.version += 1

    def delete_issue(self, issue: Issue) -> None:
        project = self.projects[issue.project]
        issue.deleted = True
        for k in issue.sources:
            project.base_owner[k] = None
        self.version += 1

    def merge_issues(self, target: Issue, sources: list[Issue]) -> None:
        project = self.projects[target.project]
        for src in sources:
            if src.project != target.project or src is target:
                raise ValueError("only distinct issues of the same project can be merged")
        for src in sources:
            src.merged_into = target.id
            target.sources.extend(src.sources)
            for k in src.sources:
                project.base_owner[k] = target
            target.agg.absorb(src.agg)
            target.hist_count += src.hist_count
            target.hist_users += src.hist_users
            if src.hist_first_us is not None:
                target.hist_first_us = min(src.hist_first_us, target.hist_first_us or src.hist_first_us)
        target.sources.sort()
        self.version += 1

    def add_release(self, version: str | None, projects: list[Project], now_us: int, **fields: Any) -> Release:
        h = self._next()
        package = projects[0].slug if projects else None
        version = version or f"{package or 'app'}@2.{self._counter}.0"
        if self.release(version) is not None:
            raise ValueError(f"release {version} exists")
        release = self._make_release(h, version, package, now_us, [p.idx for p in projects], deploys=False)
        release.date_released_us = None
        self.update_release(release, **fields)
        return release

    def update_release(self, release: Release, **fields: Any) -> None:
        for name, value in fields.items():
            if name in ("dateReleased", "date_released_us"):
                release.date_released_us = value
            elif name in ("status", "ref", "url", "owner", "data"):
                setattr(release, name, value)
            else:
                release.extra[name] = value
        self.version += 1

    def add_deploy(self, release: Release, environment: str, now_us: int) -> Deploy:
        deploy = self._deploy(release, environment, now_us)
        release.deploys.append(deploy)
        self.version += 1
        return deploy

    def add_project(self, slug: str, now_us: int) -> Project:
        if self.project(slug) is not None:
            raise ValueError(f"project {slug} exists")
        project = self._gen_project(len(self.projects), slug, created_us=now_us, n_events=0, n_issues=0)
        self.keys.extend(self._gen_keys(project))
        self.version += 1
        return project

    def update_project(self, project: Project, **fields: Any) -> None:
        for name, value in fields.items():
            if name in ("name", "platform", "slug", "team"):
                setattr(project, name, value)
            else:
                project.extra[name] = value
        self.version += 1

    def rename_project(self, project: Project, new_slug: str, location: bool = True) -> None:
        """A new slug, like Sentry's ProjectRedirect: the old one still names the project for
        redirects; short ids take the new prefix (Sentry derives them from the slug)."""
        if self.project(new_slug) is not None:
            raise ValueError(f"project {new_slug} exists")
        old_prefix, new_prefix = project.slug.upper() + "-", new_slug.upper() + "-"
        for issue in self.issues.values():
            if issue.project == project.idx and issue.short_id.startswith(old_prefix):
                issue.short_id = new_prefix + issue.short_id[len(old_prefix):]
        self.project_redirects.pop(new_slug, None)
        self.project_redirects[project.slug] = (project.idx, location)
        project.slug = new_slug
        self.version += 1

    def redirected_project(self, slug: str) -> tuple[Project, bool] | None:
        """(live project, Location?) an old slug was renamed from; None when it names none."""
        entry = self.project_redirects.get(slug)
        if entry is None or self.projects[entry[0]].deleted:
            return None
        return self.projects[entry[0]], entry[1]

    def delete_alert(self, kind: str, alert_id: str) -> None:
        """Delete a detector or workflow (`kind`); they are computed, so this only hides them."""
        if kind not in ("detector", "workflow"):
            raise ValueError(f"unknown alert kind {kind!r}")
        self.deleted_alerts.add((kind, alert_id))
        self.version += 1

    # ------------------------------------------------------------------ org-wide mutations
    def delete_release(self, release: Release) -> None:
        self.releases.remove(release)
        self.version += 1

    def delete_project(self, project: Project) -> None:
        """Hidden everywhere (its issues, events, keys, feedback and monitors with it); `idx` stays."""
        project.deleted = True
        self.version += 1

    def add_team(self, slug: str, name: str | None, now_us: int) -> Team:
        if self.team(slug) is not None:
            raise ValueError(f"team {slug} exists")
        team = Team(self._seq("team", 10), slug, name or slug.replace("-", " ").title(), now_us)
        self.teams.append(team)
        self.version += 1
        return team

    def delete_team(self, team: Team) -> None:
        """Its projects keep existing without a team; members leave it."""
        self.teams.remove(team)
        for p in self.projects:
            if p.team == team.slug:
                p.team = None
        for m in self.members:
            if team.slug in m.teams:
                m.teams.remove(team.slug)
        self.version += 1

    def add_member(self, email: str, name: str | None, role: str, teams: list[str], pending: bool,
                   now_us: int) -> Member:
        if any(m.email == email for m in self.members):
            raise ValueError(f"member {email} exists")
        for t in teams:
            if self.team(t) is None:
                raise KeyError(f"unknown team {t!r}")
        member = Member(self._seq("member", 100), None if pending else self._seq("user", 1), email,
                        name or (email if pending else email.split("@")[0].title()), role, now_us,
                        pending=pending, teams=list(teams))
        self.members.append(member)
        self.version += 1
        return member

    def remove_member(self, member: Member) -> None:
        self.members.remove(member)
        self.version += 1

    def add_environment(self, name: str, hidden: bool, projects: frozenset[int] | None = None) -> Environment:
        if any(e.name == name for e in self.environments):
            raise ValueError(f"environment {name} exists")
        env = Environment(self._seq("environment", len(self.environments) + 1), name, hidden, projects)
        self.environments.append(env)
        self.version += 1
        return env

    def add_monitor(self, slug: str, project: Project, name: str | None, interval_minutes: int,
                    now_us: int) -> Monitor:
        """A monitor created now; scheduled check-ins appear from its next interval boundary on."""
        if any(m.slug == slug for m in self.live_monitors()):
            raise ValueError(f"monitor {slug} exists")
        step = interval_minutes * 60 * US
        monitor = Monitor(uuid4_like(self._next()), slug, name or slug.replace("-", " ").capitalize(),
                          project.idx, interval_minutes, (now_us // step + 1) * step, now_us)
        self.monitors.append(monitor)
        self.version += 1
        return monitor

    def delete_monitor(self, monitor: Monitor) -> None:
        self.monitors.remove(monitor)
        self.version += 1

    def add_checkin(self, monitor: Monitor, status: str, duration: int | None, now_us: int) -> AddedCheckin:
        if status not in ("ok", "error", "missed", "timeout", "in_progress", "unknown"):
            raise ValueError(f"unknown check-in status {status!r}")
        if duration is None and status not in ("missed", "in_progress"):
            duration = 1000
        checkin = AddedCheckin(uuid4_like(self._next()), now_us, status, duration)
        monitor.added.append(checkin)
        self.version += 1
        return checkin

    def add_feedback(self, project: Project, now_us: int, **fields: Any) -> Feedback:
        h = self._next()
        name, email, _ = pick(h, cat.PEOPLE)
        values: dict[str, Any] = {"name": name, "email": email, "comments": "It broke when I clicked save.",
                                  "event_id": hex32(h), "issue_id": None}
        for key, value in fields.items():
            key = {"eventID": "event_id", "event": "event_id", "issue": "issue_id", "comment": "comments"}.get(key, key)
            if key not in values:
                raise TypeError(f"unknown feedback field {key!r}")
            values[key] = value
        if values["issue_id"] is not None:
            issue = self.issue(str(values["issue_id"]))
            if issue is None or issue.project != project.idx:
                raise KeyError(f"issue {values['issue_id']} not found in project {project.slug}")
            values["issue_id"] = issue.id
        feedback = Feedback(self._seq("feedback", 100_000), project.idx, date_created_us=now_us, **values)
        self.feedback.append(feedback)
        self.version += 1
        return feedback

    def add_key(self, project: Project, name: str, now_us: int) -> ProjectKey:
        h = self._next()
        public = hex32(mix(h ^ 1))
        key = ProjectKey(public, project.idx, name, public, hex32(mix(h ^ 2)), now_us)
        self.keys.append(key)
        self.version += 1
        return key

    def add_commit(self, release: Release, message: str, author: str | None, now_us: int) -> Commit:
        h = self._next()
        if author is None:
            name, email, _ = pick(h, cat.PEOPLE)
        else:
            known = next((p for p in cat.PEOPLE if author in (p[0], p[1])), None)
            name, email = (known[0], known[1]) if known else (author.split("@")[0], author)
        commit = Commit(f"{mix(h):016x}{mix(h ^ 1):016x}{mix(h ^ 2) & 0xFFFFFFFF:08x}", message, now_us, name, email)
        release.commits.append(commit)
        self.version += 1
        return commit
