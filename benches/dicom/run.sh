#!/usr/bin/env bash
# DICOM de-identification benchmark + leak checker: mdc vs dicognito vs deid.
#
#   bash benches/dicom/run.sh            # results in target/bench-dicom/results.json
#
# Installs (PyPI, pinned) pydicom, dicognito and deid into a venv under
# target/, downloads the public test corpora (pydicom, pydicom-data, deid-data)
# with pip, builds `mdc` in release mode (MDC_BIN=path skips the build), and
# runs benches/dicom/bench.py. Needs python3 (3.10+) and /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
WORK=${WORK:-$REPO/target/bench-dicom}
VENV=${VENV:-$REPO/target/bench-venv-dicom}
mkdir -p "$WORK"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q pydicom==3.0.2 dicognito==0.19.0 deid==0.4.13

# The corpus: every DICOM file the three public packages ship.
if [ ! -d "$WORK/corpus" ]; then
  rm -rf "$WORK/dl" && mkdir -p "$WORK/dl"
  "$VENV/bin/pip" download -q --no-deps -d "$WORK/dl" pydicom==3.0.2 pydicom-data==1.0.0 deid-data==0.0.20
  mkdir -p "$WORK/x" "$WORK/corpus.tmp"
  (cd "$WORK/x" && for w in ../dl/*.whl; do unzip -q -o "$w"; done && tar xzf ../dl/deid-data-0.0.20.tar.gz)
  # Flatten into one folder with unique names; big multi-frame files go to
  # large/ for the copy-speed comparison instead.
  mkdir -p "$WORK/large"
  find "$WORK/x" -type f \( -name '*.dcm' -o -name '*.DCM' -o -path '*data_store/data/*' \) | sort | while read -r f; do
    rel=${f#"$WORK/x/"}
    name=$(echo "$rel" | tr '/' '_')
    size=$(stat -c %s "$f")
    if [ "$size" -gt 10000000 ]; then cp "$f" "$WORK/large/$name"; else cp "$f" "$WORK/corpus.tmp/$name"; fi
  done
  mv "$WORK/corpus.tmp" "$WORK/corpus"
  # The 30-frame ultrasound is marked BurnedInAnnotation=YES, so mdc quarantines
  # it; a copy marked NO measures streaming speed and memory on a 43 MB file.
  "$VENV/bin/python" - "$WORK/large" <<'PY'
import sys, pathlib, pydicom
d = pathlib.Path(sys.argv[1])
src = next(d.glob("*ultrasound-multiframe.dcm"))
ds = pydicom.dcmread(src)
ds.BurnedInAnnotation = "NO"
ds.save_as(d / "derived_ultrasound-multiframe-marked-NO.dcm")
src.unlink()
PY
fi

# The de-identifier: by default the release build of the example
# `deid_dicom` (the same `mdc_dicom::batch::run` that `mdc deid dicom` calls,
# minus the CLI's DataFusion/sqlx link, which takes long to build in release);
# MDC_BIN=/path/to/release/mdc benchmarks the real CLI instead.
T=${CARGO_TARGET_DIR:-$REPO/target}
if [ -z "${MDC_BIN:-}" ]; then
  CARGO_TARGET_DIR=$T cargo build --release -p mdc-dicom --example deid_dicom
  MDC_BIN=$T/release/examples/deid_dicom
fi
if [ "$(basename "$MDC_BIN")" = mdc ]; then
  ROOT=$WORK/root-cli
  [ -f "$ROOT/mdc.toml" ] || MDC_ROOT=$ROOT "$MDC_BIN" init >/dev/null
else
  ROOT=$WORK/root
  if [ ! -f "$ROOT/keys/pseudonym.key" ]; then
    mkdir -p "$ROOT/keys" && head -c 32 /dev/urandom > "$ROOT/keys/pseudonym.key"
  fi
fi

"$VENV/bin/python" benches/dicom/bench.py --corpus "$WORK/corpus" --work "$WORK" \
  --mdc "$MDC_BIN" --root "$ROOT" --large "$WORK"/large/* --out "$WORK/results.json"

# Validator: dciodvfy (Debian package dicom3tools) on a sample of mdc outputs,
# compared with the same inputs, when it is installed.
if command -v dciodvfy >/dev/null; then
  bash benches/dicom/dciodvfy.sh "$WORK/corpus-unique" "$WORK/mdc-out-j1" > "$WORK/dciodvfy.txt" || true
  tail -5 "$WORK/dciodvfy.txt"
fi
