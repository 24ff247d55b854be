"""Drive ``source-sentry`` as a real subprocess and validate what it prints.

Every stdout line must parse as JSON and validate against the official Airbyte protocol
models (airbyte-protocol-models-pdv2); a line that does not fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from airbyte_protocol.models import AirbyteMessage


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def records(self, stream: str | None = None) -> list[dict[str, Any]]:
        return [m["record"]["data"] for m in self.of_type("RECORD") if stream is None or m["record"]["stream"] == stream]

    def states(self, stream: str | None = None) -> list[dict[str, Any]]:
        return [
            m["state"]
            for m in self.of_type("STATE")
            if stream is None or m["state"]["stream"]["stream_descriptor"]["name"] == stream
        ]

    def final_states(self) -> list[dict[str, Any]]:
        """The last STATE of each stream, as the platform would pass to the next sync."""
        last: dict[str, dict[str, Any]] = {}
        for state in self.states():
            last[state["stream"]["stream_descriptor"]["name"]] = {k: v for k, v in state.items() if k != "sourceStats"}
        return list(last.values())

    def traces(self, kind: str) -> list[dict[str, Any]]:
        return [m["trace"] for m in self.of_type("TRACE") if m["trace"]["type"] == kind]

    def statuses(self, stream: str) -> list[str]:
        return [
            t["stream_status"]["status"]
            for t in self.traces("STREAM_STATUS")
            if t["stream_status"]["stream_descriptor"]["name"] == stream
        ]

    def errors(self) -> list[dict[str, Any]]:
        return [t["error"] for t in self.traces("ERROR")]

    def logs(self, level: str | None = None) -> list[str]:
        return [m["log"]["message"] for m in self.of_type("LOG") if level is None or m["log"]["level"] == level]


def run_cli(*args: str, timeout: float = 240, env: dict[str, str] | None = None, raw: bool = False) -> CliRun:
    """Run ``python -m source_sentry ARGS`` and validate every stdout line (unless ``raw``)."""
    proc = subprocess.run(
        [sys.executable, "-m", "source_sentry", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    run = CliRun(proc.returncode, proc.stdout, proc.stderr)
    return run if raw else validated(run)


def validated(run: CliRun) -> CliRun:
    """``run`` with its stdout parsed: every line a valid Airbyte message, or the test fails."""
    for line in run.stdout.splitlines():
        if not line.strip():
            continue
        message = orjson.loads(line)
        AirbyteMessage.model_validate(message)  # raises on any protocol violation
        run.messages.append(message)
    return run


def write_json(path: Path, value: Any) -> str:
    path.write_text(json.dumps(value))
    return str(path)


def config_for(emu: Any, **overrides: Any) -> dict[str, Any]:
    """A config pointing at the emulator, in the Airbyte connector's shape plus overrides."""
    config: dict[str, Any] = {
        "auth_token": emu.token,
        "organization": emu.organization,
        "hostname": emu.base_url,
    }
    if getattr(emu, "ca_cert_path", None):
        config["ca_bundle"] = emu.ca_cert_path
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


def catalog_for(streams: list[str], mode: str = "incremental", destination_mode: str | None = None) -> dict[str, Any]:
    """A configured catalog for ``streams``, built from the connector's own discover output."""
    from source_sentry.catalog import discovered_streams

    by_name = {s["name"]: s for s in discovered_streams()}
    dest = destination_mode or ("append_dedup" if mode == "incremental" else "overwrite")

    def mode_of(name: str) -> str:
        return mode if mode in by_name[name]["supported_sync_modes"] else "full_refresh"

    return {
        "streams": [
            {
                "stream": by_name[name],
                "sync_mode": mode_of(name),
                "destination_sync_mode": dest,
                "cursor_field": by_name[name].get("default_cursor_field", []),
                "primary_key": by_name[name]["source_defined_primary_key"],
            }
            for name in streams
        ]
    }


class Connector:
    """A config, catalog and state kept in a temp dir, for several syncs in a row."""

    def __init__(self, tmp_path: Path, emu: Any, **config_overrides: Any) -> None:
        self.dir = tmp_path
        self.emu = emu
        self.config = config_for(emu, **config_overrides)
        self.config_path = write_json(tmp_path / "config.json", self.config)
        self.state: list[dict[str, Any]] | None = None
        self.runs = 0

    def read(self, streams: list[str], mode: str = "incremental", *, state: Any = "saved", timeout: float = 240) -> CliRun:
        self.runs += 1
        catalog = write_json(self.dir / f"catalog{self.runs}.json", catalog_for(streams, mode))
        args = ["read", "--config", self.config_path, "--catalog", catalog]
        use_state = self.state if state == "saved" else state
        if use_state is not None:
            args += ["--state", write_json(self.dir / f"state{self.runs}.json", use_state)]
        run = run_cli(*args, timeout=timeout)
        if run.final_states():
            merged = {s["stream"]["stream_descriptor"]["name"]: s for s in (self.state or [])}
            merged.update({s["stream"]["stream_descriptor"]["name"]: s for s in run.final_states()})
            self.state = list(merged.values())
        return run

    def cli(self, command: str) -> CliRun:
        return run_cli(command, "--config", self.config_path)
