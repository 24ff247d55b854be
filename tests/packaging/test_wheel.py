"""The wheel: built with pip, declares its Python versions, carries its package data, and its
console script and ``python -m source_sentry`` work from a fresh virtual environment.

The fresh environment installs the wheel's dependencies from the package index (about 15 s
here); the connector's own tests cover behaviour, these cover what a user gets from pip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import venv
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
from packaging_helpers import ROOT, project_version, pyproject

from source_sentry import __version__
from source_sentry.spec import SPEC
from source_sentry.streams import STREAMS

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}"
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with the wheel and its dependencies from the index."""
    env_dir = tmp_path_factory.mktemp("venv")
    started = time.monotonic()
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(env_dir)
    proc = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, f"pip install of the wheel failed:\n{proc.stdout}\n{proc.stderr}"
    print(f"fresh venv + wheel install with dependencies: {time.monotonic() - started:.1f} s")
    return env_dir


def _metadata(wheel: Path) -> Any:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(zf.read(name).decode())


def _run(env_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment: nothing from this checkout may leak in through PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_version_is_the_same_in_pyproject_and_the_package() -> None:
    assert project_version() == __version__, "pyproject.toml [project] version and source_sentry.__version__ differ"


def test_declared_python_versions_match_requires_python_and_this_machine() -> None:
    project = pyproject()["project"]
    assert project["requires-python"] == ">=3.10"
    declared = sorted(
        (c.rsplit(":: ", 1)[1] for c in project["classifiers"] if c.startswith("Programming Language :: Python :: 3.")),
        key=lambda v: tuple(int(x) for x in v.split(".")),
    )
    assert declared and declared[0] == "3.10", f"the lowest classifier must be requires-python's 3.10: {declared}"
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert here in declared, f"the tests run on Python {here}, which the classifiers do not declare: {declared}"


def test_wheel_metadata(wheel: Path) -> None:
    meta = _metadata(wheel)
    assert meta["Name"].replace("_", "-") == "source-sentry"
    assert meta["Version"] == __version__
    assert meta["Requires-Python"] == ">=3.10"
    classifiers = meta.get_all("Classifier") or []
    for minor in ("3.10", "3.11", "3.12"):
        assert f"Programming Language :: Python :: {minor}" in classifiers
    requires = " ".join(meta.get_all("Requires-Dist") or [])
    for dependency in pyproject()["project"]["dependencies"]:
        name = dependency.split(">")[0].split("<")[0].split("=")[0].strip()
        assert name in requires, f"dependency {name} missing from the wheel's Requires-Dist"


def test_wheel_carries_the_schemas_and_entry_points(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    for stream in STREAMS:
        assert f"source_sentry/schemas/{stream.name}.json" in names, f"schema of {stream.name} missing from the wheel"
    assert "source_sentry/py.typed" in names
    assert "source_sentry/__main__.py" in names
    assert not any(n.startswith(("tests/", "scripts/", "integration_tests/", "bench/")) for n in names)
    assert "source-sentry = source_sentry.cli:main" in entry_points
    assert "sentry-emulator = sentry_emulator.cli:main" in entry_points


def test_installed_console_script_and_module_print_the_spec(installed: Path, tmp_path: Path) -> None:
    for argv in ([str(installed / "bin" / "source-sentry"), "spec"], [str(installed / "bin" / "python"), "-m", "source_sentry", "spec"]):
        proc = _run(installed, *argv, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        assert [m["type"] for m in lines] == ["SPEC"], proc.stdout[:500]
        assert lines[0]["spec"] == json.loads(json.dumps(SPEC)), f"{argv}: the installed spec differs from the source's"


def test_installed_package_is_the_wheel_with_its_data(installed: Path, tmp_path: Path) -> None:
    code = (
        "import json, source_sentry, source_sentry.schemas as s;"
        "from importlib import resources;"
        "files = sorted(p.name for p in resources.files('source_sentry').joinpath('schemas').iterdir());"
        "print(json.dumps({'file': source_sentry.__file__, 'version': source_sentry.__version__, 'schemas': files}))"
    )
    proc = _run(installed, str(installed / "bin" / "python"), "-c", code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert Path(info["file"]).resolve().is_relative_to(installed.resolve()), f"imported from {info['file']}, not the venv"
    assert info["version"] == __version__
    assert {f"{s.name}.json" for s in STREAMS} <= set(info["schemas"])


def test_installed_discover_reads_the_packaged_schemas(installed: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auth_token": "sntryu_x", "organization": "acme", "hostname": "http://127.0.0.1:9"}))
    proc = _run(installed, str(installed / "bin" / "source-sentry"), "discover", "--config", str(config), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    catalog = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [m["type"] for m in catalog] == ["CATALOG"]
    assert [s["name"] for s in catalog[0]["catalog"]["streams"]] == [s.name for s in STREAMS]


def _commands() -> list[str]:
    from source_sentry.commands import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(sub.choices)


def test_every_command_has_help_in_the_installed_script(installed: Path, tmp_path: Path) -> None:
    script = str(installed / "bin" / "source-sentry")
    top = _run(installed, script, "--help", cwd=tmp_path)
    assert top.returncode == 0 and "usage: source-sentry" in top.stdout
    commands = _commands()
    assert {"spec", "check", "discover", "read", "sync"} <= set(commands)
    for command in commands:
        assert command in top.stdout, f"`source-sentry --help` does not list {command}"
        proc = _run(installed, script, command, "--help", cwd=tmp_path)
        assert proc.returncode == 0, f"`source-sentry {command} --help` failed: {proc.stderr}"
        assert f"usage: source-sentry {command}" in proc.stdout
    version = _run(installed, script, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"source-sentry {__version__}"
    module = _run(installed, str(installed / "bin" / "python"), "-m", "source_sentry", "--help", cwd=tmp_path)
    assert module.returncode == 0 and "spec" in module.stdout
