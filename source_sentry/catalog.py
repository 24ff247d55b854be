"""Catalogs: the streams this source offers (``discover``), and a configured catalog parsed once.

The discovered catalog is built from the stream table and the schemas. A configured catalog
(what ``read`` and ``sync`` are given) is checked here and nowhere else: its streams must be
ours, with sync modes they support.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .schemas import stream_schema
from .streams import STREAMS, StreamDef, stream_by_name

__all__ = ["SelectedStream", "discovered_streams", "select_streams"]


def discovered_streams() -> list[dict[str, Any]]:
    """The catalog's AirbyteStream objects, built from the stream table and schemas."""
    streams = []
    for stream in STREAMS:
        entry: dict[str, Any] = {
            "name": stream.name,
            "json_schema": stream_schema(stream),
            "supported_sync_modes": ["full_refresh", "incremental"] if stream.incremental else ["full_refresh"],
            "source_defined_primary_key": [[stream.primary_key]],
            "is_resumable": True,
        }
        if stream.incremental and stream.cursor_field:
            entry["source_defined_cursor"] = True
            entry["default_cursor_field"] = [stream.cursor_field]
        streams.append(entry)
    return streams


@dataclass(frozen=True)
class SelectedStream:
    """A stream of a configured catalog, and whether it is read in full."""

    stream: StreamDef
    full_refresh: bool


def select_streams(catalog: Mapping[str, Any], warnings: list[str]) -> list[SelectedStream]:
    """The streams a configured catalog selects; raises :class:`ConfigError` naming what is wrong.
    An incremental mode asked of a full-refresh-only stream reads it in full (with a warning),
    as Airbyte's CDK does: a catalog asking incremental for every stream (PyAirbyte's
    ``select_all_streams``) must still work."""
    entries = catalog.get("streams") if isinstance(catalog, Mapping) else None
    if not isinstance(entries, list):
        raise ConfigError('The configured catalog must be a JSON object with a "streams" list.')
    selected: list[SelectedStream] = []
    for entry in entries:
        stream = entry.get("stream") if isinstance(entry, dict) else None
        name = stream.get("name") if isinstance(stream, dict) else None
        definition = stream_by_name(name) if isinstance(name, str) else None
        if definition is None:
            raise ConfigError(
                f"The configured catalog names a stream this source does not have: {name!r}. "
                "Run discover and build the catalog from its streams.",
            )
        mode = entry.get("sync_mode", "full_refresh")
        if mode not in ("full_refresh", "incremental"):
            raise ConfigError(f"Stream {name!r}: sync_mode must be full_refresh or incremental, not {mode!r}.")
        if mode == "incremental" and not definition.incremental:
            warnings.append(f"Stream {name!r} supports only full_refresh: reading it in full.")
            mode = "full_refresh"
        selected.append(SelectedStream(definition, mode == "full_refresh"))
    return selected
