"""Process memory settings: the heap trimmer runs beside a read and never outlives it."""

from __future__ import annotations

import asyncio
import sys

import pytest

from source_sentry import memory


async def _tasks_after(work: object) -> tuple[object, int]:
    result = await memory.trimming_heap(work)  # type: ignore[arg-type]
    await asyncio.sleep(0)  # let a cancelled task finish
    return result, len(asyncio.all_tasks()) - 1


def test_the_trimmer_returns_the_reads_result_and_stops_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    trimmed_five_times = asyncio.Event()
    real = memory._malloc_trim()

    def trim(pad: int) -> int:
        calls.append(pad)
        if len(calls) == 5:
            trimmed_five_times.set()
        return real(pad) if real else 0

    monkeypatch.setattr(memory, "_TRIM_PERIOD_SECONDS", 0.01)
    monkeypatch.setattr(memory, "_malloc_trim", lambda: trim)

    async def read() -> str:
        # The read lasts until the trimmer ran 5 times beside it (pytest-timeout if it never does).
        await trimmed_five_times.wait()
        return "done"

    result, left = asyncio.run(_tasks_after(read()))
    assert result == "done" and left == 0
    assert set(calls) == {0}


def test_the_trimmer_lets_a_failure_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_TRIM_PERIOD_SECONDS", 0.01)

    async def read() -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(_tasks_after(read()))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_glibc_malloc_trim_is_found_on_linux() -> None:
    trim = memory._malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)
