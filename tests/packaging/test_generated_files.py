"""docs/sentry.md and the Airbyte acceptance-test files are generated from the code by
scripts/gen_docs.py; the committed copies must be exactly what it generates now."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft7Validator
from packaging_helpers import ROOT, load_gen_docs, load_yaml

from source_sentry import __version__
from source_sentry.config import load_config_file
from source_sentry.spec import SPEC
from source_sentry.streams import STREAMS

gen_docs = load_gen_docs()
FIX = "run `python scripts/gen_docs.py` and commit the result"


@pytest.mark.parametrize("rel", sorted(gen_docs.outputs()))
def test_committed_file_is_what_the_generator_writes(rel: str) -> None:
    path = ROOT / rel
    assert path.exists(), f"{rel} is missing: {FIX}"
    expected = gen_docs.outputs()[rel]
    assert path.read_text(encoding="utf-8") == expected, f"{rel} is out of date with the code: {FIX}"


def test_the_script_runs_standalone_in_check_mode() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, f"{proc.stderr}\n{FIX}"


def test_check_mode_names_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gen_docs, "ROOT", tmp_path)
    assert gen_docs.main(["--check"]) == 1
    assert gen_docs.main([]) == 0 and gen_docs.main(["--check"]) == 0
    (tmp_path / "docs" / "sentry.md").write_text("edited by hand\n")
    assert gen_docs.main(["--check"]) == 1


SECTIONS = ["Prerequisites", "Setup guide", "Supported sync modes", "Supported streams",
            "Limitations & troubleshooting", "Data type map", "Changelog"]


def test_docs_have_airbytes_page_structure() -> None:
    text = (ROOT / "docs" / "sentry.md").read_text(encoding="utf-8")
    assert text.startswith("# Sentry\n")
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings == SECTIONS, headings


def test_docs_cover_every_stream_field_and_the_version() -> None:
    text = (ROOT / "docs" / "sentry.md").read_text(encoding="utf-8")
    streams_section = text.split("## Supported streams", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in streams_section.splitlines() if line.startswith("| `")]
    assert [re.match(r"\| `([^`]+)`", r).group(1) for r in rows] == [s.name for s in STREAMS]
    for stream, row in zip(STREAMS, rows, strict=False):
        assert f"`{stream.scope}`" in row and f"`{stream.primary_key}`" in row
        if stream.cursor_field:
            assert f"`{stream.cursor_field}`" in row
    for name in SPEC["connectionSpecification"]["properties"]:
        assert f"| `{name}` |" in text, f"config field {name} missing from docs/sentry.md"
    changelog = text.split("## Changelog", 1)[1]
    assert f"| {__version__} |" in changelog


def test_the_docs_name_each_explore_datasets_default_fields() -> None:
    from source_sentry.spec import EXPLORE_FIELDS

    for doc in ("docs/sentry.md", "README.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        for dataset, fields in EXPLORE_FIELDS.items():
            [row] = [line for line in text.splitlines() if line.startswith(f"| `{dataset}` |")]
            assert ", ".join(f"`{f}`" for f in fields) in row, f"{doc} does not list the default fields of {dataset}"


def test_troubleshooting_quotes_messages_the_connector_really_prints() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "source_sentry").rglob("*.py"))
    for situation, fragment, _ in gen_docs.COMMON_ERRORS:
        assert fragment in source, f"docs quote {fragment!r} ({situation}), which source_sentry no longer prints"


def test_integration_test_files_are_valid_airbyte_inputs() -> None:
    from airbyte_protocol.models import AirbyteStateMessage, ConfiguredAirbyteCatalog

    catalog = json.loads((ROOT / "integration_tests" / "configured_catalog.json").read_text())
    ConfiguredAirbyteCatalog.model_validate(catalog)
    assert [s["stream"]["name"] for s in catalog["streams"]] == [s.name for s in STREAMS]
    states = json.loads((ROOT / "integration_tests" / "abnormal_state.json").read_text())
    for state in states:
        AirbyteStateMessage.model_validate(state)
    assert {s["stream"]["stream_descriptor"]["name"] for s in states} == {
        s.name for s in STREAMS if s.incremental and s.cursor_field
    }
    assert json.loads((ROOT / "integration_tests" / "spec.json").read_text()) == json.loads(json.dumps(SPEC))


@pytest.mark.parametrize("name", ["sample_config.json", "invalid_config.json"])
def test_sample_configs_match_the_spec_and_hold_no_secret(name: str) -> None:
    path = ROOT / "integration_tests" / name
    config = json.loads(path.read_text())
    errors = list(Draft7Validator(SPEC["connectionSpecification"]).iter_errors(config))
    assert not errors, [e.message for e in errors]
    load_config_file(str(path))  # the connector reads it (the invalid one fails only at Sentry)
    token = config["auth_token"]
    assert "REPLACE" in token or set(token.removeprefix("sntryu_")) == {"0"}, f"{name} must not hold a real token"


def test_acceptance_config_references_existing_files_and_streams() -> None:
    config = load_yaml((ROOT / "acceptance-test-config.yml").read_text(encoding="utf-8"))
    assert config["test_strictness_level"] == "high"
    suites = config["acceptance_tests"]
    assert set(suites) == {"spec", "connection", "discovery", "basic_read", "full_refresh", "incremental"}
    names = {s.name for s in STREAMS}
    for suite in suites.values():
        for test in suite["tests"]:
            for key in ("spec_path", "config_path", "configured_catalog_path"):
                if key in test and not test[key].startswith("secrets/"):
                    assert (ROOT / test[key]).exists(), f"{key}: {test[key]} does not exist"
            if "future_state" in test:
                assert (ROOT / test["future_state"]["future_state_path"]).exists()
            for empty in test.get("empty_streams", []):
                assert empty["name"] in names and empty["bypass_reason"]
            for stream in test.get("ignored_fields", {}):
                assert stream in names
    statuses = [t.get("status") for t in suites["connection"]["tests"]]
    assert statuses == ["succeed", "failed"]


def test_readme_tells_how_to_use_it_from_airbyte_pyairbyte_and_pip() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Using it from Airbyte, PyAirbyte and pip" in readme
    section = readme.split("## Using it from Airbyte, PyAirbyte and pip", 1)[1].split("\n## ", 1)[0]
    repository = load_yaml((ROOT / "metadata.yaml").read_text())["data"]["dockerRepository"]
    for needle in ("scripts/build_image.sh", "docker push", "metadata.yaml", "import airbyte as ab", "local_executable", "docker_image=",
                   "pip install", repository, "acceptance-test-config.yml"):
        assert needle in section, f"README section lacks {needle!r}"
