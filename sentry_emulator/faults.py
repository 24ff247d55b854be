"""Injected faults: what a proxy, a flaky network or an overloaded Sentry does to a request.

Kinds that test the connector's handling of its secret and of other hosts:

- ``redirect_other_host``: 302 with ``Location`` on 127.0.0.2, same port, same path and query
  (a second emulator bound there sees whether the token followed the redirect);
- ``echo_token``: a valid response whose first item (or the object) carries the request's whole
  ``Authorization`` header value in ``title`` (added when missing) and ``permalink`` (a URL
  with ``?auth=<value>``);
- ``echo_token_link``: a valid page whose ``Link`` URLs carry ``&auth=<value>`` in their query;
- ``echo_token_400`` / ``echo_token_500``: an error whose ``detail`` quotes the header value;
- ``region_other_host``: a valid organization whose ``links.regionUrl`` and ``organizationUrl``
  point at 127.0.0.2 on the same port.

Kinds where a server lies while answering 200 (the body mangling lives here as pure functions
over the JSON bytes; `server.py` applies them and the wire kinds):

- pagination: ``no_link``, ``garbled_link``, ``results_true_no_cursor``, ``endless_cursor``,
  ``endless_empty``;
- wire: ``drip`` (the body at ``bytes_per_second``), ``bad_gzip`` (``Content-Encoding: gzip`` on
  plain JSON), ``chunked`` (odd chunks, an extension, a trailer), ``close_delimited`` (no
  length: the body ends when the connection does);
- records: ``odd_record``, ``no_id``;
- the JSON text: ``python_json`` (Python's ``json`` defaults: spaces, ASCII escapes),
  ``pretty_json`` (indented: line breaks between tokens), ``invalid_utf8`` (a byte that is
  no UTF-8), ``echo_token_escaped`` (the token in a record, every character a ``\\u00XX`` escape);
- data moving under the client: ``delete_after_page``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "ENDLESS_KINDS",
    "FAULT_KINDS",
    "GARBLED_LINK",
    "ODD_BIGINT",
    "ODD_HUGE_LEN",
    "POST_KINDS",
    "PRE_KINDS",
    "Fault",
    "FaultTable",
    "escape_all",
    "fresh_serial",
    "invalid_utf8",
    "link_next_without_cursor",
    "no_id",
    "odd_record",
    "parse_fault_spec",
    "pretty_json",
    "python_json",
]

# Faults answered instead of running the endpoint.
PRE_KINDS = {"429", "reset", "stall", "html", "html_200", "redirect_other_host", "echo_token_400", "echo_token_500"}
# Faults that mangle the real response of the endpoint (or its delivery).
POST_KINDS = {"truncated_json", "invalid_json", "empty_200", "link_other_host", "short_body", "echo_token",
              "echo_token_link", "region_other_host",
              "no_link", "garbled_link", "results_true_no_cursor", "endless_cursor", "endless_empty",
              "drip", "bad_gzip", "chunked", "close_delimited", "odd_record", "no_id", "delete_after_page",
              "python_json", "pretty_json", "invalid_utf8", "echo_token_escaped"}
ENDLESS_KINDS = {"endless_cursor", "endless_empty"}
FAULT_KINDS = PRE_KINDS | POST_KINDS | {"NNN (any HTTP status, e.g. 500, 502, 503, 504)"}

# An unterminated URI reference with unquoted, space-separated parameters: RFC 8288 parsers
# (and httpx's lenient one) find no usable `rel` in it.
GARBLED_LINK = "<broken; rel=next results=true"
ODD_BIGINT = 2**70  # beyond 64 bits: Python's json reads it exactly, orjson as a float
ODD_HUGE_LEN = 1 << 20  # characters in the 1 MB string of odd_record
_SURROGATE_TOKEN = "__sentry_emulator_lone_surrogate__"
_BIGINT_TOKEN = "__sentry_emulator_bigint__"
_serials = itertools.count(1)


@dataclass
class Fault:
    kind: str
    path: re.Pattern[str]
    times: int  # remaining applications; <0 means forever
    after: int  # matching requests still to let through first
    seconds: float = 30.0  # stall duration
    bytes_per_second: float = 20.0  # drip rate
    # endless_cursor: the page first served, per request path (the same page forever after).
    pages: dict[str, bytes] = field(default_factory=dict, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def status(self) -> int | None:
        return int(self.kind) if self.kind.isdigit() and len(self.kind) == 3 else None


class FaultTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, kind: str, path: str = ".*", times: int = 1, after: int = 0, seconds: float = 30.0,
            bytes_per_second: float = 20.0) -> Fault:
        if not (kind in PRE_KINDS or kind in POST_KINDS or (kind.isdigit() and len(kind) == 3)):
            raise ValueError(f"unknown fault kind {kind!r}")
        if bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be positive")
        fault = Fault(kind, re.compile(path), times, after, seconds, bytes_per_second)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str) -> Fault | None:
        """The fault to apply to this request, consuming one use; `after` skips count per fault."""
        with self._lock:
            chosen = None
            for fault in self._faults:
                if fault.times == 0 or not fault.path.search(path):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                if chosen is None:
                    chosen = fault
                    fault.times -= 1 if fault.times > 0 else 0
            self._faults = [f for f in self._faults if f.times != 0]
            return chosen

    def pending(self) -> list[dict[str, object]]:
        with self._lock:
            return [{"kind": f.kind, "path": f.path.pattern, "times": f.times, "after": f.after,
                     "seconds": f.seconds, "bytes_per_second": f.bytes_per_second} for f in self._faults]


def parse_fault_spec(spec: str) -> tuple[str, str, int]:
    """`KIND[:PATH_REGEX[:TIMES]]` -> (kind, path, times). The path may hold colons: TIMES is the
    last field only when there are three or more and it is an integer."""
    kind, _, rest = spec.partition(":")
    path, times = rest or ".*", 1
    head, sep, tail = rest.rpartition(":")
    if sep and re.fullmatch(r"-?\d+", tail):
        path, times = head or ".*", int(tail)
    if not kind:
        raise ValueError(f"fault spec without a kind: {spec!r}")
    return kind, path, times


def fresh_serial() -> int:
    """A number never handed out before in this process (endless cursors never repeat)."""
    return next(_serials)


def link_next_without_cursor(link: str) -> str:
    """The `Link` value with its `next` part stripped of every cursor (URL param and attribute)
    and forced to `results="true"`; other parts untouched."""
    parts = re.split(r",\s*(?=<)", link)
    out = []
    for part in parts:
        if 'rel="next"' in part:
            part = re.sub(r"[?&]cursor=[^&>]*", "", part)
            part = part.replace("?>", ">")
            part = re.sub(r'; cursor="[^"]*"', "", part)
            part = part.replace('results="false"', 'results="true"')
        out.append(part)
    return ", ".join(out)


def _first_record(body: Any) -> dict[str, Any] | None:
    if isinstance(body, list):
        return next((x for x in body if isinstance(x, dict)), None)
    return body if isinstance(body, dict) else None


def _case_twin(record: dict[str, Any]) -> str:
    """`Title` when the record has `title`; else the first key whose capitalised form is new."""
    if "title" in record and "Title" not in record:
        return "Title"
    for key in record:
        twin = key[:1].upper() + key[1:]
        if twin != key and twin not in record:
            return twin
    return "ID" if "ID" not in record else "Id"


def odd_record(body: bytes) -> bytes:
    """The JSON body with its first record (or the object) given five odd fields: `""` (empty
    key), a case twin of an existing key, `oddSurrogate` (a string with the JSON escape `\\ud800`,
    a lone surrogate), `oddHuge` (1 MB string) and `oddNested.bigint` (2**70). Unchanged when
    the body is not JSON or holds no object."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    record = _first_record(data)
    if record is None:
        return body
    twin = _case_twin(record)
    record[""] = "odd: empty key"
    record[twin] = f"odd: case twin of {twin.lower()!r}"
    record["oddSurrogate"] = _SURROGATE_TOKEN
    record["oddHuge"] = "x" * ODD_HUGE_LEN
    record["oddNested"] = {"bigint": _BIGINT_TOKEN}
    # orjson refuses to write either value, so they are spliced into the text it wrote.
    text = orjson.dumps(data)
    text = text.replace(f'"{_SURROGATE_TOKEN}"'.encode(), b'"lone \\ud800 surrogate"', 1)
    return text.replace(f'"{_BIGINT_TOKEN}"'.encode(), str(ODD_BIGINT).encode(), 1)


def python_json(body: bytes) -> bytes:
    """The same JSON as Python's ``json.dumps`` writes it by default: ``", "`` and ``": "``
    between tokens, every non-ASCII character a ``\\uXXXX`` escape. Unchanged when not JSON."""
    try:
        return json.dumps(orjson.loads(body)).encode()
    except orjson.JSONDecodeError:
        return body


def pretty_json(body: bytes) -> bytes:
    """The same JSON indented by two spaces: a line break between every two tokens."""
    try:
        return json.dumps(orjson.loads(body), indent=2, ensure_ascii=False).encode()
    except orjson.JSONDecodeError:
        return body


def invalid_utf8(body: bytes) -> bytes:
    """The body with the byte 0xFF (never part of UTF-8) at the start of its last string value
    written ``"key":"value"`` (in a list of full events: deep in the last event)."""
    at = body.rfind(b'":"')
    return body if at < 0 else body[: at + 3] + b"\xff" + body[at + 3 :]


def escape_all(text: str) -> bytes:
    """``text`` as the inside of a JSON string with every character a ``\\uXXXX`` escape."""
    return "".join(f"\\u{ord(c):04x}" for c in text).encode()


def no_id(body: bytes) -> bytes:
    """The first record loses its `id` key and the second gets `"id": null` (an object: no `id`)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    records = [x for x in data if isinstance(x, dict)] if isinstance(data, list) else [data]
    if records and isinstance(records[0], dict):
        records[0].pop("id", None)
    if len(records) > 1:
        records[1]["id"] = None
    return orjson.dumps(data)
