"""Analytics views over the synced tables: the answers people sync Sentry for.

Each view is created or replaced after every sync whose file holds its source tables (a view
whose sources were never synced is left out, and dropped if it was there). Without the issues'
history table (a full refresh keeps none), the issues table stands in for it: one version each.
Numbers Sentry sends as text (an issue's ``count``) are numbers here; days and weeks (Monday) are
UTC dates. The views and their columns are documented in ``docs/views.md``; tests recompute each
one from the raw tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

__all__ = ["VIEWS", "View", "create_views"]


@dataclass(frozen=True)
class View:
    name: str
    sources: tuple[str, ...]  # tables it reads; it exists only where they all do
    sql: str  # the SELECT
    # (table, stand-in): a source table that may be missing, and the one read in its place.
    stand_ins: tuple[tuple[str, str], ...] = ()


# A tag's value from the events' tags ([{"key", "value"}, ...]).
_TAG_MACRO = (
    "CREATE OR REPLACE MACRO sentry_tag(tags, tag_key) AS "
    "list_extract(list_filter(from_json(tags, '[{\"key\": \"VARCHAR\", \"value\": \"VARCHAR\"}]'), "
    "lambda t: t.key = tag_key), 1).value"
)

# Status versions of each issue, oldest first, from the deduplicated stream's history table
# (each sync or webhook that saw the issue change added a version). ``observed``: the version
# shows when the issue took that status, within one sync: it follows another version, or the
# issue was first seen after the first sync of issues (so it took the status since). An issue
# already resolved at the first sync was resolved at a time no version shows.
_STATUS_CHANGES = """
    SELECT h.id, h.status, h._airbyte_extracted_at AS changed_at, h.previous,
           h.previous IS NOT NULL OR i."firstSeen" > h.first_sync AS observed
    FROM (
        SELECT id, status, _airbyte_extracted_at,
               lag(status) OVER (PARTITION BY id ORDER BY _airbyte_extracted_at, _airbyte_raw_id) AS previous,
               min(_airbyte_extracted_at) OVER () AS first_sync
        FROM _airbyte_raw_issues
        WHERE _ab_cdc_deleted_at IS NULL AND status IS NOT NULL
    ) h LEFT JOIN issues i USING (id)
"""

# A sync that overwrites issues (full refresh) keeps no history: its one version per issue stands in.
_NO_HISTORY = (("_airbyte_raw_issues", "issues"),)

VIEWS: tuple[View, ...] = (
    View("issue_lifecycle", ("issues",), f"""
        WITH changes AS ({_STATUS_CHANGES}),
        per_issue AS (
            SELECT id,
                   max(changed_at) FILTER (WHERE status = 'resolved' AND previous IS DISTINCT FROM 'resolved' AND observed)
                       AS resolved_at,
                   count(*) FILTER (WHERE status = 'unresolved' AND previous = 'resolved') AS regressions
            FROM changes GROUP BY id
        )
        SELECT i.id, i."shortId" AS short_id, i.title, i.project->>'slug' AS project, i.level,
               i."issueCategory" AS category, i."firstSeen" AS first_seen, i."lastSeen" AS last_seen,
               i.status, i.substatus,
               CASE WHEN i.status = 'resolved' THEN p.resolved_at END AS resolved_at,
               CASE WHEN i.status = 'resolved'
                    THEN date_diff('second', i."firstSeen", p.resolved_at) / 3600.0 END AS hours_to_resolve,
               coalesce(p.regressions, 0) AS regressions,
               TRY_CAST(i."count" AS BIGINT) AS events, TRY_CAST(i."userCount" AS BIGINT) AS users, i.permalink
        FROM issues i LEFT JOIN per_issue p USING (id)
        WHERE i._ab_cdc_deleted_at IS NULL
    """, _NO_HISTORY),
    View("errors_daily", ("events",), """
        SELECT CAST(timezone('UTC', e."dateCreated") AS DATE) AS day, e."projectID" AS project_id,
               sentry_tag(e.tags, 'release') AS release, sentry_tag(e.tags, 'environment') AS environment,
               count(*) AS events, count(DISTINCT e."groupID") AS issues
        FROM events e
        GROUP BY ALL
    """),
    View("release_health_daily", ("release_health",), """
        WITH daily AS (
            -- Daily rows where they were synced, else the hourly ones of the day.
            SELECT CAST(timezone('UTC', "interval") AS DATE) AS day, CAST(project AS BIGINT) AS project_id, release, environment,
                   session_status, sum(sessions) AS sessions, sum(users) AS users
            FROM release_health
            WHERE resolution = '1d' OR NOT EXISTS (SELECT 1 FROM release_health WHERE resolution = '1d')
            GROUP BY ALL
        )
        SELECT day, project_id, release, environment,
               sum(sessions) AS sessions,
               coalesce(sum(sessions) FILTER (WHERE session_status = 'crashed'), 0) AS crashed_sessions,
               coalesce(sum(sessions) FILTER (WHERE session_status = 'errored'), 0) AS errored_sessions,
               coalesce(sum(sessions) FILTER (WHERE session_status = 'abnormal'), 0) AS abnormal_sessions,
               sum(users) AS users,
               coalesce(sum(users) FILTER (WHERE session_status = 'crashed'), 0) AS crashed_users,
               1 - coalesce(sum(sessions) FILTER (WHERE session_status = 'crashed'), 0) / nullif(sum(sessions), 0)
                   AS crash_free_session_rate,
               1 - coalesce(sum(users) FILTER (WHERE session_status = 'crashed'), 0) / nullif(sum(users), 0)
                   AS crash_free_user_rate
        FROM daily GROUP BY ALL
    """),
    View("issues_weekly", ("issues",), f"""
        WITH changes AS ({_STATUS_CHANGES}),
        project_of AS (SELECT id, project->>'slug' AS project FROM issues),
        happened AS (
            SELECT CAST(date_trunc('week', timezone('UTC', "firstSeen")) AS DATE) AS week, id, 'new' AS what FROM issues
            WHERE _ab_cdc_deleted_at IS NULL AND "firstSeen" IS NOT NULL
            UNION ALL
            SELECT CAST(date_trunc('week', timezone('UTC', changed_at)) AS DATE), id, 'resolved' FROM changes
            WHERE status = 'resolved' AND previous IS DISTINCT FROM 'resolved' AND observed
            UNION ALL
            SELECT CAST(date_trunc('week', timezone('UTC', changed_at)) AS DATE), id, 'regressed' FROM changes
            WHERE status = 'unresolved' AND previous = 'resolved'
        )
        SELECT week, p.project,
               count(*) FILTER (WHERE what = 'new') AS new_issues,
               count(*) FILTER (WHERE what = 'regressed') AS regressed_issues,
               count(*) FILTER (WHERE what = 'resolved') AS resolved_issues
        FROM happened h JOIN project_of p USING (id)
        GROUP BY ALL
    """, _NO_HISTORY),
    View("monitor_uptime_daily", ("monitor_checkins",), """
        SELECT CAST(timezone('UTC', "dateCreated") AS DATE) AS day, "monitorSlug" AS monitor, environment,
               count(*) FILTER (WHERE status = 'ok') AS ok,
               count(*) FILTER (WHERE status = 'error') AS error,
               count(*) FILTER (WHERE status = 'missed') AS missed,
               count(*) FILTER (WHERE status = 'timeout') AS timeout,
               count(*) FILTER (WHERE status = 'in_progress') AS in_progress,
               count(*) FILTER (WHERE status = 'ok')
                   / nullif(count(*) FILTER (WHERE status <> 'in_progress'), 0) AS uptime_share
        FROM monitor_checkins GROUP BY ALL
    """),
    View("usage_outcomes_daily", ("usage_stats",), """
        SELECT CAST(timezone('UTC', "interval") AS DATE) AS day, category,
               coalesce(sum(quantity) FILTER (WHERE outcome = 'accepted'), 0) AS accepted,
               coalesce(sum(quantity) FILTER (WHERE outcome = 'filtered'), 0) AS filtered,
               coalesce(sum(quantity) FILTER (WHERE outcome = 'rate_limited'), 0) AS rate_limited,
               coalesce(sum(quantity) FILTER (WHERE outcome = 'invalid'), 0) AS invalid,
               coalesce(sum(quantity) FILTER (WHERE outcome = 'client_discard'), 0) AS client_discard,
               coalesce(sum(quantity), 0) AS total
        FROM usage_stats GROUP BY ALL
    """),
    View("silent_projects", ("events", "projects"), """
        WITH per_project AS (
            SELECT e."projectID" AS project_id,
                   count(*) FILTER (WHERE e."dateCreated" >= now() - INTERVAL 8 DAY
                                    AND e."dateCreated" < now() - INTERVAL 1 DAY) AS events_week_before,
                   count(*) FILTER (WHERE e."dateCreated" >= now() - INTERVAL 1 DAY) AS events_last_day,
                   max(e."dateCreated") AS last_event
            FROM events e GROUP BY 1
        )
        SELECT p.id AS project_id, p.slug AS project, c.events_week_before, c.last_event
        FROM per_project c JOIN projects p ON p.id = c.project_id
        WHERE c.events_week_before > 0 AND c.events_last_day = 0 AND p._ab_cdc_deleted_at IS NULL
    """),
)


def create_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create or replace every view whose source tables exist with columns it can use (dropping
    the others); their names. A table a custom catalog typed otherwise (``dateCreated`` as text,
    from a stream without a schema) leaves its views out instead of failing the sync."""
    tables = {row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
    ).fetchall()}
    con.execute(_TAG_MACRO)
    made = []
    for view in VIEWS:
        sql = view.sql
        for table, stand_in in view.stand_ins:
            if table not in tables:
                sql = sql.replace(table, stand_in)
        if set(view.sources) <= tables:
            try:
                con.execute(f'CREATE OR REPLACE VIEW "{view.name}" AS {sql}')
                made.append(view.name)
                continue
            except duckdb.BinderException:
                pass  # a column missing or of another type
        con.execute(f'DROP VIEW IF EXISTS "{view.name}"')
    return made
