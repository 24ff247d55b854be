"""Everything about talking to Sentry: the client and the layers of its send path.

``client`` (session, auth, URLs), ``paging`` (Link cursors, read-ahead, the guards of a list),
``retry`` (what is retried, how long to wait), ``sharing`` (identical GETs asked once),
``ratelimit`` (one budget per host, paced by Sentry's headers), ``body`` (reading a 200's JSON),
``wire`` (HTTP/1.1 on asyncio's own transports), ``route`` (an endpoint).

The names below are imported when first used: the stream table needs only ``route``, and
``discover`` (which never talks to Sentry) should not pay for the network code to get it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import HttpStats, SentryClient
    from .paging import PAGE_SIZE, Page, parse_link_header
    from .route import Route

__all__ = ["PAGE_SIZE", "HttpStats", "Page", "Route", "SentryClient", "parse_link_header"]

_HOME = {"HttpStats": "client", "SentryClient": "client", "PAGE_SIZE": "paging", "Page": "paging",
         "parse_link_header": "paging", "Route": "route"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
