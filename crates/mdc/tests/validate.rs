//! `mdc validate` through the real binary (issue 7): local and governed mode,
//! the numbers against the committed independent reference, and every kind of
//! bad input giving a clear error, exit 1 and no report.
//!
//! Needs runtime/onnxruntime/ from scripts/setup; fails (never skips) without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use mdc_table::arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use mdc_table::arrow_schema::{DataType, Field, Schema};
use serde_json::Value;

const FEATURES: &str = "age,sex_male,heart_rate,resp_rate,temperature,lactate,wbc,sbp";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data(p: &str) -> String {
    repo().join("data/validate").join(p).display().to_string()
}

fn ort_lib() -> PathBuf {
    let p = repo().join("runtime/onnxruntime/libonnxruntime.so");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup (it installs the pinned onnxruntime wheel's library)",
        p.display()
    );
    p
}

fn mdc(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mdc"));
    c.env("MDC_ROOT", root)
        .env("ORT_DYLIB_PATH", ort_lib())
        .env_remove("MDC_ONNXRUNTIME")
        .env_remove("MDC_TOKEN")
        .env_remove("MDC_DATABASE")
        .stdin(Stdio::null());
    c
}

fn run(root: &Path, args: &[&str]) -> Output {
    mdc(root).args(args).output().unwrap()
}

fn ok(root: &Path, args: &[&str]) -> String {
    let out = run(root, args);
    assert!(
        out.status.success(),
        "mdc {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(root: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&ok(root, &a)).unwrap()
}

/// Exit 1, one clear line on stderr containing `needle`, and no report.
fn refused(dir: &Path, args: &[&str], needle: &str) {
    let out_dir = dir.join("report");
    let mut a = args.to_vec();
    let o = out_dir.display().to_string();
    a.extend(["--output", &o]);
    let out = run(dir, &a);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "mdc {args:?}: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!out_dir.exists(), "a failed run left {}", out_dir.display());
}

fn local(dir: &Path, model: &str, extra: &[&str]) -> Value {
    let out = dir.join(format!("out-{model}"));
    let m = data(&format!("models/{model}.onnx"));
    let c = data("cohort.csv");
    let o = out.display().to_string();
    let mut args = vec![
        "validate",
        "--model",
        &m,
        "--data",
        &c,
        "--features",
        FEATURES,
        "--label",
        "sepsis",
        "--threshold",
        "0.2",
        "--output",
        &o,
    ];
    args.extend(extra);
    ok(dir, &args);
    assert!(out.join("report.html").exists());
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

fn close(what: &str, got: &Value, want: &Value) {
    let (g, w) = (got.as_f64().unwrap(), want.as_f64().unwrap());
    assert!((g - w).abs() <= 1e-6, "{what}: got {g}, want {w}");
}

#[test]
fn local_reports_match_the_reference_for_sklearn_xgboost_lightgbm_and_torch_layout_models() {
    let dir = tempfile::tempdir().unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(data("expected.json")).unwrap()).unwrap();
    for model in [
        "logreg",
        "random_forest",
        "xgboost",
        "lightgbm",
        "mlp_torch_layout",
    ] {
        let r = local(
            dir.path(),
            model,
            &[
                "--subgroup",
                "sex",
                "--subgroup",
                "age:50,65,80",
                "--subgroup",
                "region",
            ],
        );
        let e = &expected["models"][model];
        assert_eq!(r["n"], e["n"]);
        assert_eq!(r["positives"], e["positives"]);
        for k in ["tp", "fp", "tn", "fn"] {
            assert_eq!(r[k], e[k], "{model} {k}");
        }
        for k in ["auroc", "sensitivity", "specificity", "ppv", "npv"] {
            for f in ["estimate", "ci_low", "ci_high"] {
                close(&format!("{model} {k}.{f}"), &r[k][f], &e[k][f]);
            }
        }
        for k in [
            "auprc",
            "brier",
            "calibration_slope",
            "calibration_intercept",
            "ece",
        ] {
            close(&format!("{model} {k}"), &r[k], &e[k]);
        }
        for sub in e["subgroups"].as_array().unwrap() {
            let name = sub["name"].as_str().unwrap();
            let got = r["subgroups"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == name)
                .unwrap();
            assert_eq!(got["n"], sub["n"], "{model} {name}");
            close(
                &format!("{model} {name} auroc"),
                &got["auroc"]["estimate"],
                &sub["auroc"]["estimate"],
            );
        }
        let prov = &r["provenance"];
        assert_eq!(prov["mode"], "local");
        assert_eq!(prov["onnxruntime_version"], "1.22.1");
        assert_eq!(prov["model"]["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(prov["data"]["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(prov["data"]["rows_used"], 2000);
    }
}

#[test]
fn a_rerun_with_the_same_seed_is_bit_identical_but_for_the_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let strip = |mut v: Value| {
        v["provenance"]["created_at"] = Value::Null;
        serde_json::to_string(&v).unwrap()
    };
    let a = local(
        dir.path(),
        "xgboost",
        &["--bootstrap", "100", "--seed", "7", "--subgroup", "sex"],
    );
    let b = local(
        dir.path(),
        "xgboost",
        &["--bootstrap", "100", "--seed", "7", "--subgroup", "sex"],
    );
    assert_eq!(a["provenance"]["seed"], 7);
    assert_eq!(a["bootstrap"]["replicates"], 100);
    assert_eq!(strip(a), strip(b));
}

#[test]
fn a_model_card_carries_the_settings_and_the_report_text() {
    let dir = tempfile::tempdir().unwrap();
    let card = dir.path().join("card.toml");
    std::fs::write(
        &card,
        format!(
            "name = \"Sepsis EWS\"\nversion = \"2.1\"\nintended_use = \"Adult ward patients\"\n\
             [validate]\nfeatures = {:?}\nlabel = \"sepsis\"\nthreshold = 0.3\nsubgroups = [\"age:65\"]\n",
            FEATURES.split(',').collect::<Vec<_>>()
        ),
    )
    .unwrap();
    let out = dir.path().join("r");
    let (m, c, cd, o) = (
        data("models/logreg.onnx"),
        data("cohort.csv"),
        card.display().to_string(),
        out.display().to_string(),
    );
    let text = ok(
        dir.path(),
        &[
            "validate", "--model", &m, "--data", &c, "--card", &cd, "--output", &o,
        ],
    );
    assert!(text.contains("AUROC"), "{text}");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["threshold"], 0.3);
    assert_eq!(r["provenance"]["card"]["name"], "Sepsis EWS");
    let names: Vec<&str> = r["subgroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["age<65", "age>=65"]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Adult ward patients") && html.contains("Submitter to add"));
}

fn cohort_variant(dir: &Path, name: &str, edit: impl Fn(usize, &mut Vec<String>)) -> String {
    let text = std::fs::read_to_string(data("cohort.csv")).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let mut cells: Vec<String> = line.split(',').map(str::to_owned).collect();
        if i > 0 {
            edit(i, &mut cells);
        }
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    let p = dir.join(name);
    std::fs::write(&p, out).unwrap();
    p.display().to_string()
}

#[test]
fn bad_input_is_refused_before_any_work_with_exit_1_and_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = data("models/logreg.onnx");
    let c = data("cohort.csv");
    let base = |data: &str, features: &str| -> Vec<String> {
        [
            "validate",
            "--model",
            &m,
            "--data",
            data,
            "--features",
            features,
            "--label",
            "sepsis",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    let call = |v: Vec<String>, needle: &str| {
        let a: Vec<&str> = v.iter().map(String::as_str).collect();
        refused(d, &a, needle);
    };
    // The model's inputs do not match the features.
    call(base(&c, "age,sex_male,heart_rate"), "expects 8 features");
    // A feature that the cohort lacks.
    call(
        base(&c, &FEATURES.replace("wbc", "crp")),
        "no column \"crp\"",
    );
    // Labels that are not 0/1 (column 10 is sepsis).
    let bad = cohort_variant(d, "labels.csv", |i, c| {
        if i == 5 {
            c[10] = "2".into();
        }
    });
    call(base(&bad, FEATURES), "must hold 0 or 1");
    // One class only.
    let one = cohort_variant(d, "one.csv", |_, c| c[10] = "0".into());
    call(base(&one, FEATURES), "one class only");
    // NaNs: refused unless --drop-missing, never imputed.
    let nan = cohort_variant(d, "nan.csv", |i, c| {
        if i % 100 == 0 {
            c[5] = "NaN".into();
        }
    });
    call(base(&nan, FEATURES), "pass --drop-missing");
    // An unreadable ONNX file.
    let junk = d.join("junk.onnx");
    std::fs::write(&junk, b"PK\x03\x04 not a model").unwrap();
    let mut v = base(&c, FEATURES);
    v[2] = junk.display().to_string();
    call(v, "cannot load the model");
    // A text value in a numeric feature names the line, not the value.
    let txt = cohort_variant(d, "txt.csv", |i, c| {
        if i == 7 {
            c[0] = "MRN-12345".into();
        }
    });
    let out = run(
        d,
        &base(&txt, FEATURES)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 8") && !err.contains("MRN-12345"),
        "{err}"
    );
    // No ONNX Runtime: one line that says how to install it.
    let mut v = base(&c, FEATURES);
    v.extend([
        "--onnxruntime".into(),
        "/nonexistent/libonnxruntime.so".into(),
    ]);
    call(v, "scripts/setup");
    // --drop-missing: the rows are left out and counted.
    let out = d.join("dropped");
    let o = out.display().to_string();
    let mut v = base(&nan, FEATURES);
    v.extend(["--drop-missing".into(), "--output".into(), o]);
    ok(d, &v.iter().map(String::as_str).collect::<Vec<_>>());
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["provenance"]["data"]["rows_dropped_missing"], 20);
    assert_eq!(r["provenance"]["data"]["missing"]["temperature"], 20);
    assert_eq!(r["n"], 1980);
}

// ---- governed mode ---------------------------------------------------------

/// The committed cohort as a Parquet table with a pseudonym per patient; row
/// 3's pseudonym is `withdrawn`.
fn write_dataset(dir: &Path, withdrawn: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let text = std::fs::read_to_string(data("cohort.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let mut fields = vec![Field::new("person_pseudonym", DataType::Utf8, false)];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let pseud: Vec<String> = (0..rows.len())
        .map(|i| {
            if i == 3 {
                return withdrawn.to_owned();
            }
            let mut x = i as u64 * 2_654_435_761 + 12345;
            (0..16)
                .map(|_| {
                    let c = alphabet[(x % 32) as usize] as char;
                    x /= 32;
                    c
                })
                .collect()
        })
        .collect();
    let mut cols: Vec<Arc<dyn mdc_table::arrow_array::Array>> =
        vec![Arc::new(StringArray::from(pseud))];
    for (k, h) in header.iter().enumerate() {
        match *h {
            "sex" | "region" => {
                fields.push(Field::new(*h, DataType::Utf8, false));
                cols.push(Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r[k]),
                )));
            }
            "sepsis" | "age" => {
                fields.push(Field::new(*h, DataType::Int64, false));
                cols.push(Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|r| r[k].parse::<i64>().unwrap()),
                )));
            }
            _ => {
                fields.push(Field::new(*h, DataType::Float64, false));
                cols.push(Arc::new(Float64Array::from_iter_values(
                    rows.iter().map(|r| r[k].parse::<f64>().unwrap()),
                )));
            }
        }
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    mdc_table::write_parquet_atomic(&dir.join("cohort.parquet"), &[batch]).unwrap();
}

#[test]
fn governed_validation_authorises_drops_opt_outs_deletes_the_model_and_holds_a_pending_report() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let admin = json(&root, &["init"])["admin_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let tok = |user: &str, roles: &str| -> String {
        ok(
            &root,
            &["user", "add", user, "--roles", roles, "--token", &admin],
        );
        json(
            &root,
            &["token", "issue", "--user", user, "--token", &admin],
        )["secret"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let steward = tok("seo.steward", "steward");
    let kim = tok("kim.researcher", "researcher");
    let park = tok("park.researcher", "researcher");
    // The hospital withdraws one patient; the dataset holds that pseudonym.
    let w = json(
        &root,
        &[
            "consent",
            "withdraw",
            "--patient-id",
            "MRN-0003",
            "--token",
            &steward,
        ],
    );
    let withdrawn = w["pseudonym"].as_str().unwrap().to_owned();
    let ds = tmp.path().join("ds");
    write_dataset(&ds, &withdrawn);
    let dsp = ds.display().to_string();
    ok(
        &root,
        &[
            "dataset",
            "register",
            "--name",
            "sepsis",
            "--path",
            &dsp,
            "--use",
            "HMB",
            "--no-manifest",
            "--reason",
            "synthetic test cohort",
            "--token",
            &steward,
        ],
    );
    ok(
        &root,
        &[
            "project",
            "create",
            "--name",
            "ews-val",
            "--title",
            "EWS validation",
            "--purpose",
            "HMB",
            "--commercial",
            "no",
            "--institution",
            "SNUH",
            "--country",
            "KR",
            "--pi",
            "kim.researcher",
            "--token",
            &kim,
        ],
    );
    let today = chrono_today();
    ok(
        &root,
        &[
            "project",
            "irb",
            "--project",
            "ews-val",
            "--number",
            "IRB-1",
            "--institution",
            "SNUH IRB",
            "--approved",
            &today.0,
            "--expires",
            &today.1,
            "--scope",
            "validation",
            "--token",
            &kim,
        ],
    );
    ok(
        &root,
        &[
            "project",
            "approve",
            "--project",
            "ews-val",
            "--token",
            &steward,
        ],
    );
    ok(
        &root,
        &[
            "grant",
            "add",
            "--project",
            "ews-val",
            "--dataset",
            "sepsis@1",
            "--token",
            &steward,
        ],
    );

    let model = tmp.path().join("submitted.onnx");
    std::fs::copy(data("models/xgboost.onnx"), &model).unwrap();
    let mp = model.display().to_string();
    let args = |token: &str| -> Vec<String> {
        [
            "validate",
            "--model",
            &mp,
            "--data",
            "dataset:sepsis@1",
            "--project",
            "ews-val",
            "--features",
            FEATURES,
            "--label",
            "sepsis",
            "--threshold",
            "0.2",
            "--subgroup",
            "age:25",
            "--subgroup",
            "region",
            "--patient-column",
            "person_pseudonym",
            "--token",
            token,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };

    // Not a member: denied (and audited) before the model is touched.
    let out = run(&root, &sv(&args(&park)));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a member"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(model.exists());
    // No token: refused.
    let mut no_token = args(&kim);
    no_token.truncate(no_token.len() - 2);
    let out = run(&root, &sv(&no_token));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("researcher token"));
    // --output is refused: only a pending output may hold the report.
    let mut with_out = args(&kim);
    with_out.extend([
        "--output".into(),
        tmp.path().join("x").display().to_string(),
    ]);
    assert_eq!(run(&root, &sv(&with_out)).status.code(), Some(1));

    let submitted_sha = mdc_table::sha256_file(&model).unwrap();
    let mut a = args(&kim);
    a.push("--json".to_owned());
    let summary: Value = serde_json::from_str(&ok(&root, &sv(&a))).unwrap();
    assert!(
        !model.exists(),
        "the submitted model must be deleted after the run"
    );
    assert!(
        !root
            .join("runs")
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false),
        "no staged model left"
    );
    let out_dir = PathBuf::from(summary["output"].as_str().unwrap());
    assert!(out_dir.starts_with(root.join("outputs").join("ews-val")));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("output.json")).unwrap())
            .unwrap();
    assert_eq!(meta["status"], "pending");
    assert_eq!(r["provenance"]["mode"], "governed");
    assert_eq!(r["provenance"]["model"]["retained"], false);
    assert_eq!(r["provenance"]["data"]["excluded_by_consent"], 1);
    assert_eq!(r["n"], 1999);
    let model_sha = r["provenance"]["model"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(summary["model_sha256"], model_sha.as_str());
    assert_eq!(model_sha, submitted_sha);
    // Subgroups with fewer than 10 events are suppressed, the rest released.
    let subs = r["subgroups"].as_array().unwrap();
    assert!(
        subs.iter()
            .any(|s| s["suppressed"] == true && s["n"].is_null()),
        "{subs:?}"
    );
    for s in subs {
        assert!(
            s["suppressed"] == true || s["positives"].as_u64().unwrap() >= 10,
            "{s}"
        );
    }
    // The audit holds the access and the run with the model's digest.
    let log = json(&root, &["audit", "log", "--token", &admin]);
    let entries = log.as_array().unwrap();
    let run = entries
        .iter()
        .find(|e| e["action"] == "validate.run")
        .expect("validate.run audited");
    assert_eq!(run["params"]["model_sha256"], model_sha.as_str());
    assert_eq!(run["params"]["excluded_by_consent"], 1);
    assert_eq!(run["resource"], "dataset:sepsis@1");
    assert!(entries
        .iter()
        .any(|e| e["action"] == "data.access.aggregate"
            && e["actor"] == "kim.researcher"
            && e["outcome"] == "allowed"));
    assert!(entries
        .iter()
        .any(|e| e["actor"] == "park.researcher" && e["outcome"] == "denied"));
    ok(&root, &["audit", "verify", "--token", &admin]);
}

fn sv(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn chrono_today() -> (String, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let day = |d: i64| {
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = d + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let dd = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        format!("{:04}-{:02}-{:02}", if m <= 2 { y + 1 } else { y }, m, dd)
    };
    let today = now / 86400;
    (day(today - 30), day(today + 300))
}
