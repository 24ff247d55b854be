"""spec, check and discover as a real subprocess against the emulator."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from connector_helpers import Connector, config_for, run_cli, write_json

from source_sentry.streams import STREAMS


def test_spec_prints_one_valid_spec_message() -> None:
    run = run_cli("spec")
    assert run.returncode == 0
    assert [m["type"] for m in run.messages] == ["SPEC"]
    props = run.messages[0]["spec"]["connectionSpecification"]["properties"]
    assert {"auth_token", "hostname", "organization", "project"} <= set(props)
    assert props["auth_token"]["airbyte_secret"] is True


def test_check_succeeds_with_an_airbyte_style_config(emulator, tmp_path: Path) -> None:
    # Exactly the four fields of the Airbyte connector's config.
    config = {
        "auth_token": emulator.token,
        "hostname": emulator.base_url,
        "organization": emulator.organization,
        "project": emulator.project_slugs[0],
    }
    run = run_cli("check", "--config", write_json(tmp_path / "c.json", config))
    assert run.returncode == 0
    [status] = run.of_type("CONNECTION_STATUS")
    assert status["connectionStatus"]["status"] == "SUCCEEDED", status
    assert emulator.organization in status["connectionStatus"]["message"]


def _check(tmp_path: Path, config: dict) -> str:
    run = run_cli("check", "--config", write_json(tmp_path / "c.json", config), timeout=120)
    assert run.returncode == 0
    [status] = run.of_type("CONNECTION_STATUS")
    assert status["connectionStatus"]["status"] == "FAILED"
    message = status["connectionStatus"]["message"]
    assert config.get("auth_token", "") not in message or not config.get("auth_token")
    return message


def test_check_bad_token_says_to_fix_the_token(emulator, tmp_path: Path) -> None:
    message = _check(tmp_path, config_for(emulator, auth_token="sntryu_not_a_real_token_123"))
    assert "auth_token" in message and "rejected" in message
    assert "sntryu_not_a_real_token_123" not in message


def test_check_unknown_organization_is_named(emulator, tmp_path: Path) -> None:
    message = _check(tmp_path, config_for(emulator, organization="no-such-org"))
    assert "no-such-org" in message and "Organization" in message


def test_check_unknown_project_is_named(emulator, tmp_path: Path) -> None:
    message = _check(tmp_path, config_for(emulator, project="no-such-project"))
    assert "no-such-project" in message


def test_check_missing_scope_is_named(emulator, tmp_path: Path) -> None:
    token = emulator.create_token(scopes=["org:read", "project:read"])
    message = _check(tmp_path, config_for(emulator, auth_token=token, project=emulator.project_slugs[0]))
    assert "event:read" in message


def test_check_unreachable_host_is_named(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on that port now.
    config = {"auth_token": "abcd1234", "organization": "acme", "hostname": f"http://127.0.0.1:{port}"}
    message = _check(tmp_path, config)
    assert f"127.0.0.1:{port}" in message


def test_check_tls_failure_names_the_host(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(tls=True)
    config = config_for(emu)
    config.pop("ca_bundle")  # the emulator's self-signed CA is not trusted by default
    message = _check(tmp_path, config)
    assert "TLS" in message and "127.0.0.1" in message


def test_check_passes_over_tls_with_the_ca_bundle(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(tls=True)
    run = run_cli("check", "--config", write_json(tmp_path / "c.json", config_for(emu)))
    [status] = run.of_type("CONNECTION_STATUS")
    assert status["connectionStatus"]["status"] == "SUCCEEDED", status


@pytest.mark.parametrize(
    "hostname",
    ["ftp://sentry.io", "https://user:pw@sentry.io", "sentry.io/?x=1", "http://sentry.example.com", "sentry io"],
)
def test_check_malformed_hostname_says_what_is_wrong(tmp_path: Path, hostname: str) -> None:
    message = _check(tmp_path, {"auth_token": "abcd1234", "organization": "acme", "hostname": hostname})
    assert "hostname" in message
    assert "pw" not in message


def test_check_with_unreadable_config_file(tmp_path: Path) -> None:
    run = run_cli("check", "--config", str(tmp_path / "missing.json"))
    [status] = run.of_type("CONNECTION_STATUS")
    assert status["connectionStatus"]["status"] == "FAILED"
    assert "missing.json" in status["connectionStatus"]["message"]


def test_discover_lists_the_airbyte_streams(emulator, tmp_path: Path) -> None:
    run = Connector(tmp_path, emulator).cli("discover")
    assert run.returncode == 0
    [catalog] = run.of_type("CATALOG")
    streams = {s["name"]: s for s in catalog["catalog"]["streams"]}
    assert {"events", "issues", "projects", "releases"} <= set(streams)
    assert set(streams) == {s.name for s in STREAMS}
    by_name = {s.name: s for s in STREAMS}
    for stream in streams.values():
        # Span ids are unique only within their trace, hashes within their issue, ...
        assert stream["source_defined_primary_key"] == [[k] for k in by_name[stream["name"]].key_fields]
        if stream["name"] in ("environments", "integrations", "sentry_app_installations"):
            # No timestamps at all: full refresh only.
            assert stream["supported_sync_modes"] == ["full_refresh"]
            continue
        assert stream["supported_sync_modes"] == ["full_refresh", "incremental"]
        assert stream["source_defined_cursor"] is True
        [cursor] = stream["default_cursor_field"]
        assert cursor in stream["json_schema"]["properties"]
    for name in ["events", "issues", "projects", "releases"]:
        assert streams[name]["supported_sync_modes"] == ["full_refresh", "incremental"]
    assert streams["events"]["default_cursor_field"] == ["dateCreated"]
    assert streams["issues"]["default_cursor_field"] == ["lastSeen"]


def test_discover_with_a_broken_config_is_a_config_error(tmp_path: Path) -> None:
    run = run_cli("discover", "--config", write_json(tmp_path / "c.json", {"organization": "acme"}))
    assert run.returncode == 1
    [error] = run.errors()
    assert error["failure_type"] == "config_error"
    assert "auth_token" in error["message"]


@pytest.mark.parametrize("command", ["spec", "check", "discover", "read", "sync"])
def test_every_command_has_help(command: str) -> None:
    run = run_cli(command, "--help", raw=True)
    assert run.returncode == 0
    assert "usage: source-sentry" in run.stdout


def test_the_readme_streams_table_lists_every_stream() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme[readme.index("## Streams") :]
    for stream in STREAMS:
        row = next(line for line in table.splitlines() if line.startswith(f"| `{stream.name}` |"))
        assert f"`{stream.scope}`" in row, stream.name
        assert stream.route.split("{")[0] in row, stream.name
