#!/usr/bin/env python3
"""Offline generator of the model-validation fixtures under data/validate/.

Run once (by a developer, never by the tests or the build):

    benches/validate/setup_venv.sh && .venv-validate/bin/python benches/validate/make_fixtures.py

It (1) simulates a synthetic sepsis cohort (no real patient), (2) trains small
models with scikit-learn, XGBoost and LightGBM on a separate training sample,
(3) exports them to ONNX (skl2onnx / onnxmltools; ONNX-ML operators included),
plus an MLP written as the plain-ONNX graph that torch.onnx.export emits for
nn.Sequential(Linear, ReLU, Linear, Sigmoid), (4) scores the committed cohort
with ONNX Runtime from Python, and (5) computes every reference number the Rust
tests compare against with scikit-learn, statsmodels and a NumPy DeLong, all
independent of the Rust implementation. Everything is seeded; rerunning it
rewrites identical files (up to library versions, recorded in expected.json).
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "..", "data", "validate"))
FEATURES = ["age", "sex_male", "heart_rate", "resp_rate", "temperature", "lactate", "wbc", "sbp"]
Z = 1.959964


def simulate(rng, n):
    age = rng.integers(20, 96, n)
    sex_male = rng.integers(0, 2, n)
    hr = rng.normal(90, 18, n).round(0)
    rr = rng.normal(19, 5, n).round(0).clip(6, 60)
    temp = rng.normal(37.2, 0.9, n).round(1)
    lactate = np.exp(rng.normal(0.4, 0.55, n)).round(2)
    wbc = rng.normal(10, 4, n).clip(0.5, None).round(1)
    sbp = rng.normal(122, 21, n).round(0)
    lin = (-3.2 + 0.028 * (age - 60) + 0.25 * sex_male + 0.022 * (hr - 90) + 0.09 * (rr - 19)
           + 0.35 * np.abs(temp - 37.0) + 0.55 * (lactate - 1.6) + 0.05 * (wbc - 10) - 0.015 * (sbp - 122))
    p = 1 / (1 + np.exp(-lin))
    y = (rng.random(n) < p).astype(int)
    X = np.column_stack([age, sex_male, hr, rr, temp, lactate, wbc, sbp]).astype(np.float64)
    return X, y


def write_cohort(path, X, y, rng):
    regions = np.array(["서울", "부산", "대구", "인천", "광주", "대전"])
    region = regions[rng.integers(0, len(regions), len(y))]
    with open(path, "w", encoding="utf-8") as f:
        f.write("age,sex,sex_male,heart_rate,resp_rate,temperature,lactate,wbc,sbp,region,sepsis\n")
        for row, label, reg in zip(X, y, region):
            sex = "M" if row[1] == 1 else "F"
            f.write(f"{int(row[0])},{sex},{int(row[1])},{int(row[2])},{int(row[3])},{row[4]:.1f},"
                    f"{row[5]:.2f},{row[6]:.1f},{int(row[7])},{reg},{label}\n")
    return region


# ---- independent reference statistics --------------------------------------

def midrank(x):
    # Sun & Xu (2014) fast DeLong helper, as in the widely used NumPy implementation.
    j = np.argsort(x, kind="mergesort")
    z = x[j]
    n = len(x)
    t = np.zeros(n, dtype=float)
    i = 0
    while i < n:
        k = i
        while k < n and z[k] == z[i]:
            k += 1
        t[i:k] = 0.5 * (i + k - 1)
        i = k
    t2 = np.empty(n, dtype=float)
    t2[j] = t + 1
    return t2


def delong(y, p):
    pos = p[y == 1]
    neg = p[y == 0]
    m, n = len(pos), len(neg)
    tx = midrank(pos)
    ty = midrank(neg)
    tz = midrank(np.concatenate([pos, neg]))
    auc = tz[:m].sum() / m / n - (m + 1.0) / 2.0 / n
    v01 = (tz[:m] - tx) / n
    v10 = 1.0 - (tz[m:] - ty) / m
    var = np.var(v01, ddof=1) / m + np.var(v10, ddof=1) / n
    se = np.sqrt(var)
    return auc, var, max(0.0, auc - Z * se), min(1.0, auc + Z * se)


def wilson(x, n):
    if n == 0:
        return None
    ph = x / n
    denom = 1 + Z * Z / n
    centre = (ph + Z * Z / (2 * n)) / denom
    half = Z / denom * np.sqrt(ph * (1 - ph) / n + Z * Z / (4 * n * n))
    return {"estimate": ph, "ci_low": centre - half, "ci_high": centre + half}


def reference(y, p, threshold, subgroups):
    from sklearn.metrics import average_precision_score, brier_score_loss, confusion_matrix, roc_auc_score
    import statsmodels.api as sm
    from statsmodels.stats.proportion import proportion_confint

    out = {"n": int(len(y)), "positives": int(y.sum()), "threshold": threshold}
    auc, var, lo, hi = delong(y, p)
    assert abs(auc - roc_auc_score(y, p)) < 1e-12
    out["auroc"] = {"estimate": float(auc), "ci_low": float(lo), "ci_high": float(hi), "variance": float(var)}
    out["auprc"] = float(average_precision_score(y, p))
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel())
    out.update({"tp": tp, "fp": fp, "tn": tn, "fn": fn})
    for name, x, n in [("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp),
                       ("ppv", tp, tp + fp), ("npv", tn, tn + fn)]:
        w = wilson(x, n)
        if w is not None:
            slo, shi = proportion_confint(x, n, alpha=0.05, method="wilson")
            assert abs(slo - w["ci_low"]) < 1e-6 and abs(shi - w["ci_high"]) < 1e-6
        out[name] = w
    out["brier"] = float(brier_score_loss(y, p))
    lp = np.clip(p, 1e-12, 1 - 1e-12)
    logit = np.log(lp / (1 - lp))
    fit = sm.Logit(y, sm.add_constant(logit)).fit(method="newton", tol=1e-14, maxiter=200, disp=0)
    out["calibration_slope"] = float(fit.params[1])
    # Calibration-in-the-large: the root of the (monotone) score equation
    # sum(y - sigmoid(a + logit)) = 0, found by Brent's method; cross-checked
    # against statsmodels' GLM with offset, whose IRLS can diverge when some
    # predictions are exactly 0 (logit -27.6), as in the tied fixture.
    from scipy.optimize import brentq
    from scipy.special import expit
    a = brentq(lambda a: float(np.sum(y - expit(a + logit))), -50, 50, xtol=1e-15, rtol=1e-15, maxiter=500)
    with np.errstate(all="ignore"):
        glm = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=logit).fit(tol=1e-14, maxiter=200)
    if abs(glm.params[0]) < 50:
        assert abs(glm.params[0] - a) < 1e-8, (glm.params[0], a)
    out["calibration_intercept"] = float(a)
    bins = np.minimum(np.floor(10 * p), 9).astype(int)
    ece = 0.0
    for b in range(10):
        sel = bins == b
        if sel.any():
            ece += sel.sum() / len(p) * abs(p[sel].mean() - y[sel].mean())
    out["ece"] = float(ece)
    nb = []
    prev = y.mean()
    for t in [round(0.05 * k, 2) for k in range(1, 20)]:
        pr = p >= t
        tpc = int((pr & (y == 1)).sum())
        fpc = int((pr & (y == 0)).sum())
        nb.append({"threshold": t, "model": tpc / len(y) - fpc / len(y) * t / (1 - t),
                   "treat_all": prev - (1 - prev) * t / (1 - t)})
    out["net_benefit"] = nb
    subs = []
    for name, mask in subgroups:
        ys, ps = y[mask], p[mask]
        s = {"name": name, "n": int(mask.sum()), "positives": int(ys.sum())}
        if 0 < ys.sum() < len(ys):
            a, _, l, h = delong(ys, ps)
            s["auroc"] = {"estimate": float(a), "ci_low": float(l), "ci_high": float(h)}
        else:
            s["auroc"] = None
        prs = ps >= threshold
        s["sensitivity"] = wilson(int((prs & (ys == 1)).sum()), int((ys == 1).sum()))
        s["specificity"] = wilson(int((~prs & (ys == 0)).sum()), int((ys == 0).sum()))
        subs.append(s)
    out["subgroups"] = subs
    return out


def mlp_as_torch_graph(mlp, scaler_mean, scaler_scale, path):
    """The graph torch.onnx.export writes for Sequential(Linear, ReLU, Linear, Sigmoid),
    with the standardisation folded into the first Linear (plain ONNX ops only)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w1, w2 = mlp.coefs_
    b1, b2 = mlp.intercepts_
    w1f = (w1 / scaler_scale[:, None]).astype(np.float32)
    b1f = (b1 - (scaler_mean / scaler_scale) @ w1).astype(np.float32)
    inits = [numpy_helper.from_array(w1f.T.copy(), "fc1.weight"), numpy_helper.from_array(b1f, "fc1.bias"),
             numpy_helper.from_array(w2.T.astype(np.float32).copy(), "fc2.weight"),
             numpy_helper.from_array(b2.astype(np.float32), "fc2.bias")]
    nodes = [helper.make_node("Gemm", ["input", "fc1.weight", "fc1.bias"], ["h1"], transB=1, name="/fc1/Gemm"),
             helper.make_node("Relu", ["h1"], ["h2"], name="/act/Relu"),
             helper.make_node("Gemm", ["h2", "fc2.weight", "fc2.bias"], ["logit"], transB=1, name="/fc2/Gemm"),
             helper.make_node("Sigmoid", ["logit"], ["output"], name="/out/Sigmoid")]
    graph = helper.make_graph(nodes, "main_graph",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", len(FEATURES)])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pytorch",
                              producer_version="(layout of torch.onnx.export; weights from sklearn MLPClassifier)")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def per_feature_inputs(base_path, path):
    """The logistic model with one [N,1] input per feature, named after it."""
    import onnx
    from onnx import TensorProto, helper

    base = onnx.load(base_path)
    src = base.graph.input[0].name
    concat = helper.make_node("Concat", FEATURES, [src], axis=1, name="concat_features")
    g = base.graph
    new_inputs = [helper.make_tensor_value_info(f, TensorProto.FLOAT, [None, 1]) for f in FEATURES]
    graph = helper.make_graph([concat] + list(g.node), g.name, new_inputs, list(g.output), list(g.initializer))
    model = helper.make_model(graph, opset_imports=list(base.opset_import), producer_name=base.producer_name)
    model.ir_version = base.ir_version
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main():
    import lightgbm
    import onnxruntime as ort
    import sklearn
    import skl2onnx
    import statsmodels
    import xgboost
    from onnxmltools import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType as MlFloat
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    os.makedirs(os.path.join(OUT, "models"), exist_ok=True)
    rng = np.random.default_rng(20260501)
    Xtr, ytr = simulate(rng, 4000)
    Xva, yva = simulate(rng, 2000)
    region = write_cohort(os.path.join(OUT, "cohort.csv"), Xva, yva, rng)

    models = {}
    lr = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000)).fit(Xtr, ytr)
    models["logreg"] = to_onnx(lr, initial_types=[("features", FloatTensorType([None, len(FEATURES)]))],
                               options={id(lr): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    models["logreg_zipmap"] = to_onnx(lr, initial_types=[("features", FloatTensorType([None, len(FEATURES)]))],
                                      target_opset={"": 17, "ai.onnx.ml": 3})
    rf = RandomForestClassifier(n_estimators=25, max_depth=5, random_state=7).fit(Xtr, ytr)
    models["random_forest"] = to_onnx(rf, initial_types=[("features", FloatTensorType([None, len(FEATURES)]))],
                                      options={id(rf): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    xg = xgboost.XGBClassifier(n_estimators=40, max_depth=3, learning_rate=0.1, random_state=7, n_jobs=1).fit(Xtr, ytr)
    models["xgboost"] = convert_xgboost(xg, initial_types=[("features", MlFloat([None, len(FEATURES)]))], target_opset=15)
    lg = lightgbm.LGBMClassifier(n_estimators=40, num_leaves=8, learning_rate=0.1, random_state=7, verbose=-1,
                                 n_jobs=1).fit(Xtr, ytr)
    models["lightgbm"] = convert_lightgbm(lg, initial_types=[("features", MlFloat([None, len(FEATURES)]))],
                                          target_opset=15, zipmap=False)
    for name, m in models.items():
        with open(os.path.join(OUT, "models", f"{name}.onnx"), "wb") as f:
            f.write(m.SerializeToString())
    sc = StandardScaler().fit(Xtr)
    mlp = MLPClassifier(hidden_layer_sizes=(16,), max_iter=600, random_state=7).fit(sc.transform(Xtr), ytr)
    mlp_as_torch_graph(mlp, sc.mean_, sc.scale_, os.path.join(OUT, "models", "mlp_torch_layout.onnx"))
    per_feature_inputs(os.path.join(OUT, "models", "logreg.onnx"), os.path.join(OUT, "models", "logreg_named_inputs.onnx"))

    # Score the committed cohort with ONNX Runtime from Python, exactly as the
    # Rust side will: features as float32, the probability column of class 1.
    Xf = Xva.astype(np.float32)
    preds = {}
    for name in ["logreg", "random_forest", "xgboost", "lightgbm", "mlp_torch_layout"]:
        s = ort.InferenceSession(os.path.join(OUT, "models", f"{name}.onnx"), providers=["CPUExecutionProvider"])
        outs = s.run(None, {s.get_inputs()[0].name: Xf})
        prob = [o for o in outs if o.dtype == np.float32 and o.ndim == 2][-1]
        preds[name] = prob[:, 1] if prob.shape[1] == 2 else prob[:, 0]
    with open(os.path.join(OUT, "predictions.csv"), "w") as f:
        names = list(preds)
        f.write("sepsis," + ",".join(names) + "\n")
        for i in range(len(yva)):
            f.write(f"{yva[i]}," + ",".join(f"{float(preds[n][i]):.9g}" for n in names) + "\n")

    age = Xva[:, 0]
    sexm = Xva[:, 1]
    subgroups = [("sex=F", sexm == 0), ("sex=M", sexm == 1),
                 ("age<50", age < 50), ("50<=age<65", (age >= 50) & (age < 65)),
                 ("65<=age<80", (age >= 65) & (age < 80)), ("age>=80", age >= 80)]
    subgroups += [(f"region={r}", region == r) for r in sorted(set(region))]
    expected = {
        "generated_by": "benches/validate/make_fixtures.py",
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "scikit-learn": sklearn.__version__,
                     "statsmodels": statsmodels.__version__, "skl2onnx": skl2onnx.__version__,
                     "xgboost": xgboost.__version__, "lightgbm": lightgbm.__version__, "onnxruntime": ort.__version__},
        "z": Z,
        "models": {},
    }
    for name, p in preds.items():
        p64 = np.asarray(p, dtype=np.float32).astype(np.float64)
        expected["models"][name] = reference(yva, p64, 0.2, subgroups)
    # Ties: a coarse score (rounded to 1 decimal) exercises the ½ rule.
    tied = np.round(preds["logreg"].astype(np.float64), 1)
    expected["tied_logreg_1dp"] = reference(yva, tied, 0.2, [])
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
    print("wrote", OUT)
    for name in preds:
        e = expected["models"][name]
        print(f"  {name:18s} AUROC {e['auroc']['estimate']:.4f} slope {e['calibration_slope']:.3f} ECE {e['ece']:.4f}")


if __name__ == "__main__":
    main()
