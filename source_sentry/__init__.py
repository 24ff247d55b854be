"""Airbyte source for Sentry."""

__version__ = "0.3.0"
