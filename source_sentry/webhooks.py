"""Sentry's integration webhooks: verifying a delivery and turning its payload into rows.

A Sentry internal integration POSTs ``{"action", "installation", "data", "actor"}`` with the
headers ``Sentry-Hook-Resource``, ``Sentry-Hook-Timestamp`` (epoch seconds),
``Sentry-Hook-Signature`` (hex HMAC-SHA256 of the raw body with the integration's client secret)
and ``Request-ID``. ``issue`` and ``error`` deliveries become records of the ``issues`` and
``events`` streams (their payload, mapped to the stream's shape); ``comment``, ``event_alert``,
``metric_alert`` and ``installation`` become rows of tables of their own (:data:`SIDE_TABLES`).
Nothing here does I/O: :mod:`source_sentry.listen` receives and writes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = ["MAX_SKEW_SECONDS", "SIDE_TABLES", "SideTable", "event_record", "issue_record", "side_row", "verify"]

# A delivery signed longer ago (or ahead) than this is refused: a captured request replayed later
# would otherwise pass the signature check.
MAX_SKEW_SECONDS = 300


def verify(body: bytes, headers: Mapping[str, str], secret: str, now: float) -> str | None:
    """Why the delivery must be refused (a 401), or None when it is Sentry's, signed with
    ``secret`` within :data:`MAX_SKEW_SECONDS` of ``now``. ``headers``: lowercased names."""
    signature = headers.get("sentry-hook-signature", "").strip().lower()
    if not signature:
        return "no Sentry-Hook-Signature header"
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        return "Sentry-Hook-Signature does not match the body signed with webhook_secret"
    try:
        sent = float(headers.get("sentry-hook-timestamp", ""))
    except ValueError:
        return "no usable Sentry-Hook-Timestamp header"
    if abs(now - sent) > MAX_SKEW_SECONDS:
        return f"Sentry-Hook-Timestamp is {abs(now - sent):.0f} s from now (at most {MAX_SKEW_SECONDS} s)"
    return None


def issue_record(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``issues`` record of an ``issue`` delivery: Sentry sends the issue as its API does."""
    data = payload.get("data")
    issue = data.get("issue") if isinstance(data, Mapping) else None
    if not isinstance(issue, Mapping) or issue.get("id") is None:
        return None
    record = dict(issue)
    record["id"] = str(record["id"])
    return record


def event_record(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``events`` record of an ``error`` delivery. Sentry sends the event in its webhook
    shape (``event_id``, ``issue_id``, ``datetime``, tags as pairs); the stream's records are the
    events list's shape (``id``, ``groupID``, ``dateCreated``, tags as key/value objects)."""
    data = payload.get("data")
    event = data.get("error") if isinstance(data, Mapping) else None
    if not isinstance(event, Mapping) or not event.get("event_id"):
        return None
    tags = event.get("tags")
    pairs = [t for t in tags if isinstance(t, (list, tuple)) and len(t) == 2] if isinstance(tags, list) else []
    received = event.get("received")
    record: dict[str, Any] = {
        "id": str(event["event_id"]),
        "eventID": str(event["event_id"]),
        "groupID": None if event.get("issue_id") is None else str(event["issue_id"]),
        "projectID": None if event.get("project") is None else str(event["project"]),
        "dateCreated": event.get("datetime"),
        "dateReceived": _iso(received) if isinstance(received, (int, float)) else received,
        "tags": [{"key": str(k), "value": v} for k, v in pairs],
    }
    for name in ("title", "message", "platform", "culprit", "location", "type", "metadata", "contexts", "sdk",
                 "user", "release", "dist", "environment", "level", "logentry", "entries", "fingerprints"):
        if name in event:
            record[name] = event[name]
    return record


@dataclass(frozen=True)
class SideTable:
    """The table a webhook resource is kept in: its columns, each a path into the payload."""

    table: str
    columns: Mapping[str, tuple[str, ...]]


# What people filter on, per resource; the whole payload is kept beside it.
SIDE_TABLES: dict[str, SideTable] = {
    "comment": SideTable("webhook_comments", {
        "comment_id": ("data", "comment_id"),
        "issue_id": ("data", "issue_id"),
        "project_slug": ("data", "project_slug"),
        "comment_timestamp": ("data", "timestamp"),
        "comment": ("data", "comment"),
        "actor_name": ("actor", "name"),
    }),
    "event_alert": SideTable("webhook_event_alerts", {
        "triggered_rule": ("data", "triggered_rule"),
        "issue_id": ("data", "event", "issue_id"),
        "event_id": ("data", "event", "event_id"),
        "project_id": ("data", "event", "project"),
        "title": ("data", "event", "title"),
    }),
    "metric_alert": SideTable("webhook_metric_alerts", {
        "alert_id": ("data", "metric_alert", "id"),
        "alert_rule_name": ("data", "metric_alert", "alert_rule", "name"),
        "date_detected": ("data", "metric_alert", "date_detected"),
        "description_title": ("data", "description_title"),
        "web_url": ("data", "web_url"),
    }),
    "installation": SideTable("webhook_installations", {
        "installation_uuid": ("data", "installation", "uuid"),
        "status": ("data", "installation", "status"),
        "app_slug": ("data", "installation", "app", "slug"),
        "organization_slug": ("data", "installation", "organization", "slug"),
    }),
}


def side_row(resource: str, payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The filter columns of a delivery kept in a table of its own (None for other resources);
    numbers and objects become text, so a column keeps one type whatever Sentry sends."""
    table = SIDE_TABLES.get(resource)
    if table is None:
        return None
    row: dict[str, Any] = {}
    for column, path in table.columns.items():
        value: Any = payload
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        row[column] = None if value is None else str(value)
    return row


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat().replace("+00:00", "Z")
