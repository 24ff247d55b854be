#!/usr/bin/env python3
"""Generate the connector's stream JSON schemas from Sentry's public OpenAPI file.

Usage::

    python scripts/gen_schemas.py [OPENAPI_JSON] [--out DIR]

``OPENAPI_JSON`` defaults to ``../shared/sentry-api/openapi-derefed.json`` relative to the repo
root, ``DIR`` to ``source_sentry/schemas``. One ``<stream>.json`` is written per stream of the
connector's stream table (``source_sentry.streams.STREAMS``: its route, its ``schema_routes``, or
its ``row_schema``); the files are committed so the connector never needs the OpenAPI file at run
time. A new stream needs no change here.

Contract of every generated schema (Airbyte's acceptance tests hold us to most of it):

* draft-07, top level ``{"type": "object", "additionalProperties": true, "properties": ...}``;
* every field the OpenAPI documents for the response item, recursively; nested objects keep
  their properties and are open (``additionalProperties: true``) because Sentry adds fields
  without notice;
* types follow the Airbyte Sentry connector's data type map: string -> string, integer and
  number -> number, boolean -> boolean, array -> array (always with ``items``), object -> object;
* every type is nullable (``[type, "null"]``): Sentry sends null in many documented fields;
* no ``anyOf``/``oneOf``/``allOf``/``not``/``if``/``$ref``: alternatives of one type are merged
  into one schema of that type (objects: union of properties); alternatives of different types
  become a schema without ``type`` that keeps their ``items``/``properties`` (see :func:`merge`);
* ``required``, ``enum`` and other validation keywords are dropped (Sentry adds enum values and
  omits fields); only ``format: date-time`` is kept; short descriptions are kept.

``events`` merges the list item (listProjectEvents) with the full event detail (getProjectEvent,
its ``schema_routes``) because the connector lists events with ``full=true``, which adds ``entries``, ``contexts``,
``dateReceived``, ``sdk`` and more to every item.

``replays`` answers ``{"data": [...]}``: its records are the items of ``data`` (its ``items_key``).
The Explore datasets (``spans``, ``logs``, ``uptime_results``, ``tracemetrics``) and
``release_health`` have row schemas of the connector's own (``row_schema``): Explore documents
its rows only as open objects (their keys are the requested fields), and release health answers
intervals and groups like ``stats_v2``.

``usage_stats`` is not an OpenAPI item: listOrganizationStatsV2 answers with one object of
``intervals`` and ``groups`` (``by``, ``totals``, ``series``). The connector flattens it into one
row per group x interval, described by its ``row_schema`` (``USAGE_STATS_ROW``): ``id`` (a synthetic key built by
the connector from the interval and the group-by values), ``interval`` (start of the interval,
date-time), ``category``, ``outcome``, ``reason`` (the group-by values), ``project`` (project id),
``quantity`` (``sum(quantity)``) and ``times_seen`` (``sum(times_seen)``) for that interval.
The operation must still exist in the OpenAPI file, so a removal is noticed here.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from source_sentry.streams import STREAMS as STREAM_TABLE  # noqa: E402
from source_sentry.streams import StreamDef  # noqa: E402

DEFAULT_OPENAPI = REPO_ROOT.parent / "shared" / "sentry-api" / "openapi-derefed.json"
DEFAULT_OUT = REPO_ROOT / "source_sentry" / "schemas"

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
MAX_DESCRIPTION = 200  # longer OpenAPI descriptions are API prose, not field documentation

# Sentry type -> Airbyte type (the data type map of Airbyte's Sentry connector docs).
TYPE_MAP = {
    "string": "string",
    "integer": "number",
    "number": "number",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
}


@dataclass(frozen=True)
class Operation:
    """One GET operation whose 200 body describes a stream's records (the item of an array)."""

    path: str
    items_key: str | None = None  # the records are this key's array in an object answer


@dataclass(frozen=True)
class StreamSource:
    """The operations one stream's schema is built from (merged when several)."""

    name: str
    operations: tuple[Operation, ...]
    derived: dict[str, Any] | None = None  # hand-written row schema for non-list responses
    keys: tuple[str, ...] = ("id",)  # the primary key's fields...
    added: tuple[str, ...] = ()  # ...documented here or among the fields the connector adds


# Our route placeholders -> the OpenAPI file's.
_PLACEHOLDERS = {
    "{organization}": "{organization_id_or_slug}",
    "{project}": "{project_id_or_slug}",
    "{monitor}": "{monitor_id_or_slug}",
}


def openapi_path(route: str) -> str:
    """The OpenAPI path of one of our route templates."""
    path = "/api/0/" + route
    for ours, theirs in _PLACEHOLDERS.items():
        path = path.replace(ours, theirs)
    return path


def source_of(stream: StreamDef) -> StreamSource:
    """What one stream's schema is built from, read off the stream table."""
    routes = (stream.route, *stream.schema_routes)
    return StreamSource(
        stream.name,
        tuple(Operation(openapi_path(r), stream.items_key if r == stream.route else None) for r in routes),
        dict(stream.row_schema) if stream.row_schema is not None else None,
        stream.key_fields,
        tuple(stream.extra_fields),
    )


# One schema per stream of the table (the table is the only list of streams).
STREAMS: tuple[StreamSource, ...] = tuple(source_of(s) for s in STREAM_TABLE)


class SchemaGenError(Exception):
    """The OpenAPI file lacks something a stream needs."""


def _short_description(node: dict[str, Any]) -> str | None:
    text = node.get("description")
    if not isinstance(text, str):
        return None
    text = " ".join(text.split())
    return text if 0 < len(text) <= MAX_DESCRIPTION else None


def _base_type(schema: dict[str, Any]) -> str | None:
    t = schema.get("type")
    base = t[0] if isinstance(t, list) else t
    return base if isinstance(base, str) else None


def convert(node: Any) -> dict[str, Any]:
    """Translate one OpenAPI 3.0 schema node into the Airbyte-friendly draft-07 form above."""
    if not isinstance(node, dict):
        return {}
    for key in ("anyOf", "oneOf", "allOf"):
        alternatives = node.get(key)
        if isinstance(alternatives, list) and alternatives:
            merged = convert(alternatives[0])
            for alternative in alternatives[1:]:
                merged = merge(merged, convert(alternative))
            description = _short_description(node)
            if description and "description" not in merged:
                merged["description"] = description
            return merged

    openapi_type = node.get("type")
    if openapi_type is None and "properties" in node:
        openapi_type = "object"
    out: dict[str, Any] = {}
    if openapi_type in TYPE_MAP:
        airbyte_type = TYPE_MAP[openapi_type]
        out["type"] = [airbyte_type, "null"]
        if airbyte_type == "string" and node.get("format") == "date-time":
            out["format"] = "date-time"
        elif openapi_type == "integer":
            # Still "number" per the data type map; Airbyte's hint lets destinations keep integers.
            out["airbyte_type"] = "integer"
        elif airbyte_type == "array":
            out["items"] = convert(node.get("items"))
        elif airbyte_type == "object":
            properties = node.get("properties")
            if isinstance(properties, dict) and properties:
                out["properties"] = {name: convert(sub) for name, sub in properties.items()}
            # Open objects everywhere: typed maps (additionalProperties: {...}) included.
            out["additionalProperties"] = True
    description = _short_description(node)
    if description:
        out["description"] = description
    return out


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One schema of this form accepting what ``a`` or ``b`` accepts (used for anyOf and events).

    Same type: that type, with items merged and properties united. Different or unrestricted
    types: no ``type``, but ``items`` and ``properties`` stay; without ``type`` they constrain
    only arrays and objects, so for two concrete types this is still exactly the union. When
    one side is fully undocumented (``{}``) the documented structure is kept on purpose: it is
    what Sentry sends, and a bare ``{}`` would erase every documented field beneath it.
    """
    base_a, base_b = _base_type(a), _base_type(b)
    out: dict[str, Any] = {}
    if base_a is not None and base_a == base_b:
        out["type"] = [base_a, "null"]
    if "format" in a and a.get("format") == b.get("format"):
        out["format"] = a["format"]
    if "items" in a and "items" in b:
        out["items"] = merge(a["items"], b["items"])
    elif "items" in a or "items" in b:
        out["items"] = a.get("items", b.get("items"))
    props_a, props_b = a.get("properties", {}), b.get("properties", {})
    properties = {}
    for name in (*props_a, *(n for n in props_b if n not in props_a)):
        if name in props_a and name in props_b:
            properties[name] = merge(props_a[name], props_b[name])
        else:
            properties[name] = props_a[name] if name in props_a else props_b[name]
    if properties:
        out["properties"] = properties
    if properties or "additionalProperties" in a or "additionalProperties" in b:
        out["additionalProperties"] = True
    description = a.get("description") or b.get("description")
    if description:
        out["description"] = description
    return out


def _response_schema(openapi: dict[str, Any], op: Operation) -> dict[str, Any]:
    try:
        get = openapi["paths"][op.path]["get"]
        schema = get["responses"]["200"]["content"]["application/json"]["schema"]
    except KeyError as exc:
        raise SchemaGenError(f"GET {op.path}: no 200 application/json response schema") from exc
    if op.items_key is not None:
        schema = (schema.get("properties") or {}).get(op.items_key)
        if not isinstance(schema, dict):
            raise SchemaGenError(f"GET {op.path}: no '{op.items_key}' in the response schema")
    if schema.get("type") == "array":
        if not isinstance(schema.get("items"), dict):
            raise SchemaGenError(f"GET {op.path}: an array response without an item schema")
        schema = schema["items"]
    if not isinstance(schema, dict):
        raise SchemaGenError(f"GET {op.path}: the response schema is not an object")
    return schema


def build_stream_schema(openapi: dict[str, Any], stream: StreamSource) -> dict[str, Any]:
    """The record schema of one stream: its operations' item schemas converted and merged."""
    record: dict[str, Any] | None = None
    for op in stream.operations:
        converted = convert(_response_schema(openapi, op))
        record = converted if record is None else merge(record, converted)
    if stream.derived is not None:
        properties = dict(stream.derived)
    else:
        assert record is not None
        if _base_type(record) != "object":
            raise SchemaGenError(f"{stream.name}: the record schema is not an object")
        properties = record.get("properties", {})
    for key in stream.keys:
        if key not in properties and key not in stream.added:
            raise SchemaGenError(f"{stream.name}: the primary key field '{key}' is neither documented nor added")
    return {
        "$schema": DRAFT_07,
        "type": "object",
        "additionalProperties": True,
        "properties": properties,
    }


def render(schema: dict[str, Any]) -> str:
    """Deterministic text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def generate(openapi_path: Path, out_dir: Path) -> list[Path]:
    """Write every stream schema into ``out_dir``; remove stale ``*.json`` there; return paths."""
    openapi = json.loads(openapi_path.read_text(encoding="utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stream in STREAMS:
        target = out_dir / f"{stream.name}.json"
        target.write_text(render(build_stream_schema(openapi, stream)), encoding="utf-8")
        written.append(target)
    # A stream dropped from the table must not leave a schema the package still ships.
    for stale in sorted(set(out_dir.glob("*.json")) - set(written)):
        stale.unlink()
        print(f"removed stale {stale}", file=sys.stderr)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("openapi", nargs="?", type=Path, default=DEFAULT_OPENAPI)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.openapi.is_file():
        print(f"OpenAPI file not found: {args.openapi}", file=sys.stderr)
        return 2
    try:
        written = generate(args.openapi, args.out)
    except SchemaGenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} schemas to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
