"""The hostile fault kinds (pagination lies, slow and mis-encoded bodies, odd records, deletions
between pages), each seen on the wire by a real client."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
from typing import Any

import httpx
import orjson
import pytest
from emu_helpers import all_items, client, links

from sentry_emulator import Emulator
from sentry_emulator.faults import GARBLED_LINK, ODD_BIGINT, ODD_HUGE_LEN, parse_fault_spec

PROJECTS = "/api/0/organizations/acme/projects/"
EVENTS = "/api/0/projects/acme/backend/events/"
ISSUES = "/api/0/organizations/acme/issues/"
RELEASES = "/api/0/organizations/acme/releases/"


def _next_part(link: str) -> str:
    [part] = [p for p in re.split(r",\s*(?=<)", link) if 'rel="next"' in p]
    return part


def _raw(emu: Emulator, path: str) -> tuple[http.client.HTTPResponse, bytes]:
    """GET with http.client: no decoding, no JSON parsing (what arrived, byte for byte)."""
    host, port = emu.base_url.split("://")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {emu.token}"})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------- pagination lies
def test_no_link_serves_the_page_without_link(emulator) -> None:
    emulator.inject_fault("no_link", path="/events/")
    with client(emulator) as c:
        lied = c.get(EVENTS, params={"per_page": 5})
        honest = c.get(EVENTS, params={"per_page": 5})
    assert lied.status_code == 200 and "Link" not in lied.headers
    assert lied.json() == honest.json() and len(lied.json()) == 5
    assert links(honest)["next"][1] is True
    assert [r.fault for r in emulator.requests] == ["no_link", None]


def test_garbled_link_is_unusable_to_rfc8288_parsers(emulator) -> None:
    emulator.inject_fault("garbled_link", path="/events/")
    with client(emulator) as c:
        lied = c.get(EVENTS, params={"per_page": 5})
        honest = c.get(EVENTS, params={"per_page": 5})
    assert lied.headers["Link"] == GARBLED_LINK
    assert "next" not in lied.links and not links(lied)  # httpx's parser and a strict one
    assert lied.json() == honest.json()


def test_results_true_without_a_cursor(emulator) -> None:
    emulator.inject_fault("results_true_no_cursor", path="projects/$")
    with client(emulator) as c:
        lied = c.get(PROJECTS, params={"per_page": 50})  # three projects: really the last page
        honest = c.get(PROJECTS, params={"per_page": 50})
    part = _next_part(lied.headers["Link"])
    assert 'results="true"' in part and "cursor" not in part
    assert lied.links["next"]["url"] == f"{emulator.base_url}{PROJECTS}?per_page=50"
    assert 'results="false"' in _next_part(honest.headers["Link"])
    assert lied.json() == honest.json()


def test_results_true_without_a_cursor_or_any_query(emulator) -> None:
    emulator.inject_fault("results_true_no_cursor", path="projects/$")
    with client(emulator) as c:
        lied = c.get(PROJECTS)
    assert lied.links["next"]["url"] == f"{emulator.base_url}{PROJECTS}"
    assert lied.links["next"]["results"] == "true"


def test_endless_cursor_repeats_one_page_with_fresh_cursors(emulator) -> None:
    emulator.inject_fault("endless_cursor", path="/events/", times=-1)
    cursors = []
    with client(emulator) as c:
        r = c.get(EVENTS, params={"per_page": 5})
        first = r.json()
        for _ in range(25):
            url, more, cursor = links(r)["next"]
            assert more
            cursors.append(cursor)
            r = c.get(url)
            assert r.status_code == 200 and r.json() == first
        assert len(set(cursors)) == len(cursors)
        emulator.clear_faults()
        after = c.get(links(r)["next"][0])  # the fault is over: an empty last page
    assert [e["id"] for e in first] == [e["id"] for e in emulator.events("backend")[:5]]
    assert after.json() == [] and links(after)["next"][1] is False


def test_endless_empty_pages_with_fresh_cursors(emulator) -> None:
    emulator.inject_fault("endless_empty", path="/issues/", times=-1)
    cursors = []
    with client(emulator) as c:
        r = c.get(ISSUES, params={"query": ""})
        for _ in range(25):
            assert r.status_code == 200 and r.json() == []
            url, more, cursor = links(r)["next"]
            assert more
            cursors.append(cursor)
            r = c.get(url)
        emulator.clear_faults()
        after = c.get(links(r)["next"][0])
    assert len(set(cursors)) == len(cursors)
    assert after.status_code == 200 and after.json() == [] and links(after)["next"][1] is False


# ---------------------------------------------------------------------------- wire
def _connect(emu: Emulator, path: str) -> tuple[socket.socket, int, bytes]:
    """Send a GET on a raw socket; (socket, Content-Length, body bytes already read)."""
    host, port = emu.base_url.split("://")[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {emu.token}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before the headers"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    [length] = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    return sock, length, body


def _read_until(sock: socket.socket, body: bytes, want: int) -> bytes:
    while len(body) < want:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return body


def _available(sock: socket.socket) -> bytes:
    """What has arrived so far, without waiting for more."""
    sock.setblocking(False)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
    return out


def test_drip_is_slow_and_blocks_no_one(emulator) -> None:
    with client(emulator) as c:
        clean = c.get(PROJECTS).content
    emulator.inject_fault("drip", path="projects/$")  # 20 bytes per second: minutes for this body
    sock, length, body = _connect(emulator, PROJECTS)
    try:
        assert length == len(clean)  # headers at once, with the true Content-Length
        body = _read_until(sock, body, 1)
        with client(emulator) as c:  # another connection is served meanwhile
            assert c.get("/api/0/organizations/acme/").status_code == 200
            assert c.get(PROJECTS).content == clean
        body += _available(sock)
        assert 0 < len(body) < length and clean.startswith(body)
        stopper = threading.Thread(target=emulator.stop)
        stopper.start()
        stopper.join(60)
        assert not stopper.is_alive()  # stop() cut the drip off
        try:
            body = _read_until(sock, body, length)
        except OSError:
            pass
        assert len(body) < length
    finally:
        sock.close()
    assert [r.fault for r in emulator.requests].count("drip") == 1


def test_drip_delivers_the_whole_body(emulator) -> None:
    with client(emulator) as c:
        clean = c.get("/api/0/organizations/acme/").content
        emulator.inject_fault("drip", path="acme/$", bytes_per_second=20_000)
        r = c.get("/api/0/organizations/acme/")
    assert r.status_code == 200 and r.content == clean
    assert emulator.requests[-1].fault == "drip"


def test_bad_gzip_labels_plain_json_as_gzip(emulator) -> None:
    emulator.inject_fault("bad_gzip", path="projects/$", times=2)
    resp, raw = _raw(emulator, PROJECTS)
    assert resp.status == 200 and resp.getheader("Content-Encoding") == "gzip"
    assert json.loads(raw) == emulator.projects()  # the body is the plain JSON
    with client(emulator) as c, pytest.raises(httpx.DecodingError):
        c.get(PROJECTS)


# ---------------------------------------------------------------------------- odd records
ODD_KEYS = {"", "oddSurrogate", "oddHuge", "oddNested"}


def _odd_checks(record: dict[str, Any], clean: dict[str, Any], twin: str) -> None:
    assert record[""] and record[twin] and twin.lower() in record
    assert record["oddSurrogate"] == "lone \ud800 surrogate"
    assert len(record["oddHuge"]) == ODD_HUGE_LEN
    assert record["oddNested"] == {"bigint": ODD_BIGINT}
    assert {k: v for k, v in record.items() if k not in ODD_KEYS | {twin}} == clean


def test_odd_record_mangles_the_first_item(emulator) -> None:
    with client(emulator) as c:
        clean = c.get(ISSUES, params={"query": "", "limit": 5}).json()
    emulator.inject_fault("odd_record", path="/issues/$")
    resp, raw = _raw(emulator, ISSUES + "?query=&limit=5")
    assert resp.status == 200 and int(resp.getheader("Content-Length")) == len(raw)
    assert b'"lone \\ud800 surrogate"' in raw  # the six characters \ud800, as a JSON escape
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    body = json.loads(raw)  # Python's json takes the lone surrogate and the big integer
    _odd_checks(body[0], clean[0], "Title")
    assert body[1:] == clean[1:]


def test_odd_record_on_an_object(emulator) -> None:
    with client(emulator) as c:
        clean = c.get("/api/0/projects/acme/backend/").json()
    emulator.inject_fault("odd_record", path="backend/$")
    _, raw = _raw(emulator, "/api/0/projects/acme/backend/")
    _odd_checks(json.loads(raw), clean, "Id")  # no `title`: the first key, capitalised


def test_no_id_drops_then_nulls_ids(emulator) -> None:
    emulator.inject_fault("no_id", path="projects/$")
    with client(emulator) as c:
        body = c.get(PROJECTS).json()
    clean = emulator.projects()
    assert "id" not in body[0] and body[1]["id"] is None and body[2]["id"] == clean[2]["id"]
    assert body[0] == {k: v for k, v in clean[0].items() if k != "id"}


# ---------------------------------------------------------------------------- deletions between pages
def test_delete_after_page_makes_an_offset_walk_skip_one(make_emulator) -> None:
    emu = make_emulator(releases=20)
    before = [r["version"] for r in emu.releases(status="open")]
    emu.inject_fault("delete_after_page", path="/releases/$")
    with client(emu) as c:
        seen = [r["version"] for r in all_items(c, RELEASES, {"per_page": 5})]
    after = [r["version"] for r in emu.releases(status="open")]
    assert after == before[1:]  # the first item of the first page was deleted after serving it
    assert seen == before[:5] + before[6:]  # ...so page two starts one further on:
    assert before[5] in after and before[5] not in seen  # an existing release never served
    assert (emu.requests[0].fault, emu.requests[0].deleted) == ("delete_after_page", before[0])


@pytest.mark.parametrize("offset_paging", [False, True])
def test_delete_after_page_on_issues_keyed_or_offset(make_emulator, offset_paging: bool) -> None:
    emu = make_emulator(offset_paging=offset_paging)
    before = [i["id"] for i in emu.issues()]
    emu.inject_fault("delete_after_page", path="/organizations/acme/issues/$")
    with client(emu) as c:
        pages = _walk(c, ISSUES, {"query": "", "limit": 7})
    seen = [i["id"] for p in pages for i in p.json()]
    assert [i["id"] for i in emu.issues()] == before[1:]
    if offset_paging:
        assert seen == before[:7] + before[8:]  # one existing issue skipped
        assert links(pages[0])["next"][2] == "7:1:0"
    else:
        assert seen == before  # Sentry's keyed paginator: the deletion shifts nothing


def _walk(c: httpx.Client, path: str, params: dict[str, Any]) -> list[httpx.Response]:
    r, out = c.get(path, params=params), []
    while True:
        assert r.status_code == 200, r.text
        out.append(r)
        url, more, _ = links(r)["next"]
        if not more:
            return out
        r = c.get(url)


@pytest.mark.parametrize("path,ground_truth", [
    ("/api/0/organizations/acme/teams/", "teams"),
    ("/api/0/organizations/acme/members/", "members"),
    ("/api/0/organizations/acme/monitors/", "monitors"),
    ("/api/0/organizations/acme/projects/", "projects"),
    ("/api/0/organizations/acme/detectors/", "detectors"),
    ("/api/0/organizations/acme/workflows/", "workflows"),
    ("/api/0/projects/acme/backend/issues/", "issues"),
])
def test_delete_after_page_deletes_from_each_list(emulator, path: str, ground_truth: str) -> None:
    emulator.inject_fault("delete_after_page", path=re.escape(path) + "$")
    with client(emulator) as c:
        first = c.get(path, params={"per_page": 1, "query": ""}).json()[0]
    ids = [x["id"] for x in getattr(emulator, ground_truth)()]
    assert first["id"] not in ids
    assert emulator.requests[0].deleted == first["id"]


def test_delete_after_page_on_a_list_without_deletion(emulator) -> None:
    emulator.inject_fault("delete_after_page", path="/events/")
    before = emulator.event_count("backend")
    with client(emulator) as c:
        assert c.get(EVENTS, params={"per_page": 3}).status_code == 200
    assert emulator.event_count("backend") == before
    assert (emulator.requests[0].fault, emulator.requests[0].deleted) == ("delete_after_page", None)


# ---------------------------------------------------------------------------- admin HTTP, specs
def test_admin_http_injects_the_new_kinds(make_emulator) -> None:
    emu = make_emulator(admin=True)
    r = httpx.post(f"{emu.base_url}/_emulator/faults",
                   json={"kind": "drip", "path": "acme/$", "times": 1, "bytes_per_second": 50_000})
    assert r.status_code == 201
    assert r.json()["faults"][0]["bytes_per_second"] == 50_000
    httpx.post(f"{emu.base_url}/_emulator/faults", json={"kind": "no_link", "path": "projects/$"})
    with client(emu) as c:
        assert c.get("/api/0/organizations/acme/").status_code == 200
        assert "Link" not in c.get(PROJECTS).headers
    assert [r.fault for r in emu.requests] == ["drip", "no_link"]


@pytest.mark.parametrize("spec,parsed", [
    ("503", ("503", ".*", 1)),
    ("no_link:projects/$", ("no_link", "projects/$", 1)),
    ("endless_cursor:/events/:-1", ("endless_cursor", "/events/", -1)),
    ("drip:a:b:3", ("drip", "a:b", 3)),
    ("drip:(?:x):y", ("drip", "(?:x):y", 1)),
])
def test_fault_spec(spec: str, parsed: tuple[str, str, int]) -> None:
    assert parse_fault_spec(spec) == parsed


def test_bytes_per_second_must_be_positive(emulator) -> None:
    with pytest.raises(ValueError):
        emulator.inject_fault("drip", bytes_per_second=0)


def test_drip_on_head_has_no_body_to_drip(emulator) -> None:
    emulator.inject_fault("drip", path="projects/$")
    with client(emulator) as c:
        r = c.head(PROJECTS)
    assert r.status_code == 200 and r.content == b""
    assert [x.fault for x in emulator.requests] == ["drip"]
