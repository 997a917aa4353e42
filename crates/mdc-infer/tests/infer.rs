//! Real ONNX Runtime on the committed models (data/validate/models/): the
//! exports of scikit-learn (ONNX-ML Scaler/LinearClassifier,
//! TreeEnsembleClassifier), XGBoost and LightGBM (onnxmltools), and a plain
//! ONNX MLP laid out as torch.onnx.export writes it. Predictions must equal
//! ONNX Runtime's from Python (predictions.csv) exactly.
//!
//! Needs runtime/onnxruntime/ from scripts/setup; fails (never skips) without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use mdc_infer::{InferError, Model, Search};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn runtime() {
    let dir = repo().join("runtime/onnxruntime");
    let lib = mdc_infer::locate(&Search {
        flag: Some(dir.clone()),
        ..Search::default()
    })
    .unwrap_or_else(|e| panic!("{e}\n(the tests need {}: run scripts/setup)", dir.display()));
    mdc_infer::init(&lib).unwrap();
}

const FEATURES: [&str; 8] = [
    "age",
    "sex_male",
    "heart_rate",
    "resp_rate",
    "temperature",
    "lactate",
    "wbc",
    "sbp",
];

fn cohort() -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(repo().join("data/validate/cohort.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let idx: Vec<usize> = FEATURES
        .iter()
        .map(|f| header.iter().position(|h| h == f).unwrap())
        .collect();
    let mut cols = vec![Vec::new(); FEATURES.len()];
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        for (c, &i) in cols.iter_mut().zip(&idx) {
            c.push(cells[i].parse::<f64>().unwrap());
        }
    }
    cols
}

fn python_predictions(model: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(repo().join("data/validate/predictions.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let k = header.iter().position(|h| *h == model).unwrap();
    lines
        .map(|l| f64::from(l.split(',').nth(k).unwrap().parse::<f32>().unwrap()))
        .collect()
}

fn features() -> Vec<String> {
    FEATURES.iter().map(|s| (*s).to_owned()).collect()
}

fn load(name: &str) -> Model {
    let bytes = std::fs::read(repo().join(format!("data/validate/models/{name}.onnx"))).unwrap();
    Model::load(&bytes, 1).unwrap()
}

#[test]
fn sklearn_xgboost_lightgbm_and_torch_layout_exports_match_python_onnxruntime_exactly() {
    runtime();
    let cols = cohort();
    for name in [
        "logreg",
        "random_forest",
        "xgboost",
        "lightgbm",
        "mlp_torch_layout",
    ] {
        let mut m = load(name);
        let plan = m.plan(&features(), None, None).unwrap();
        for batch in [1, 333, 4096] {
            let p = m.predict(&plan, &cols, batch).unwrap();
            let want = python_predictions(name);
            assert_eq!(p.len(), want.len());
            let worst = p
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(worst <= 1e-6, "{name} batch {batch}: max |Δp| {worst}");
        }
    }
}

#[test]
fn per_feature_inputs_are_matched_by_name_in_any_order() {
    runtime();
    let cols = cohort();
    let mut m = load("logreg_named_inputs");
    // Reverse the feature order: inputs are matched by name, not position.
    let mut f = features();
    f.reverse();
    let rev: Vec<Vec<f64>> = cols.iter().rev().cloned().collect();
    let plan = m.plan(&f, None, None).unwrap();
    let p = m.predict(&plan, &rev, 512).unwrap();
    let want = python_predictions("logreg");
    assert!(p.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-6));
}

#[test]
fn mismatched_features_are_refused_before_any_inference() {
    runtime();
    let m = load("logreg");
    let e = m
        .plan(&features()[..3], None, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("expects 8 features") && e.contains("names 3"),
        "{e}"
    );
    let m = load("logreg_named_inputs");
    let mut f = features();
    f[0] = "age_years".into();
    let e = m.plan(&f, None, None).unwrap_err().to_string();
    assert!(e.contains("input age is not among --features"), "{e}");
    let m = load("logreg");
    let e = m
        .plan(&features(), Some("nope"), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no output nope"), "{e}");
    let e = m.plan(&features(), None, Some(2)).unwrap_err().to_string();
    assert!(e.contains("out of range"), "{e}");
}

#[test]
fn a_zipmap_output_gets_a_clear_error_naming_the_fix() {
    runtime();
    let m = load("logreg_zipmap");
    let e = m.plan(&features(), None, None).unwrap_err().to_string();
    assert!(e.contains("zipmap=False"), "{e}");
}

#[test]
fn unreadable_onnx_is_a_clear_error() {
    runtime();
    let e = Model::load(b"this is not an onnx model", 1).unwrap_err();
    assert!(matches!(e, InferError::Model(_)), "{e}");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn a_missing_library_names_the_set_up_step() {
    let e = mdc_infer::locate(&Search {
        env: Some(PathBuf::from("/nonexistent/libonnxruntime.so")),
        ..Search::default()
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("scripts/setup") && e.contains("MDC_ONNXRUNTIME/ORT_DYLIB_PATH"),
        "{e}"
    );
    assert!(!e.contains('\n'));
    let e = mdc_infer::locate(&Search {
        exe: Some(PathBuf::from("/nonexistent/bin/mdc")),
        ..Search::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("looked in /nonexistent/bin/onnxruntime"), "{e}");
}
