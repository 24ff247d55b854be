"""Everything about talking to Sentry: the client and the layers of its send path.

``client`` (session, auth, URLs), ``paging`` (Link cursors, read-ahead, the guards of a list),
``retry`` (what is retried, how long to wait), ``sharing`` (identical GETs asked once),
``ratelimit`` (one budget per host, paced by Sentry's headers), ``body`` (reading a 200's JSON),
``transport`` (httpx's network backend on asyncio's own transports), ``route`` (an endpoint).
"""

from __future__ import annotations

from .client import HttpStats, SentryClient
from .paging import PAGE_SIZE, Page, parse_link_header
from .route import Route

__all__ = ["PAGE_SIZE", "HttpStats", "Page", "Route", "SentryClient", "parse_link_header"]
