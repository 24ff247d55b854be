"""Records as bytes (``write_records``, the sync's path): typed in DuckDB like dicts, odd bytes
written all the same, new fields found mid-sync, and the background writer's errors and order."""

from __future__ import annotations

import orjson
import pytest
from dest_helpers import EMITTED_AT, catalog, configured_stream, event, query, record, saved_states, state, status, table_columns

from source_sentry.destination import DuckDBDestination

NULLED = {"change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"}
REPLACED = {"change": "TRUNCATED", "reason": "DESTINATION_SERIALIZATION_ERROR"}


def _changes(meta: str) -> dict[str, dict]:
    return {c["field"]: {k: v for k, v in c.items() if k != "field"} for c in orjson.loads(meta)["changes"]}


def _write(path, cat, pages: list[list[bytes]], *, background: bool = False, stream: str = "events") -> None:
    destination = DuckDBDestination(path, cat, background=background, commit_records=1)
    destination.write(status(stream, "STARTED"))
    for n, page in enumerate(pages):
        destination.write_records(stream, page, EMITTED_AT)
        destination.write(state(stream, {"page": n}))
    destination.write(status(stream, "COMPLETE"))
    assert destination.close().ok


@pytest.mark.parametrize("background", [False, True])
def test_values_that_do_not_fit_their_column_are_nulled_and_noted(tmp_path, background):
    """Bytes never pass through Python objects: DuckDB types them, with the rules the dicts had."""
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append"))
    fits = b'{"id":"1","size":"12","score":"2.5","handled":"TRUE","title":42,"dateCreated":"2024-11-19T12:00:00+02:00"}'
    misfits = (
        b'{"id":"2","size":1.5,"score":"NaN","handled":"maybe","title":{"a":[1]},"dateCreated":"epoch","user":"s"}'
    )
    huge = b'{"id":"3","size":18446744073709551617,"score":1e400,"handled":2,"dateCreated":"not a date"}'
    _write(path, cat, [[fits, misfits], [huge]], background=background)
    rows = query(
        path,
        'SELECT id, size, score, handled, title, "dateCreated"::VARCHAR, "user", "_airbyte_meta" FROM "events" ORDER BY id',
    )
    assert rows[0][:7] == ("1", 12, 2.5, True, "42", "2024-11-19 10:00:00+00", None)
    assert _changes(rows[0][7]) == {}
    assert rows[1][:7] == ("2", None, None, None, '{"a":[1]}', None, '"s"')
    assert _changes(rows[1][7]) == dict.fromkeys(("size", "score", "handled", "dateCreated"), NULLED)
    assert rows[2][:4] == ("3", None, None, None)
    assert _changes(rows[2][7]) == dict.fromkeys(("size", "score", "handled", "dateCreated"), NULLED)


def test_a_new_field_mid_sync_gets_a_column_typed_by_its_first_value(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append_dedup", primary_key=[["id"]]))
    first = [orjson.dumps(event(i)) for i in range(3)]
    # Page 2: "later" is null first, then a number; "flag" and "obj" appear in one record, in order.
    second = [
        orjson.dumps(event(3, later=None)),
        orjson.dumps(event(4, flag=True, later=7, obj={"k": 1})),
        orjson.dumps(event(5, later="text")),  # DOUBLE column: a misfit, noted
    ]
    _write(path, cat, [first, second])
    for table in ("events", "_airbyte_raw_events"):
        columns = list(table_columns(path, table).items())
        assert columns[-3:] == [("flag", "BOOLEAN"), ("later", "DOUBLE"), ("obj", "JSON")]
    rows = query(path, 'SELECT id, flag, later, obj, "_airbyte_meta" FROM "events" WHERE id >= \'3\' ORDER BY id')
    assert [row[:4] for row in rows] == [("3", None, None, None), ("4", True, 7.0, '{"k":1}'), ("5", None, None, None)]
    assert _changes(rows[2][4]) == {"later": NULLED}


def test_bytes_duckdb_refuses_are_written_with_replacements_noted(tmp_path):
    """A lone surrogate escape and invalid UTF-8 fail DuckDB's parser: that batch is parsed again
    by Python, the odd characters become U+FFFD (noted), and every record of it lands."""
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append"))
    lone = b'{"id":"1","title":"bad \\ud800 title","context":{"k":"\\udfff"}}'
    invalid = b'{"id":"2","title":"caf\xe9"}'
    fine = orjson.dumps(event(3))
    _write(path, cat, [[lone, invalid, fine]])
    rows = query(path, 'SELECT id, title, context, "_airbyte_meta" FROM "events" ORDER BY id')
    assert rows[0][:3] == ("1", "bad \ufffd title", '{"k":"\ufffd"}')
    assert _changes(rows[0][3]) == {"title": REPLACED, "context": REPLACED}
    assert rows[1][1] == "caf\ufffd" and _changes(rows[1][3]) == {"title": REPLACED}
    assert rows[2][:2] == ("3", "Error 3 v0") and _changes(rows[2][3]) == {}


def test_the_sources_own_changes_reach_airbyte_meta(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append"))
    message = record("events", event(1, size="x"))
    change = {"field": "title", "change": "TRUNCATED", "reason": "SOURCE_FIELD_SIZE_LIMITATION"}
    message["record"]["meta"] = {"changes": [change]}
    destination = DuckDBDestination(path, cat)
    for m in (status("events", "STARTED"), message, state("events", {}), status("events", "COMPLETE")):
        destination.write(m)
    destination.close()
    ((meta,),) = query(path, 'SELECT "_airbyte_meta" FROM "events"')
    assert orjson.loads(meta)["changes"] == [change, {"field": "size", **NULLED}]


def test_a_failed_background_batch_stops_every_later_commit_and_is_raised(tmp_path):
    """Bytes that are no JSON at all are a reader's bug: the writer's error reaches the caller,
    and no state after the failed batch is stored (it would skip the batch on resume)."""
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append"))
    destination = DuckDBDestination(path, cat, background=True, commit_records=1)
    destination.write(status("events", "STARTED"))
    destination.write_records("events", [orjson.dumps(event(1))], EMITTED_AT)
    destination.write(state("events", {"page": 0}))
    destination.write_records("events", [b"{not json"], EMITTED_AT)
    destination.write(state("events", {"page": 1}))
    with pytest.raises(Exception, match="Expecting property name"):
        for i in range(2, 100):  # the writer's error comes out at a later call
            destination.write_records("events", [orjson.dumps(event(i))], EMITTED_AT)
            destination.write(state("events", {"page": i}))
    destination.abort()
    assert [s["stream"]["stream_state"] for s in saved_states(path, cat)] == [{"page": 0}]
    assert query(path, 'SELECT id FROM "events"') == [("1",)]


def test_write_records_of_a_closed_or_unknown_stream_are_dropped(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append"))
    destination = DuckDBDestination(path, cat)
    destination.write_records("other", [b'{"id":"1"}'], EMITTED_AT)
    destination.write(status("events", "STARTED"))
    destination.write(status("events", "COMPLETE"))
    destination.write_records("events", [b'{"id":"2"}', b'{"id":"3"}'], EMITTED_AT)
    result = destination.close()
    assert result.streams["events"].records_dropped == 2
    assert sum("'other'" in w for w in result.warnings) == 1
    assert query(path, 'SELECT count(*) FROM "events"') == [(0,)]
