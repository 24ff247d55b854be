"""A Docker engine for the image tests, and `docker run` the way Airbyte runs a connector.

The engine: the one `docker` already reaches (DOCKER_HOST, or the default socket), else one
started here as root: Debian's dockerd (installed with apt-get if missing) with the vfs storage
driver, no bridge and no iptables, a private data root and socket under a temporary folder,
stopped and removed at the end of the session. Where none can be had the tests skip and say
why; on CI (CI=true) they fail instead, so the image is never left untested unseen.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
for _folder in ("tests/connector", "tests/packaging", "tests/acceptance"):
    if str(ROOT / _folder) not in sys.path:
        sys.path.insert(0, str(ROOT / _folder))

from connector_helpers import CliRun, catalog_for, config_for, run_cli, validated, write_json  # noqa: E402
from packaging_helpers import load_yaml  # noqa: E402

__all__ = ["LIVE_STREAMS", "ROOT", "CliRun", "Engine", "catalog_for", "config_for", "load_yaml", "metadata", "run_cli",
           "validated", "write_json"]

IMAGE = "source-sentry/source-sentry:dev"
# The user Airbyte's Kubernetes pods run connectors as (securityContext runAsUser/runAsGroup).
AIRBYTE_UID = 1000


def unavailable(reason: str) -> NoReturn:
    """Skip with the reason; on CI, fail: CI must build and run the image."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the image tests, but: {reason}", pytrace=False)
    pytest.skip(reason)


def metadata() -> dict[str, Any]:
    meta = load_yaml((ROOT / "metadata.yaml").read_text(encoding="utf-8"))
    assert isinstance(meta, dict)
    return dict(meta["data"])


@dataclass
class Engine:
    host: str
    dockerd: subprocess.Popen[bytes] | None = None
    folder: Path | None = None
    log: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=self.env)
        if check:
            assert proc.returncode == 0, f"docker {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        return proc

    def reachable(self) -> bool:
        try:
            return self.docker("info", "--format", "{{.ServerVersion}}", timeout=30, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> None:
        if self.dockerd is not None:
            self.dockerd.terminate()  # dockerd stops its containers and unmounts on SIGTERM
            try:
                self.dockerd.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.dockerd.kill()
                self.dockerd.wait(timeout=30)
        if self.folder is not None:
            # dockerd leaves its network namespace mounted in its exec root.
            for mount in reversed(Path("/proc/mounts").read_text().splitlines()):
                target = mount.split()[1]
                if target.startswith(f"{self.folder}/"):
                    subprocess.run(["umount", "--lazy", target], capture_output=True, timeout=60)
            shutil.rmtree(self.folder, ignore_errors=True)


def _apt_install(*packages: str) -> str | None:
    """Install Debian packages as root; None, or why not."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{', '.join(packages)} not installed, and installing needs root and apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", *packages]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=600)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    return None if proc.returncode == 0 else f"apt-get install {' '.join(packages)} failed:\n{proc.stderr[-2000:]}"


def start_engine() -> Engine:
    """The reachable engine, or a private one started here (stop() ends it); skips (fails on CI)."""
    # The stand-in base image needs mmdebstrap where python:3.11-slim cannot be pulled.
    missing = [pkg for pkg, tool in (("docker.io", "dockerd"), ("mmdebstrap", "mmdebstrap")) if shutil.which(tool) is None]
    why = _apt_install(*missing) if missing else None
    if shutil.which("docker") is None:
        unavailable(why or "no docker command")
    if os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists():
        existing = Engine(os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
        if existing.reachable():
            return existing
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        unavailable("no Docker engine is reachable, and starting one needs root and dockerd (apt-get install docker.io)")
    folder = Path(tempfile.mkdtemp(prefix="source-sentry-dockerd-"))
    socket = folder / "docker.sock"
    log = open(folder / "dockerd.log", "wb")  # noqa: SIM115  # lives as long as dockerd
    dockerd = subprocess.Popen(
        ["dockerd", "--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none",
         "--data-root", str(folder / "data"), "--exec-root", str(folder / "exec"),
         "--pidfile", str(folder / "dockerd.pid"), "--host", f"unix://{socket}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    engine = Engine(f"unix://{socket}", dockerd, folder)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and dockerd.poll() is None:
        if socket.exists() and engine.reachable():
            return engine
        time.sleep(0.5)
    engine.stop()
    tail = (folder / "dockerd.log").read_text(errors="replace")[-2000:] if folder.exists() else ""
    unavailable(f"dockerd did not start:\n{tail}")


def build_image(engine: Engine) -> str:
    """scripts/build_image.sh into the engine; a failed build fails the tests (it is not a skip)."""
    started = time.monotonic()
    proc = subprocess.run([str(ROOT / "scripts" / "build_image.sh"), IMAGE], capture_output=True, text=True,
                          timeout=1200, env=engine.env)
    assert proc.returncode == 0, f"scripts/build_image.sh failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    summary = [line for line in proc.stderr.splitlines() if line.startswith("build_image:")]
    print("\n".join(summary), f"\n(build step {time.monotonic() - started:.0f} s)")
    return IMAGE


def config_dir(folder: Path, config: dict[str, Any], **files: Any) -> Path:
    """A folder of JSON files readable by the container's non-root user (mounted read-only)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    for name, value in {"config": config, **files}.items():
        path = folder / f"{name}.json"
        write_json(path, value)
        path.chmod(0o644)
    return folder


def airbyte_run_args(image: str, *args: str, network: str = "none", mount: Path | None = None,
                     name: str | None = None) -> list[str]:
    """`docker run` as Airbyte runs a connector: its files mounted read-only at /config, the root
    file system read-only with a tmpfs at /tmp, a non-root user, no capabilities."""
    cmd = ["docker", "run", "--rm", "--network", network, "--read-only", "--tmpfs", "/tmp:rw,size=64m",
           "--user", f"{AIRBYTE_UID}:{AIRBYTE_UID}", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    if mount is not None:
        cmd += ["--volume", f"{mount}:/config:ro"]
    if name is not None:
        cmd += ["--name", name]
    return [*cmd, image, *args]


def run_image(engine: Engine, image: str, *args: str, timeout: float = 600, **kw: Any) -> CliRun:
    """Run one container to its end; every stdout line must be a valid Airbyte message."""
    proc = subprocess.run(airbyte_run_args(image, *args, **kw), capture_output=True, text=True,
                          timeout=timeout, env=engine.env)
    return validated(CliRun(proc.returncode, proc.stdout, proc.stderr))


# Streams whose rows move with the emulator's running clock (rows per hour up to now, the
# current interval's counts): two reads a minute apart differ, wherever they run. Their messages
# are still validated; their rows are compared only when the emulator's clock can be held still.
LIVE_STREAMS = frozenset({"logs", "spans", "uptime_results", "tracemetrics", "release_health", "usage_stats",
                          "replays"})


def records_by_stream(run: CliRun) -> dict[str, list[str]]:
    """Each stream's records as sorted JSON texts (LIVE_STREAMS left out): two reads of the same
    data compare equal."""
    out: dict[str, list[str]] = {}
    for message in run.of_type("RECORD"):
        if message["record"]["stream"] in LIVE_STREAMS:
            continue
        out.setdefault(message["record"]["stream"], []).append(json.dumps(message["record"]["data"], sort_keys=True))
    return {stream: sorted(rows) for stream, rows in out.items()}
