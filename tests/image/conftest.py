"""The image tests' session: one Docker engine (started here if none is reachable) and one
image built by scripts/build_image.sh, shared by every test under tests/image/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from image_helpers import Engine, build_image, start_engine


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Engine]:
    engine = start_engine()
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def source_image(docker_engine: Engine) -> str:
    return build_image(docker_engine)
