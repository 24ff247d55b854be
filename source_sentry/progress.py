"""Progress of a local sync, for people: a live table on a terminal, log lines elsewhere.

The CLI hands every Airbyte message to :meth:`SyncProgress.on_message` (it only reads them),
the count of records that came as bytes to :meth:`SyncProgress.on_records`, HTTP totals to
:meth:`SyncProgress.on_http`, and calls :meth:`SyncProgress.finish` once at the end, which
prints a summary: records per stream, duration, requests and 429 waits.
Nothing here writes stdout: stdout belongs to the protocol messages.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table

__all__ = ["SyncProgress"]

# Plain (non-terminal) output: one progress line per stream at most this often.
PLAIN_INTERVAL_SECONDS = 5.0


@dataclass
class _StreamProgress:
    records: int = 0
    status: str = "PENDING"
    states: int = 0


class SyncProgress:
    """Reports a sync's progress on ``stream`` (stderr by default).

    On a terminal: a live ``rich`` table (records and status per stream). Otherwise: plain lines,
    without ANSI codes, on status changes and about every 5 s. ``quiet``: only errors.
    """

    def __init__(self, streams: list[str], *, quiet: bool, stream: TextIO | None = None) -> None:
        self._out: TextIO = stream if stream is not None else sys.stderr
        self._quiet = quiet
        self._tty = bool(getattr(self._out, "isatty", lambda: False)())
        self._streams: dict[str, _StreamProgress] = {name: _StreamProgress() for name in streams}
        self._started = time.monotonic()
        self._last_plain = self._started
        self._http = {"requests": 0, "pages": 0, "rate_limit_waits": 0, "wait_seconds": 0.0}
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._console = Console(
            file=self._out,
            force_terminal=self._tty,
            no_color=not self._tty,
            highlight=False,
            width=None if self._tty else 100,
        )
        self._live: Live | None = None
        if self._tty and not quiet:
            self._live = Live(
                get_renderable=self._live_table, console=self._console, refresh_per_second=4, transient=True
            )
            self._live.start()

    # ---------------------------------------------------------------- inputs

    def on_message(self, message: dict[str, Any]) -> None:
        """Take one Airbyte message (as the reader emits it); never raises on odd shapes."""
        kind = message.get("type")
        with self._lock:
            if kind == "RECORD":
                self._stream(message.get("record", {}).get("stream")).records += 1
            elif kind == "STATE":
                descriptor = (message.get("state", {}).get("stream") or {}).get("stream_descriptor") or {}
                self._stream(descriptor.get("name")).states += 1
            elif kind == "TRACE":
                self._on_trace(message.get("trace") or {})
            elif kind == "LOG":
                log = message.get("log") or {}
                level = log.get("level", "INFO")
                if level in ("ERROR", "FATAL"):
                    self._error(f"{level}: {log.get('message')}")
                elif level == "WARN":
                    self._line(f"WARN: {log.get('message')}")
            self._maybe_plain_progress()

    def on_records(self, stream: str, count: int) -> None:
        """Take ``count`` records of ``stream`` that came as bytes (no message per record)."""
        with self._lock:
            self._stream(stream).records += count
            self._maybe_plain_progress()

    def on_http(self, requests: int, pages: int, rate_limit_waits: int, wait_seconds: float) -> None:
        """Totals so far (not increments) of HTTP requests, pages, 429 waits and seconds waited."""
        with self._lock:
            self._http.update(
                requests=requests, pages=pages, rate_limit_waits=rate_limit_waits, wait_seconds=wait_seconds
            )

    def finish(self, ok: bool) -> None:
        """Stop the live display and print the summary (only the outcome line when quiet)."""
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None
            elapsed = time.monotonic() - self._started
            if self._quiet:
                if not ok:
                    self._console.print(f"sync failed after {elapsed:.1f} s", markup=False)
                return
            self._console.print(self._summary_table(), markup=False)
            http = self._http
            self._console.print(
                f"{'sync finished' if ok else 'sync FAILED'} in {elapsed:.1f} s: "
                f"{sum(s.records for s in self._streams.values()):,} records, "
                f"{http['requests']:,} requests, {http['pages']:,} pages, "
                f"{http['rate_limit_waits']:,} rate-limit (429) waits ({http['wait_seconds']:.1f} s)",
                markup=False,
            )

    # ---------------------------------------------------------------- internals

    def _stream(self, name: Any) -> _StreamProgress:
        key = str(name)
        if key not in self._streams:
            self._streams[key] = _StreamProgress()
        return self._streams[key]

    def _on_trace(self, trace: dict[str, Any]) -> None:
        if trace.get("type") == "STREAM_STATUS":
            status = trace.get("stream_status") or {}
            name = (status.get("stream_descriptor") or {}).get("name")
            progress = self._stream(name)
            new = str(status.get("status"))
            if new != progress.status:
                progress.status = new
                self._line(f"{name}: {new} ({progress.records:,} records)")
        elif trace.get("type") == "ERROR":
            error = trace.get("error") or {}
            name = (error.get("stream_descriptor") or {}).get("name")
            prefix = f"{name}: " if name else ""
            self._error(f"ERROR {prefix}{error.get('message')} ({error.get('failure_type', 'system_error')})")

    def _line(self, text: str) -> None:
        """An event line: plain output only (the live table already shows it on a terminal)."""
        if self._quiet or self._tty:
            return
        self._console.print(f"[{time.monotonic() - self._started:7.1f}s] {text}", markup=False)

    def _error(self, text: str) -> None:
        self._errors.append(text)
        # Errors are printed even when quiet; above the live table on a terminal.
        self._console.print(text, markup=False, style="bold red" if self._tty else None)

    def _maybe_plain_progress(self) -> None:
        if self._quiet or self._tty:
            return
        now = time.monotonic()
        if now - self._last_plain < PLAIN_INTERVAL_SECONDS:
            return
        self._last_plain = now
        running = [f"{name} {s.records:,}" for name, s in self._streams.items() if s.status not in ("COMPLETE",)]
        total = sum(s.records for s in self._streams.values())
        self._line(f"progress: {total:,} records; " + (", ".join(running) if running else "all streams complete"))

    def _live_table(self) -> Table:
        elapsed = time.monotonic() - self._started
        table = Table(
            title=f"source-sentry sync  {elapsed:5.0f} s  requests {self._http['requests']:,}  "
            f"429 waits {self._http['rate_limit_waits']:,}",
            box=box.SIMPLE,
        )
        table.add_column("stream")
        table.add_column("records", justify="right")
        table.add_column("states", justify="right")
        table.add_column("status")
        styles = {"COMPLETE": "green", "INCOMPLETE": "red", "RUNNING": "cyan", "STARTED": "cyan"}
        for name, progress in self._streams.items():
            table.add_row(
                name, f"{progress.records:,}", f"{progress.states:,}", progress.status, style=styles.get(progress.status)
            )
        return table

    def _summary_table(self) -> Table:
        table = Table(title="sync summary", box=box.SIMPLE if self._tty else box.ASCII)
        table.add_column("stream")
        table.add_column("records", justify="right")
        table.add_column("status")
        for name, progress in self._streams.items():
            table.add_row(name, f"{progress.records:,}", progress.status)
        return table
