"""DuckDB's own progress bar never reaches stdout: it printed one for every statement over 2 s (a
large merge, a checkpoint of a 1M-event sync) into `sync --quiet`'s output, beside our progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from source_sentry.destination.duckdb import connect_database


def test_a_long_statement_on_the_destinations_connection_prints_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    con = connect_database(str(tmp_path / "sync.duckdb"))
    try:
        # A bar from the first moment (this turns the bar itself back on), and a statement long
        # enough to draw one: without the destination's settings this prints a few kilobytes.
        con.execute("SET progress_bar_time = 0")
        assert con.execute("SELECT count(DISTINCT range % 1000003) FROM range(20000000)").fetchall() == [(1000003,)]
    finally:
        con.close()
    out, _ = capfd.readouterr()
    assert out == ""
