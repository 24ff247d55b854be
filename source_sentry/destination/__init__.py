"""The embedded local destination: Airbyte messages written into a DuckDB file.

``DuckDBDestination`` is the sink the reader's messages go to in ``source-sentry sync``;
``default_configured_catalog`` picks each stream's sync mode for such a sync.
"""

from __future__ import annotations

from .catalog import default_configured_catalog
from .duckdb import BUFFER_LIMIT, DuckDBDestination, StreamResult, SyncResult

__all__ = [
    "BUFFER_LIMIT",
    "DuckDBDestination",
    "StreamResult",
    "SyncResult",
    "default_configured_catalog",
]
