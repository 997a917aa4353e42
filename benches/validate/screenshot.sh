#!/usr/bin/env bash
# Renders a validation report in headless Chromium (Debian package `chromium`)
# and writes a PNG screenshot to look at: the browser check of issue 7.
# Usage: benches/validate/screenshot.sh [MDC_BINARY]   → target/validate-shot/report.png
set -euo pipefail
cd "$(dirname "$0")/../.."
mdc=${1:-target/debug/mdc}
out=target/validate-shot
rm -rf "$out"; mkdir -p "$out"
export ORT_DYLIB_PATH=$PWD/runtime/onnxruntime/libonnxruntime.so
cat > "$out/card.toml" <<'TOML'
name = "Sepsis early warning (XGBoost, synthetic)"
version = "1.0"
developer = "Example AI Co."
intended_use = "Adult inpatients; flags sepsis risk within 24 h for nurse review."
TOML
"$mdc" validate --model data/validate/models/xgboost.onnx --data data/validate/cohort.csv \
  --features age,sex_male,heart_rate,resp_rate,temperature,lactate,wbc,sbp --label sepsis \
  --threshold 0.2 --subgroup sex --subgroup age:50,65,80 --subgroup region \
  --bootstrap 500 --seed 7 --card "$out/card.toml" --output "$out"
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
  --window-size=1150,4200 --screenshot="$PWD/$out/report.png" "file://$PWD/$out/report.html" 2>/dev/null
ls -l "$out/report.png"
