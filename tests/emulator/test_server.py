"""Server plumbing: TLS, request log, Date header, latency, admin paths, lifecycle."""

from __future__ import annotations

import ssl
import time
from email.utils import parsedate_to_datetime

import httpx
from emu_helpers import client

from sentry_emulator import Emulator


def test_tls_with_the_ca_file(make_emulator) -> None:
    emu = make_emulator(tls=True)
    assert emu.base_url.startswith("https://127.0.0.1:") and emu.ca_cert_path
    context = ssl.create_default_context(cafile=emu.ca_cert_path)
    with client(emu, verify=context) as c:
        assert c.get("/api/0/organizations/").status_code == 200
    with httpx.Client(verify=context) as c:
        r = c.get(emu.base_url.replace("127.0.0.1", "localhost") + "/api/0/organizations/",
                  headers={"Authorization": f"Bearer {emu.token}"})
        assert r.status_code == 200
    try:
        httpx.get(emu.base_url + "/api/0/organizations/")
        raise AssertionError("an unknown CA must be refused")
    except httpx.ConnectError:
        pass


def test_request_log(emulator) -> None:
    with client(emulator) as c:
        c.get("/api/0/projects/acme/backend/events/", params={"per_page": 3, "full": "true"})
        c.get("/api/0/organizations/acme/projects/", headers={"Authorization": "Bearer bad"})
    first, second = emulator.requests
    assert first.route == "/api/0/projects/{org}/{project}/events/"
    assert first.query == {"per_page": ["3"], "full": ["true"]}
    assert (first.status, first.authorization_present, first.token_valid) == (200, True, True)
    assert first.host == emulator.base_url.split("://")[1] and first.duration_ms > 0
    assert (second.status, second.token_valid) == (401, False)
    assert emulator.request_counts() == {"/api/0/projects/{org}/{project}/events/": 1,
                                         "/api/0/organizations/{org}/projects/": 1}
    emulator.clear_requests()
    assert emulator.requests == []


def test_date_header_is_emulator_time(emulator) -> None:
    emulator.advance(86400)
    with client(emulator) as c:
        r = c.get("/api/0/organizations/")
    date = parsedate_to_datetime(r.headers["Date"])
    assert abs((date - emulator.now()).total_seconds()) < 2


def test_latency(make_emulator) -> None:
    emu = make_emulator(latency_ms=150, jitter_ms=50)
    with client(emu) as c:
        started = time.perf_counter()
        c.get("/api/0/organizations/")
    # At least the latency (a lower bound: a slow machine only adds to it), as the log measured it too.
    assert time.perf_counter() - started >= 0.15
    assert emu.requests[-1].duration_ms >= 150


def test_admin_paths_off_by_default(emulator) -> None:
    r = httpx.post(emulator.base_url + "/_emulator/advance", json={"seconds": 10})
    assert r.status_code == 404


def test_admin_paths(make_emulator) -> None:
    emu = make_emulator(admin=True)
    base = emu.base_url + "/_emulator"
    before = emu.now()
    assert httpx.post(f"{base}/advance", json={"seconds": 3600}).status_code == 200
    assert (emu.now() - before).total_seconds() >= 3600
    ids = httpx.post(f"{base}/events", json={"project": "backend", "n": 2, "late_by_seconds": 5}).json()["event_ids"]
    assert set(ids) <= {e["id"] for e in emu.events("backend")}
    issue = emu.issues()[0]["id"]
    assert httpx.post(f"{base}/issues/{issue}/status", json={"status": "ignored"}).status_code == 200
    assert emu.issue(issue)["status"] == "ignored"
    httpx.post(f"{base}/faults", json={"kind": "502", "path": "teams"})
    with client(emu) as c:
        assert c.get("/api/0/organizations/acme/teams/").status_code == 502
    log = httpx.get(f"{base}/requests").json()
    assert log[-1]["fault"] == "502"
    token = httpx.post(f"{base}/tokens", json={"scopes": ["org:read"]}).json()["token"]
    with client(emu, token=token) as c:
        assert c.get("/api/0/projects/acme/backend/events/").status_code == 403
    assert httpx.post(f"{base}/nope", json={}).status_code == 404


def test_stop_is_clean_with_open_keepalive_connections() -> None:
    emu = Emulator(events_per_project=10).start()
    c = client(emu)
    assert c.get("/api/0/organizations/").status_code == 200
    emu.stop()  # returns although the client keeps its connection open (a hang: pytest-timeout)
    c.close()
    emu.stop()  # idempotent
