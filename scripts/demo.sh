#!/usr/bin/env bash
# Set up, start the bundled Sentry emulator, and sync its organization into demo/sentry.duckdb.
# No Sentry account needed. Run it again to see an incremental sync.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e . > .venv/install.log 2>&1 \
  || { cat .venv/install.log; exit 1; }
mkdir -p demo
# A fixed port and seed: a second run talks to the same (deterministic) organization.
.venv/bin/sentry-emulator --port "${DEMO_PORT:-8765}" --seed 7 --projects 3 --events-per-project 2000 \
  --issues-per-project 150 --releases 120 --days 60 --rate-limits sentry > demo/emulator.json &
EMULATOR=$!
trap 'kill $EMULATOR 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s demo/emulator.json ] && break; sleep 0.1; done
.venv/bin/python - <<'PY'
import json
info = json.loads(open("demo/emulator.json").readline())
config = {"auth_token": info["token"], "organization": info["organization"], "hostname": info["base_url"]}
json.dump(config, open("demo/config.json", "w"), indent=2)
PY
.venv/bin/source-sentry sync --config demo/config.json --destination demo/sentry.duckdb
echo
echo "Top issues by events, straight from DuckDB:"
.venv/bin/python - <<'PY'
import duckdb
con = duckdb.connect("demo/sentry.duckdb", read_only=True)
rows = con.sql('select "shortId", status, "count", title from issues order by "count"::bigint desc limit 5').fetchall()
for row in rows:
    print("  ", *row)
PY
