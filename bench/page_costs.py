"""Where a read's CPU goes, per page of ten full events: the floor under CPU per record.

Against the emulator in its own process over TLS (the ``cpu`` scenario's data: one project,
10,000 events, 10 full events a page, gzip), this measures in this process, with
``time.process_time``:

- ``read``: the connector's whole ``read`` of the events stream (a subprocess, ``os.wait4``),
  per page, and its start-up (``spec``-free imports of the read path, interpreter included);
- ``wire``: the same pages fetched one after another by ``source_sentry.http.wire`` alone
  (request, TLS, chunked gzip, headers);
- ``split``: ``source_sentry.http.body.raw_items`` of each page's body (what a read does since
  0.3.0: each event's own bytes, its ``id`` and ``dateCreated`` decoded);
- ``parse`` and ``records``, for comparison: ``orjson.loads`` of each page's body and
  ``orjson.dumps`` of each of its records (what a read did before).

What ``read`` spends beyond wire + split is the connector's own per-page work (paging,
windows, checkpoints, the event loop's scheduling, writing stdout).

Run: ``.venv/bin/python bench/page_costs.py [--events 10000] [--runs 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # the benchmark suite's emulator process and connector runner

from source_sentry.http import wire
from source_sentry.http.body import raw_items
from source_sentry.memory import tune_gc


def _cpu_of(cmd: list[str], env: dict[str, str]) -> float:
    """CPU seconds (user + sys) of one subprocess, its stdout discarded."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed")
    return usage.ru_utime + usage.ru_stime


async def _fetch(base: str, urls: list[str], token: str, ca: str) -> tuple[list[bytes], float]:
    pool = wire.Pool(ssl.create_default_context(cafile=ca), connect_timeout=10)
    headers = f"Authorization: Bearer {token}\r\nAccept: application/json\r\nAccept-Encoding: gzip, deflate\r\n".encode()
    bodies = []
    started = time.process_time()
    for url in urls:
        bodies.append((await pool.get(base + url, headers)).content)
    spent = time.process_time() - started
    await pool.aclose()
    return bodies, spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tune_gc()  # the collector's settings of a read
    exe = bench.ensure_ours_venv()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp, bench.Emu(tls=True, events=args.events, issues=1000, releases=100) as emu:
        project = emu.info["projects"][0]
        ours = bench.Ours(exe)
        cfg = Path(tmp) / "config.json"
        cfg.write_text(json.dumps(ours.config(emu, project)))
        catalog = bench.discover_catalog(ours, cfg)
        catalog["streams"] = [s for s in catalog["streams"] if s["stream"]["name"] == "events"]
        cat = Path(tmp) / "catalog.json"
        cat.write_text(json.dumps(catalog))
        read = [exe.as_posix(), "read", "--config", str(cfg), "--catalog", str(cat)]
        py = (exe.parent / "python").as_posix()
        startup = [py, "-c", "import source_sentry.read, source_sentry.http.client, source_sentry.commands"]
        rows: dict[str, list[float]] = {"read": [], "startup": [], "wire": [], "split": [], "parse": [], "records": []}
        pages = 0
        for _ in range(args.runs):
            emu.clear_requests()
            rows["read"].append(_cpu_of(read, env))
            rows["startup"].append(_cpu_of(startup, env))
            requests = [r for r in emu.requests() if r["path"].endswith("/events/")]
            urls = [r["path"] + "?" + urlencode(r["query"], doseq=True) for r in requests]
            pages = len(urls)
            bodies, spent = asyncio.run(_fetch(emu.base_url, urls, emu.info["token"], emu.info["ca_cert"]))
            rows["wire"].append(spent)
            # One page at a time, as a read holds them (many pages held at once would make the
            # collector's passes, not the parser, the cost).
            parse = records = split = 0.0
            for body in bodies:
                started = time.process_time()
                if raw_items(body, {}, ("id", "dateCreated")) is None:
                    raise SystemExit("a page the read would not take as it is: the split figure would be wrong")
                split += time.process_time() - started
                started = time.process_time()
                page = orjson.loads(body)
                parsed = time.process_time()
                [orjson.dumps(item) for item in page]
                parse += parsed - started
                records += time.process_time() - parsed
            rows["split"].append(split)
            rows["parse"].append(parse)
            rows["records"].append(records)
            del bodies
    result: dict[str, Any] = {"events": args.events, "pages": pages, "runs": args.runs}
    for name, values in rows.items():
        result[name] = statistics.median(values)
    per_page = {k: result[k] / pages * 1e6 for k in ("read", "wire", "split", "parse", "records")}
    per_page["read"] = (result["read"] - result["startup"]) / pages * 1e6
    per_page["own"] = per_page["read"] - per_page["wire"] - per_page["split"]
    result["per_page_us"] = {k: round(v) for k, v in per_page.items()}
    print(json.dumps(result, indent=2))
    print(
        f"read {result['read']:.2f} CPU s for {pages} pages ({args.events} events), start-up {result['startup']:.2f} s; "
        "per page: " + ", ".join(f"{k} {v:.0f} µs" for k, v in per_page.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
