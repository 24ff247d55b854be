"""``source-sentry sync`` when the user got something wrong (issue 14, class 8).

Every case runs the CLI as a subprocess and expects one line on stderr, starting
``source-sentry sync:``, that names what to fix; nothing on stdout (no protocol message, no
traceback), exit code 1, no "Synced into ... Query it" footer; the connection is checked (as
``check`` does) before any stream is read, so a bad host, token or slug costs no read.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from connector_helpers import catalog_for, config_for, write_json

from sentry_emulator.auth import ALL_READ_SCOPES

PREFIX = "source-sentry sync: "


def _sync(tmp_path: Path, emu: Any, destination: Path | str, *extra: str, **config: Any) -> subprocess.CompletedProcess[str]:
    path = write_json(tmp_path / "config.json", config_for(emu, **config))
    args = [sys.executable, "-m", "source_sentry", "sync", "--config", path, "--destination", str(destination), *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a failed sync (asserting the shape every failure shares)."""
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert "Synced into" not in proc.stderr and "Query it" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(PREFIX)
    return lines[0][len(PREFIX):]


ORGANIZATION = "/api/0/organizations/{org}/"
# The check reads the organization and its projects, then probes one route per scope for one item.
CHECKED = {ORGANIZATION, "/api/0/organizations/{org}/projects/"}


def _records_read(emu: Any) -> list[str]:
    """Requests beyond the connection check's."""
    return [r.path for r in emu.requests
            if r.route not in CHECKED and not {"1"} & set(r.query.get("per_page", []) + r.query.get("limit", []))]


def test_a_directory_as_destination(emulator, tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    line = _one_line(_sync(tmp_path, emulator, target))
    assert line.startswith(f"The destination {target} is a directory")
    assert str(target / "sentry.duckdb") in line
    assert list(target.iterdir()) == []


def test_a_destination_in_a_missing_directory(emulator, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "sentry.duckdb"
    line = _one_line(_sync(tmp_path, emulator, target))
    assert str(target) in line and "does not exist" in line
    assert not (tmp_path / "no").exists()


HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("open", flush=True)
sys.stdin.readline()
"""


def test_a_destination_locked_by_another_sync(emulator, tmp_path: Path) -> None:
    target = tmp_path / "sentry.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        line = _one_line(_sync(tmp_path, emulator, target, "--streams", "projects"))
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait()
    assert line.startswith(f"The destination {target} is in use by another process (PID {holder.pid}")
    assert "wait for it to finish, or sync into another file" in line


def test_a_file_that_is_not_a_database(emulator, tmp_path: Path) -> None:
    target = tmp_path / "notes.csv"
    target.write_text("a,b\n1,2\n")
    line = _one_line(_sync(tmp_path, emulator, target))
    assert str(target) in line
    assert target.read_text() == "a,b\n1,2\n"  # left as it was


@pytest.mark.timeout(60)
def test_a_hostname_that_does_not_resolve_is_named_at_once(emulator, tmp_path: Path) -> None:
    # A name under .invalid never resolves (RFC 2606): two quick lookups, then the message.
    line = _one_line(_sync(tmp_path, emulator, tmp_path / "s.duckdb", hostname="sentry.no-such-host.invalid"))
    assert "sentry.no-such-host.invalid" in line
    assert "hostname" in line
    assert "temporary" not in line
    assert not (tmp_path / "s.duckdb").exists()


def test_a_bad_token_fails_before_any_stream_is_read(emulator, tmp_path: Path) -> None:
    line = _one_line(_sync(tmp_path, emulator, tmp_path / "s.duckdb", auth_token="definitely-wrong-token"))
    assert "token" in line
    assert "definitely-wrong-token" not in line
    assert [r.route for r in emulator.requests] == [ORGANIZATION]  # the check's first request, nothing read
    assert not (tmp_path / "s.duckdb").exists()


def test_an_unknown_organization_and_project_are_named(emulator, tmp_path: Path) -> None:
    line = _one_line(_sync(tmp_path, emulator, tmp_path / "s.duckdb", organization="acme-typo"))
    assert "Organization 'acme-typo' was not found" in line
    line = _one_line(_sync(tmp_path, emulator, tmp_path / "s.duckdb", project="backnd"))
    assert "Project 'backnd' was not found" in line


def test_a_scope_the_chosen_streams_need_fails_the_sync_and_other_missing_scopes_are_noted(make_emulator, tmp_path: Path) -> None:
    emulator = make_emulator(scope_rules="strict")  # each endpoint takes exactly its scope
    without_members = emulator.create_token(scopes=[s for s in ALL_READ_SCOPES if s != "member:read"])
    target = tmp_path / "s.duckdb"
    # Members were chosen: the token lacks member:read, so nothing is read.
    line = _one_line(_sync(tmp_path, emulator, target, "--streams", "issues,members", auth_token=without_members))
    assert line == ("The auth token lacks the scope 'member:read' (needed by members). "
                    "Add the scopes to the token, or deselect those streams.")
    assert not target.exists()
    assert _records_read(emulator) == []
    # A scope Airbyte's Sentry streams need fails the default selection (every stream) too.
    without_releases = emulator.create_token(scopes=[s for s in ALL_READ_SCOPES if s != "project:releases"])
    line = _one_line(_sync(tmp_path, emulator, target, auth_token=without_releases))
    assert "the scope 'project:releases' (needed by releases)" in line
    # Any other missing scope is noted and fails its streams alone; the rest is read.
    proc = _sync(tmp_path, emulator, target, auth_token=without_members)
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert "The token cannot read members (needs 'member:read')" in proc.stderr
    assert proc.returncode == 1  # members failed
    assert "Synced into" not in proc.stderr
    assert _records_read(emulator)
    assert target.exists()


def test_a_catalog_naming_a_stream_this_source_does_not_have(emulator, tmp_path: Path) -> None:
    catalog = catalog_for(["issues"])
    catalog["streams"][0]["stream"]["name"] = "isues"
    path = write_json(tmp_path / "catalog.json", catalog)
    line = _one_line(_sync(tmp_path, emulator, tmp_path / "s.duckdb", "--catalog", path))
    assert line.startswith(f"The catalog {path} names a stream this source does not have: 'isues'")


def test_an_unreadable_catalog_file_is_named(emulator, tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text("{not json")
    line = _one_line(_sync(tmp_path, emulator, tmp_path / "s.duckdb", "--catalog", str(path)))
    assert line.startswith(f"The catalog file {path} is not valid JSON")


def test_a_failed_sync_has_no_success_footer(emulator, tmp_path: Path) -> None:
    # A stream that fails mid-read (every retry of the releases list answered 500): the summary
    # says FAILED, the exit code is 1, and nothing says "Synced into".
    emulator.inject_fault(500, path="/releases/$", times=-1, after=1)  # after the check's probe
    proc = _sync(tmp_path, emulator, tmp_path / "s.duckdb", "--streams", "projects,releases", max_retries=0)
    assert proc.returncode == 1
    assert "FAILED" in proc.stderr
    assert "Synced into" not in proc.stderr and "Query it" not in proc.stderr
    assert proc.stdout == ""

