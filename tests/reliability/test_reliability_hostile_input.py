"""Hostile and mistaken config, catalog and state files: a clear config_error or a safe default, never a crash.

Large property runs call ``parse_config``, ``parse_state`` and ``run_read`` in-process; smaller ones
run the CLI as a subprocess per example and check what a platform sees: exit code 0 or 1, every
stdout line a valid Airbyte message, failures as ``config_error`` (TRACE ERROR, or
CONNECTION_STATUS FAILED for check), no traceback anywhere, no ``system_error``.
Inputs that once crashed the connector are pinned by the regression tests at the end.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from airbyte_protocol.models import AirbyteMessage
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from reliability_helpers import catalog_for, settle, tally

from sentry_emulator import Emulator
from source_sentry.config import Config, parse_config
from source_sentry.errors import ConfigError
from source_sentry.read import run_read
from source_sentry.state import parse_state

TOKEN = "sntryu_" + "7e" * 32
SUBPROCESS = settings(max_examples=int(os.environ.get("RELIABILITY_CLI_EXAMPLES", "30")), deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
IN_PROCESS = settings(max_examples=int(os.environ.get("RELIABILITY_EXAMPLES", "400")), deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- strategies

HOSTILE_HOSTNAMES = [
    "", " ", "sentry.io", "https://sentry.io/", "us.sentry.io", "http://127.0.0.1:9000", "http://[::1]:9000",
    "https://sentry.example.com/sentry", "https://sentry.example.com/api/0/", "ftp://sentry.example.com",
    "file:///etc/passwd", "javascript:alert(1)", "gopher://x", "ws://127.0.0.1", "https://user:pass@sentry.io",
    "https://sentry.io/?token=abc", "https://sentry.io/#frag", "https://sentry.io/../../etc", "https://sentry.io/a%2fb",
    "https://sentry.io:0", "https://sentry.io:65536", "https://sentry.io:port", "https://[::1", "https://[fe80::1%eth0]/",
    "http://10.0.0.1", "http://169.254.169.254/latest/meta-data", "http://0.0.0.0", "http://2130706433",
    "https://10.0.0.256", "https://" + "a" * 300 + ".com", "https://" + "a." * 200 + "io", "sentry\x00.io",
    "sentry.io\n", "sent ry.io", "https://sentry.io\u200b", "https://xn--sentr-ro.io", "https://séntry.io",
    "https://sentry.io/organizations/acme/issues/", "//sentry.io", "https:sentry.io", "https:/sentry.io",
    "HTTPS://SENTRY.IO:443/", "http://localhost:80", "https://-bad-.io", "https://a_b.io", "\ud800",
]

json_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12
)
hostile_values = (
    json_values
    | st.sampled_from(HOSTILE_HOSTNAMES)
    | st.integers()  # huge ints
    | st.sampled_from([math.nan, math.inf, -math.inf, 10**400, -1, 0, 1e308, "30", " 30 ", "1e3", "true", "yes", "0x10"])
    | st.text(alphabet=st.characters(codec="utf-8"), min_size=1000, max_size=5000)
)
FIELDS = [
    "auth_token",
    "organization",
    "hostname",
    "project",
    "projects",
    "start_date",
    "lookback_window_minutes",
    "retention_days",
    "allow_http",
    "ca_bundle",
    "request_timeout_seconds",
    "max_retries",
    "region",
]


@st.composite
def configs(draw: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A plausible config with some fields removed, replaced by hostile values, or added."""
    config = dict(base or {"auth_token": TOKEN, "organization": "acme", "hostname": "http://127.0.0.1:1"})
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        if draw(st.booleans()) and name in config:
            del config[name]
        else:
            config[name] = draw(st.sampled_from(HOSTILE_HOSTNAMES) if name == "hostname" else hostile_values)
    for key in draw(st.lists(st.text(max_size=12), max_size=2)):
        config[key] = draw(json_values)
    return config


# ---------------------------------------------------------------- in-process properties


def _is_loopback_url(url: str) -> bool:
    host = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0] if "]" not in url else url.split("[", 1)[1].split("]", 1)[0]
    return host in ("localhost", "::1") or host.startswith("127.")


@IN_PROCESS
@given(configs() | json_values)
@example({"auth_token": TOKEN, "organization": TOKEN})
@example({"auth_token": TOKEN, "organization": "acme", "hostname": f"https://x:{TOKEN}@sentry.io"})
@example({"auth_token": TOKEN, "organization": "acme", "hostname": f"https://sentry.io/{TOKEN}"})
@example({"auth_token": TOKEN, "organization": "acme", "projects": [f"a,{TOKEN}"]})
@example({"auth_token": f"Bearer {TOKEN}", "organization": "acme", "start_date": TOKEN})
def test_parse_config_accepts_safely_or_raises_a_config_error(raw: Any) -> None:
    try:
        config = parse_config(raw)
    except ConfigError as exc:
        assert exc.failure_type == "config_error"
        assert exc.message.strip()
        assert TOKEN not in exc.message and TOKEN not in exc.internal
        tally("inputs", "parse_config")
        return
    assert isinstance(config, Config)
    scheme, rest = config.base_url.split("://", 1)
    assert scheme in ("http", "https")
    assert not any(c in rest for c in "@?# \\") and not rest.endswith("/")
    assert config.verify is True or isinstance(config.verify, str)
    if scheme == "http" and not _is_loopback_url(config.base_url):
        assert str(raw.get("allow_http")).strip().lower() == "true"
    assert 1 <= config.request_timeout <= 600 and 0 <= config.max_retries <= 20
    if TOKEN not in str({k: v for k, v in raw.items() if k != "auth_token"}):
        assert TOKEN not in repr(config)
    tally("inputs", "parse_config")


state_entries = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["STREAM", "GLOBAL", "LEGACY", "stream", None]),
            "stream": json_values
            | st.fixed_dictionaries(
                {
                    "stream_descriptor": json_values | st.fixed_dictionaries({"name": json_values | st.sampled_from(["events", "issues"])}),
                    "stream_state": json_values,
                }
            ),
            "global": json_values,
            "data": json_values,
        }
    ),
)


@IN_PROCESS
@given(st.lists(state_entries, max_size=5) | state_entries)
def test_parse_state_never_raises(raw: Any) -> None:
    warnings: list[str] = []
    states = parse_state(raw, warnings.append)
    assert isinstance(states, dict)
    assert all(isinstance(k, str) and isinstance(v, dict) for k, v in states.items()) or all(isinstance(v, dict) for v in states.values())
    tally("inputs", "parse_state")


@pytest.fixture(scope="module")
def tiny_emulator():
    emu = Emulator(seed=3, projects=1, events_per_project=8, issues_per_project=3, releases=3, days=5).start()
    settle(emu)
    yield emu
    emu.stop()


STREAM_NAMES = ["events", "issues", "projects", "releases", "project_detail"]
catalog_entries = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"stream": st.fixed_dictionaries({"name": st.sampled_from(STREAM_NAMES) | json_values}) | json_values},
        optional={
            "sync_mode": st.sampled_from(["incremental", "full_refresh", "INCREMENTAL", ""]) | json_values,
            "destination_sync_mode": st.sampled_from(["append", "overwrite", "append_dedup"]) | json_values,
            "cursor_field": json_values,
            "primary_key": json_values,
        },
    ),
)
catalogs = st.one_of(json_values, st.fixed_dictionaries({"streams": st.lists(catalog_entries, max_size=3) | json_values}))
_window = st.fixed_dictionaries(
    {
        "start": json_values | st.just("2024-01-01T00:00:00Z"),
        "end": json_values | st.just("2099-01-01T00:00:00Z"),
        "cursor": json_values | st.just("0:100:0"),
    },
    optional={"done": json_values | st.just(True)},
)
windowed_states = st.fixed_dictionaries(
    {
        "projects": st.dictionaries(
            st.sampled_from(["backend", "frontend", "x"]) | st.text(max_size=5),
            st.fixed_dictionaries(
                {},
                optional={
                    "dateCreated": st.sampled_from(["2020-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "", "nope", "2024-02-30"])
                    | json_values,
                    "window": json_values | _window,
                    "windows": json_values | st.lists(json_values | _window, max_size=3),
                },
            )
            | json_values,
            max_size=2,
        )
        | json_values
    },
    optional={"dateCreated": json_values},
)
snapshot_states = st.fixed_dictionaries(
    {},
    optional={
        "fingerprints": st.dictionaries(st.text(max_size=6), st.text(max_size=14) | json_values, max_size=3) | json_values,
        "lastSeen": json_values,
        "dateCreated": json_values,
    },
)


@settings(
    max_examples=int(os.environ.get("RELIABILITY_READ_EXAMPLES", "80")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    catalog=catalogs | st.just("valid"),
    state=st.one_of(
        json_values,
        st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.just("STREAM"),
                    "stream": st.fixed_dictionaries(
                        {
                            "stream_descriptor": st.fixed_dictionaries({"name": st.sampled_from(STREAM_NAMES)}),
                            "stream_state": windowed_states | snapshot_states | json_values,
                        }
                    ),
                }
            ),
            max_size=3,
        ),
    ),
)
def test_run_read_reports_hostile_catalogs_and_states_without_crashing(tiny_emulator, catalog: Any, state: Any) -> None:
    emu = tiny_emulator
    config = parse_config({"auth_token": emu.token, "organization": emu.organization, "hostname": emu.base_url, "max_retries": 0})
    if catalog == "valid":
        catalog = catalog_for(STREAM_NAMES)
    messages: list[dict[str, Any]] = []

    def emit(message: dict[str, Any]) -> None:
        AirbyteMessage.model_validate(orjson.loads(orjson.dumps(message)))
        messages.append(message)

    result = asyncio.run(run_read(config, catalog, state, emit))
    errors = [m["trace"]["error"] for m in messages if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"]
    assert all(e["failure_type"] == "config_error" for e in errors), errors
    assert all("stack_trace" not in e for e in errors)
    assert result.ok == (not errors)
    tally("inputs", "run_read")


# ---------------------------------------------------------------- the CLI, one subprocess per example


def _cli(*args: str) -> tuple[int, list[dict[str, Any]], str, str]:
    # No timeout of its own: pytest-timeout ends a hang (subprocess.run then kills the child).
    proc = subprocess.run([sys.executable, "-m", "source_sentry", *args], capture_output=True)
    stdout, stderr = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    messages = []
    for line in proc.stdout.splitlines():
        message = orjson.loads(line)
        AirbyteMessage.model_validate(message)
        messages.append(message)
    assert proc.returncode in (0, 1), (proc.returncode, stdout[-500:], stderr[-500:])
    assert "Traceback" not in stdout + stderr, (stdout[-1500:], stderr[-1500:])
    for message in messages:
        if message["type"] == "TRACE" and message["trace"]["type"] == "ERROR":
            assert message["trace"]["error"]["failure_type"] == "config_error", message
    return proc.returncode, messages, stdout, stderr


def _file_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


raw_files = st.one_of(
    configs(),
    json_values,
    st.binary(max_size=200),
    st.sampled_from(
        [b"", b"{", b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b"null", b"[]", b'{"auth_token": "x"', b"\x00" * 10, b'{"a": 1, "a": 2}']
    ),
)


@SUBPROCESS
@given(raw_files)
@example(b'{"auth_token": "\\ud800", "organization": "acme"}')
def test_check_answers_every_config_file_with_a_connection_status(tmp_path_factory, raw: Any) -> None:
    path = tmp_path_factory.mktemp("check") / "config.json"
    path.write_bytes(_file_bytes(raw))
    code, messages, stdout, stderr = _cli("check", "--config", str(path))
    assert code == 0
    [status] = [m for m in messages if m["type"] == "CONNECTION_STATUS"]
    assert status["connectionStatus"]["status"] == "FAILED"  # nothing listens on 127.0.0.1:1
    assert status["connectionStatus"].get("message")
    assert TOKEN not in stdout + stderr
    tally("inputs", "cli_check")


@SUBPROCESS
@given(raw_files)
def test_discover_rejects_bad_config_files_with_a_config_error(tmp_path_factory, raw: Any) -> None:
    path = tmp_path_factory.mktemp("discover") / "config.json"
    path.write_bytes(_file_bytes(raw))
    code, messages, stdout, stderr = _cli("discover", "--config", str(path))
    kinds = [m["type"] for m in messages]
    assert kinds in (["CATALOG"], ["TRACE"]), kinds
    assert (code == 0) == (kinds == ["CATALOG"])
    assert TOKEN not in stdout + stderr
    tally("inputs", "cli_discover")


@pytest.fixture(scope="module")
def read_files(tiny_emulator, tmp_path_factory):
    work = tmp_path_factory.mktemp("read")
    emu = tiny_emulator
    config = work / "config.json"
    config.write_text(json.dumps({"auth_token": emu.token, "organization": emu.organization, "hostname": emu.base_url, "max_retries": 0}))
    catalog = work / "catalog.json"
    catalog.write_text(json.dumps(catalog_for(STREAM_NAMES)))
    return work, str(config), str(catalog)


@SUBPROCESS
@given(st.one_of(catalogs, st.binary(max_size=100)))
def test_read_rejects_bad_catalog_files_with_a_config_error(read_files, raw: Any) -> None:
    work, config, _ = read_files
    path = work / "bad-catalog.json"
    path.write_bytes(_file_bytes(raw))
    code, messages, _, _ = _cli("read", "--config", config, "--catalog", str(path))
    errors = [m for m in messages if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"]
    assert (code == 1) == bool(errors)
    tally("inputs", "cli_read_catalog")


@SUBPROCESS
@given(
    st.one_of(
        json_values,
        st.lists(state_entries, max_size=3),
        st.binary(max_size=100),
        st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.just("STREAM"),
                    "stream": st.fixed_dictionaries(
                        {
                            "stream_descriptor": st.fixed_dictionaries({"name": st.sampled_from(STREAM_NAMES)}),
                            "stream_state": windowed_states | snapshot_states,
                        }
                    ),
                }
            ),
            max_size=3,
        ),
    )
)
def test_read_treats_bad_state_files_as_a_warning_and_a_full_read(read_files, tiny_emulator, raw: Any) -> None:
    work, config, catalog = read_files
    path = work / "bad-state.json"
    path.write_bytes(_file_bytes(raw))
    code, messages, _, _ = _cli("read", "--config", config, "--catalog", catalog, "--state", str(path))
    if isinstance(raw, bytes):
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError:
            assert code == 1  # not JSON at all: a config_error naming the file
            return
    assert code == 0, [m for m in messages if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"]
    tally("inputs", "cli_read_state")


@SUBPROCESS
@given(st.one_of(catalogs, st.sampled_from([[], None, {"streams": "x"}, {"streams": [{}]}, {"streams": [{"stream": {"name": 5}}]}])))
@example([])
def test_sync_rejects_bad_catalog_files_in_plain_words(read_files, raw: Any) -> None:
    work, config, _ = read_files
    path = work / "sync-catalog.json"
    path.write_bytes(_file_bytes(raw))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "source_sentry",
            "sync",
            "--config",
            config,
            "--destination",
            str(work / "s.duckdb"),
            "--catalog",
            str(path),
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode in (0, 1)
    assert "Traceback" not in proc.stdout + proc.stderr and "system_error" not in proc.stdout + proc.stderr, proc.stdout[-800:]
    tally("inputs", "cli_sync_catalog")


# Hypothesis finds the crashes above; these pin each one down so the fix can be verified.


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_deeply_nested_config_file_is_a_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "config.json", "[" * 100_000 + "]" * 100_000)
    _code, messages, _, _ = _cli("check", "--config", path)
    assert [m["connectionStatus"]["status"] for m in messages if m["type"] == "CONNECTION_STATUS"] == ["FAILED"]


def test_a_config_with_a_huge_integer_is_a_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "config.json", '{"auth_token": "abcd1234", "organization": "acme", "max_retries": ' + "9" * 5000 + "}")
    code, _messages, _, _ = _cli("discover", "--config", path)
    assert code == 1


def test_a_deeply_nested_state_file_is_a_warning(read_files, tmp_path: Path) -> None:
    _work, config, catalog = read_files
    state = _write(tmp_path, "state.json", json.dumps({"events": [[[0]]]}).replace("[[[0]]]", "[" * 300 + "]" * 300))
    code, _messages, _, _ = _cli("read", "--config", config, "--catalog", catalog, "--state", state)
    assert code == 0


@pytest.mark.parametrize("value", [10**30, "\ud800", [10**20]])
def test_parse_state_never_raises_on_python_values_orjson_cannot_dump(value: Any) -> None:
    parse_state({"events": value}, lambda message: None)


@pytest.mark.parametrize(
    "catalog",
    [
        "[]",
        "null",
        '{"streams": "x"}',
        '{"streams": [{}]}',
        '{"streams": [{"stream": {"name": "events"}, "destination_sync_mode": "bogus"}]}',
    ],
)
def test_sync_with_a_malformed_catalog_says_what_to_fix(read_files, tmp_path: Path, catalog: str) -> None:
    _work, config, _ = read_files
    path = _write(tmp_path, "catalog.json", catalog)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "source_sentry",
            "sync",
            "--config",
            config,
            "--destination",
            str(tmp_path / "s.duckdb"),
            "--catalog",
            path,
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "system_error" not in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    assert "catalog" in proc.stderr
