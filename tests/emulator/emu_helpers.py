"""Shared helpers for the emulator tests: an authenticated client, Link parsing, page walking."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx

from sentry_emulator import Emulator

LINK = re.compile(r'<([^>]*)>; rel="(\w+)"; results="(true|false)"; cursor="([^"]*)"')


def client(emu: Emulator, token: str | None = None, **kw: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token or emu.token}"} if token != "" else {}
    return httpx.Client(base_url=emu.base_url, headers=headers, timeout=10, **kw)


def links(response: httpx.Response) -> dict[str, tuple[str, bool, str]]:
    """rel -> (url, results, cursor)."""
    return {rel: (url, results == "true", cursor) for url, rel, results, cursor in LINK.findall(
        response.headers["Link"])}


def walk(c: httpx.Client, path: str, params: dict[str, Any] | None = None) -> Iterator[httpx.Response]:
    """Every page of a list, following `next` while results="true"."""
    r = c.get(path, params=params)
    while True:
        assert r.status_code == 200, r.text
        yield r
        url, more, _ = links(r)["next"]
        if not more:
            return
        r = c.get(url)


def nullable(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable: true` becomes a null alternative,
    recursively; `example(s)` dropped."""
    if isinstance(node, list):
        return [nullable(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: nullable(v) for k, v in node.items() if k not in ("nullable", "example", "examples")}
    if node.get("nullable"):
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "type" not in out:
            return {"anyOf": [out, {"type": "null"}]}
    return out


def all_items(c: httpx.Client, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [item for page in walk(c, path, params) for item in page.json()]
