"""parse_config / load_config_file: normalisation, clear errors, no token leaks, never a crash."""

from __future__ import annotations

import ipaddress
import json
import string
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from source_sentry import errors
from source_sentry.config import Config, load_config_file, parse_config
from source_sentry.errors import ConfigError

TOKEN = "sntryu_0123456789abcdef0123456789abcdef"
BASE: dict[str, Any] = {"auth_token": TOKEN, "organization": "acme"}


def _parse(**fields: Any) -> Config:
    return parse_config({**BASE, **fields})


def _error(**fields: Any) -> str:
    with pytest.raises(ConfigError) as info:
        _parse(**fields)
    return info.value.message


# Airbyte compatibility and defaults


def test_airbyte_connector_config_unchanged() -> None:
    config = parse_config(
        {"auth_token": TOKEN, "hostname": "sentry.io", "organization": "acme", "project": "backend"}
    )
    assert config.auth_token == TOKEN
    assert config.organization == "acme"
    assert config.projects == ("backend",)
    assert config.base_url == "https://sentry.io"
    assert config.host == "sentry.io"
    assert config.verify is True
    assert config.start_date is None
    assert config.lookback_window == timedelta(minutes=30)
    assert config.retention_days == 90
    assert config.request_timeout == 60.0 and isinstance(config.request_timeout, float)
    assert config.max_retries == 8
    assert (
        config.api_url("/organizations/acme/issues/")
        == "https://sentry.io/api/0/organizations/acme/issues/"
    )
    assert config.api_url("projects/") == "https://sentry.io/api/0/projects/"


def test_unknown_keys_ignored() -> None:
    assert _parse(something_else={"x": 1}, sourceType="sentry").organization == "acme"


def test_repr_hides_token() -> None:
    assert TOKEN not in repr(_parse())


@pytest.mark.parametrize("raw", [None, [], "config", 3, True])
def test_config_must_be_object(raw: object) -> None:
    with pytest.raises(ConfigError, match="must be a JSON object"):
        parse_config(raw)


# hostname


@pytest.mark.parametrize(
    ("hostname", "base_url", "host"),
    [
        (None, "https://sentry.io", "sentry.io"),
        ("", "https://sentry.io", "sentry.io"),
        ("   ", "https://sentry.io", "sentry.io"),
        ("sentry.io", "https://sentry.io", "sentry.io"),
        ("us.sentry.io", "https://us.sentry.io", "us.sentry.io"),
        ("de.sentry.io", "https://de.sentry.io", "de.sentry.io"),
        (" Sentry.Example.COM ", "https://sentry.example.com", "sentry.example.com"),
        ("sentry.example.com:8443", "https://sentry.example.com:8443", "sentry.example.com:8443"),
        ("https://sentry.example.com", "https://sentry.example.com", "sentry.example.com"),
        ("https://sentry.example.com/", "https://sentry.example.com", "sentry.example.com"),
        ("https://sentry.example.com/api/0", "https://sentry.example.com", "sentry.example.com"),
        ("https://sentry.example.com/api/0/", "https://sentry.example.com", "sentry.example.com"),
        ("https://sentry.example.com:443/", "https://sentry.example.com", "sentry.example.com"),
        ("HTTPS://sentry.example.com", "https://sentry.example.com", "sentry.example.com"),
        ("https://example.com/sentry", "https://example.com/sentry", "example.com"),
        (
            "https://example.com/tools/sentry/api/0/",
            "https://example.com/tools/sentry",
            "example.com",
        ),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000", "127.0.0.1:9000"),
        ("http://127.10.0.1", "http://127.10.0.1", "127.10.0.1"),
        ("http://localhost:9000/", "http://localhost:9000", "localhost:9000"),
        ("http://[::1]:9000", "http://[::1]:9000", "[::1]:9000"),
        ("[::1]:9000", "https://[::1]:9000", "[::1]:9000"),
        ("https://[2001:db8::1]", "https://[2001:db8::1]", "[2001:db8::1]"),
        ("10.0.0.5:9000", "https://10.0.0.5:9000", "10.0.0.5:9000"),
        ("sentry_web:9000", "https://sentry_web:9000", "sentry_web:9000"),
    ],
)
def test_hostname_valid(hostname: str | None, base_url: str, host: str) -> None:
    config = _parse(hostname=hostname)
    assert (config.base_url, config.host) == (base_url, host)
    assert config.api_url("organizations/") == f"{base_url}/api/0/organizations/"


def test_hostname_missing_means_sentry_io() -> None:
    assert parse_config(BASE).base_url == "https://sentry.io"
    assert _parse(hostname="\tsentry.io\n").base_url == "https://sentry.io"  # edges are stripped


def test_http_to_remote_host_needs_allow_http() -> None:
    message = _error(hostname="http://sentry.internal")
    assert "allow_http" in message and "'http://sentry.internal'" in message
    for flag in (True, "true", " TRUE "):
        assert (
            _parse(hostname="http://sentry.internal", allow_http=flag).base_url
            == "http://sentry.internal"
        )
    assert "allow_http" in _error(hostname="http://sentry.internal", allow_http="false")


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        ("ftp://sentry.example.com", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("https://", "no host"),
        ("https://:443", "no host"),
        ("https:///api/0", "no host"),
        ("sentry .io", "spaces"),
        ("sentry\x00.io", "control characters"),
        ("sentry.io\x1b[31m", "control characters"),
        ("sentry.io:0", "port 0"),
        ("sentry.io:65536", "port 65536"),
        ("sentry.io:99999999999", "port"),
        ("sentry.io:http", "invalid port"),
        ("sentry.io:", "invalid port"),
        ("sentry.io:+80", "invalid port"),
        ("https://sentry.io?x=1", "query string"),
        ("https://sentry.io/#frag", "fragment"),
        ("https://sentry.io/a/../b", "unsupported path"),
        ("https://sentry.io/a//b", "unsupported path"),
        ("https://sentry.io/a%2Fb", "unsupported path"),
        ("https://sentry.io/a;b", "unsupported path"),
        ("https://sentry.io/api/0/organizations/acme/", "inside the API"),
        ("https://sentry.io/api/", "inside the API"),
        ("a" * 254, "longer than 253"),
        ("x." * 200 + "io", "longer than 253"),
        ("a" * 64 + ".io", "invalid host name"),
        ("-sentry.io", "invalid host name"),
        ("sentry..io", "invalid host name"),
        ("sentry.io.", "invalid host name"),
        ("sen!try.io", "invalid host name"),
        ("999.1.1.1", "not a valid IPv4"),
        ("10.0.0", "not a valid IPv4"),
        ("[::1", "not a valid host"),
        ("[zz::1]:80", None),
        ("[::1]x", "after the IPv6"),
        ("[fe80::1%25eth0]", "zone"),
        ("http://" + "a" * 3000, "longer than 2048"),
    ],
)
def test_hostname_invalid(hostname: str, expected: str | None) -> None:
    message = _error(hostname=hostname)
    assert message.startswith("hostname")
    if expected:
        assert expected in message


@pytest.mark.parametrize(
    "hostname",
    [
        "https://admin:hunter2@sentry.example.com",
        "https://hunter2@sentry.example.com",
        "admin:hunter2@sentry.example.com:9000",
    ],
)
def test_hostname_credentials_not_echoed(hostname: str) -> None:
    message = _error(hostname=hostname)
    assert "remove the credentials from hostname" in message
    assert "hunter2" not in message


def test_hostname_query_not_echoed() -> None:
    message = _error(hostname="https://sentry.io/?api_key=hunter2")
    assert "hunter2" not in message and "query" in message


@pytest.mark.parametrize("value", [5, True, ["sentry.io"], {"host": "sentry.io"}])
def test_hostname_wrong_type(value: object) -> None:
    assert _error(hostname=value) == f"hostname must be a string, got {_describe(value)}."


def _describe(value: object) -> str:
    return {int: "a number", bool: "a boolean", list: "an array", dict: "an object"}[type(value)]


# auth_token


def test_token_bearer_prefix_and_whitespace_removed() -> None:
    assert _parse(auth_token=f"  Bearer {TOKEN}\n").auth_token == TOKEN
    assert _parse(auth_token=f"bearer   {TOKEN}").auth_token == TOKEN


@pytest.mark.parametrize("value", [None, "", "   ", "Bearer  "])
def test_token_required(value: object) -> None:
    assert "auth_token" in _error(auth_token=value)


def test_token_missing() -> None:
    with pytest.raises(ConfigError, match="auth_token is required"):
        parse_config({"organization": "acme"})


@pytest.mark.parametrize("value", [123, ["x"], {"t": 1}, True])
def test_token_wrong_type(value: object) -> None:
    assert "auth_token must be a string" in _error(auth_token=value)


@pytest.mark.parametrize("value", ["abc def", "tok\x00en", "tökenvalue"])
def test_token_bad_characters_not_echoed(value: str) -> None:
    message = _error(auth_token=value)
    assert "auth_token" in message and value not in message


def test_token_registered_as_secret() -> None:
    token = "sntryu_registered_secret_value_42"
    _parse(auth_token=f"Bearer {token}")
    assert token not in errors.redact(f"leaked {token}")


@pytest.mark.parametrize(
    "fields",
    [
        {"organization": TOKEN},  # valid slug: no error, covered by the loop below
        {"organization": f"https://{TOKEN}.sentry.io"},
        {"organization": f"my {TOKEN}"},
        {"project": f"{TOKEN}/x"},
        {"projects": ["ok", f"{TOKEN} x"]},
        {"hostname": f"https://{TOKEN}.example.com/{TOKEN}/x y"},
        {"hostname": f"ftp://{TOKEN}"},
        {"hostname": f"http://{TOKEN}.internal"},
        {"hostname": f"{TOKEN}:{TOKEN}"},
        {"hostname": f"{TOKEN}:pw@host"},
        {"start_date": TOKEN},
        {"max_retries": TOKEN},
        {"request_timeout_seconds": f"1{TOKEN}"},
        {"allow_http": TOKEN},
        {"ca_bundle": f"/nonexistent/{TOKEN}.pem"},
    ],
)
def test_token_never_in_messages(fields: dict[str, Any]) -> None:
    for token_form in (TOKEN, f"Bearer {TOKEN}"):
        try:
            parse_config({**BASE, "auth_token": token_form, **fields})
        except ConfigError as exc:
            assert TOKEN not in exc.message and TOKEN not in exc.internal and TOKEN not in str(exc)


# organization / projects


def test_organization_lowercased() -> None:
    assert _parse(organization=" Acme-Corp_2 ").organization == "acme-corp_2"
    assert _parse(organization="12345").organization == "12345"  # numeric ids work in API paths


@pytest.mark.parametrize(
    ("value", "suggestion"),
    [
        ("https://acme.sentry.io", '"acme"'),
        ("https://acme.sentry.io/issues/", '"acme"'),
        ("acme.sentry.io", '"acme"'),
        ("https://sentry.io/organizations/acme/issues/", '"acme"'),
        ("https://sentry.example.com/organizations/acme/", '"acme"'),
        ("https://de.sentry.io/", None),
        ("acme/backend", None),
    ],
)
def test_organization_url_gets_suggestion(value: str, suggestion: str | None) -> None:
    message = _error(organization=value)
    assert message.startswith("organization must be a slug")
    if suggestion:
        assert f"Try {suggestion}" in message
    else:
        assert "Try" not in message


@pytest.mark.parametrize("value", ["My Org", "acme!", "a" * 101, "ácme"])
def test_organization_not_a_slug(value: str) -> None:
    assert "organization must be a Sentry slug" in _error(organization=value)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_organization_required(value: object) -> None:
    assert "organization is required" in _error(organization=value)


@pytest.mark.parametrize("value", [1, ["acme"], {"slug": "acme"}, False])
def test_organization_wrong_type(value: object) -> None:
    assert "organization must be a string" in _error(organization=value)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, ()),
        ({"project": None, "projects": None}, ()),
        ({"project": "", "projects": []}, ()),
        ({"project": "backend"}, ("backend",)),
        ({"project": "backend, frontend,,backend"}, ("backend", "frontend")),
        ({"projects": ["a", "b", "a"]}, ("a", "b")),
        ({"project": "b", "projects": ["a", "B", " "]}, ("b", "a")),
        ({"projects": "a, b"}, ("a", "b")),
    ],
)
def test_projects(fields: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert _parse(**fields).projects == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"project": 5}, "project must be a string"),
        ({"project": ["a"]}, "project must be a string"),
        ({"projects": {"a": 1}}, "projects must be an array"),
        ({"projects": 3}, "projects must be an array"),
        ({"projects": ["a", 2]}, "projects[1] must be a project slug"),
        ({"projects": ["a", "b c"]}, "projects[1] must be a Sentry slug"),
        ({"project": "acme/backend"}, "project must be a slug"),
    ],
)
def test_projects_invalid(fields: dict[str, Any], expected: str) -> None:
    assert expected in _error(**fields)


# numbers, booleans, dates, files


@pytest.mark.parametrize(
    ("fields", "attribute", "expected"),
    [
        ({"lookback_window_minutes": 0}, "lookback_window", timedelta(0)),
        ({"lookback_window_minutes": 1440}, "lookback_window", timedelta(days=1)),
        ({"lookback_window_minutes": "45"}, "lookback_window", timedelta(minutes=45)),
        ({"lookback_window_minutes": 45.0}, "lookback_window", timedelta(minutes=45)),
        ({"retention_days": 30}, "retention_days", 30),
        ({"retention_days": "365"}, "retention_days", 365),
        ({"request_timeout_seconds": 2.5}, "request_timeout", 2.5),
        ({"request_timeout_seconds": "600"}, "request_timeout", 600.0),
        ({"max_retries": 0}, "max_retries", 0),
        ({"max_retries": None}, "max_retries", 8),
    ],
)
def test_numbers_valid(fields: dict[str, Any], attribute: str, expected: object) -> None:
    assert getattr(_parse(**fields), attribute) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"lookback_window_minutes": -1},
            "lookback_window_minutes must be an integer from 0 to 1440, got -1.",
        ),
        (
            {"lookback_window_minutes": 1441},
            "lookback_window_minutes must be an integer from 0 to 1440, got 1441.",
        ),
        ({"lookback_window_minutes": 2.5}, "(a whole number)"),
        ({"lookback_window_minutes": True}, "got a boolean"),
        ({"lookback_window_minutes": [30]}, "got an array"),
        ({"lookback_window_minutes": "thirty"}, "got 'thirty'"),
        ({"retention_days": 0}, "retention_days must be an integer from 1 to 365"),
        ({"retention_days": 366}, "retention_days must be an integer from 1 to 365"),
        ({"retention_days": {"days": 30}}, "got an object"),
        ({"request_timeout_seconds": 0}, "request_timeout_seconds must be a number from 1 to 600"),
        (
            {"request_timeout_seconds": 601},
            "request_timeout_seconds must be a number from 1 to 600",
        ),
        ({"request_timeout_seconds": float("nan")}, "got NaN"),
        ({"request_timeout_seconds": float("inf")}, "request_timeout_seconds"),
        ({"request_timeout_seconds": "inf"}, "request_timeout_seconds"),
        ({"max_retries": 21}, "max_retries must be an integer from 0 to 20"),
        ({"max_retries": -1}, "max_retries must be an integer from 0 to 20"),
        ({"max_retries": False}, "got a boolean"),
        ({"max_retries": 10**5000}, "max_retries"),
        ({"allow_http": "yes"}, "allow_http must be true or false"),
        ({"allow_http": 1}, "allow_http must be true or false"),
        ({"allow_http": []}, "allow_http must be true or false"),
    ],
)
def test_numbers_and_booleans_invalid(fields: dict[str, Any], expected: str) -> None:
    assert expected in _error(**fields)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("2024-01-31", datetime(2024, 1, 31, tzinfo=timezone.utc)),
        ("2024-01-31T12:30:00Z", datetime(2024, 1, 31, 12, 30, tzinfo=timezone.utc)),
        (
            "2024-01-31T12:30:00.123456Z",
            datetime(2024, 1, 31, 12, 30, 0, 123456, tzinfo=timezone.utc),
        ),
        ("2024-01-31T12:30:00", datetime(2024, 1, 31, 12, 30, tzinfo=timezone.utc)),
        ("2024-01-31T12:30:00+02:00", datetime(2024, 1, 31, 10, 30, tzinfo=timezone.utc)),
    ],
)
def test_start_date(value: str | None, expected: datetime | None) -> None:
    parsed = _parse(start_date=value).start_date
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is timezone.utc


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2024-13-01", "31/01/2024", "2024-01-31T25:00:00Z", "0001-01-01T00:00:00+01:00"],
)
def test_start_date_invalid(value: str) -> None:
    message = _error(start_date=value)
    assert message.startswith("start_date") and "2024-01-31T00:00:00Z" in message


@pytest.mark.parametrize("value", [20240131, ["2024-01-31"], True])
def test_start_date_wrong_type(value: object) -> None:
    assert "start_date must be an ISO 8601 date string" in _error(start_date=value)


PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_ca_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text(PEM)
    assert _parse(ca_bundle=str(bundle)).verify == str(bundle)
    assert _parse(ca_bundle="").verify is True
    assert _parse(ca_bundle=None).verify is True


@pytest.mark.parametrize("kind", ["missing", "directory", "not_pem", "nul"])
def test_ca_bundle_invalid(tmp_path: Path, kind: str) -> None:
    path = {
        "missing": str(tmp_path / "nope.pem"),
        "directory": str(tmp_path),
        "not_pem": str(tmp_path / "x.txt"),
        "nul": "ca\x00.pem",
    }[kind]
    (tmp_path / "x.txt").write_text("hello")
    message = _error(ca_bundle=path)
    assert message.startswith("ca_bundle")
    if kind != "nul":
        assert path in message


def test_ca_bundle_wrong_type() -> None:
    assert "ca_bundle must be a string" in _error(ca_bundle=["a.pem"])


# load_config_file


def test_load_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**BASE, "project": "backend"}))
    assert load_config_file(str(path)).projects == ("backend",)


def test_load_config_file_errors(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_config_file(missing)
    assert missing in info.value.message
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config_file(str(tmp_path))
    broken = tmp_path / "broken.json"
    broken.write_text(f'{{"auth_token": "{TOKEN}", "organization": ')
    with pytest.raises(ConfigError, match="not valid JSON") as info:
        load_config_file(str(broken))
    assert str(broken) in info.value.message and TOKEN not in info.value.message
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config_file(str(binary))
    array = tmp_path / "array.json"
    array.write_text("[]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load_config_file(str(array))


# property-based: never anything but Config or ConfigError


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)
FIELDS = [
    "auth_token",
    "hostname",
    "organization",
    "project",
    "projects",
    "start_date",
    "lookback_window_minutes",
    "retention_days",
    "allow_http",
    "ca_bundle",
    "request_timeout_seconds",
    "max_retries",
]
URLISH = st.builds(
    "".join,
    st.lists(
        st.sampled_from(
            [
                "http://",
                "https://",
                "ftp://",
                "HTTP://",
                "[",
                "]",
                "::1",
                ":",
                "@",
                "/",
                "api",
                "0",
                "127.0.0.1",
                "localhost",
                "sentry.io",
                ".",
                "-",
                "9000",
                "65536",
                "?",
                "#",
                "%",
                " ",
                "\t",
                "..",
                "ü",
                "x" * 70,
                "_",
            ]
        ),
        max_size=8,
    ),
)


def _check(config: Config, allow_http: bool) -> None:
    assert config.base_url.startswith(("http://", "https://"))
    assert not config.base_url.endswith("/") and not config.base_url.endswith("/api/0")
    parts = urlsplit(config.base_url)
    assert (
        parts.netloc == config.host
        and not parts.query
        and not parts.fragment
        and "@" not in parts.netloc
    )
    if parts.scheme == "http" and not allow_http:
        host = parts.hostname or ""
        assert host == "localhost" or ipaddress.ip_address(host).is_loopback
    assert config.api_url("x/").startswith(config.base_url + "/api/0/")


def _parse_or_config_error(raw: dict[str, Any]) -> Config | None:
    try:
        return parse_config(raw)
    except ConfigError:
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FIELDS), value=JSON)
def test_any_json_value_in_any_field(field: str, value: object) -> None:
    raw = {**BASE, "hostname": "sentry.io", field: value}
    config = _parse_or_config_error(raw)
    if config is not None:
        _check(config, allow_http=raw.get("allow_http") in (True, "true"))


@settings(max_examples=200, deadline=None)
@given(raw=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=len(FIELDS)))
def test_any_json_values_everywhere(raw: dict[str, Any]) -> None:
    _parse_or_config_error(raw)


@settings(max_examples=500, deadline=None)
@given(
    hostname=st.text(max_size=60) | URLISH,
    allow_http=st.sampled_from([None, False, True, "true", "false"]),
)
def test_any_hostname(hostname: str, allow_http: object) -> None:
    config = _parse_or_config_error({**BASE, "hostname": hostname, "allow_http": allow_http})
    if config is not None:
        _check(config, allow_http=allow_http in (True, "true"))


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=12, max_size=40),
    field=st.sampled_from([f for f in FIELDS if f != "auth_token"]),
    before=st.text(max_size=10),
    after=st.text(max_size=10),
    wrap=st.sampled_from(["plain", "list", "url", "scheme"]),
)
def test_token_never_leaks(secret: str, field: str, before: str, after: str, wrap: str) -> None:
    text = {
        "plain": f"{before}{secret}{after}",
        "list": f"{before}{secret}{after}",
        "url": f"https://{before}{secret}{after}.example.com/{secret}",
        "scheme": f"{secret}://{secret}",
    }[wrap]
    value: object = [text, secret] if wrap == "list" else text
    try:
        parse_config({**BASE, "auth_token": f"Bearer {secret}", field: value})
    except ConfigError as exc:
        assert secret not in exc.message
