"""The built image, run as Airbyte runs it: one container per command, config, catalog and state
mounted read-only, root file system read-only with a tmpfs at /tmp, a non-root user, no
capabilities; `spec` with no network, the others against the emulator on the host's loopback.
Every stdout line must be a valid Airbyte message, and the image must say what the installed
package says for the same input. Run with `-m docker` (scripts/build_image.sh builds the image).

vfs copies the image for every container start (about 15 s here), so the module starts few:
spec, check, discover, one read that several tests inspect, and one read stopped by SIGTERM.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from image_helpers import (
    CliRun,
    Engine,
    airbyte_run_args,
    catalog_for,
    config_dir,
    config_for,
    metadata,
    records_by_stream,
    run_cli,
    run_image,
    validated,
)

from sentry_emulator.emulator import Emulator
from sentry_emulator.testing import SMALL
from source_sentry.streams import STREAMS

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

ALL_STREAMS = [s.name for s in STREAMS]


def test_image_entrypoint_labels_and_user_match_metadata(docker_engine: Engine, source_image: str) -> None:
    data = metadata()
    (info,) = json.loads(docker_engine.docker("image", "inspect", source_image).stdout)
    config = info["Config"]
    assert config["Entrypoint"] == ["source-sentry"]
    assert "AIRBYTE_ENTRYPOINT=source-sentry" in config["Env"], config["Env"]
    assert config["Labels"]["io.airbyte.name"] == data["dockerRepository"]
    assert config["Labels"]["io.airbyte.version"] == data["dockerImageTag"]
    assert f"{data['dockerRepository']}:{data['dockerImageTag']}" in info["RepoTags"], info["RepoTags"]
    assert config["User"] not in ("", "root", "0"), f"the image runs as root: User={config['User']!r}"
    assert not config.get("Cmd"), f"CMD would add arguments Airbyte does not pass: {config['Cmd']}"


def test_spec_with_no_network_is_the_installed_packages(docker_engine: Engine, source_image: str) -> None:
    image = run_image(docker_engine, source_image, "spec", network="none")
    assert image.returncode == 0, image.stderr[-3000:]
    local = run_cli("spec")
    assert image.messages == local.messages


def test_check_against_the_emulator(docker_engine: Engine, source_image: str, emulator: Any, tmp_path: Path) -> None:
    mount = config_dir(tmp_path / "config", config_for(emulator))
    run = run_image(docker_engine, source_image, "check", "--config", "/config/config.json", network="host", mount=mount)
    assert run.returncode == 0, run.stderr[-3000:]
    (status,) = run.of_type("CONNECTION_STATUS")
    assert status["connectionStatus"]["status"] == "SUCCEEDED", status
    assert emulator.token not in run.stdout + run.stderr


def test_discover_is_the_installed_packages_catalog(docker_engine: Engine, source_image: str, emulator: Any,
                                                    tmp_path: Path) -> None:
    mount = config_dir(tmp_path / "config", config_for(emulator))
    image = run_image(docker_engine, source_image, "discover", "--config", "/config/config.json", network="host",
                      mount=mount)
    assert image.returncode == 0, image.stderr[-3000:]
    local = run_cli("discover", "--config", str(mount / "config.json"))
    assert image.of_type("CATALOG") == local.of_type("CATALOG")
    assert {s["name"] for s in image.of_type("CATALOG")[0]["catalog"]["streams"]} == set(ALL_STREAMS)


# ------------------------------------------------------------------ one read, several checks
class SecondRead:
    """A first local read, new data, then the second read (with the first's state) in the image
    and by the installed package."""

    def __init__(self, emu: Emulator, folder: Path) -> None:
        self.emu = emu
        config = config_for(emu)
        catalog = catalog_for(ALL_STREAMS)
        first_files = config_dir(folder / "first", config, catalog=catalog)
        self.first = _local_read(first_files)
        assert self.first.returncode == 0, self.first.errors()
        emu.advance(120)
        slug = emu.project_slugs[0]
        self.new_events = set(emu.add_events(slug, 5))
        self.new_issue = emu.add_issue(slug, title="image: a new issue")
        emu.advance(5)  # the connector reads up to the server's Date, to the second
        self.mount = config_dir(folder / "second", config, catalog=catalog, state=self.first.final_states())
        self.image: CliRun | None = None
        self.local = _local_read(self.mount)


def _local_read(files: Path) -> CliRun:
    args = ["read", "--config", str(files / "config.json"), "--catalog", str(files / "catalog.json")]
    if (files / "state.json").exists():
        args += ["--state", str(files / "state.json")]
    return run_cli(*args, timeout=600)


@pytest.fixture(scope="module")
def second_read(docker_engine: Engine, source_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondRead]:
    emu = Emulator(**{**SMALL, "start_time": datetime.now(timezone.utc)}).start()
    try:
        reads = SecondRead(emu, tmp_path_factory.mktemp("second_read"))
        reads.image = run_image(docker_engine, source_image, "read", "--config", "/config/config.json",
                                "--catalog", "/config/catalog.json", "--state", "/config/state.json",
                                network="host", mount=reads.mount)
        yield reads
    finally:
        emu.stop()


def test_read_with_state_in_the_image_emits_the_installed_packages_records(second_read: SecondRead) -> None:
    image, local = second_read.image, second_read.local
    assert image is not None and image.returncode == 0, (image and image.stderr[-3000:], image and image.errors())
    assert local.returncode == 0, local.errors()
    assert records_by_stream(image) == records_by_stream(local)
    assert {s["stream"]["stream_descriptor"]["name"] for s in image.final_states()} == \
        {s["stream"]["stream_descriptor"]["name"] for s in local.final_states()}
    assert second_read.emu.token not in image.stdout + image.stderr


def test_read_in_the_image_reads_from_the_mounted_state(second_read: SecondRead) -> None:
    image = second_read.image
    assert image is not None and image.returncode == 0
    events = {e["id"] for e in image.records("events")}
    assert second_read.new_events <= events, "the image did not read the new events"
    assert second_read.new_issue in {i["id"] for i in image.records("issues")}
    assert len(events) < len(second_read.first.records("events")), "the image ignored the state: it read everything"


# ------------------------------------------------------------------ SIGTERM
def test_sigterm_stops_a_read_cleanly(docker_engine: Engine, source_image: str, make_emulator: Any,
                                      tmp_path: Path) -> None:
    """Airbyte cancels a sync with SIGTERM: in a container the connector is PID 1, which gets
    no SIGTERM it has no handler for. It must stop within the grace period, its output whole."""
    emu = make_emulator(events_per_project=3000, latency_ms=300)
    mount = config_dir(tmp_path / "config", config_for(emu), catalog=catalog_for(["events"]))
    name = f"source-sentry-sigterm-{tmp_path.name}"
    cmd = airbyte_run_args(source_image, "read", "--config", "/config/config.json", "--catalog",
                           "/config/catalog.json", network="host", mount=mount, name=name)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=docker_engine.env)
    lines: list[str] = []
    checkpointed = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if '"type":"STATE"' in line:
                checkpointed.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert checkpointed.wait(300), f"no STATE from the read:\n{proc.stderr.read() if proc.poll() is not None else ''}"
        docker_engine.docker("kill", "--signal", "TERM", name)
        try:
            returncode = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("SIGTERM did not stop the read within 60 s (Airbyte would SIGKILL it)")
        reader.join(30)
        stderr = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            docker_engine.docker("kill", name, check=False)
            proc.wait(30)
    run = validated(CliRun(returncode, "".join(lines), stderr))
    assert returncode == 128 + 15, f"exit {returncode}:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, stderr[-3000:]
    assert run.of_type("STATE"), "no checkpoint before the stop"
    total = sum(len(emu.events(slug)) for slug in emu.project_slugs)
    assert len(run.records("events")) < total, "the read had finished before SIGTERM: nothing was tested"
    assert name not in docker_engine.docker("ps", "--all", "--format", "{{.Names}}").stdout

