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
