#!/usr/bin/env python3
"""Medical workloads for the accelerator testbed (issue 8).

Writes, into benches/bench/models/:
  ecg_cnn1d.onnx        a 1D CNN over a 12-lead-free single-lead ECG strip
                        [N, 1, 1000] -> 5 rhythm-class probabilities
  imaging_cnn2d.onnx    a small ResNet-style 2D CNN over a 64x64 grey image
                        [N, 1, 64, 64] -> 2 class probabilities
  tabular_mlp_int8.onnx the sepsis MLP of data/validate
                        (models/mlp_torch_layout.onnx), quantised to INT8 with
                        onnxruntime.quantization (static, QDQ, per-tensor),
                        deliberately, so parity has a drift to catch (and
                        tabular_mlp_int8_full.onnx, every layer quantised)
  *.npz                 the same weights as plain arrays, so the PyTorch
                        server of the GPU script rebuilds identical networks
                        without needing onnx or onnxruntime there

The CNNs are built with the onnx package's helper API (no PyTorch needed
here), with seeded He-initialised weights: they have the shapes and operator
mix of real ECG and imaging models, not trained weights. Run:

  python3 -m venv target/bench-venv
  target/bench-venv/bin/pip install onnxruntime==1.22.1 onnx numpy
  target/bench-venv/bin/python benches/bench/make_models.py
"""
import csv
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(HERE, "models")
FEATURES = ["age", "sex_male", "heart_rate", "resp_rate", "temperature", "lactate", "wbc", "sbp"]


def he(rng, shape, fan_in):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def save(model, name):
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = os.path.join(OUT, name)
    onnx.save(model, path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def ecg_cnn1d(rng):
    w = {}
    nodes = []
    x = "ecg"
    chans = [(1, 16, 7), (16, 32, 5), (32, 64, 5), (64, 64, 3)]
    for i, (cin, cout, k) in enumerate(chans):
        w[f"conv{i}.weight"] = he(rng, (cout, cin, k), cin * k)
        w[f"conv{i}.bias"] = np.zeros(cout, np.float32)
        nodes.append(helper.make_node("Conv", [x, f"conv{i}.weight", f"conv{i}.bias"], [f"c{i}"],
                                      strides=[2], pads=[k // 2, k // 2], name=f"/conv{i}/Conv"))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"/relu{i}/Relu"))
        x = f"r{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"], name="/pool/GlobalAveragePool"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], axis=1, name="/Flatten"))
    w["fc.weight"] = he(rng, (5, 64), 64)
    w["fc.bias"] = np.zeros(5, np.float32)
    nodes.append(helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1, name="/fc/Gemm"))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1, name="/Softmax"))
    g = helper.make_graph(nodes, "ecg_cnn1d",
                          [helper.make_tensor_value_info("ecg", TensorProto.FLOAT, ["batch", 1, 1000])],
                          [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 5])],
                          [numpy_helper.from_array(v, k) for k, v in w.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="mdc benches/bench")
    return m, w


def imaging_cnn2d(rng):
    w = {}
    nodes = []

    def conv(name, x, cin, cout, k, stride=1, relu=True):
        w[f"{name}.weight"] = he(rng, (cout, cin, k, k), cin * k * k)
        w[f"{name}.bias"] = np.zeros(cout, np.float32)
        nodes.append(helper.make_node("Conv", [x, f"{name}.weight", f"{name}.bias"], [f"{name}_out"],
                                      strides=[stride, stride], pads=[k // 2] * 4, name=f"/{name}/Conv"))
        if relu:
            nodes.append(helper.make_node("Relu", [f"{name}_out"], [f"{name}_relu"], name=f"/{name}/Relu"))
            return f"{name}_relu"
        return f"{name}_out"

    def block(name, x, c):
        h = conv(f"{name}.conv1", x, c, c, 3)
        h = conv(f"{name}.conv2", h, c, c, 3, relu=False)
        nodes.append(helper.make_node("Add", [h, x], [f"{name}_add"], name=f"/{name}/Add"))
        nodes.append(helper.make_node("Relu", [f"{name}_add"], [f"{name}_out"], name=f"/{name}/Relu"))
        return f"{name}_out"

    x = conv("stem", "image", 1, 16, 3, stride=2)      # 32x32
    x = block("layer1", x, 16)
    x = conv("down2", x, 16, 32, 3, stride=2)         # 16x16
    x = block("layer2", x, 32)
    x = conv("down3", x, 32, 64, 3, stride=2)         # 8x8
    x = block("layer3", x, 64)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"], name="/pool/GlobalAveragePool"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], axis=1, name="/Flatten"))
    w["fc.weight"] = he(rng, (2, 64), 64)
    w["fc.bias"] = np.zeros(2, np.float32)
    nodes.append(helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1, name="/fc/Gemm"))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1, name="/Softmax"))
    g = helper.make_graph(nodes, "imaging_cnn2d",
                          [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 64, 64])],
                          [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
                          [numpy_helper.from_array(v, k) for k, v in w.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="mdc benches/bench")
    return m, w


def cohort():
    with open(os.path.join(REPO, "data", "validate", "cohort.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    X = np.array([[float(r[c]) for c in FEATURES] for r in rows], dtype=np.float32)
    y = np.array([int(r["sepsis"]) for r in rows])
    return X, y


def quantise_tabular(X):
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self, rows):
            self.it = iter([{"input": rows[i:i + 1]} for i in range(len(rows))])

        def get_next(self):
            return next(self.it, None)

    src = os.path.join(REPO, "data", "validate", "models", "mlp_torch_layout.onnx")
    # Static QDQ, per-tensor, signed 8-bit activations and weights, calibrated
    # on the first 64 rows: the kind of quick vendor quantisation whose drift
    # the parity check exists to catch.
    #  - tabular_mlp_int8.onnx: the hidden activations and the output layer in
    #    INT8, the first layer kept in float. A subtle drift: AUROC is kept
    #    (MLPerf's 99.9% rule passes) while decisions at the threshold flip.
    #  - tabular_mlp_int8_full.onnx: every layer, raw inputs included; a
    #    gross drift that every gate catches.
    for name, exclude in [("tabular_mlp_int8.onnx", ["/fc1/Gemm"]), ("tabular_mlp_int8_full.onnx", [])]:
        dst = os.path.join(OUT, name)
        quantize_static(src, dst, Reader(X[:64]), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        per_channel=False, nodes_to_exclude=exclude)
        print(f"wrote {dst} ({os.path.getsize(dst)} bytes)")
    m = onnx.load(src)
    return {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}


def report(X, y):
    import onnxruntime as ort
    ref = ort.InferenceSession(os.path.join(REPO, "data", "validate", "models", "mlp_torch_layout.onnx"))
    pr = ref.run(None, {"input": X})[0][:, 0]
    t = 0.2

    def auc(p):
        pos, neg = p[y == 1], p[y == 0]
        return ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))

    sens = lambda p: ((p >= t) & (y == 1)).sum() / (y == 1).sum()
    for name in ["tabular_mlp_int8.onnx", "tabular_mlp_int8_full.onnx"]:
        pq = ort.InferenceSession(os.path.join(OUT, name)).run(None, {"input": X})[0][:, 0]
        flips = int(((pr >= t) != (pq >= t)).sum())
        print(f"{name} vs float at threshold {t}: {flips} flips of {len(y)}, max |dp| {np.abs(pr - pq).max():.4f}, "
              f"AUROC {auc(pq):.5f} vs {auc(pr):.5f}, sensitivity {sens(pq):.4f} vs {sens(pr):.4f}")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20260)
    m, w = ecg_cnn1d(rng)
    save(m, "ecg_cnn1d.onnx")
    np.savez(os.path.join(OUT, "ecg_cnn1d.npz"), **w)
    m, w = imaging_cnn2d(rng)
    save(m, "imaging_cnn2d.onnx")
    np.savez(os.path.join(OUT, "imaging_cnn2d.npz"), **w)
    X, y = cohort()
    w = quantise_tabular(X)
    np.savez(os.path.join(OUT, "tabular_mlp.npz"), **w)
    report(X, y)


if __name__ == "__main__":
    sys.exit(main())
