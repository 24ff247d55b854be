"""bench/sync_timeline.py: the episodes of high memory it reports, with what DuckDB did meanwhile."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import sync_timeline  # bench/ is not a package: its scripts import each other by name


def test_each_run_of_samples_above_the_line_is_one_episode_with_the_wal_and_file_around_it() -> None:
    samples = [
        (0.0, 100, 10, 0),
        (0.1, 150, 160, 0),  # a merge commits: the WAL jumps
        (0.2, 155, 160, 0),
        (0.3, 110, 160, 0),
        (0.4, 160, -1, 40),  # a checkpoint: the WAL is gone, the file grew
        (0.5, 170, -1, 80),  # the run ends inside an episode
    ]
    assert sync_timeline.episodes(samples, 140) == [
        {"from_s": 0.1, "to_s": 0.2, "peak_mib": 155, "wal_mib": [10, 160], "file_mib": [0, 0]},
        {"from_s": 0.4, "to_s": 0.5, "peak_mib": 170, "wal_mib": [160, -1], "file_mib": [0, 80]},
    ]
    assert sync_timeline.episodes(samples, 200) == []
