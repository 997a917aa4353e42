#!/usr/bin/env bash
# Validation benchmarks, side by side (issue 7). Installs the Python peers
# from PyPI into .venv-validate/ (gitignored under target/), then:
#  1. metrics for 1 M predictions: mdc-validate vs scikit-learn + statsmodels
#     + a NumPy DeLong, one core each, and the ratio;
#  2. inference throughput: mdc-infer vs ONNX Runtime from Python, same model,
#     same rows, same batch size.
# Usage: benches/validate/run.sh [ROWS=200000] [BATCH=1024]
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-200000}
batch=${2:-1024}
venv=${MDC_BENCH_VENV:-target/bench-validate/venv}
out=$PWD/target/bench-validate
mkdir -p "$out"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet numpy scikit-learn statsmodels "onnxruntime==1.22.1"
fi
[ -e runtime/onnxruntime/libonnxruntime.so ] || scripts/setup
export ORT_DYLIB_PATH=$PWD/runtime/onnxruntime/libonnxruntime.so
# One core for the metrics comparison (both sides), as the target says.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

echo "== metrics, 1 M predictions (AUROC + DeLong CI + calibration + 4 subgroups), one core"
# OPENBLAS_CORETYPE/L2_SIZE (set on some hosts for old OpenBLAS builds) slow a
# current NumPy: unset both for the peer, as the environment notes advise.
py=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE taskset -c 0 "$venv/bin/python" benches/validate/bench.py metrics "$out")
rs=$(cargo bench --quiet -p mdc-validate --bench metrics -- "$out" 2>/dev/null | tail -n 1)
[ -n "$rs" ] || rs=$(taskset -c 0 cargo bench --quiet -p mdc-validate --bench metrics -- "$out" | tail -n 1)
echo "$py"; echo "$rs"
python3 -c "import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(f'ratio: mdc-validate is {a[\"median_s\"]/b[\"median_s\"]:.1f}x faster (median {b[\"median_s\"]*1000:.0f} ms vs {a[\"median_s\"]*1000:.0f} ms); |ΔAUROC| = {abs(a[\"auroc\"]-b[\"auroc\"]):.2e}')" "$py" "$rs"

echo "== inference throughput, $rows rows, batch $batch, ONNX Runtime default threads"
unset OMP_NUM_THREADS OPENBLAS_NUM_THREADS MKL_NUM_THREADS
models=(); for m in logreg random_forest xgboost lightgbm mlp_torch_layout; do models+=("$PWD/data/validate/models/$m.onnx"); done
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$venv/bin/python" benches/validate/bench.py infer "$rows" "$batch" "${models[@]}" > "$out/infer-py.jsonl"
cargo bench --quiet -p mdc-infer --bench throughput -- "$rows" "$batch" "${models[@]}" > "$out/infer-rs.jsonl"
python3 - "$out/infer-py.jsonl" "$out/infer-rs.jsonl" <<'PY'
import json, os, sys
py = [json.loads(l) for l in open(sys.argv[1])]
rs = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
print(f"{'model':22s} {'python rows/s':>14s} {'mdc rows/s':>12s} {'mdc/python':>10s}  checksum Δ")
for a, b in zip(py, rs):
    print(f"{os.path.basename(a['model']):22s} {a['rows_per_s']:14,.0f} {b['rows_per_s']:12,.0f} {b['rows_per_s']/a['rows_per_s']:10.2f}  {abs(a['checksum']-b['checksum']):.2e}")
PY
