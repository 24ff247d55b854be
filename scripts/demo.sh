#!/usr/bin/env bash
# Set up, start the bundled Sentry emulator, and sync its organization into demo/sentry.duckdb.
# No Sentry account needed. Run it again to see an incremental sync.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[report]' > .venv/install.log 2>&1 \
  || { cat .venv/install.log; exit 1; }
mkdir -p demo
# A fixed port and seed: a second run talks to the same organization. Its history ends at 00:00 UTC
# today (the same records at every start that day), and each project keeps receiving about one new
# event a minute (the same ones at every start too), so a second run syncs only what is new.
# No rate limits, as a self-hosted Sentry: sentry.io's would hold the events list to 60 pages of
# 10 events a minute, and this demo to many minutes.
.venv/bin/sentry-emulator --port "${DEMO_PORT:-8765}" --seed 7 --projects 3 --events-per-project 3000 \
  --issues-per-project 150 --releases 120 --days 30 --live-events-per-hour 60 > demo/emulator.json &
EMULATOR=$!
trap 'kill $EMULATOR 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s demo/emulator.json ] && break; sleep 0.1; done
.venv/bin/python - <<'PY'
import json
info = json.loads(open("demo/emulator.json").readline())
config = {"auth_token": info["token"], "organization": info["organization"], "hostname": info["base_url"]}
json.dump(config, open("demo/config.json", "w"), indent=2)
PY
# Rows per table before this run (none on the first), to show what a second run added.
count_rows() {
  .venv/bin/python - <<'PY'
import os, duckdb
if os.path.exists("demo/sentry.duckdb"):
    con = duckdb.connect("demo/sentry.duckdb", read_only=True)
    tables = {t for (t,) in con.sql("select table_name from information_schema.tables").fetchall()}
    print(" ".join(str(con.execute(f'select count(*) from "{t}"').fetchall()[0][0]) if t in tables else "0"
                   for t in ("events", "issues", "releases")))
PY
}
BEFORE=$(count_rows)
.venv/bin/source-sentry sync --config demo/config.json --destination demo/sentry.duckdb
if [ -n "$BEFORE" ]; then
  read -r EVENTS_BEFORE ISSUES_BEFORE RELEASES_BEFORE <<< "$BEFORE"
  read -r EVENTS_AFTER ISSUES_AFTER RELEASES_AFTER <<< "$(count_rows)"
  echo
  echo "An incremental sync: $((EVENTS_AFTER - EVENTS_BEFORE)) new events, $((ISSUES_AFTER - ISSUES_BEFORE)) new issues,"
  echo "$((RELEASES_AFTER - RELEASES_BEFORE)) new releases since the last run (re-read look-back events are deduplicated)."
fi
echo
echo "Top issues by events, straight from DuckDB:"
.venv/bin/python - <<'PY'
import duckdb
con = duckdb.connect("demo/sentry.duckdb", read_only=True)
rows = con.sql('select "shortId", status, "count", title from issues order by "count"::bigint desc limit 5').fetchall()
for row in rows:
    print("  ", *row)
PY
.venv/bin/source-sentry report --destination demo/sentry.duckdb --output demo/report.html > /dev/null
echo
echo "The report (one file, opens offline): $(pwd)/demo/report.html"
