#!/usr/bin/env python3
"""Trim Sentry's dereferenced OpenAPI file to the 200 response schemas the tests need.

Usage::

    python scripts/trim_openapi.py FULL_OPENAPI_JSON [--out tests/data/sentry-api/openapi-200.json]

The full file (about 3.9 MB, see tests/data/sentry-api/SOURCE.md for where it comes from) is not
in the repository. The trimmed file keeps, for each GET operation in :data:`PATHS`, only
``paths[path].get.operationId``, ``deprecated`` where it is true, and
``paths[path].get.responses["200"].content["application/json"].schema``,
byte-for-byte the same schema nodes except the ``example``/``examples`` keywords, which no test
reads. Its shape is the full file's, so ``scripts/gen_schemas.py`` and the emulator's OpenAPI
test read it unchanged. Output: sorted keys, one-space indent, trailing newline (deterministic).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "tests" / "data" / "sentry-api" / "openapi-200.json"

_ORG = "/api/0/organizations/{organization_id_or_slug}"
_PROJECT = "/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}"

# The operations the emulator serves (sentry_emulator.api.ROUTES), the ones the connector's
# stream schemas are generated from (scripts/gen_schemas.py) and the detail routes of the same
# resources (an emulator route added later finds its schema here).
PATHS: tuple[str, ...] = (
    "/api/0/organizations/",
    f"{_ORG}/",
    f"{_ORG}/projects/",
    f"{_ORG}/teams/",
    f"{_ORG}/members/",
    f"{_ORG}/members/{{member_id}}/",
    f"{_ORG}/environments/",
    f"{_ORG}/issues/",
    f"{_ORG}/issues/{{issue_id}}/",
    f"{_ORG}/issues/{{issue_id}}/events/",
    f"{_ORG}/issues/{{issue_id}}/events/{{event_id}}/",
    f"{_ORG}/issues/{{issue_id}}/hashes/",
    f"{_ORG}/releases/",
    f"{_ORG}/releases/{{version}}/",
    f"{_ORG}/releases/{{version}}/deploys/",
    f"{_ORG}/releases/{{version}}/commits/",
    f"{_ORG}/monitors/",
    f"{_ORG}/monitors/{{monitor_id_or_slug}}/",
    f"{_ORG}/monitors/{{monitor_id_or_slug}}/checkins/",
    f"{_ORG}/stats_v2/",
    f"{_ORG}/sessions/",
    f"{_ORG}/events/",
    f"{_ORG}/replays/",
    f"{_ORG}/detectors/",
    f"{_ORG}/detectors/{{detector_id}}/",
    f"{_ORG}/workflows/",
    f"{_ORG}/workflows/{{workflow_id}}/",
    f"{_PROJECT}/",
    f"{_PROJECT}/events/",
    f"{_PROJECT}/events/{{event_id}}/",
    f"{_PROJECT}/issues/",
    f"{_PROJECT}/keys/",
    f"{_PROJECT}/keys/{{key_id}}/",
    f"{_PROJECT}/user-feedback/",
    "/api/0/teams/{organization_id_or_slug}/{team_id_or_slug}/",
    # The tables other connectors have (issue 21).
    f"{_ORG}/issues/{{issue_id}}/tags/{{key}}/values/",
    f"{_ORG}/releases/{{version}}/files/",
    f"{_ORG}/repos/",
    f"{_ORG}/repos/{{repo_id}}/commits/",
    f"{_ORG}/integrations/",
    f"{_ORG}/integrations/{{integration_id}}/",
    f"{_ORG}/sentry-app-installations/",
    f"{_ORG}/dashboards/",
    f"{_ORG}/dashboards/{{dashboard_id}}/",
    f"{_PROJECT}/users/",
    f"{_PROJECT}/hooks/",
    f"{_PROJECT}/ownership/",
)
_DROPPED_KEYWORDS = ("example", "examples")


def strip_examples(node: Any, *, in_properties: bool = False) -> Any:
    """``node`` without ``example``/``examples`` keywords; a property of that name stays."""
    if isinstance(node, list):
        return [strip_examples(x) for x in node]
    if not isinstance(node, dict):
        return node
    if in_properties:  # keys here are field names, not keywords
        return {name: strip_examples(sub) for name, sub in node.items()}
    return {k: strip_examples(v, in_properties=k == "properties") for k, v in node.items()
            if k not in _DROPPED_KEYWORDS}


def trim(openapi: dict[str, Any], paths: tuple[str, ...] = PATHS) -> dict[str, Any]:
    """The trimmed document: `openapi`, `info` and the 200 JSON schema of each GET in `paths`."""
    out: dict[str, Any] = {"openapi": openapi["openapi"], "info": openapi["info"], "paths": {}}
    for path in paths:
        try:
            get = openapi["paths"][path]["get"]
            schema = get["responses"]["200"]["content"]["application/json"]["schema"]
        except KeyError:
            raise SystemExit(f"GET {path}: no 200 application/json schema in the OpenAPI file") from None
        kept: dict[str, Any] = {
            "operationId": get.get("operationId"),
            "responses": {"200": {"content": {"application/json": {"schema": strip_examples(schema)}}}},
        }
        if get.get("deprecated"):
            kept["deprecated"] = True  # the connector must read no endpoint Sentry is retiring
        out["paths"][path] = {"get": kept}
    return out


def render(doc: dict[str, Any]) -> str:
    """Deterministic text: sorted keys, one-space indent, trailing newline."""
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("openapi", type=Path, help="the full openapi-derefed.json")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    doc = trim(json.loads(args.openapi.read_text(encoding="utf-8")))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(doc), encoding="utf-8")
    print(f"wrote {len(doc['paths'])} operations to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
