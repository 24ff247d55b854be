"""Admin HTTP paths under /_emulator/ (only with admin=True): drive the emulator from outside."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["Admin"]


class Admin:
    """POST/GET/DELETE /_emulator/... -> the same Emulator methods the Python API offers."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def dispatch(self, method: str, path: str, data: dict[str, Any]) -> tuple[int, Any]:
        emu = self.emu
        tail = path[len("/_emulator/"):].rstrip("/")
        m = re.match(r"^issues/([^/]+)/(status|assign|delete|merge)$", tail)
        if m:
            issue_id, action = unquote(m.group(1)), m.group(2)
            if action == "status":
                emu.set_issue_status(issue_id, data["status"], data.get("substatus"))
            elif action == "assign":
                emu.assign_issue(issue_id, data.get("assignee"))
            elif action == "delete":
                emu.delete_issue(issue_id)
            else:
                emu.merge_issues(issue_id, list(data["sources"]))
            return 200, {"ok": True}
        m = re.match(r"^releases/([^/]+)/(deploys|update)$", tail)
        if m:
            version = unquote(m.group(1))
            if m.group(2) == "deploys":
                return 201, emu.add_deploy(version, data.get("environment", "production"))
            emu.update_release(version, **data)
            return 200, {"ok": True}
        m = re.match(r"^releases/([^/]+)/(delete|commits)$", tail)
        if m and method == "POST":
            version = unquote(m.group(1))
            if m.group(2) == "delete":
                emu.delete_release(version)
                return 200, {"ok": True}
            return 201, emu.add_commit(version, data["message"], data.get("author"))
        m = re.match(r"^(projects|teams|members|monitors|detectors|workflows)/([^/]+)/"
                     r"(delete|feedback|keys|checkins|rename)$", tail)
        if m and method == "POST":
            kind, name, action = m.group(1), unquote(m.group(2)), m.group(3)
            if action == "delete":
                {"projects": emu.delete_project, "teams": emu.delete_team, "members": emu.remove_member,
                 "monitors": emu.delete_monitor, "detectors": emu.delete_detector,
                 "workflows": emu.delete_workflow}[kind](name)
                return 200, {"ok": True}
            if (kind, action) == ("projects", "rename"):
                emu.rename_project(name, str(data["slug"]), location=bool(data.get("location", True)))
                return 200, {"ok": True}
            if (kind, action) == ("projects", "feedback"):
                return 201, emu.add_feedback(name, **data)
            if (kind, action) == ("projects", "keys"):
                return 201, emu.add_key(name, data.get("name", "Default"))
            if (kind, action) == ("monitors", "checkins"):
                return 201, emu.add_checkin(name, data.get("status", "ok"), data.get("duration"))
        key = (method, tail)
        if key == ("POST", "teams"):
            return 201, emu.add_team(data["slug"], data.get("name"))
        if key == ("POST", "members"):
            return 201, emu.add_member(data["email"], data.get("name"), data.get("role", "member"),
                                       data.get("teams"), bool(data.get("pending", False)))
        if key == ("POST", "environments"):
            return 201, emu.add_environment(data["name"], bool(data.get("hidden", False)), data.get("projects"))
        if key == ("POST", "monitors"):
            return 201, emu.add_monitor(data["slug"], data["project"], data.get("name"),
                                        int(data.get("interval_minutes", 60)))
        if key == ("GET", "now"):
            return 200, {"now": emu.now().isoformat()}
        if key == ("POST", "advance"):
            emu.advance(float(data["seconds"]))
            return 200, {"now": emu.now().isoformat()}
        if key == ("POST", "events"):
            ids = emu.add_events(data["project"], int(data.get("n", 1)),
                                 late_by_seconds=float(data.get("late_by_seconds", 0)), issue_id=data.get("issue_id"))
            return 201, {"event_ids": ids}
        if key == ("POST", "issues"):
            project = data.pop("project")
            return 201, {"id": emu.add_issue(project, **data)}
        if key == ("POST", "releases"):
            version = data.pop("version", None)
            projects = data.pop("projects", None)
            return 201, {"version": emu.add_release(version, projects, **data)}
        if key == ("POST", "projects"):
            return 201, emu.add_project(data["slug"])
        if key == ("POST", "faults"):
            emu.inject_fault(data["kind"], path=data.get("path", ".*"), times=int(data.get("times", 1)),
                             after=int(data.get("after", 0)), seconds=float(data.get("seconds", 30.0)),
                             bytes_per_second=float(data.get("bytes_per_second", 20.0)))
            return 201, {"faults": emu.faults()}
        if key == ("DELETE", "faults"):
            emu.clear_faults()
            return 200, {"faults": []}
        if key == ("GET", "requests"):
            return 200, [asdict(r) for r in emu.requests]
        if key == ("DELETE", "requests"):
            emu.clear_requests()
            return 200, []
        if key == ("POST", "tokens"):
            return 201, {"token": emu.create_token(scopes=data.get("scopes"), projects=data.get("projects"),
                                                   teams=data.get("teams"))}
        if key == ("POST", "tokens/revoke"):
            emu.revoke_token(data["token"])
            return 200, {"ok": True}
        return 404, {"detail": "The requested resource does not exist"}
