"""Where a `sync`'s peak memory comes from: its RSS beside the database's WAL and file, over time.

Not a test. Starts ``sentry-emulator`` (settled, as ``bench_load.py`` does), runs ``source-sentry
sync`` of the ``events`` stream into a fresh DuckDB file and samples, every ``--interval``
seconds: the sync's RSS (VmRSS), the size of the WAL (``-1``: none, just checkpointed) and of the
database file, and the sync's CPU. The WAL jumps when a dedup merge commits (the merged rows) and
empties when DuckDB checkpoints (the file grows): the episodes above ``--above`` MiB show which of
the two each peak of memory came with. Prints a JSON summary: the wall and CPU seconds of the
sync, its CPU per thread (the read's event loop, the DuckDB writer), the emulator's CPU meanwhile,
the median and peak RSS, and the episodes; ``--samples`` also writes every sample (TSV).

``--setting`` runs an SQL statement on the destination's connection when it opens (a DuckDB
setting to try, repeatable), through a small launcher that wraps ``connect_database``. A setting
the destination sets itself after opening (``threads``, ``checkpoint_threshold``) is set back by
it: try those by changing the destination's constants instead.

    .venv/bin/python bench/sync_timeline.py --events 400000
    .venv/bin/python bench/sync_timeline.py --events 400000 --setting "SET allocator_flush_threshold = '16MB'"
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_load import _cpu_seconds, events_catalog, settled_emulator, stat_cpu_seconds  # noqa: E402

# Runs the CLI with each SQL statement of the JSON list in argv[1] executed on the destination's
# connection as it opens.
_LAUNCHER = """
import json, sys
import source_sentry.destination.duckdb as destination
settings, opened = json.loads(sys.argv.pop(1)), destination.connect_database
def connect_database(path):
    con = opened(path)
    for sql in settings:
        con.execute(sql)
    return con
destination.connect_database = connect_database
from source_sentry.cli import main
raise SystemExit(main())
"""


def _threads(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of ``pid`` by thread id (empty once it is gone)."""
    out: dict[str, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        cpu = stat_cpu_seconds(Path(f"/proc/{pid}/task/{tid}/stat"))
        if cpu is not None:
            out[tid] = cpu
    return out


def _size_mib(path: Path) -> int:
    try:
        return path.stat().st_size >> 20
    except OSError:
        return -1


def episodes(samples: list[tuple[float, int, int, int]], above: int) -> list[dict[str, Any]]:
    """The runs of consecutive samples (seconds, RSS MiB, WAL MiB, file MiB) with RSS at ``above``
    or more: when, the highest RSS, the WAL and the file before and after (what DuckDB did)."""
    out: list[dict[str, Any]] = []
    start: int | None = None
    for i, (_, rss, _, _) in enumerate([*samples, (0.0, -1, 0, 0)]):
        if rss >= above and start is None:
            start = i
        elif rss < above and start is not None:
            before, last = samples[max(0, start - 1)], samples[min(i, len(samples) - 1)]
            out.append({
                "from_s": samples[start][0], "to_s": samples[i - 1][0],
                "peak_mib": max(s[1] for s in samples[start:i]),
                "wal_mib": [before[2], last[2]], "file_mib": [before[3], last[3]],
            })
            start = None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--destination-mode", default="append_dedup", choices=["append_dedup", "append", "overwrite"])
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--above", type=int, default=140, help="MiB: report the episodes at or above it")
    parser.add_argument("--setting", action="append", default=[], help="an SQL statement run as the destination opens")
    parser.add_argument("--samples", help="write every sample to this TSV file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sync-timeline-"))
    emulator, config = settled_emulator(args.events, 1)
    try:
        (work / "config.json").write_text(json.dumps(config))
        (work / "catalog.json").write_text(json.dumps(events_catalog(args.destination_mode)))
        db = work / "sync.duckdb"
        wal = Path(f"{db}.wal")
        cli = [sys.executable, "-c", _LAUNCHER, json.dumps(args.setting)]
        server_before, started = _cpu_seconds(emulator.pid), time.monotonic()
        errors_file = (work / "stderr").open("w+b")
        sync = subprocess.Popen([*cli, "sync", "--config", str(work / "config.json"), "--destination", str(db),
                                 "--catalog", str(work / "catalog.json"), "--quiet"],
                                stdout=subprocess.DEVNULL, stderr=errors_file)
        samples: list[tuple[float, int, int, int]] = []
        threads: dict[str, float] = {}
        while sync.poll() is None:
            try:
                status = Path(f"/proc/{sync.pid}/status").read_text()
            except OSError:
                break
            rss = next((int(line.split()[1]) >> 10 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
            threads.update(_threads(sync.pid))
            samples.append((round(time.monotonic() - started, 2), rss, _size_mib(wal), _size_mib(db)))
            time.sleep(args.interval)
        sync.wait()
        errors_file.seek(0)
        errors = errors_file.read().decode(errors="replace")
        wall, server_after = time.monotonic() - started, _cpu_seconds(emulator.pid)
    finally:
        emulator.terminate()
        emulator.wait(30)
    if args.samples:
        Path(args.samples).write_text("".join("\t".join(map(str, s)) + "\n" for s in samples))
    rss_values = [s[1] for s in samples]
    print(json.dumps({
        "events": args.events, "destination_mode": args.destination_mode, "settings": args.setting,
        "exit_code": sync.returncode, "stderr_tail": errors[-600:],
        "wall_seconds": round(wall, 1),
        "cpu_seconds_by_thread": sorted((round(cpu, 1) for cpu in threads.values() if cpu >= 0.05), reverse=True),
        "emulator_cpu_seconds": round(server_after - server_before, 1)
        if server_before is not None and server_after is not None else None,
        "rss_mib_median": statistics.median(rss_values) if rss_values else None,
        "rss_mib_peak_sampled": max(rss_values, default=None),
        "episodes": episodes(samples, args.above),
    }, indent=1))
    return 0 if sync.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
