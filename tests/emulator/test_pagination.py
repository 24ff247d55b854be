"""Link headers, cursors and page sizes exactly like Sentry's."""

from __future__ import annotations

import pytest
from emu_helpers import all_items, client, links, walk

LIST_PATHS = [
    "/api/0/organizations/",
    "/api/0/organizations/acme/projects/",
    "/api/0/projects/acme/backend/events/",
    "/api/0/organizations/acme/issues/",
    "/api/0/projects/acme/backend/issues/",
    "/api/0/organizations/acme/releases/",
    "/api/0/organizations/acme/teams/",
    "/api/0/organizations/acme/members/",
    "/api/0/projects/acme/backend/keys/",
    "/api/0/projects/acme/backend/user-feedback/",
    "/api/0/organizations/acme/monitors/",
]


def test_link_header_format(emulator) -> None:
    with client(emulator) as c:
        r = c.get("/api/0/projects/acme/backend/events/", params={"per_page": 10, "full": "true"})
    base = f"{emulator.base_url}/api/0/projects/acme/backend/events/?per_page=10&full=true"
    assert r.headers["Link"] == (
        f'<{base}&cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", '
        f'<{base}&cursor=0:10:0>; rel="next"; results="true"; cursor="0:10:0"')


def test_link_without_query_uses_question_ampersand(emulator) -> None:
    with client(emulator) as c:
        r = c.get("/api/0/organizations/acme/projects/")
    url, more, cursor = links(r)["next"]
    assert url == f"{emulator.base_url}/api/0/organizations/acme/projects/?&cursor=0:100:0"
    assert (more, cursor) == (False, "0:100:0")
    assert links(r)["previous"][1] is False


@pytest.mark.parametrize("path", LIST_PATHS)
def test_every_list_has_previous_and_next(emulator, path: str) -> None:
    with client(emulator) as c:
        r = c.get(path)
    assert r.status_code == 200
    assert set(links(r)) == {"previous", "next"}


def test_walking_events_returns_each_id_once(emulator) -> None:
    with client(emulator) as c:
        pages = list(walk(c, "/api/0/projects/acme/backend/events/", {"per_page": 17}))
    ids = [e["id"] for p in pages for e in p.json()]
    assert len(pages) == -(-len(ids) // 17)
    assert len(ids) == len(set(ids)) == len(emulator.events("backend"))
    assert ids == [e["id"] for e in emulator.events("backend")]
    assert links(pages[0])["previous"][1] is False and links(pages[1])["previous"][1] is True


def test_walking_issues_survives_inserts_and_deletes_between_pages(make_emulator) -> None:
    emu = make_emulator(events_per_project=400, issues_per_project=40)
    expected = {i["id"] for i in emu.issues()}
    seen: list[str] = []
    with client(emu) as c:
        for n, page in enumerate(walk(c, "/api/0/organizations/acme/issues/", {"query": "", "limit": 7})):
            seen += [i["id"] for i in page.json()]
            if n == 1:
                emu.add_issue("frontend", title="brand new")  # inserted at the head
                emu.delete_issue(seen[0])  # removed before the cursor
    assert expected - {seen[0]} <= set(seen)
    assert len(seen) == len(set(seen))


def test_releases_walk_like_sentrys_offset_paginator(make_emulator) -> None:
    """Sentry lists releases with its OffsetPaginator: cursors LIMIT:PAGE:IS_PREV, no X-Hits."""
    emu = make_emulator(releases=30)
    with client(emu) as c:
        pages = list(walk(c, "/api/0/organizations/acme/releases/", {"per_page": 8}))
    versions = [r["version"] for p in pages for r in p.json()]
    assert versions == [r["version"] for r in emu.releases()]
    assert [links(p)["next"][2] for p in pages] == ["8:1:0", "8:2:0", "8:3:0", "8:4:0"]
    assert links(pages[0])["previous"][1:] == (False, "8:-1:1")
    assert links(pages[1])["previous"][1:] == (True, "8:0:1")
    assert "X-Hits" not in pages[0].headers


def test_releases_cursor_of_another_page_size(make_emulator) -> None:
    """A cursor made with per_page 5 read with per_page 3: rows 10..15 fetched, the last 4 kept."""
    emu = make_emulator(releases=30)
    every = [r["version"] for r in emu.releases()]
    with client(emu) as c:
        r = c.get("/api/0/organizations/acme/releases/", params={"per_page": 3, "cursor": "5:2:0"})
    assert [x["version"] for x in r.json()] == every[12:15]
    assert links(r)["next"][1:] == (True, "3:3:0")


def test_per_page_over_100_is_400(emulator) -> None:
    with client(emulator) as c:
        r = c.get("/api/0/projects/acme/backend/events/", params={"per_page": 101})
        assert r.status_code == 400
        assert r.json() == {"detail": "Invalid per_page value. Cannot exceed 100."}
        assert c.get("/api/0/organizations/acme/issues/", params={"limit": 500}).status_code == 400
        assert c.get("/api/0/projects/acme/backend/events/", params={"per_page": 100}).status_code == 200


@pytest.mark.parametrize("cursor", ["abc", "0:1", "0:x:0", "0:-5:0", "1:2:3:4"])
def test_malformed_cursor_is_400(emulator, cursor: str) -> None:
    with client(emulator) as c:
        r = c.get("/api/0/projects/acme/backend/events/", params={"cursor": cursor})
    assert r.status_code == 400
    assert r.json() == {"detail": "Invalid cursor parameter."}


def test_default_page_size_is_100(make_emulator) -> None:
    emu = make_emulator(events_per_project=250)
    with client(emu) as c:
        r = c.get("/api/0/projects/acme/backend/events/")
        assert len(r.json()) == 100
        assert links(r)["next"][2] == "0:100:0"
        assert len(all_items(c, "/api/0/projects/acme/backend/events/")) == emu.event_count("backend")


FULL_LISTS = ["/api/0/projects/acme/backend/events/", "/api/0/organizations/acme/issues/{issue}/events/"]


def _full_list_path(emu, template: str) -> str:
    busiest = max(emu.issues("backend"), key=lambda i: int(i["count"]))  # enough events for pages
    return template.format(issue=busiest["id"])


@pytest.mark.parametrize("template", FULL_LISTS)
@pytest.mark.parametrize("per_page", [None, 100, 25])
def test_full_lists_hold_at_most_10_events_per_page(make_emulator, template: str, per_page: int | None) -> None:
    """Sentry since 2026-08/09: full=true pages hold 10 events whatever per_page asks; the Link
    cursors page on by what was served, so a walk still returns every event once, in order."""
    emu = make_emulator(events_per_project=400, issues_per_project=5)
    path = _full_list_path(emu, template)
    params = {"full": "true"} if per_page is None else {"full": "true", "per_page": per_page}
    with client(emu) as c:
        pages = list(walk(c, path, params))
        plain = c.get(path, params={} if per_page is None else {"per_page": per_page}).json()
    ids = [e["id"] for p in pages for e in p.json()]
    expected = [e["id"] for e in (emu.events("backend") if "projects" in path else
                                  emu.issue_events(path.split("/")[-3]))]
    assert len(expected) > 30 and ids == expected
    assert [len(p.json()) for p in pages[:-1]] == [10] * (len(pages) - 1)
    assert len(pages) == -(-len(ids) // 10)
    assert links(pages[0])["next"][2] == "0:10:0" and links(pages[1])["next"][2] == "0:20:0"
    assert len(plain) == (per_page or 100)  # without full=true, per_page as asked


def test_a_smaller_per_page_is_kept_with_full(emulator) -> None:
    with client(emulator) as c:
        r = c.get("/api/0/projects/acme/backend/events/", params={"full": "true", "per_page": 4})
        over = c.get("/api/0/projects/acme/backend/events/", params={"full": "true", "per_page": 101})
    assert len(r.json()) == 4 and links(r)["next"][2] == "0:4:0"
    assert over.status_code == 400  # the clamp does not lift Sentry's per_page check


@pytest.mark.parametrize("size", [None, 0, 50])
def test_full_page_size_option(make_emulator, size: int | None) -> None:
    emu = make_emulator(events_per_project=200, full_page_size=size)
    with client(emu) as c:
        r = c.get("/api/0/projects/acme/backend/events/", params={"full": "true"})
    assert len(r.json()) == (size or 100)
    assert links(r)["next"][2] == f"0:{size or 100}:0"


def test_missing_trailing_slash_redirects(emulator) -> None:
    with client(emulator) as c:
        r = c.get("/api/0/organizations/acme/projects", params={"per_page": 1})
    assert r.status_code == 301
    assert r.headers["Location"] == "/api/0/organizations/acme/projects/?per_page=1"


def test_release_deleted_between_pages_shifts_the_next_page(make_emulator) -> None:
    emu = make_emulator(releases=20)
    before = [r["version"] for r in emu.releases(status="open")]
    seen: list[str] = []
    with client(emu) as c:
        for n, page in enumerate(walk(c, "/api/0/organizations/acme/releases/", {"per_page": 5})):
            seen += [r["version"] for r in page.json()]
            if n == 0:
                emu.delete_release(seen[0])
    assert seen == before[:5] + before[6:]  # before[5] still exists and was never served


@pytest.mark.parametrize("path", ["/api/0/organizations/acme/issues/", "/api/0/projects/acme/backend/issues/"])
def test_offset_paging_issues(make_emulator, path: str) -> None:
    emu = make_emulator(offset_paging=True)
    project = None if "backend" not in path else "backend"
    before = [i["id"] for i in emu.issues(project)]
    seen: list[str] = []
    with client(emu) as c:
        for n, page in enumerate(walk(c, path, {"query": "", "limit": 4})):
            seen += [i["id"] for i in page.json()]
            if links(page)["next"][1]:
                assert links(page)["next"][2] == f"4:{n + 1}:0"
            if n == 0:
                emu.delete_issue(seen[0])
    assert seen == before[:4] + before[5:]
