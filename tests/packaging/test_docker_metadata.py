"""The Airbyte image's files, checked without a Docker engine: Dockerfile, .dockerignore and
metadata.yaml agree with each other, with pyproject.toml and with the connector's spec."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging_helpers import (
    ROOT,
    docker_excluded,
    dockerfile,
    dockerignore_rules,
    exec_form,
    key_values,
    load_yaml,
    project_version,
    pyproject,
)

from source_sentry import __version__
from source_sentry.spec import SPEC
from source_sentry.streams import STREAMS

# Airbyte's Sentry connector's definition id: this connector replaces it in place.
DEFINITION_ID = "88667543-cb6f-5e7a-9739-36fcdfae9a16"
CONSOLE_SCRIPT = "source-sentry"


def _metadata() -> dict[str, Any]:
    meta = load_yaml((ROOT / "metadata.yaml").read_text(encoding="utf-8"))
    assert isinstance(meta, dict) and isinstance(meta.get("data"), dict), "metadata.yaml needs a top-level data: mapping"
    return meta


def _labels() -> dict[str, str]:
    labels: dict[str, str] = {}
    for ins in dockerfile():
        if ins.keyword == "LABEL":
            labels.update(key_values(ins.args))
    return labels


def _env() -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in dockerfile():
        if ins.keyword == "ENV":
            env.update(key_values(ins.args))
    return env


def _final_stage() -> list[Any]:
    instructions = dockerfile()
    last_from = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    return instructions[last_from:]


# ------------------------------------------------------------------ Dockerfile
def _base_image() -> str:
    """The final stage's FROM, with an ARG's default substituted (FROM ${BASE_IMAGE})."""
    base = _final_stage()[0].args.split()[0]
    defaults = {}
    for ins in dockerfile():
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            defaults[name.strip()] = value.strip()
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), base)


def test_base_image_is_a_small_python_the_package_supports() -> None:
    base = _base_image()
    match = re.fullmatch(r"python:(3\.\d+)-slim(?:-[a-z]+)?(?:@sha256:[0-9a-f]{64})?", base)
    assert match, f"the image must be FROM python:3.X-slim, not {base}"
    declared = [c.rsplit(":: ", 1)[1] for c in pyproject()["project"]["classifiers"] if ":: Python :: 3." in c]
    assert match.group(1) in declared, f"{base}: Python {match.group(1)} is not among the declared {declared}"


def test_labels_name_and_version_match_pyproject_and_metadata() -> None:
    labels = _labels()
    assert labels.get("io.airbyte.version") == project_version() == __version__, (
        f"LABEL io.airbyte.version={labels.get('io.airbyte.version')} must equal pyproject's version {project_version()}"
    )
    assert labels.get("io.airbyte.name") == _metadata()["data"]["dockerRepository"]


def test_entrypoint_is_the_console_script_and_equals_airbyte_entrypoint() -> None:
    stage = _final_stage()
    entrypoints = [exec_form(ins.args) for ins in stage if ins.keyword == "ENTRYPOINT"]
    assert entrypoints, "the image needs an exec-form ENTRYPOINT"
    entrypoint = entrypoints[-1]
    assert entrypoint == [CONSOLE_SCRIPT], f"ENTRYPOINT must run the console script: {entrypoint}"
    assert _env().get("AIRBYTE_ENTRYPOINT") == " ".join(entrypoint), "ENV AIRBYTE_ENTRYPOINT must equal the ENTRYPOINT"
    scripts = pyproject()["project"]["scripts"]
    assert scripts.get(CONSOLE_SCRIPT) == "source_sentry.cli:main"
    assert not any(ins.keyword == "CMD" for ins in stage), "CMD would add arguments Airbyte does not expect"


def test_the_image_installs_the_package_from_what_it_copies() -> None:
    stage = _final_stage()
    copies = [ins.args.split() for ins in stage if ins.keyword == "COPY" and not ins.args.startswith("--from")]
    sources = {src.rstrip("/") for args in copies for src in args[:-1]}
    for include in pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = include.rstrip("*").rstrip(".")
        assert package in sources, f"the Dockerfile does not COPY package {package}"
    assert "pyproject.toml" in sources
    assert pyproject()["project"]["readme"] in sources, "pyproject's readme must be in the build context"
    assert any(re.search(r"\bpip install\b.*(\s\.\s|\s\.$)", ins.args) for ins in stage if ins.keyword == "RUN")


def test_dockerignore_lets_in_what_the_dockerfile_copies_and_nothing_private() -> None:
    rules = dockerignore_rules()
    copies = [ins.args.split() for ins in dockerfile() if ins.keyword == "COPY" and not ins.args.startswith("--from")]
    for args in copies:
        for src in args[:-1]:
            path = ROOT / src
            assert path.exists(), f"COPY {src}: no such file"
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            for file in files:
                rel = file.relative_to(ROOT).as_posix()
                assert not docker_excluded(rel, rules), f".dockerignore leaves out {rel}, which the Dockerfile copies"
    for private in (".venv/bin/python", ".git/config", "secrets/config.json", "tests/conftest.py",
                    "demo/sentry.duckdb", "bench/results/x.json", "source_sentry/__pycache__/cli.cpython-311.pyc"):
        assert docker_excluded(private, rules), f".dockerignore lets {private} into the build context"


def test_the_docker_build_context_builds_a_complete_wheel(tmp_path: Path) -> None:
    """What `docker build` does, minus Docker: the COPY'd files alone build the package."""
    rules = dockerignore_rules()
    context = tmp_path / "ctx"
    for args in (ins.args.split() for ins in dockerfile() if ins.keyword == "COPY"):
        *srcs, dest = args
        for src in srcs:
            path = ROOT / src
            target = context / (Path(dest) / path.name if dest.endswith("/") or len(srcs) > 1 or dest in (".", "./") else Path(dest))
            if path.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
            else:
                for file in path.rglob("*"):
                    rel = file.relative_to(ROOT).as_posix()
                    if file.is_file() and not docker_excluded(rel, rules):
                        out = target / file.relative_to(path)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(file, out)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path / "dist"), str(context)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"the image's `pip install .` would fail:\n{proc.stderr[-3000:]}"
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for stream in STREAMS:
        assert f"source_sentry/schemas/{stream.name}.json" in names


# ------------------------------------------------------------------ metadata.yaml
def test_metadata_identity_and_version() -> None:
    meta = _metadata()
    data = meta["data"]
    assert meta.get("metadataSpecVersion") == "1.0"
    assert data["connectorType"] == "source"
    assert data["connectorSubtype"] == "api"
    assert data["name"] == "Sentry"
    assert data["dockerImageTag"] == project_version() == __version__, "metadata dockerImageTag must be pyproject's version"
    assert re.fullmatch(r"[a-z0-9][a-z0-9._/-]*", data["dockerRepository"])
    assert data["definitionId"] == DEFINITION_ID and str(uuid.UUID(data["definitionId"])) == DEFINITION_ID
    assert data["documentationUrl"] == SPEC["documentationUrl"], "metadata documentationUrl must be the spec's"
    assert data["license"] == pyproject()["project"]["license"]
    assert data["releaseStage"] in ("alpha", "beta", "generally_available", "custom")
    assert data["supportLevel"] in ("community", "certified", "archived")
    assert isinstance(data["tags"], list) and all(re.fullmatch(r"[a-z-]+:[a-z0-9.-]+", t) for t in data["tags"])
    assert "language:python" in data["tags"]


def test_allowed_hosts_cover_sentry_and_the_configured_hostname() -> None:
    hosts = _metadata()["data"]["allowedHosts"]["hosts"]
    for host in ("sentry.io", "us.sentry.io", "de.sentry.io", "${hostname}"):
        assert host in hosts, f"allowedHosts lacks {host}"
    for host in hosts:
        for name in re.findall(r"\$\{([^}]+)\}", host):
            assert name in SPEC["connectionSpecification"]["properties"], f"allowedHosts interpolates unknown field {name}"


def test_max_seconds_between_messages_covers_the_longest_silence() -> None:
    from source_sentry.http import retry
    from source_sentry.spec import DEFAULT_MAX_RETRIES, DEFAULT_REQUEST_TIMEOUT_SECONDS

    value = _metadata()["data"]["maxSecondsBetweenMessages"]
    silence = (
        retry._RATE_LIMIT_BUDGET
        + (DEFAULT_MAX_RETRIES + 1) * DEFAULT_REQUEST_TIMEOUT_SECONDS
        + DEFAULT_MAX_RETRIES * retry._MAX_BACKOFF
    )
    assert isinstance(value, int) and silence <= value <= 4 * 3600, (
        f"maxSecondsBetweenMessages={value}; one request can be silent for {silence:.0f} s with the default config"
    )


def test_acceptance_config_tests_this_image() -> None:
    config = load_yaml((ROOT / "acceptance-test-config.yml").read_text(encoding="utf-8"))
    repo, _, tag = config["connector_image"].partition(":")
    assert repo == _metadata()["data"]["dockerRepository"] and tag == "dev"


def test_yaml_reader_agrees_with_pyyaml() -> None:
    yaml = pytest.importorskip("yaml")
    for name in ("metadata.yaml", "acceptance-test-config.yml"):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert load_yaml(text) == yaml.safe_load(text), name
