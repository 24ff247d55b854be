"""Airbyte's acceptance checks for spec, connection and discovery, against the emulator."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from acceptance_helpers import committed_json, config_for, run_cli, walk, write_json
from jsonschema import Draft7Validator

from source_sentry.streams import STREAMS

FORBIDDEN = ("anyOf", "allOf", "not", "if", "then", "else")
SECRET_NAME = re.compile(r"(token|password|secret|api_?key|credentials)", re.I)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    run = run_cli("spec")
    assert run.returncode == 0
    specs = run.of_type("SPEC")
    assert len(specs) == 1 and len(run.messages) == 1, "spec must print exactly one message, a SPEC"
    return specs[0]["spec"]


@pytest.fixture(scope="module")
def catalog(cat_emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("discover")
    run = run_cli("discover", "--config", write_json(tmp / "config.json", config_for(cat_emulator)))
    assert run.returncode == 0, run.stderr
    catalogs = run.of_type("CATALOG")
    assert len(catalogs) == 1, "discover must print exactly one CATALOG"
    return catalogs[0]["catalog"]["streams"]


# ------------------------------------------------------------------ spec
def test_spec_is_a_valid_draft7_schema(spec: dict[str, Any]) -> None:
    Draft7Validator.check_schema(spec["connectionSpecification"])
    assert spec["connectionSpecification"]["type"] == "object"
    assert re.match(r"https://", spec["documentationUrl"])


def test_spec_matches_the_committed_expected_spec(spec: dict[str, Any]) -> None:
    assert spec == committed_json("integration_tests/spec.json"), "run `python scripts/gen_docs.py`"


def test_spec_uses_no_forbidden_keywords_and_no_refs(spec: dict[str, Any]) -> None:
    for path, sub in walk(spec["connectionSpecification"]):
        for keyword in FORBIDDEN:
            assert keyword not in sub, f"{path} uses {keyword}"
        assert "$ref" not in sub, f"{path} has an unresolved $ref"
        assert sub.get("additionalProperties", True) is not False, f"{path} sets additionalProperties false"


def test_spec_types_are_single_or_nullable(spec: dict[str, Any]) -> None:
    for path, sub in walk(spec["connectionSpecification"]):
        kind = sub.get("type")
        if isinstance(kind, list):
            assert len(kind) == 2 and "null" in kind, f"{path}: type {kind} is neither single nor [type, null]"


def test_spec_oneof_objects_have_one_const_discriminator(spec: dict[str, Any]) -> None:
    for path, sub in walk(spec["connectionSpecification"]):
        options = sub.get("oneOf")
        if not options:
            continue
        consts = [{k for k, v in (o.get("properties") or {}).items() if "const" in v} for o in options]
        common = set.intersection(*consts) if consts else set()
        assert len(common) == 1, f"{path}: oneOf options need exactly one shared const property, have {consts}"
        values = [o["properties"][next(iter(common))]["const"] for o in options]
        assert len(set(values)) == len(values), f"{path}: oneOf const values repeat"


def test_spec_secrets_are_marked(spec: dict[str, Any]) -> None:
    properties = spec["connectionSpecification"]["properties"]
    for path, sub in walk(spec["connectionSpecification"]):
        name = path.rsplit("/", 1)[-1]
        if "/properties/" in path and SECRET_NAME.search(name) and sub.get("type") == "string":
            assert sub.get("airbyte_secret") is True, f"{path} looks secret but is not airbyte_secret"
        if sub.get("airbyte_secret"):
            assert sub.get("type") == "string", f"{path}: airbyte_secret on a non-string"
    assert properties["auth_token"]["airbyte_secret"] is True


def test_spec_required_defaults_and_examples_are_consistent(spec: dict[str, Any]) -> None:
    schema = spec["connectionSpecification"]
    for name in schema["required"]:
        assert name in schema["properties"]
    for name, prop in schema["properties"].items():
        validator = Draft7Validator(prop)
        if "default" in prop:
            assert validator.is_valid(prop["default"]), f"{name}: default {prop['default']!r} fails its own schema"
        for example in prop.get("examples", []):
            assert validator.is_valid(example), f"{name}: example {example!r} fails its own schema"
    orders = [p["order"] for p in schema["properties"].values() if "order" in p]
    assert len(orders) == len(set(orders)), "two fields share an order"


# ------------------------------------------------------------------ connection
def test_check_succeeds_with_exactly_one_status(cat_emulator: Any, tmp_path: Path) -> None:
    run = run_cli("check", "--config", write_json(tmp_path / "c.json", config_for(cat_emulator)))
    assert run.returncode == 0
    statuses = run.of_type("CONNECTION_STATUS")
    assert len(statuses) == 1 and statuses[0]["connectionStatus"]["status"] == "SUCCEEDED", run.stdout
    assert not run.traces("ERROR")


def test_check_fails_on_the_committed_invalid_config(cat_emulator: Any, tmp_path: Path) -> None:
    invalid = committed_json("integration_tests/invalid_config.json")
    invalid["hostname"] = cat_emulator.base_url  # the same bad token, sent to the emulator
    invalid["organization"] = cat_emulator.organization
    invalid.pop("project", None)
    run = run_cli("check", "--config", write_json(tmp_path / "c.json", invalid))
    assert run.returncode == 0
    statuses = run.of_type("CONNECTION_STATUS")
    assert len(statuses) == 1, run.stdout
    status = statuses[0]["connectionStatus"]
    assert status["status"] == "FAILED" and "auth token" in status["message"]
    assert not run.traces("ERROR")


def test_check_fails_on_a_config_that_breaks_the_spec(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"organization": 12}')
    run = run_cli("check", "--config", str(path))
    statuses = run.of_type("CONNECTION_STATUS")
    assert len(statuses) == 1 and statuses[0]["connectionStatus"]["status"] == "FAILED"
    assert statuses[0]["connectionStatus"]["message"]


# ------------------------------------------------------------------ discovery
def test_catalog_has_every_stream_once(catalog: list[dict[str, Any]]) -> None:
    names = [s["name"] for s in catalog]
    assert len(names) == len(set(names)), "duplicate stream names"
    assert names == [s.name for s in STREAMS]


def test_catalog_schemas_are_valid_draft7(catalog: list[dict[str, Any]]) -> None:
    for stream in catalog:
        schema = stream["json_schema"]
        Draft7Validator.check_schema(schema)
        assert schema.get("type") in ("object", ["object", "null"], ["null", "object"]), stream["name"]
        for path, sub in walk(schema):
            assert "$ref" not in sub, f"{stream['name']}{path}: unresolved $ref"
            assert sub.get("additionalProperties", True) is not False, f"{stream['name']}{path}: additionalProperties false"


def test_catalog_matches_the_committed_configured_catalog(catalog: list[dict[str, Any]]) -> None:
    configured = {e["stream"]["name"]: e["stream"] for e in committed_json("integration_tests/configured_catalog.json")["streams"]}
    assert {s["name"]: s for s in catalog} == configured, "run `python scripts/gen_docs.py`"


def _types(prop: dict[str, Any]) -> set[str]:
    kind = prop.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def test_cursor_fields_and_primary_keys_exist_and_are_scalar(catalog: list[dict[str, Any]]) -> None:
    for stream in catalog:
        properties = stream["json_schema"].get("properties", {})
        if "incremental" in stream["supported_sync_modes"]:
            assert stream.get("source_defined_cursor") is True
            cursor = stream.get("default_cursor_field")
            assert cursor, f"{stream['name']}: incremental without a default cursor"
            prop = properties.get(cursor[0])
            assert prop is not None, f"{stream['name']}: cursor {cursor} not in the schema"
            kind = _types(prop)
            assert not kind & {"object", "array"} and kind - {"null"}, f"{stream['name']}: cursor {cursor} is {prop.get('type')}"
        for key in stream.get("source_defined_primary_key") or []:
            prop = properties.get(key[0])
            assert prop is not None, f"{stream['name']}: primary key {key} not in the schema"
            kind = _types(prop)
            assert not kind & {"object", "array"} and kind - {"null"}, f"{stream['name']}: primary key {key} is {prop.get('type')}"
        assert stream["supported_sync_modes"] and set(stream["supported_sync_modes"]) <= {"full_refresh", "incremental"}
