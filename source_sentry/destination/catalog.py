"""Configured catalogs: what each stream's sync mode means for the local DuckDB destination."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "DESTINATION_SYNC_MODES",
    "StreamConfig",
    "default_configured_catalog",
    "expiring_overwrite_warning",
    "parse_configured_catalog",
]

DESTINATION_SYNC_MODES = ("overwrite", "append", "append_dedup", "overwrite_dedup")

# Table names the destination keeps for itself; a stream may not take them.
RESERVED_PREFIX = "_airbyte_"


def expiring_overwrite_warning(stream: str) -> str:
    """The warning for a stream whose source forgets old records, configured to be overwritten."""
    return (
        f"stream {stream!r} runs Full Refresh | Overwrite: each overwrite replaces the table with what "
        f"Sentry still keeps, so {stream} records older than Sentry's retention window (about 90 days) "
        "are dropped from it (Incremental | Append + Deduped keeps them)"
    )


@dataclass(frozen=True)
class StreamConfig:
    """One configured stream, reduced to what the destination acts on."""

    name: str
    json_schema: dict[str, Any]
    sync_mode: str  # "incremental" | "full_refresh"
    destination_sync_mode: str  # one of DESTINATION_SYNC_MODES
    primary_key: tuple[tuple[str, ...], ...]

    @property
    def overwrite(self) -> bool:
        """Written to a staging table and swapped in when the stream completes."""
        return self.destination_sync_mode in ("overwrite", "overwrite_dedup")

    @property
    def dedup(self) -> bool:
        """The table keeps the latest version of each primary key."""
        return self.destination_sync_mode in ("append_dedup", "overwrite_dedup")

    @property
    def keeps_state(self) -> bool:
        """Whether this stream's STATE is stored for the next sync.

        Only incremental streams whose table is appended to: an overwrite restarts from an empty
        staging table, so resuming from its state would lose the rows before it.
        """
        return self.sync_mode == "incremental" and not self.overwrite


def parse_configured_catalog(configured_catalog: dict[str, Any]) -> dict[str, StreamConfig]:
    """Validate a configured catalog; raises ValueError naming the offending stream."""
    configs: dict[str, StreamConfig] = {}
    folded: dict[str, str] = {}
    for entry in configured_catalog.get("streams") or []:
        stream = entry.get("stream") or {}
        name = stream.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("configured catalog: a stream has no name")
        if name.lower().startswith(RESERVED_PREFIX):
            raise ValueError(f"stream {name!r}: names starting with {RESERVED_PREFIX!r} are reserved")
        # DuckDB table names are case-insensitive: 'Events' and 'events' would share a table.
        if name.lower() in folded:
            raise ValueError(f"streams {folded[name.lower()]!r} and {name!r} would share one table")
        folded[name.lower()] = name
        sync_mode = entry.get("sync_mode", "full_refresh")
        if sync_mode not in ("incremental", "full_refresh"):
            raise ValueError(f"stream {name!r}: unknown sync_mode {sync_mode!r}")
        dest_mode = entry.get("destination_sync_mode", "append")
        if dest_mode not in DESTINATION_SYNC_MODES:
            raise ValueError(
                f"stream {name!r}: unknown destination_sync_mode {dest_mode!r} "
                f"(expected one of {', '.join(DESTINATION_SYNC_MODES)})"
            )
        key = entry.get("primary_key") or stream.get("source_defined_primary_key") or []
        primary_key = tuple(tuple(path) for path in key if path)
        if dest_mode.endswith("_dedup") and not primary_key:
            raise ValueError(f"stream {name!r}: {dest_mode} needs a primary key")
        configs[name] = StreamConfig(
            name=name,
            json_schema=stream.get("json_schema") or {},
            sync_mode=sync_mode,
            destination_sync_mode=dest_mode,
            primary_key=primary_key,
        )
    return configs


def default_configured_catalog(
    catalog: dict[str, Any], streams: list[str] | None, full_refresh: bool
) -> dict[str, Any]:
    """Turn a discovered catalog into a configured one for the local sync.

    Per stream: Incremental | Append + Deduped when it supports incremental and has a primary key,
    Incremental | Append when it has no key, Full Refresh | Overwrite when it has no incremental
    mode or ``full_refresh`` is asked. ``streams`` selects streams (None: all), in catalog order;
    an unknown name raises ValueError listing the valid ones.
    """
    available = [s for s in catalog.get("streams") or [] if isinstance(s, dict)]
    names = [s.get("name") for s in available]
    if streams is not None:
        unknown = [name for name in streams if name not in names]
        if unknown:
            raise ValueError(
                f"unknown stream(s): {', '.join(unknown)}; valid streams: {', '.join(map(str, names))}"
            )
        wanted = set(streams)
        available = [s for s in available if s.get("name") in wanted]
    configured = []
    for stream in available:
        modes = stream.get("supported_sync_modes") or ["full_refresh"]
        primary_key = stream.get("source_defined_primary_key") or []
        entry: dict[str, Any] = {"stream": stream}
        if full_refresh or "incremental" not in modes:
            if "full_refresh" not in modes:
                raise ValueError(f"stream {stream.get('name')!r} does not support full refresh")
            entry.update(sync_mode="full_refresh", destination_sync_mode="overwrite")
        else:
            entry.update(
                sync_mode="incremental",
                destination_sync_mode="append_dedup" if primary_key else "append",
                cursor_field=stream.get("default_cursor_field") or [],
            )
        if primary_key:
            entry["primary_key"] = primary_key
        configured.append(entry)
    return {"streams": configured}
