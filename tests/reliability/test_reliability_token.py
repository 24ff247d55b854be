"""The auth token: never in any artefact, never sent to another host, TLS verified, http only to loopback.

Artefacts grepped for the token: stdout (raw bytes and every JSON string once decoded), stderr,
the state files handed back, the DuckDB file and anything else in the working directory.
The emulator echoes the token back (fault kinds ``echo_token``: inside a record's title and a
URL field; ``echo_token_link``: inside the Link URLs; ``echo_token_400`` / ``echo_token_500``:
inside an error detail), redirects to another host (``redirect_other_host``), points pagination
(``link_other_host``) or the organization's region (``region_other_host``) at another host.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from reliability_helpers import (
    CORE_STREAMS,
    Connector,
    config_for,
    data_ids,
    expected,
    grep_artefacts,
    run_cli,
    run_records,
    settle,
    tally,
    write_json,
)

DATASET = {"projects": 3, "events_per_project": 220, "issues_per_project": 40, "releases": 30}


def _echo_everywhere(emu) -> None:
    emu.inject_fault("echo_token", path="/issues/", times=-1)
    emu.inject_fault("echo_token", path="/events/", times=-1)
    emu.inject_fault("echo_token", path="/projects/acme/[a-z-]+/$", times=-1)
    emu.inject_fault("echo_token_link", path="/releases/", times=-1)
    emu.inject_fault("echo_token_500", path="/organizations/acme/projects/", times=1, after=1)


def test_an_echoed_token_never_reaches_read_output_or_state(make_emulator, tmp_path: Path) -> None:
    emu = settle(make_emulator(**DATASET))
    _echo_everywhere(emu)
    conn = Connector(tmp_path, emu)
    run = conn.read(CORE_STREAMS)
    assert run.returncode == 0, run.errors()
    # The echo really happened: the masked token is in the records, the data is complete.
    assert any("****" in str(r.get("title")) for r in run.records("issues"))
    assert data_ids(run_records(run, CORE_STREAMS), emu) == expected(emu)
    # A second read with the saved state: the state file goes back in, and is an artefact too.
    second = conn.read(CORE_STREAMS)
    leaks = grep_artefacts(emu.token, {"stdout": run.stdout + second.stdout, "stderr": run.stderr + second.stderr},
                           [tmp_path])
    assert leaks == []
    tally("token_check", "read-echo", 2)


def test_an_echoed_token_in_error_details_never_reaches_traces(make_emulator, tmp_path: Path) -> None:
    emu = settle(make_emulator(projects=2, events_per_project=120))
    emu.inject_fault("echo_token_400", path="/events/", times=-1)
    emu.inject_fault("echo_token_500", path="/issues/", times=-1)
    run = Connector(tmp_path, emu, max_retries=1).read(["events", "issues", "projects"])
    assert run.returncode == 1
    errors = run.errors()
    assert {e["stream_descriptor"]["name"] for e in errors} == {"events", "issues"}
    assert all("****" in e["message"] or "HTTP 500" in e["message"] for e in errors), errors
    (tmp_path / "c").mkdir()
    check = Connector(tmp_path / "c", emu)
    emu.inject_fault("echo_token_400", path="/organizations/acme/", times=-1)
    status = check.cli("check")
    leaks = grep_artefacts(emu.token, {"stdout": run.stdout + status.stdout, "stderr": run.stderr + status.stderr}, [tmp_path])
    assert leaks == []
    tally("token_check", "error-echo", 2)


class _Sync:
    def __init__(self, tmp_path: Path, emu, **config) -> None:
        self.db = tmp_path / "sentry.duckdb"
        self.config = write_json(tmp_path / "config.json", config_for(emu, **config))

    def run(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "source_sentry", "sync", "--config", self.config, "--destination", str(self.db), *extra],
            capture_output=True, text=True, timeout=300,
        )


def test_an_echoed_token_never_reaches_the_duckdb_file(make_emulator, tmp_path: Path) -> None:
    emu = settle(make_emulator(projects=2, events_per_project=120, issues_per_project=20, releases=10))
    _echo_everywhere(emu)
    sync = _Sync(tmp_path, emu)
    proc = sync.run()
    assert proc.returncode == 0, proc.stderr
    leaks = grep_artefacts(emu.token, {"stdout": proc.stdout, "stderr": proc.stderr}, [tmp_path])
    assert leaks == []


def test_sync_output_and_database_hold_no_token_without_echo(make_emulator, tmp_path: Path) -> None:
    emu = settle(make_emulator(projects=2, events_per_project=120, issues_per_project=20, releases=10))
    emu.inject_fault("500", path="/events/", times=1, after=1)
    sync = _Sync(tmp_path, emu)
    first = sync.run()
    second = sync.run()  # reads the stored state back
    assert first.returncode == second.returncode == 0, first.stderr
    leaks = grep_artefacts(emu.token, {"out": first.stdout + second.stdout, "err": first.stderr + second.stderr}, [tmp_path])
    assert leaks == []
    tally("token_check", "sync-plain", 2)


def test_a_token_with_json_special_characters_is_masked_too(make_emulator, tmp_path: Path) -> None:
    token = 'sntryu_q"uote\\back/slash_' + "a" * 20
    emu = settle(make_emulator(projects=1, events_per_project=50, issues_per_project=10, token=token))
    emu.inject_fault("echo_token", path="/issues/", times=-1)
    run = Connector(tmp_path, emu).read(["issues"])
    assert run.returncode == 0, run.errors()
    assert grep_artefacts(token, {"stdout": run.stdout, "stderr": run.stderr}) == []


def test_a_token_echoed_in_json_escapes_is_masked_in_output_and_database(make_emulator, tmp_path: Path) -> None:
    # Events go out as Sentry wrote their bytes; a page whose strings escape printable ASCII
    # (``\\u0073ntryu_...``, ``\\/``) must not: the redaction compares bytes.
    emu = settle(make_emulator(projects=1, events_per_project=60, issues_per_project=10))
    emu.inject_fault("echo_token_escaped", path="/events/", times=-1)
    (tmp_path / "read").mkdir()
    run = Connector(tmp_path / "read", emu).read(["events"])
    assert run.returncode == 0, run.errors()
    assert any("****" in str(r.get("title")) for r in run.records("events"))  # the echo happened, masked
    assert grep_artefacts(emu.token, {"stdout": run.stdout, "stderr": run.stderr}, [tmp_path / "read"]) == []
    (tmp_path / "sync").mkdir()
    sync = _Sync(tmp_path / "sync", emu)
    proc = sync.run("--streams", "events")
    assert proc.returncode == 0, proc.stderr
    import duckdb

    with duckdb.connect(str(sync.db), read_only=True) as db:
        tables = [t for (t,) in db.execute("select table_name from information_schema.tables").fetchall()]
        stored = "".join(str(db.execute(f'select * from "{t}"').fetchall()) for t in tables)
    assert "****" in stored and emu.token not in stored
    assert grep_artefacts(emu.token, {"stdout": proc.stdout, "stderr": proc.stderr}, [tmp_path / "sync"]) == []


# ---------------------------------------------------------------- other hosts


@pytest.fixture
def twin(make_emulator):
    """An emulator on 127.0.0.1:P and a second one on 127.0.0.2:P accepting the same token."""
    emu = settle(make_emulator(projects=2, events_per_project=220, issues_per_project=20, releases=10))
    port = int(emu.base_url.rsplit(":", 1)[1])
    other = make_emulator(projects=1, host="127.0.0.2", port=port, token=emu.token)
    return emu, other


def _other_saw_no_token(other) -> None:
    assert [r.path for r in other.requests if r.authorization_present] == []


def test_a_redirect_to_another_host_is_not_followed(twin, tmp_path: Path) -> None:
    emu, other = twin
    emu.inject_fault("redirect_other_host", path="/events/", times=-1, after=1)
    emu.inject_fault("redirect_other_host", path="/releases/", times=1)
    run = Connector(tmp_path, emu).read(["events", "releases", "projects"])
    assert run.returncode == 1
    errors = {e["stream_descriptor"]["name"]: e for e in run.errors()}
    assert set(errors) == {"events", "releases"}
    for error in errors.values():
        assert error["failure_type"] == "config_error"
        assert "redirect" in error["message"] and "127.0.0.2" in error["message"]
    assert run.statuses("projects")[-1] == "COMPLETE"
    _other_saw_no_token(other)
    assert grep_artefacts(emu.token, {"stdout": run.stdout, "stderr": run.stderr}, [tmp_path]) == []
    tally("token_check", "redirect", 1)


def test_a_redirect_during_check_is_not_followed(twin, tmp_path: Path) -> None:
    emu, other = twin
    emu.inject_fault("redirect_other_host", times=-1)
    status = Connector(tmp_path, emu).cli("check")
    [message] = status.of_type("CONNECTION_STATUS")
    assert message["connectionStatus"]["status"] == "FAILED"
    assert "redirect" in message["connectionStatus"]["message"]
    _other_saw_no_token(other)
    tally("token_check", "redirect-check", 1)


def test_link_urls_to_another_host_are_never_followed(twin, tmp_path: Path) -> None:
    emu, other = twin
    emu.inject_fault("link_other_host", times=-1)
    run = Connector(tmp_path, emu).read(["events", "issues", "releases"])
    assert run.returncode == 0, run.errors()
    assert data_ids(run_records(run, ["events", "issues", "releases"]), emu) == expected(emu, ["events", "issues", "releases"])
    assert other.requests == []
    tally("token_check", "link-other-host", 1)


def test_a_region_url_on_another_host_is_not_trusted(twin, tmp_path: Path) -> None:
    emu, other = twin
    emu.inject_fault("region_other_host", path="^/api/0/organizations/acme/$", times=-1)
    conn = Connector(tmp_path, emu, region="auto")
    run = conn.read(["projects"])
    assert run.returncode == 0, run.errors()
    assert any("127.0.0.2" in w for w in run.logs("WARN")), run.logs()
    assert len(run.records("projects")) == 2
    status = conn.cli("check")
    assert status.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["status"] == "SUCCEEDED"
    _other_saw_no_token(other)
    tally("token_check", "region-other-host", 2)


# ---------------------------------------------------------------- TLS and plain http


def test_tls_is_verified_by_default(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=20, tls=True)
    config = config_for(emu)
    config.pop("ca_bundle")
    path = write_json(tmp_path / "config.json", config)
    status = run_cli("check", "--config", path)
    [message] = status.of_type("CONNECTION_STATUS")
    assert message["connectionStatus"]["status"] == "FAILED"
    assert "TLS" in message["connectionStatus"]["message"] and "ca_bundle" in message["connectionStatus"]["message"]
    catalog = write_json(tmp_path / "catalog.json", {"streams": []})
    from reliability_helpers import catalog_for

    write_json(tmp_path / "catalog.json", catalog_for(["projects"]))
    run = run_cli("read", "--config", path, "--catalog", catalog)
    assert run.returncode == 1
    assert [e["failure_type"] for e in run.errors()] == ["config_error"]
    # Nothing reached the API: the handshake failed before any request was sent.
    assert emu.requests == []
    # With the CA bundle it works.
    good = write_json(tmp_path / "good.json", config_for(emu))
    assert run_cli("check", "--config", good).of_type("CONNECTION_STATUS")[0]["connectionStatus"]["status"] == "SUCCEEDED"
    tally("token_check", "tls", 3)


@pytest.mark.parametrize(
    ("hostname", "allow_http", "ok"),
    [
        ("http://10.1.2.3:9000", None, False),
        ("http://sentry.example.com", None, False),
        ("http://sentry.example.com", "false", False),
        ("http://sentry.example.com", True, True),
        ("http://127.0.0.1:9000", None, True),
        ("http://localhost:9000", None, True),
        ("http://[::1]:9000", None, True),
        ("http://127.8.9.10", None, True),
    ],
)
def test_plain_http_only_to_loopback_unless_allowed(hostname: str, allow_http, ok: bool) -> None:
    from source_sentry.config import parse_config
    from source_sentry.errors import ConfigError

    raw = {"auth_token": "sntryu_" + "b" * 64, "organization": "acme", "hostname": hostname}
    if allow_http is not None:
        raw["allow_http"] = allow_http
    if ok:
        assert parse_config(raw).base_url.startswith("http://")
    else:
        with pytest.raises(ConfigError, match="http"):
            parse_config(raw)


@pytest.mark.parametrize(
    "hostname",
    [
        "https://{t}@sentry.example.com",
        "https://user:{t}@sentry.example.com",
        "https://sentry.example.com/?token={t}",
        "https://sentry.example.com/#{t}",
        "https://sentry.example.com/{t}/x?y",
        "ftp://sentry.example.com/{t}",
        "https://sentry.example.com:{t}",
    ],
)
def test_a_token_pasted_into_the_hostname_is_rejected_without_echo(tmp_path: Path, hostname: str) -> None:
    token = "sntryu_" + "c" * 64
    path = write_json(tmp_path / "config.json", {"auth_token": token, "organization": "acme",
                                                 "hostname": hostname.format(t=token)})
    status = run_cli("check", "--config", path)
    [message] = status.of_type("CONNECTION_STATUS")
    assert message["connectionStatus"]["status"] == "FAILED"
    assert grep_artefacts(token, {"stdout": status.stdout, "stderr": status.stderr}) == []
    tally("token_check", "token-in-url", 1)
