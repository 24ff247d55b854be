"""SPEC: a valid draft-07 form that passes Airbyte's acceptance rules and the official models."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from airbyte_protocol.models import AirbyteMessage, Type

from source_sentry.config import parse_config
from source_sentry.spec import SPEC

CONNECTION = SPEC["connectionSpecification"]
PROPERTIES = CONNECTION["properties"]
FORBIDDEN = {"anyOf", "allOf", "not", "if", "then", "else", "$ref"}
AIRBYTE_CONFIG = {
    "auth_token": "sntryu_0123456789abcdef",
    "hostname": "sentry.io",
    "organization": "acme",
    "project": "backend",
}


def _nodes(schema: dict[str, Any], where: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    yield where, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _nodes(sub, f"{where}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{where}[]")
    for index, sub in enumerate(schema.get("oneOf", [])):
        yield from _nodes(sub, f"{where}|{index}")


def test_top_level_fields() -> None:
    assert (
        SPEC["documentationUrl"]
        == "https://github.com/source-sentry/source-sentry/blob/main/docs/sentry.md"
    )
    assert SPEC["supportsIncremental"] is True
    assert SPEC["supported_destination_sync_modes"] == ["overwrite", "append", "append_dedup"]
    assert CONNECTION["title"] == "Sentry Spec"
    assert CONNECTION["type"] == "object"
    assert CONNECTION["required"] == ["auth_token", "organization"]
    assert CONNECTION["additionalProperties"] is True


def test_valid_draft7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(CONNECTION)


def test_acceptance_rules() -> None:
    for where, node in _nodes(CONNECTION):
        assert not FORBIDDEN & node.keys(), where
        assert node.get("additionalProperties", True) is not False, where
        t = node.get("type")
        assert t is None or isinstance(t, str) or (len(t) == 2 and t[1] == "null"), where
        if "oneOf" in node:  # allowed only as a const-discriminated choice of objects
            for option in node["oneOf"]:
                assert any("const" in p for p in option.get("properties", {}).values()), where


def test_airbyte_property_names_and_titles_kept() -> None:
    titles = {
        name: PROPERTIES[name]["title"]
        for name in ("auth_token", "hostname", "organization", "project")
    }
    assert titles == {
        "auth_token": "Authentication Tokens",
        "hostname": "Host Name",
        "organization": "Organization",
        "project": "Project",
    }
    assert PROPERTIES["hostname"]["default"] == "sentry.io"


def test_secrets_marked() -> None:
    assert PROPERTIES["auth_token"]["airbyte_secret"] is True
    secretish = re.compile(r"token|secret|password|api_key", re.IGNORECASE)
    for name, prop in PROPERTIES.items():
        if secretish.search(name):
            assert prop.get("airbyte_secret") is True, name


def test_orders_unique_and_defaults_valid() -> None:
    orders = [prop["order"] for prop in PROPERTIES.values()]
    assert len(set(orders)) == len(orders)
    for prop in PROPERTIES.values():
        if "default" in prop:
            jsonschema.validate(prop["default"], prop)


def test_defaults_match_parsed_config() -> None:
    config = parse_config({"auth_token": "sntryu_0123456789abcdef", "organization": "acme"})
    assert (
        config.lookback_window.total_seconds()
        == PROPERTIES["lookback_window_minutes"]["default"] * 60
    )
    assert config.retention_days == PROPERTIES["retention_days"]["default"]
    assert config.request_timeout == PROPERTIES["request_timeout_seconds"]["default"]
    assert config.max_retries == PROPERTIES["max_retries"]["default"]
    assert config.host == PROPERTIES["hostname"]["default"]


def test_airbyte_style_config_validates() -> None:
    jsonschema.validate(AIRBYTE_CONFIG, CONNECTION)
    parse_config(AIRBYTE_CONFIG)


def test_full_config_validates() -> None:
    full = {
        **AIRBYTE_CONFIG,
        "projects": ["frontend", "backend"],
        "start_date": "2024-01-31T00:00:00Z",
        "lookback_window_minutes": 0,
        "retention_days": 30,
        "allow_http": False,
        "request_timeout_seconds": 12.5,
        "max_retries": 0,
    }
    jsonschema.validate(full, CONNECTION)


@pytest.mark.parametrize(
    "bad", [{"organization": "acme"}, {"auth_token": "x"}, {**AIRBYTE_CONFIG, "max_retries": 21}]
)
def test_invalid_configs_rejected_by_schema(bad: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, CONNECTION)


@pytest.mark.parametrize(
    "value", ["2024-01-31", "2024-01-31T00:00:00Z", "2024-01-31T00:00:00.123Z"]
)
def test_start_date_pattern_accepts(value: str) -> None:
    assert re.match(PROPERTIES["start_date"]["pattern"], value)


@pytest.mark.parametrize("value", ["yesterday", "31/01/2024", "2024-1-31"])
def test_start_date_pattern_rejects(value: str) -> None:
    assert not re.match(PROPERTIES["start_date"]["pattern"], value)


def test_wraps_into_official_airbyte_message() -> None:
    message = AirbyteMessage.model_validate({"type": "SPEC", "spec": SPEC})
    assert message.type == Type.SPEC
    assert message.spec is not None
    dumped = message.spec.model_dump(mode="json", exclude_unset=True)
    assert dumped["connectionSpecification"] == CONNECTION
    assert list(dumped["supported_destination_sync_modes"]) == [
        "overwrite",
        "append",
        "append_dedup",
    ]


# What spec never imports: the send path (httpx, httpcore), asyncio and the ssl it imports, the
# destination, the JSON library and the argument parser, the commands and the config (a protocol
# helper that pulled in source_sentry.http once cost spec 60 ms of its 90; asyncio and ssl, 45 ms).
NOT_FOR_SPEC = ("httpx", "httpcore", "duckdb", "msgspec", "source_sentry.http", "asyncio", "ssl", "orjson", "argparse",
                "source_sentry.commands", "source_sentry.config", "source_sentry.spec")


def test_spec_imports_nothing_but_its_entry_point() -> None:
    code = (
        "import sys; from source_sentry.cli import main; main(['spec']); "
        f"print(sorted(m for m in {NOT_FOR_SPEC!r} if m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "[]"
    assert [json.loads(line)["type"] for line in proc.stdout.splitlines()] == ["SPEC"]


def test_spec_is_the_same_without_the_written_message(tmp_path: Path) -> None:
    # The written line is what the commands build; without it (a tree that never ran the
    # generator) spec is built by the commands, the same bytes.
    code = (
        "import sys; import source_sentry.cli as cli; cli.SPEC_MESSAGE_FILE = sys.argv[1]; "
        "raise SystemExit(cli.main(['spec']))"
    )
    fast = subprocess.run([sys.executable, "-m", "source_sentry", "spec"], capture_output=True, timeout=60)
    built = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.json")], capture_output=True, timeout=60)
    assert fast.returncode == built.returncode == 0, built.stderr
    assert fast.stdout == built.stdout
    assert b"SPEC" in fast.stdout


def test_discover_imports_neither_the_http_client_nor_asyncio(tmp_path: Path) -> None:
    # discover never talks to Sentry: the stream table needs only the route type from the http
    # package, not httpx (about 0.1 s of start-up).
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auth_token": "t", "organization": "acme"}))
    code = (
        "import sys; from source_sentry.cli import main; main(['discover', '--config', sys.argv[1]]); "
        "print(sorted(m for m in ('httpx', 'httpcore', 'asyncio', 'ssl', 'duckdb') if m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "[]"
    assert [json.loads(line)["type"] for line in proc.stdout.splitlines()] == ["CATALOG"]
