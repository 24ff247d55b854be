"""bench/run.py's measure of one connector process: its peak RSS is the process's own, not the
benchmark runner's that forked it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import run as bench  # bench/ is not a package: its scripts import each other by name


def test_a_small_process_forked_from_a_big_runner_measures_small() -> None:
    # Linux carries a process's RSS high-water mark across exec: wait4's ru_maxrss of a child
    # forked from a runner holding 200 MB is over 200 MB, whatever the child uses (the memory
    # scenario reported the runner's 43.6 MB as the read's peak at every size).
    ballast = bytearray(200 * 1024 * 1024)
    ballast[::4096] = b"\x01" * (len(ballast) // 4096)  # touch every page: resident
    child = "import time; block = bytearray(30 * 1024 * 1024); block[::4096] = b'1' * (len(block) // 4096); time.sleep(0.3)"
    result = bench.run_process([sys.executable, "-c", child], timeout=60)
    assert result["rc"] == 0
    assert 30 < result["maxrss_mb"] < 100, result["maxrss_mb"]
    del ballast
