"""A Sentry web API emulator: a real HTTP server on loopback, deterministic from a seed."""

from __future__ import annotations

from .emulator import Emulator
from .faults import FAULT_KINDS
from .ratelimit import RateLimitPreset, RateLimits
from .server import RequestRecord

__all__ = ["FAULT_KINDS", "Emulator", "RateLimitPreset", "RateLimits", "RequestRecord"]
