"""Shared fixtures: the Sentry emulator (a real HTTP server on loopback) for every test."""

pytest_plugins = ["sentry_emulator.testing"]
