"""bench/run.py's Targets table (issue 19), rendered from saved results: no measuring, no emulator."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import run  # noqa: E402 - bench/ is not a package: its scripts import each other by name
import targets  # noqa: E402

FIXTURE = Path(__file__).with_name("targets_results.json")


@pytest.fixture
def results() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def _rows(text: str) -> dict[str, list[str]]:
    """The Targets table's rows by target name: [measured, target, met?, reproduce]."""
    table = text.split(targets.HEADING, 1)[1]
    cells = [line.strip("|").split(" | ") for line in table.splitlines() if line.startswith("| ")]
    return {c[0].strip(): [x.strip() for x in c[1:]] for c in cells[1:]}


def _verdicts(results: dict[str, Any]) -> dict[str, str]:
    rows = _rows(targets.render_targets(results))
    assert len(rows) == len(targets.TARGETS)
    return {t.judge.__name__: rows[t.name][2] for t in targets.TARGETS}


def test_each_target_is_met_or_not_met_by_its_measured_value(results: dict[str, Any]) -> None:
    assert _verdicts(results) == {
        "spec": "met",  # 4.0 / 0.05 = 80x, at least 40x
        "cpu": "**not met**",  # 12 / 1.5 = 8x, not 10x
        "margin": "**not met**",  # (80 - 8) / (10 - 1) = 8x at the margin, not 15x
        "sync_over_read": "**not met**",  # 1.6x at 100k (1.2x at 10k is not judged)
        "sync_peak": "**not met**",  # 153.4 MB at 100k
        "read_peak": "met",  # 47 MB at most
        "pyairbyte": "**not met**",  # 3.25x at 10k, 1.17x at 100k
        "events_per_minute": "met",  # 21,328 against 1,381: 15.4x
        "no_429": "met",  # ours 0 everywhere (the peer's 8 do not count)
        "within_bound": "**not met**",  # 1.081x in one run of two
        "flat_read": "met",  # 47 / 40 = 1.18x
    }
    rows = _rows(targets.render_targets(results))
    assert rows[targets.TARGETS[0].name][0] == "0.050 s against the peer's 4.000 s (median wall): **80.0x**"
    assert rows[targets.TARGETS[0].name][3] == "`.venv/bin/python bench/run.py --only spec`"
    assert "the peer 8 in all" in rows["429 responses (ours, rate-limited runs)"][0]


def test_better_numbers_turn_rows_met(results: dict[str, Any]) -> None:
    s = results["scenarios"]
    s["cpu"]["ours"]["cpu_s_per_10k"] = 1.2  # 10x
    s["sync"]["sizes"]["100000"]["median"]["sync_over_read_wall"] = 1.3  # the limit itself is met
    s["sync"]["sizes"]["100000"]["median"]["sync"]["peak_rss_mib_vmhwm"] = 149.9
    s["events_paths"]["paths"]["issue by issue"][0]["wall_to_start_bound"] = 1.05
    s["full_sync"]["ours"]["requests"]["429"] = 1  # one 429 anywhere is not met
    verdicts = _verdicts(results)
    assert verdicts["cpu"] == verdicts["sync_over_read"] == verdicts["sync_peak"] == verdicts["within_bound"] == "met"
    assert verdicts["no_429"] == "**not met**"


def test_targets_not_in_the_results_say_so(results: dict[str, Any]) -> None:
    partial = copy.deepcopy(results)
    for name in ("sync", "events_paths", "full_sync"):
        del partial["scenarios"][name]
    partial["scenarios"]["cpu"] = {"failed": "RuntimeError: the emulator did not start"}
    del partial["scenarios"]["spec"]["peer"]  # a --no-peer run
    rows = _rows(targets.render_targets(partial))
    verdicts = {t.judge.__name__: rows[t.name] for t in targets.TARGETS}
    for name in ("spec", "cpu", "sync_over_read", "sync_peak", "pyairbyte", "events_per_minute", "no_429", "within_bound"):
        assert verdicts[name][2] == "not measured", name
        assert verdicts[name][0].startswith("not measured"), name
    assert "--no-peer" in verdicts["spec"][0]
    assert "failed (RuntimeError: the emulator did not start)" in verdicts["cpu"][0]
    assert verdicts["read_peak"][2] == "met"

    results["scenarios"]["sync"]["pyairbyte_not_measured"] = "PyAirbyte could not be installed (AssertionError: no index)"
    assert "no index" in _rows(targets.render_targets(results))[targets.TARGETS[6].name][0]


def test_a_quick_run_judges_no_target_at_sizes_it_did_not_read(results: dict[str, Any]) -> None:
    results["quick"] = True
    del results["scenarios"]["sync"]["sizes"]["100000"]
    del results["scenarios"]["memory"]["peer"]["100000"]
    text = targets.render_targets(results)
    rows = _rows(text)
    assert rows[targets.TARGETS[3].name][0].startswith("not measured at 100,000 events or more (measured 10,000: **1.20x**)")
    assert rows[targets.TARGETS[3].name][2] == "not measured"
    assert rows[targets.TARGETS[2].name][2] == "not measured"
    assert all(r[3].endswith(" --quick`") for r in rows.values())


def test_report_rewrites_the_docs_from_saved_json(results: dict[str, Any], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(results))
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\n{run.START}\nold\n{run.END}\n\n## Targets\n")
    monkeypatch.setattr(run, "DOCS", doc)
    monkeypatch.setattr(sys, "argv", ["run.py", "--report", "--write-docs", "--out", str(saved)])
    assert run.main() == 0
    text = doc.read_text()
    assert "old" not in text and text.endswith(f"{run.END}\n\n## Targets\n")
    section = text.split(run.START)[1].split(run.END)[0]
    assert "| `spec` wall time, median (s) | 0.050 | 4.000 | 80.0x |" in section  # the results table as before
    assert "| 100,000 | 30.0 s, 10.0 CPU s, 39.0 MB | 48.0 s, 48.0 CPU s, 153.4 MB | 1.6x (4.8x) |" in section
    assert "| project list, peer | 600 |" in section  # the events paths' runs, the peer's too
    assert len(_rows(section)) == len(targets.TARGETS)
    assert section.strip() in capsys.readouterr().out
