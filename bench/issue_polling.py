"""Requests of a no-change incremental sync of `issues` as a function of the number of issues,
with the default config: lists up to `full_list_max_records` (10,000) are read whole every sync,
so a resolve or an assignment without a new event arrives with the next sync; larger lists are
read as deltas plus the next slice of 10,000 between full lists (`full_scan_hours`).

    .venv/bin/python bench/issue_polling.py        # prints a Markdown table (a few minutes)

The figures are in docs/benchmarks.md ("Status changes without a new event").
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from beyond_errors import read_stream

from sentry_emulator import Emulator

SIZES = (100, 1_000, 5_000, 10_000, 12_000)


def _read(emu: Emulator, workdir: Path, state: Any = None) -> tuple[list[dict[str, Any]], int, float]:
    """The final states, the requests to issues/ and the seconds of one read of ``issues``."""
    run = read_stream(emu, "issues", workdir, state)
    return run["states"], sum(path.endswith("/issues/") for path in run["request_paths"]), run["seconds"]


def main() -> None:
    print("| issues | full read: requests to issues/ | no-change sync: requests to issues/ | seconds | a resolve arrives |")
    print("| -----: | -----------------------------: | ----------------------------------: | ------: | :---------------- |")
    for size in SIZES:
        now = datetime.now(timezone.utc)
        with tempfile.TemporaryDirectory() as tmp, Emulator(
            seed=1, projects=1, issues_per_project=size, events_per_project=size + 100, start_time=now
        ) as emu:
            workdir = Path(tmp)
            state, full, _ = _read(emu, workdir)
            emu.advance(60)
            _, again, seconds = _read(emu, workdir, state)
            slices = -(-size // 10_000)
            when = "next sync" if size <= 10_000 else f"within {slices} syncs (slices of 10,000), at the latest the next full list"
            print(f"| {size:,} | {full} | {again} | {seconds:.1f} | {when} |")


if __name__ == "__main__":
    main()
