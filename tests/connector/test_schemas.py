"""The committed stream schemas: generated from the OpenAPI file, and fit for Airbyte."""

from __future__ import annotations

import filecmp
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

from source_sentry.schemas import STREAM_SCHEMA_NAMES, load_schema
from source_sentry.schemas import stream_schema as discovered_schema
from source_sentry.streams import stream_by_name

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gen_schemas.py"
SCHEMA_DIR = REPO / "source_sentry" / "schemas"
# Sentry's 200 schemas (trimmed) and example bodies, kept in the repository: tests/data/sentry-api/SOURCE.md.
SENTRY_API = REPO / "tests" / "data" / "sentry-api"
OPENAPI = SENTRY_API / "openapi-200.json"
EXAMPLES = SENTRY_API / "examples"

FORBIDDEN = {"anyOf", "allOf", "oneOf", "not", "if", "then", "else", "$ref"}
CURSOR_FIELDS = {
    "events": "dateCreated",
    "issues": "lastSeen",
    "projects": "dateCreated",
    "releases": "dateCreated",
    "project_detail": "dateCreated",  # streams.py uses it as the cursor too
}
EXAMPLE_FILES = {
    "events": ["project-events.list.json", "project-event.detail.json"],
    "issues": ["organization-issues.list.json"],
    "projects": ["organization-projects.list.json"],
    "releases": ["organization-releases.list.json"],
}
SCALAR_TYPES = {"string", "number", "integer", "boolean"}


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_schemas", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_schemas"] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def _subschemas(schema: dict[str, Any], where: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node, walking properties/items/additionalProperties (not property names)."""
    yield where, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _subschemas(sub, f"{where}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _subschemas(schema["items"], f"{where}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _subschemas(schema["additionalProperties"], f"{where}{{*}}")


def _base_type(node: dict[str, Any]) -> str | None:
    t = node.get("type")
    return t[0] if isinstance(t, list) else t


def _date_time_checker() -> jsonschema.FormatChecker:
    # jsonschema checks date-time only with an optional package; this makes the test strict anyway.
    checker = jsonschema.FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _is_date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        return "T" in value and datetime.fromisoformat(value.replace("Z", "+00:00")) is not None

    return checker


@pytest.fixture(scope="module", params=STREAM_SCHEMA_NAMES)
def stream_schema(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, load_schema(request.param)


def test_names_match_generator_and_files() -> None:
    assert [s.name for s in gen.STREAMS] == list(STREAM_SCHEMA_NAMES)
    assert sorted(p.stem for p in SCHEMA_DIR.glob("*.json")) == sorted(STREAM_SCHEMA_NAMES)


def test_committed_schemas_are_regenerated_identically(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(OPENAPI), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    generated = sorted(p.name for p in tmp_path.glob("*.json"))
    assert generated == sorted(p.name for p in SCHEMA_DIR.glob("*.json"))
    _match, mismatch, errors = filecmp.cmpfiles(tmp_path, SCHEMA_DIR, generated, shallow=False)
    assert not mismatch and not errors, f"stale schemas, rerun scripts/gen_schemas.py: {mismatch}"


def test_file_text_is_deterministic_form() -> None:
    for name in STREAM_SCHEMA_NAMES:
        text = (SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8")
        assert text == gen.render(json.loads(text)), name


def test_valid_draft7_and_airbyte_rules(stream_schema: tuple[str, dict[str, Any]]) -> None:
    name, schema = stream_schema
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["type"] == "object" and schema["additionalProperties"] is True
    for where, node in _subschemas(schema):
        assert not FORBIDDEN & node.keys(), f"{name} {where}: {FORBIDDEN & node.keys()}"
        assert node.get("additionalProperties", True) is not False, f"{name} {where}"
        t = node.get("type")
        if isinstance(t, list):
            assert len(t) == 2 and t[1] == "null" and t[0] != "null", f"{name} {where}: {t}"
        else:
            assert t is None or isinstance(t, str), f"{name} {where}: {t}"
        if where != "$" and t is not None:
            assert isinstance(t, list), f"{name} {where}: every field is nullable"
        if _base_type(node) == "array":
            assert "items" in node, f"{name} {where}: arrays carry items"
        if _base_type(node) == "object":
            assert node.get("additionalProperties") is True, f"{name} {where}"
        assert _base_type(node) != "integer", f"{name} {where}: integers map to number"


def test_primary_key_and_cursor_exist_and_are_scalar(
    stream_schema: tuple[str, dict[str, Any]],
) -> None:
    name, schema = stream_schema
    stream = stream_by_name(name)
    assert stream is not None
    # Every field of the key (most streams: id; a tag value: issue, key and value), in the
    # schema discover shows (Sentry's fields and those the connector adds).
    schema = discovered_schema(stream)
    fields = list(stream.key_fields) + ([CURSOR_FIELDS[name]] if name in CURSOR_FIELDS else [])
    for field in fields:
        assert field in schema["properties"], f"{name}.{field}"
        assert _base_type(schema["properties"][field]) in SCALAR_TYPES, f"{name}.{field}"
    if name in CURSOR_FIELDS:
        assert schema["properties"][CURSOR_FIELDS[name]]["format"] == "date-time"


def test_events_merge_full_event_fields() -> None:
    properties = load_schema("events")["properties"]
    for field in (
        "entries",
        "contexts",
        "dateReceived",
        "sdk",
        "release",
        "errors",
        "size",
        "packages",
        "_meta",
        "event.type",
    ):
        assert field in properties, field


def test_usage_stats_row_schema() -> None:
    properties = load_schema("usage_stats")["properties"]
    assert set(properties) == {
        "id",
        "interval",
        "category",
        "outcome",
        "reason",
        "project",
        "quantity",
        "times_seen",
    }
    assert properties["interval"]["format"] == "date-time"
    assert _base_type(properties["project"]) == "number"


@pytest.mark.parametrize("stream", sorted(EXAMPLE_FILES))
def test_examples_validate(stream: str) -> None:
    validator = jsonschema.Draft7Validator(load_schema(stream), format_checker=_date_time_checker())
    for file_name in EXAMPLE_FILES[stream]:
        body = json.loads((EXAMPLES / file_name).read_text(encoding="utf-8"))
        for record in body if isinstance(body, list) else [body]:
            errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(record)]
            assert not errors, f"{file_name}: {errors[:5]}"


def test_load_schema_returns_independent_copies() -> None:
    first = load_schema("issues")
    first["properties"].clear()
    assert load_schema("issues")["properties"]
    with pytest.raises(KeyError):
        load_schema("no_such_stream")


# The conversion rules on small inputs, independent of the OpenAPI file.


def test_convert_maps_types_and_makes_them_nullable() -> None:
    node = {
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {"type": "integer", "format": "int64"},
            "b": {"type": "string", "format": "date-time", "nullable": True},
            "c": {"type": "string", "format": "uri", "enum": ["x"]},
            "d": {"type": "array", "items": {"type": "boolean"}},
            "e": {"type": "object", "additionalProperties": {"type": "string"}},
            "f": {},
        },
    }
    assert gen.convert(node) == {
        "type": ["object", "null"],
        "additionalProperties": True,
        "properties": {
            "a": {"type": ["number", "null"], "airbyte_type": "integer"},
            "b": {"type": ["string", "null"], "format": "date-time"},
            "c": {"type": ["string", "null"]},
            "d": {"type": ["array", "null"], "items": {"type": ["boolean", "null"]}},
            "e": {"type": ["object", "null"], "additionalProperties": True},
            "f": {},
        },
    }


def test_convert_any_of() -> None:
    # Different types: no type, but the structure of each alternative is kept.
    mixed = gen.convert(
        {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "integer"}}]}
    )
    assert mixed == {"items": {"type": ["number", "null"], "airbyte_type": "integer"}}
    validator = jsonschema.Draft7Validator(mixed)
    assert (
        validator.is_valid("0 * * * *")
        and validator.is_valid([1, 2])
        and not validator.is_valid(["x"])
    )
    # Same type: one schema of that type, properties united.
    objects = gen.convert(
        {
            "anyOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}},
                {"type": "object", "properties": {"b": {"type": "boolean"}}},
            ]
        }
    )
    assert objects["type"] == ["object", "null"] and set(objects["properties"]) == {"a", "b"}
    assert gen.convert({"oneOf": [{"type": "boolean"}, {"type": "integer"}]}) == {}


def test_no_stream_reads_an_endpoint_sentry_marks_deprecated() -> None:
    """Sentry's OpenAPI flags operations it is retiring (``deprecated: true``, kept by the trim):
    every list and detail route the connector reads is there, and none is flagged."""
    from source_sentry.streams import STREAMS

    paths = json.loads(OPENAPI.read_text())["paths"]
    # The flag survives the trim: the project issues list is one Sentry retires.
    assert paths["/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}/issues/"]["get"]["deprecated"]
    routes = {s.route for s in STREAMS} | {s.detail.route for s in STREAMS if s.detail is not None}
    for route in sorted(routes):
        path = gen.openapi_path(route)
        matches = [p for p in paths if p == path or _same_route(p, path)]
        assert matches, f"GET {path} is not in Sentry's OpenAPI"
        assert not any(paths[p]["get"].get("deprecated") for p in matches), f"GET {path} is deprecated"


def _same_route(theirs: str, ours: str) -> bool:
    """Whether two OpenAPI paths differ only in their placeholders' names."""
    a, b = theirs.strip("/").split("/"), ours.strip("/").split("/")
    return len(a) == len(b) and all(x == y or (x.startswith("{") and y.startswith("{")) for x, y in zip(a, b, strict=True))
