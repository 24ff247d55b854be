"""Helpers for the acceptance checks: the CLI driver of tests/connector, the committed Airbyte
files (integration_tests/, acceptance-test-config.yml) and a few schema walkers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
for _folder in ("tests/connector", "tests/packaging"):
    if str(ROOT / _folder) not in sys.path:
        sys.path.insert(0, str(ROOT / _folder))

from connector_helpers import CliRun, config_for, run_cli, write_json  # noqa: E402
from packaging_helpers import load_yaml  # noqa: E402

__all__ = ["ROOT", "CliRun", "config_for", "load_yaml", "run_cli", "write_json"]


def committed_json(rel: str) -> Any:
    return json.loads((ROOT / rel).read_text(encoding="utf-8"))


def acceptance_config() -> dict[str, Any]:
    return load_yaml((ROOT / "acceptance-test-config.yml").read_text(encoding="utf-8"))


def empty_streams() -> set[str]:
    tests = acceptance_config()["acceptance_tests"]["basic_read"]["tests"]
    return {e["name"] for t in tests for e in t.get("empty_streams", [])}


def ignored_fields() -> dict[str, set[str]]:
    tests = acceptance_config()["acceptance_tests"]["full_refresh"]["tests"]
    out: dict[str, set[str]] = {}
    for t in tests:
        for stream, fields in (t.get("ignored_fields") or {}).items():
            out.setdefault(stream, set()).update(f["name"] for f in fields)
    return out


def configured_catalog(streams: list[str] | None = None, mode: str | None = None) -> dict[str, Any]:
    """integration_tests/configured_catalog.json, optionally cut to some streams or forced to a mode."""
    catalog = committed_json("integration_tests/configured_catalog.json")
    entries = [e for e in catalog["streams"] if streams is None or e["stream"]["name"] in streams]
    if mode is not None:
        for entry in entries:
            if mode in entry["stream"]["supported_sync_modes"]:
                entry["sync_mode"] = mode
    return {"streams": entries}


def read(tmp: Path, config: dict[str, Any], catalog: dict[str, Any], state: Any = None, tag: str = "") -> CliRun:
    args = ["read", "--config", write_json(tmp / f"config{tag}.json", config),
            "--catalog", write_json(tmp / f"catalog{tag}.json", catalog)]
    if state is not None:
        args += ["--state", write_json(tmp / f"state{tag}.json", state)]
    return run_cli(*args)


def walk(schema: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sub-schema (a dict) with its JSON pointer-ish path."""
    if isinstance(schema, dict):
        yield path, schema
        for key, value in schema.items():
            if key in ("properties", "patternProperties", "definitions", "$defs") and isinstance(value, dict):
                for name, sub in value.items():
                    yield from walk(sub, f"{path}/{key}/{name}")
            elif key in ("items", "additionalProperties", "additionalItems", "contains", "propertyNames") and isinstance(value, dict):
                yield from walk(value, f"{path}/{key}")
            elif key in ("oneOf", "anyOf", "allOf", "items") and isinstance(value, list):
                for i, sub in enumerate(value):
                    yield from walk(sub, f"{path}/{key}/{i}")
            elif key in ("not", "if", "then", "else") and isinstance(value, dict):
                yield from walk(value, f"{path}/{key}")


def states_with_counts(run: CliRun) -> list[tuple[int, dict[str, Any]]]:
    """(index of the message, STATE) in stdout order."""
    return [(i, m["state"]) for i, m in enumerate(run.messages) if m["type"] == "STATE"]


def stream_of_state(state: dict[str, Any]) -> str:
    return state["stream"]["stream_descriptor"]["name"]
