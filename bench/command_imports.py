"""What each command imports, and how long that takes: ``python -X importtime`` of one run per
command (best of ``--runs``), summed over the top-level imports.

Airbyte starts a container per command (``spec`` the most often), so what a command imports
is most of its start-up. Run: ``.venv/bin/python bench/command_imports.py [--runs 5]``.
``check`` and ``read`` are pointed at a closed local port: they import all they need, fail at
once, and exit 1 (measured all the same; no Sentry is needed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def _import_us(stderr: str) -> tuple[int, int]:
    """(total microseconds of the top-level imports, modules imported) from -X importtime."""
    total = modules = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|", 2)
        modules += 1
        if not name.startswith("  "):  # a top-level import: its cumulative time holds its children
            total += int(cumulative)
    return total, modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"auth_token": "t", "organization": "acme", "hostname": "http://127.0.0.1:9",
                                      "max_retries": 0}))
        catalog = Path(tmp) / "catalog.json"
        catalog.write_text(json.dumps({"streams": [{"stream": {"name": "events", "json_schema": {},
                                                               "supported_sync_modes": ["full_refresh"]},
                                                    "sync_mode": "full_refresh", "destination_sync_mode": "append"}]}))
        commands = {
            "spec": ["spec"],
            "discover": ["discover", "--config", str(config)],
            "check": ["check", "--config", str(config)],
            "read": ["read", "--config", str(config), "--catalog", str(catalog)],
        }
        print("| command | imports (ms, best of runs) | modules |\n|---|---:|---:|")
        for name, argv in commands.items():
            best: tuple[int, int] | None = None
            for _ in range(args.runs):
                proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "source_sentry", *argv],
                                      capture_output=True, text=True, timeout=120)
                measured = _import_us(proc.stderr)
                best = measured if best is None or measured[0] < best[0] else best
            assert best is not None
            print(f"| `{name}` | {best[0] / 1000:.1f} | {best[1]} |")


if __name__ == "__main__":
    main()
