"""Load benchmark: a sync of 1,000,000 events with flat memory, for `read` and for `sync`.

Starts ``sentry-emulator`` in its own process (so its memory and CPU are not the connector's),
then runs the connector twice as a subprocess:

1. ``source-sentry read`` of the ``events`` stream, stdout to /dev/null;
2. ``source-sentry sync`` of ``events`` into a fresh DuckDB file (``--destination-mode``:
   append_dedup, the default of ``sync``, or append / overwrite).

For each it prints the records, the wall time, and the peak RSS of the connector process
(``VmHWM`` sampled from /proc/<pid>/status, and ``ru_maxrss`` from wait4), plus RSS samples over
time so "flat" can be seen: the RSS at 25%, 50%, 75% of the run and at the end.

    .venv/bin/python bench/bench_load.py                       # 1,000,000 events, 3 projects
    .venv/bin/python bench/bench_load.py --events 100000 --projects 1
    .venv/bin/python bench/bench_load.py --skip-sync

Records of `read` are known without parsing its stdout: the emulator is settled first (every
late event received), so each project serves exactly --events / --projects events; the sync's
count is read back from DuckDB and must match.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _kib(status_text: str, field: str) -> int | None:
    for line in status_text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


class Sampler(threading.Thread):
    """Samples VmRSS / VmHWM of a pid every ``interval`` seconds until it exits."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []  # (seconds since start, VmRSS KiB)
        self.hwm = 0
        self.stop = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        path = f"/proc/{self.pid}/status"
        while not self.stop.is_set():
            try:
                text = Path(path).read_text()
            except OSError:
                return
            rss, hwm = _kib(text, "VmRSS"), _kib(text, "VmHWM")
            if rss:
                self.samples.append((time.monotonic() - started, rss))
            if hwm:
                self.hwm = max(self.hwm, hwm)
            self.stop.wait(self.interval)


def run_measured(cmd: list[str], stdout: Any) -> dict[str, Any]:
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE)
    sampler = Sampler(proc.pid)
    sampler.start()
    stderr_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    sampler.stop.set()
    sampler.join()
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    samples = sampler.samples
    flat: dict[str, Any] = {}
    if samples:
        for pct in (25, 50, 75, 100):
            _t, rss = samples[min(len(samples) - 1, len(samples) * pct // 100)]
            flat[f"rss_mib_at_{pct}pct"] = round(rss / 1024, 1)
        # When the highest sample was taken (a peak at the end is the closing checkpoint).
        top = max(samples, key=lambda sample: sample[1])
        flat["rss_max_sample_at_pct"] = round(100 * top[0] / max(wall, 1e-9))
    return {
        "exit_code": proc.returncode,
        "wall_seconds": round(wall, 1),
        "peak_rss_mib_vmhwm": round(sampler.hwm / 1024, 1),
        "peak_rss_mib_ru_maxrss": round(rusage.ru_maxrss / 1024, 1),
        **flat,
        "stderr_tail": b"".join(stderr_chunks).decode(errors="replace")[-600:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="total events (split over --projects)")
    parser.add_argument("--projects", type=int, default=3)
    parser.add_argument("--skip-read", action="store_true")
    parser.add_argument("--skip-sync", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--destination-mode", default="append_dedup", choices=["append_dedup", "append", "overwrite"],
                        help="destination_sync_mode of events for the sync run (default append_dedup, sync's default)")
    args = parser.parse_args()

    per_project = -(-args.events // args.projects)
    total = per_project * args.projects
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    emulator = subprocess.Popen(
        [sys.executable, "-m", "sentry_emulator", "--port", "0", "--projects", str(args.projects),
         "--events-per-project", str(per_project), "--issues-per-project", "50", "--releases", "10",
         "--days", "60", "--admin"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    results: dict[str, Any] = {"events": total, "projects": args.projects, "python": sys.version.split()[0],
                               "destination_mode": args.destination_mode}
    try:
        t0 = time.monotonic()
        ready = json.loads(emulator.stdout.readline())  # type: ignore[union-attr]
        results["emulator_startup_seconds"] = round(time.monotonic() - t0, 1)
        base = ready["base_url"]
        # Settle: every late event received, so the served count is exactly `total`.
        request = urllib.request.Request(f"{base}/_emulator/advance", data=b'{"seconds": 601}', method="POST")
        urllib.request.urlopen(request).read()
        config = {"auth_token": ready["token"], "organization": ready["organization"], "hostname": base}
        config_path = work / "config.json"
        config_path.write_text(json.dumps(config))
        from source_sentry.catalog import discovered_streams

        stream = next(s for s in discovered_streams() if s["name"] == "events")
        sync_mode = "full_refresh" if args.destination_mode == "overwrite" else "incremental"
        catalog = {"streams": [{"stream": stream, "sync_mode": sync_mode, "destination_sync_mode": args.destination_mode,
                                "cursor_field": ["dateCreated"], "primary_key": [["id"]]}]}
        catalog_path = work / "catalog.json"
        catalog_path.write_text(json.dumps(catalog))
        cli = [sys.executable, "-m", "source_sentry"]

        if not args.skip_read:
            print(f"read: {total:,} events, stdout to /dev/null ...", file=sys.stderr, flush=True)
            with open(os.devnull, "wb") as devnull:
                read = run_measured([*cli, "read", "--config", str(config_path), "--catalog", str(catalog_path)], devnull)
            read["records"] = total
            read["records_per_second"] = round(total / read["wall_seconds"])
            results["read"] = read
            print(json.dumps(read, indent=2), file=sys.stderr, flush=True)

        if not args.skip_sync:
            db = work / "sentry.duckdb"
            print(f"sync: {total:,} events into {db} ...", file=sys.stderr, flush=True)
            sync = run_measured([*cli, "sync", "--config", str(config_path), "--destination", str(db),
                                 "--catalog", str(catalog_path), "--quiet"], subprocess.DEVNULL)
            import duckdb

            with duckdb.connect(str(db), read_only=True) as con:
                rows, keys = con.execute("select count(*), count(distinct id) from events").fetchall()[0]
            sync["records"] = rows
            sync["distinct_ids"] = keys
            sync["records_per_second"] = round(rows / sync["wall_seconds"])
            sync["duckdb_mib"] = round(db.stat().st_size / 2**20, 1)
            results["sync"] = sync
            print(json.dumps(sync, indent=2), file=sys.stderr, flush=True)
    finally:
        emulator.terminate()
        emulator.wait(30)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    ok = all(results[k]["exit_code"] == 0 for k in ("read", "sync") if k in results)
    if "sync" in results:
        ok = ok and results["sync"]["records"] == total == results["sync"]["distinct_ids"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
