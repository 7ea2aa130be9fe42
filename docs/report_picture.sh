#!/usr/bin/env bash
# Regenerates docs/report-obd.png: the HTML report of `tastemaker evaluate` on the Open Bandit
# Dataset sample, rendered by headless Chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
obd="${TASTEMAKER_OBD_DIR:-../shared/datasets/obd}"
out="$(mktemp -d)"
.venv/bin/tastemaker evaluate --format obd --logs "$obd/bts/all/all.csv" --report "$out/report.html" >/dev/null
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$out/chromium" --window-size=860,1500 \
  --screenshot=docs/report-obd.png "file://$out/report.html" 2>/dev/null
rm -rf "$out"
echo "wrote docs/report-obd.png"
