#!/usr/bin/env bash
# Governed SQL benchmark: mdc (raw DataFusion vs governed) and DuckDB on the same
# Parquet. Usage: benches/query/run.sh [measurement rows, default 10000000] [patients, default 100000]
# Needs a Python venv with duckdb (pip install duckdb) at $MDC_BENCH_VENV.
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-10000000}
export MDC_BENCH_DIR=${MDC_BENCH_DIR:-${CARGO_TARGET_DIR:-target}/bench-query}
cargo run --release -q -p mdc-query --example bench_query -- "$rows" "${2:-100000}"
"${MDC_BENCH_VENV:-target/venv-query}/bin/python" benches/query/bench_duckdb.py "$MDC_BENCH_DIR/results.json"
