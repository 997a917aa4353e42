#!/usr/bin/env bash
# The GPU device check of issue 8 (see docs/bench.md), for the `device` tool's
# nvidia-h200 machine: PyTorch + CUDA there, no registry, no onnxruntime-gpu.
# Carry a release mdc binary (cargo build --release -p mdc, then copy it to
# target/device/mdc, ≈ well under the 64 MiB carry limit) and run, in the
# repository root there:
#     benches/bench/device/run.sh
# with carry ["target/device"]. It starts the PyTorch Open Inference Protocol
# server on the GPU, drives it with `mdc bench run` (offline + server) and
# `mdc bench parity` against the CPU reference (ONNX Runtime, the device's own
# CPU onnxruntime wheel's library), and writes every JSON result to $OUT.
# Budget: under 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-$(mktemp -d)}
MDC=${MDC:-target/device/mdc}
[ -x "$MDC" ] || { echo "no mdc binary at $MDC (carry a release build)" >&2; exit 1; }
nvidia-smi --query-gpu=name,driver_version,power.draw --format=csv | tee "$OUT/gpu.txt"

# CPU ONNX Runtime for the parity reference: the image's onnxruntime wheel.
ORT=$(python3 -c 'import onnxruntime, os, glob; print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so*")))[-1])' 2>/dev/null || true)
[ -n "$ORT" ] || ORT=runtime/onnxruntime
export MDC_ONNXRUNTIME=$ORT

python3 benches/bench/device/oip_server.py --port 8000 > "$OUT/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
  curl -sf http://127.0.0.1:8000/v2/health/ready >/dev/null 2>&1 && break
  python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:8000/v2/health/ready")' 2>/dev/null && break
  sleep 1
done

ep="--endpoint http://127.0.0.1:8000"
for m in ecg_cnn1d imaging_cnn2d; do
  $MDC bench run $ep --model-name $m --scenario offline --batch 32 --workers 4 \
    --duration 20s --min-queries 256 --json --no-store > "$OUT/${m}_offline.json"
  $MDC bench run $ep --model-name $m --scenario server --target-qps 200 --latency-bound 50ms \
    --workers 8 --duration 30s --min-queries 1024 --json --no-store > "$OUT/${m}_server.json"
done
# Parity: the tabular sepsis MLP served by PyTorch on the GPU against ONNX
# Runtime on the CPU, at the locked threshold, clinical gate.
$MDC bench parity $ep --model-name tabular_mlp --reference data/validate/models/mlp_torch_layout.onnx \
  --data data/validate/cohort.csv --features age,sex_male,heart_rate,resp_rate,temperature,lactate,wbc,sbp \
  --label sepsis --threshold 0.2 --subgroup sex --json --no-store > "$OUT/tabular_parity.json"
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
for f in sorted(os.listdir(out)):
    if f.endswith(".json"):
        d = json.load(open(os.path.join(out, f)))
        if "samples_per_second" in d:
            print(f"{f}: valid={d['valid']} {d['samples_per_second']:.1f} samples/s p99 {d['latency_ms']['p99']:.2f} ms "
                  f"achieved_qps={d.get('achieved_qps')} reason={d.get('invalid_reason')}")
        else:
            print(f"{f}: pass={d['pass']} flips={d['overall']['flips']} max|dp|={d['overall']['max_abs_difference']:.2e}")
PY
