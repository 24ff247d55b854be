"""The request cost of a no-change sync with every stream selected.

Usage::

    .venv/bin/python bench/no_change.py [--projects 3] [--events 300] [--issues 40] [--releases 25]

Starts the emulator, runs ``source-sentry sync`` (DuckDB) with ``--streams`` naming every stream
of the table (the Explore datasets included), then the same sync again with nothing changed in
between, and prints the second sync's requests per route and in total, and the records it wrote.
The emulator's clock is frozen between the two syncs (no late events arrive), so every request
of the second sync is what the connector spends to learn that nothing changed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sentry_emulator import Emulator  # noqa: E402
from source_sentry.streams import STREAMS  # noqa: E402


def sync(config: Path, destination: Path) -> float:
    """One ``sync`` of every stream; its wall-clock seconds."""
    names = ",".join(s.name for s in STREAMS)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "source_sentry", "sync", "--config", str(config), "--destination",
                    str(destination), "--streams", names, "--quiet"], check=True)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=3)
    parser.add_argument("--events", type=int, default=300, help="events per project")
    parser.add_argument("--issues", type=int, default=40, help="issues per project")
    parser.add_argument("--releases", type=int, default=25)
    args = parser.parse_args()
    # start_time=None: the history ends at midnight, so nothing arrives late between the syncs.
    with Emulator(projects=args.projects, events_per_project=args.events, issues_per_project=args.issues,
                  releases=args.releases) as emu, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"auth_token": emu.token, "organization": emu.organization,
                                      "hostname": emu.base_url, "explore_days": 2}))
        destination = Path(tmp) / "sentry.duckdb"
        first_seconds = sync(config, destination)
        first = len(emu.requests)
        emu.clear_requests()
        second_seconds = sync(config, destination)
        by_route = Counter(r.route for r in emu.requests)
    total = sum(by_route.values())
    print(f"first sync: {first} requests, {first_seconds:.1f} s; no-change sync: {total} requests, {second_seconds:.1f} s")
    for route, count in sorted(by_route.items(), key=lambda rc: (-rc[1], rc[0])):
        print(f"{count:6d}  {route}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
