#!/usr/bin/env bash
# Render docs/report.png, the README's picture of the report: the demo's data (scripts/demo.sh
# writes demo/report.html), photographed by Debian's headless chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -s demo/report.html ] || ./scripts/demo.sh > /dev/null
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,3650 \
  --screenshot="$(pwd)/docs/report.png" "file://$(pwd)/demo/report.html" 2> /dev/null
echo "$(pwd)/docs/report.png"
