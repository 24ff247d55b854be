"""The connector's SPEC: the configuration form and what the connector supports.

The first four properties keep the names and meaning of Airbyte's own Sentry connector
(``auth_token``, ``hostname``, ``organization``, ``project``), so its configs work unchanged.
The schema follows the acceptance-test rules: no anyOf/allOf/not/if/$ref, additionalProperties
never false, single types, secrets marked ``airbyte_secret``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DEFAULT_HOSTNAME",
    "DEFAULT_LOOKBACK_WINDOW_MINUTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_REQUEST_TIMEOUT_SECONDS",
    "DEFAULT_RETENTION_DAYS",
    "DOCUMENTATION_URL",
    "SPEC",
]

DOCUMENTATION_URL = "https://github.com/source-sentry/source-sentry/blob/main/docs/sentry.md"
DEFAULT_HOSTNAME = "sentry.io"
DEFAULT_LOOKBACK_WINDOW_MINUTES = 30
DEFAULT_RETENTION_DAYS = 90  # paid plans and self-hosted; Developer plans keep 30 days
DEFAULT_REQUEST_TIMEOUT_SECONDS = 60
DEFAULT_MAX_RETRIES = 8
# Issues and releases are listed in full at most this often; between full lists only what
# moved is read (about one request per stream), so frequent syncs stay cheap.
DEFAULT_FULL_SCAN_HOURS = 24
# Lists of issues and releases up to this many records (100 requests at 100 a page) are read
# whole every sync, so status changes without a new event arrive with the next sync.
DEFAULT_FULL_LIST_MAX_RECORDS = 10_000

# Release health, Explore datasets and replays (see docs/sentry.md).
DEFAULT_RELEASE_HEALTH_TAIL_HOURS = 48
# Sentry answers Explore at full fidelity for 30 days back; a first sync reads a day less, so
# the time it takes does not push its oldest window past that.
DEFAULT_EXPLORE_DAYS = 29
DEFAULT_INGESTION_LAG_MINUTES = 10
EXPLORE_DATASETS = ("spans", "logs", "uptime_results", "tracemetrics")
# Fields every Explore row is read with (keys and cursor), whatever the config lists.
EXPLORE_REQUIRED: dict[str, tuple[str, ...]] = {
    "spans": ("id", "trace", "timestamp", "project.id"),
    "logs": ("id", "timestamp", "project.id"),
    "uptime_results": ("id", "timestamp", "project.id"),
    "tracemetrics": ("id", "timestamp", "project.id"),
}
# The default field list of each dataset (config explore_fields replaces it).
EXPLORE_FIELDS: dict[str, tuple[str, ...]] = {
    "spans": ("id", "trace", "timestamp", "project", "project.id", "span.op", "span.description", "span.duration",
              "transaction", "is_transaction", "parent_span", "environment", "release"),
    "logs": ("id", "trace", "timestamp", "project", "project.id", "severity", "message", "environment", "release"),
    "uptime_results": ("id", "timestamp", "project", "project.id", "check_status", "http_status_code",
                       "check_duration_us", "uptime_subscription_id", "region", "request_url", "environment"),
    "tracemetrics": ("id", "trace", "timestamp", "project", "project.id", "metric.name", "metric.type", "value",
                     "environment", "release"),
}
# Sentry's limit on the fields of one Explore request.
EXPLORE_MAX_FIELDS = 20

# ISO 8601 date or UTC date-time, e.g. 2024-01-31 or 2024-01-31T00:00:00Z (fractions allowed).
START_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?Z?)?$"

_CONNECTION_SPECIFICATION: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Sentry Spec",
    "type": "object",
    "required": ["auth_token", "organization"],
    "additionalProperties": True,
    "properties": {
        "auth_token": {
            "type": "string",
            "title": "Authentication Tokens",
            "description": (
                "Sentry auth token: an internal integration token (Settings > Developer Settings > "
                "Custom Integrations, recommended) or a personal token (User Settings > Personal "
                "Tokens). Needs the read scopes org:read, project:read, event:read and "
                "project:releases; team:read, member:read and alerts:read for the optional "
                "teams, members and alert streams. Organization tokens (sntrys_) cannot read "
                "events or issues."
            ),
            "airbyte_secret": True,
            "order": 0,
        },
        "hostname": {
            "type": "string",
            "title": "Host Name",
            "description": (
                "Host of the Sentry API. Leave blank for sentry.io. Also accepts a regional host "
                "(us.sentry.io, de.sentry.io), host:port (sentry.example.com:8443), or a full base "
                "URL with scheme and optional path prefix (https://sentry.example.com, "
                "https://example.com/sentry, http://127.0.0.1:9000). Plain http is only allowed "
                "for loopback hosts unless 'Allow plain HTTP' is on."
            ),
            "default": DEFAULT_HOSTNAME,
            "examples": ["sentry.io", "de.sentry.io", "https://sentry.example.com"],
            "order": 1,
        },
        "organization": {
            "type": "string",
            "title": "Organization",
            "description": (
                "The slug of the Sentry organization, as in https://<slug>.sentry.io or "
                "https://sentry.io/organizations/<slug>/."
            ),
            "examples": ["acme"],
            "order": 2,
        },
        "project": {
            "type": "string",
            "title": "Project",
            "description": (
                "The slug of one Sentry project to sync (as in Airbyte's Sentry connector). "
                "Optional: leave blank and leave Projects empty to sync every project the token "
                "can see."
            ),
            "examples": ["backend"],
            "order": 3,
        },
        "projects": {
            "type": "array",
            "title": "Projects",
            "description": (
                "Several project slugs to sync, in addition to Project. When neither Project nor "
                "Projects is given, every project the token can see is synced."
            ),
            "items": {"type": "string"},
            "order": 4,
        },
        "start_date": {
            "type": "string",
            "title": "Start Date",
            "description": (
                "UTC date or date-time (e.g. 2024-01-31 or 2024-01-31T00:00:00Z). Events and "
                "issues older than this are not read. Default: the start of the retention window."
            ),
            "format": "date-time",
            "pattern": START_DATE_PATTERN,
            "examples": ["2024-01-31T00:00:00Z"],
            "order": 5,
        },
        "lookback_window_minutes": {
            "type": "integer",
            "title": "Lookback Window (minutes)",
            "description": (
                "How far before the saved cursor each incremental events sync starts again, to "
                "catch events that arrive late."
            ),
            "default": DEFAULT_LOOKBACK_WINDOW_MINUTES,
            "minimum": 0,
            "maximum": 1440,
            "order": 6,
        },
        "retention_days": {
            "type": "integer",
            "title": "Event Retention (days)",
            "description": (
                "Sentry's event retention for your plan: 90 on paid plans and self-hosted "
                "(default), 30 on Developer plans. Nothing older is requested."
            ),
            "default": DEFAULT_RETENTION_DAYS,
            "minimum": 1,
            "maximum": 365,
            "order": 7,
        },
        "allow_http": {
            "type": "boolean",
            "title": "Allow plain HTTP",
            "description": (
                "Allow a plain http:// Host Name that is not a loopback address. The token is "
                "then sent unencrypted: only for trusted private networks."
            ),
            "default": False,
            "order": 8,
        },
        "ca_bundle": {
            "type": "string",
            "title": "CA Bundle Path",
            "description": (
                "Path to a PEM file of CA certificates, for self-hosted Sentry behind a private CA."
            ),
            "order": 9,
        },
        "request_timeout_seconds": {
            "type": "number",
            "title": "Request Timeout (seconds)",
            "description": "Timeout of one HTTP request.",
            "default": DEFAULT_REQUEST_TIMEOUT_SECONDS,
            "minimum": 1,
            "maximum": 600,
            "order": 10,
        },
        "max_retries": {
            "type": "integer",
            "title": "Max Retries",
            "description": "Retries of one request after a network error, 429 or 5xx.",
            "default": DEFAULT_MAX_RETRIES,
            "minimum": 0,
            "maximum": 20,
            "order": 11,
        },
        "region": {
            "type": "string",
            "title": "Region",
            "description": (
                "Which regional API host serves the organization. Blank (default): on sentry.io, "
                "discovered from the organization's links.regionUrl; on self-hosted, the host as "
                "given. 'us' or 'de': that sentry.io region. 'auto': discover from "
                "links.regionUrl on any host (accepted only for the same host name or sentry.io's "
                "own hosts, so the token never goes elsewhere)."
            ),
            "default": "",
            "examples": ["", "us", "de", "auto"],
            "order": 12,
        },
        "full_scan_hours": {
            "type": "number",
            "title": "Full Scan Interval (hours)",
            "description": (
                "Issues and releases have no 'updated since' filter. A list larger than Full List Max "
                "Records is read whole at most this often; incremental syncs in between read what "
                "moved (issues with new events, new releases: about one request each; the same for "
                "the parents of issue_events, release_deploys and release_commits) and, for issues, "
                "the next slice of Full List Max Records of the list, so a status or assignment "
                "change arrives within as many syncs as the list has slices; deletions and release "
                "changes arrive with the next full list, at most this many hours later. 0: every "
                "sync lists them all."
            ),
            "default": DEFAULT_FULL_SCAN_HOURS,
            "minimum": 0,
            "maximum": 720,
            "order": 13,
        },
        "full_list_max_records": {
            "type": "integer",
            "title": "Full List Max Records",
            "description": (
                "Issues and releases lists of up to this many records are read whole every sync "
                "(one request per 100), so a resolve, ignore or assignment without a new event "
                "arrives with the next sync; larger lists follow Full Scan Interval."
            ),
            "default": DEFAULT_FULL_LIST_MAX_RECORDS,
            "minimum": 0,
            "maximum": 1000000,
            "order": 14,
        },
        "release_health_interval": {
            "type": "string",
            "title": "Release Health Interval",
            "description": "The length of one release_health row: 1d (default) or 1h.",
            "enum": ["1d", "1h"],
            "default": "1d",
            "order": 15,
        },
        "release_health_tail_hours": {
            "type": "integer",
            "title": "Release Health Re-read (hours)",
            "description": (
                "Sessions arrive late: each incremental release_health sync reads this many hours "
                "before its last complete interval again (rows that did not change are not re-emitted)."
            ),
            "default": DEFAULT_RELEASE_HEALTH_TAIL_HOURS,
            "minimum": 0,
            "maximum": 720,
            "order": 16,
        },
        "explore_datasets": {
            "type": "array",
            "title": "Explore Datasets to Sync",
            "description": (
                "Explore datasets (spans, logs, uptime_results, tracemetrics) that `source-sentry sync` "
                "reads when no streams are chosen. They can be far larger than errors, so none by "
                "default; in Airbyte, select their streams in the connection instead."
            ),
            "items": {"type": "string", "enum": list(EXPLORE_DATASETS)},
            "default": [],
            "order": 17,
        },
        "explore_fields": {
            "type": "object",
            "title": "Explore Fields",
            "description": (
                "Per Explore dataset, the fields to read instead of the documented default list (at "
                "most 20 with the keys and timestamp, which are always read)."
            ),
            "properties": {name: {"type": "array", "items": {"type": "string"}} for name in EXPLORE_DATASETS},
            "order": 18,
        },
        "explore_days": {
            "type": "integer",
            "title": "Explore History (days)",
            "description": (
                "How far back the first sync of an Explore dataset reads. Sentry answers at full "
                "fidelity for 30 days; older windows may come back sampled (rows marked sampled)."
            ),
            "default": DEFAULT_EXPLORE_DAYS,
            "minimum": 1,
            "maximum": 90,
            "order": 19,
        },
        "ingestion_lag_minutes": {
            "type": "integer",
            "title": "Ingestion Lag (minutes)",
            "description": (
                "Explore datasets and replays are read up to this many minutes before now: Sentry "
                "is still ingesting the most recent rows."
            ),
            "default": DEFAULT_INGESTION_LAG_MINUTES,
            "minimum": 0,
            "maximum": 1440,
            "order": 20,
        },
        "webhook_secret": {
            "type": "string",
            "title": "Webhook Client Secret",
            "description": (
                "For `source-sentry listen` only: the client secret of the Sentry internal "
                "integration whose webhooks it receives; each request's Sentry-Hook-Signature is "
                "checked with it."
            ),
            "airbyte_secret": True,
            "order": 21,
        },
        "personal_data": {
            "type": "string",
            "title": "End Users' Personal Data",
            "description": (
                "What project_users does with the email, name, username, IP address, identifier, "
                "tag value and avatar URL of your application's users: hash (default: the SHA-256 "
                "hex digest of the value, unsalted, so it still joins and counts but is not shown), "
                "drop (set to null) or keep."
            ),
            "enum": ["hash", "drop", "keep"],
            "default": "hash",
            "order": 22,
        },
    },
}

SPEC: dict[str, Any] = {
    "documentationUrl": DOCUMENTATION_URL,
    "connectionSpecification": _CONNECTION_SPECIFICATION,
    "supportsIncremental": True,
    "supported_destination_sync_modes": ["overwrite", "append", "append_dedup"],
}
