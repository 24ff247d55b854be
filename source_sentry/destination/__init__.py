"""The embedded local destination: Airbyte messages written into a DuckDB file.

``DuckDBDestination`` is the sink the reader's messages go to in ``source-sentry sync``;
``default_configured_catalog`` picks each stream's sync mode for such a sync;
``DestinationError`` says what is wrong with a destination file the user gave.
"""

from __future__ import annotations

from .catalog import default_configured_catalog
from .duckdb import BUFFER_LIMIT, DuckDBDestination, StreamResult, SyncResult
from .errors import DestinationError

__all__ = [
    "BUFFER_LIMIT",
    "DestinationError",
    "DuckDBDestination",
    "StreamResult",
    "SyncResult",
    "default_configured_catalog",
]
