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
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

__all__ = ["FAULT_KINDS", "POST_KINDS", "PRE_KINDS", "Fault", "FaultTable"]

# Faults answered instead of running the endpoint.
PRE_KINDS = {"429", "reset", "stall", "html", "html_200", "redirect_other_host", "echo_token_400", "echo_token_500"}
# Faults that mangle the real response of the endpoint.
POST_KINDS = {"truncated_json", "invalid_json", "empty_200", "link_other_host", "short_body", "echo_token",
              "echo_token_link", "region_other_host"}
FAULT_KINDS = PRE_KINDS | POST_KINDS | {"NNN (any HTTP status, e.g. 500, 502, 503, 504)"}


@dataclass
class Fault:
    kind: str
    path: re.Pattern[str]
    times: int  # remaining applications; <0 means forever
    after: int  # matching requests still to let through first
    seconds: float = 30.0  # stall duration

    @property
    def status(self) -> int | None:
        return int(self.kind) if self.kind.isdigit() and len(self.kind) == 3 else None


class FaultTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, kind: str, path: str = ".*", times: int = 1, after: int = 0, seconds: float = 30.0) -> Fault:
        if not (kind in PRE_KINDS or kind in POST_KINDS or (kind.isdigit() and len(kind) == 3)):
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(kind, re.compile(path), times, after, seconds)
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
            return [{"kind": f.kind, "path": f.path.pattern, "times": f.times, "after": f.after}
                    for f in self._faults]
