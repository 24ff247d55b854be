"""Each injected fault kind, as a client sees it on the wire."""

from __future__ import annotations

import json

import httpx
import pytest
from emu_helpers import client, links

PROJECTS = "/api/0/organizations/acme/projects/"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_status_faults(emulator, status: int) -> None:
    emulator.inject_fault(str(status), path="projects/$", times=2)
    with client(emulator) as c:
        assert [c.get(PROJECTS).status_code for _ in range(3)] == [status, status, 200]
    assert [r.fault for r in emulator.requests] == [str(status)] * 2 + [None]


def test_429_fault_looks_like_sentry(emulator) -> None:
    emulator.inject_fault("429")
    with client(emulator) as c:
        r = c.get(PROJECTS)
    assert r.status_code == 429 and "Retry-After" not in r.headers
    assert r.json().startswith("You are attempting to use this endpoint too frequently.")
    assert r.headers["X-Sentry-Rate-Limit-Remaining"] == "0"


def test_after_skips_matching_requests(emulator) -> None:
    emulator.inject_fault("500", path="/events/", after=2)
    with client(emulator) as c:
        codes = [c.get(PROJECTS).status_code] + [c.get("/api/0/projects/acme/backend/events/").status_code
                                                  for _ in range(4)]
    assert codes == [200, 200, 200, 500, 200]


def test_reset_closes_without_response(emulator) -> None:
    emulator.inject_fault("reset")
    with client(emulator) as c:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
            c.get(PROJECTS)
        assert c.get(PROJECTS).status_code == 200
    assert emulator.requests[0].status == 0 and emulator.requests[0].fault == "reset"


def test_stall_outlasts_the_client_timeout(emulator) -> None:
    emulator.inject_fault("stall", seconds=2)
    with client(emulator) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get(PROJECTS, timeout=0.3)
        assert c.get(PROJECTS).status_code == 200


@pytest.mark.parametrize("kind", ["truncated_json", "invalid_json"])
def test_broken_json(emulator, kind: str) -> None:
    emulator.inject_fault(kind)
    with client(emulator) as c:
        r = c.get(PROJECTS)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_short_body_breaks_the_connection(emulator) -> None:
    emulator.inject_fault("short_body")
    with client(emulator) as c, pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        c.get(PROJECTS)


@pytest.mark.parametrize("kind,status", [("html", 502), ("html_200", 200)])
def test_html_from_a_proxy(emulator, kind: str, status: int) -> None:
    emulator.inject_fault(kind)
    with client(emulator) as c:
        r = c.get(PROJECTS)
    assert r.status_code == status
    assert r.headers["Content-Type"].startswith("text/html") and "<html>" in r.text


def test_empty_200(emulator) -> None:
    emulator.inject_fault("empty_200")
    with client(emulator) as c:
        r = c.get(PROJECTS)
    assert (r.status_code, r.content) == (200, b"")


def test_link_other_host(emulator) -> None:
    emulator.inject_fault("link_other_host")
    with client(emulator) as c:
        r = c.get("/api/0/projects/acme/backend/events/", params={"per_page": 5})
    url = links(r)["next"][0]
    assert r.status_code == 200 and len(r.json()) == 5
    assert url.startswith("http://127.0.0.2:") and emulator.base_url not in url


def test_forever_and_clear(emulator) -> None:
    emulator.inject_fault("503", times=-1)
    with client(emulator) as c:
        assert [c.get(PROJECTS).status_code for _ in range(3)] == [503] * 3
        emulator.clear_faults()
        assert c.get(PROJECTS).status_code == 200


def test_unknown_kind_is_refused(emulator) -> None:
    with pytest.raises(ValueError):
        emulator.inject_fault("explode")
