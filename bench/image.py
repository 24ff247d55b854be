"""Benchmark: the Airbyte image's size and the wall time of `spec` in a container.

Not a test. Airbyte starts one container per command, so a container's start is part of every
`spec`, `check`, `discover` and `read`. Needs a Docker engine (DOCKER_HOST) holding the image of
scripts/build_image.sh. Run:
``DOCKER_HOST=unix:///path/docker.sock .venv/bin/python bench/image.py [--image IMAGE] [--runs 5]``.
Prints the image size, then each run's wall time and their median, beside `source-sentry spec`
run on the host (the installed package, no container).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall(cmd: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or not lines or json.loads(lines[0]).get("type") != "SPEC":
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="source-sentry/source-sentry:dev")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    info = json.loads(subprocess.run(["docker", "image", "inspect", args.image], capture_output=True, text=True,
                                     check=True).stdout)[0]
    storage = subprocess.run(["docker", "info", "--format", "{{.Driver}}"], capture_output=True, text=True,
                             check=True).stdout.strip()
    print(f"image {args.image}: {info['Size'] / 1e6:.0f} MB ({len(info['RootFS']['Layers'])} layers), "
          f"storage driver {storage}")
    container = ["docker", "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
                 "--user", "1000:1000", args.image, "spec"]
    host = [str(Path(sys.executable).parent / "source-sentry"), "spec"]
    for label, cmd in (("spec in a container", container), ("spec on the host", host)):
        times = [wall(cmd) for _ in range(args.runs)]
        print(f"{label}: median {statistics.median(times):.2f} s over {args.runs} runs "
              f"({', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
