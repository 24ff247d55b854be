"""Where the DuckDB destination's time goes: one `read` of the emulator's events, replayed into it.

Not a test. Starts ``sentry-emulator`` (settled, as ``bench_load.py`` does), runs ``source-sentry
read`` of the ``events`` stream (Append + Deduped) once into a file, then, ``--rounds`` times,
replays those messages into a fresh DuckDB file through :class:`DuckDBDestination` with the
background writer, as ``sync`` does (records as the JSON bytes of a page at a time, every STATE
and status as it came). Only the destination runs, so its CPU is measured without the read's.
Prints per round the wall and CPU seconds of the process (the replay's own work is the records'
bytes, already in memory), the rows, and the wall time of each kind of statement and of COMMIT
(DuckDB's WAL and its automatic checkpoints), with the largest commits. ``--variant`` names an SQL
statement run on the destination's connection first (a DuckDB setting to try; ``""`` for none):
with several, each round replays every variant in turn, so that a noisy minute hits all alike.

    .venv/bin/python bench/destination_profile.py --events 100000
    .venv/bin/python bench/destination_profile.py --events 100000 --rounds 2 \
        --variant "SET checkpoint_threshold = '16MB'" --variant ""
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import duckdb
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from source_sentry.catalog import discovered_streams  # noqa: E402
from source_sentry.destination import DuckDBDestination  # noqa: E402

# Statement kinds by a piece of their SQL, first match wins.
KINDS = (
    ("read_json(", "read_json (the batch file)"),
    ("json_keys(", "json_keys (new columns)"),
    ('INSERT INTO "_airbyte_raw_', "typing and insert history (json_extract, macros)"),
    ("_airbyte_winners", "merge"),
    ("_airbyte_merged", "merge"),
    ("_airbyte_state", "state"),
)


class Timed:
    """The destination's connection, with the wall time of each statement kind and each COMMIT."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.seconds: collections.Counter[str] = collections.Counter()
        self.commits: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def execute(self, sql: str, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._con.execute(sql, *args)
        finally:
            kind = next((name for piece, name in KINDS if piece in sql), "other")
            self.seconds[kind] += time.perf_counter() - started

    def commit(self) -> Any:
        started = time.perf_counter()
        try:
            return self._con.commit()
        finally:
            self.commits.append(time.perf_counter() - started)


def capture(events: int, work: Path) -> tuple[Path, dict[str, Any]]:
    """One `read` of ``events`` emulator events into ``work/read.jsonl``; its catalog."""
    emulator = subprocess.Popen(
        [sys.executable, "-m", "sentry_emulator", "--port", "0", "--projects", "1", "--events-per-project", str(events),
         "--issues-per-project", "50", "--releases", "10", "--days", "60", "--admin"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        ready = json.loads(emulator.stdout.readline())  # type: ignore[union-attr]
        request = urllib.request.Request(f"{ready['base_url']}/_emulator/advance", data=b'{"seconds": 601}', method="POST")
        urllib.request.urlopen(request).read()
        config = {"auth_token": ready["token"], "organization": ready["organization"], "hostname": ready["base_url"]}
        stream = next(s for s in discovered_streams() if s["name"] == "events")
        catalog = {"streams": [{"stream": stream, "sync_mode": "incremental", "destination_sync_mode": "append_dedup",
                                "cursor_field": ["dateCreated"], "primary_key": [["id"]]}]}
        (work / "config.json").write_text(json.dumps(config))
        (work / "catalog.json").write_text(json.dumps(catalog))
        out = work / "read.jsonl"
        with out.open("wb") as stdout:
            subprocess.run([sys.executable, "-m", "source_sentry", "read", "--config", str(work / "config.json"),
                            "--catalog", str(work / "catalog.json")], stdout=stdout, check=True)
        return out, catalog
    finally:
        emulator.terminate()
        emulator.wait(30)


def messages(path: Path) -> list[tuple[str, Any]]:
    """The read's messages: ("records", (stream, [data bytes], emitted_at)) per page, ("message", dict)."""
    out: list[tuple[str, Any]] = []
    page: list[bytes] | None = None
    with path.open("rb") as lines:
        for line in lines:
            message = orjson.loads(line)
            if message["type"] != "RECORD":
                page = None
                out.append(("message", message))
                continue
            record = message["record"]
            if page is None or len(page) >= 10:  # pages of 10 full events, as Sentry sends them
                page = []
                out.append(("records", (record["stream"], page, record["emitted_at"])))
            page.append(orjson.dumps(record["data"]))
    return out


def replay(items: list[tuple[str, Any]], catalog: dict[str, Any], db: Path, setting: str) -> dict[str, Any]:
    started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    destination = DuckDBDestination(db, catalog, background=True)
    if setting:
        destination._con.execute(setting)
    timed = Timed(destination._con)
    destination._con = timed  # type: ignore[assignment]
    for kind, item in items:
        if kind == "records":
            destination.write_records(*item)
        else:
            destination.write(item)
    destination.close()
    after = resource.getrusage(resource.RUSAGE_SELF)
    with duckdb.connect(str(db), read_only=True) as con:
        rows, keys = con.execute("SELECT count(*), count(DISTINCT id) FROM events").fetchone()  # type: ignore[misc]
    total = sum(timed.seconds.values()) + sum(timed.commits)
    return {
        "variant": setting,
        "wall_seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
        "rows": rows, "distinct_ids": keys, "file_mib": round(db.stat().st_size / 2**20, 1),
        "seconds": {"COMMIT": round(sum(timed.commits), 2), **{k: round(v, 2) for k, v in timed.seconds.most_common()}},
        "percent": {k: round(100 * v / total, 1) for k, v in [("COMMIT", sum(timed.commits)), *timed.seconds.most_common()]},
        "commits": len(timed.commits), "largest_commits": [round(c, 2) for c in sorted(timed.commits)[-8:]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--variant", action="append", help="an SQL statement run on the destination's connection first")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="destination-profile-"))
    path, catalog = capture(args.events, work)
    items = messages(path)
    results = {"load_average_start": os.getloadavg(), "rounds": []}
    for n in range(args.rounds):
        for variant in args.variant or [""]:
            db = work / f"replay-{n}.duckdb"
            result = replay(items, catalog, db, variant)
            db.unlink()
            print(json.dumps(result), file=sys.stderr, flush=True)
            results["rounds"].append(result)
    results["load_average_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
