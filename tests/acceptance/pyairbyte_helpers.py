"""PyAirbyte in its own venv, and one check + read of every stream into a DuckDB cache.

PyAirbyte (PyPI package `airbyte`) is installed once into its own venv, cached at
$SOURCE_SENTRY_PYAIRBYTE_VENV (default /tmp/source-sentry-pyairbyte-venv-pyX.Y); the install
takes about a minute. The connector is run however `source` says: `local_executable=` the
console script (tests/acceptance/test_pyairbyte.py) or `docker_image=` the built image
(tests/image/test_image_pyairbyte.py).
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

REQUIREMENT = "airbyte>=0.20"
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
VENV = Path(os.environ.get("SOURCE_SENTRY_PYAIRBYTE_VENV", f"/tmp/source-sentry-pyairbyte-venv-py{PY}"))

SCRIPT = r'''
import json, sys
import airbyte as ab

args = json.loads(sys.argv[1])
source = ab.get_source("source-sentry", config=args["config"], **args["source"])
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
    # The stream's primary key (PyAirbyte's columns are lower case), "|"-joined when composite.
    columns = {c.lower(): c for c in frame.columns}
    picked = [columns[k.lower()] for k in args["keys"][name]]
    ids = sorted("|".join(str(v) for v in row) for row in frame[picked].itertuples(index=False))
    out[name] = {"count": len(frame), "ids": ids}
print("RESULT " + json.dumps(out))
'''


def pyairbyte_python() -> Path:
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


def local_executable() -> str:
    executable = Path(sys.executable).parent / "source-sentry"
    assert executable.exists(), f"the console script {executable} is not installed (pip install -e .)"
    return str(executable)


def read_with_pyairbyte(folder: Path, config: dict[str, Any], source: dict[str, Any], streams: list[str],
                        env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run SCRIPT in PyAirbyte's venv with get_source(**source); each stream's count and ids."""
    python = pyairbyte_python()
    folder.mkdir(parents=True, exist_ok=True)
    from source_sentry.streams import STREAMS

    keys = {s.name: list(s.key_fields) for s in STREAMS}
    args = {"config": config, "source": source, "db": str(folder / "cache.duckdb"), "streams": streams, "keys": keys}
    (folder / "run_pyairbyte.py").write_text(SCRIPT)
    run_env = {**os.environ, "AIRBYTE_OFFLINE_MODE": "1", "DO_NOT_TRACK": "1",
               "AIRBYTE_LOGGING_ROOT": str(folder / "logs"), "NO_COLOR": "1", **(env or {})}
    run_env.pop("PYTHONPATH", None)
    started = time.monotonic()
    proc = subprocess.run([str(python), str(folder / "run_pyairbyte.py"), json.dumps(args)],
                          capture_output=True, text=True, timeout=900, cwd=folder, env=run_env)
    print(f"PyAirbyte check + read ({', '.join(source)}): {time.monotonic() - started:.1f} s")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"PyAirbyte failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
    return result


def assert_read_everything(result: dict[str, Any], emu: Any) -> None:
    """Every stream was read, and the main ones hold exactly the emulator's rows."""
    from source_sentry.streams import STREAMS

    assert set(result) == {s.name for s in STREAMS}, f"streams read by PyAirbyte: {sorted(result)}"
    events = sorted(e["id"] for slug in emu.project_slugs for e in emu.events(slug))
    assert result["events"]["ids"] == events
    assert result["issues"]["ids"] == sorted(i["id"] for i in emu.issues())
    assert result["projects"]["ids"] == sorted(str(p["id"]) for p in emu.projects())
    assert result["releases"]["count"] == len(emu.releases())
    assert result["project_detail"]["count"] == len(emu.project_slugs)
