"""Typed columns: JSON-schema mapping, casts, date-times, schema evolution, odd names."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import orjson
import pytest
from airbyte_protocol.models import AirbyteRecordMessageMetaChange
from dest_helpers import catalog, configured_stream, event, paged, query, record, state, status, sync, table_columns
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from source_sentry import errors
from source_sentry.destination.columns import (
    BIGINT,
    BOOLEAN,
    DOUBLE,
    JSON,
    MAX_NAME_LENGTH,
    META_COLUMNS,
    TIMESTAMPTZ,
    VARCHAR,
    ColumnSet,
    column_type_for_schema,
    parse_datetime,
    quote_ident,
    storable_field,
)


@pytest.mark.parametrize(
    "schema, expected",
    [
        ({"type": ["string", "null"]}, VARCHAR),
        ({"type": "string"}, VARCHAR),
        ({"type": ["string", "null"], "format": "date-time"}, TIMESTAMPTZ),
        ({"type": ["number", "null"]}, DOUBLE),
        ({"type": ["integer", "null"]}, BIGINT),
        ({"type": ["integer", "number", "null"]}, DOUBLE),
        ({"type": ["boolean", "null"]}, BOOLEAN),
        ({"type": ["object", "null"], "properties": {"a": {"type": "string"}}}, JSON),
        ({"type": ["array", "null"], "items": {}}, JSON),
        ({}, JSON),
        ({"type": ["string", "integer"]}, JSON),
        ({"type": "null"}, JSON),
        ({"oneOf": [{"type": "string"}, {"type": "object"}]}, JSON),
    ],
)
def test_column_type_for_schema(schema, expected):
    assert column_type_for_schema(schema) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-11-19T10:00:00Z", datetime(2024, 11, 19, 10, 0, tzinfo=timezone.utc)),
        ("2024-11-19T10:00:00.123Z", datetime(2024, 11, 19, 10, 0, 0, 123000, tzinfo=timezone.utc)),
        ("2024-11-19T10:00:00.123456789Z", datetime(2024, 11, 19, 10, 0, 0, 123456, tzinfo=timezone.utc)),
        ("2024-11-19T10:00:00", datetime(2024, 11, 19, 10, 0, tzinfo=timezone.utc)),
        ("2024-11-19T12:00:00+02:00", datetime(2024, 11, 19, 10, 0, tzinfo=timezone.utc)),
        ("2024-11-19T12:00:00+0200", datetime(2024, 11, 19, 10, 0, tzinfo=timezone.utc)),
        ("2024-11-19 10:00:00.5z", datetime(2024, 11, 19, 10, 0, 0, 500000, tzinfo=timezone.utc)),
        ("2024-11-19", datetime(2024, 11, 19, tzinfo=timezone.utc)),
        ("yesterday", None),
        ("2024-13-45T10:00:00Z", None),
        ("", None),
    ],
)
def test_parse_datetime(text, expected):
    assert parse_datetime(text) == expected


@settings(deadline=None)  # no per-example time limit: a slow machine is not a failure
@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)))
def test_parse_datetime_round_trips_iso_with_z(moment):
    text = moment.isoformat() + "Z"
    assert parse_datetime(text) == moment.replace(tzinfo=timezone.utc)


def test_typed_columns_and_metadata_columns(tmp_path):
    path = tmp_path / "s.duckdb"
    sync(path, catalog(configured_stream("events", "incremental", "append")), paged("events", [event(1)], page=1))
    columns = table_columns(path, "events")
    assert columns == {
        "_airbyte_raw_id": "VARCHAR",
        "_airbyte_extracted_at": "TIMESTAMP WITH TIME ZONE",
        "_airbyte_generation_id": "BIGINT",
        "_airbyte_meta": "JSON",
        "id": "VARCHAR",
        "title": "VARCHAR",
        "dateCreated": "TIMESTAMP WITH TIME ZONE",
        "size": "BIGINT",
        "score": "DOUBLE",
        "handled": "BOOLEAN",
        "user": "JSON",
        "tags": "JSON",
        "context": "JSON",
    }
    row = query(
        path,
        'SELECT "_airbyte_extracted_at"::VARCHAR, "dateCreated"::VARCHAR, "user"->>\'id\', tags, "_airbyte_meta", '
        'length("_airbyte_raw_id") FROM "events"',
    )
    assert row == [
        ("2024-11-19 07:06:40.123+00", "2024-11-02 10:00:01+00", "u1", '[{"key":"level","value":"error"}]', '{"changes":[]}', 36)
    ]


def test_type_mismatches_become_null_with_meta_changes(tmp_path):
    path = tmp_path / "s.duckdb"
    data = event(
        1,
        dateCreated="not a date",
        size="12",  # castable: kept
        score="NaN-ish",
        handled="maybe",
        title=42,  # castable to VARCHAR
        user="just a string",  # JSON accepts any value
    )
    bad_int = event(2, size=1.5, score=float("inf"), handled="TRUE", title={"a": 1})
    sync(path, catalog(configured_stream("events", "incremental", "append")), paged("events", [data, bad_int], page=2))
    rows = query(path, 'SELECT id, "dateCreated", size, score, handled, title, "user", "_airbyte_meta" FROM "events" ORDER BY id')
    first, second = rows
    assert first[:7] == ("1", None, 12, None, None, "42", '"just a string"')
    assert sorted(c["field"] for c in orjson.loads(first[7])["changes"]) == ["dateCreated", "handled", "score"]
    assert all(
        c == {"field": c["field"], "change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"} for c in orjson.loads(first[7])["changes"]
    )
    assert second[:7] == ("2", second[1], None, None, True, '{"a":1}', '{"id":"u2"}')
    assert sorted(c["field"] for c in orjson.loads(second[7])["changes"]) == ["score", "size"]


def test_bigint_out_of_range_and_bool_are_mismatches(tmp_path):
    path = tmp_path / "s.duckdb"
    sync(
        path,
        catalog(configured_stream("events", "incremental", "append")),
        paged("events", [event(1, size=2**70), event(2, size=True), event(3, size=-(2**63))], page=3),
    )
    assert query(path, 'SELECT size FROM "events" ORDER BY id') == [(None,), (None,), (-(2**63),)]


def test_new_fields_add_columns_across_syncs(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append_dedup", primary_key=[["id"]]))
    sync(path, cat, paged("events", [event(1)], page=1))
    sync(
        path,
        cat,
        paged("events", [event(2, newText="hello", newNumber=3, newFlag=False, newObject={"x": [1]}, alwaysNull=None)], page=1),
    )
    for table in ("events", "_airbyte_raw_events"):
        columns = table_columns(path, table)
        assert columns["newText"] == "VARCHAR"
        assert columns["newNumber"] == "DOUBLE"
        assert columns["newFlag"] == "BOOLEAN"
        assert columns["newObject"] == "JSON"
        assert "alwaysNull" not in columns  # no column until a value shows its type
    assert query(path, 'SELECT id, "newText", "newNumber", "newFlag", "newObject" FROM "events" ORDER BY id') == [
        ("1", None, None, None, None),
        ("2", "hello", 3.0, False, '{"x":[1]}'),
    ]
    # A later value of another type is cast, or nulled and noted.
    sync(path, cat, paged("events", [event(3, newNumber="oops", newText=7)], page=1))
    assert query(path, 'SELECT "newNumber", "newText", "_airbyte_meta"->\'$.changes[0].field\' FROM "events" WHERE id = \'3\'') == [
        (None, "7", '"newNumber"')
    ]


def test_case_insensitive_field_collisions_get_stable_suffixes(tmp_path):
    path = tmp_path / "s.duckdb"
    schema = {"type": "object", "properties": {"id": {"type": "string"}, "ID": {"type": "integer"}}}
    cat = catalog(configured_stream("things", "incremental", "append", schema=schema))
    sync(path, cat, paged("things", [{"id": "a", "ID": 1, "Id": True, "_airbyte_meta": "mine"}], page=1))
    sync(path, cat, paged("things", [{"Id": False, "ID": 2, "id": "b"}], page=1))
    columns = table_columns(path, "things")
    assert [name for name in columns if not name.startswith("_airbyte_") or name.startswith("_airbyte_meta_")] == [
        "id",
        "ID_1",
        "Id_2",
        "_airbyte_meta_1",
    ]
    assert query(path, 'SELECT "id", "ID_1", "Id_2", "_airbyte_meta_1" FROM "things" ORDER BY 1') == [
        ("a", 1, True, "mine"),
        ("b", 2, False, None),
    ]


def test_column_set_suffixes_deterministically():
    columns = ColumnSet()
    assert [columns.add(f, VARCHAR).name for f in ["id", "ID", "Id", "ID_1", "_airbyte_raw_id"]] == [
        "id",
        "ID_1",
        "Id_2",
        "ID_1_1",
        "_airbyte_raw_id_1",
    ]


ODD = 'we"ird.stream name-ü'


def test_odd_stream_and_column_names_are_quoted(tmp_path):
    path = tmp_path / "s.duckdb"
    schema = {
        "type": "object",
        "properties": {'quote"d': {"type": "string"}, "select": {"type": "string"}, "a.b": {"type": "number"}, "it's": {"type": "string"}},
    }
    cat = catalog(
        configured_stream(ODD, "incremental", "append_dedup", schema=schema, primary_key=[["select"]]),
        configured_stream("order", "full_refresh", "overwrite", schema=schema),
    )
    data = {'quote"d': 'x"y', "select": "k", "a.b": 1.5, "it's": "o'k", "sp ace": "new"}
    result = sync(path, cat, paged(ODD, [data, dict(data, **{"a.b": 2.5})], page=2) + paged("order", [data], page=1))
    assert result.streams[ODD].rows == 1
    assert query(path, 'SELECT "quote""d", "select", "a.b", "it\'s", "sp ace" FROM "we""ird.stream name-ü"') == [
        ('x"y', "k", 2.5, "o'k", "new")
    ]
    assert query(path, 'SELECT count(*) FROM "_airbyte_raw_we""ird.stream name-ü"') == [(2,)]
    assert query(path, 'SELECT "select" FROM "order"') == [("k",)]


def test_json_strings_and_unicode_survive(tmp_path):
    path = tmp_path / "s.duckdb"
    text = 'line1\nline2 \t "quoted" \\ back ü 日本 🚀 \u0000 end'
    sync(path, catalog(configured_stream("events", "incremental", "append")), paged("events", [event(1, title=text, context=text)], page=1))
    assert query(path, 'SELECT title, context FROM "events"') == [(text, orjson.dumps(text).decode())]


def test_records_without_emitted_at_get_now(tmp_path):
    path = tmp_path / "s.duckdb"
    message = record("events", event(1))
    del message["record"]["emitted_at"]
    sync(
        path,
        catalog(configured_stream("events", "incremental", "append")),
        [status("events", "STARTED"), message, state("events", {}), status("events", "COMPLETE")],
    )
    ((extracted,),) = query(path, 'SELECT "_airbyte_extracted_at" > now() - INTERVAL 1 HOUR FROM "events"')
    assert extracted


# ---------------------------------------------------------------- keys DuckDB cannot take as they are

LONG = "k" * 300
# Record key -> the column it lands in: readable, the same in every sync.
ODD_KEYS = {
    "": "_empty",  # DuckDB: zero-length delimited identifier
    "   ": "_blank",
    "\t\n": "_blank_1",
    "a\x00b": "a_b",  # control characters: DuckDB takes them, clients cannot type them
    "line\nbreak\x7f": "line_break_",
    "\ud800x": "\\ud800x",  # a lone surrogate has no UTF-8: its escape, like JSON's
    LONG: "k" * 246 + "_" + hashlib.sha256(LONG.encode()).hexdigest()[:8],  # 255: start + hash of the key
    "_airbyte_meta": "_airbyte_meta_1",
    "_AIRBYTE_RAW_ID": "_AIRBYTE_RAW_ID_1",
}


def _column_map(path) -> dict[str, str]:
    return dict(query(path, "SELECT field_name, column_name FROM _airbyte_columns WHERE stream_name = 'things'"))


@pytest.mark.parametrize("mode", ["append", "append_dedup", "overwrite"])
def test_keys_duckdb_cannot_take_land_in_renamed_columns(tmp_path, mode):
    """A key like "" failed every sync (ALTER TABLE ... ADD COLUMN ""): now it is a renamed column."""
    path = tmp_path / "s.duckdb"
    schema = {"type": "object", "properties": {"id": {"type": "string"}}}
    sync_mode = "full_refresh" if mode == "overwrite" else "incremental"
    cat = catalog(configured_stream("things", sync_mode, mode, schema=schema, primary_key=[["id"]]))
    names = list(ODD_KEYS.values())
    select = f'SELECT {", ".join(map(quote_ident, names))}, "_airbyte_meta" FROM "things" ORDER BY id'

    first = {"id": "1", **{key: f"v{i}" for i, key in enumerate(ODD_KEYS)}}
    result = sync(path, cat, paged("things", [first], page=1))
    assert result.ok and result.streams["things"].rows == 1
    stored = _column_map(path)
    assert {field: stored[field] for field in map(storable_field, ODD_KEYS)} == {
        storable_field(key): name for key, name in ODD_KEYS.items()
    }
    *values, meta = query(path, select)[0]
    assert values == [f"v{i}" for i in range(len(ODD_KEYS))]
    assert orjson.loads(meta) == {"changes": []}  # the mapping is kept: a rename loses nothing

    # The next sync reuses every column (no _1 twins), with values of another type cast to them.
    second = {"id": "1" if mode == "overwrite" else "2", **{key: i for i, key in enumerate(ODD_KEYS)}}
    assert sync(path, cat, paged("things", [second], page=1)).ok
    assert _column_map(path) == stored
    assert len(table_columns(path, "things")) == len(META_COLUMNS) + 1 + len(ODD_KEYS)
    *values, meta = query(path, select)[-1]
    assert values == [str(i) for i in range(len(ODD_KEYS))]


def test_column_names_are_readable_and_unique():
    columns = ColumnSet()
    fields = ["", " ", "_empty", "a\x01", "a\x02", LONG, LONG + "x", "\ud800"]
    assert [columns.add(f, VARCHAR).name for f in fields] == [
        "_empty",
        "_blank",
        "_empty_1",
        "a_",
        "a__1",
        ODD_KEYS[LONG],
        "k" * 246 + "_" + hashlib.sha256((LONG + "x").encode()).hexdigest()[:8],
        "\\ud800",
    ]
    assert all(len(c.name) <= MAX_NAME_LENGTH for c in columns)
    # The same keys later find their columns; nothing is added. (The literal text of an escape is
    # stored as the same field: the one ambiguity, for a key no API sends.)
    assert [columns.add(f, JSON).name for f in ["", "\ud800", "\\ud800"]] == ["_empty", "\\ud800", "\\ud800"]
    assert len(columns) == len(fields)


# ---------------------------------------------------------------- values any JSON parser can produce

REPLACED = {"change": "TRUNCATED", "reason": "DESTINATION_SERIALIZATION_ERROR"}


@pytest.fixture
def secrets(monkeypatch) -> set[str]:
    """The secrets the destination masks, for this test only (other tests register theirs, e.g.
    tokens of hypothesis configs, in the same process: a value holding one would be masked)."""
    registered: set[str] = set()
    monkeypatch.setattr(errors, "_SECRETS", registered)
    return registered


def _changes(meta: str) -> dict[str, dict]:
    """``_airbyte_meta.changes`` by field, each checked against Airbyte's protocol model."""
    changes = orjson.loads(meta)["changes"]
    for change in changes:
        AirbyteRecordMessageMetaChange.model_validate(change)
    return {c["field"]: {k: v for k, v in c.items() if k != "field"} for c in changes}


def test_lone_surrogates_in_values_become_u_fffd_noted_in_meta(secrets, tmp_path):
    """Python's json hands over "\\ud800" as a lone surrogate: no UTF-8, so it cannot be written as it is."""
    path = tmp_path / "s.duckdb"
    records = [
        event(1, title="bad \ud800 title", context={"k\udfff": ["v\ud801", "ok"]}, user={"id": "u1"}, note="x\udc00"),
        event(2, title={"t": "\ud800"}),  # a VARCHAR column given an object holding one
        event(3, title="\ud83d\ude00 pair"),  # a valid surrogate pair is one character: kept, not noted
    ]
    assert sync(path, catalog(configured_stream("events", "incremental", "append")), paged("events", records, page=3)).ok
    rows = query(path, 'SELECT title, context, "user", note, "_airbyte_meta" FROM "events" ORDER BY id')
    assert rows[0][:4] == ("bad \ufffd title", '{"k\ufffd":["v\ufffd","ok"]}', '{"id":"u1"}', "x\ufffd")
    assert _changes(rows[0][4]) == {"title": REPLACED, "context": REPLACED, "note": REPLACED}
    assert rows[1][0] == '{"t":"\ufffd"}' and _changes(rows[1][4]) == {"title": REPLACED}
    assert rows[2][0] == "\U0001f600 pair" and _changes(rows[2][4]) == {}


def test_integers_beyond_64_bits_are_kept_in_json_and_nulled_in_typed_columns(secrets, tmp_path):
    path = tmp_path / "s.duckdb"
    big, huge = 2**64 + 1, -(10**40)
    data = event(1, context={"big": big, "list": [huge]}, user=big, title=big, size=big, score=10**400)
    assert sync(path, catalog(configured_stream("events", "incremental", "append")), paged("events", [data], page=1)).ok
    ((context, user, title, size, score, meta),) = query(
        path, 'SELECT context, "user", title, size, score, "_airbyte_meta" FROM "events"'
    )
    assert (context, user, title) == (f'{{"big":{big},"list":[{huge}]}}', str(big), str(big))
    assert (size, score) == (None, None)
    assert _changes(meta) == {f: {"change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"} for f in ("size", "score")}


@pytest.mark.parametrize("depth", [100, 130, 300, 1000])
def test_deep_nesting_is_stored_whole(secrets, tmp_path, depth):
    """orjson writes 255 levels, DuckDB's read_json reads 128: deeper values still land, whole."""
    nested: dict = {"leaf": [1, "x"]}
    for _ in range(depth):
        nested = {"n": nested}
    text = '{"n":' * depth + '{"leaf":[1,"x"]}' + "}" * depth  # compared as text: == on it recurses
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append_dedup", primary_key=[["id"]]))
    # Two versions of one key in the batch, and a shallow record: dedup still keeps the last.
    records = [event(1, context={"old": True}), event(2), event(1, context=nested)]
    assert sync(path, cat, paged("events", records, page=3)).ok
    assert query(path, 'SELECT id, context, "_airbyte_meta" FROM "events" ORDER BY id') == [
        ("1", text, '{"changes":[]}'),
        ("2", '{"v":0}', '{"changes":[]}'),
    ]
    assert query(path, 'SELECT count(*) FROM "_airbyte_raw_events"') == [(3,)]


@pytest.mark.parametrize("megabytes", [1, 17])
def test_large_values_are_stored(secrets, tmp_path, megabytes):
    """Up to read_json's default object size (16 MB) and past it (more memory for that batch)."""
    path = tmp_path / "s.duckdb"
    size = megabytes << 20
    records = [event(1, title="t" * size, context={"s": "s" * size}), event(2)]
    assert sync(path, catalog(configured_stream("events", "incremental", "append")), paged("events", records, page=2)).ok
    assert query(path, 'SELECT id, length(title), length(context->>\'s\') FROM "events" ORDER BY id') == [
        ("1", size, size),
        ("2", len("Error 2 v0"), None),
    ]


def test_a_secret_is_masked_in_strings_and_numbers_keep_their_digits(secrets, tmp_path):
    """A server may echo the token into a record; masking it must not break the JSON around it."""
    errors.register_secret("18446744")
    assert secrets == {"18446744"}
    path = tmp_path / "s.duckdb"
    data = event(1, title="token 18446744 echoed", context={"n": 2**64 + 1, "18446744": 7})
    assert sync(path, catalog(configured_stream("events", "incremental", "append")), paged("events", [data], page=1)).ok
    assert query(path, 'SELECT title, context FROM "events"') == [
        ("token **** echoed", '{"n":18446744073709551617,"****":7}')
    ]


_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=6)  # surrogates and controls too


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(_ANY_TEXT, _ANY_TEXT, min_size=1, max_size=6))
def test_any_keys_and_strings_are_written_without_failing(secrets, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("any") / "s.duckdb"
    schema = {"type": "object", "properties": {}}
    result = sync(path, catalog(configured_stream("things", "incremental", "append", schema=schema)), paged("things", [data], page=1))
    assert result.ok
    mapping = dict(query(path, "SELECT field_name, column_name FROM _airbyte_columns WHERE stream_name = 'things'"))
    by_field = {storable_field(key): value for key, value in data.items()}  # later keys win, as in a dict
    select = ", ".join(quote_ident(mapping[field]) for field in by_field)
    ((*values, meta),) = query(path, f'SELECT {select}, "_airbyte_meta" FROM "things"')

    def written(text: str) -> str:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")

    assert values == [written(value) for value in by_field.values()]
    lossy = {field for field, value in by_field.items() if written(value).count("\ufffd") > value.count("\ufffd")}
    assert set(_changes(meta)) == lossy
