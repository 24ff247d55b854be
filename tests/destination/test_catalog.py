"""default_configured_catalog: the sync modes chosen for a discovered catalog."""

from __future__ import annotations

import pytest

from source_sentry.destination import default_configured_catalog
from source_sentry.errors import ConfigError

DISCOVERED = {
    "streams": [
        {"name": "events", "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"],
         "source_defined_primary_key": [["id"]], "default_cursor_field": ["dateCreated"]},
        {"name": "projects", "json_schema": {}, "supported_sync_modes": ["full_refresh"],
         "source_defined_primary_key": [["id"]]},
        {"name": "logs", "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"],
         "default_cursor_field": ["ts"]},
    ]
}


def _modes(configured):
    return {s["stream"]["name"]: (s["sync_mode"], s["destination_sync_mode"]) for s in configured["streams"]}


def test_defaults_per_stream():
    configured = default_configured_catalog(DISCOVERED, None, full_refresh=False)
    assert _modes(configured) == {
        "events": ("incremental", "append_dedup"),
        "projects": ("full_refresh", "overwrite"),
        "logs": ("incremental", "append"),
    }
    events = configured["streams"][0]
    assert events["primary_key"] == [["id"]] and events["cursor_field"] == ["dateCreated"]
    assert events["stream"] is DISCOVERED["streams"][0]


def test_full_refresh_overwrites_everything():
    configured = default_configured_catalog(DISCOVERED, None, full_refresh=True)
    assert set(_modes(configured).values()) == {("full_refresh", "overwrite")}


def test_selecting_streams_keeps_catalog_order():
    configured = default_configured_catalog(DISCOVERED, ["logs", "events"], full_refresh=False)
    assert [s["stream"]["name"] for s in configured["streams"]] == ["events", "logs"]


def test_unknown_stream_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"Unknown stream\(s\): evnts; valid streams: events, projects, logs"):
        default_configured_catalog(DISCOVERED, ["evnts"], full_refresh=False)
