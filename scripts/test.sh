#!/usr/bin/env bash
# Set up a virtual environment with the test dependencies and run the whole test suite.
# Usage: ./scripts/test.sh [pytest args...]   (e.g. -m slow for the long variants)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' > .venv/install.log 2>&1 \
  || { cat .venv/install.log; exit 1; }
exec .venv/bin/python -m pytest "$@"
