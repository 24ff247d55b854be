"""Airbyte protocol messages: builders for each message type and the stdout writer.

This module is the only writer of stdout in ``read``/``check``/``discover``/``spec``.
Messages are plain dicts shaped exactly as the protocol's JSON, serialized with orjson.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, BinaryIO

import orjson

from .errors import redact_bytes

__all__ = [
    "Emit",
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
    return {"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": emitted_at}}


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

    def many(self, messages: list[Message]) -> None:
        """Write several messages with one redaction pass and one write (a page of records)."""
        dumps = orjson.dumps
        self._out.write(redact_bytes(b"\n".join([dumps(m) for m in messages]) + b"\n"))

    def flush(self) -> None:
        self._out.flush()
