"""Request cost of release health, the Explore datasets and replays: a full read, then a read
with the state it left (nothing changed), each stream alone, with the connector's CLI as a
subprocess against the emulator's defaults; then Explore's row cap and its sampled history.

    .venv/bin/python bench/beyond_errors.py        # prints a Markdown table (about half a minute)

The tests (tests/connector/test_health_explore_replays.py) check the behaviour; this script
measures it. The figures are in docs/benchmarks.md ("Release health, Explore and replays").
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sentry_emulator import Emulator


def read_stream(emu: Emulator, stream: str, workdir: Path, state: Any = None, **config: Any) -> dict[str, Any]:
    """One ``read`` of ``stream`` in incremental mode (the CLI as a subprocess): records, requests
    (and their paths), seconds, final states. bench/issue_polling.py uses it too."""
    from source_sentry.catalog import discovered_streams

    entry = next(s for s in discovered_streams() if s["name"] == stream)
    catalog = {"streams": [{"stream": entry, "sync_mode": "incremental", "destination_sync_mode": "append_dedup",
                            "cursor_field": entry.get("default_cursor_field", []),
                            "primary_key": entry["source_defined_primary_key"]}]}
    files = {
        "config": {"auth_token": emu.token, "organization": emu.organization, "hostname": emu.base_url, **config},
        "catalog": catalog,
        "state": state,
    }
    for name, value in files.items():
        (workdir / f"{name}.json").write_text(json.dumps(value))
    args = [sys.executable, "-m", "source_sentry", "read", "--config", str(workdir / "config.json"),
            "--catalog", str(workdir / "catalog.json")]
    if state is not None:
        args += ["--state", str(workdir / "state.json")]
    emu.clear_requests()
    started = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    messages = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    states = {m["state"]["stream"]["stream_descriptor"]["name"]: m["state"] for m in messages if m["type"] == "STATE"}
    errors = [m for m in messages if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"]
    assert not errors, errors
    return {
        "records": sum(m["type"] == "RECORD" for m in messages),
        "ids": [str(m["record"]["data"].get("id")) for m in messages if m["type"] == "RECORD"],
        "sampled": sum(m["type"] == "RECORD" and bool(m["record"]["data"].get("sampled")) for m in messages),
        "requests": len(emu.requests),
        "request_paths": [r.path for r in emu.requests],
        "seconds": seconds,
        "states": list(states.values()),
    }


def main() -> None:
    now = datetime.now(timezone.utc)
    rows: list[tuple[str, str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with Emulator(seed=1, start_time=now) as emu:
            cases: list[tuple[str, str, dict[str, Any]]] = [
                ("release_health", "1d rows", {}),
                ("release_health", "1h rows", {"release_health_interval": "1h"}),
                *((name, "", {}) for name in ("spans", "logs", "uptime_results", "tracemetrics", "replays")),
            ]
            for stream, note, config in cases:
                full = read_stream(emu, stream, workdir, **config)
                again = read_stream(emu, stream, workdir, state=full["states"], **config)
                rows.append((stream, f"{note} full read".strip(), full))
                rows.append((stream, f"{note} no change".strip(), again))
        with Emulator(seed=1, projects=1, days=2, start_time=now, explore_rows_per_hour={"spans": 1500}) as emu:
            rows.append(("spans", "1,500 a hour, one day: past the 10,000-row cap", read_stream(emu, "spans", workdir, explore_days=1)))
        with Emulator(seed=1, projects=1, days=45, start_time=now) as emu:
            rows.append(("logs", "45 days: 15 past full fidelity", read_stream(emu, "logs", workdir, explore_days=45)))
    print("| stream | read | records | of them sampled | requests | seconds |")
    print("| :----- | :--- | ------: | --------------: | -------: | ------: |")
    for stream, what, r in rows:
        print(f"| `{stream}` | {what} | {r['records']:,} | {r['sampled']:,} | {r['requests']} | {r['seconds']:.1f} |")


if __name__ == "__main__":
    main()
