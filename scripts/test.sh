#!/usr/bin/env bash
# Set up a virtual environment with the test dependencies, lint and type-check, run the tests.
# Usage: ./scripts/test.sh [pytest args...]   (e.g. -m slow for the long variants)
# A ruff or mypy finding fails the run before any test starts.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' > .venv/install.log 2>&1 \
  || { cat .venv/install.log; exit 1; }
# The report is tested as a person sees it, in Debian's headless chromium: installed here where
# this runs as root with apt-get (CI does); elsewhere that test says why it is skipped.
if ! command -v chromium > /dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null 2>&1; then
  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium > .venv/chromium.log 2>&1 \
    || { apt-get update -q > /dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium > .venv/chromium.log 2>&1; }) \
    || echo "could not install chromium (see .venv/chromium.log): the report's browser test will say so"
fi
.venv/bin/python -m ruff check --quiet .
.venv/bin/python -m mypy  # the packages and options are in pyproject.toml
exec .venv/bin/python -m pytest "$@"
