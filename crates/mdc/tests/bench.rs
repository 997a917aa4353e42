#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mdc bench …` through the real binary (issue 8): runs on the shipped
//! medical workloads, clear errors for bad input, INVALID results, the stored
//! results, the HTML comparison, and the parity check catching the INT8
//! model's drift. Needs ONNX Runtime in runtime/onnxruntime/ (scripts/setup).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The ONNX Runtime library scripts/setup installs.
fn ort_dir() -> PathBuf {
    let d = repo().join("runtime/onnxruntime");
    assert!(
        d.join("libonnxruntime.so").exists(),
        "ONNX Runtime is not installed in {}: run scripts/setup",
        d.display()
    );
    d
}

fn mdc(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mdc"));
    c.env("MDC_ROOT", root)
        .env("MDC_ONNXRUNTIME", ort_dir())
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("MDC_TOKEN")
        .current_dir(repo())
        .stdin(Stdio::null());
    c
}

fn run(root: &Path, args: &[&str]) -> Output {
    mdc(root).args(args).output().unwrap()
}

fn json(root: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = run(root, &a);
    assert!(
        out.status.success(),
        "mdc {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fail(root: &Path, args: &[&str]) -> String {
    let out = run(root, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "mdc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn init() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let out = Command::new(env!("CARGO_BIN_EXE_mdc"))
        .args(["init", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, root)
}

const ECG: &str = "benches/bench/models/ecg_cnn1d.onnx";
const IMAGING: &str = "benches/bench/models/imaging_cnn2d.onnx";
const MLP: &str = "data/validate/models/mlp_torch_layout.onnx";
const MLP_INT8: &str = "benches/bench/models/tabular_mlp_int8.onnx";
const COHORT: &str = "data/validate/cohort.csv";
const FEATURES: &str = "age,sex_male,heart_rate,resp_rate,temperature,lactate,wbc,sbp";

#[test]
fn offline_and_single_stream_runs_are_stored_listed_shown_and_compared() {
    let (dir, root) = init();
    let off = json(
        &root,
        &[
            "bench",
            "run",
            "--model",
            ECG,
            "--scenario",
            "offline",
            "--batch",
            "8",
            "--duration",
            "300ms",
            "--min-queries",
            "16",
        ],
    );
    for k in [
        "scenario",
        "valid",
        "invalid_reason",
        "queries",
        "samples_per_second",
        "latency_ms",
        "target_qps",
        "achieved_qps",
        "system",
    ] {
        assert!(off.get(k).is_some(), "missing {k} in {off}");
    }
    assert_eq!(off["scenario"], "offline");
    assert_eq!(off["valid"], true);
    assert!(off["samples_per_second"].as_f64().unwrap() > 0.0);
    for p in ["p50", "p90", "p95", "p99", "p999", "max"] {
        assert!(off["latency_ms"][p].as_f64().unwrap() > 0.0, "{p}");
    }
    assert_eq!(off["short_of_mlperf_minimums"], true);
    let sys = &off["system"];
    assert_eq!(sys["execution_provider"], "CPUExecutionProvider");
    assert_eq!(sys["onnxruntime"], "1.22.1");
    assert_eq!(sys["model_sha256"].as_str().unwrap().len(), 64);
    assert!(sys["cpu_cores"].as_u64().unwrap() >= 1);
    // Energy: either measured or each sensor reported absent, never guessed.
    for s in off["energy"]["sensors"].as_array().unwrap() {
        assert!(s["joules"].is_number() || s["note"].as_str().unwrap().starts_with("absent"));
    }
    assert!(!off["method"].as_str().unwrap().is_empty());

    let ss = json(
        &root,
        &[
            "bench",
            "run",
            "--model",
            MLP,
            "--scenario",
            "single-stream",
            "--duration",
            "200ms",
            "--min-queries",
            "100",
        ],
    );
    assert_eq!(ss["valid"], true, "{ss}");
    assert!(ss["early_stopping"]["estimate_ms"].as_f64().unwrap() > 0.0);

    let list = json(&root, &["bench", "list"]);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [off["id"].as_str().unwrap(), ss["id"].as_str().unwrap()]
    );
    let shown = json(&root, &["bench", "show", ids[0]]);
    assert_eq!(
        shown["result"]["samples_per_second"],
        off["samples_per_second"]
    );

    let html = dir.path().join("cmp.html");
    let cmp = json(
        &root,
        &[
            "bench",
            "compare",
            ids[0],
            ids[1],
            "--html",
            html.to_str().unwrap(),
        ],
    );
    assert_eq!(cmp["runs"].as_array().unwrap().len(), 2);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("polyline") && page.contains("Throughput"));
    assert!(!page.contains("<script"));
    let err = fail(&root, &["bench", "show", "b999"]);
    assert!(err.contains("not found"), "{err}");
    // Audited like every other write.
    let audit = json(&root, &["audit", "log"]);
    assert!(audit.to_string().contains("bench.record"));
}

#[test]
fn an_unknown_or_absent_execution_provider_is_a_clear_error() {
    let (_d, root) = init();
    let e = fail(
        &root,
        &[
            "bench",
            "run",
            "--model",
            ECG,
            "--backend",
            "furiosa-warboy",
            "--duration",
            "100ms",
        ],
    );
    assert!(
        e.contains("unknown execution provider 'furiosa-warboy'"),
        "{e}"
    );
    // Known to ONNX Runtime, but the CPU wheel's library was not built with it.
    let e = fail(
        &root,
        &[
            "bench",
            "run",
            "--model",
            ECG,
            "--backend",
            "tensorrt",
            "--duration",
            "100ms",
        ],
    );
    assert!(e.contains("not in the loaded ONNX Runtime library"), "{e}");
    assert!(e.contains("CPUExecutionProvider"), "{e}");
}

#[test]
fn a_dataset_that_does_not_fit_the_model_input_is_a_shape_mismatch() {
    let (_d, root) = init();
    let e = fail(
        &root,
        &[
            "bench",
            "run",
            "--model",
            MLP,
            "--dataset",
            COHORT,
            "--features",
            "age,sex_male,heart_rate",
            "--duration",
            "100ms",
        ],
    );
    assert!(
        e.contains("shape mismatch") && e.contains("expects 8 features"),
        "{e}"
    );
    // The fitting dataset runs.
    let ok = json(
        &root,
        &[
            "bench",
            "run",
            "--model",
            MLP,
            "--dataset",
            COHORT,
            "--features",
            FEATURES,
            "--batch",
            "32",
            "--duration",
            "100ms",
            "--min-queries",
            "10",
            "--no-store",
        ],
    );
    assert_eq!(ok["batch"], 32);
}

#[test]
fn an_unsustainable_target_rate_is_an_invalid_result_that_exits_zero() {
    let (_d, root) = init();
    let r = json(
        &root,
        &[
            "bench",
            "run",
            "--model",
            IMAGING,
            "--scenario",
            "server",
            "--target-qps",
            "50000",
            "--latency-bound",
            "2ms",
            "--duration",
            "1s",
            "--min-queries",
            "10",
        ],
    );
    assert_eq!(r["valid"], false);
    assert!(
        r["invalid_reason"]
            .as_str()
            .unwrap()
            .contains("unsustainable"),
        "{r}"
    );
    assert_eq!(r["target_qps"], 50000.0);
    assert!(r["achieved_qps"].as_f64().unwrap() < 50000.0);
    // A sustainable rate on the tiny model is valid once there are enough
    // queries for the server's early-stopping rule (459 with none over the bound).
    let ok = json(
        &root,
        &[
            "bench",
            "run",
            "--model",
            MLP,
            "--scenario",
            "server",
            "--target-qps",
            "500",
            "--latency-bound",
            "100ms",
            "--duration",
            "1s",
            "--min-queries",
            "600",
        ],
    );
    assert_eq!(ok["valid"], true, "{ok}");
    // Server without its settings is a usage error (exit 1, nothing run).
    let e = fail(
        &root,
        &["bench", "run", "--model", MLP, "--scenario", "server"],
    );
    assert!(e.contains("--target-qps"), "{e}");
}

#[test]
fn parity_catches_the_int8_models_drift_that_the_aggregate_rule_misses() {
    let (_d, root) = init();
    let base = [
        "bench",
        "parity",
        "--model",
        MLP_INT8,
        "--reference",
        MLP,
        "--data",
        COHORT,
        "--features",
        FEATURES,
        "--label",
        "sepsis",
        "--threshold",
        "0.2",
    ];
    let mut clinical = base.to_vec();
    clinical.extend(["--subgroup", "sex"]);
    let c = json(&root, &clinical);
    assert_eq!(c["pass"], false, "{c}");
    assert!(c["overall"]["flips"].as_u64().unwrap() > 0);
    let failed: Vec<&str> = c["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["pass"] == false)
        .map(|k| k["gate"].as_str().unwrap())
        .collect();
    assert!(
        failed.iter().any(|g| g.contains("sensitivity")),
        "{failed:?}"
    );
    assert_eq!(c["subgroups"].as_array().unwrap().len(), 2);
    assert!(!c["id"].as_str().unwrap().is_empty());

    let mut agg = base.to_vec();
    agg.extend(["--gate", "mlperf-99.9"]);
    let a = json(&root, &agg);
    assert_eq!(a["pass"], true, "{a}");

    // The reference against itself passes the clinical gate.
    let same = json(
        &root,
        &[
            "bench",
            "parity",
            "--model",
            MLP,
            "--reference-backend",
            "cpu",
            "--data",
            COHORT,
            "--features",
            FEATURES,
            "--label",
            "sepsis",
            "--threshold",
            "0.2",
        ],
    );
    assert_eq!(same["pass"], true, "{same}");
    assert_eq!(same["overall"]["flips"], 0);
}

/// A tiny Open Inference Protocol server: model `tiny`, FP32 [-1, 8] in,
/// `probabilities` [n, 2] out, s = sigmoid(Σx / 100 − 2).
fn serve_oip() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let mut parts = line.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap_or("").to_owned(),
                    parts.next().unwrap_or("").to_owned(),
                );
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let (status, text) = match (method.as_str(), path.as_str()) {
                    ("GET", "/v2/health/ready" | "/v2/models/tiny/ready") => (200, String::new()),
                    ("GET", "/v2/models/tiny") => (200, r#"{"name":"tiny","inputs":[{"name":"input","datatype":"FP32","shape":[-1,8]}],"outputs":[{"name":"probabilities","datatype":"FP32","shape":[-1,2]}]}"#.to_owned()),
                    ("POST", "/v2/models/tiny/infer") => {
                        let v: Value = serde_json::from_slice(&body).unwrap();
                        let shape: Vec<usize> = v["inputs"][0]["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                        let data: Vec<f64> = v["inputs"][0]["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect();
                        let mut out = Vec::new();
                        for r in 0..shape[0] {
                            let s: f64 = data[r * shape[1]..(r + 1) * shape[1]].iter().sum();
                            let p = 1.0 / (1.0 + (-(s / 100.0 - 2.0)).exp());
                            out.extend([1.0 - p, p]);
                        }
                        (200, serde_json::json!({"outputs":[{"name":"probabilities","datatype":"FP32","shape":[shape[0],2],"data":out}]}).to_string())
                    }
                    _ => (404, "{}".to_owned()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn an_open_inference_protocol_endpoint_is_benchmarked_and_checked_for_parity() {
    let (_d, root) = init();
    let url = serve_oip();
    let r = json(
        &root,
        &[
            "bench",
            "run",
            "--endpoint",
            &url,
            "--model-name",
            "tiny",
            "--batch",
            "4",
            "--workers",
            "2",
            "--duration",
            "200ms",
            "--min-queries",
            "20",
        ],
    );
    assert_eq!(r["sut"], "kserve-v2");
    assert_eq!(r["valid"], true, "{r}");
    // Its decisions differ from the MLP's, and parity says so.
    let p = json(
        &root,
        &[
            "bench",
            "parity",
            "--endpoint",
            &url,
            "--model-name",
            "tiny",
            "--reference",
            MLP,
            "--data",
            COHORT,
            "--features",
            FEATURES,
            "--label",
            "sepsis",
            "--threshold",
            "0.2",
        ],
    );
    assert_eq!(p["pass"], false);
    assert_eq!(p["overall"]["n"], 2000);
    let e = fail(
        &root,
        &[
            "bench",
            "run",
            "--endpoint",
            &url,
            "--model-name",
            "nope",
            "--duration",
            "100ms",
        ],
    );
    assert!(e.contains("404"), "{e}");
}
