//! Benchmark: inference throughput of mdc-infer (ONNX Runtime through `ort`)
//! on a committed model, same data and batch size as the Python side in
//! run.sh. Prints one JSON line per model.
//!
//! ORT_DYLIB_PATH=runtime/onnxruntime/libonnxruntime.so \
//!   cargo bench -p mdc-infer --bench throughput -- ROWS BATCH MODEL…

// A benchmark aborts on any setup failure: it has no user to report to.
#![allow(clippy::expect_used)]

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let rows: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let batch: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let models: Vec<String> = args.iter().skip(2).cloned().collect();
    let lib = mdc_infer::locate(&mdc_infer::Search {
        env: std::env::var_os("ORT_DYLIB_PATH").map(Into::into),
        ..mdc_infer::Search::default()
    })
    .expect("ONNX Runtime (run scripts/setup and set ORT_DYLIB_PATH)");
    let rt = mdc_infer::init(&lib).expect("load ONNX Runtime");
    // The same synthetic features as run.sh: x[r][k] = ((r*31 + k*17) % 97) as f64 / 4 + k.
    let cols: Vec<Vec<f64>> = (0..8)
        .map(|k| {
            (0..rows)
                .map(|r| ((r * 31 + k * 17) % 97) as f64 / 4.0 + k as f64)
                .collect()
        })
        .collect();
    let features: Vec<String> = [
        "age",
        "sex_male",
        "heart_rate",
        "resp_rate",
        "temperature",
        "lactate",
        "wbc",
        "sbp",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for path in models {
        let bytes = std::fs::read(&path).expect("model");
        let mut m = mdc_infer::Model::load(&bytes, 0).expect("load");
        let plan = m.plan(&features, None, None).expect("plan");
        let _ = m.predict(
            &plan,
            &cols
                .iter()
                .map(|c| c[..batch.min(rows)].to_vec())
                .collect::<Vec<_>>(),
            batch,
        );
        let mut best = f64::INFINITY;
        let mut sum = 0.0;
        for _ in 0..3 {
            let t = Instant::now();
            let p = m.predict(&plan, &cols, batch).expect("predict");
            best = best.min(t.elapsed().as_secs_f64());
            sum = p.iter().sum::<f64>();
        }
        println!(
            "{{\"impl\":\"mdc-infer (ort {})\",\"model\":\"{path}\",\"rows\":{rows},\"batch\":{batch},\"best_s\":{best:.6},\"rows_per_s\":{:.0},\"checksum\":{sum:.6}}}",
            rt.version,
            rows as f64 / best
        );
    }
}
