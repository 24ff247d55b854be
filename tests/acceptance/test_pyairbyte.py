"""PyAirbyte runs the connector: `ab.get_source(..., local_executable=<our console script>)`,
check, select every stream, read into a DuckDB cache, and the rows are the emulator's data.

PyAirbyte is installed once into its own venv (pyairbyte_helpers.py says where); deselected by
default: run with `-m pyairbyte`. tests/image/test_image_pyairbyte.py runs the image the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from acceptance_helpers import config_for
from pyairbyte_helpers import assert_read_everything, local_executable, read_with_pyairbyte

pytestmark = [pytest.mark.pyairbyte, pytest.mark.timeout(1200)]


def test_pyairbyte_reads_every_stream_into_duckdb(emulator: Any, tmp_path: Path) -> None:
    # select_all_streams(): every stream configured incremental, environments included (the
    # connector reads a full-refresh-only stream in full, as Airbyte's CDK does).
    result = read_with_pyairbyte(tmp_path, config_for(emulator), {"local_executable": local_executable()}, [])
    assert_read_everything(result, emulator)
