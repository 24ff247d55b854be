"""Airbyte source for Sentry."""

__version__ = "0.2.0"
