#!/usr/bin/env python3
"""Side-by-side: `mdc bench run` against the official MLPerf LoadGen
(PyPI `mlcommons-loadgen`) driving an ONNX Runtime session on the same model,
same library version (1.22.1), same thread count, same batch (issue 8).

  benches/bench/loadgen_compare.sh            # creates the venv, then runs this

Reports, per model:
  offline   samples/s from LoadGen and from mdc (target: within 5%)
  single-stream
            mean latency reported by each harness, the bare `session.run` time
            of the same model in a tight Python loop, and each harness's
            per-query time outside its measured latency (LoadGen's "QPS w/
            vs w/o loadgen overhead"; for mdc, wall time per query minus mean
            latency).
Nothing here is an MLPerf result.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import mlperf_loadgen as lg

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


def session(model, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def inputs_for(sess, batch, sets=8, seed=42):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(sets):
        feed = {}
        for i in sess.get_inputs():
            shape = [batch if (k == 0 and not isinstance(d, int)) else (d if isinstance(d, int) and d > 0 else 1)
                     for k, d in enumerate(i.shape)]
            feed[i.name] = rng.standard_normal(shape).astype(np.float32)
        out.append(feed)
    return out


def summary(outdir):
    text = open(os.path.join(outdir, "mlperf_log_summary.txt")).read()

    def grab(label):
        m = re.search(re.escape(label) + r"\s*:\s*([0-9.eE+-]+)", text)
        return float(m.group(1)) if m else None

    return {
        "samples_per_second": grab("Samples per second"),
        "mean_latency_ns": grab("Mean latency (ns)"),
        "p90_ns": grab("90.00 percentile latency (ns)"),
        "qps_with_overhead": grab("QPS w/ loadgen overhead"),
        "qps_without_overhead": grab("QPS w/o loadgen overhead"),
        "valid": "Result is : VALID" in text,
    }


def loadgen(model, threads, batch, scenario, seconds, expected_qps=None):
    sess = session(model, threads)
    feeds = inputs_for(sess, batch)
    n_samples = 1024

    def issue(query_samples):
        # Offline: all samples at once, run in batches of `batch`;
        # single-stream: one sample per call. Respond as each batch finishes.
        for start in range(0, len(query_samples), batch):
            chunk = query_samples[start:start + batch]
            sess.run(None, feeds[chunk[0].index % len(feeds)])
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0) for q in chunk])

    def flush():
        pass

    settings = lg.TestSettings()
    settings.mode = lg.TestMode.PerformanceOnly
    settings.min_duration_ms = int(seconds * 1000)
    if scenario == "offline":
        settings.scenario = lg.TestScenario.Offline
        settings.offline_expected_qps = expected_qps
        settings.min_query_count = 1
    else:
        settings.scenario = lg.TestScenario.SingleStream
        settings.single_stream_expected_latency_ns = 100_000
        settings.min_query_count = 1024
    sut = lg.ConstructSUT(issue, flush)
    qsl = lg.ConstructQSL(n_samples, n_samples, lambda s: None, lambda s: None)
    with tempfile.TemporaryDirectory() as out:
        log = lg.LogSettings()
        log.log_output.outdir = out
        log.log_output.copy_summary_to_stdout = False
        lg.StartTestWithLogSettings(sut, qsl, settings, log)
        res = summary(out)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    return res


def bare(model, threads, batch, seconds=2.0):
    sess = session(model, threads)
    feeds = inputs_for(sess, batch)
    for f in feeds:
        sess.run(None, f)
    n = 0
    t0 = time.perf_counter()
    total = 0.0
    while time.perf_counter() - t0 < seconds:
        a = time.perf_counter()
        sess.run(None, feeds[n % len(feeds)])
        total += time.perf_counter() - a
        n += 1
    return {"mean_run_ns": total / n * 1e9, "runs": n}


def mdc(bin_, model, threads, batch, scenario, seconds, min_queries):
    cmd = [bin_, "bench", "run", "--model", model, "--scenario", scenario, "--threads", str(threads),
           "--batch", str(batch), "--duration", f"{seconds}s", "--min-queries", str(min_queries),
           "--json", "--no-store", "--onnxruntime", os.path.join(REPO, "runtime", "onnxruntime")]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mdc", default=os.environ.get("MDC_BIN", os.path.join(REPO, "target", "release", "mdc")))
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    print(f"ONNX Runtime {ort.__version__} (Python) / mdc {args.mdc}; threads {args.threads}; "
          f"{args.seconds:.0f} s per run; not MLPerf results")
    rows = []
    for name, model, batch in [
        ("ECG 1D CNN", "benches/bench/models/ecg_cnn1d.onnx", 8),
        ("imaging 2D CNN", "benches/bench/models/imaging_cnn2d.onnx", 8),
        ("tabular MLP", "data/validate/models/mlp_torch_layout.onnx", 32),
    ]:
        model = os.path.join(REPO, model)
        # Calibrate LoadGen's expected QPS with a short run of its own, so
        # the measured offline run lasts about --seconds.
        b = bare(model, args.threads, batch, seconds=3.0)
        guess = loadgen(model, args.threads, batch, "offline", 1.0, expected_qps=1e9 / b["mean_run_ns"] * batch / 4)
        lg_off = loadgen(model, args.threads, batch, "offline", args.seconds,
                         expected_qps=guess["samples_per_second"])
        m_off = mdc(args.mdc, model, args.threads, batch, "offline", args.seconds, 64)
        b1 = bare(model, args.threads, 1)
        lg_ss = loadgen(model, args.threads, 1, "single-stream", args.seconds)
        m_ss = mdc(args.mdc, model, args.threads, 1, "single-stream", args.seconds, 1024)
        lg_gap = 1e9 / lg_ss["qps_with_overhead"] - 1e9 / lg_ss["qps_without_overhead"]
        m_mean_ns = m_ss["latency_ms"]["mean"] * 1e6
        m_gap = m_ss["duration_s"] * 1e9 / m_ss["queries"] - m_mean_ns
        row = {
            "model": name,
            "batch": batch,
            "offline_bare_python_sps": 1e9 / b["mean_run_ns"] * batch,
            "offline_loadgen_sps": lg_off["samples_per_second"],
            "offline_mdc_sps": m_off["samples_per_second"],
            "offline_ratio": m_off["samples_per_second"] / lg_off["samples_per_second"],
            "ss_bare_run_us": b1["mean_run_ns"] / 1e3,
            "ss_loadgen_mean_us": lg_ss["mean_latency_ns"] / 1e3,
            "ss_mdc_mean_us": m_mean_ns / 1e3,
            "ss_loadgen_overhead_us": (lg_ss["mean_latency_ns"] - b1["mean_run_ns"]) / 1e3,
            "ss_mdc_overhead_us": (m_mean_ns - b1["mean_run_ns"]) / 1e3,
            "ss_loadgen_gap_us": lg_gap / 1e3,
            "ss_mdc_gap_us": m_gap / 1e3,
        }
        rows.append(row)
        print(json.dumps(row))
    print()
    print("| model | batch | offline bare Python loop samples/s | offline LoadGen samples/s | offline mdc samples/s | mdc/LoadGen | bare run µs | LoadGen mean µs | mdc mean µs | LoadGen − bare µs | mdc − bare µs | LoadGen untimed gap µs | mdc untimed gap µs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['batch']} | {r['offline_bare_python_sps']:.0f} | {r['offline_loadgen_sps']:.0f} | {r['offline_mdc_sps']:.0f} | "
              f"{r['offline_ratio']:.3f} | {r['ss_bare_run_us']:.1f} | {r['ss_loadgen_mean_us']:.1f} | "
              f"{r['ss_mdc_mean_us']:.1f} | {r['ss_loadgen_overhead_us']:.1f} | {r['ss_mdc_overhead_us']:.1f} | "
              f"{r['ss_loadgen_gap_us']:.1f} | {r['ss_mdc_gap_us']:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
