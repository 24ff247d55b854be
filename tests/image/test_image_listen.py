"""docs/listen.md's container lines, run as written (host paths, name and port swapped for the
test's): the image's `listen` syncs into a mounted folder, applies a signed webhook from the
emulator, and `docker stop` ends it cleanly. Run with `-m docker`."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from image_helpers import ROOT, Engine, config_dir, config_for

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

SECRET = "image-listen-test-secret"


def _container_lines() -> list[str]:
    """The shell commands of the sh block under 'In a container', continuations joined."""
    text = (ROOT / "docs" / "listen.md").read_text(encoding="utf-8")
    block = re.search(r"In a container.*?```sh\n(.*?)```", text, re.S)
    assert block, "docs/listen.md has no container snippet"
    joined = block.group(1).replace("\\\n", " ")
    return [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines() if line.strip()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_listen_container_of_the_docs_runs(docker_engine: Engine, source_image: str, make_emulator: Any,
                                                tmp_path: Path) -> None:
    emu = make_emulator(projects=2, issues_per_project=10, events_per_project=30)
    etc = config_dir(tmp_path / "etc", config_for(emu, webhook_secret=SECRET))
    var = tmp_path / "var"
    name = f"sentry-listen-{tmp_path.name}"
    port = _free_port()

    def as_here(line: str) -> str:
        line = line.replace("/etc/source-sentry", str(etc)).replace("/var/lib/source-sentry", str(var))
        return line.replace("sentry-listen", name).replace("8765", str(port)).replace("source-sentry/source-sentry:dev", source_image)

    lines = [as_here(line) for line in _container_lines()]
    logs = next(line for line in lines if line.startswith("docker logs"))
    stop = next(line for line in lines if line.startswith("docker stop"))
    start = lines[: lines.index(logs)]
    assert any("docker run" in line for line in start), lines

    def sh(line: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=300, env=docker_engine.env)

    try:
        for line in start:
            proc = sh(line)
            assert proc.returncode == 0, f"{line}\n{proc.stderr[-3000:]}"
        output = ""
        deadline = time.monotonic() + 240
        while "sync at" not in output:
            assert time.monotonic() < deadline, f"listen did not sync in the container:\n{output[-3000:]}"
            time.sleep(1)
            proc = sh(logs)
            output = proc.stdout + proc.stderr
        assert f'"url": "http://127.0.0.1:{port}/"' in output or f"127.0.0.1:{port}" in output, output[-2000:]
        emu.configure_webhooks(f"http://127.0.0.1:{port}/", SECRET)
        issue = str(next(i for i in emu.issues() if i["status"] == "unresolved")["id"])
        emu.set_issue_status(issue, "resolved")
        assert [d["status"] for d in emu.webhook_deliveries] == [200], emu.webhook_deliveries
        proc = sh(stop)
        assert proc.returncode == 0, proc.stderr
        state = docker_engine.docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert state == "0", f"listen exited {state} on docker stop:\n{sh(logs).stderr[-3000:]}"
    finally:
        docker_engine.docker("rm", "--force", name, check=False)
    assert SECRET not in output and emu.token not in output
    with duckdb.connect(str(var / "sentry.duckdb"), read_only=True) as con:
        status = con.sql(f"select status from issues where id = '{issue}'").fetchall()
    assert status == [("resolved",)]
