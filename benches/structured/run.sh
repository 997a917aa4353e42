#!/usr/bin/env bash
# Side-by-side benchmark of structured de-identification (issue 4):
# pseudonymise + date-shift of an OMOP measurement table with mdc's engine
# (the same code path as `mdc deid omop`: mdc_table::structured::run_omop)
# against DuckDB doing the same transform in SQL (keyed SHA-256 + date add),
# on the same Parquet, on this machine's cores. Also times `mdc risk` on the
# same table with 4 quasi-identifiers.
#
#   benches/structured/run.sh [PERSONS] [MEASUREMENTS_PER_VISIT]
#
# Default: 100 000 persons × 5 visits × 20 measurements = 10 M rows.
# DuckDB comes from PyPI into a venv under target/; nothing else is downloaded.
# The driver is the example `structured_bench` of mdc-table (it links only
# mdc-table and mdc-deid, so its release build takes minutes, not the whole
# platform's half hour).
set -euo pipefail
cd "$(dirname "$0")/../.."
PERSONS=${1:-100000}
PER_VISIT=${2:-20}
THREADS=${THREADS:-$(nproc)}
T=${CARGO_TARGET_DIR:-target}
W=target/bench-structured
VENV=target/bench-structured-venv
mkdir -p "$W"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'duckdb==1.*' pytz
fi
cargo build --release -p mdc-table --example structured_bench -q
B=$T/release/examples/structured_bench
rm -rf "$W/data" "$W/in" "$W/out" "$W/duck.parquet"
echo "== synthetic OMOP: $PERSONS persons, 5 visits each, $PER_VISIT measurements per visit"
/usr/bin/time -f "   synth: %e s, %M KB max RSS" "$B" synth "$W/data" "$PERSONS" 5 "$PER_VISIT" | tail -1 | cut -c1-120
mkdir -p "$W/in"
cp "$W/data/person.parquet" "$W/data/measurement.parquet" "$W/in/"
ROWS=$("$VENV/bin/python" -c "import duckdb; print(duckdb.sql(\"select count(*) from read_parquet('$W/in/measurement.parquet')\").fetchone()[0])")
echo "== mdc: person + measurement ($ROWS rows), single thread"
OUT=$(/usr/bin/time -f "   mdc: %e s wall, %U s user, %M KB max RSS" "$B" deid "$W/in" "$W/out" benches/structured/bench-policy.toml)
echo "$OUT" | sed 's/^/   /'
MDC_S=$(echo "$OUT" | awk '/deid_seconds/ {print $2}')
echo "== DuckDB $("$VENV/bin/python" -c 'import duckdb; print(duckdb.__version__)'): the same transform in SQL, $THREADS threads"
DUCK_S=$(/usr/bin/time -f "   duckdb: %e s wall, %U s user, %M KB max RSS" "$VENV/bin/python" benches/structured/duckdb_peer.py "$W/in/measurement.parquet" "$W/duck.parquet" "$THREADS")
python3 - "$ROWS" "$MDC_S" "$DUCK_S" "$THREADS" <<'PY'
import sys
rows, mdc, duck, threads = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
print(f"RESULT rows={rows} mdc={mdc:.2f}s ({rows / mdc / 1e6:.2f} M rows/s on 1 core) "
      f"duckdb={duck:.2f}s ({rows / duck / 1e6:.2f} M rows/s on {threads} threads) ratio duckdb/mdc={duck / mdc:.2f}")
PY
echo "== mdc risk: $ROWS rows, 4 quasi-identifiers"
/usr/bin/time -f "   risk: %e s wall, %M KB max RSS" "$B" risk "$W/in/measurement.parquet" measurement_concept_id,unit_source_value,measurement_date,provider_id
