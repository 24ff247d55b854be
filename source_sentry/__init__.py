"""Airbyte source for Sentry."""

__version__ = "0.1.0"
