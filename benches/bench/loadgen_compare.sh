#!/usr/bin/env bash
# The LoadGen comparison of docs/bench.md: a venv under target/ with the
# official MLPerf LoadGen and the same ONNX Runtime as runtime/onnxruntime/,
# then benches/bench/loadgen_compare.py. Installs from PyPI only.
# Usage: benches/bench/loadgen_compare.sh [--seconds 10] [--threads 1]
#        (MDC_BIN=path/to/mdc to use another build; default target/release/mdc)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/bench-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet "onnxruntime==1.22.1" numpy mlcommons-loadgen onnx
exec "$venv/bin/python" benches/bench/loadgen_compare.py "$@"
