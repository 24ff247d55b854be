"""The figures of docs/reliability.md's "Edges" section: each defect class of issue 14 run once
through the emulator's hostile modes, with the connector's CLI as a subprocess.

    .venv/bin/python bench/edge_figures.py            # prints a Markdown table (about a minute)

The tests (tests/reliability/test_reliability_edges.py, tests/connector/test_sync_errors.py)
check the behaviour; this script measures it: requests, records, seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sentry_emulator import Emulator

DELETED_AT = "_ab_cdc_deleted_at"
Row = tuple[str, str, str]


class Run:
    """One CLI run's parsed stdout, its exit code and duration."""

    def __init__(self, proc: subprocess.CompletedProcess[str], seconds: float) -> None:
        self.code, self.seconds, self.stderr = proc.returncode, seconds, proc.stderr
        self.messages = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [m["record"]["data"] for m in self.messages if m["type"] == "RECORD" and m["record"]["stream"] == stream]

    def data_ids(self, stream: str) -> list[str]:
        return [str(r["id"]) for r in self.records(stream) if not r.get(DELETED_AT)]

    def tombstones(self, stream: str) -> set[str]:
        return {str(r["id"]) for r in self.records(stream) if r.get(DELETED_AT)}

    def states(self, stream: str) -> list[dict[str, Any]]:
        return [m["state"] for m in self.messages if m["type"] == "STATE"
                and m["state"].get("stream", {}).get("stream_descriptor", {}).get("name") == stream]

    def errors(self) -> list[dict[str, Any]]:
        return [m["trace"]["error"] for m in self.messages if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"]

    def warnings(self) -> list[str]:
        return [m["log"]["message"] for m in self.messages if m["type"] == "LOG" and m["log"]["level"] == "WARN"]


class Connector:
    """A config, a saved state, and ``read`` runs against one emulator."""

    def __init__(self, emu: Emulator, work: Path, **config: Any) -> None:
        self.emu, self.work = emu, work
        work.mkdir(parents=True, exist_ok=True)
        self.config = self._write("config.json", {"auth_token": emu.token, "organization": emu.organization,
                                                  "hostname": emu.base_url, **config})
        self.state: list[dict[str, Any]] | None = None

    def _write(self, name: str, value: Any) -> str:
        path = self.work / name
        path.write_text(json.dumps(value))
        return str(path)

    def read(self, streams: list[str]) -> Run:
        catalog = {"streams": [{"stream": {"name": s, "json_schema": {}, "supported_sync_modes": ["incremental"]},
                                "sync_mode": "incremental", "destination_sync_mode": "append"} for s in streams]}
        args = [sys.executable, "-m", "source_sentry", "read", "--config", self.config,
                "--catalog", self._write("catalog.json", catalog)]
        if self.state:
            args += ["--state", self._write("state.json", self.state)]
        started = time.monotonic()
        run = Run(subprocess.run(args, capture_output=True, text=True, timeout=600), time.monotonic() - started)
        latest = {s["stream"]["stream_descriptor"]["name"]: s for m in run.messages if m["type"] == "STATE"
                  for s in [m["state"]]}
        old = {s["stream"]["stream_descriptor"]["name"]: s for s in self.state or []}
        self.state = list({**old, **latest}.values())
        return run


def _requests(emu: Emulator, suffix: str) -> int:
    return sum(1 for r in emu.requests if r.path.endswith(suffix))


def pagination(work: Path) -> list[Row]:
    rows: list[Row] = []
    for kind in ("endless_cursor", "endless_empty"):
        with Emulator(projects=1, events_per_project=120, issues_per_project=150) as emu:
            emu.inject_fault(kind, path="/issues/$", times=-1)
            run = Connector(emu, work / kind).read(["issues", "projects"])
            rows.append(("1. pagination", f"`{kind}` on the issues list, forever",
                         f"stopped after {_requests(emu, '/issues/')} requests and {run.seconds:.1f} s, "
                         f"{len(run.records('issues'))} records, {len(run.states('issues'))} issues STATEs; "
                         f"`{run.errors()[0]['failure_type']}`; projects COMPLETE"))
    for kind in ("no_link", "garbled_link", "results_true_no_cursor"):
        with Emulator(projects=1, events_per_project=450, issues_per_project=250) as emu:
            emu.inject_fault(kind, path="/issues/$", times=1, after=1)
            conn = Connector(emu, work / kind, full_scan_hours=0)
            first = conn.read(["issues"])
            second = conn.read(["issues"])
            total = len(emu.issues())
            got = len(set(first.data_ids("issues")) | set(second.data_ids("issues")))
            rows.append(("1. pagination", f"`{kind}` on page 2 of {total} issues",
                         f"sync 1: {len(first.data_ids('issues'))} records, exit {first.code}, no full-list mark; "
                         f"sync 2: {got} of {total} issues in all"))
    return rows


def deletions(work: Path) -> list[Row]:
    rows: list[Row] = []
    for stream in ("issues", "releases"):
        with Emulator(projects=1, events_per_project=400, issues_per_project=250, releases=250, offset_paging=True) as emu:
            conn = Connector(emu, work / f"del-{stream}", full_scan_hours=0)
            conn.read([stream])
            before = len(emu.requests)
            emu.inject_fault("delete_after_page", path=f"/{stream}/$", times=1)
            run = conn.read([stream])
            details = sum(1 for r in emu.requests[before:]
                          if r.path.rstrip("/").rsplit("/", 2)[-2] == stream and not r.path.endswith(f"/{stream}/"))
            later = conn.read([stream])
            rows.append(("2. deletions", f"one of {stream} deleted between pages of a full list (offset paging)",
                         f"{details} record(s) missing from the list asked by their route (they exist); tombstones: {len(run.tombstones(stream))} "
                         f"in that sync, {len(later.tombstones(stream))} (the deleted one) in the next"))
    with Emulator(projects=2, events_per_project=200, issues_per_project=60) as emu:
        a, b = emu.project_slugs[:2]
        wide = Connector(emu, work / "wide", projects=[a, b], full_scan_hours=0)
        wide.read(["issues"])
        narrow = Connector(emu, work / "narrow", projects=[a], full_scan_hours=0)
        narrow.state = wide.state
        run = narrow.read(["issues"])
        rows.append(("2. deletions", f"`projects` narrowed from [{a}, {b}] to [{a}]",
                     f"{len(run.tombstones('issues'))} tombstones (none for the {len(emu.issues(b))} issues of {b})"))
    return rows


def renamed(work: Path) -> list[Row]:
    with Emulator(projects=2, events_per_project=120, issues_per_project=20) as emu:
        old, other = emu.project_slugs[:2]
        emu.rename_project(old, "payments")
        run = Connector(emu, work / "renamed", projects=[old, other]).read(["events", "issues", "projects"])
        same = Counter(run.data_ids("events")) == Counter(e["id"] for e in emu.events(other))
        errors = run.errors()
        return [("3. renamed project", f"'{old}' renamed to 'payments' (302, no Location)",
                 f"{len(errors)} error(s), `{errors[0]['failure_type']}`, naming both slugs; "
                 f"{other}: {len(run.data_ids('events'))} events, {'all' if same else 'NOT all'} of them")]


def deadlines(work: Path) -> list[Row]:
    with Emulator(projects=1, events_per_project=150) as emu:
        emu.inject_fault("drip", path="/events/$", times=1, bytes_per_second=20)
        run = Connector(emu, work / "drip", request_timeout_seconds=2).read(["events"])
        events = [r for r in emu.requests if r.path.endswith("/events/")]
        i = next(i for i, r in enumerate(events) if r.fault == "drip")
        retried_after = events[i + 1].received_at - events[i].received_at  # the deadline, then the backoff
        return [("4. deadlines", "events page dripped at 20 bytes/s, `request_timeout_seconds: 2`",
                 f"attempt given up and sent again {retried_after:.1f} s after it was received (deadline 2 s + backoff); "
                 f"{len(run.data_ids('events'))} of {len(emu.events(emu.project_slugs[0]))} events, read {run.seconds:.1f} s")]


def bodies(work: Path) -> list[Row]:
    rows: list[Row] = []
    with Emulator(projects=1, events_per_project=60, issues_per_project=10) as emu:
        emu.inject_fault("odd_record", path="/events/$", times=1)
        run = Connector(emu, work / "odd").read(["events"])
        changes = [c for m in run.messages if m["type"] == "RECORD" for c in m["record"].get("meta", {}).get("changes", [])]
        rows.append(("5. odd records", "a record with key `\"\"`, a lone surrogate, a 1 MiB string, a 20-digit int",
                     f"exit {run.code}; {len(run.data_ids('events'))} events; {len(changes)} change(s) in `meta.changes`"))
    with Emulator(projects=1, events_per_project=250, issues_per_project=30) as emu:
        emu.inject_fault("bad_gzip", path="/events/$", times=2, after=1)
        run = Connector(emu, work / "gzip").read(["events"])
        rows.append(("6. unreadable bodies", "`Content-Encoding: gzip` on a plain body, twice",
                     f"exit {run.code}; {sum(1 for r in emu.requests if r.fault == 'bad_gzip')} unreadable answers read again; "
                     f"{len(run.data_ids('events'))} of {len(emu.events(emu.project_slugs[0]))} events"))
    with Emulator(projects=1, events_per_project=60, releases=12) as emu:
        emu.inject_fault("no_id", path="/events/$", times=1)
        run = Connector(emu, work / "noid").read(["events"])
        warned = [w for w in run.warnings() if "without a primary key" in w]
        rows.append(("7. records without id", "2 events of a page with `id` missing or null",
                     f"{len(run.data_ids('events'))} of {len(emu.events(emu.project_slugs[0]))} events emitted; "
                     f"{len(warned)} warning: \"{warned[0] if warned else ''}\""))
    return rows


def sync_mistakes(work: Path) -> list[Row]:
    rows: list[Row] = []
    with Emulator(projects=1) as emu:
        config = work / "dns.json"
        config.write_text(json.dumps({"auth_token": emu.token, "organization": "acme",
                                      "hostname": "sentry.no-such-host.invalid"}))
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "source_sentry", "sync", "--config", str(config),
                               "--destination", str(work / "s.duckdb")], capture_output=True, text=True, timeout=600)
        rows.append(("8. sync mistakes", "`hostname` that does not resolve",
                     f"exit {proc.returncode} after {time.monotonic() - started:.1f} s: \"{proc.stderr.strip()}\""))
        (work / "dir").mkdir()
        config.write_text(json.dumps({"auth_token": emu.token, "organization": "acme", "hostname": emu.base_url}))
        proc = subprocess.run([sys.executable, "-m", "source_sentry", "sync", "--config", str(config),
                               "--destination", str(work / "dir")], capture_output=True, text=True, timeout=600)
        rows.append(("8. sync mistakes", "a directory as `--destination`",
                     f"exit {proc.returncode}, stdout {len(proc.stdout)} bytes: \"{proc.stderr.strip()}\""))
    return rows


def scopes(work: Path) -> list[Row]:
    with Emulator(projects=1, scope_rules="strict") as emu:
        token = emu.create_token(scopes=["org:read", "project:read", "event:read", "member:read", "team:read", "alerts:read"])
        conn = Connector(emu, work / "scopes", auth_token=token)
        proc = subprocess.run([sys.executable, "-m", "source_sentry", "check", "--config", conn.config],
                              capture_output=True, text=True, timeout=600)
        status = json.loads(proc.stdout)["connectionStatus"]
        return [("9. check and scopes", "token without `project:releases`",
                 f"check {status['status']}: \"{status['message']}\"")]


SCENARIOS: list[Callable[[Path], list[Row]]] = [pagination, deletions, renamed, deadlines, bodies, sync_mistakes, scopes]


def main() -> None:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in SCENARIOS:
            work = Path(tmp) / scenario.__name__
            work.mkdir()
            rows += scenario(work)
    print("| class | server does | connector (measured) |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")


if __name__ == "__main__":
    main()
