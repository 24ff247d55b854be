"""Catalogs: the streams this source offers (``discover``), and the one parser of configured ones.

The discovered catalog is built from the stream table and the schemas. A configured catalog
(what ``read``, ``check --catalog``, ``sync`` and the DuckDB destination are given) is parsed by
:func:`parse_configured_catalog` and nowhere else; :func:`select_streams` adds what ``read`` needs:
its streams must be ours, with sync modes they support.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .schemas import stream_schema
from .streams import STREAMS, StreamDef, stream_by_name

__all__ = [
    "ConfiguredStream",
    "SelectedStream",
    "discovered_streams",
    "parse_configured_catalog",
    "select_streams",
]

SYNC_MODES = ("full_refresh", "incremental")


def discovered_streams() -> list[dict[str, Any]]:
    """The catalog's AirbyteStream objects, built from the stream table and schemas."""
    streams = []
    for stream in STREAMS:
        entry: dict[str, Any] = {
            "name": stream.name,
            "json_schema": stream_schema(stream),
            "supported_sync_modes": ["full_refresh", "incremental"] if stream.incremental else ["full_refresh"],
            "source_defined_primary_key": [[key] for key in stream.key_fields],
            "is_resumable": True,
        }
        if stream.incremental and stream.cursor_field:
            entry["source_defined_cursor"] = True
            entry["default_cursor_field"] = [stream.cursor_field]
        streams.append(entry)
    return streams


@dataclass(frozen=True)
class ConfiguredStream:
    """One entry of a configured catalog: a stream and how it is synced (Airbyte's fields)."""

    name: str
    json_schema: dict[str, Any]
    sync_mode: str  # one of SYNC_MODES
    destination_sync_mode: str  # as given ("append" when absent); which ones it takes is a destination's rule
    primary_key: tuple[tuple[str, ...], ...]

    @property
    def overwrite(self) -> bool:
        """The destination replaces the stream's table when the stream completes."""
        return self.destination_sync_mode in ("overwrite", "overwrite_dedup")

    @property
    def dedup(self) -> bool:
        """The destination keeps the latest version of each primary key."""
        return self.destination_sync_mode in ("append_dedup", "overwrite_dedup")

    @property
    def keeps_state(self) -> bool:
        """Whether this stream's STATE is kept for the next sync.

        Only incremental streams whose table is appended to: an overwrite restarts from an empty
        table, so resuming from its state would lose the rows before it.
        """
        return self.sync_mode == "incremental" and not self.overwrite


def parse_configured_catalog(catalog: Any, where: str = "The configured catalog") -> list[ConfiguredStream]:
    """The entries of a configured catalog (a parsed JSON value), in order.

    Raises :class:`ConfigError` beginning with ``where`` and naming the entry at fault: not an
    object with a ``"streams"`` list, an entry without a stream name, a name given twice, an
    unknown ``sync_mode``, a primary key that is not a list of paths. Whether the streams are ours
    is :func:`select_streams`'s question; which destination modes it writes, the destination's.
    """
    entries = catalog.get("streams") if isinstance(catalog, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f'{where} must be a JSON object with a "streams" list (an Airbyte configured catalog).')
    parsed: list[ConfiguredStream] = []
    for i, entry in enumerate(entries):
        stream = entry.get("stream") if isinstance(entry, dict) else None
        name = stream.get("name") if isinstance(stream, dict) else None
        if not isinstance(entry, dict) or not isinstance(stream, dict) or not isinstance(name, str) or not name:
            raise ConfigError(f'{where}: streams[{i}] needs a "stream" object with a "name".')
        if any(s.name == name for s in parsed):
            raise ConfigError(f"{where} names stream {name!r} twice.")
        mode = entry.get("sync_mode", "full_refresh")
        if mode not in SYNC_MODES:
            raise ConfigError(f"{where}: stream {name!r} has an unknown sync_mode {mode!r} (expected full_refresh or incremental).")
        destination_mode = entry.get("destination_sync_mode") or "append"
        key = entry.get("primary_key") or stream.get("source_defined_primary_key") or []
        if not isinstance(key, list) or not all(isinstance(path, list) for path in key):
            raise ConfigError(f"{where}: stream {name!r} has a primary_key that is not a list of field paths.")
        primary_key = tuple(tuple(str(part) for part in path) for path in key if path)
        schema = stream.get("json_schema")
        parsed.append(ConfiguredStream(name, schema if isinstance(schema, dict) else {}, mode, str(destination_mode),
                                       primary_key))
    return parsed


@dataclass(frozen=True)
class SelectedStream:
    """A stream of a configured catalog, and whether it is read in full."""

    stream: StreamDef
    full_refresh: bool


def select_streams(catalog: Any, warnings: list[str], where: str = "The configured catalog") -> list[SelectedStream]:
    """The streams of ours a configured catalog selects; raises :class:`ConfigError` naming what is wrong.

    An incremental mode asked of a full-refresh-only stream reads it in full (with a warning),
    as Airbyte's CDK does: a catalog asking incremental for every stream (PyAirbyte's
    ``select_all_streams``) must still work.
    """
    selected: list[SelectedStream] = []
    for entry in parse_configured_catalog(catalog, where):
        definition = stream_by_name(entry.name)
        if definition is None:
            raise ConfigError(
                f"{where} names a stream this source does not have: {entry.name!r}. "
                "Run discover and build the catalog from its streams.",
            )
        full_refresh = entry.sync_mode == "full_refresh"
        if not full_refresh and not definition.incremental:
            warnings.append(f"Stream {entry.name!r} supports only full_refresh: reading it in full.")
            full_refresh = True
        selected.append(SelectedStream(definition, full_refresh))
    return selected
