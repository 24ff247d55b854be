"""Detail bodies that differ from their list item (team, member) and the live alert lists.

Kept apart from `shapes.py` (list bodies, built from dataset records) so those stay as they are:
these wrap the list shapes.
"""

from __future__ import annotations

from typing import Any

from .dataset import Dataset
from .models import Member, Team
from .shapes import Shapes

__all__ = ["live_detectors", "live_workflows", "member_detail", "team_detail"]

_ORG_ROLES = (
    ("member", "Member", "Members can view and act on events, as well as view most other data within the organization.",
     ["event:read", "event:write", "member:read", "org:read", "project:read", "project:releases", "team:read",
      "alerts:read"], False, "contributor"),
    ("admin", "Admin", "Admin privileges on any teams of which they're a member.",
     ["event:admin", "member:read", "org:read", "project:admin", "team:admin", "alerts:write"], False, "admin"),
    ("manager", "Manager", "Gains admin access on all teams as well as the ability to add and remove members.",
     ["event:admin", "member:admin", "org:write", "project:admin", "team:admin", "alerts:write"], True, "admin"),
    ("owner", "Owner", "Unrestricted access to the organization, its data, and its settings.",
     ["event:admin", "member:admin", "org:admin", "project:admin", "team:admin", "alerts:write"], True, "admin"),
)
_TEAM_ROLES = (
    ("contributor", "Contributor", "Contributors can view and act on events, as well as view most other data.",
     ["event:read", "project:read", "team:read"], "member"),
    ("admin", "Team Admin", "Admin privileges on the team.", ["event:admin", "project:admin", "team:admin"], "admin"),
)


def team_detail(shapes: Shapes, team: Team, expand: list[str], collapse: list[str]) -> dict[str, Any]:
    """Sentry's team detail: the team with `organization` (unless collapse=organization) and
    `projects` / `externalTeams` only when expanded (the org list always expands them)."""
    body = shapes.team(team)
    for key in ("projects", "externalTeams"):
        if key not in expand:
            body.pop(key, None)
    if "organization" not in collapse:
        body["organization"] = shapes.organization()
    return body


def member_detail(shapes: Shapes, member: Member, members: list[Member], admin: bool) -> dict[str, Any]:
    """Sentry's member detail: the list item plus role lists, `isOnlyOwner` and `invite_link`
    (a link only for a pending invite read with member:admin, as Sentry)."""
    body = shapes.member(member)
    owners = sum(1 for m in members if m.role == "owner" and not m.pending)
    link = f"{shapes.base_url}/accept/{member.id}/{int(member.id) * 7919:032x}/" if admin and member.pending else None
    body.update({
        "invite_link": link,
        "isOnlyOwner": member.role == "owner" and owners == 1,
        "orgRoleList": [{"id": rid, "name": name, "desc": desc, "scopes": scopes, "allowed": True,
                         "isAllowed": True, "isRetired": False, "isTeamRolesAllowed": True,
                         "is_global": is_global, "isGlobal": is_global, "minimumTeamRole": team_role}
                        for rid, name, desc, scopes, is_global, team_role in _ORG_ROLES],
        "teamRoleList": [{"id": rid, "name": name, "desc": desc, "scopes": scopes, "allowed": True,
                          "isAllowed": True, "isRetired": False, "isTeamRolesAllowed": True,
                          "isMinimumRoleFor": minimum}
                         for rid, name, desc, scopes, minimum in _TEAM_ROLES],
    })
    return body


def live_detectors(ds: Dataset, shapes: Shapes) -> list[dict[str, Any]]:
    """Detectors not deleted, their `workflowIds` without deleted workflows (Sentry's link rows
    go with either side)."""
    gone = ds.deleted_alerts
    out = [d for d in shapes.detectors() if ("detector", d["id"]) not in gone]
    for d in out:
        d["workflowIds"] = [w for w in d["workflowIds"] if ("workflow", w) not in gone]
    return out


def live_workflows(ds: Dataset, shapes: Shapes) -> list[dict[str, Any]]:
    """Workflows not deleted, their `detectorIds` without deleted detectors."""
    gone = ds.deleted_alerts
    out = [w for w in shapes.workflows() if ("workflow", w["id"]) not in gone]
    for w in out:
        w["detectorIds"] = [d for d in w["detectorIds"] if ("detector", d) not in gone]
    return out
