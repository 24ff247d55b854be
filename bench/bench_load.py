"""Load benchmark: `read` and `sync` of N events, wall time and peak RSS, and PyAirbyte beside `sync`.

Starts ``sentry-emulator`` in its own process (so its memory and CPU are not the connector's),
then runs, ``--repeat`` rounds per size (``--events 10000,100000``), each as a subprocess:

1. ``source-sentry read`` of the ``events`` stream, its RECORD lines counted as they stream by;
2. ``source-sentry sync`` of ``events`` into a fresh DuckDB file (``--destination-mode``:
   append_dedup, the default of ``sync``, or append / overwrite);
3. with ``--pyairbyte``: PyAirbyte (its own venv) running our connector's ``events`` into its
   default DuckDB cache: what a user would pick instead of ``sync``.

For each it prints the records, the wall time, and the peak RSS of the process (``VmHWM``
sampled from /proc/<pid>/status, and ``ru_maxrss`` from wait4), plus RSS samples over time so
"flat" can be seen, its CPU and the emulator's meanwhile (``server_cpu_seconds``); per size the medians, ``sync_over_read_wall`` and
``sync_over_pyairbyte_records_per_second``. The sync's rows are read back from DuckDB and must
match the read's records, one row per id.

    .venv/bin/python bench/bench_load.py                       # 1,000,000 events, 3 projects
    .venv/bin/python bench/bench_load.py --events 10000,100000 --projects 1 --repeat 3 --pyairbyte
    .venv/bin/python bench/bench_load.py --skip-sync

The emulator is settled first (every late event received), so every run serves the same events.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
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


def status_kib(status_text: str, field: str) -> int | None:
    """A ``kB`` field of a /proc ``status`` text (``VmRSS``, ``VmHWM``), or None if absent."""
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
            rss, hwm = status_kib(text, "VmRSS"), status_kib(text, "VmHWM")
            if rss:
                self.samples.append((time.monotonic() - started, rss))
            if hwm:
                self.hwm = max(self.hwm, hwm)
            self.stop.wait(self.interval)


def stat_cpu_seconds(stat: Path) -> float | None:
    """CPU seconds (user and system) from a /proc ``stat`` file (a process's or a thread's), or
    None once it is gone."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    """CPU seconds a live process has used so far, or None if it is gone."""
    return stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


def run_measured(cmd: list[str], stdout: Any, reader: Any = None, env: dict[str, str] | None = None,
                 server: int | None = None) -> dict[str, Any]:
    """Run ``cmd`` to its end: wall time, peak RSS, RSS over time; with ``reader`` (a thread class
    taking the stdout pipe and counting ``records``), the records it counted; with ``server`` (the
    emulator's pid), the CPU seconds that process used meanwhile."""
    server_before = _cpu_seconds(server) if server is not None else None
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env)
    counter = reader(proc.stdout) if reader is not None else None
    if counter is not None:
        counter.start()
    sampler = Sampler(proc.pid)
    sampler.start()
    stderr_chunks: list[bytes] = []
    errors = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    errors.start()
    _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    server_after = _cpu_seconds(server) if server is not None else None
    if counter is not None:
        counter.join()
    sampler.stop.set()
    sampler.join()
    errors.join()
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
        # CPU of the process (every thread): on a shared 2-core machine the wall time of a sync
        # is about the read's CPU plus DuckDB's whenever no core is free for the writer thread.
        "cpu_seconds": round(rusage.ru_utime + rusage.ru_stime, 1),
        # The emulator's CPU meanwhile: it serves from one core, and on a 2-core machine what it
        # takes is not free for the connector.
        **({"server_cpu_seconds": round(server_after - server_before, 1)}
           if server_before is not None and server_after is not None else {}),
        **flat,
        "stderr_tail": b"".join(stderr_chunks).decode(errors="replace")[-600:],
        **({"records": counter.records} if counter is not None else {}),
    }


PYAIRBYTE_SCRIPT = r"""
import json, sys, time
import airbyte as ab

args = json.loads(sys.argv[1])
source = ab.get_source("source-sentry", local_executable=args["executable"], config=args["config"],
                       streams=["events"])
cache = ab.DuckDBCache(db_path=args["db"])
result = source.read(cache=cache)
print("RESULT " + json.dumps({"records": len(result["events"].to_pandas())}))
"""


def _pyairbyte_python() -> Path:
    """PyAirbyte's own venv, made as tests/acceptance/test_pyairbyte.py makes it (shared cache)."""
    sys.path.insert(0, str(ROOT / "tests" / "acceptance"))
    from pyairbyte_helpers import pyairbyte_python as make  # type: ignore[import-not-found]

    with contextlib.redirect_stdout(sys.stderr):  # it says whether it installed; stdout is the results'
        return Path(make())


class _Counter(threading.Thread):
    """Reads a child's stdout to its end, counting the RECORD lines (what `read` really emitted)."""

    def __init__(self, pipe: Any) -> None:
        super().__init__(daemon=True)
        self.pipe, self.records = pipe, 0

    def run(self) -> None:
        mark = b'{"type":"RECORD"'
        tail = b""
        for chunk in iter(lambda: self.pipe.read(1 << 20), b""):
            self.records += (tail + chunk).count(mark)
            # A mark cut by the chunk's end, never a whole one (a 20-byte tail counted a mark at
            # a chunk's end twice: 9 of 948,315 records at 1M).
            tail = chunk[-(len(mark) - 1):]


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def settled_emulator(per_project: int, projects: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """``sentry-emulator`` in its own process with ``per_project`` events in each of ``projects``,
    settled (every late event received, so every run serves the same events); the process and
    a connector config for it. The caller terminates the process."""
    emulator = subprocess.Popen(
        [sys.executable, "-m", "sentry_emulator", "--port", "0", "--projects", str(projects),
         "--events-per-project", str(per_project), "--issues-per-project", "50", "--releases", "10",
         "--days", "60", "--admin"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        ready = json.loads(emulator.stdout.readline())  # type: ignore[union-attr]
        base = ready["base_url"]
        request = urllib.request.Request(f"{base}/_emulator/advance", data=b'{"seconds": 601}', method="POST")
        urllib.request.urlopen(request).read()
    except BaseException:
        emulator.terminate()
        raise
    return emulator, {"auth_token": ready["token"], "organization": ready["organization"], "hostname": base}


def events_catalog(destination_mode: str) -> dict[str, Any]:
    """A configured catalog of the ``events`` stream alone, written to DuckDB in ``destination_mode``."""
    from source_sentry.catalog import discovered_streams

    stream = next(s for s in discovered_streams() if s["name"] == "events")
    sync_mode = "full_refresh" if destination_mode == "overwrite" else "incremental"
    return {"streams": [{"stream": stream, "sync_mode": sync_mode, "destination_sync_mode": destination_mode,
                         "cursor_field": ["dateCreated"], "primary_key": [["id"]]}]}


def measure(size: int, args: argparse.Namespace) -> dict[str, Any]:
    """``--repeat`` rounds of read, sync (and PyAirbyte) of ``size`` events from one emulator."""
    per_project = -(-size // args.projects)
    total = per_project * args.projects
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    emulator, config = settled_emulator(per_project, args.projects)
    out: dict[str, Any] = {"events_generated": total, "read": [], "sync": [], "pyairbyte": []}
    try:
        config_path = work / "config.json"
        config_path.write_text(json.dumps(config))
        catalog_path = work / "catalog.json"
        catalog_path.write_text(json.dumps(events_catalog(args.destination_mode)))
        cli = [sys.executable, "-m", "source_sentry"]
        for n in range(args.repeat):  # rounds, so that a noisy minute hits every tool alike
            if not args.skip_read:
                print(f"[{size:,}] round {n + 1}: read ...", file=sys.stderr, flush=True)
                read = run_measured([*cli, "read", "--config", str(config_path), "--catalog", str(catalog_path)],
                                    subprocess.PIPE, _Counter, server=emulator.pid)
                read["records_per_second"] = round(read["records"] / read["wall_seconds"])
                out["read"].append(read)
            if not args.skip_sync:
                db = work / f"sync-{n}.duckdb"
                print(f"[{size:,}] round {n + 1}: sync ...", file=sys.stderr, flush=True)
                sync = run_measured([*cli, "sync", "--config", str(config_path), "--destination", str(db),
                                     "--catalog", str(catalog_path), "--quiet"], subprocess.DEVNULL,
                                    server=emulator.pid)
                import duckdb

                with duckdb.connect(str(db), read_only=True) as con:
                    rows, keys = con.execute("select count(*), count(distinct id) from events").fetchall()[0]
                sync.update(records=rows, distinct_ids=keys, records_per_second=round(rows / sync["wall_seconds"]),
                            duckdb_mib=round(db.stat().st_size / 2**20, 1))
                db.unlink()
                out["sync"].append(sync)
            if args.pyairbyte:
                print(f"[{size:,}] round {n + 1}: PyAirbyte ...", file=sys.stderr, flush=True)
                script = work / "pyairbyte_read.py"
                script.write_text(PYAIRBYTE_SCRIPT)
                cache = work / f"pyairbyte-{n}.duckdb"
                spec = {"executable": str(Path(sys.executable).parent / "source-sentry"), "config": config, "db": str(cache)}
                # Offline (no registry lookup, no telemetry), as tests/acceptance/test_pyairbyte.py runs it.
                env = {**os.environ, "AIRBYTE_OFFLINE_MODE": "1", "DO_NOT_TRACK": "1", "NO_COLOR": "1",
                       "AIRBYTE_LOGGING_ROOT": str(work / "pyairbyte-logs")}
                env.pop("PYTHONPATH", None)
                peer = run_measured([str(_pyairbyte_python()), str(script), json.dumps(spec)], subprocess.PIPE, _Lines, env,
                                    server=emulator.pid)
                peer["records_per_second"] = round(peer["records"] / peer["wall_seconds"]) if peer["records"] else 0
                cache.unlink(missing_ok=True)
                out["pyairbyte"].append(peer)
    finally:
        emulator.terminate()
        emulator.wait(30)
    summary: dict[str, Any] = {}
    for tool in ("read", "sync", "pyairbyte"):
        runs = out[tool]
        if runs:
            summary[tool] = {key: _median([r[key] for r in runs])
                             for key in ("wall_seconds", "cpu_seconds", "peak_rss_mib_vmhwm", "records_per_second", "records",
                                         "server_cpu_seconds") if all(key in r for r in runs)}
    if "read" in summary and "sync" in summary:
        summary["sync_over_read_wall"] = round(summary["sync"]["wall_seconds"] / summary["read"]["wall_seconds"], 2)
        summary["sync_over_read_cpu"] = round(summary["sync"]["cpu_seconds"] / max(summary["read"]["cpu_seconds"], 0.1), 2)
    if "pyairbyte" in summary and "sync" in summary and summary["pyairbyte"]["records_per_second"]:
        summary["sync_over_pyairbyte_records_per_second"] = round(
            summary["sync"]["records_per_second"] / summary["pyairbyte"]["records_per_second"], 2)
    out["median"] = summary
    return out


class _Lines(threading.Thread):
    """Reads PyAirbyte's stdout to its end and takes the record count from its RESULT line."""

    def __init__(self, pipe: Any) -> None:
        super().__init__(daemon=True)
        self.pipe, self.records = pipe, 0

    def run(self) -> None:
        for line in self.pipe:
            if line.startswith(b"RESULT "):
                self.records = json.loads(line[len(b"RESULT "):])["records"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", default="1000000",
                        help="total events (split over --projects); a comma-separated list measures each size")
    parser.add_argument("--projects", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1, help="rounds per size; the summary gives medians")
    parser.add_argument("--skip-read", action="store_true")
    parser.add_argument("--skip-sync", action="store_true")
    parser.add_argument("--pyairbyte", action="store_true",
                        help="also PyAirbyte reading our connector's events into its default DuckDB cache "
                             "(installs PyAirbyte into its own venv once, as tests/acceptance/test_pyairbyte.py)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--destination-mode", default="append_dedup", choices=["append_dedup", "append", "overwrite"],
                        help="destination_sync_mode of events for the sync run (default append_dedup, sync's default)")
    args = parser.parse_args()

    results: dict[str, Any] = {"projects": args.projects, "python": sys.version.split()[0], "repeat": args.repeat,
                               "destination_mode": args.destination_mode, "load_average_start": os.getloadavg(),
                               "sizes": {}}
    for size in (int(text) for text in args.events.split(",")):
        results["sizes"][str(size)] = measure(size, args)
        print(json.dumps({size: results["sizes"][str(size)]["median"]}), file=sys.stderr, flush=True)
    results["load_average_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    ok = True
    for out in results["sizes"].values():
        ok = ok and all(r["exit_code"] == 0 for tool in ("read", "sync", "pyairbyte") for r in out[tool])
        reads = {r["records"] for r in out["read"]}
        ok = ok and all(r["records"] == r["distinct_ids"] and (not reads or {r["records"]} == reads) for r in out["sync"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
