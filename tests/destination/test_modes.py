"""The four Airbyte sync modes (and overwrite + dedup), each over several syncs on one file."""

from __future__ import annotations

import orjson
import pytest
from dest_helpers import (
    catalog,
    configured_stream,
    error,
    event,
    paged,
    query,
    record,
    saved_states,
    state,
    status,
    sync,
    tables,
)

from source_sentry.destination import DuckDBDestination
from source_sentry.errors import ConfigError


def test_full_refresh_overwrite_replaces_the_table_each_sync(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "full_refresh", "overwrite"))
    first = sync(path, cat, paged("events", [event(i) for i in range(10)], page=4))
    assert first.streams["events"].rows == 10
    assert first.streams["events"].status == "COMPLETE"
    second = sync(path, cat, paged("events", [event(i, 1) for i in range(5, 8)], page=2))
    assert second.streams["events"].rows == 3
    assert query(path, 'SELECT id, size FROM "events" ORDER BY id') == [("5", 101), ("6", 101), ("7", 101)]
    # Generations count full refreshes; no staging table left behind; no state kept.
    assert query(path, 'SELECT DISTINCT "_airbyte_generation_id" FROM "events"') == [(1,)]
    assert "_airbyte_tmp_events" not in tables(path)
    assert saved_states(path, cat) == []
    assert query(path, "SELECT count(*) FROM _airbyte_state") == [(0,)]


def test_overwrite_of_an_expiring_stream_warns_about_retention(tmp_path):
    """Every overwrite stream named in expiring_streams is warned about, in its own words; others not."""
    seen: list[str] = []
    cat = catalog(
        configured_stream("events", "full_refresh", "overwrite"),
        configured_stream("issue_events", "full_refresh", "overwrite_dedup", primary_key=[["id"]]),
        configured_stream("issues", "incremental", "append_dedup", primary_key=[["id"]]),  # keeps history
        configured_stream("projects", "full_refresh", "overwrite"),  # not expiring
    )
    destination = DuckDBDestination(
        tmp_path / "s.duckdb", cat, on_warning=seen.append, expiring_streams=["events", "issue_events", "issues"]
    )
    destination.abort()
    assert seen == destination.warnings
    assert [w.split(":")[0] for w in seen] == [
        "stream 'events' runs Full Refresh | Overwrite",
        "stream 'issue_events' runs Full Refresh | Overwrite",
    ]
    assert "events records older than Sentry's retention window (about 90 days)" in seen[0]
    assert "issue_events records older than Sentry's retention window (about 90 days)" in seen[1]


def test_without_expiring_streams_an_overwrite_is_not_warned_about(tmp_path):
    destination = DuckDBDestination(tmp_path / "s.duckdb", catalog(configured_stream("events", "full_refresh", "overwrite")))
    destination.abort()
    assert destination.warnings == []


def test_overwrite_swap_is_atomic_when_the_sync_fails(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "full_refresh", "overwrite"))
    sync(path, cat, paged("events", [event(i) for i in range(6)], page=3))

    destination = DuckDBDestination(path, cat, commit_records=1)  # every state commits at once
    destination.write(status("events", "STARTED"))
    for i in range(100, 110):
        destination.write(record("events", event(i)))
    destination.write(state("events", {"page": 1}))  # committed into staging, not the table
    destination.write(record("events", event(200)))
    # Meanwhile the old table is what readers see; this sync's rows wait in staging.
    assert destination._con.execute('SELECT count(*) FROM "events"').fetchall() == [(6,)]
    assert destination._con.execute('SELECT count(*) FROM "_airbyte_tmp_events"').fetchall() == [(10,)]
    destination.abort()

    assert query(path, 'SELECT count(*), min(id), max(id) FROM "events"') == [(6, "0", "5")]
    assert "_airbyte_tmp_events" not in tables(path)

    # An INCOMPLETE stream followed by close() also keeps the old table.
    result = sync(
        path,
        cat,
        [status("events", "STARTED"), record("events", event(300)), state("events", {}), status("events", "INCOMPLETE")],
    )
    assert result.streams["events"].status == "INCOMPLETE"
    assert query(path, 'SELECT count(*) FROM "events"') == [(6,)]


def test_overwrite_staging_is_recreated_after_a_killed_sync(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "full_refresh", "overwrite"))
    # A killed sync leaves its staging table (close/abort never ran): simulate by not closing.
    destination = DuckDBDestination(path, cat)
    destination.write(status("events", "STARTED"))
    destination.write(record("events", event(1)))
    destination.write(state("events", {}))
    destination._con.close()  # the process dies: no abort, no close
    assert "_airbyte_tmp_events" in tables(path)
    result = sync(path, cat, paged("events", [event(7)], page=1))
    assert result.streams["events"].rows == 1
    assert query(path, 'SELECT id FROM "events"') == [("7",)]


def test_full_refresh_append_keeps_history_with_generations(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "full_refresh", "append"))
    sync(path, cat, paged("events", [event(i) for i in range(3)], page=2))
    result = sync(path, cat, paged("events", [event(i, 1) for i in range(3)], page=2))
    assert result.streams["events"].rows == 6
    assert query(path, 'SELECT "_airbyte_generation_id", count(*) FROM "events" GROUP BY 1 ORDER BY 1') == [(0, 3), (1, 3)]
    assert saved_states(path, cat) == []


def test_incremental_append_stores_state_and_appends(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append"))
    assert saved_states(path, cat) == []
    sync(path, cat, paged("events", [event(i) for i in range(5)], page=2))
    states = saved_states(path, cat)
    assert states == [
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": "events"}, "stream_state": {"cursor": 2}}}
    ]
    # The next sync sends only new or changed records; they are appended (a changed one twice).
    result = sync(path, cat, paged("events", [event(4, 1), event(5)], page=10, start_cursor=3))
    assert result.streams["events"].rows == 7
    assert result.streams["events"].records_committed == 2
    assert query(path, 'SELECT count(*) FROM "events" WHERE id = \'4\'') == [(2,)]
    assert saved_states(path, cat)[0]["stream"]["stream_state"] == {"cursor": 3}
    assert "_airbyte_raw_events" not in tables(path)


def test_append_dedup_keeps_latest_version_and_raw_history(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append_dedup", primary_key=[["id"]]))
    # Within one batch id 1 comes three times: the last one received wins.
    first = [event(1, 0), event(2, 0), event(1, 1), event(3, 0), event(1, 2)]
    sync(path, cat, paged("events", first, page=5))
    assert query(path, 'SELECT id, size FROM "events" ORDER BY id') == [("1", 102), ("2", 100), ("3", 100)]
    # Across syncs: newer versions replace older ones; raw keeps every version.
    result = sync(path, cat, paged("events", [event(2, 5), event(4, 0), event(2, 6)], page=2, start_cursor=1))
    assert query(path, 'SELECT id, size FROM "events" ORDER BY id') == [
        ("1", 102), ("2", 106), ("3", 100), ("4", 100),
    ]
    assert result.streams["events"].rows == 4
    assert query(path, 'SELECT count(*) FROM "_airbyte_raw_events"') == [(8,)]
    assert query(path, "SELECT count(*) FROM \"_airbyte_raw_events\" WHERE id = '2'") == [(3,)]
    # The final row shares its _airbyte_raw_id with its raw version.
    assert query(
        path,
        'SELECT count(*) FROM "events" f JOIN "_airbyte_raw_events" r USING ("_airbyte_raw_id") WHERE f.size = r.size',
    ) == [(4,)]
    assert saved_states(path, cat)[0]["stream"]["stream_state"] == {"cursor": 2}


def test_append_dedup_composite_and_nested_keys(tmp_path):
    path = tmp_path / "s.duckdb"
    schema = {"type": "object", "properties": {"org": {"type": "string"}, "id": {"type": "integer"}, "n": {"type": "integer"}}}
    cat = catalog(configured_stream("pairs", "incremental", "append_dedup", schema=schema, primary_key=[["org"], ["id"]]))
    data = [{"org": "a", "id": 1, "n": 1}, {"org": "b", "id": 1, "n": 1}, {"org": "a", "id": 1, "n": 2}, {"org": None, "id": 2, "n": 1}]
    sync(path, cat, paged("pairs", data, page=3))
    sync(path, cat, paged("pairs", [{"org": None, "id": 2, "n": 9}, {"org": "b", "id": 1, "n": 3}], page=1))
    assert query(path, 'SELECT org, id, n FROM "pairs" ORDER BY org NULLS FIRST, id') == [
        (None, 2, 9), ("a", 1, 2), ("b", 1, 3),
    ]

    nested_path = tmp_path / "n.duckdb"
    nested = catalog(
        configured_stream(
            "releases",
            "incremental",
            "append_dedup",
            schema={"type": "object", "properties": {}},
            primary_key=[["project", "id"], ["version"]],
        )
    )
    rows = [{"project": {"id": "p1"}, "version": "1.0", "n": 1}, {"project": {"id": "p2"}, "version": "1.0", "n": 1}]
    sync(nested_path, nested, paged("releases", rows, page=2))
    sync(nested_path, nested, paged("releases", [{"project": {"id": "p1"}, "version": "1.0", "n": 2}], page=1))
    assert query(nested_path, 'SELECT "project"->>\'id\', n FROM "releases" ORDER BY 1') == [("p1", 2), ("p2", 1)]


def test_overwrite_dedup(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("issues", "full_refresh", "overwrite_dedup", primary_key=[["id"]]))
    sync(path, cat, paged("issues", [event(1, 0), event(2, 0), event(1, 1)], page=2))
    assert query(path, 'SELECT id, size FROM "issues" ORDER BY id') == [("1", 101), ("2", 100)]
    sync(path, cat, paged("issues", [event(3, 0)], page=2))
    assert query(path, 'SELECT id FROM "issues"') == [("3",)]


def test_full_refresh_after_incremental(tmp_path):
    path = tmp_path / "s.duckdb"
    incremental = catalog(configured_stream("events", "incremental", "append_dedup", primary_key=[["id"]]))
    sync(path, incremental, paged("events", [event(i) for i in range(5)], page=2))
    assert saved_states(path, incremental) != []

    full = catalog(configured_stream("events", "full_refresh", "overwrite"))
    assert saved_states(path, full) == []  # only incremental streams hand states to the reader
    result = sync(path, full, paged("events", [event(i, 1) for i in range(3, 8)], page=2))
    assert result.streams["events"].rows == 5
    assert query(path, 'SELECT min(id), max(id), min(size) FROM "events"') == [("3", "7", 101)]
    assert query(path, 'SELECT DISTINCT "_airbyte_generation_id" FROM "events"') == [(1,)]
    # The replaced table is no longer described by the old cursor: the next incremental starts over.
    assert saved_states(path, incremental) == []
    sync(path, incremental, paged("events", [event(1, 2), event(3, 2)], page=5))
    assert query(path, 'SELECT id, size FROM "events" ORDER BY id') == [
        ("1", 102),
        ("3", 102),
        ("4", 101),
        ("5", 101),
        ("6", 101),
        ("7", 101),
    ]
    assert query(path, 'SELECT DISTINCT "_airbyte_generation_id" FROM "events" ORDER BY 1') == [(1,)]


def test_reset_state_forgets_the_cursor(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(
        configured_stream("events", "incremental", "append"),
        configured_stream("issues", "incremental", "append"),
    )
    sync(path, cat, paged("events", [event(1)], page=1) + paged("issues", [event(1)], page=1))
    destination = DuckDBDestination(path, cat)
    destination.reset_state(["events"])
    assert [s["stream"]["stream_descriptor"]["name"] for s in destination.read_state()] == ["issues"]
    destination.reset_state()
    assert destination.read_state() == []
    destination.close()


def test_error_and_incomplete_drop_uncommitted_records(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(
        configured_stream("events", "incremental", "append_dedup", primary_key=[["id"]]),
        configured_stream("issues", "incremental", "append"),
    )
    messages = [
        status("events", "STARTED"),
        status("issues", "STARTED"),
        record("events", event(1)),
        state("events", {"cursor": 1}),
        record("issues", event(10)),
        state("issues", {"cursor": 10}),
        record("events", event(2)),  # after the last state: dropped by the error
        record("issues", event(11)),  # dropped by INCOMPLETE
        error("events"),
        status("issues", "INCOMPLETE"),
        record("events", event(3)),  # after the error: ignored
    ]
    result = sync(path, cat, messages)
    assert query(path, 'SELECT id FROM "events"') == [("1",)]
    assert query(path, 'SELECT id FROM "_airbyte_raw_events"') == [("1",)]
    assert query(path, 'SELECT id FROM "issues"') == [("10",)]
    assert result.streams["events"].status == "INCOMPLETE"
    assert result.streams["events"].records_dropped == 2
    assert not result.ok and result.errors == ["events: boom"]
    assert {s["stream"]["stream_descriptor"]["name"]: s["stream"]["stream_state"] for s in saved_states(path, cat)} == {
        "events": {"cursor": 1},
        "issues": {"cursor": 10},
    }


def test_records_after_the_last_state_of_a_completed_stream_are_kept(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append_dedup", primary_key=[["id"]]))
    result = sync(
        path,
        cat,
        [
            status("events", "STARTED"),
            record("events", event(1)),
            state("events", {"c": 1}),
            record("events", event(2)),
            status("events", "COMPLETE"),
        ],
    )
    assert result.streams["events"].rows == 2
    assert result.ok


def test_uncommitted_records_are_dropped_when_stream_never_completes(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append"))
    result = sync(path, cat, [record("events", event(1)), state("events", {"c": 1}), record("events", event(2))])
    assert query(path, 'SELECT id FROM "events"') == [("1",)]
    assert result.streams["events"].status == "INCOMPLETE"
    assert result.streams["events"].records_dropped == 1


def test_interleaved_streams_commit_independently(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(
        configured_stream("events", "incremental", "append_dedup", primary_key=[["id"]]),
        configured_stream("projects", "full_refresh", "overwrite"),
    )
    messages = [status("events", "STARTED"), status("projects", "STARTED")]
    for i in range(20):
        messages.append(record("events", event(i)))
        messages.append(record("projects", {"id": f"p{i}", "slug": f"proj-{i}"}))
        if i % 3 == 2:
            messages.append(state("events", {"cursor": i}))
        if i % 7 == 6:
            messages.append(state("projects", {}))
    messages += [status("projects", "COMPLETE"), state("events", {"cursor": 19}), status("events", "COMPLETE")]
    result = sync(path, cat, messages)
    assert result.streams["events"].rows == 20
    assert result.streams["projects"].rows == 20
    assert query(path, 'SELECT count(DISTINCT slug) FROM "projects"') == [(20,)]
    assert saved_states(path, cat)[0]["stream"]["stream_state"] == {"cursor": 19}


def test_state_is_stored_without_source_stats_and_as_json(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append"))
    sync(path, cat, paged("events", [event(1)], page=1))
    (stored,) = query(path, "SELECT state FROM _airbyte_state WHERE stream_name = 'events'")[0]
    assert "sourceStats" not in orjson.loads(stored)


def test_buffer_is_flushed_without_state_beyond_the_limit(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append_dedup", primary_key=[["id"]]))
    destination = DuckDBDestination(path, cat, buffer_limit=50)
    destination.write(status("events", "STARTED"))
    for i in range(120):
        destination.write(record("events", event(i % 70, i)))
        assert destination._runs["events"].buffered < 50
    assert sum("without a state" in w for w in destination.warnings) == 1
    # Flushed rows are committed (bounded memory) but no state was stored for them.
    assert destination.read_state() == []
    destination.write(status("events", "COMPLETE"))
    result = destination.close()
    assert result.streams["events"].records_committed == 120
    assert result.streams["events"].rows == 70
    assert query(path, 'SELECT count(*) FROM "_airbyte_raw_events"') == [(120,)]


def test_unknown_streams_and_other_messages_are_ignored(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append"))
    result = sync(
        path,
        cat,
        [
            {"type": "LOG", "log": {"level": "INFO", "message": "hello"}},
            record("other", {"id": "1"}),
            record("other", {"id": "2"}),
            {"type": "STATE", "state": {"type": "GLOBAL", "global": {}}},
            *paged("events", [event(1)], page=1),
        ],
    )
    assert result.streams["events"].rows == 1
    assert sum("'other'" in w for w in result.warnings) == 1
    assert "other" not in tables(path)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"sync_mode": "incremental", "destination_sync_mode": "append_dedup", "no_pk": True}, "needs a primary key"),
        ({"sync_mode": "incremental", "destination_sync_mode": "upsert"}, "unknown destination_sync_mode"),
        ({"sync_mode": "sometimes", "destination_sync_mode": "append"}, "unknown sync_mode"),
        ({"name": "_airbyte_state"}, "reserved"),
    ],
)
def test_bad_configured_catalogs_are_refused(tmp_path, entry, message):
    stream = configured_stream(
        entry.get("name", "events"), entry.get("sync_mode", "incremental"), entry.get("destination_sync_mode", "append")
    )
    if entry.get("no_pk"):
        stream["stream"]["source_defined_primary_key"] = []
    with pytest.raises(ConfigError, match=message):
        DuckDBDestination(tmp_path / "s.duckdb", catalog(stream))


def test_streams_differing_only_by_case_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="share one table"):
        DuckDBDestination(
            tmp_path / "s.duckdb",
            catalog(configured_stream("Events", "incremental", "append"), configured_stream("events", "incremental", "append")),
        )


def test_states_are_committed_in_groups_with_the_records_they_cover(tmp_path):
    path = tmp_path / "s.duckdb"
    cat = catalog(configured_stream("events", "incremental", "append_dedup"))
    destination = DuckDBDestination(path, cat, commit_records=25, commit_seconds=3600)
    destination.write(status("events", "STARTED"))
    for page in range(3):
        for i in range(10):
            destination.write(record("events", event(page * 10 + i)))
        destination.write(state("events", {"page": page}))
        # The history is committed with the state (the deduped table follows at the merge).
        committed = destination._con.execute('SELECT count(*) FROM "_airbyte_raw_events"').fetchall()[0][0]
        # 10 and 20 records wait for a group of 25; the third state commits all 30.
        assert committed == (30 if page == 2 else 0)
    for i in range(30, 35):
        destination.write(record("events", event(i)))
    destination.write(state("events", {"page": 3}))
    destination.write(record("events", event(99)))  # after the last state: not covered
    destination.abort()  # a failed sync still keeps what a received state covers
    assert query(path, 'SELECT count(*) FROM "events"') == [(35,)]
    assert saved_states(path, cat)[0]["stream"]["stream_state"] == {"page": 3}
