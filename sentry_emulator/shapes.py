"""Response bodies in Sentry's field shapes (camelCase as the API sends them)."""

from __future__ import annotations

from typing import Any

from . import catalog as cat
from .dataset import Dataset
from .models import (
    Commit,
    Deploy,
    Environment,
    EventRef,
    Feedback,
    Issue,
    Member,
    Monitor,
    Project,
    ProjectKey,
    Release,
    Team,
    issue_category,
    issue_type,
)
from .rand import hex32, hkey, mix, pick, uuid4_like
from .timeutil import US, iso_auto, iso_ms, iso_s, iso_us

__all__ = ["Shapes"]

_AVATAR = {"avatarType": "letter_avatar", "avatarUuid": None}
_ORG_FEATURES = ["advanced-search", "issue-platform", "onboarding", "session-replay-video"]
_PROJECT_FEATURES = ["releases", "minidump", "similarity-view", "servicehooks"]
_HAS = ["hasFeedbacks", "hasFlags", "hasMinifiedStackTrace", "hasMonitors", "hasNewFeedbacks",
        "hasProfiles", "hasReplays", "hasSessions", "hasInsightsHttp", "hasInsightsDb",
        "hasInsightsAssets", "hasInsightsAppStart", "hasInsightsScreenLoad", "hasInsightsVitals",
        "hasInsightsCaches", "hasInsightsQueues", "hasInsightsAgentMonitoring", "hasInsightsMCP",
        "hasLogs", "hasTraceMetrics"]
_SCOPE_ACCESS = ["org:read", "project:read", "team:read", "member:read", "event:read",
                 "project:releases", "alerts:read"]
# Event type of each issue kind (the issue's `type` too): issue-platform occurrences are
# transactions (performance) or generic events; feedback has its own.
_EVENT_TYPE = {"error": "error", "default": "default", "csp": "csp", "performance": "transaction",
               "cron": "generic", "uptime": "generic", "feedback": "feedback"}
_INITIAL_PRIORITY = {"error": 75, "default": 50, "csp": 25, "performance": 50, "cron": 75, "uptime": 75, "feedback": 50}
_PRIORITY = {"high": 75, "medium": 50, "low": 25}
_CRON_SUBTITLE = "Your monitor has reached its failure threshold."
_BACKEND = {"python", "node", "go", "java"}
_BROWSER = {"javascript"}
_WEB = {"python", "node", "javascript"}  # platforms whose events carry a request


class Shapes:
    """Builds bodies from dataset records; `base_url` feeds links, permalinks and DSNs."""

    def __init__(self, ds: Dataset, base_url: str, region_url: str | None = None) -> None:
        self.ds, self.base_url = ds, base_url
        self.region_url = region_url  # links.regionUrl of the organization; None = base_url

    # ------------------------------------------------------------ organization, teams, members
    def organization(self) -> dict[str, Any]:
        ds = self.ds
        return {
            "avatar": dict(_AVATAR), "dateCreated": iso_ms(ds.org_created_us), "features": list(_ORG_FEATURES),
            "hasAuthProvider": False, "id": ds.org_id, "isEarlyAdopter": False,
            "allowMemberInvite": True, "allowMemberProjectCreation": True, "allowSuperuserAccess": False,
            # Region-aware clients send later requests to links.regionUrl: by default the emulator
            # itself; with region_url another emulator (the "us.sentry.io" that holds the data).
            "links": {"organizationUrl": self.base_url, "regionUrl": self.region_url or self.base_url},
            "name": ds.org_slug.replace("-", " ").title(), "require2FA": False, "slug": ds.org_slug,
            "status": {"id": "active", "name": "active"},
        }

    def team_ref(self, slug: str | None) -> dict[str, Any] | None:
        team = self.ds.team(slug) if slug is not None else None
        return None if team is None else {"id": team.id, "name": team.name, "slug": team.slug}

    def _owner_ref(self) -> dict[str, Any]:
        """An owner for monitors: the first team, else the first member."""
        if self.ds.teams:
            return {"type": "team", "id": self.ds.teams[0].id, "name": self.ds.teams[0].slug}
        m = next((m for m in self.ds.members if not m.pending), None)
        return {"type": "user", "id": m.user_id if m else "1", "name": m.name if m else "unknown",
                "email": m.email if m else "unknown@example.com"}

    def team(self, team: Team) -> dict[str, Any]:
        members = sum(1 for m in self.ds.members if team.slug in m.teams)
        return {
            "id": team.id, "slug": team.slug, "name": team.name, "dateCreated": iso_ms(team.date_created_us),
            "isMember": True, "teamRole": "contributor", "flags": {"idp:provisioned": False},
            "access": ["event:read", "project:read", "team:read", "member:read", "org:read"],
            "hasAccess": True, "isPending": False, "memberCount": members, "avatar": {"avatarType": "letter_avatar"},
            "externalTeams": [],
            "projects": [self.project_summary(p) for p in self.ds.live_projects if p.team == team.slug],
        }

    def user(self, m: Member) -> dict[str, Any]:
        return {
            "id": m.user_id, "name": m.name, "username": m.email, "email": m.email,
            "avatarUrl": f"https://gravatar.com/avatar/{mix(int(m.user_id or 0)):016x}?s=32&d=mm",
            "isActive": True, "isSuspended": False, "hasPasswordAuth": True, "isManaged": False,
            "dateJoined": iso_ms(m.date_created_us), "lastLogin": iso_ms(self.ds.anchor_us - 3600 * US),
            "has2fa": m.role == "owner", "lastActive": iso_ms(self.ds.anchor_us - 600 * US),
            "isSuperuser": False, "isStaff": False, "experiments": {},
            "emails": [{"id": m.user_id, "email": m.email, "is_verified": True}],
            "avatar": dict(_AVATAR, avatarUrl=None),
        }

    def member(self, m: Member) -> dict[str, Any]:
        return {
            "id": m.id, "email": m.email, "name": m.name, "user": None if m.pending else self.user(m),
            "orgRole": m.role, "pending": m.pending, "expired": False,
            "flags": {"idp:provisioned": False, "idp:role-restricted": False, "sso:linked": False,
                      "sso:invalid": False, "member-limit:restricted": False, "partnership:restricted": False},
            "dateCreated": iso_ms(m.date_created_us),
            "inviteStatus": "pending" if m.pending else "approved",
            "inviterName": cat.PEOPLE[0][0] if m.pending else None,
            "teams": list(m.teams), "teamRoles": [{"teamSlug": t, "role": None} for t in m.teams],
            "role": m.role, "roleName": m.role.title(), "externalUsers": [],
        }

    def environment(self, env: Environment) -> dict[str, Any]:
        return {"id": env.id, "name": env.name, "isHidden": env.hidden}

    # ------------------------------------------------------------ projects
    def _latest_release(self, p: Project) -> dict[str, Any] | None:
        rel = self.ds.release_for(p.idx, self.ds.anchor_us * 2)
        return {"version": rel.version} if rel else None

    def _first_event(self, p: Project) -> str | None:
        return iso_ms(p.events.time_us(0)) if p.events.n else None

    def project_summary(self, p: Project) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": p.id, "slug": p.slug, "name": p.name, "platform": p.platform,
            "dateCreated": iso_ms(p.date_created_us), "isBookmarked": False, "isMember": True,
            "features": list(_PROJECT_FEATURES), "firstEvent": self._first_event(p),
            "firstTransactionEvent": False, "access": list(_SCOPE_ACCESS), "hasAccess": True,
            "isInternal": False, "isPublic": False, "avatar": dict(_AVATAR),
            "color": f"#{mix(int(p.id)) & 0xFFFFFF:06x}", "status": "active",
        }
        body.update({k: k in ("hasMonitors", "hasUserReports") for k in _HAS})
        return body

    def project_list_item(self, p: Project) -> dict[str, Any]:
        body = self.project_summary(p)
        team = self.team_ref(p.team)
        body.update({
            "team": team, "teams": [team] if team else [], "platforms": [p.platform],
            "hasUserReports": any(f.project == p.idx for f in self.ds.feedback),
            "environments": ["production", "staging"], "latestRelease": self._latest_release(p),
            "latestDeploys": None, "options": {},
        })
        body.update(p.extra)
        return body

    def project_detail(self, p: Project) -> dict[str, Any]:
        body = self.project_summary(p)
        team = self.team_ref(p.team)
        if team:
            body["team"] = team  # absent (not null) for a project without a team
        body.update({
            "teams": [team] if team else [], "platforms": [p.platform],
            "latestRelease": self._latest_release(p), "options": {"sentry:resolve_age": 0},
            "digestsMinDelay": 300, "digestsMaxDelay": 1800, "subjectPrefix": "",
            "allowedDomains": ["*"], "resolveAge": 0, "dataScrubber": True, "dataScrubberDefaults": True,
            "safeFields": [], "storeCrashReports": None, "sensitiveFields": [],
            "subjectTemplate": "$shortID - $title", "securityToken": hex32(mix(int(p.id))),
            "securityTokenHeader": None, "verifySSL": False, "scrubIPAddresses": False,
            "scrapeJavaScript": True, "enableAutoReleaseCreation": False,
            "highlightTags": ["handled", "level"], "highlightContext": {},
            "highlightPreset": {"tags": ["handled", "level"], "context": {}},
            "groupingConfig": "newstyle:2023-01-11", "derivedGroupingEnhancements": "",
            "groupingEnhancements": "", "secondaryGroupingExpiry": 0, "secondaryGroupingConfig": None,
            "fingerprintingRules": "", "organization": self.organization(), "processingIssues": 0,
            "defaultEnvironment": None, "relayPiiConfig": None, "builtinSymbolSources": [],
            "dynamicSamplingBiases": None, "symbolSources": "[]", "isDynamicallySampled": False,
            "tempestFetchScreenshots": False, "autofixAutomationTuning": "off",
            "seerScannerAutomation": False, "seerNightshiftTweaks": None, "scmSourceContextEnabled": False, "debugFilesRole": None,
        })
        body.update(p.extra)
        return body

    def project_ref(self, p: Project) -> dict[str, Any]:
        return {"id": p.id, "name": p.name, "slug": p.slug, "platform": p.platform}

    # ------------------------------------------------------------ events
    def _user(self, ref: EventRef) -> dict[str, Any]:
        hu = mix(ref.project * 1_000_003 + ref.user)  # a user's location is stable
        geo = None
        if hu % 5 < 2:  # about 40% of users come with an IP location
            code, city, region = pick(hu >> 8, cat.CITIES)
            geo = {"country_code": code, "city": city, "region": region}
        return {"id": str(1000 + ref.user), "email": f"user{ref.user}@example.org", "username": None,
                "ip_address": f"10.0.{ref.user // 250}.{ref.user % 250 + 1}", "name": None,
                "geo": geo, "data": None}

    @staticmethod
    def event_metadata(issue: Issue) -> dict[str, Any]:
        """`metadata` of an issue's events (the issue adds `initial_priority`)."""
        d = issue.detail
        if issue.kind == "default":
            return {"title": d["message"]}
        if issue.kind == "csp":
            return {"directive": d["directive"], "uri": d["host"], "message": issue.title}
        if issue.kind == "performance":
            return {"title": d["title"], "value": d["description"], "location": d["transaction"]}
        if issue.kind == "cron":
            return {"title": issue.title, "value": _CRON_SUBTITLE}
        if issue.kind == "uptime":
            return {"title": issue.title, "value": d["reason"]}
        if issue.kind == "feedback":
            return {"title": issue.title, "value": d["comment"], "contact_email": d["email"], "name": d["name"],
                    "source": "new_feedback_envelope"}
        return {"type": issue.exc_type, "value": issue.exc_value, "filename": issue.filename,
                "function": issue.function, "in_app_frame_mix": "in-app-only"}

    def _event_common(self, ref: EventRef) -> tuple[dict[str, Any], dict[str, Any]]:
        ds, issue, h = self.ds, ref.issue, ref.h
        project = ds.projects[ref.project]
        env = "staging" if "staging" in issue.envs and (h >> 58) % 4 == 0 else "production"
        release = ds.release_for(ref.project, ref.t_us)
        user = self._user(ref)
        tags = [
            {"key": "browser", "value": pick(h >> 3, cat.BROWSERS)},
            {"key": "environment", "value": env},
            {"key": "handled", "value": "no" if issue.level == "fatal" else "yes"},
            {"key": "level", "value": issue.level},
            {"key": "os", "value": pick(h >> 5, cat.OSES)},
            {"key": "server_name", "value": pick(h >> 7, cat.SERVERS)},
            {"key": "user", "value": f"id:{user['id']}"},
        ]
        if release:
            tags.insert(5, {"key": "release", "value": release.version})
        d = issue.detail
        if issue.kind == "csp":
            tags += [{"key": "blocked-uri", "value": d["host"]}, {"key": "effective-directive", "value": d["directive"]}]
        elif issue.kind == "performance":
            tags.append({"key": "transaction", "value": d["transaction"]})
        message = {"default": d.get("message"), "csp": issue.title, "feedback": d.get("comment")}.get(issue.kind) or ""
        location = {"error": issue.filename, "performance": d.get("transaction")}.get(issue.kind)
        body = {
            "id": ref.event_id, "event.type": _EVENT_TYPE[issue.kind], "groupID": issue.id, "eventID": ref.event_id,
            "projectID": project.id, "message": message, "title": issue.title,
            "location": location, "culprit": issue.culprit, "user": user, "tags": tags,
            "platform": "other" if issue.kind in ("cron", "uptime") else project.platform, "crashFile": None,
            "metadata": self.event_metadata(issue),
        }
        return body, {"env": env, "release": release}

    def event(self, ref: EventRef, full: bool) -> dict[str, Any]:
        body, extra = self._event_common(ref)
        if not full:
            # Without full=true the list reads snuba, which keeps timestamps at second precision.
            body["dateCreated"] = iso_s(ref.t_us)
            return body
        # With full=true the timestamp as the SDK sent it: microseconds, or whole seconds.
        body["dateCreated"] = iso_auto(ref.t_us)
        body.update(self._event_full(ref, body, extra))
        return body

    def _request(self, ref: EventRef, method: str = "GET") -> dict[str, Any]:
        issue, project = ref.issue, self.ds.projects[ref.project]
        browser = project.platform in _BROWSER
        path = issue.detail.get("transaction") or ("/checkout" if browser else "/api/orders/")
        url = f"https://{'shop' if browser else 'api'}.acme.example{path}"
        return {"type": "request", "data": {
            "method": None if browser else method, "url": url, "query": [["page", str(1 + ref.h % 3)]],
            "fragment": None, "data": None, "cookies": [], "inferredContentType": None, "env": None,
            "apiTarget": None,
            "headers": [["Accept", "application/json" if not browser else "text/html"],
                        ["User-Agent", f"Mozilla/5.0 ({pick(ref.h >> 5, cat.OSES)}) {pick(ref.h >> 3, cat.BROWSERS)}"]]}}

    def _entries(self, ref: EventRef) -> list[dict[str, Any]]:
        """The event's interfaces, as its kind has them."""
        issue, h = ref.issue, ref.h
        web = self.ds.projects[ref.project].platform in _WEB
        breadcrumbs = {"type": "breadcrumbs", "data": {"values": [
            {"category": "http", "level": "info", "event_id": None, "type": "http",
             "timestamp": iso_us(ref.t_us - 1_500_000), "message": None,
             "data": {"url": "/api/items/", "method": "GET", "status_code": 200}}]}}
        if issue.kind == "default":
            message = issue.detail["message"]
            entries = [{"type": "message", "data": {"formatted": message, "message": None, "params": None}}, breadcrumbs]
            return [*entries, self._request(ref)] if web else entries
        if issue.kind == "csp":
            d = issue.detail
            return [{"type": "csp", "data": {
                "blocked_uri": f"https://{d['host']}/", "document_uri": "https://shop.acme.example/checkout",
                "effective_directive": d["directive"], "violated_directive": f"{d['directive']} 'self'",
                "original_policy": f"default-src 'self'; {d['directive']} 'self'; report-uri /csp-report/",
                "disposition": "enforce", "referrer": "", "status_code": 200, "source_file": None,
                "line_number": None, "column_number": None, "script_sample": None}},
                self._request(ref)]
        if issue.kind == "performance":
            d = issue.detail
            parent = hex32(mix(h ^ 12))[:16]
            spans = [{"span_id": hex32(mix(h ^ (40 + j)))[:16], "parent_span_id": parent, "op": d["op"],
                      "description": d["description"], "start_timestamp": (ref.t_us - 900_000 + 20_000 * j) / US,
                      "timestamp": (ref.t_us - 885_000 + 20_000 * j) / US, "trace_id": hex32(mix(h ^ 11)),
                      "same_process_as_parent": True, "status": "ok", "data": {}, "tags": None}
                     for j in range(3 + h % 8)]
            return [{"type": "spans", "data": spans}, self._request(ref)]
        if issue.kind in ("cron", "uptime", "feedback"):
            return []
        frame = {"function": issue.function, "module": issue.culprit.split(" in ")[0],
                 "filename": issue.filename, "absPath": f"/srv/app/{issue.filename}",
                 "lineNo": 10 + h % 300, "colNo": None, "inApp": True, "context": [], "vars": None,
                 "package": None, "platform": None, "instructionAddr": None, "symbolAddr": None,
                 "trust": None, "symbol": None, "errors": None}
        entries = [
            {"type": "exception", "data": {"values": [{
                "type": issue.exc_type, "value": issue.exc_value, "module": None, "threadId": None,
                "mechanism": {"type": "generic", "handled": issue.level != "fatal"},
                "stacktrace": {"frames": [frame], "framesOmitted": None, "registers": None,
                               "hasSystemFrames": False},
                "rawStacktrace": None}], "excOmitted": None, "hasSystemFrames": False}},
            breadcrumbs,
        ]
        return [*entries, self._request(ref, "POST")] if web and h % 3 else entries

    def _contexts(self, ref: EventRef, body: dict[str, Any]) -> dict[str, Any]:
        issue, h, platform = ref.issue, ref.h, self.ds.projects[ref.project].platform
        contexts: dict[str, Any] = {
            "browser": {"name": body["tags"][0]["value"].split(" ")[0], "type": "browser"},
            "os": {"name": body["tags"][4]["value"], "type": "os"},
            "trace": {"trace_id": hex32(mix(h ^ 11)), "span_id": hex32(mix(h ^ 12))[:16],
                      "op": "http.server", "type": "trace"},
        }
        if platform in cat.RUNTIMES:
            name, version = cat.RUNTIMES[platform]
            contexts["runtime"] = {"name": name, "version": version, "type": "runtime"}
        if platform in _BACKEND and (h >> 20) % 10 < 7:
            contexts["cloud_resource"] = {"cloud.provider": "aws", "cloud.platform": "aws_ecs",
                                          "cloud.region": ("eu-central-1", "us-east-1")[(h >> 24) % 2],
                                          "type": "cloud_resource"}
        if platform not in _BACKEND and (h >> 28) % 10 < 8:
            locale, timezone = pick(mix(ref.project * 7919 + ref.user), cat.LOCALES)
            contexts["culture"] = {"locale": locale, "timezone": timezone, "calendar": "gregorian",
                                   "is_24_hour_format": locale != "en-US", "type": "culture"}
        if issue.kind == "feedback":
            d = issue.detail
            contexts["feedback"] = {"message": d["comment"], "contact_email": d["email"], "name": d["name"],
                                    "source": "new_feedback_envelope", "type": "feedback"}
        elif issue.kind == "cron":
            contexts["monitor"] = {"slug": issue.detail["monitor"], "type": "default"}
        return contexts

    def _occurrence(self, ref: EventRef) -> dict[str, Any] | None:
        """The issue-platform occurrence behind a performance, cron, uptime or feedback event."""
        issue, d, project = ref.issue, ref.issue.detail, self.ds.projects[ref.project]
        if issue.is_error:
            return None
        if issue.kind == "performance":
            type_id, subtitle = d["type_id"], d["description"]
            offenders = [hex32(mix(ref.h ^ (40 + j)))[:16] for j in range(3 + ref.h % 8)]
            evidence: dict[str, Any] = {"op": d["op"], "transactionName": d["transaction"],
                                        "parentSpanIds": [hex32(mix(ref.h ^ 12))[:16]], "causeSpanIds": [],
                                        "offenderSpanIds": offenders}
            display = [{"name": "Offending Spans", "value": d["description"], "important": True},
                       {"name": "Transaction Name", "value": d["transaction"], "important": False}]
        elif issue.kind == "cron":
            type_id, subtitle, evidence = 4001, _CRON_SUBTITLE, {}
            display = [{"name": "Failure reason", "value": "A missed check-in was detected", "important": True},
                       {"name": "Environment", "value": "production", "important": False}]
        elif issue.kind == "uptime":
            type_id, subtitle, evidence = 7001, "Your monitored domain is down", {}
            display = [{"name": "Failure reason", "value": d["reason"], "important": True},
                       {"name": "Duration", "value": "30s", "important": False}]
        else:  # feedback
            type_id, subtitle = 6001, d["comment"]
            evidence = {"contact_email": d["email"], "message": d["comment"], "name": d["name"],
                        "source": "new_feedback_envelope"}
            display = [{"name": "contact_email", "value": d["email"], "important": False},
                       {"name": "message", "value": d["comment"], "important": True}]
        return {"id": hex32(mix(ref.h ^ 21)), "projectId": int(project.id), "eventId": ref.event_id,
                "fingerprint": [hex32(int(issue.id) ^ 0x5EED)], "issueTitle": issue.title, "subtitle": subtitle,
                "resourceId": None, "evidenceData": evidence, "evidenceDisplay": display, "type": type_id,
                "detectionTime": ref.recv_us / US, "level": issue.level, "culprit": issue.culprit,
                "priority": _PRIORITY[issue.priority], "assignee": None}

    def _event_full(self, ref: EventRef, body: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        issue, h, project = ref.issue, ref.h, self.ds.projects[ref.project]
        sdk_name, sdk_version = cat.SDKS.get(project.platform, ("sentry.python", "2.19.2"))
        release: Any = extra["release"]
        return {
            # Relay stamps dateReceived itself: always a fraction (unless it fell on a whole second).
            "dateReceived": iso_auto(ref.recv_us), "type": body["event.type"], "dist": None, "userReport": None,
            "size": 4000 + h % 60000, "errors": [], "packages": {},
            "sdk": {"name": sdk_name, "version": sdk_version},
            "release": None if release is None else self.release_in_event(release),
            "entries": self._entries(ref), "contexts": self._contexts(ref, body),
            "context": {}, "fingerprints": [hex32(int(issue.id))],
            "groupingConfig": {"enhancements": "eJybzDRxY25qbm", "id": "newstyle:2023-01-11"},
            "_meta": {"user": None, "context": None, "entries": {}, "contexts": None, "message": None,
                      "packages": None, "tags": {}, "sdk": None},
            "previousEventID": None, "nextEventID": None, "occurrence": self._occurrence(ref),
            "resolvedWith": [], "sdkUpdates": [], "environment": extra["env"],
        }

    # ------------------------------------------------------------ issues
    def _permalink(self, issue: Issue) -> str:
        return f"{self.base_url}/organizations/{self.ds.org_slug}/issues/{issue.id}/"

    def _status_details(self, issue: Issue) -> dict[str, Any]:
        if issue.status == "ignored" and issue.substatus == "archived_until_condition_met":
            return {"ignoreCount": 100, "ignoreWindow": 60}
        if issue.status == "resolved" and issue.status_changed_us is not None:
            return {"inNextRelease": False}
        return {}

    def _counts(self, issue: Issue) -> dict[str, Any]:
        # firstSeen/lastSeen are the first and last event's timestamps as sent: mostly with a
        # fraction, whole seconds when that event's SDK sent whole seconds.
        first, last = issue.first_seen_us, issue.agg.last_us
        return {"count": str(issue.times_seen), "userCount": issue.user_count,
                "firstSeen": iso_auto(first) if first is not None else None,
                "lastSeen": iso_auto(last) if last is not None else None}

    def _issue_base(self, issue: Issue) -> dict[str, Any]:
        project = self.ds.projects[issue.project]
        annotations = ([{"displayName": f"ACME-{int(issue.id) % 1000}",
                         "url": f"https://acme.atlassian.net/browse/ACME-{int(issue.id) % 1000}"}]
                       if issue.linked else [])
        body = {
            "id": issue.id, "shareId": None, "shortId": issue.short_id, "title": issue.title,
            "culprit": issue.culprit, "permalink": self._permalink(issue), "logger": issue.logger,
            "level": issue.level, "status": issue.status, "statusDetails": self._status_details(issue),
            "substatus": issue.substatus, "isPublic": False, "platform": issue.platform,
            "priority": issue.priority, "priorityLockedAt": None, "seerFixabilityScore": None,
            "seerAutofixLastTriggered": None, "seerExplorerAutofixLastTriggered": None,
            "project": self.project_ref(project), "type": _EVENT_TYPE[issue.kind],
            "issueType": issue_type(issue),
            "issueCategory": issue_category(issue),
            "metadata": {**self.event_metadata(issue), "initial_priority": _INITIAL_PRIORITY[issue.kind]},
            "numComments": issue.num_comments, "assignedTo": issue.assigned_to,
            "isBookmarked": issue.is_bookmarked, "isSubscribed": issue.assigned_to is not None,
            "subscriptionDetails": None, "hasSeen": issue.has_seen, "annotations": annotations,
            "isUnhandled": issue.level == "fatal",
        }
        body.update(self._counts(issue))
        return body

    def _stats(self, issue: Issue, now_us: int) -> dict[str, Any]:
        return {"24h": [[ts, n] for ts, n in self.ds.issue_hourly(issue, now_us)]}

    def _inbox(self, issue: Issue) -> dict[str, Any] | None:
        if not issue.in_inbox or issue.agg.first_us is None:
            return None
        reason = {"new": 0, "regressed": 2, "escalating": 6}.get(issue.substatus or "", 0)
        return {"reason": reason, "reason_details": None, "date_added": iso_auto(issue.agg.first_us)}

    def issue(self, issue: Issue, now_us: int) -> dict[str, Any]:
        """Body of `GET organizations/{org}/issues/` items."""
        body = self._issue_base(issue)
        body.update({
            "derivedData": {"blocker": "", "progress": "", "status": "", "viewCount": 0,
                            "hasOpenFixPr": False, "isAssigned": issue.assigned_to is not None,
                            "hasRootCause": False, "lastCompletedAutofixStep": "", "lastProgressedAt": None},
            "stats": self._stats(issue, now_us), "lifetime": dict(self._counts(issue)),
            "filtered": None, "sessionCount": 0,
            "inbox": self._inbox(issue) or {"reason": 0, "reason_details": None,
                                            "date_added": body["firstSeen"] or iso_us(now_us)},
            "owners": {"type": "ownershipRule", "owner": (f"team:{self.ds.teams[0].id}" if self.ds.teams
                                                          else f"user:{self._owner_ref()['id']}"),
                       "date_added": body["firstSeen"] or iso_us(now_us)},
            "integrationIssues": [], "sentryAppIssues": [], "latestEventHasAttachments": False,
            "matchingEventId": None, "matchingEventEnvironment": None,
        })
        return body

    def project_issue(self, issue: Issue, now_us: int) -> dict[str, Any]:
        """Body of the deprecated `GET projects/{org}/{project}/issues/` items."""
        body = self._issue_base(issue)
        # This older serializer declares string dates and culprit (never null).
        body["firstSeen"] = body["firstSeen"] or iso_us(now_us)
        body["lastSeen"] = body["lastSeen"] or iso_us(now_us)
        body["culprit"] = body["culprit"] or ""
        body["stats"] = self._stats(issue, now_us)
        body["inbox"] = self._inbox(issue)
        # The older serializer renders annotations as HTML snippets.
        body["annotations"] = [f'<a href="{a["url"]}">{a["displayName"]}</a>' for a in body["annotations"]]
        if body["status"] not in ("resolved", "unresolved", "ignored"):
            body["status"] = "unresolved"
        return body

    def issue_detail(self, issue: Issue, now_us: int) -> dict[str, Any]:
        body = self._issue_base(issue)
        first = self.ds.release_for(issue.project, issue.agg.first_us or now_us)
        last = self.ds.release_for(issue.project, issue.agg.last_us or now_us)
        body.update({
            "firstRelease": self.release_in_event(first) if first else None,
            "lastRelease": self.release_in_event(last) if last else None,
            "tags": [{"key": "environment", "name": "Environment", "totalValues": issue.times_seen}],
            "stats": self._stats(issue, now_us), "inbox": self._inbox(issue), "owners": None,
            "activity": [{"id": str(mix(int(issue.id)) % 10**9), "type": "first_seen", "data": {},
                          "dateCreated": body["firstSeen"], "user": None}],
            "seenBy": [], "userReportCount": sum(1 for f in self.ds.feedback if f.issue_id == issue.id),
            "participants": [], "pluginActions": [], "pluginIssues": [], "pluginContexts": [],
            "shareId": None,
        })
        return body

    # ------------------------------------------------------------ releases
    def release_in_event(self, r: Release) -> dict[str, Any]:
        last_deploy = max(r.deploys, key=lambda d: d.date_finished_us) if r.deploys else None
        return {
            "version": r.version, "shortVersion": r.version, "ref": r.ref, "url": r.url,
            "dateCreated": iso_us(r.date_created_us),
            "dateReleased": iso_auto(r.date_released_us) if r.date_released_us else None,
            "commitCount": len(r.commits), "deployCount": len(r.deploys),
            "lastDeploy": self.deploy(last_deploy) if last_deploy else None, "data": dict(r.data),
        }

    def _version_info(self, r: Release) -> dict[str, Any]:
        raw = r.version.split("@", 1)[-1]
        parts = ([*raw.split("."), "0", "0", "0"])[:3]
        nums = [int(x) if x.isdigit() else 0 for x in parts]
        return {"package": r.package, "description": raw, "buildHash": None,
                "version": {"raw": raw, "major": nums[0], "minor": nums[1], "patch": nums[2],
                            "pre": None, "buildCode": None, "components": 3}}

    def release(self, r: Release, now_us: int) -> dict[str, Any]:
        """A release as the releases list serves it at `now_us` (firstEvent/lastEvent move)."""
        ds = self.ds
        # From snuba (the release tag's first and last seen): second precision.
        span = ds.release_events(r, now_us)
        last_deploy = max(r.deploys, key=lambda d: d.date_finished_us) if r.deploys else None
        last_commit = max(r.commits, key=lambda c: c.date_created_us) if r.commits else None
        authors = {c.author_email: c.author_name for c in r.commits}
        body = {
            "id": r.id, "version": r.version, "shortVersion": r.version, "status": r.status,
            "versionInfo": self._version_info(r), "ref": r.ref, "url": r.url,
            # dateCreated: Sentry's own clock, with a fraction; dateReleased: often sent by a
            # client (sentry-cli releases finalize), then whole seconds.
            "dateReleased": iso_auto(r.date_released_us) if r.date_released_us else None,
            "dateCreated": iso_us(r.date_created_us), "data": dict(r.data), "newGroups": 0,
            "owner": r.owner, "commitCount": len(r.commits),
            "lastCommit": self.commit(r, last_commit, brief=True) if last_commit else None,
            "deployCount": len(r.deploys), "lastDeploy": self.deploy(last_deploy) if last_deploy else None,
            "authors": [{"name": n, "email": e} for e, n in sorted(authors.items())],
            "projects": [{
                "id": int(ds.projects[p].id), "slug": ds.projects[p].slug, "name": ds.projects[p].name,
                "newGroups": 0, "platform": ds.projects[p].platform, "platforms": [ds.projects[p].platform],
                "hasHealthData": False} for p in r.projects if not ds.projects[p].deleted],
            "firstEvent": iso_s(span[0]) if span else None, "lastEvent": iso_s(span[1]) if span else None,
            "currentProjectMeta": {}, "userAgent": None,
        }
        body.update(r.extra)
        return body

    def deploy(self, d: Deploy) -> dict[str, Any]:
        return {"id": d.id, "environment": d.environment,
                "dateStarted": iso_auto(d.date_started_us) if d.date_started_us else None,
                "dateFinished": iso_auto(d.date_finished_us), "name": d.name, "url": d.url}

    def _repository(self, r: Release) -> dict[str, Any]:
        name = f"acme/{r.package or 'app'}"
        # hkey, not hash(): str hashes change with every process (PYTHONHASHSEED).
        return {"id": str(1 + hkey(name) % 100), "name": name,
                "url": f"https://github.com/{name}", "provider": {"id": "integrations:github", "name": "GitHub"},
                "status": "active", "integrationId": "2933", "externalSlug": name,
                "externalId": str(mix(len(name)) % 10**8), "dateCreated": iso_us(self.ds.org_created_us)}

    def commit(self, r: Release, c: Commit, brief: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": c.id, "message": c.message, "dateCreated": iso_s(c.date_created_us),
            "repository": self._repository(r),
            "author": {"name": c.author_name, "email": c.author_email},
        }
        if not brief:
            body.update({"pullRequest": None, "suspectCommitType": "",
                         "releases": [{"version": r.version, "shortVersion": r.version, "ref": r.ref,
                                       "url": r.url, "dateCreated": iso_us(r.date_created_us),
                                       "dateReleased": iso_us(r.date_released_us) if r.date_released_us else None}]})
        return body

    # ------------------------------------------------------------ keys, feedback, monitors
    def project_key(self, k: ProjectKey) -> dict[str, Any]:
        project = self.ds.projects[k.project]
        host = self.base_url.split("://", 1)[1]
        scheme = self.base_url.split("://", 1)[0]
        pub = f"{scheme}://{k.public}@{host}/{project.id}"
        api = f"{self.base_url}/api/{project.id}"
        return {
            "id": k.id, "name": k.label, "label": k.label, "public": k.public, "secret": k.secret,
            "projectId": int(project.id), "isActive": k.active, "rateLimit": None,
            "dsn": {"secret": f"{scheme}://{k.public}:{k.secret}@{host}/{project.id}", "public": pub,
                    "csp": f"{api}/csp-report/?sentry_key={k.public}",
                    "security": f"{api}/security/?sentry_key={k.public}",
                    "minidump": f"{api}/minidump/?sentry_key={k.public}",
                    "nel": f"{api}/nel/?sentry_key={k.public}",
                    "unreal": f"{api}/unreal/{k.public}/", "crons": f"{api}/cron/___MONITOR_SLUG___/{k.public}/",
                    "cdn": f"{self.base_url}/js-sdk-loader/{k.public}.min.js",
                    "playstation": f"{api}/playstation/?sentry_key={k.public}",
                    "integration": f"{self.base_url}/", "otlp_traces": f"{api}/integration/otlp/v1/traces",
                    "otlp_logs": f"{api}/integration/otlp/v1/logs"},
            "browserSdkVersion": "8.x", "browserSdk": {"choices": [["latest", "latest"], ["8.x", "8.x"]]},
            "dateCreated": iso_us(k.date_created_us),
            "dynamicSdkLoaderOptions": {"hasReplay": True, "hasPerformance": True, "hasDebug": False,
                                        "hasFeedback": False, "hasLogsAndMetrics": False},
            "useCase": "user",
        }

    def feedback(self, f: Feedback) -> dict[str, Any]:
        issue = self.ds.issue(f.issue_id) if f.issue_id else None
        return {
            "id": f.id, "eventID": f.event_id, "name": f.name, "email": f.email, "comments": f.comments,
            "dateCreated": iso_us(f.date_created_us), "user": None,
            "event": {"id": f.event_id, "eventID": f.event_id},
            "issue": self._issue_base(issue) if issue else None,
        }

    def _monitor_config(self, m: Monitor) -> dict[str, Any]:
        minutes = m.interval_minutes
        crontab = "0 0 * * *" if minutes >= 1440 else (f"0 */{minutes // 60} * * *" if minutes > 60 else "0 * * * *")
        return {"schedule_type": "crontab", "schedule": crontab,
                "checkin_margin": 5, "max_runtime": 30, "timezone": "UTC",
                "failure_issue_threshold": 1, "recovery_threshold": 1, "alert_rule_id": None}

    def monitor(self, m: Monitor, now_us: int) -> dict[str, Any]:
        step = m.interval_minutes * 60 * US
        _, total = self.ds.checkin_count(m, now_us)
        last = m.first_us + (total - 1) * step if total else m.first_us
        times = ([last] if total else []) + [c.t_us for c in m.added if c.t_us <= now_us]
        last_any = max(times) if times else m.first_us  # the schema does not allow null
        nxt = last + step if total else m.first_us
        project = self.ds.projects[m.project]
        return {
            "id": m.id, "name": m.name, "slug": m.slug, "status": "active", "isMuted": False,
            "isUpserting": False, "config": self._monitor_config(m), "dateCreated": iso_us(m.date_created_us),
            "project": self.project_summary(project),
            # The schema declares one environment object here (live Sentry sends a list of them).
            "environments": {"name": m.environment, "status": "ok", "isMuted": False,
                              "dateCreated": iso_us(m.date_created_us),
                              "lastCheckIn": iso_us(last_any),
                              # On the schedule: whole minutes, sent without a fraction.
                              "nextCheckIn": iso_auto(nxt), "nextCheckInLatest": iso_auto(nxt + 300 * US),
                             "activeIncident": None},
            "owner": self._owner_ref(),
            "alertRule": {"targets": [], "environment": m.environment},
        }

    def checkin_at(self, m: Monitor, key: tuple[int, int, int]) -> dict[str, Any]:
        """A check-in from `Dataset.checkin_keys`: generated or added."""
        _, kind, n = key
        if kind == 0:
            return self.checkin(m, n)
        c = m.added[n]
        started = c.t_us - (c.duration or 0) * 1000
        return {
            "id": c.id, "environment": m.environment, "status": c.status, "duration": c.duration,
            "dateCreated": iso_us(c.t_us), "dateAdded": iso_us(c.t_us), "dateUpdated": iso_us(c.t_us),
            "dateInProgress": None if c.status == "missed" else iso_us(started),
            "dateClock": iso_us(started), "expectedTime": iso_us(started),
            "monitorConfig": self._monitor_config(m), "groups": [],
        }

    def checkin(self, m: Monitor, j: int) -> dict[str, Any]:
        step = m.interval_minutes * 60 * US
        expected = m.first_us + j * step
        h = mix(int(m.id[:8], 16) * 1_000_003 + j)  # check-in j is a pure function of (monitor, j)
        u = h % 100
        status = "ok" if u < 90 else ("error" if u < 95 else ("missed" if u < 98 else "timeout"))
        started = expected + (h >> 8) % (20 * US)
        duration = None if status == "missed" else int(200 + (h >> 16) % 60000)
        finished = started + (duration or 0) * 1000
        return {
            "id": uuid4_like(h), "environment": m.environment,
            "status": status, "duration": duration, "dateCreated": iso_us(finished),
            "dateAdded": iso_us(finished), "dateUpdated": iso_us(finished),
            "dateInProgress": None if status == "missed" else iso_us(started),
            "dateClock": iso_auto(expected), "expectedTime": iso_auto(expected),  # whole minutes
            "monitorConfig": self._monitor_config(m), "groups": [],
        }

    # ------------------------------------------------------------ alerts (detectors, workflows)
    def detectors(self) -> list[dict[str, Any]]:
        """Per project: the built-in error detector and one metric detector, linked to workflows."""
        out = []
        for p in self.ds.live_projects:
            created = iso_us(p.date_created_us)
            base = {"projectId": p.id, "dateCreated": created, "dateUpdated": created, "enabled": True,
                    "owner": None, "createdBy": None, "latestGroup": None, "description": None}
            out.append({**base, "id": str(7000 + 2 * p.idx), "name": "Error Monitor", "type": "error",
                        "workflowIds": ["1"], "dataSources": None, "conditionGroup": None, "config": {}})
            out.append({**base, "id": str(7001 + 2 * p.idx), "name": f"High error rate in {p.slug}",
                        "type": "metric_issue", "workflowIds": ["1", "2"],
                        "dataSources": [{"type": "snuba_query_subscription", "queryObj": {
                            "aggregate": "count()", "timeWindow": 3600, "dataset": "events"}}],
                        "conditionGroup": {"logicType": "any", "conditions": [
                            {"type": "gt", "comparison": 100, "conditionResult": "high"}]},
                        "config": {"detectionType": "static"}})
        return out

    def workflows(self) -> list[dict[str, Any]]:
        ds, created = self.ds, iso_us(self.ds.org_created_us)
        detectors = self.detectors()
        out = []
        for n, (name, env) in enumerate((("Notify on new issues", None), ("Page on-call", "production")), 1):
            out.append({
                "id": str(n), "name": name, "organizationId": ds.org_id, "createdBy": None,
                "dateCreated": created, "dateUpdated": created, "environment": env,
                "config": {"frequency": 30}, "enabled": True, "lastTriggered": None, "owner": None,
                "triggers": {"id": str(10 * n), "organizationId": ds.org_id, "logicType": "any-short",
                             "conditions": [{"id": str(100 * n), "type": "first_seen_event", "comparison": True,
                                             "conditionResult": True}], "actions": []},
                "actionFilters": [{"id": str(20 * n), "organizationId": ds.org_id, "logicType": "all",
                                   "conditions": [], "actions": [{"id": str(300 * n), "type": "email",
                                                                   "integrationId": None, "data": {},
                                                                   "config": {"targetType": "team"},
                                                                   "status": "active"}]}],
                "detectorIds": [d["id"] for d in detectors if str(n) in d["workflowIds"]],
            })
        return out
