"""pytest fixtures: `pytest_plugins = ["sentry_emulator.testing"]` in a conftest.py.

- `emulator`: a started Emulator with small defaults, stopped after the test.
- `make_emulator(**kw)`: a factory; every emulator it made is stopped after the test.

Both pin `start_time` to the moment they start the emulator unless given (`start_time=None`
gives the default anchor, 00:00 UTC of the day).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from .emulator import Emulator

__all__ = ["SMALL", "emulator", "make_emulator"]

# Small enough to start in milliseconds, big enough to need several pages somewhere.
SMALL: dict[str, Any] = {"seed": 1, "projects": 3, "events_per_project": 150, "issues_per_project": 20,
                         "releases": 12, "days": 30}


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    made: list[Emulator] = []

    def factory(**kw: Any) -> Emulator:
        # The history ends when the test starts, whatever the time of day (unpinned, it ends at
        # 00:00 UTC): late arrivals still pending, the last hours full. start_time=None: the default.
        kw.setdefault("start_time", datetime.now(timezone.utc))
        emu = Emulator(**{**SMALL, **kw}).start()
        made.append(emu)
        return emu

    yield factory
    for emu in made:
        emu.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator()
