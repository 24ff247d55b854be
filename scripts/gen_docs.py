#!/usr/bin/env python3
"""Generate the connector's documentation and Airbyte files from the code, so they cannot drift.

Writes, from ``source_sentry`` itself (``SPEC``, ``STREAMS``, the discovered catalog and its
schemas, ``__version__``) and ``CHANGELOG.md`` when present:

- ``docs/sentry.md``: the connector page, in the structure of Airbyte's connector pages;
- ``integration_tests/spec.json``: the expected SPEC for Airbyte's acceptance tests;
- ``integration_tests/configured_catalog.json``: every stream, incremental where it can be;
- ``integration_tests/abnormal_state.json``: a state far in the future for every incremental stream;
- ``acceptance-test-config.yml``: Airbyte's acceptance-test config for the image.

Usage::

    python scripts/gen_docs.py           # rewrite the files
    python scripts/gen_docs.py --check   # exit 1 and name the files that differ

tests/packaging/test_generated_files.py fails when a committed file differs from what this
script generates: run it and commit the result.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from source_sentry import __version__  # noqa: E402
from source_sentry.catalog import discovered_streams  # noqa: E402
from source_sentry.protocol import spec_message  # noqa: E402
from source_sentry.spec import DEFAULT_RETENTION_DAYS, EXPLORE_FIELDS, SPEC  # noqa: E402
from source_sentry.streams import DELETED_AT, STREAMS, StreamDef, stream_by_name  # noqa: E402

FUTURE_CURSOR = "2100-01-01T00:00:00.000000Z"
DOCKER_IMAGE = "source-sentry/source-sentry"
CHANGELOG = ROOT / "CHANGELOG.md"
README = ROOT / "README.md"

# Common errors: (situation, a literal fragment of the message the connector prints, what to do).
# tests/packaging/test_generated_files.py checks every fragment still occurs in source_sentry/.
# Fields of rows that are still counting while a sync reads them (the interval in progress).
GROWING: dict[str, tuple[str, ...]] = {"release_health": ("sessions", "users")}

COMMON_ERRORS: tuple[tuple[str, str, str], ...] = (
    (
        "Wrong, revoked or expired token",
        "rejected the auth token",
        "Create a new token (an internal integration token is best) and paste it without `Bearer `.",
    ),
    (
        "Token lacks a scope for one stream",
        "Give the token the scope",
        "Add the named scope to the token, or deselect the stream; the other streams still sync.",
    ),
    (
        "Unknown organization",
        "was not found on",
        "Use the slug from `https://sentry.io/organizations/<slug>/`, not the display name.",
    ),
    (
        "Unknown project",
        "Check the project slug and the token's project access",
        "Fix `project`/`projects`, or give an internal integration access to the project.",
    ),
    (
        "Organization or project missing at read time",
        "does not exist (HTTP 404)",
        "Check `organization` and the project slugs.",
    ),
    (
        "Self-hosted Sentry behind a private CA",
        "TLS verification failed for",
        "Set `ca_bundle` to the PEM file of your CA. Verification is never turned off.",
    ),
    (
        "Plain `http://` to a remote host",
        "allow_http",
        "Use https, or turn on `allow_http` for a trusted private network.",
    ),
    (
        "Sentry keeps answering 429",
        "kept rate-limiting",
        "Another client shares the token's rate limit; sync at another time or give the connector its own token.",
    ),
    (
        "Sentry or the network is down",
        "attempts); ",
        "A `transient_error`: the next attempt resumes from the last checkpoint.",
    ),
    (
        "Sentry is retiring an endpoint the connector reads",
        "It will be answered with 410 during brownouts",
        "A warning, once per endpoint and sync, naming Sentry's replacement: upgrade source-sentry.",
    ),
    (
        "A deprecated endpoint in a scheduled brownout",
        "This is a scheduled brownout of a deprecated endpoint",
        "A `transient_error` for that stream only; the next sync tries again. Upgrade source-sentry.",
    ),
    (
        "Too many Explore fields",
        "Sentry allows at most",
        "Shorten `explore_fields` for that dataset to at most 20 fields, the keys and `timestamp` included.",
    ),
    (
        "A project was renamed in Sentry",
        "was renamed to",
        "Put the new slug (named in the message) in `project`/`projects`; the other projects keep syncing.",
    ),
    (
        "A hostname that does not resolve",
        "does not resolve (DNS lookup failed)",
        "Fix `hostname` (blank means sentry.io), or this machine's DNS settings.",
    ),
    (
        "A proxy or server that pages wrongly",
        "which may be a full page",
        "A `transient_error` that keeps the previous cursor; if it persists, check what sits between "
        "the connector and Sentry (a proxy that strips the `Link` header).",
    ),
    (
        "A catalog naming a stream this connector lacks",
        "names a stream this source does not have",
        "Run discover again and rebuild the connection's catalog.",
    ),
)

AIRBYTE_TYPES = {
    ("string", None, None): "`string`",
    ("string", "date-time", None): "`timestamp_with_timezone`",
    ("string", "date-time", "timestamp_with_timezone"): "`timestamp_with_timezone`",
    ("string", "date-time", "timestamp_without_timezone"): "`timestamp_without_timezone`",
    ("string", "date", None): "`date`",
    ("number", None, "integer"): "`integer`",
    ("integer", None, None): "`integer`",
    ("number", None, None): "`number`",
    ("boolean", None, None): "`boolean`",
    ("array", None, None): "`array`",
    ("object", None, None): "`object`",
    (None, None, None): "any JSON value (`unknown`)",
}


# ------------------------------------------------------------------ helpers
def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _by_name() -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in discovered_streams()}


def _endpoint(stream: StreamDef) -> str:
    route = stream.route.replace("{organization}", "{org}")
    params = dict(stream.params)
    parts = [f"{k}={','.join(v) if isinstance(v, (list, tuple)) else v}" for k, v in params.items()]
    text = f"`{route}`"
    if parts:
        text = f"`{route}?{'&'.join(parts)}`"
    variants = [v for v in stream.variants if v]
    if variants:
        text += " for " + " and ".join("`" + "&".join(f"{k}={val}" for k, val in v.items()) + "`" for v in variants)
    return text


def _semantics(stream: StreamDef) -> str:
    per = "per project, " if stream.per_project else ""
    if not stream.incremental:
        return f"{per}full refresh only: the whole list every sync".capitalize()
    if stream.kind == "windowed":
        text = (
            f"{per}server-side time window from the saved cursor less the look-back to now, split into "
            "parallel windows where the server allows concurrent requests; every window's page cursor "
            "is checkpointed after every page"
        )
    elif stream.kind == "child":
        parent = stream.parent
        assert parent is not None
        text = f"for each `{parent.stream}` record that changed since the last sync"
        if stream_by_name(parent.stream).delta_hook is not None:
            text += f" (`{parent.stream}` listed as that stream lists it: between full lists, only what moved)"
        if parent.change_fields:
            text += " (" + ", ".join(f"`{f}`" for f in parent.change_fields) + ")"
        if parent.since_field and stream.cursor_field:
            text += f"; only children newer than the parent's previous `{parent.since_field}`"
        elif parent.since_field:
            text += f" (`{parent.since_field}`)"
    elif stream.kind == "usage":
        text = f"{per}daily outcomes from the saved day on, the last complete day read again"
    elif stream.kind == "sessions":
        text = (
            "from the last complete interval less `release_health_tail_hours` to now (rows that did not change "
            "are not emitted again); a range whose answer may have been cut by Sentry's 10,000 data points is "
            "asked again in halves, then per project"
        )
    elif stream.kind == "timeline":
        text = (
            f"time windows oldest first from the saved `{stream.cursor_field}` to now less "
            "`ingestion_lag_minutes`; a window cut by Sentry's 10,000-row cap goes on from its last second"
        )
        if stream.dataset is not None:
            defaults = ", ".join(f"`{f}`" for f in EXPLORE_FIELDS[stream.dataset])
            text += (
                f"; fields by default {defaults}, else `explore_fields` with the keys and `timestamp` (at most 20); "
                "windows within 30 "
                "days are asked as a relative range (full fidelity), older ones may be sampled (`sampled` true, "
                "warned once)"
            )
    else:
        text = f"{per}the whole list, emits new and changed records (a fingerprint per record in the state)"
        if stream.volatile_fields:
            text += "; changes of " + ", ".join(f"`{f}`" for f in stream.volatile_fields) + " alone are ignored"
    if stream.tombstones:
        text += f"; a record that disappears and whose own route answers 404 is emitted with `{DELETED_AT}` set"
    if stream.retention_bound:
        text += "; one that ages out of retention is not a deletion"
    if stream.extra_fields:
        added = [f for f in stream.extra_fields if f != DELETED_AT]
        if added:
            text += "; adds " + ", ".join(f"`{f}`" for f in added)
    if stream.note:
        text += f"; {stream.note}"
    return text[0].upper() + text[1:]


def _types(schema: Any, counter: Counter[tuple[Any, Any, Any]]) -> None:
    """Count the (type, format, airbyte_type) of every property, nested ones included."""
    if not isinstance(schema, dict):
        return
    for prop in (schema.get("properties") or {}).values():
        if not isinstance(prop, dict):
            continue
        types = prop.get("type")
        if isinstance(types, list):
            types = [t for t in types if t != "null"]
            types = types[0] if len(types) == 1 else (None if not types else "/".join(types))
        counter[(types, prop.get("format"), prop.get("airbyte_type"))] += 1
        _types(prop, counter)
        if isinstance(prop.get("items"), dict):
            _types(prop["items"], counter)


def _changelog() -> list[tuple[str, str, str]]:
    """(version, date, subject) rows from CHANGELOG.md (Keep a Changelog style), newest first."""
    if not CHANGELOG.exists():
        return [
            (
                __version__,
                "unreleased",
                "First release: a drop-in replacement for Airbyte's Sentry source (same config and stream "
                "names) with incremental issues, releases and projects, an events look-back, checkpoints in "
                "every stream, several projects per connection, and the streams listed above.",
            )
        ]
    # A version's subject is the paragraph under its heading when there is one, else its bullets.
    rows: list[tuple[str, str, str]] = []
    heading = re.compile(r"^##\s+\[?v?(?P<version>[0-9][^\]\s]*)\]?(?:\s*[-(]\s*(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2}|[A-Za-z]+)\)?)?")
    current: list[Any] | None = None
    for line in CHANGELOG.read_text(encoding="utf-8").splitlines():
        match = heading.match(line)
        if match:
            current = [match["version"], match["date"] or "unreleased", [], []]
            rows.append(current)  # type: ignore[arg-type]
        elif line.startswith("## "):
            current = None  # [Unreleased]
        elif current is not None and line.lstrip().startswith(("- ", "* ")):
            current[2].append(line.strip()[2:].strip())
        elif current is not None and current[2] and line.startswith((" ", "\t")) and line.strip():
            current[2][-1] += " " + line.strip()  # a bullet's continuation line
        elif current is not None and not current[2] and line.strip() and not line.startswith(("#", "[")):
            current[3].append(line.strip())  # the summary paragraph
    return [(v, d, " ".join(summary) if summary else " ".join(i if i.endswith((".", ";")) else i + "." for i in items) or "-")
            for v, d, items, summary in rows]  # type: ignore[misc]


def stream_table() -> list[str]:
    """The table of streams (docs/sentry.md and the README), read off the stream table."""
    catalog = _by_name()
    lines = [
        "| Stream | Endpoint | Primary key | Cursor | Sync modes | Incremental semantics | Scope | Fields |",
        "| :----- | :------- | :---------- | :----- | :--------- | :-------------------- | :---- | -----: |",
    ]
    for stream in STREAMS:
        discovered = catalog.get(stream.name, {})
        schema = discovered.get("json_schema") or {}
        n_fields = len(schema.get("properties") or {})
        sync_modes = ", ".join(m.replace("_", " ") for m in discovered.get("supported_sync_modes", []))
        cursor = f"`{stream.cursor_field}`" if stream.cursor_field else "-"
        key = ", ".join(f"`{k}`" for k in stream.key_fields)
        lines.append(
            f"| `{stream.name}` | {_endpoint(stream)} | {key} | {cursor} | {sync_modes} | "
            f"{_cell(_semantics(stream))} | `{stream.scope}` | {n_fields} |"
        )
    return lines


# ------------------------------------------------------------------ README.md
README_START = "<!-- streams: generated by scripts/gen_docs.py from source_sentry/streams.py; do not edit -->"
README_END = "<!-- /streams -->"


def render_readme() -> str:
    """README.md with its stream table regenerated between the two markers."""
    text = README.read_text(encoding="utf-8")
    start, end = text.index(README_START), text.index(README_END)
    return text[: start + len(README_START)] + "\n" + "\n".join(stream_table()) + "\n" + text[end:]


# ------------------------------------------------------------------ docs/sentry.md
def render_docs() -> str:
    spec = SPEC["connectionSpecification"]
    props = sorted(spec["properties"].items(), key=lambda kv: kv[1].get("order", 99))
    required = set(spec.get("required", []))
    catalog = _by_name()
    scopes = sorted({s.scope for s in STREAMS})
    core_scopes = sorted({s.scope for s in STREAMS if s.name in ("events", "issues", "projects", "releases")})
    out: list[str] = []
    w = out.append

    w("# Sentry\n")
    w(
        "<!-- Generated by scripts/gen_docs.py from source_sentry (SPEC, STREAMS, schemas, __version__). "
        "Do not edit: run `python scripts/gen_docs.py`. -->\n"
    )
    w(
        f"This page contains the setup guide and reference information for the Sentry source connector "
        f"(`source-sentry` {__version__}). It copies a Sentry organization's data ({len(STREAMS)} streams: "
        "error events, issues, projects, releases and more) incrementally, and is a drop-in replacement for "
        "Airbyte's Sentry connector: the same configuration fields and stream names.\n"
    )

    w("## Prerequisites\n")
    w("- A Sentry organization on sentry.io (US or EU region) or a self-hosted Sentry server reachable over HTTPS.")
    w("- The organization's [slug](https://docs.sentry.io/product/accounts/membership/) (as in `https://sentry.io/organizations/<slug>/`).")
    w(
        "- A Sentry [auth token](https://docs.sentry.io/api/auth/#auth-tokens) with the read scopes "
        + ", ".join(f"`{s}`" for s in core_scopes)
        + " for the core streams, and "
        + ", ".join(f"`{s}`" for s in scopes if s not in core_scopes)
        + " for the others. An internal integration token (Settings > Developer Settings > Custom "
        "Integrations) is recommended; organization tokens (`sntrys_`) cannot read events or issues."
    )
    w(
        "- Optionally the [project](https://docs.sentry.io/product/projects/) slugs to sync; "
        "without any, every project the token can see is synced.\n"
    )

    w("## Setup guide\n")
    w("### Set up the Sentry connector in Airbyte\n")
    w("1. Add the connector: on Airbyte Open Source, **Settings > Sources > + New connector > Add a new Docker connector**, "
      f"with the image `{DOCKER_IMAGE}` (or the registry you pushed it to) and the tag `{__version__}`; "
      "on Airbyte Cloud, the same through **Builder > Custom connectors** where your workspace allows Docker images.")
    w("2. Click **Sources** and then **+ New source**, and select **Sentry**.")
    w("3. Fill in the fields below (only **Authentication Tokens** and **Organization** are required).")
    w("4. Click **Set up source**: the connection check names what to fix if the token, organization, project or scopes are wrong.\n")
    w("### Set up with PyAirbyte or on the command line\n")
    w("```python\nimport airbyte as ab\n\nsource = ab.get_source(\n    \"source-sentry\",\n"
      "    local_executable=\"source-sentry\",  # after `pip install source-sentry`\n"
      "    config={\"auth_token\": ab.get_secret(\"SENTRY_AUTH_TOKEN\"), \"organization\": \"acme\"},\n)\n"
      "source.check()\nsource.select_all_streams()\nresult = source.read()\n```\n")
    w("`source-sentry spec | check | discover | read` speak the Airbyte protocol; `source-sentry sync` "
      "writes into a local DuckDB file without Airbyte.\n")
    w("### Configuration fields\n")
    w("| Field | Title | Type | Required | Default | Description |")
    w("| :---- | :---- | :--- | :------- | :------ | :---------- |")
    for name, prop in props:
        kind = prop.get("type", "")
        if kind == "array":
            kind = f"array of {prop.get('items', {}).get('type', 'any')}"
        if prop.get("airbyte_secret"):
            kind += " (secret)"
        default = prop.get("default")
        default_text = "" if default is None else f"`{json.dumps(default)}`"
        w(
            f"| `{name}` | {_cell(prop.get('title', ''))} | {kind} | {'yes' if name in required else 'no'} | "
            f"{default_text} | {_cell(prop.get('description', ''))} |"
        )
    w("")

    w("## Supported sync modes\n")
    w("The Sentry source connector supports the following [sync modes](https://docs.airbyte.com/cloud/core-concepts#connection-sync-modes):\n")
    modes = {
        "overwrite": "- [Full Refresh - Overwrite](https://docs.airbyte.com/understanding-airbyte/connections/full-refresh-overwrite/)",
        "append": "- [Full Refresh - Append](https://docs.airbyte.com/understanding-airbyte/connections/full-refresh-append)",
    }
    dest = SPEC.get("supported_destination_sync_modes", [])
    for mode in ("overwrite", "append"):
        if mode in dest:
            w(modes[mode])
    if SPEC.get("supportsIncremental"):
        if "append" in dest:
            w("- [Incremental - Append](https://docs.airbyte.com/understanding-airbyte/connections/incremental-append)")
        if "append_dedup" in dest:
            w("- [Incremental - Append + Deduped](https://docs.airbyte.com/understanding-airbyte/connections/incremental-append-deduped)")
    full_only = [s.name for s in STREAMS if not s.incremental]
    w("")
    w(
        "Every stream supports Full Refresh"
        + (
            ", and every stream but " + ", ".join(f"`{n}`" for n in full_only) + " supports Incremental."
            if full_only
            else " and Incremental."
        )
        + " Incremental state is per stream and checkpointed after every page, so a failed sync resumes where it stopped.\n"
    )

    w("## Supported streams\n")
    w("Endpoints are under `/api/0/` of the Sentry host. The schemas are those `discover` returns.\n")
    out.extend(stream_table())
    w("")

    w("## Limitations & troubleshooting\n")
    w("<details>\n<summary>\nExpand to see details about Sentry connector limitations and troubleshooting.\n</summary>\n")
    w("### Connector limitations\n")
    w("#### Retention\n")
    w(":::warning")
    w(
        f"Sentry keeps error events for {DEFAULT_RETENTION_DAYS} days on paid plans and self-hosted servers "
        "(30 on Developer plans; set `retention_days`). Nothing older is requested. **Full Refresh | Overwrite** "
        "replaces your table with what Sentry still keeps, so older events are deleted from the destination. "
        "Use an Incremental or Append mode to keep history, and sync more often than the retention period: "
        "a saved cursor older than retention is reported with the gap Sentry already deleted."
    )
    w(":::\n")
    w("#### Rate limiting\n")
    w(
        "Sentry limits each caller per endpoint in fixed windows and caps concurrent requests, and says so in "
        "`X-Sentry-Rate-Limit-*` headers. One budget per host, shared by every stream, paces requests by those "
        "headers (the project events list allows about 1 request per second). On a 429 the connector waits for "
        "the window's reset; 5xx answers, timeouts and resets are retried with exponential backoff up to "
        "`max_retries`, then the sync fails with a `transient_error` after checkpointing what it read.\n"
    )
    w("#### Late events\n")
    w(
        "Events arrive minutes after their `dateCreated`. Each incremental events sync starts "
        "`lookback_window_minutes` before the previous window's end; overlap is duplicates (deduplicated on `id`), "
        "never a loss.\n"
    )
    w("#### Release health, Explore datasets and replays\n")
    w(
        "`release_health` rows are per interval (`release_health_interval`: `1d` or `1h`) and group (project, "
        "release, environment, `session.status`); the crash-free session rate of a release is "
        "`1 - crashed / all sessions`. Sentry answers at most 10,000 data points per request and drops groups "
        "beyond them without saying so: an answer holding as many groups as that allows is asked again for half "
        "the range (down to one interval, then per project), so no group is lost (should one interval of one "
        "project still fill the cap, the sync warns that groups may be missing). Each sync reads "
        "`release_health_tail_hours` again, because sessions arrive late, and emits only rows that changed.\n"
    )
    w(
        "The Explore datasets (`spans`, `logs`, `uptime_results`, `tracemetrics`) can be far larger than errors: "
        "`sync` reads them only when chosen (`--streams`, a catalog, or the config's `explore_datasets`). Sentry "
        "serves at most 20 fields per request (`explore_fields`), 10,000 rows per query (a window that reaches "
        "them goes on from the second of its last row), and full fidelity only for ranges within 30 days of now: "
        "older windows may come back sampled (`meta.dataScanned: partial`), and their rows carry `sampled = true` "
        "with one warning per sync. The newest `ingestion_lag_minutes` (10) are left for the next sync, because "
        "Sentry is still ingesting them. A dataset the Sentry server does not serve (`tracemetrics` is newer than "
        "the others; self-hosted servers of older versions answer `400`) is warned about and read nothing, "
        "without failing the sync. `replays` are read in windows of their `finished_at` the same way.\n"
    )
    w("#### Deprecated endpoints\n")
    w(
        "Sentry marks endpoints it is retiring with `X-Sentry-Deprecation-Date` and "
        "`X-Sentry-Replacement-Endpoint`, then answers `410` during scheduled brownouts before removing them. The "
        "connector reads no endpoint Sentry lists as deprecated; should one become so, each sync warns once per "
        "endpoint naming the replacement, and a brownout fails only that stream, as a `transient_error`.\n"
    )
    w("### Troubleshooting\n")
    w("| Situation | The message contains | What to do |")
    w("| :-------- | :------------------- | :--------- |")
    for situation, fragment, todo in COMMON_ERRORS:
        w(f"| {situation} | `{_cell(fragment.strip())}` | {_cell(todo)} |")
    w("")
    w("</details>\n")

    w("## Data type map\n")
    counter: Counter[tuple[Any, Any, Any]] = Counter()
    for stream in catalog.values():
        _types(stream.get("json_schema"), counter)
    w("| Integration Type | Airbyte Type | Properties |")
    w("| :--------------- | :----------- | ---------: |")
    grouped: dict[tuple[str, str], int] = {}
    for (kind, fmt, ab_type), count in counter.items():
        label = "any" if kind is None else f"`{kind}`"
        if fmt:
            label += f" (`format: {fmt}`)"
        if ab_type:
            label += f" (`airbyte_type: {ab_type}`)"
        target = AIRBYTE_TYPES.get((kind, fmt, ab_type)) or AIRBYTE_TYPES.get((kind, None, None)) or "`unknown`"
        grouped[(label, target)] = grouped.get((label, target), 0) + count
    for (label, target), count in sorted(grouped.items()):
        w(f"| {label} | {target} | {count} |")
    w("")
    w("Every property is nullable (`[type, \"null\"]`): Sentry omits or nulls many fields depending on the SDK and plan.\n")

    w("## Changelog\n")
    w("<details>\n  <summary>Expand to review</summary>\n")
    w("| Version | Date | Subject |")
    w("| :------ | :--- | :------ |")
    for version, date, subject in _changelog():
        w(f"| {version} | {date} | {_cell(subject)} |")
    w("")
    w("</details>")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ Airbyte acceptance-test files
def render_spec() -> str:
    return _json(SPEC)


def render_spec_message() -> str:
    """The line ``source-sentry spec`` prints, byte for byte (see source_sentry/cli.py)."""
    return (orjson.dumps(spec_message(SPEC)) + b"\n").decode()


def render_configured_catalog() -> str:
    streams = []
    for stream in discovered_streams():
        incremental = "incremental" in stream["supported_sync_modes"]
        entry: dict[str, Any] = {
            "stream": stream,
            "sync_mode": "incremental" if incremental else "full_refresh",
            "destination_sync_mode": "append",
        }
        if incremental:
            # Streams incremental without a cursor (changes told by fingerprints) have none.
            entry["cursor_field"] = stream.get("default_cursor_field", [])
        if stream.get("source_defined_primary_key"):
            entry["primary_key"] = stream["source_defined_primary_key"]
        streams.append(entry)
    return _json({"streams": streams})


def render_abnormal_state() -> str:
    states = []
    for stream in STREAMS:
        if not stream.incremental or not stream.cursor_field:
            continue
        states.append(
            {
                "type": "STREAM",
                "stream": {
                    "stream_descriptor": {"name": stream.name},
                    "stream_state": {stream.cursor_field: FUTURE_CURSOR},
                },
            }
        )
    return _json(states)


def render_acceptance_config() -> str:
    lines = [
        "# Airbyte's connector acceptance tests (CAT) for this image. Generated by scripts/gen_docs.py:",
        "# run `python scripts/gen_docs.py` after changing streams or the spec.",
        "# secrets/config.json is a real config (never committed): see integration_tests/sample_config.json.",
        "# With `project` set to one project slug, abnormal_state.json's events cursor applies to it.",
        f"connector_image: {DOCKER_IMAGE}:dev",
        "test_strictness_level: high",
        "acceptance_tests:",
        "  spec:",
        "    tests:",
        "      - spec_path: integration_tests/spec.json",
        "  connection:",
        "    tests:",
        "      - config_path: secrets/config.json",
        "        status: succeed",
        "      - config_path: integration_tests/invalid_config.json",
        "        status: failed",
        "  discovery:",
        "    tests:",
        "      - config_path: secrets/config.json",
        "  basic_read:",
        "    tests:",
        "      - config_path: secrets/config.json",
        "        configured_catalog_path: integration_tests/configured_catalog.json",
        "        timeout_seconds: 1800",
        "        expect_records:",
        '          bypass_reason: "The records depend on the Sentry organization behind secrets/config.json; '
        'tests/acceptance/ checks them against the Sentry emulator."',
        "        empty_streams:",
    ]
    for stream in STREAMS:
        if stream.name in OPTIONAL_DATA_STREAMS:
            lines.append(f"          - name: {stream.name}")
            lines.append(f'            bypass_reason: "{OPTIONAL_DATA_STREAMS[stream.name]}"')
    lines += [
        "  full_refresh:",
        "    tests:",
        "      - config_path: secrets/config.json",
        "        configured_catalog_path: integration_tests/configured_catalog.json",
        "        timeout_seconds: 1800",
    ]
    moving = "Sentry moves it between two reads without the record changing."
    ignored = [(s.name, s.volatile_fields, moving) for s in STREAMS if s.volatile_fields]
    ignored += [(name, fields, "The interval in progress grows between two reads.") for name, fields in GROWING.items()]
    if ignored:
        lines.append("        ignored_fields:")
        for name, fields, reason in ignored:
            lines.append(f"          {name}:")
            for field_name in fields:
                lines.append(f"            - name: {field_name}")
                lines.append(f'              bypass_reason: "{reason}"')
    lines += [
        "  incremental:",
        "    tests:",
        "      - config_path: secrets/config.json",
        "        configured_catalog_path: integration_tests/configured_catalog.json",
        "        timeout_seconds: 1800",
        "        future_state:",
        "          future_state_path: integration_tests/abnormal_state.json",
    ]
    return "\n".join(lines) + "\n"


# Streams an organization commonly has no records in; Airbyte's basic read must not require them.
OPTIONAL_DATA_STREAMS: dict[str, str] = {
    "user_feedback": "Only organizations that collect user feedback have any.",
    "monitors": "Only organizations using Sentry Crons have monitors.",
    "monitor_checkins": "Only organizations using Sentry Crons have check-ins.",
    "release_deploys": "Only organizations that report deploys have any.",
    "release_commits": "Only organizations with a repository integration have release commits.",
    "detectors": "Depends on the organization's alerting setup.",
    "workflows": "Depends on the organization's alerting setup.",
}


# ------------------------------------------------------------------ main
def outputs() -> dict[str, str]:
    """Every generated file: repository-relative path -> its text."""
    return {
        "docs/sentry.md": render_docs(),
        "README.md": render_readme(),
        "integration_tests/spec.json": render_spec(),
        "integration_tests/configured_catalog.json": render_configured_catalog(),
        "integration_tests/abnormal_state.json": render_abnormal_state(),
        "acceptance-test-config.yml": render_acceptance_config(),
        "source_sentry/spec_message.json": render_spec_message(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report files that differ; exit 1 if any")
    args = parser.parse_args(argv)
    stale = []
    for rel, text in outputs().items():
        path = ROOT / rel
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(rel)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("Out of date (run `python scripts/gen_docs.py`): " + ", ".join(stale), file=sys.stderr)
        return 1
    for rel in stale:
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
