"""Airbyte protocol messages: builders for each message type, the stdout writer, and the
per-sync bookkeeping of what a read emits (:class:`Output`).

This module is the only writer of stdout in ``read``/``check``/``discover``/``spec``.
Messages are plain dicts shaped exactly as the protocol's JSON, serialized with orjson.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

import orjson

from .errors import SentrySourceError, redact, redact_bytes

__all__ = [
    "CHANGES",
    "Emit",
    "Output",
    "RawItem",
    "RecordSink",
    "StdoutWriter",
    "catalog_message",
    "connection_status",
    "error_trace",
    "log_message",
    "now_ms",
    "record_message",
    "spec_message",
    "state_message",
    "stream_status",
]

Message = dict[str, Any]
Emit = Callable[[Message], None]


class RecordSink(Protocol):
    """An emitter that also takes records as bytes: ``data`` holds the JSON of each record's
    ``data`` object, written as it is (no record passes through Python objects on the way)."""

    def __call__(self, message: Message) -> None: ...

    def records(self, stream: str, data: list[bytes], emitted_at: int) -> None: ...

# The key under which a record's data carries the changes made to read it (Airbyte's
# ``meta.changes``; set by :mod:`source_sentry.http.body`). A NUL byte never starts a key in
# Sentry's JSON; :func:`record_message` pops it before anything else sees the record.
CHANGES = "\x00changes"


class RawItem(dict[str, Any]):
    """A list item read for its head only: the fields the connector looks at, as a dict, and
    the item's whole JSON as Sentry wrote it (``raw``), which goes out as the record's data.
    Made by :func:`source_sentry.http.body.raw_items`; never serialised as a dict."""

    __slots__ = ("raw",)
    raw: bytes


def now_ms() -> int:
    """The current time as epoch milliseconds, as ``emitted_at`` wants it."""
    return int(time.time() * 1000)


def spec_message(spec: dict[str, Any]) -> Message:
    return {"type": "SPEC", "spec": spec}


def connection_status(succeeded: bool, message: str | None = None) -> Message:
    status: dict[str, Any] = {"status": "SUCCEEDED" if succeeded else "FAILED"}
    if message:
        status["message"] = message
    return {"type": "CONNECTION_STATUS", "connectionStatus": status}


def catalog_message(streams: list[dict[str, Any]]) -> Message:
    return {"type": "CATALOG", "catalog": {"streams": streams}}


def record_message(stream: str, data: dict[str, Any], emitted_at: int) -> Message:
    """A RECORD; a record that had to be changed to be read carries its changes under
    :data:`CHANGES`, which go to the message's ``meta``."""
    changes = data.pop(CHANGES, None) if CHANGES in data else None
    record: dict[str, Any] = {"stream": stream, "data": data, "emitted_at": emitted_at}
    if changes:
        record["meta"] = {"changes": changes}
    return {"type": "RECORD", "record": record}


def state_message(stream: str, stream_state: dict[str, Any], record_count: int) -> Message:
    return {
        "type": "STATE",
        "state": {
            "type": "STREAM",
            "stream": {"stream_descriptor": {"name": stream}, "stream_state": stream_state},
            "sourceStats": {"recordCount": float(record_count)},
        },
    }


def stream_status(stream: str, status: str) -> Message:
    """A STREAM_STATUS trace; ``status`` is STARTED, RUNNING, COMPLETE or INCOMPLETE."""
    return {
        "type": "TRACE",
        "trace": {
            "type": "STREAM_STATUS",
            "emitted_at": float(now_ms()),
            "stream_status": {"stream_descriptor": {"name": stream}, "status": status},
        },
    }


def error_trace(
    message: str,
    failure_type: str,
    *,
    internal_message: str | None = None,
    stack_trace: str | None = None,
    stream: str | None = None,
) -> Message:
    error: dict[str, Any] = {"message": message, "failure_type": failure_type}
    if internal_message:
        error["internal_message"] = internal_message
    if stack_trace:
        error["stack_trace"] = stack_trace
    if stream:
        error["stream_descriptor"] = {"name": stream}
    return {"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": float(now_ms()), "error": error}}


def log_message(level: str, message: str) -> Message:
    """A LOG message; ``level`` is one of FATAL, ERROR, WARN, INFO, DEBUG, TRACE."""
    return {"type": "LOG", "log": {"level": level, "message": message}}


class StdoutWriter:
    """Writes one message per line to a binary stream, redacting registered secrets.

    The redaction check is a single substring search per line, cheap enough for the
    record hot path; it catches a token a server echoed back inside a record.
    """

    def __init__(self, out: BinaryIO | None = None) -> None:
        # A large buffer: a page of full events is hundreds of kilobytes.
        # Not a context manager: the writer lives as long as the process, and fd 1 stays open.
        self._out = out if out is not None else open(sys.stdout.fileno(), "wb", buffering=1 << 20, closefd=False)  # noqa: SIM115

    def __call__(self, message: Message) -> None:
        self._out.write(redact_bytes(orjson.dumps(message)) + b"\n")
        if message.get("type") != "RECORD":
            # A state (or status, log, error) goes out now: the platform checkpoints on it.
            self._out.flush()

    def records(self, stream: str, data: list[bytes], emitted_at: int) -> None:
        """Write one RECORD per item of ``data`` (each the JSON of a record's ``data`` object),
        the envelope around the item's own bytes, with one redaction pass and one write."""
        head = b'{"type":"RECORD","record":{"stream":' + orjson.dumps(stream) + b',"data":'
        tail = b',"emitted_at":' + str(emitted_at).encode() + b"}}"
        self._out.write(redact_bytes(head + (tail + b"\n" + head).join(data) + tail + b"\n"))

    def flush(self) -> None:
        self._out.flush()


class Output:
    """One read's messages: records counted per stream between states, a stream's RUNNING status
    sent once before its first record or state, logs and errors redacted."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self.records_per_stream: dict[str, int] = {}
        self._since_state: dict[str, int] = {}
        self._running: set[str] = set()

    def status(self, stream: str, status: str) -> None:
        self._emit(stream_status(stream, status))

    def _mark_running(self, stream: str) -> None:
        if stream not in self._running:
            self._running.add(stream)
            self.status(stream, "RUNNING")

    def records(self, stream: str, items: list[dict[str, Any]]) -> None:
        """Emit ``items`` as ``stream``'s records (a record with changes carries them in meta)."""
        if not items:
            return
        sink = getattr(self._emit, "records", None)
        if sink is not None and not any(CHANGES in item for item in items):
            dumps = orjson.dumps
            self.raw_records(stream, [item.raw if type(item) is RawItem else dumps(item) for item in items])
            return
        self._mark_running(stream)
        emitted_at = now_ms()
        for item in items:
            data = orjson.loads(item.raw) if type(item) is RawItem else item
            self._emit(record_message(stream, data, emitted_at))
        self._count(stream, len(items))

    def raw_records(self, stream: str, data: list[bytes]) -> None:
        """Emit records given as the JSON bytes of each one's ``data`` object: as they are to a
        :class:`RecordSink`, as RECORD messages to any other emitter."""
        if not data:
            return
        self._mark_running(stream)
        emitted_at = now_ms()
        sink = getattr(self._emit, "records", None)
        if sink is not None:
            sink(stream, data, emitted_at)
        else:
            for item in data:
                self._emit(record_message(stream, orjson.loads(item), emitted_at))
        self._count(stream, len(data))

    def _count(self, stream: str, n: int) -> None:
        self._since_state[stream] = self._since_state.get(stream, 0) + n
        self.records_per_stream[stream] = self.records_per_stream.get(stream, 0) + n

    def state(self, stream: str, stream_state: dict[str, Any]) -> None:
        self._mark_running(stream)
        self._emit(state_message(stream, stream_state, self._since_state.pop(stream, 0)))

    def log(self, level: str, message: str) -> None:
        self._emit(log_message(level, redact(message)))

    def error(self, exc: BaseException, stream: str | None = None) -> None:
        if isinstance(exc, SentrySourceError):
            message, failure_type, internal = exc.message, exc.failure_type, exc.internal
            stack = None
        else:
            message = f"Unexpected error{f' in stream {stream}' if stream else ''}: {type(exc).__name__}: {exc}"
            failure_type, internal = "system_error", repr(exc)
            stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self._emit(
            error_trace(
                redact(message),
                failure_type,
                internal_message=redact(internal),
                stack_trace=redact(stack) if stack else None,
                stream=stream,
            )
        )
