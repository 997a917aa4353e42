#!/usr/bin/env python3
"""Side-by-side DICOM de-identification benchmark and leak checker.

Runs mdc, dicognito and pydicom's `deid` on the same public DICOM files
(pydicom's test and charset files, pydicom-data, deid-data), and reports for
each tool: files/s (per core), MB/s, files it could not process, outputs that
pydicom cannot re-open, and RESIDUAL IDENTIFIERS: every identifying value of
every input (patient/physician names and their parts, ids, birth date, study
date, institution, accession number, study/SOP UIDs) searched in the tool's
output both decoded (every text value, sequences and private tags included)
and as raw bytes (the input's own encoding and UTF-8).

Run through benches/dicom/run.sh, which prepares the venv, the corpus and the
mdc binary. Nothing here is part of the build or the tests.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

NAME_TAGS = [
    "PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
    "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
    "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy", "RequestingPhysician",
]
ID_TAGS = [
    "PatientID", "OtherPatientIDs", "AccessionNumber", "PatientBirthDate",
    "StudyDate", "InstitutionName", "InstitutionAddress", "PatientAddress",
    "PatientTelephoneNumbers", "StudyInstanceUID", "SOPInstanceUID", "SeriesInstanceUID",
]
MIN_LEN = 4  # shorter values ("M", "CT1") match everywhere by chance
# Values that are placeholders, not identifiers, when an input already has them.
PLACEHOLDERS = {"ANONYMIZED", "ANONYMOUS", "REMOVED", "UNKNOWN"}
TABLE_JSON = Path(__file__).resolve().parents[3] / "shared/data/dicom/confidentiality_profile_attributes.json"


def _table():
    """Tags of PS3.15 Table E.1-1 as (value, mask) pairs."""
    rows = json.loads(TABLE_JSON.read_text()) if TABLE_JSON.exists() else []
    out = []
    for r in rows:
        t = r["tag"]
        if not t.startswith("(") or "WHERE" in t:
            continue
        hexs = t[1:5] + t[6:10]
        out.append((int(hexs.replace("X", "0"), 16),
                    int("".join("0" if c == "X" else "F" for c in hexs), 16)))
    return out


TABLE = _table()


def in_table(tag):
    return any(tag & m == v for v, m in TABLE)


def benign_values(ds):
    """Values the input holds in attributes that no PS3.15 profile touches
    (not in Table E.1-1, not private): a tool may keep them, so an identifier
    equal to one of them (InstitutionName "TOSHIBA" = Manufacturer) is not
    counted as a residual."""
    out = set()

    def walk(d):
        for el in d:
            if el.VR == "SQ":
                for item in el.value:
                    walk(item)
                continue
            if el.tag.is_private or in_table(int(el.tag)) or el.tag == 0x7FE00010:
                continue
            vals = el.value if isinstance(el.value, pydicom.multival.MultiValue) else [el.value]
            for v in vals:
                up = str(v).strip().upper()
                out.add(up)
                # And each word: InstitutionName "TOSHIBA" is a word of the
                # kept Manufacturer "TOSHIBA_MEC".
                out.update(w for w in re.split(r"[^A-Z0-9]+", up) if w)
    walk(ds)
    return out


def identifiers(path):
    """The identifying values of one input: list of (label, text, raw bytes list)."""
    ds = pydicom.dcmread(path, force=True)
    benign = benign_values(ds)
    out = []

    def add(label, value, raw=None):
        text = str(value).strip().strip("\x00")
        if len(text) < MIN_LEN or text.upper() in PLACEHOLDERS or text.upper() in benign:
            return
        if text.startswith("1.2.840.10008."):
            return  # a UID defined by the DICOM standard (e.g. a standard palette)
        raws = {text.encode("utf-8", "ignore")}
        if raw:
            raws.add(bytes(raw).strip(b" \x00"))
        out.append((label, text, [r for r in raws if len(r) >= MIN_LEN]))

    for kw in NAME_TAGS:
        el = ds.data_element(kw) if kw in ds else None
        if el is None or el.value in (None, ""):
            continue
        values = el.value if isinstance(el.value, pydicom.multival.MultiValue) else [el.value]
        for v in values:
            add(kw, v)
            for group in str(v).split("="):
                for part in group.split("^"):
                    add(kw + ".part", part)
    for kw in ID_TAGS:
        el = ds.data_element(kw) if kw in ds else None
        if el is None or el.value in (None, ""):
            continue
        values = el.value if isinstance(el.value, pydicom.multival.MultiValue) else [el.value]
        for v in values:
            add(kw, v)
    # Raw bytes of text elements in the file's own character set.
    with open(path, "rb") as f:
        raw = f.read()
    for kw in NAME_TAGS:
        if kw in ds:
            try:
                enc = ds.original_character_set if hasattr(ds, "original_character_set") else None
                el = ds[kw]
                for v in (el.value if isinstance(el.value, pydicom.multival.MultiValue) else [el.value]):
                    orig = getattr(v, "original_string", None)
                    if orig:
                        for piece in orig.replace(b"=", b"^").split(b"^"):
                            piece = piece.strip(b" ")
                            up = piece.decode("latin-1").upper()
                            if up in PLACEHOLDERS or up in benign:
                                continue
                            if len(piece) >= MIN_LEN and piece in raw:
                                out.append((kw + ".raw", repr(piece), [piece]))
            except Exception:
                pass
    return out


def decoded_text(path):
    """Every text value of an output file, decoded, sequences and private tags included."""
    ds = pydicom.dcmread(path, force=True)
    parts = []

    def walk(d):
        for el in d:
            if el.VR == "SQ":
                for item in el.value:
                    walk(item)
            elif el.tag == 0x7FE00010:
                continue
            else:
                try:
                    parts.append(str(el.value))
                except Exception:
                    pass
    walk(ds)
    walk(ds.file_meta)
    return "\n".join(parts)


def residuals(in_path, out_path):
    """Identifiers of in_path found in out_path (decoded or raw)."""
    ids = identifiers(in_path)
    try:
        text = decoded_text(out_path).upper()
    except Exception:
        text = ""
    raw = Path(out_path).read_bytes()
    # Skip pixel data bytes: identifiers cannot be searched in compressed pixels anyway,
    # and short raw values would match noise there.
    try:
        ds = pydicom.dcmread(out_path, force=True, stop_before_pixels=True)
        header_end = len(raw) if "PixelData" not in ds else raw.find(b"\xe0\x7f\x10\x00")
        if header_end > 0:
            raw = raw[:header_end]
    except Exception:
        pass
    found = []
    for label, value, raws in ids:
        # Whole words only: "MARY" inside "SUMMARY" is not a residual.
        pat = re.compile(r"(?<![A-Z0-9])" + re.escape(value.upper()) + r"(?![A-Z0-9])")
        rpats = [re.compile(rb"(?<![A-Za-z0-9])" + re.escape(r) + rb"(?![A-Za-z0-9])") for r in raws]
        if pat.search(text) or any(p.search(raw) for p in rpats):
            found.append(label)
    return found


def run_mdc(binary, corpus, work, jobs, allow, root, name=None):
    name = name or f"mdc-out-j{jobs}"
    out = work / name
    rep = work / f"{name}.report.json"
    quar = work / f"{name}.quarantine"
    for p in (out, quar):
        shutil.rmtree(p, ignore_errors=True)
    if rep.exists():
        rep.unlink()
    args = [str(binary), "deid", "dicom", "--input", str(corpus), "--output", str(out),
            "--jobs", str(jobs)]
    for m in allow:
        args += ["--allow-modality", m]
    env = dict(os.environ, MDC_ROOT=str(root))
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + args, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    maxrss_kb = int(p.stderr.strip().splitlines()[-1]) if p.stderr.strip() else 0
    report = json.loads(rep.read_text())
    pairs = []
    failed = 0
    for f in report["files"]:
        if f["status"] == "done":
            pairs.append((corpus / f["input"], out / f["output"]))
        elif f["status"] == "rejected":
            failed += 1
    return dict(tool=f"mdc (jobs={jobs})", seconds=dt, pairs=pairs, failed=failed,
                quarantined=report["counts"]["quarantined"], exit=p.returncode,
                maxrss_mb=maxrss_kb / 1024)


def run_python_tool(name, files, work):
    out = work / f"{name}-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    pairs, failed = [], 0
    if name == "dicognito":
        from dicognito.anonymizer import Anonymizer
        anon = Anonymizer()
        t = time.perf_counter()
        for i, f in enumerate(files):
            try:
                ds = pydicom.dcmread(f)
                anon.anonymize(ds)
                dest = out / f"{i}.dcm"
                ds.save_as(dest)
                pairs.append((f, dest))
            except Exception:
                failed += 1
        dt = time.perf_counter() - t
    else:
        import logging
        logging.disable(logging.CRITICAL)
        from deid.dicom import replace_identifiers
        t = time.perf_counter()
        for i, f in enumerate(files):
            try:
                sub = out / str(i)
                sub.mkdir()
                res = replace_identifiers(dicom_files=[str(f)], save=True, output_folder=str(sub),
                                          remove_private=True)
                written = list(sub.iterdir())
                if written:
                    pairs.append((f, written[0]))
                else:
                    failed += 1
            except Exception:
                failed += 1
        dt = time.perf_counter() - t
    return dict(tool=name, seconds=dt, pairs=pairs, failed=failed, quarantined=0, exit=0,
                maxrss_mb=None)


def timed_copy(src, dst):
    """A plain userspace copy (read and write through a buffer, like `cat`)."""
    t = time.perf_counter()
    with open(src, "rb") as i, open(dst, "wb") as o:
        while True:
            b = i.read(1 << 18)
            if not b:
                break
            o.write(b)
    return time.perf_counter() - t


def summarise(r, total_files):
    done = len(r["pairs"])
    mb = sum(Path(i).stat().st_size for i, _ in r["pairs"]) / 1e6
    leaks, leaky_files, unreadable = 0, 0, 0
    kinds = {}
    for i, o in r["pairs"]:
        try:
            pydicom.dcmread(o)
        except Exception:
            unreadable += 1
        found = residuals(i, o)
        if found:
            leaky_files += 1
        leaks += len(found)
        for k in found:
            kinds[k] = kinds.get(k, 0) + 1
    return dict(tool=r["tool"], files=total_files, done=done, failed=r["failed"],
                quarantined=r["quarantined"], seconds=round(r["seconds"], 3),
                files_per_s=round(done / r["seconds"], 1) if r["seconds"] else None,
                mb_per_s=round(mb / r["seconds"], 2) if r["seconds"] else None,
                residual_identifiers=leaks, files_with_residuals=leaky_files,
                residual_kinds=dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
                unreadable_outputs=unreadable, maxrss_mb=r["maxrss_mb"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True, type=Path)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--mdc", required=True, type=Path)
    ap.add_argument("--root", required=True, type=Path)
    ap.add_argument("--large", type=Path, nargs="*", default=[])
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    # pydicom ships the same instance in several transfer syntaxes (same SOP
    # Instance UID); mdc rejects a second file with the same UID as a
    # duplicate, so the comparison uses one file per SOP Instance UID.
    unique = a.work / "corpus-unique"
    shutil.rmtree(unique, ignore_errors=True)
    unique.mkdir(parents=True)
    seen = set()
    for p in sorted(q for q in a.corpus.rglob("*") if q.is_file()):
        try:
            uid = str(pydicom.dcmread(p, stop_before_pixels=True, force=True).get("SOPInstanceUID", ""))
        except Exception:
            uid = ""
        if uid and uid in seen:
            continue
        seen.add(uid)
        shutil.copy(p, unique / p.name)
    a.corpus = unique
    files = sorted(p for p in a.corpus.rglob("*") if p.is_file())
    # mdc quarantines burned-in modalities by default; the benchmark lets the
    # modality rule through (BurnedInAnnotation=YES files stay quarantined) so
    # that the three tools process the same files.
    allow = ["US", "SC", "XA", "ES", "DOC"]
    results = []
    for jobs in (1, 2):
        results.append(run_mdc(a.mdc, a.corpus, a.work, jobs, allow, a.root))
    for tool in ("dicognito", "deid"):
        results.append(run_python_tool(tool, files, a.work))
    summary = [summarise(r, len(files)) for r in results]

    # Large files: mdc vs a plain copy, and peak memory.
    large = []
    for f in a.large:
        d = a.work / "large-in"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        shutil.copy(f, d / f.name)
        copy_s = timed_copy(d / f.name, a.work / "large-copy.dcm")
        best = None
        for _ in range(3):  # best of three: the machine is shared
            r = run_mdc(a.mdc, d, a.work, 1, allow, a.root, name="mdc-large")
            if best is None or r["seconds"] < best["seconds"]:
                best = r
        r = best
        copy_s = min(copy_s, *[timed_copy(d / f.name, a.work / "large-copy.dcm") for _ in range(2)])
        large.append(dict(file=f.name, mb=round(f.stat().st_size / 1e6, 1),
                          copy_s=round(copy_s, 4), mdc_s=round(r["seconds"], 4),
                          ratio=round(r["seconds"] / copy_s, 2) if copy_s else None,
                          mdc_maxrss_mb=round(r["maxrss_mb"], 1), done=len(r["pairs"])))
    out = dict(files=len(files), mb=round(sum(p.stat().st_size for p in files) / 1e6, 2),
               tools=summary, large=large,
               versions=dict(pydicom=pydicom.__version__))
    try:
        import dicognito, deid
        out["versions"].update(dicognito=dicognito.__version__, deid=deid.__version__)
    except Exception:
        pass
    text = json.dumps(out, indent=2, ensure_ascii=False)
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
