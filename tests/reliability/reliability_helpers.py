"""Shared pieces of the reliability suite: ground truth, kill-and-resume drivers, artefact greps.

Reuses ``tests/connector/connector_helpers.py`` (every stdout line is validated against the
official Airbyte protocol models). Figures for docs/reliability.md are tallied into the JSON-lines
file named by ``RELIABILITY_FIGURES`` when that variable is set (nothing is written otherwise).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from airbyte_protocol.models import AirbyteMessage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "connector"))

from connector_helpers import (
    CliRun,
    Connector,
    catalog_for,
    config_for,
    run_cli,
    write_json,
)

__all__ = [
    "CORE_STREAMS",
    "CliRun",
    "Connector",
    "KilledRead",
    "catalog_for",
    "config_for",
    "data_ids",
    "expected",
    "grep_artefacts",
    "kill_and_resume_read",
    "read_killed",
    "run_cli",
    "settle",
    "tally",
    "write_json",
]

CORE_STREAMS = ["events", "issues", "projects", "releases", "project_detail"]
DELETED_AT = "_ab_cdc_deleted_at"  # tombstones (deleted upstream) are not data records
# Every fault kind the issue lists; "stall" needs request_timeout_seconds small.
TRANSIENT_KINDS = ["429", "500", "502", "503", "504", "reset", "stall", "truncated_json", "invalid_json", "html", "empty_200"]
SEEDS = [11, 23, 37, 41, 53, 67, 79, 83, 97, 101, 113, 127, 131, 149, 151, 163, 173, 181, 191, 197]


def tally(category: str, key: str, n: int = 1) -> None:
    """Count something for docs/reliability.md (no-op unless RELIABILITY_FIGURES is set)."""
    path = os.environ.get("RELIABILITY_FIGURES")
    if not path or n == 0:
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"category": category, "key": key, "n": n}) + "\n")


def settle(emu: Any) -> Any:
    """Move the emulator clock past every pending late arrival (at most 10 minutes late), so that
    no event becomes visible behind the connector's back while a test runs."""
    emu.advance(601)
    return emu


def expected(emu: Any, streams: Iterable[str] = CORE_STREAMS) -> dict[str, Any]:
    """Ground truth: ids per stream (events per project slug) from the emulator's own lists."""
    truth: dict[str, Any] = {}
    for stream in streams:
        if stream == "events":
            truth["events"] = {slug: sorted(e["id"] for e in emu.events(slug)) for slug in emu.project_slugs}
        elif stream == "issues":
            truth["issues"] = sorted(str(i["id"]) for i in emu.issues())
        elif stream == "releases":
            truth["releases"] = sorted(str(r["id"]) for r in emu.releases())
        elif stream in ("projects", "project_detail"):
            truth[stream] = sorted(str(p["id"]) for p in emu.projects())
    return truth


def data_ids(records_by_stream: dict[str, list[dict[str, Any]]], emu: Any) -> dict[str, Any]:
    """The same shape as :func:`expected`, from records (deduplicated; tombstones left out)."""
    slug_of = {str(p["id"]): p["slug"] for p in emu.projects()}
    out: dict[str, Any] = {}
    for stream, records in records_by_stream.items():
        live = [r for r in records if not r.get(DELETED_AT)]
        if stream == "events":
            per: dict[str, set[str]] = {slug: set() for slug in emu.project_slugs}
            for r in live:
                per.setdefault(slug_of.get(str(r.get("projectID")), f"?{r.get('projectID')}"), set()).add(r["id"])
            out["events"] = {slug: sorted(ids) for slug, ids in per.items()}
        else:
            out[stream] = sorted({str(r["id"]) for r in live})
    return out


def run_records(run: CliRun, streams: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    return {s: run.records(s) for s in streams}


def duplicates(records: list[dict[str, Any]]) -> int:
    counts = Counter(str(r["id"]) for r in records if not r.get(DELETED_AT))
    return sum(n - 1 for n in counts.values() if n > 1)


# ------------------------------------------------------------------ kill and resume


@dataclass
class KilledRead:
    """One attempt of ``read``: what the platform saw before the kill (or the whole run)."""

    lines: int
    killed: bool
    returncode: int | None
    messages: list[dict[str, Any]]
    # Per stream: records before its last STATE (committed) and after it (uncommitted).
    committed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    uncommitted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    last_states: dict[str, dict[str, Any]] = field(default_factory=dict)


def read_killed(args: list[str], kill_at: int | None, *, after_state: bool = False) -> KilledRead:
    """Run ``python -m source_sentry ARGS`` and SIGKILL it once ``kill_at`` stdout lines were read
    (with ``after_state``: at the first STATE line at or after line ``kill_at``; None: let it
    finish). Lines are consumed as they come, as a platform would; what the process wrote after
    the kill point is never looked at. Every line seen is validated against the protocol models.
    No deadline of its own: pytest-timeout ends a read that hangs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "source_sentry", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0
    )
    assert proc.stdout is not None
    lines: list[bytes] = []
    killed = False
    try:
        for raw in iter(proc.stdout.readline, b""):
            lines.append(raw)
            if kill_at is not None and len(lines) >= kill_at and (not after_state or raw.startswith(b'{"type":"STATE"')):
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
    finally:
        if proc.poll() is None and not killed:
            proc.kill()
        proc.stdout.close()
        proc.wait(30)
    messages = []
    for raw in lines:
        message = orjson.loads(raw)
        AirbyteMessage.model_validate(message)
        messages.append(message)
    attempt = KilledRead(len(messages), killed, proc.returncode, messages)
    pending: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        if message["type"] == "RECORD":
            pending.setdefault(message["record"]["stream"], []).append(message["record"]["data"])
        elif message["type"] == "STATE":
            state = message["state"]
            name = state["stream"]["stream_descriptor"]["name"]
            attempt.committed.setdefault(name, []).extend(pending.pop(name, []))
            attempt.last_states[name] = {k: v for k, v in state.items() if k != "sourceStats"}
    attempt.uncommitted = pending
    return attempt


def kill_and_resume_read(
    workdir: Path,
    emu: Any,
    streams: list[str],
    rng: random.Random,
    *,
    kills: int,
    config: dict[str, Any] | None = None,
    mode: str = "incremental",
    max_lines: int = 400,
    state_bias: float = 0.35,
) -> tuple[list[KilledRead], dict[str, dict[str, Any]]]:
    """Kill ``read`` ``kills`` times at random points, resuming each time from the last STATE of
    each stream seen before the kill, then let it run to completion.

    Kill points: a random line count in [1, max_lines * 0.7**attempt]; with probability ``state_bias``, right
    after the first STATE at or after it (otherwise usually mid-page, between records).
    Returns every attempt and the final states.
    """
    config_path = write_json(workdir / "config.json", config or config_for(emu, lookback_window_minutes=0))
    catalog_path = write_json(workdir / "catalog.json", catalog_for(streams, mode))
    states: dict[str, dict[str, Any]] = {}
    attempts: list[KilledRead] = []
    for n in range(kills + 1):
        args = ["read", "--config", config_path, "--catalog", catalog_path]
        if states:
            args += ["--state", write_json(workdir / f"state{n}.json", list(states.values()))]
        if n == kills:
            attempt = read_killed(args, None)
        else:
            # Each resumed attempt has less left to read: shrink the range so most kills still land.
            upper = max(8, int(max_lines * 0.7**n))
            attempt = read_killed(args, rng.randint(1, upper), after_state=rng.random() < state_bias)
        attempts.append(attempt)
        if mode == "incremental":
            states.update(attempt.last_states)
        if not attempt.killed:
            break
    return attempts, states


# ------------------------------------------------------------------ secrets


def grep_artefacts(token: str, texts: dict[str, str | bytes], files: Iterable[Path] = ()) -> list[str]:
    """Names of the artefacts that contain ``token``: in their raw bytes, or, for JSON lines, in
    any string once decoded (a token with a quote or a backslash is escaped in JSON text)."""
    needle = token.encode()
    found = []
    for name, value in texts.items():
        data = value.encode() if isinstance(value, str) else value
        if needle in data:
            found.append(name)
            continue
        for line in data.splitlines():
            try:
                decoded = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if token in _strings(decoded):
                found.append(f"{name} (JSON-decoded)")
                break
    for path in files:
        for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
            if file.name.startswith("config") and file.suffix == ".json":
                continue  # the config file is the one place the token belongs
            if needle in file.read_bytes():
                found.append(str(file))
    return found


def _strings(value: Any) -> str:
    """Every string inside a JSON value, concatenated with NULs (to look for a token in them)."""
    parts: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return "\0".join(parts)
