"""Outgoing integration-platform webhooks: envelope, headers, signature, payloads, hostile sends."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from emu_helpers import client

from sentry_emulator import Emulator

SECRET = "s3cr3t-client-secret"


class Receiver:
    """A loopback webhook endpoint that records every request and answers `status`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.on_request: Any = None  # called with the request before answering
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "raw": raw}
                if receiver.on_request:
                    receiver.on_request(req)
                receiver.requests.append(req)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sentry/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def of(self, resource: str) -> list[dict[str, Any]]:
        return [json.loads(r["raw"]) for r in self.requests if r["headers"]["sentry-hook-resource"] == resource]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def emu(make_emulator: Any, receiver: Receiver) -> Emulator:
    e: Emulator = make_emulator()
    e.configure_webhooks(receiver.url, SECRET)
    return e


def _verified(req: dict[str, Any], secret: str = SECRET) -> bool:
    expected = hmac.new(secret.encode(), req["raw"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, req["headers"]["sentry-hook-signature"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_add_issue_sends_signed_issue_and_error_created(emu: Emulator, receiver: Receiver) -> None:
    before = int(emu.clock.time())
    issue_id = emu.add_issue(emu.project_slugs[0], title="Checkout blew up")
    after = int(emu.clock.time())
    assert [r["headers"]["sentry-hook-resource"] for r in receiver.requests] == ["issue", "error"]
    for req in receiver.requests:
        h = req["headers"]
        assert req["path"] == "/sentry/hook"
        assert h["content-type"] == "application/json"
        assert _verified(req)
        assert before <= int(h["sentry-hook-timestamp"]) <= after
        assert len(h["request-id"]) == 36
        body = json.loads(req["raw"])
        assert set(body) == {"action", "installation", "data", "actor"}
        assert body["installation"] == {"uuid": emu.webhook_installation}
        assert body["actor"] == {"type": "application", "id": "sentry", "name": "Sentry"}
    assert len({r["headers"]["request-id"] for r in receiver.requests}) == 2

    issue = receiver.of("issue")[0]
    assert issue["action"] == "created"
    assert issue["data"] == {"issue": emu.issue(issue_id)}
    assert issue["data"]["issue"]["title"] == "Checkout blew up"

    error = receiver.of("error")[0]
    assert error["action"] == "created"
    event = error["data"]["error"]
    api = emu.issue_events(issue_id)
    assert len(api) == 1
    assert event["event_id"] == api[0]["id"] and len(event["event_id"]) == 32
    assert event["datetime"] == api[0]["dateCreated"]
    assert event["issue_id"] == issue_id


def test_error_payload_is_derived_from_the_api_event(emu: Emulator, receiver: Receiver) -> None:
    slug = emu.project_slugs[1]
    issue_id = emu.issues(slug, status="unresolved")[0]["id"]
    ids = emu.add_events(slug, 3, issue_id=issue_id, late_by_seconds=90)
    errors = [b["data"]["error"] for b in receiver.of("error")]
    assert [e["event_id"] for e in errors] == ids
    api = {e["id"]: e for e in emu.issue_events(issue_id)}
    project = emu.project_detail(slug)
    for e in errors:
        a = api[e["event_id"]]
        assert e["issue_id"] == issue_id and e["project"] == int(project["id"])
        assert e["datetime"] == a["dateCreated"]
        assert e["received"] - e["timestamp"] == pytest.approx(90, abs=0.01)
        for key in ("title", "message", "platform", "culprit", "location", "metadata", "contexts", "sdk",
                    "environment", "user", "type"):
            assert e[key] == a[key], key
        assert e["tags"] == [[t["key"], t["value"]] for t in a["tags"]]
        assert e["level"] == emu.issue(issue_id)["level"]
        assert e["release"] == (a["release"]["version"] if a["release"] else None)
        assert e["url"] == f"{emu.base_url}/api/0/projects/{emu.organization}/{slug}/events/{a['id']}/"
        assert e["web_url"] == f"{emu.base_url}/organizations/{emu.organization}/issues/{issue_id}/events/{a['id']}/"
        assert e["issue_url"] == f"{emu.base_url}/api/0/organizations/{emu.organization}/issues/{issue_id}/"
        with client(emu) as c:  # the issue_url is one the API serves
            assert c.get(e["issue_url"]).json()["id"] == issue_id


def test_status_changes_and_assignment(emu: Emulator, receiver: Receiver) -> None:
    issue_id = emu.issues(emu.project_slugs[0], status="unresolved")[0]["id"]
    member = emu.members()[0]
    seen: list[tuple[str, dict[str, Any]]] = []

    def step(fn: Any, *args: Any) -> dict[str, Any]:
        fn(*args)
        body = receiver.of("issue")[-1]
        assert body["data"] == {"issue": emu.issue(issue_id)}  # the detail after the change
        seen.append((body["action"], body["data"]["issue"]))
        return body

    step(emu.set_issue_status, issue_id, "resolved")
    step(emu.set_issue_status, issue_id, "ignored", "archived_forever")
    step(emu.set_issue_status, issue_id, "unresolved")
    step(emu.set_issue_status, issue_id, "archived")
    body = step(emu.assign_issue, issue_id, member["email"])
    assert [a for a, _ in seen] == ["resolved", "ignored", "unresolved", "ignored", "assigned"]
    assert seen[1][1]["status"] == "ignored" and seen[1][1]["substatus"] == "archived_forever"
    assert seen[3][1]["substatus"] == "archived_until_escalating"
    assert body["data"]["issue"]["assignedTo"]["email"] == member["email"]
    assert body["actor"]["type"] == "user" and body["actor"]["name"]
    assert all(_verified(r) for r in receiver.requests)

    n = len(receiver.requests)
    emu.assign_issue(issue_id, None)  # unassigning: Sentry sends nothing
    emu.set_issue_status(issue_id, "reprocessing")  # no webhook action for this status
    assert len(receiver.requests) == n


def test_a_new_event_of_a_resolved_issue_sends_unresolved_regressed(emu: Emulator, receiver: Receiver) -> None:
    slug = emu.project_slugs[0]
    issue_id = emu.issues(slug, status="unresolved")[0]["id"]
    emu.set_issue_status(issue_id, "resolved")
    receiver.requests.clear()
    emu.add_events(slug, 1, issue_id=issue_id)
    actions = [(r["headers"]["sentry-hook-resource"], json.loads(r["raw"])["action"]) for r in receiver.requests]
    assert actions == [("issue", "unresolved"), ("error", "created")]
    issue = receiver.of("issue")[0]["data"]["issue"]
    assert (issue["status"], issue["substatus"]) == ("unresolved", "regressed")


def test_only_subscribed_resources_are_sent(make_emulator: Any, receiver: Receiver) -> None:
    emu = make_emulator()
    emu.configure_webhooks(receiver.url, SECRET, resources=["issue"])
    issue_id = emu.add_issue(emu.project_slugs[0])
    emu.add_events(emu.project_slugs[0], 2, issue_id=issue_id)
    emu.add_comment(issue_id, "ignored: not subscribed")
    emu.fire_metric_alert()
    assert {r["headers"]["sentry-hook-resource"] for r in receiver.requests} == {"issue"}
    assert len(receiver.requests) == 1
    emu.stop_webhooks()
    emu.set_issue_status(issue_id, "resolved")
    assert len(receiver.requests) == 1
    with pytest.raises(ValueError):
        emu.configure_webhooks(receiver.url, SECRET, resources=["issues"])


def test_comment_alerts_and_installation_shapes(emu: Emulator, receiver: Receiver) -> None:
    slug = emu.project_slugs[0]
    issue_id = emu.issues(slug, status="unresolved")[0]["id"]
    comments_before = emu.issue(issue_id)["numComments"]
    member = emu.members()[1]
    comment = emu.add_comment(issue_id, "looking into it", user_email=member["email"])
    body = receiver.of("comment")[0]
    assert body["action"] == "created" and body["data"] == comment
    assert set(comment) == {"comment_id", "issue_id", "project_slug", "timestamp", "comment"}
    assert comment["issue_id"] == int(issue_id) and comment["project_slug"] == slug
    assert comment["comment"] == "looking into it" and comment["timestamp"].endswith("Z")
    assert body["actor"] == {"type": "user", "id": int(member["user"]["id"]), "name": member["name"]}
    assert emu.issue(issue_id)["numComments"] == comments_before + 1
    with pytest.raises(KeyError):
        emu.add_comment(issue_id, "x", user_email="nobody@example.invalid")

    emu.fire_event_alert(issue_id, rule="Checkout errors")
    alert = receiver.of("event_alert")[0]
    assert alert["action"] == "triggered" and alert["data"]["triggered_rule"] == "Checkout errors"
    newest = emu.issue_events(issue_id)[0]
    assert alert["data"]["event"]["event_id"] == newest["id"]
    assert alert["data"]["event"]["datetime"] == newest["dateCreated"]
    assert alert["data"]["event"]["issue_id"] == issue_id

    emu.fire_metric_alert("critical", name="p95 latency")
    emu.fire_metric_alert("resolved", name="p95 latency")
    emu.fire_metric_alert("warning", name="p95 latency")
    metric = receiver.of("metric_alert")
    assert [m["action"] for m in metric] == ["critical", "resolved", "warning"]
    first, closed, reopened = (m["data"] for m in metric)
    for d in (first, closed, reopened):
        assert set(d) >= {"metric_alert", "description_text", "description_title", "web_url"}
        incident = d["metric_alert"]
        assert {"id", "alert_rule", "date_detected", "date_started", "identifier", "status"} <= set(incident)
        assert incident["alert_rule"]["name"] == "p95 latency"
    assert first["metric_alert"]["id"] == closed["metric_alert"]["id"] != reopened["metric_alert"]["id"]
    assert first["metric_alert"]["date_closed"] is None and closed["metric_alert"]["date_closed"]
    assert first["description_title"] == "Critical: p95 latency"
    with pytest.raises(ValueError):
        emu.fire_metric_alert("triggered")

    emu.install_integration()
    emu.install_integration("deleted")
    inst = receiver.of("installation")
    assert [i["action"] for i in inst] == ["created", "deleted"]
    installation = inst[0]["data"]["installation"]
    assert installation["uuid"] == emu.webhook_installation == inst[0]["installation"]["uuid"]
    assert installation["organization"] == {"slug": emu.organization}
    assert set(installation["app"]) == {"uuid", "slug"} and installation["status"]
    assert inst[0]["actor"]["type"] == "user"
    assert all(_verified(r) for r in receiver.requests)


def test_hostile_sends(emu: Emulator, receiver: Receiver) -> None:
    data = {"issue": {"id": "1"}}
    assert emu.send_webhook("issue", "created", data, secret="not-the-secret") == 200
    assert not _verified(receiver.requests[-1])
    assert _verified(receiver.requests[-1], "not-the-secret")

    stale = int(emu.clock.time()) - 3600
    emu.send_webhook("issue", "created", data, timestamp=stale)
    assert receiver.requests[-1]["headers"]["sentry-hook-timestamp"] == str(stale)
    assert _verified(receiver.requests[-1])

    emu.send_webhook("issue", "created", data, request_id="fixed-id")
    emu.send_webhook("issue", "created", data, request_id="fixed-id")
    assert [r["headers"]["request-id"] for r in receiver.requests[-2:]] == ["fixed-id", "fixed-id"]

    emu.send_webhook("issue", "created", data)
    plain = len(receiver.requests[-1]["raw"])
    emu.send_webhook("issue", "created", data, pad_bytes=1_000_000)
    padded = receiver.requests[-1]
    assert len(padded["raw"]) == plain + 1_000_000
    assert _verified(padded) and json.loads(padded["raw"])["data"] == data

    receiver.status = 413
    assert emu.send_webhook("issue", "created", data) == 413
    assert emu.webhook_deliveries[-1]["status"] == 413
    assert emu.send_webhook("issue", "created", data, url=f"http://127.0.0.1:{_free_port()}/") == 0
    assert emu.webhook_deliveries[-1]["status"] == 0


def test_redelivery_keeps_body_and_request_id_with_a_fresh_timestamp(emu: Emulator, receiver: Receiver) -> None:
    issue_id = emu.add_issue(emu.project_slugs[0])
    first = receiver.requests[0]
    emu.advance(120)
    assert emu.redeliver(first["headers"]["request-id"]) == 200
    again = receiver.requests[-1]
    assert again["raw"] == first["raw"]
    assert again["headers"]["request-id"] == first["headers"]["request-id"]
    assert again["headers"]["sentry-hook-signature"] == first["headers"]["sentry-hook-signature"]
    assert int(again["headers"]["sentry-hook-timestamp"]) >= int(first["headers"]["sentry-hook-timestamp"]) + 120
    assert _verified(again)
    deliveries = emu.webhook_deliveries
    assert [d["request_id"] for d in deliveries].count(first["headers"]["request-id"]) == 2
    assert deliveries[0] | {"sent_at": 0} == {"resource": "issue", "action": "created", "sent_at": 0,
                                              "request_id": first["headers"]["request-id"], "status": 200,
                                              "bytes": len(first["raw"])}
    assert [d["sent_at"] for d in deliveries] == sorted(d["sent_at"] for d in deliveries)
    with pytest.raises(KeyError):
        emu.redeliver("no-such-request")
    assert emu.issue(issue_id)["id"] == issue_id


def test_a_receiver_that_is_down_does_not_break_mutations(make_emulator: Any) -> None:
    emu = make_emulator()
    emu.configure_webhooks(f"http://127.0.0.1:{_free_port()}/hook", SECRET, timeout=2)
    issue_id = emu.add_issue(emu.project_slugs[0])
    emu.add_events(emu.project_slugs[0], 2, issue_id=issue_id)
    emu.set_issue_status(issue_id, "resolved")
    assert emu.issue(issue_id)["status"] == "resolved"
    assert emu.issue(issue_id)["count"] == "3"
    statuses = [(d["resource"], d["action"], d["status"]) for d in emu.webhook_deliveries]
    assert statuses == [("issue", "created", 0), ("error", "created", 0), ("error", "created", 0),
                        ("error", "created", 0), ("issue", "resolved", 0)]


def test_a_receiver_may_call_the_api_back_while_it_answers(emu: Emulator, receiver: Receiver) -> None:
    fetched: list[int] = []

    def call_back(req: dict[str, Any]) -> None:
        body = json.loads(req["raw"])
        if "issue" in body["data"]:
            r = httpx.get(f"{emu.base_url}/api/0/organizations/{emu.organization}/issues/{body['data']['issue']['id']}/",
                          headers={"Authorization": f"Bearer {emu.token}"}, timeout=5)
            fetched.append(r.status_code)

    receiver.on_request = call_back
    issue_id = emu.add_issue(emu.project_slugs[0])
    emu.set_issue_status(issue_id, "resolved")
    assert fetched == [200, 200]
    assert all(d["status"] == 200 for d in emu.webhook_deliveries)
