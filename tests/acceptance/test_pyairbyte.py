"""PyAirbyte runs the connector: `ab.get_source(..., local_executable=<our console script>)`,
check, select every stream, read into a DuckDB cache, and the rows are the emulator's data.

PyAirbyte (PyPI package `airbyte`) is installed once into its own venv, cached at
$SOURCE_SENTRY_PYAIRBYTE_VENV (default /tmp/source-sentry-pyairbyte-venv-pyX.Y); the install
takes about a minute. Deselected by default: run with `-m pyairbyte`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

import pytest
from acceptance_helpers import config_for

from source_sentry.streams import STREAMS

pytestmark = [pytest.mark.pyairbyte, pytest.mark.timeout(1200)]

REQUIREMENT = "airbyte>=0.20"
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
VENV = Path(os.environ.get("SOURCE_SENTRY_PYAIRBYTE_VENV", f"/tmp/source-sentry-pyairbyte-venv-py{PY}"))

SCRIPT = r'''
import json, sys
import airbyte as ab

args = json.loads(sys.argv[1])
source = ab.get_source("source-sentry", local_executable=args["executable"], config=args["config"])
source.check()
if args["streams"]:
    source.select_streams(args["streams"])
else:
    source.select_all_streams()
cache = ab.DuckDBCache(db_path=args["db"])
result = source.read(cache=cache)
out = {}
for name, dataset in result.streams.items():
    frame = dataset.to_pandas()
    out[name] = {"count": len(frame), "ids": sorted(str(v) for v in frame["id"])}
print("RESULT " + json.dumps(out))
'''


def _pyairbyte_python() -> Path:
    python = VENV / "bin" / "python"
    stamp = VENV / ".source-sentry-stamp"
    if python.exists() and stamp.exists() and stamp.read_text() == REQUIREMENT:
        print(f"PyAirbyte venv reused: {VENV}")
        return python
    started = time.monotonic()
    venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet", REQUIREMENT],
                          capture_output=True, text=True, timeout=1000)
    assert proc.returncode == 0, f"installing PyAirbyte failed:\n{proc.stderr[-3000:]}"
    stamp.write_text(REQUIREMENT)
    print(f"PyAirbyte installed into {VENV} in {time.monotonic() - started:.1f} s")
    return python


def test_pyairbyte_reads_every_stream_into_duckdb(make_emulator: Any, tmp_path: Path) -> None:
    # select_all_streams(): every stream configured incremental, environments included (the
    # connector reads a full-refresh-only stream in full, as Airbyte's CDK does).
    result, emu = _read_with_pyairbyte(make_emulator, tmp_path, [])
    assert set(result) == {s.name for s in STREAMS}, f"streams read by PyAirbyte: {sorted(result)}"
    events = sorted(e["id"] for slug in emu.project_slugs for e in emu.events(slug))
    assert result["events"]["ids"] == events
    assert result["issues"]["ids"] == sorted(i["id"] for i in emu.issues())
    assert result["projects"]["ids"] == sorted(str(p["id"]) for p in emu.projects())
    assert result["releases"]["count"] == len(emu.releases())
    assert result["project_detail"]["count"] == len(emu.project_slugs)


def _read_with_pyairbyte(make_emulator: Any, tmp_path: Path, streams: list[str]) -> tuple[dict[str, Any], Any]:
    python = _pyairbyte_python()
    executable = Path(sys.executable).parent / "source-sentry"
    assert executable.exists(), f"the console script {executable} is not installed (pip install -e .)"
    emu = make_emulator()
    args = {"executable": str(executable), "config": config_for(emu), "db": str(tmp_path / "cache.duckdb"),
            "streams": streams}
    (tmp_path / "run_pyairbyte.py").write_text(SCRIPT)
    env = {**os.environ, "AIRBYTE_OFFLINE_MODE": "1", "DO_NOT_TRACK": "1", "AIRBYTE_LOGGING_ROOT": str(tmp_path / "logs"),
           "NO_COLOR": "1"}
    env.pop("PYTHONPATH", None)
    started = time.monotonic()
    proc = subprocess.run([str(python), str(tmp_path / "run_pyairbyte.py"), json.dumps(args)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    print(f"PyAirbyte check + read: {time.monotonic() - started:.1f} s")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"PyAirbyte failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return json.loads(lines[-1][len("RESULT "):]), emu
