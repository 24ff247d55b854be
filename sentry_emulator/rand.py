"""Stateless deterministic randomness: every value is a pure function of (seed, ids...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

__all__ = ["MASK", "hex32", "hkey", "mix", "pick", "unit", "uuid4_like"]

T = TypeVar("T")
MASK = (1 << 64) - 1


def mix(x: int) -> int:
    """splitmix64 finalizer: a fast 64-bit integer hash (pure Python, no state)."""
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def hkey(*parts: int | str) -> int:
    """Hash a tuple of ints/strings into 64 bits (strings through their UTF-8 bytes)."""
    acc = 0x243F6A8885A308D3
    for part in parts:
        if isinstance(part, str):
            part = int.from_bytes(part.encode()[:24].ljust(24, b"\0"), "little") ^ len(part)
        acc = mix(acc ^ (part & MASK) ^ (part >> 64))
    return acc


def unit(h: int) -> float:
    """A float in [0, 1) from the top 53 bits of a hash."""
    return (h >> 11) / float(1 << 53)


def pick(h: int, items: Sequence[T]) -> T:
    return items[h % len(items)]


def hex32(h: int) -> str:
    """32 lowercase hex chars (an event id / uuid hex) from one hash."""
    return f"{mix(h ^ 0x5851F42D4C957F2D):016x}{mix(h ^ 0x14057B7EF767814F):016x}"


def uuid4_like(h: int) -> str:
    """A version-4-looking UUID string (check-in and monitor ids) from one hash."""
    x = hex32(h)
    return f"{x[:8]}-{x[8:12]}-4{x[13:16]}-a{x[17:20]}-{x[20:32]}"
