"""The packages type-check: `mypy` over the connector and the emulator, as a subprocess."""

from __future__ import annotations

import subprocess
import sys

from packaging_helpers import ROOT


def test_the_connector_and_the_emulator_type_check() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "source_sentry", "sentry_emulator"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Success" in run.stdout
