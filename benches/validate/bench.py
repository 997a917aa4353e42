#!/usr/bin/env python3
"""Python side of the validation benchmarks (run by run.sh).

  bench.py metrics DIR      writes DIR/{p.f64,y.u8,g.u8} (1 M predictions) if absent,
                            then times scikit-learn + statsmodels + a NumPy DeLong
                            on the same metric set as mdc-validate, one core.
  bench.py infer ROWS BATCH MODEL...   ONNX Runtime from Python, same data/batch.
"""
import json
import os
import sys
import time

import numpy as np


def make(dir_, n=1_000_000):
    os.makedirs(dir_, exist_ok=True)
    if os.path.exists(os.path.join(dir_, "p.f64")):
        return
    rng = np.random.default_rng(7)
    y = (rng.random(n) < 0.1).astype(np.uint8)
    score = rng.normal(0, 1, n) + 1.2 * y
    p = 1 / (1 + np.exp(-(score - 2.2)))
    p = np.round(p, 6)  # realistic ties
    g = rng.integers(0, 4, n).astype(np.uint8)
    p.astype("<f8").tofile(os.path.join(dir_, "p.f64"))
    y.tofile(os.path.join(dir_, "y.u8"))
    g.tofile(os.path.join(dir_, "g.u8"))


def midrank(x):
    j = np.argsort(x, kind="mergesort")
    z = x[j]
    n = len(x)
    # vectorised midranks of tie groups
    starts = np.r_[0, np.flatnonzero(z[1:] != z[:-1]) + 1]
    ends = np.r_[starts[1:], n]
    mid = 0.5 * (starts + ends - 1) + 1
    t = np.repeat(mid, ends - starts)
    out = np.empty(n)
    out[j] = t
    return out


def delong(y, p):
    pos, neg = p[y == 1], p[y == 0]
    m, n = len(pos), len(neg)
    tx, ty, tz = midrank(pos), midrank(neg), midrank(np.concatenate([pos, neg]))
    auc = tz[:m].sum() / m / n - (m + 1.0) / 2.0 / n
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    var = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n
    se = np.sqrt(var)
    return auc, max(0, auc - 1.959964 * se), min(1, auc + 1.959964 * se)


def all_metrics(y, p, g):
    import statsmodels.api as sm
    from sklearn.metrics import average_precision_score, brier_score_loss, confusion_matrix, roc_auc_score
    from statsmodels.stats.proportion import proportion_confint

    out = {"auroc": roc_auc_score(y, p), "delong": delong(y, p), "auprc": average_precision_score(y, p)}
    tn, fp, fn, tp = confusion_matrix(y, p >= 0.2, labels=[0, 1]).ravel()
    for x, n in [(tp, tp + fn), (tn, tn + fp), (tp, tp + fp), (tn, tn + fn)]:
        proportion_confint(x, n, method="wilson")
    out["brier"] = brier_score_loss(y, p)
    lp = np.clip(p, 1e-12, 1 - 1e-12)
    logit = np.log(lp / (1 - lp))
    out["slope"] = sm.Logit(y, sm.add_constant(logit)).fit(disp=0).params[1]
    out["intercept"] = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=logit).fit().params[0]
    b = np.minimum(np.floor(10 * p), 9).astype(int)
    cnt = np.bincount(b, minlength=10)
    sp = np.bincount(b, weights=p, minlength=10)
    sy = np.bincount(b, weights=y, minlength=10)
    nz = cnt > 0
    out["ece"] = float(np.sum(cnt[nz] / len(p) * np.abs(sp[nz] / cnt[nz] - sy[nz] / cnt[nz])))
    for t in np.arange(1, 20) / 20:
        pr = p >= t
        _ = (pr & (y == 1)).sum(), (pr & (y == 0)).sum()
    for k in range(4):
        s = g == k
        ys, ps = y[s], p[s]
        roc_auc_score(ys, ps)
        delong(ys, ps)
        tn, fp, fn, tp = confusion_matrix(ys, ps >= 0.2, labels=[0, 1]).ravel()
        proportion_confint(tp, tp + fn, method="wilson")
        proportion_confint(tn, tn + fp, method="wilson")
    return out


def metrics(dir_):
    make(dir_)
    p = np.fromfile(os.path.join(dir_, "p.f64"), dtype="<f8")
    y = np.fromfile(os.path.join(dir_, "y.u8"), dtype=np.uint8).astype(np.int64)
    g = np.fromfile(os.path.join(dir_, "g.u8"), dtype=np.uint8)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        out = all_metrics(y, p, g)
        times.append(time.perf_counter() - t)
    times.sort()
    import sklearn
    print(json.dumps({"impl": f"scikit-learn {sklearn.__version__} + statsmodels + NumPy DeLong", "n": len(p),
                      "median_s": times[1], "min_s": times[0], "auroc": out["auroc"]}))


def infer(rows, batch, models):
    import onnxruntime as ort
    r = np.arange(rows)[:, None]
    k = np.arange(8)[None, :]
    X = (((r * 31 + k * 17) % 97) / 4.0 + k).astype(np.float32)
    for path in models:
        so = ort.SessionOptions()
        so.log_severity_level = 3  # the XGBoost export's label-shape warning, once per batch
        s = ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])
        name = s.get_inputs()[0].name
        out_names = [o.name for o in s.get_outputs()]
        s.run(None, {name: X[:batch]})
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            chunks = []
            for i in range(0, rows, batch):
                o = s.run(None, {name: X[i:i + batch]})
                prob = [a for a in o if a.dtype == np.float32 and a.ndim == 2][-1]
                chunks.append(prob[:, 1] if prob.shape[1] == 2 else prob[:, 0])
            best = min(best, time.perf_counter() - t)
        p = np.concatenate(chunks).astype(np.float64)
        print(json.dumps({"impl": f"onnxruntime-python {ort.__version__}", "model": path, "rows": rows, "batch": batch,
                          "best_s": best, "rows_per_s": rows / best, "checksum": float(p.sum())}))


if __name__ == "__main__":
    if sys.argv[1] == "metrics":
        metrics(sys.argv[2])
    else:
        infer(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
