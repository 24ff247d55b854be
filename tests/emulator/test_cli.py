"""The CLI prints exactly one JSON line once it accepts connections, serves, and exits 0 on SIGTERM."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

VENV_BIN = Path(sys.executable).parent


def _run(cmd: list[str]) -> tuple[subprocess.Popen[str], dict]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    assert line, proc.stderr.read()  # type: ignore[union-attr]
    return proc, json.loads(line)


@pytest.mark.parametrize("how", ["script", "module"])
def test_cli_prints_one_json_line_serves_and_stops(how: str) -> None:
    base = [str(VENV_BIN / "sentry-emulator")] if how == "script" else [sys.executable, "-m", "sentry_emulator"]
    proc, ready = _run(
        [
            *base,
            "--port",
            "0",
            "--seed",
            "3",
            "--projects",
            "4",
            "--events-per-project",
            "20",
            "--token",
            "tok-123",
            "--rate-limits",
            "sentry",
        ]
    )
    try:
        assert set(ready) == {"base_url", "token", "organization", "projects"}
        assert ready["base_url"].startswith("http://127.0.0.1:")
        assert ready["token"] == "tok-123"
        assert ready["projects"] == ["backend", "frontend", "mobile", "project-4"]
        r = httpx.get(
            f"{ready['base_url']}/api/0/organizations/{ready['organization']}/projects/",
            headers={"Authorization": f"Bearer {ready['token']}"},
        )
        assert r.status_code == 200 and len(r.json()) == 4
        assert r.headers["X-Sentry-Rate-Limit-Limit"] == "40"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out == ""  # nothing after the ready line


def test_cli_tls_reports_ca_cert() -> None:
    proc, ready = _run([sys.executable, "-m", "sentry_emulator", "--port", "0", "--tls", "--admin"])
    try:
        assert ready["base_url"].startswith("https://127.0.0.1:")
        r = httpx.get(f"{ready['base_url']}/_emulator/now", verify=ssl.create_default_context(cafile=ready["ca_cert"]))
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_cli_help_describes_every_option_on_one_line() -> None:
    from sentry_emulator.cli import build_parser

    out = subprocess.run([sys.executable, "-m", "sentry_emulator", "--help"], capture_output=True, text=True,
                         check=True).stdout
    lines = out.splitlines()
    for action in build_parser()._actions:
        if action.dest == "help":
            continue
        flag = action.option_strings[0]
        [line] = [x for x in lines if x.strip().startswith(flag + " ")]
        assert "(default: " in line, line  # meaning and default on the option's own line
        assert action.help and len(action.help) > 20, flag


def test_cli_faults_and_offset_paging() -> None:
    proc, ready = _run([sys.executable, "-m", "sentry_emulator", "--port", "0", "--offset-paging",
                        "--fault", "no_link:projects/$:2", "--fault", "503:/events/"])
    try:
        with httpx.Client(base_url=ready["base_url"], headers={"Authorization": f"Bearer {ready['token']}"}) as c:
            projects = "/api/0/organizations/acme/projects/"
            assert ["Link" in c.get(projects).headers for _ in range(3)] == [False, False, True]
            assert [c.get("/api/0/projects/acme/backend/events/").status_code for _ in range(2)] == [503, 200]
            r = c.get("/api/0/organizations/acme/issues/", params={"query": "", "limit": 5})
            assert 'cursor="5:1:0"' in r.headers["Link"]  # offset paging: LIMIT:PAGE:IS_PREV
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_cli_refuses_an_unknown_fault_kind() -> None:
    proc = subprocess.run([sys.executable, "-m", "sentry_emulator", "--fault", "explode"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "unknown fault kind 'explode'" in proc.stderr and proc.stdout == ""
