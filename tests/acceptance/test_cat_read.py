"""Airbyte's acceptance checks for basic read and full refresh, against the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from acceptance_helpers import (
    CliRun,
    config_for,
    configured_catalog,
    empty_streams,
    ignored_fields,
    read,
    run_cli,
    stream_of_state,
    write_json,
)
from jsonschema import Draft7Validator

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    return configured_catalog()


@pytest.fixture(scope="module")
def first_read(cat_emulator: Any, catalog: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """A first sync of every stream, as Airbyte's basic read runs it (the committed catalog)."""
    run = read(tmp_path_factory.mktemp("basic"), config_for(cat_emulator), catalog)
    assert run.returncode == 0, (run.errors(), run.stderr[-2000:])
    return run


def _names(catalog: dict[str, Any]) -> list[str]:
    return [e["stream"]["name"] for e in catalog["streams"]]


def test_read_ends_without_errors(first_read: CliRun) -> None:
    assert not first_read.errors(), first_read.errors()


def test_every_record_matches_its_stream_schema(first_read: CliRun, catalog: dict[str, Any]) -> None:
    validators = {
        e["stream"]["name"]: Draft7Validator(e["stream"]["json_schema"], format_checker=Draft7Validator.FORMAT_CHECKER)
        for e in catalog["streams"]
    }
    problems: list[str] = []
    for message in first_read.of_type("RECORD"):
        record = message["record"]
        assert record["stream"] in validators, f"a record of unconfigured stream {record['stream']}"
        for error in validators[record["stream"]].iter_errors(record["data"]):
            problems.append(f"{record['stream']}: {'/'.join(map(str, error.absolute_path))}: {error.message[:200]}")
    assert not problems, f"{len(problems)} schema violations, first: {problems[:10]}"


def test_primary_keys_are_present_and_scalar(first_read: CliRun, catalog: dict[str, Any]) -> None:
    for entry in catalog["streams"]:
        name = entry["stream"]["name"]
        for record in first_read.records(name):
            for key in entry["stream"].get("source_defined_primary_key") or []:
                value = record.get(key[0])
                assert value is not None and not isinstance(value, (dict, list)), f"{name}: primary key {key} = {value!r}"


def test_every_stream_not_declared_empty_has_records(first_read: CliRun, catalog: dict[str, Any]) -> None:
    empty = {n for n in _names(catalog) if not first_read.records(n)}
    assert empty <= empty_streams(), f"streams without records that acceptance-test-config.yml does not list: {empty - empty_streams()}"


def test_stream_statuses_are_started_running_complete(first_read: CliRun, catalog: dict[str, Any]) -> None:
    for name in _names(catalog):
        statuses = first_read.statuses(name)
        expected = ["STARTED", "RUNNING", "COMPLETE"] if first_read.records(name) or first_read.states(name) else ["STARTED", "COMPLETE"]
        assert statuses == expected, f"{name}: {statuses}"
    # And in the right place: STARTED before the stream's first message, COMPLETE after its last.
    positions: dict[str, dict[str, int]] = {}
    for i, message in enumerate(first_read.messages):
        if message["type"] == "TRACE" and message["trace"]["type"] == "STREAM_STATUS":
            status = message["trace"]["stream_status"]
            positions.setdefault(status["stream_descriptor"]["name"], {})[status["status"]] = i
        elif message["type"] in ("RECORD", "STATE"):
            name = message["record"]["stream"] if message["type"] == "RECORD" else stream_of_state(message["state"])
            seen = positions.setdefault(name, {})
            assert "STARTED" in seen and "COMPLETE" not in seen, f"{name}: a {message['type']} outside STARTED..COMPLETE"
            if message["type"] == "RECORD":
                assert "RUNNING" in seen, f"{name}: a record before RUNNING"


def test_every_stream_checkpoints_with_exact_source_stats(first_read: CliRun, catalog: dict[str, Any]) -> None:
    since: dict[str, int] = {}
    last: dict[str, Any] = {}
    for message in first_read.messages:
        if message["type"] == "RECORD":
            since[message["record"]["stream"]] = since.get(message["record"]["stream"], 0) + 1
        elif message["type"] == "STATE":
            state = message["state"]
            assert state["type"] == "STREAM", "per-stream state only"
            name = stream_of_state(state)
            count = state["sourceStats"]["recordCount"]
            assert isinstance(count, float) and count == since.pop(name, 0), f"{name}: recordCount {count} != records since the last state"
            if count and name in last:
                assert state["stream"]["stream_state"] != last[name], f"{name}: the same state twice with records between"
            last[name] = state["stream"]["stream_state"]
    for name in _names(catalog):
        assert first_read.states(name), f"{name}: no STATE"
        assert not since.get(name), f"{name}: {since[name]} records after the last STATE"


def test_a_bogus_catalog_is_a_trace_error(cat_emulator: Any, tmp_path: Path) -> None:
    config = write_json(tmp_path / "config.json", config_for(cat_emulator))
    bogus = configured_catalog(["issues"])
    bogus["streams"][0]["stream"] = {**bogus["streams"][0]["stream"], "name": "not_a_sentry_stream"}
    for i, catalog in enumerate([bogus, {"streams": "all"}, ["events"]]):
        run = run_cli("read", "--config", config, "--catalog", write_json(tmp_path / f"catalog{i}.json", catalog))
        assert run.returncode != 0
        errors = run.errors()
        assert len(errors) == 1 and errors[0]["failure_type"] == "config_error" and errors[0]["message"], run.stdout
        assert not run.of_type("RECORD")


def _canonical(records: list[dict[str, Any]], ignored: set[str]) -> list[str]:
    return sorted(json.dumps({k: v for k, v in r.items() if k not in ignored}, sort_keys=True) for r in records)


def _before_live_edge(name: str, run: CliRun, runs: list[CliRun]) -> list[dict[str, Any]]:
    """The records of ``run`` that both ``runs`` could have read: streams read up to a live edge
    (now less the ingestion lag) see more of Sentry's newest rows the later they run."""
    from source_sentry.streams import stream_by_name
    from source_sentry.timeutil import parse_time

    stream = stream_by_name(name)
    if stream is None or stream.kind != "timeline" or stream.cursor_field is None:
        return run.records(name)
    field = stream.cursor_field
    edges = [parse_time(r.states(name)[-1]["stream"]["stream_state"].get(field)) for r in runs]
    edge = min(e for e in edges if e is not None)
    return [r for r in run.records(name) if (parse_time(r.get(field)) or edge) < edge]


def test_two_full_refreshes_give_the_same_records(cat_emulator: Any, tmp_path: Path) -> None:
    catalog = configured_catalog(mode="full_refresh")
    for entry in catalog["streams"]:
        assert entry["sync_mode"] == "full_refresh"
    runs = [read(tmp_path, config_for(cat_emulator), catalog, tag=str(i)) for i in range(2)]
    assert all(r.returncode == 0 for r in runs)
    ignored = ignored_fields()
    for name in _names(catalog):
        records = [_before_live_edge(name, r, runs) for r in runs]
        first, second = (_canonical(rs, ignored.get(name, set())) for rs in records)
        assert first and first == second, f"{name}: two full refreshes differ ({len(first)} vs {len(second)} records)"
