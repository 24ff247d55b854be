"""Verifying a webhook delivery and mapping its payload (``source_sentry.webhooks``)."""

from __future__ import annotations

import hashlib
import hmac
import json

import jsonschema

from source_sentry.schemas import load_schema
from source_sentry.webhooks import MAX_SKEW_SECONDS, event_record, issue_record, side_row, verify

SECRET = "whsec-abcdef"
NOW = 1_780_000_000.0


def _headers(body: bytes, secret: str = SECRET, at: float = NOW) -> dict[str, str]:
    return {
        "sentry-hook-signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "sentry-hook-timestamp": str(int(at)),
    }


def test_only_a_body_signed_with_the_secret_within_five_minutes_passes() -> None:
    body = b'{"action": "resolved", "data": {}}'
    assert verify(body, _headers(body), SECRET, NOW) is None
    assert verify(body, _headers(body, at=NOW - MAX_SKEW_SECONDS + 1), SECRET, NOW) is None
    assert "does not match" in (verify(body, _headers(body, secret="other"), SECRET, NOW) or "")
    assert "does not match" in (verify(body + b" ", _headers(body), SECRET, NOW) or "")  # the raw body, byte for byte
    assert "from now" in (verify(body, _headers(body, at=NOW - MAX_SKEW_SECONDS - 1), SECRET, NOW) or "")
    assert "from now" in (verify(body, _headers(body, at=NOW + 3600), SECRET, NOW) or "")
    assert "no Sentry-Hook-Signature" in (verify(body, {}, SECRET, NOW) or "")
    headers = _headers(body)
    headers["sentry-hook-timestamp"] = "yesterday"
    assert "Timestamp" in (verify(body, headers, SECRET, NOW) or "")
    # The secret never shows in a reason.
    assert all(SECRET not in (verify(body, h, SECRET, NOW) or "") for h in ({}, _headers(body, secret="x")))


def test_an_error_payload_becomes_an_events_record() -> None:
    payload = {
        "action": "created",
        "data": {"error": {
            "event_id": "a" * 32, "issue_id": "4672543810", "project": 4506725978700171,
            "datetime": "2026-12-03T05:00:00Z", "received": 1_780_000_000.5, "title": "ZeroDivisionError",
            "platform": "python", "level": "error", "tags": [["environment", "production"], ["level", "error"]],
            "web_url": "https://sentry.io/...", "url": "https://sentry.io/api/0/...",
        }},
    }
    record = event_record(payload)
    assert record is not None
    assert record["id"] == record["eventID"] == "a" * 32
    assert record["groupID"] == "4672543810" and record["projectID"] == "4506725978700171"
    assert record["dateCreated"] == "2026-12-03T05:00:00Z"
    assert record["dateReceived"].startswith("2026-05-28T")
    assert record["tags"] == [{"key": "environment", "value": "production"}, {"key": "level", "value": "error"}]
    assert "web_url" not in record  # not a field of the events stream
    jsonschema.Draft7Validator(load_schema("events")).validate(json.loads(json.dumps(record)))
    assert event_record({"data": {"error": {"title": "no id"}}}) is None


def test_an_issue_payload_is_the_issue_and_side_tables_take_their_fields() -> None:
    assert issue_record({"data": {"issue": {"id": 12, "status": "resolved"}}}) == {"id": "12", "status": "resolved"}
    assert issue_record({"data": {}}) is None
    row = side_row("comment", {"data": {"comment_id": 7, "issue_id": "12", "project_slug": "web", "comment": "hi",
                                        "timestamp": "2026-12-03T05:00:00Z"}, "actor": {"name": "Ada"}})
    assert row == {"comment_id": "7", "issue_id": "12", "project_slug": "web",
                   "comment_timestamp": "2026-12-03T05:00:00Z", "comment": "hi", "actor_name": "Ada"}
    assert side_row("seer", {"data": {}}) is None
