#!/usr/bin/env python3
"""A small Open Inference Protocol (KServe v2 REST) server in PyTorch, for the
GPU device script of issue 8. It rebuilds the testbed's networks from the
.npz weights that benches/bench/make_models.py writes beside the .onnx files
(identical weights, so CPU ONNX Runtime is a valid reference) and serves them
on the GPU:

  ecg_cnn1d      FP32 [-1, 1, 1000]    -> probabilities [-1, 5]
  imaging_cnn2d  FP32 [-1, 1, 64, 64]  -> probabilities [-1, 2]
  tabular_mlp    FP32 [-1, 8]          -> probabilities [-1, 2] (column 1 = sepsis)

Standard library HTTP (ThreadingHTTPServer) and torch only: the device
machine reaches no package registry.
"""
import argparse
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import torch
import torch.nn.functional as F

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")


def load(name, device):
    w = {k: torch.from_numpy(v).to(device) for k, v in np.load(os.path.join(MODELS, name + ".npz")).items()}
    return w


def ecg(w):
    def f(x):
        for i, k in enumerate([7, 5, 5, 3]):
            x = F.relu(F.conv1d(x, w[f"conv{i}.weight"], w[f"conv{i}.bias"], stride=2, padding=k // 2))
        x = x.mean(dim=2)
        return torch.softmax(F.linear(x, w["fc.weight"], w["fc.bias"]), dim=1)
    return f


def imaging(w):
    def conv(x, name, stride=1, relu=True):
        y = F.conv2d(x, w[f"{name}.weight"], w[f"{name}.bias"], stride=stride, padding=1)
        return F.relu(y) if relu else y

    def block(x, name):
        h = conv(x, f"{name}.conv1")
        h = conv(h, f"{name}.conv2", relu=False)
        return F.relu(h + x)

    def f(x):
        x = conv(x, "stem", stride=2)
        x = block(x, "layer1")
        x = conv(x, "down2", stride=2)
        x = block(x, "layer2")
        x = conv(x, "down3", stride=2)
        x = block(x, "layer3")
        x = x.mean(dim=(2, 3))
        return torch.softmax(F.linear(x, w["fc.weight"], w["fc.bias"]), dim=1)
    return f


def tabular(w):
    def f(x):
        h = F.relu(F.linear(x, w["fc1.weight"], w["fc1.bias"]))
        p = torch.sigmoid(F.linear(h, w["fc2.weight"], w["fc2.bias"]))
        return torch.cat([1 - p, p], dim=1)
    return f


SPECS = {
    "ecg_cnn1d": ([-1, 1, 1000], [-1, 5], ecg),
    "imaging_cnn2d": ([-1, 1, 64, 64], [-1, 2], imaging),
    "tabular_mlp": ([-1, 8], [-1, 2], tabular),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    fns = {n: s[2](load(n, dev)) for n, s in SPECS.items()}
    lock = threading.Lock()  # one GPU stream: serialise, as a simple runtime would

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send(self, code, obj):
            body = json.dumps(obj).encode() if obj is not None else b""
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            p = self.path.rstrip("/")
            if p in ("/v2/health/ready", "/v2/health/live"):
                return self.send(200, None)
            parts = p.split("/")
            if len(parts) >= 4 and parts[1] == "v2" and parts[2] == "models" and parts[3] in SPECS:
                name = parts[3]
                if len(parts) == 5 and parts[4] == "ready":
                    return self.send(200, None)
                if len(parts) == 4:
                    i, o, _ = SPECS[name]
                    return self.send(200, {"name": name, "platform": f"pytorch-{torch.__version__}-{args.device}",
                                           "inputs": [{"name": "input", "datatype": "FP32", "shape": i}],
                                           "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": o}]})
            self.send(404, {"error": "not found"})

        def do_POST(self):
            parts = self.path.rstrip("/").split("/")
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            if len(parts) != 5 or parts[3] not in SPECS or parts[4] != "infer":
                return self.send(404, {"error": "not found"})
            try:
                req = json.loads(body)
                t = req["inputs"][0]
                x = torch.tensor(np.asarray(t["data"], dtype=np.float32).reshape(t["shape"]), device=dev)
                with lock, torch.inference_mode():
                    y = fns[parts[3]](x).float().cpu().numpy()
            except Exception as e:  # a bad request is the client's error
                return self.send(400, {"error": str(e)})
            self.send(200, {"model_name": parts[3], "outputs": [
                {"name": "probabilities", "datatype": "FP32", "shape": list(y.shape), "data": y.ravel().tolist()}]})

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), H)
    print(f"serving {', '.join(SPECS)} on {args.device} at http://127.0.0.1:{args.port}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
