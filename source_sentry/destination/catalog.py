"""Configured catalogs as the local DuckDB destination takes them, and the default one of ``sync``."""

from __future__ import annotations

from typing import Any

from ..catalog import ConfiguredStream, parse_configured_catalog
from ..errors import ConfigError

__all__ = [
    "DESTINATION_SYNC_MODES",
    "default_configured_catalog",
    "destination_streams",
    "expiring_overwrite_warning",
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


def destination_streams(configured_catalog: Any, where: str = "The configured catalog") -> dict[str, ConfiguredStream]:
    """A configured catalog's streams by name, checked for what this destination can write.

    Parsed by the one parser (:func:`source_sentry.catalog.parse_configured_catalog`); raises
    :class:`ConfigError` beginning with ``where`` and naming the stream for a destination mode it
    does not write, a deduplicating mode without a primary key, a reserved name, or two names one
    table would share.
    """
    configs: dict[str, ConfiguredStream] = {}
    folded: dict[str, str] = {}
    for stream in parse_configured_catalog(configured_catalog, where):
        name = stream.name
        if name.lower().startswith(RESERVED_PREFIX):
            raise ConfigError(f"{where}: stream {name!r}: names starting with {RESERVED_PREFIX!r} are reserved for the "
                              "destination's own tables.")
        # DuckDB table names are case-insensitive: 'Events' and 'events' would share a table.
        if name.lower() in folded:
            raise ConfigError(f"{where}: streams {folded[name.lower()]!r} and {name!r} would share one table (DuckDB names "
                              "ignore case).")
        folded[name.lower()] = name
        if stream.destination_sync_mode not in DESTINATION_SYNC_MODES:
            raise ConfigError(
                f"{where}: stream {name!r}: unknown destination_sync_mode {stream.destination_sync_mode!r} "
                f"(this destination writes {', '.join(DESTINATION_SYNC_MODES)})."
            )
        if stream.dedup and not stream.primary_key:
            raise ConfigError(f"{where}: stream {name!r}: {stream.destination_sync_mode} needs a primary key.")
        configs[name] = stream
    return configs


def default_configured_catalog(
    catalog: dict[str, Any], streams: list[str] | None, full_refresh: bool
) -> dict[str, Any]:
    """Turn a discovered catalog into a configured one for the local sync.

    Per stream: Incremental | Append + Deduped when it supports incremental and has a primary key,
    Incremental | Append when it has no key, Full Refresh | Overwrite when it has no incremental
    mode or ``full_refresh`` is asked. ``streams`` selects streams (None: all), in catalog order;
    an unknown name raises ConfigError listing the valid ones.
    """
    available = [s for s in catalog.get("streams") or [] if isinstance(s, dict)]
    names = [s.get("name") for s in available]
    if streams is not None:
        unknown = [name for name in streams if name not in names]
        if unknown:
            raise ConfigError(
                f"Unknown stream(s): {', '.join(unknown)}; valid streams: {', '.join(map(str, names))}."
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
                raise ConfigError(f"Stream {stream.get('name')!r} does not support full refresh.")
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
