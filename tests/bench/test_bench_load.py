"""bench/bench_load.py: its count of the RECORD lines a ``read`` wrote, chunk by chunk, from a real
pipe, and the server CPU it measures beside a run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_load  # bench/ is not a package: its scripts import each other by name

LINE = b'{"type":"RECORD","record":{"stream":"events","data":{"id":"1"},"emitted_at":1}}\n'


@pytest.mark.parametrize("cut", [0, 1, 8, 15, 16, 17, 20, len(LINE) - 1])
def test_every_record_line_is_counted_once_wherever_the_pipe_cuts_it(cut: int) -> None:
    # The reader takes what the pipe holds: each write a chunk of its own, cut ``cut`` bytes into
    # a line (a mark at a chunk's very end was counted twice with a 20-byte tail).
    lines = 50
    data = LINE * lines
    chunks = [data[:len(LINE) * 10 + cut], data[len(LINE) * 10 + cut:len(LINE) * 30 - cut], data[len(LINE) * 30 - cut:]]
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        counter = bench_load._Counter(pipe)

        def write() -> None:
            with os.fdopen(write_end, "wb", buffering=0) as out:
                for chunk in chunks:
                    out.write(chunk)
                    time.sleep(0.05)  # the reader drains each before the next comes

        writer = threading.Thread(target=write)
        writer.start()
        counter.start()
        writer.join()
        counter.join(10)
    assert counter.records == lines


def test_a_run_reports_the_cpu_the_server_used_meanwhile(tmp_path: Path) -> None:
    # A real "server" process that spends 0.4 CPU s while the measured command runs, and the
    # measured command itself, which only waits for the server to be done.
    done = tmp_path / "done"
    server = subprocess.Popen([sys.executable, "-c",
                               "import pathlib, sys, time\nend = time.process_time() + 0.4\n"
                               "while time.process_time() < end: pass\npathlib.Path(sys.argv[1]).touch()\ntime.sleep(60)",
                               str(done)])
    try:
        wait = f"import os, time\nwhile not os.path.exists({str(done)!r}): time.sleep(0.01)"
        result = bench_load.run_measured([sys.executable, "-c", wait], subprocess.DEVNULL, server=server.pid)
    finally:
        server.kill()
        server.wait()
    assert result["exit_code"] == 0
    assert 0.3 <= result["server_cpu_seconds"] <= 0.6
    assert result["cpu_seconds"] < 0.3
    # Gone: no figure, rather than a wrong one.
    assert bench_load._cpu_seconds(server.pid) is None
