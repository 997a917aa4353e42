#!/usr/bin/env bash
# Runs dciodvfy (Debian package dicom3tools) on every de-identified file in
# OUT and on its input in IN, and counts errors: de-identification must not
# add IOD errors beyond those the input already had.
#   bash benches/dicom/dciodvfy.sh IN_DIR OUT_DIR
# Pairs are read from OUT_DIR.report.json (the mdc report beside the output).
set -uo pipefail
IN=$1
OUT=$2
REPORT=$OUT.report.json
python3 - "$IN" "$OUT" "$REPORT" <<'PY'
import json, re, subprocess, sys
from pathlib import Path
inp, out, rep = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
report = json.loads(rep.read_text())
UID = re.compile(r"\b\d+(?:\.\d+){2,}\b")
UID_AFTER = re.compile(r"(ReferencedSOPInstanceUID )\S+")
def errors(p):
    r = subprocess.run(["dciodvfy", str(p)], capture_output=True, text=True, errors="replace")
    lines = (r.stdout + r.stderr).splitlines()
    # UIDs are remapped, so the same error names another UID in the output:
    # compare errors with UIDs masked.
    return [UID_AFTER.sub(r"\1<UID>", UID.sub("<UID>", l)) for l in lines if l.startswith("Error")]
tot_in = tot_out = worse = n = 0
new_kinds = {}
for f in report["files"]:
    if f["status"] != "done":
        continue
    n += 1
    ei, eo = errors(inp / f["input"]), errors(out / f["output"])
    tot_in += len(ei); tot_out += len(eo)
    extra = [e for e in eo if e not in ei]
    if extra:
        worse += 1
        for e in extra:
            k = e.split(" - ")[1] if " - " in e else e
            new_kinds[k] = new_kinds.get(k, 0) + 1
print(f"files checked: {n}")
print(f"dciodvfy errors: inputs {tot_in}, outputs {tot_out}; files with errors not in their input: {worse}")
for k, v in sorted(new_kinds.items(), key=lambda kv: -kv[1])[:15]:
    print(f"  {v:4d}  {k}")
PY
