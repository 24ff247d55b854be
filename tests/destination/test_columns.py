"""Typed columns: JSON-schema mapping, casts, date-times, schema evolution, odd names."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest
from dest_helpers import catalog, configured_stream, event, paged, query, record, state, status, sync, table_columns
from hypothesis import given
from hypothesis import strategies as st

from source_sentry.destination.columns import (
    BIGINT,
    BOOLEAN,
    DOUBLE,
    JSON,
    TIMESTAMPTZ,
    VARCHAR,
    ColumnSet,
    column_type_for_schema,
    parse_datetime,
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
