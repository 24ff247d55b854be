"""Outgoing integration-platform webhooks: Sentry's envelope, headers and HMAC signature.

`WebhookSender` posts, signs and logs deliveries; the `*_payload` functions build the `data` of
each resource from the same records the API renders (Sentry's integration-platform webhook docs:
issue, error, comment, event_alert, metric_alert, installation).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import ssl
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from .models import EventRef
from .shapes import Shapes
from .timeutil import US

__all__ = ["RESOURCES", "SENTRY_ACTOR", "Hook", "WebhookSender", "error_payload", "metric_alert_payload", "sign"]

RESOURCES = ("issue", "error", "comment", "event_alert", "metric_alert", "installation")
SENTRY_ACTOR: dict[str, Any] = {"type": "application", "id": "sentry", "name": "Sentry"}
PADDING_FIELD = "_padding"
# A delivery a mutation builds: (resource, action, data, actor).
Hook = tuple[str, str, dict[str, Any], dict[str, Any]]


def sign(secret: str, body: bytes) -> str:
    """`Sentry-Hook-Signature`: hex HMAC-SHA256 of the exact body bytes, keyed with the secret."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class _Sent:
    """What a redelivery needs: the target and the exact bytes and headers of the first send."""

    __slots__ = ("action", "body", "headers", "resource", "url")

    def __init__(self, url: str, resource: str, action: str, body: bytes, headers: dict[str, str]) -> None:
        self.url, self.resource, self.action, self.body, self.headers = url, resource, action, body, headers


class WebhookSender:
    """Delivers webhooks synchronously; never raises on a failed delivery (status 0)."""

    def __init__(self, now: Callable[[], float], installation_uuid: str, timeout: float = 5.0) -> None:
        self._now = now
        self.installation_uuid = installation_uuid
        self.timeout = timeout
        self.verify: bool | str = True
        self.url: str | None = None
        self.secret: str | None = None
        self.resources: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._sent: dict[str, _Sent] = {}

    # ------------------------------------------------------------ configuration
    def configure(self, url: str, secret: str, resources: Iterable[str], timeout: float, verify: bool | str) -> None:
        chosen = frozenset(resources) if not isinstance(resources, str) else frozenset([resources])
        unknown = chosen - set(RESOURCES)
        if unknown:
            raise ValueError(f"unknown webhook resources {sorted(unknown)}; known: {list(RESOURCES)}")
        with self._lock:
            self.url, self.secret, self.resources = url, secret, chosen
            self.timeout, self.verify = timeout, verify

    def stop(self) -> None:
        with self._lock:
            self.url, self.secret, self.resources = None, None, frozenset()

    def wants(self, resource: str) -> bool:
        """Configured and subscribed to `resource`."""
        with self._lock:
            return self.url is not None and resource in self.resources

    # ------------------------------------------------------------ sending
    def envelope(self, action: str, data: dict[str, Any], actor: dict[str, Any]) -> dict[str, Any]:
        return {"action": action, "installation": {"uuid": self.installation_uuid}, "data": data, "actor": actor}

    def deliver(self, resource: str, action: str, data: dict[str, Any], actor: dict[str, Any]) -> int | None:
        """The configured delivery of a mutation; None when not configured or not subscribed."""
        with self._lock:  # one snapshot: stop_webhooks() may run meanwhile
            if self.url is None or self.secret is None or resource not in self.resources:
                return None
            url, secret = self.url, self.secret
        return self.send(resource, action, data, actor=actor, url=url, secret=secret)

    def send(self, resource: str, action: str, data: dict[str, Any], *, actor: dict[str, Any] | None = None,
             secret: str | None = None, timestamp: int | None = None, request_id: str | None = None,
             pad_bytes: int = 0, url: str | None = None) -> int:
        with self._lock:
            target, key = url or self.url, secret if secret is not None else self.secret
        if target is None:
            raise ValueError("no webhook url: call configure_webhooks() or pass url=")
        if key is None:
            raise ValueError("no webhook secret: call configure_webhooks() or pass secret=")
        envelope = self.envelope(action, data, actor if actor is not None else SENTRY_ACTOR)
        body = _serialize(envelope, pad_bytes)
        rid = request_id or str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "Request-ID": rid,
            "Sentry-Hook-Resource": resource,
            "Sentry-Hook-Timestamp": str(int(self._now()) if timestamp is None else int(timestamp)),
            "Sentry-Hook-Signature": sign(key, body),
        }
        sent = _Sent(target, resource, action, body, headers)
        with self._lock:
            self._sent.setdefault(rid, sent)  # a redelivery keeps what the first send sent
        return self._post(sent, headers)

    def redeliver(self, request_id: str) -> int:
        """The same body and headers again (same Request-ID and signature), with a fresh
        `Sentry-Hook-Timestamp`, as Sentry's retries send them."""
        with self._lock:
            sent = self._sent.get(request_id)
        if sent is None:
            raise KeyError(f"no webhook delivery with Request-ID {request_id!r}")
        headers = dict(sent.headers, **{"Sentry-Hook-Timestamp": str(int(self._now()))})
        return self._post(sent, headers)

    def _post(self, sent: _Sent, headers: dict[str, str]) -> int:
        with self._lock:
            timeout, verify = self.timeout, self.verify
        sent_at = self._now()
        try:
            status = _post(sent.url, sent.body, headers, timeout, verify)
        except Exception:  # connection refused, timeout, bad URL...: never into the caller
            status = 0
        with self._lock:
            self._log.append({"resource": sent.resource, "action": sent.action, "request_id": headers["Request-ID"],
                              "status": status, "bytes": len(sent.body), "sent_at": sent_at})
        return status

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(d) for d in self._log]


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float, verify: bool | str) -> int:
    """POST once; the receiver's status (3xx and errors included). No proxy from the environment
    (it must not swallow a loopback delivery) and no redirect is followed."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
        if verify is False:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        try:
            connection.request("POST", target, body=body, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a receiver may refuse a body (413) before reading it all: its answer still counts
        return connection.getresponse().status
    finally:
        connection.close()


def _serialize(envelope: dict[str, Any], pad_bytes: int) -> bytes:
    """The body, serialized once; `pad_bytes` > 0 adds a `_padding` field that makes it exactly
    that much larger (at least the bytes of the empty field itself)."""
    body = json.dumps(envelope).encode("utf-8")
    if pad_bytes <= 0:
        return body
    empty = json.dumps({**envelope, PADDING_FIELD: ""}).encode("utf-8")
    fill = max(0, pad_bytes - (len(empty) - len(body)))
    return json.dumps({**envelope, PADDING_FIELD: "x" * fill}).encode("utf-8")


# ------------------------------------------------------------ payloads
def _frames(entry: dict[str, Any]) -> dict[str, Any]:
    """An API `exception` entry in the event's own (snake_case) form, as webhooks send it."""
    values = []
    for v in entry["data"]["values"]:
        frames = [{"abs_path": f["absPath"], "filename": f["filename"], "function": f["function"],
                   "module": f["module"], "lineno": f["lineNo"], "colno": f["colNo"], "in_app": f["inApp"],
                   "context_line": None, "pre_context": None, "post_context": None, "vars": f["vars"]}
                  for f in (v.get("stacktrace") or {}).get("frames", [])]
        values.append({"type": v["type"], "value": v["value"], "module": v["module"], "thread_id": v["threadId"],
                       "mechanism": v["mechanism"], "stacktrace": {"frames": frames} if frames else None})
    return {"values": values}


def error_payload(shapes: Shapes, ref: EventRef) -> dict[str, Any]:
    """An event in the webhook (error / event_alert) shape, from the API's full=true rendering."""
    api = shapes.event(ref, True)
    ds, issue = shapes.ds, ref.issue
    project = ds.projects[ref.project]
    base, org = shapes.base_url, ds.org_slug
    body: dict[str, Any] = {
        "_ref": int(project.id), "_ref_version": 2,
        "event_id": api["id"], "issue_id": issue.id, "project": int(project.id),
        "datetime": api["dateCreated"], "received": ref.recv_us / US, "timestamp": ref.t_us / US,
        "title": api["title"], "message": api["message"], "level": issue.level, "logger": issue.logger,
        "platform": api["platform"], "culprit": api["culprit"], "location": api["location"],
        "type": api["type"], "metadata": api["metadata"],
        "tags": [[t["key"], t["value"]] for t in api["tags"]],
        "contexts": api["contexts"], "sdk": api["sdk"],
        "release": api["release"]["version"] if api["release"] else None, "dist": api["dist"],
        "environment": api["environment"], "user": api["user"],
        "fingerprint": ["{{ default }}"], "hashes": api["fingerprints"], "version": "7",
        "url": f"{base}/api/0/projects/{org}/{project.slug}/events/{api['id']}/",
        "web_url": f"{base}/organizations/{org}/issues/{issue.id}/events/{api['id']}/",
        "issue_url": f"{base}/api/0/organizations/{org}/issues/{issue.id}/",
    }
    for entry in api["entries"]:
        if entry["type"] == "exception":
            body["exception"] = _frames(entry)
        elif entry["type"] == "request":
            d = entry["data"]
            body["request"] = {"url": d["url"], "method": d["method"], "query_string": d["query"],
                               "headers": d["headers"], "data": d["data"], "cookies": d["cookies"], "env": d["env"]}
    return body


_INCIDENT_STATUS = {"warning": 10, "critical": 20, "resolved": 2}  # Sentry's IncidentStatus values


def metric_alert_payload(*, base_url: str, org_slug: str, org_id: str, projects: list[str], action: str,
                         name: str, rule_id: str, incident_id: str, identifier: str, started: str, now: str,
                         created: str) -> dict[str, Any]:
    """`metric_alert` data: the incident (with its alert rule), description and web_url."""
    latency = "latency" in name.lower() or "p95" in name.lower()
    aggregate = "p95(transaction.duration)" if latency else "count()"
    critical, warning = (2000.0, 1000.0) if latency else (1000.0, 500.0)

    def trigger(label: str, threshold: float, n: int) -> dict[str, Any]:
        return {"id": str(int(rule_id) * 10 + n), "alert_rule_id": rule_id, "label": label,
                "threshold_type": 0, "alert_threshold": threshold, "resolve_threshold": None,
                "date_created": created, "actions": [{
                    "id": str(int(rule_id) * 100 + n), "alert_rule_trigger_id": str(int(rule_id) * 10 + n),
                    "type": "sentry_app", "target_type": "sentry_app", "target_identifier": "1",
                    "input_channel_id": None, "integration_id": None, "sentry_app_id": 1,
                    "date_created": created, "desc": "Send a notification via the emulator's integration"}]}

    rule = {"id": rule_id, "name": name, "organization_id": org_id, "status": 0, "query": "",
            "aggregate": aggregate, "dataset": "transactions" if latency else "events", "environment": None,
            "time_window": 60.0, "resolution": 1.0, "threshold_period": 1, "threshold_type": 0,
            "resolve_threshold": None, "include_all_projects": False, "projects": projects,
            "owner": None, "created_by": None, "date_created": created, "date_modified": created,
            "triggers": [trigger("critical", critical, 1), trigger("warning", warning, 2)]}
    incident = {"id": incident_id, "identifier": identifier, "organization_id": org_id, "projects": projects,
                "title": name, "status": _INCIDENT_STATUS[action], "status_method": 3 if action == "resolved" else 1,
                "type": 2, "alert_rule": rule, "date_started": started, "date_detected": started,
                "date_created": started, "date_closed": now if action == "resolved" else None}
    value = {"critical": critical * 1.2, "warning": warning * 1.2, "resolved": warning * 0.5}[action]
    unit = "ms" if latency else "events"
    return {
        "metric_alert": incident,
        "description_title": f"{action.title()}: {name}",
        "description_text": f"{value:g} {unit} {aggregate} in the last 60 minutes",
        "web_url": f"{base_url}/organizations/{org_slug}/alerts/rules/details/{rule_id}/?alert={identifier}",
    }
