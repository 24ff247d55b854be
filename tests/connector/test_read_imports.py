"""A read imports what it needs once: no module is searched for again and again on the hot path
(httpcore imports sniffio inside every request; without it installed, each request searched
sys.path for it and failed, about 10 % of a read's CPU)."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from connector_helpers import catalog_for

from source_sentry.config import parse_config
from source_sentry.read import run_read


class _Searches:
    """A finder at the end of sys.meta_path: every import that no other finder satisfied."""

    def __init__(self) -> None:
        self.missed: Counter[str] = Counter()

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        self.missed[name] += 1
        return None


def test_a_read_of_many_pages_searches_for_no_module_per_request(make_emulator: Any) -> None:
    emu = make_emulator(projects=1, events_per_project=300, issues_per_project=20)
    config = parse_config({"auth_token": emu.token, "organization": emu.organization, "hostname": emu.base_url})
    records: list[Any] = []

    def emit(message: dict[str, Any]) -> None:
        if message["type"] == "RECORD":
            records.append(message)

    searches = _Searches()
    sys.meta_path.append(searches)
    try:
        asyncio.run(run_read(config, catalog_for(["events"]), [], emit))
    finally:
        sys.meta_path.remove(searches)
    requests = len(records) // 10  # a page of full events holds 10
    assert requests >= 20
    # A module nobody has may be looked for once or twice (an optional speed-up); not per request.
    assert {name: n for name, n in searches.missed.items() if n > 3} == {}
