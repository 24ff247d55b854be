"""Process memory settings for a long read: fewer collector passes, a heap kept trimmed.

A read allocates and frees page-sized buffers (hundreds of kilobytes) and many short-lived
dicts for as long as it runs. glibc keeps freed heap memory resident, and the heap fragments
with the number of pages: peak RSS grew from 37 MB at 10k events to 47 MB at 1M, measured.
Handing free heap pages back once a second keeps it flat (40 MB at 1M) for no measurable CPU.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["trimming_heap", "tune_gc"]

T = TypeVar("T")

_TRIM_PERIOD_SECONDS = 1.0


def tune_gc() -> None:
    """Fewer garbage-collector passes: a read allocates many short-lived dicts (a page of
    records at a time) and few cycles; the modules loaded so far never need scanning."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(5000, 20, 20)


async def trimming_heap(work: Awaitable[T]) -> T:
    """Await ``work`` while returning the C heap's free pages to the system every second."""
    trim = _malloc_trim()
    if trim is None:
        return await work

    async def keep_trimmed() -> None:
        while True:
            await asyncio.sleep(_TRIM_PERIOD_SECONDS)
            trim(0)

    task = asyncio.ensure_future(keep_trimmed())
    try:
        return await work
    finally:
        task.cancel()


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None elsewhere (other allocators return memory themselves)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return None
    return trim
