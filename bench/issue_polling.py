"""Requests of a no-change incremental sync of `issues` as a function of the number of issues,
with the default config: lists up to `full_list_max_records` (10,000) are read whole every sync,
so a resolve or an assignment without a new event arrives with the next sync; larger lists are
read as deltas plus the next slice of 10,000 between full lists (`full_scan_hours`). Then the
oldest unresolved issue (the list's last page) is resolved, with no new event, and the syncs are counted
until one emits it.

    .venv/bin/python bench/issue_polling.py        # prints a Markdown table (about 2 minutes)

The figures are in docs/benchmarks.md ("Status changes without a new event").
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from beyond_errors import read_stream

from sentry_emulator import Emulator

SIZES = (100, 1_000, 5_000, 10_000, 12_000, 25_000)


def _read(emu: Emulator, workdir: Path, state: Any = None) -> tuple[list[dict[str, Any]], int, float, list[str]]:
    """The final states, the requests to issues/, the seconds and the ids emitted of one read of ``issues``."""
    run = read_stream(emu, "issues", workdir, state)
    return run["states"], sum(path.endswith("/issues/") for path in run["request_paths"]), run["seconds"], run["ids"]


def _syncs_until_resolved(emu: Emulator, workdir: Path, state: Any, limit: int) -> tuple[int | None, list[int]]:
    """Resolve the oldest unresolved issue (first seen first), then sync until a sync emits it:
    how many syncs that took (None past ``limit``) and the requests to issues/ of each."""
    oldest = min(emu.issues(status="unresolved"), key=lambda i: datetime.fromisoformat(i["firstSeen"]))
    emu.set_issue_status(str(oldest["id"]), "resolved")
    requests: list[int] = []
    for n in range(1, limit + 1):
        emu.advance(60)
        state, count, _, ids = _read(emu, workdir, state)
        requests.append(count)
        if str(oldest["id"]) in ids:
            return n, requests
    return None, requests


def main() -> None:
    print("| issues | full read: requests to issues/ | no-change sync: requests to issues/ | seconds "
          "| syncs until a resolve of the oldest unresolved issue arrives (requests to issues/ each) |")
    print("| -----: | -----------------------------: | ----------------------------------: | ------: "
          "| :-------------------------------------------------------------------------- |")
    for size in SIZES:
        now = datetime.now(timezone.utc)
        with tempfile.TemporaryDirectory() as tmp, Emulator(
            seed=1, projects=1, issues_per_project=size, events_per_project=size + 100, start_time=now
        ) as emu:
            workdir = Path(tmp)
            state, full, _, _ = _read(emu, workdir)
            emu.advance(60)
            state, again, seconds, _ = _read(emu, workdir, state)
            slices = -(-size // 10_000)
            syncs, each = _syncs_until_resolved(emu, workdir, state, slices + 1)
            arrived = f"{syncs} ({', '.join(map(str, each))})" if syncs else f"not in {len(each)} syncs"
            print(f"| {size:,} | {full} | {again} | {seconds:.1f} | {arrived} |")


if __name__ == "__main__":
    main()
