"""Airbyte's connector acceptance checks, applied to source-sentry against the emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sentry_emulator.emulator import Emulator
from sentry_emulator.testing import SMALL


@pytest.fixture(scope="module")
def cat_emulator() -> Iterator[Emulator]:
    """One emulator for a module's read-only checks (nothing mutates it)."""
    emu = Emulator(**SMALL).start()
    yield emu
    emu.stop()
