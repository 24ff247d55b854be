"""The one configured-catalog parser (``source_sentry.catalog``) and what read and the destination add."""

from __future__ import annotations

from pathlib import Path

import pytest
from connector_helpers import catalog_for, config_for, run_cli, write_json

from source_sentry.catalog import parse_configured_catalog, select_streams
from source_sentry.destination import DuckDBDestination
from source_sentry.errors import ConfigError


def _entry(name: str, **fields: object) -> dict[str, object]:
    return {"stream": {"name": name, "json_schema": {}, "source_defined_primary_key": [["id"]]}, **fields}


def test_entries_are_parsed_with_airbyte_defaults() -> None:
    [events, issues] = parse_configured_catalog({"streams": [
        _entry("events", sync_mode="incremental", destination_sync_mode="append_dedup"),
        _entry("issues"),
    ]})
    assert (events.name, events.sync_mode, events.destination_sync_mode, events.primary_key) == (
        "events", "incremental", "append_dedup", (("id",),))
    assert events.dedup and events.keeps_state and not events.overwrite
    assert (issues.sync_mode, issues.destination_sync_mode) == ("full_refresh", "append")


@pytest.mark.parametrize("catalog, message", [
    ([], 'must be a JSON object with a "streams" list'),
    ({"streams": {}}, 'must be a JSON object with a "streams" list'),
    ({"streams": [{"stream": {}}]}, r'streams\[0\] needs a "stream" object with a "name"'),
    ({"streams": [_entry("events"), "events"]}, r'streams\[1\] needs a "stream" object'),
    ({"streams": [_entry("events"), _entry("events")]}, "names stream 'events' twice"),
    ({"streams": [_entry("events", sync_mode="sometimes")]}, "unknown sync_mode 'sometimes'"),
    ({"streams": [_entry("events", primary_key="id")]}, "primary_key that is not a list of field paths"),
])
def test_a_malformed_catalog_is_named(catalog: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_configured_catalog(catalog, "The catalog c.json")
    assert info.value.message.startswith("The catalog c.json")


def test_read_takes_any_destination_mode_airbyte_sends_and_the_destination_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    # A source does not write: newer destination modes (update, soft_delete) are no reason to fail a read.
    catalog = {"streams": [_entry("issues", sync_mode="incremental", destination_sync_mode="soft_delete")]}
    [selected] = select_streams(catalog, [])
    assert selected.stream.name == "issues" and not selected.full_refresh
    with pytest.raises(ConfigError, match="unknown destination_sync_mode 'soft_delete'"):
        DuckDBDestination(tmp_path / "s.duckdb", catalog)
    assert not (tmp_path / "s.duckdb").exists()


def test_an_incremental_mode_on_a_full_refresh_stream_reads_it_in_full_with_a_warning() -> None:
    warnings: list[str] = []
    [selected] = select_streams({"streams": [_entry("environments", sync_mode="incremental")]}, warnings)
    assert selected.full_refresh
    assert warnings == ["Stream 'environments' supports only full_refresh: reading it in full."]


def test_read_with_an_unknown_stream_is_a_config_error_naming_it(emulator, tmp_path: Path) -> None:
    catalog = catalog_for(["issues"])
    catalog["streams"][0]["stream"]["name"] = "isues"
    config = write_json(tmp_path / "config.json", config_for(emulator))
    run = run_cli("read", "--config", config, "--catalog", write_json(tmp_path / "catalog.json", catalog))
    [error] = run.errors()
    assert error["failure_type"] == "config_error"
    assert error["message"].startswith("The configured catalog names a stream this source does not have: 'isues'")
    assert run.records() == []
