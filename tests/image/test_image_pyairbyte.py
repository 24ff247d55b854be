"""PyAirbyte runs the image: `ab.get_source(..., docker_image=..., use_host_network=True)` checks
and reads every stream into its DuckDB cache, with the same rows as the local executable.

PyAirbyte runs `docker run --rm -i --volume <temp>:/airbyte/tmp ... --network host IMAGE` itself;
DOCKER_HOST points its `docker` at the tests' engine, and its temp folder (config and catalog
files) is one the image's non-root user can read. Needs the PyAirbyte venv of
tests/acceptance/pyairbyte_helpers.py (installed on first use). Run with `-m docker`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from image_helpers import LIVE_STREAMS, Engine, config_for
from pyairbyte_helpers import assert_read_everything, local_executable, read_with_pyairbyte

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]


def test_pyairbyte_reads_every_stream_from_the_image(docker_engine: Engine, source_image: str, emulator: Any,
                                                      tmp_path: Path) -> None:
    config = config_for(emulator)
    temp = tmp_path / "airbyte-temp"
    temp.mkdir()
    temp.chmod(0o755)  # mounted at /airbyte/tmp; PyAirbyte's files in it are world-readable
    in_image = read_with_pyairbyte(tmp_path / "image", config,
                                   {"docker_image": source_image, "use_host_network": True}, [],
                                   env={"DOCKER_HOST": docker_engine.host, "AIRBYTE_TEMP_DIR": str(temp)})
    assert_read_everything(in_image, emulator)
    local = read_with_pyairbyte(tmp_path / "local", config, {"local_executable": local_executable()}, [])
    assert set(in_image) == set(local)
    steady = sorted(set(local) - LIVE_STREAMS)  # the others grow with the emulator's clock between the reads
    assert {n: in_image[n]["count"] for n in steady} == {n: local[n]["count"] for n in steady}
    assert {n: in_image[n]["ids"] for n in steady} == {n: local[n]["ids"] for n in steady}
