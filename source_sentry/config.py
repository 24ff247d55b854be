"""Parse and validate the connector config into a typed, normalised :class:`Config`.

Accepts configs written for Airbyte's Sentry connector unchanged (``auth_token``, ``hostname``,
``organization``, ``project``) plus the options of :mod:`source_sentry.spec`. Every problem is a
:class:`~source_sentry.errors.ConfigError` naming the field and what to fix; the token is
registered as a secret as soon as it is read and never appears in any message.

Hostname rules (``hostname``):

* missing, null, blank -> ``https://sentry.io``;
* ``host``, ``host:port`` -> https (``us.sentry.io``, ``sentry.example.com:8443``, ``[::1]:9000``);
* a URL with scheme ``http`` or ``https``, optionally with a path prefix for a server behind a
  reverse proxy (``https://example.com/sentry``); a trailing ``/`` and ``/api/0`` are removed;
* plain ``http`` only to loopback hosts (127.0.0.0/8, ::1, ``localhost``) unless ``allow_http``;
* rejected: other schemes, credentials (``user:pass@``), query strings, fragments, whitespace,
  control characters, empty hosts, bad ports (0, > 65535, not digits), hosts longer than 253
  characters or with invalid labels, path segments other than plain names (``..``, ``%``, ``;``),
  and URLs that point inside the API (``.../api/0/organizations/...``);
* the host is lowercased and a default port (443 for https, 80 for http) dropped.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import orjson

from source_sentry.errors import ConfigError, register_secret
from source_sentry.spec import (
    DEFAULT_EXPLORE_DAYS,
    DEFAULT_FULL_LIST_MAX_RECORDS,
    DEFAULT_FULL_SCAN_HOURS,
    DEFAULT_HOSTNAME,
    DEFAULT_INGESTION_LAG_MINUTES,
    DEFAULT_RELEASE_HEALTH_TAIL_HOURS,
    EXPLORE_DATASETS,
    EXPLORE_FIELDS,
    EXPLORE_MAX_FIELDS,
    EXPLORE_REQUIRED,
    SPEC,
)

__all__ = ["Config", "is_saas_host", "load_config_file", "load_json_file", "parse_config"]

MAX_HOST_LENGTH = 253  # DNS limit for a full name
MAX_HOSTNAME_VALUE_LENGTH = 2048  # the whole field, path prefix included
MAX_SLUG_LENGTH = 100  # Sentry uses 50; leave room rather than reject a real slug
# Sentry slugs: lowercase letters, digits, '-' and '_'; numeric ids work too in API paths.
_SLUG_RE = re.compile(r"^[a-z0-9_-]+$")
_LABEL_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_PATH_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._~-]+$")
_TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII without space: a valid header value
_BEARER_RE = re.compile(r"^bearer(\s+|$)", re.IGNORECASE)
_SAAS_REGION_HOSTS = {"sentry.io", "us.sentry.io", "de.sentry.io", "www.sentry.io"}
_TRUE = {"true"}
_FALSE = {"false"}


@dataclass(frozen=True)
class Config:
    """A validated connector config; ``auth_token`` is left out of ``repr``."""

    auth_token: str = field(repr=False)
    organization: str
    projects: tuple[str, ...]  # () = every project the token can see
    base_url: str  # scheme://host[:port][/prefix], no trailing slash, no /api/0
    host: str  # host[:port] as shown to users
    verify: bool | str  # True, or the CA bundle path (never False)
    start_date: datetime | None  # tz-aware UTC
    lookback_window: timedelta
    retention_days: int
    request_timeout: float
    max_retries: int
    # "" (discover on sentry.io only), "auto" (discover anywhere), "us" or "de".
    region: str = ""
    # Issues and releases: hours between full lists (0 = every sync); see the spec.
    full_scan: timedelta = timedelta(hours=DEFAULT_FULL_SCAN_HOURS)
    full_list_max_records: int = DEFAULT_FULL_LIST_MAX_RECORDS
    release_health_interval: str = "1d"
    release_health_tail: timedelta = timedelta(hours=DEFAULT_RELEASE_HEALTH_TAIL_HOURS)
    explore_datasets: tuple[str, ...] = ()
    # Dataset -> the fields read (the default list unless the config names others).
    explore_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    explore_days: int = DEFAULT_EXPLORE_DAYS
    ingestion_lag: timedelta = timedelta(minutes=DEFAULT_INGESTION_LAG_MINUTES)
    webhook_secret: str | None = field(default=None, repr=False)
    # End users' personal data in project_users: "hash", "drop" or "keep" (see the spec).
    personal_data: str = "hash"

    @property
    def is_saas(self) -> bool:
        """True for sentry.io and its regional hosts."""
        return is_saas_host(self.host)

    def api_url(self, path: str) -> str:
        """``base_url + "/api/0/" + path`` (leading slashes of ``path`` ignored)."""
        return f"{self.base_url}/api/0/{path.lstrip('/')}"


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _Reader:
    """Reads fields from the raw dict; every message it builds has the token masked."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.token = ""

    def show(self, value: object, limit: int = 80) -> str:
        """A short, quoted, token-free rendering of a user value for messages."""
        try:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
        except (ValueError, RecursionError):  # huge ints, deep nesting
            text = _type_name(value)
        if self.token:
            text = text.replace(self.token, "****")
        if len(text) > limit:
            text = text[:limit] + "..."
        return repr(text) if isinstance(value, str) else text

    def fail(self, message: str) -> ConfigError:
        if self.token:
            message = message.replace(self.token, "****")
        return ConfigError(message)

    def optional_str(self, name: str) -> str | None:
        """The stripped string value, or None when missing, null or blank."""
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{name} must be a string, got {_type_name(value)}.")
        value = value.strip()
        return value or None

    def boolean(self, name: str) -> bool:
        value = self.raw.get(name)
        if value is None:
            return bool(SPEC["connectionSpecification"]["properties"][name]["default"])
        if isinstance(value, bool):
            return value
        # UIs and env-templated configs sometimes send booleans as text.
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise self.fail(f"{name} must be true or false, got {self.show(value)}.")

    def option(self, name: str) -> float:
        """A numeric option, with the default and bounds the spec declares for it (one
        definition: what the form allows is what the config accepts)."""
        prop = SPEC["connectionSpecification"]["properties"][name]
        return self.number(name, prop["default"], prop["minimum"], prop["maximum"], integer=prop["type"] == "integer")

    def number(self, name: str, default: float, low: float, high: float, integer: bool) -> float:
        value = self.raw.get(name)
        kind = "an integer" if integer else "a number"
        expected = f"{name} must be {kind} from {low:g} to {high:g}"
        if value is None:
            return int(default) if integer else float(default)
        if isinstance(value, str) and value.strip():
            try:  # numbers written as text ("30") are accepted, like booleans
                value = float(value.strip()) if not integer else _int_from_text(value)
            except ValueError:
                raise self.fail(f"{expected}, got {self.show(value)}.") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"{expected}, got {_type_name(value)}.")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"{expected}, got {self.show(value)}.")
        if integer and value != int(value):
            raise self.fail(f"{expected} (a whole number), got {self.show(value)}.")
        if not low <= value <= high:
            raise self.fail(f"{expected}, got {self.show(value)}.")
        return int(value) if integer else float(value)


def _int_from_text(text: str) -> float:
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        return float(stripped)  # "30.0" is fine; "30.5" is caught as not whole later


def _read_token(reader: _Reader) -> str:
    value = reader.raw.get("auth_token")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ConfigError(
            "auth_token is required: create a token in Sentry (Settings > Developer Settings > "
            "Custom Integrations, or User Settings > Personal Tokens) with read scopes."
        )
    if not isinstance(value, str):
        raise ConfigError(f"auth_token must be a string, got {_type_name(value)}.")
    register_secret(value)
    token = _BEARER_RE.sub("", value.strip()).strip()  # a pasted "Bearer <token>" header value
    register_secret(token)
    reader.token = token
    if not token:
        raise ConfigError("auth_token is empty after removing 'Bearer ': paste the token itself.")
    if not _TOKEN_RE.match(token):
        raise ConfigError(
            "auth_token contains spaces, control or non-ASCII characters: paste only the token."
        )
    return token


def _slug(reader: _Reader, name: str, value: str) -> str:
    """Validate one organization or project slug; lowercase it (Sentry slugs are lowercase)."""
    lowered = value.strip().lower()
    if "://" in lowered or "/" in lowered or "." in lowered:
        hint = _slug_from_url(value) if name == "organization" else None
        suggestion = f' Try "{hint}".' if hint else ""
        raise reader.fail(
            f"{name} must be a slug, not a URL or path: got {reader.show(value)}.{suggestion}"
        )
    if len(lowered) > MAX_SLUG_LENGTH or not _SLUG_RE.match(lowered):
        raise reader.fail(
            f"{name} must be a Sentry slug (lowercase letters, digits, '-' and '_'), got "
            f"{reader.show(value)}: use the slug shown in the {name}'s URL or settings."
        )
    return lowered


def _slug_from_url(value: str) -> str | None:
    """Guess the slug from a pasted Sentry URL: acme.sentry.io or .../organizations/acme/."""
    text = value.strip()
    try:
        parts = urlsplit(text if "://" in text else f"https://{text}")
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    segments = [s for s in parts.path.split("/") if s]
    if "organizations" in segments:
        index = segments.index("organizations")
        if index + 1 < len(segments) and _SLUG_RE.match(segments[index + 1].lower()):
            return segments[index + 1].lower()
    if host.endswith(".sentry.io") and host not in _SAAS_REGION_HOSTS:
        candidate = host[: -len(".sentry.io")]
        if _SLUG_RE.match(candidate):
            return candidate
    return None


def _projects(reader: _Reader) -> tuple[str, ...]:
    slugs: list[str] = []
    project = reader.raw.get("project")
    if project is not None:
        if not isinstance(project, str):
            raise reader.fail(
                f"project must be a string (one slug, or several separated by commas), got "
                f"{_type_name(project)}."
            )
        slugs += [_slug(reader, "project", p) for p in project.split(",") if p.strip()]
    projects = reader.raw.get("projects")
    if isinstance(projects, str):  # tolerate "a,b" where a list was expected
        projects = projects.split(",")
    if projects is not None:
        if not isinstance(projects, list):
            raise reader.fail(
                f"projects must be an array of project slugs, got {_type_name(projects)}."
            )
        for index, item in enumerate(projects):
            if not isinstance(item, str):
                raise reader.fail(
                    f"projects[{index}] must be a project slug (a string), got {_type_name(item)}."
                )
            if item.strip():
                slugs.append(_slug(reader, f"projects[{index}]", item))
    return tuple(dict.fromkeys(slugs))  # drop duplicates, keep order


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_dns_name(reader: _Reader, shown: str, host: str) -> str:
    """Validate a DNS host name (IDN converted to ASCII); return it lowercased."""
    if len(host) > MAX_HOST_LENGTH:
        raise reader.fail(f"hostname: the host name is longer than {MAX_HOST_LENGTH} characters.")
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise reader.fail(f"hostname {shown} has an invalid host name.") from None
    if len(ascii_host) > MAX_HOST_LENGTH:
        raise reader.fail(f"hostname: the host name is longer than {MAX_HOST_LENGTH} characters.")
    labels = ascii_host.split(".")
    if not all(_LABEL_RE.match(label) for label in labels):
        raise reader.fail(
            f"hostname {shown} has an invalid host name: use letters, digits, '-' and dots, "
            "e.g. sentry.example.com."
        )
    if labels[-1].isdigit():  # all-numeric last label: a mistyped IPv4 address like 10.0.0.256
        raise reader.fail(f"hostname {shown} is not a valid IPv4 address or host name.")
    return ascii_host


def _split_host_port(reader: _Reader, shown: str, netloc: str) -> tuple[str, int | None, bool]:
    """Split ``host[:port]`` / ``[v6][:port]``; return (host, port, is_ipv6)."""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise reader.fail(f"hostname {shown} has an unclosed '[' in an IPv6 address.")
        host, rest, is_v6 = netloc[1:end], netloc[end + 1 :], True
        if rest and not rest.startswith(":"):
            raise reader.fail(f"hostname {shown}: unexpected text after the IPv6 address.")
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text = netloc.partition(":")
        port_text = port_text if sep else None
        is_v6 = False
    port = None
    if port_text is not None:
        if not (port_text.isascii() and port_text.isdigit()):
            raise reader.fail(
                f"hostname {shown} has an invalid port: use a number from 1 to 65535."
            )
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise reader.fail(f"hostname {shown} has port {port}: use a number from 1 to 65535.")
    return host, port, is_v6


def _parse_hostname(reader: _Reader, allow_http: bool) -> tuple[str, str]:
    """Return (base_url, host) for the ``hostname`` field; see the module docstring for rules."""
    value = reader.raw.get("hostname")
    if value is not None and not isinstance(value, str):
        raise reader.fail(f"hostname must be a string, got {_type_name(value)}.")
    text = (value or "").strip() or DEFAULT_HOSTNAME
    if len(text) > MAX_HOSTNAME_VALUE_LENGTH:
        raise reader.fail(f"hostname is longer than {MAX_HOSTNAME_VALUE_LENGTH} characters.")
    # Cc/Cf/Cs: control, invisible format (e.g. zero-width space, which IDNA would silently
    # drop) and lone surrogates: never part of a host a person meant to type.
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in text):
        raise reader.fail("hostname contains control characters: type the host name again.")
    has_scheme = "://" in text
    rest = text.split("://", 1)[1] if has_scheme else text
    netloc_part = re.split(r"[/?#]", rest, maxsplit=1)[0]
    # Checked before anything that echoes the value: these parts may hold passwords or keys.
    if "@" in netloc_part:
        raise reader.fail(
            "hostname contains credentials (user:password@): remove the credentials from "
            "hostname; the token goes in auth_token."
        )
    if "?" in text:
        raise reader.fail("hostname must not contain a query string ('?...'): give only the host.")
    if "#" in text:
        raise reader.fail("hostname must not contain a fragment ('#...'): give only the host.")
    shown = reader.show(text)
    if any(c.isspace() for c in text):
        raise reader.fail(f"hostname {shown} contains spaces: give only the host, e.g. sentry.io.")
    try:
        parts = urlsplit(text if has_scheme else f"https://{text}")
    except ValueError:
        raise reader.fail(f"hostname {shown} is not a valid host or URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise reader.fail(
            f"hostname {shown} uses scheme {reader.show(parts.scheme)}: use https:// (or http:// "
            "for a server on this machine)."
        )
    host, port, is_v6 = _split_host_port(reader, shown, parts.netloc)
    if not host:
        raise reader.fail(
            f"hostname {shown} has no host: use e.g. sentry.io or sentry.example.com."
        )
    if is_v6:
        if "%" in host:  # zone ids only make sense for link-local addresses on one machine
            raise reader.fail(f"hostname {shown}: IPv6 zone ids ('%') are not supported.")
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise reader.fail(f"hostname {shown} has an invalid IPv6 address.") from None
        host = address.compressed
        display_host = f"[{host}]"
    else:
        try:
            host = str(ipaddress.IPv4Address(host))
        except ValueError:
            host = _check_dns_name(reader, shown, host)
        display_host = host
    path = _base_path(reader, shown, parts.path)
    if scheme == "http" and not allow_http and not _is_loopback(host):
        raise reader.fail(
            f"hostname {shown} uses plain http to a host that is not this machine, which sends "
            "the token unencrypted: use https://, or set allow_http to true on a trusted network."
        )
    if port == {"https": 443, "http": 80}[scheme]:
        port = None  # one canonical base_url per server
    netloc = display_host if port is None else f"{display_host}:{port}"
    return f"{scheme}://{netloc}{path}", netloc


def _base_path(reader: _Reader, shown: str, path: str) -> str:
    """The path prefix of a self-hosted server behind a proxy: '' or '/seg/seg' (no /api/0)."""
    segments = path.split("/")[1:] if path else []
    if segments and segments[-1] == "":
        segments.pop()  # one trailing slash
    if segments[-2:] == ["api", "0"]:
        segments = segments[:-2]
    if "api" in segments:
        raise reader.fail(
            f"hostname {shown} points inside the API: give only the server's base URL, "
            "e.g. https://sentry.example.com."
        )
    for segment in segments:
        if segment in ("", ".", "..") or not _PATH_SEGMENT_RE.match(segment):
            raise reader.fail(
                f"hostname {shown} has an unsupported path: only a plain prefix like "
                "https://example.com/sentry is allowed."
            )
    return "".join(f"/{s}" for s in segments)


def _start_date(reader: _Reader) -> datetime | None:
    value = reader.raw.get("start_date")
    example = "e.g. 2024-01-31 or 2024-01-31T00:00:00Z"
    if value is None:
        return None
    if not isinstance(value, str):
        raise reader.fail(
            f"start_date must be an ISO 8601 date string ({example}), got {_type_name(value)}."
        )
    text = value.strip()
    if not text:
        return None
    if text[-1] in "Zz":  # Python 3.10's fromisoformat does not read "Z"
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)  # a date alone is midnight
        if parsed.tzinfo is None:  # naive means UTC, as everywhere in Sentry
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise reader.fail(
            f"start_date {reader.show(value)} is not an ISO 8601 date or date-time ({example})."
        ) from None


def _ca_bundle(reader: _Reader) -> bool | str:
    path = reader.optional_str("ca_bundle")
    if path is None:
        return True
    full = os.path.abspath(os.path.expanduser(path))
    shown = reader.show(path)
    try:
        with open(full, "rb") as handle:
            data = handle.read(16 * 1024 * 1024)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "cannot be opened"
        raise reader.fail(
            f"ca_bundle {shown} cannot be read ({reason}): give the path of a PEM file."
        ) from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise reader.fail(
            f"ca_bundle {shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)."
        )
    return full


def parse_config(raw: object) -> Config:
    """Validate ``raw`` (the parsed config JSON) and return a :class:`Config`.

    Raises :class:`ConfigError` naming the field and the fix; the token never appears in it.
    """
    if not isinstance(raw, dict):
        raise ConfigError(
            "The config must be a JSON object with auth_token and organization, got "
            f"{_type_name(raw)}."
        )
    reader = _Reader(raw)
    token = _read_token(reader)  # first: everything after may echo values, masked by the reader

    organization_text = reader.optional_str("organization")
    if organization_text is None:
        raise reader.fail(
            "organization is required: the slug of your Sentry organization, e.g. acme."
        )
    organization = _slug(reader, "organization", organization_text)
    projects = _projects(reader)
    allow_http = reader.boolean("allow_http")
    base_url, host = _parse_hostname(reader, allow_http)
    region, base_url, host = _region(reader, base_url, host)
    lookback = reader.option("lookback_window_minutes")
    return Config(
        auth_token=token,
        organization=organization,
        projects=projects,
        base_url=base_url,
        host=host,
        verify=_ca_bundle(reader),
        start_date=_start_date(reader),
        lookback_window=timedelta(minutes=lookback),
        retention_days=int(reader.option("retention_days")),
        request_timeout=reader.option("request_timeout_seconds"),
        max_retries=int(reader.option("max_retries")),
        region=region,
        full_scan=timedelta(hours=reader.option("full_scan_hours")),
        full_list_max_records=int(reader.option("full_list_max_records")),
        release_health_interval=_choice(reader, "release_health_interval"),
        release_health_tail=timedelta(hours=reader.option("release_health_tail_hours")),
        explore_datasets=_explore_datasets(reader),
        explore_fields=_explore_fields(reader),
        explore_days=int(reader.option("explore_days")),
        ingestion_lag=timedelta(minutes=reader.option("ingestion_lag_minutes")),
        webhook_secret=_webhook_secret(reader),
        personal_data=_choice(reader, "personal_data"),
    )


def _webhook_secret(reader: _Reader) -> str | None:
    value = reader.optional_str("webhook_secret")
    if value is not None:
        register_secret(value)  # never in a message, a log or the database
    return value


def _choice(reader: _Reader, name: str) -> str:
    """A string option that must be one of the spec's ``enum``."""
    prop = SPEC["connectionSpecification"]["properties"][name]
    value = reader.optional_str(name)
    if value is None:
        return str(prop["default"])
    if value.lower() not in prop["enum"]:
        raise reader.fail(f"{name} must be one of {', '.join(prop['enum'])}, not {reader.show(value)}.")
    return value.lower()


def _explore_datasets(reader: _Reader) -> tuple[str, ...]:
    value = reader.raw.get("explore_datasets")
    if isinstance(value, str):  # tolerate "spans,logs"
        value = [v for v in value.split(",") if v.strip()]
    if value is None:
        return ()
    if not isinstance(value, list):
        raise reader.fail(f"explore_datasets must be an array of dataset names, got {_type_name(value)}.")
    names = []
    for index, item in enumerate(value):
        name = item.strip().lower() if isinstance(item, str) else None
        if name not in EXPLORE_DATASETS:
            raise reader.fail(
                f"explore_datasets[{index}] must be one of {', '.join(EXPLORE_DATASETS)}, got {reader.show(item)}."
            )
        names.append(name)
    return tuple(dict.fromkeys(names))


def _explore_fields(reader: _Reader) -> dict[str, tuple[str, ...]]:
    """The fields read per Explore dataset: the config's list (or the default) with the keys and
    timestamp added; Sentry refuses more than 20 fields in one request."""
    raw = reader.raw.get("explore_fields")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise reader.fail(f"explore_fields must be an object of dataset -> field list, got {_type_name(raw)}.")
    unknown = [name for name in raw if name not in EXPLORE_DATASETS]
    if unknown:
        raise reader.fail(
            f"explore_fields has an unknown dataset {reader.show(unknown[0])}: use {', '.join(EXPLORE_DATASETS)}."
        )
    fields: dict[str, tuple[str, ...]] = {}
    for dataset in EXPLORE_DATASETS:
        given = raw.get(dataset)
        if isinstance(given, str):
            given = [g for g in given.split(",") if g.strip()]
        if given is None:
            given = list(EXPLORE_FIELDS[dataset])
        if not isinstance(given, list) or not all(isinstance(g, str) and g.strip() for g in given):
            raise reader.fail(f"explore_fields.{dataset} must be an array of field names (strings).")
        chosen = tuple(dict.fromkeys([*EXPLORE_REQUIRED[dataset], *(g.strip() for g in given)]))
        if len(chosen) > EXPLORE_MAX_FIELDS:
            raise reader.fail(
                f"explore_fields.{dataset} asks for {len(chosen)} fields with the ones always read "
                f"({', '.join(EXPLORE_REQUIRED[dataset])}); Sentry allows at most {EXPLORE_MAX_FIELDS} per "
                "request: remove some."
            )
        fields[dataset] = chosen
    return fields


def is_saas_host(host: str) -> bool:
    return host in _SAAS_REGION_HOSTS


def _region(reader: _Reader, base_url: str, host: str) -> tuple[str, str, str]:
    """Read ``region``; for "us"/"de" return the regional base URL and host instead."""
    value = (reader.optional_str("region") or "").strip().lower()
    if value in ("", "auto"):
        return value, base_url, host
    if value in ("us", "de"):
        if not is_saas_host(host):
            raise reader.fail(
                f"region {value!r} is a sentry.io region, but hostname is {host}: leave region "
                "blank for a self-hosted server."
            )
        return value, f"https://{value}.sentry.io", f"{value}.sentry.io"
    raise reader.fail(f"region must be blank, 'us', 'de' or 'auto', not {reader.show(value)}.")


def load_json_file(path: str, what: str) -> Any:
    """The JSON value in the file at ``path`` (a catalog or a state); a ConfigError naming the
    ``what`` and the path when it cannot be read or is not JSON."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ConfigError(f"Cannot read the {what} file {path}: {exc.strerror or exc}.") from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"The {what} file {path} is not valid JSON: {exc}.") from None


def load_config_file(path: str) -> Config:
    """Read a JSON config file and :func:`parse_config` it; file problems name the path."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"Config file {path!r} does not exist.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"Config file {path!r} is not UTF-8 text.") from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "invalid path"
        raise ConfigError(f"Config file {path!r} cannot be read: {reason}.") from None
    try:
        raw = json.loads(text)
    except (RecursionError, ValueError) as exc:
        if not isinstance(exc, json.JSONDecodeError):
            # Nesting too deep, or an integer of thousands of digits: not a config anyone wrote.
            raise ConfigError(f"Config file {path!r} is not a usable JSON config: {type(exc).__name__}.") from None
        # exc.msg and the position only: the text itself may hold the token.
        raise ConfigError(
            f"Config file {path!r} is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}."
        ) from None
    return parse_config(raw)
