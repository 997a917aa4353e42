//! Every number of the report against an independent computation
//! (scikit-learn, statsmodels, a NumPy DeLong) made offline by
//! benches/validate/make_fixtures.py on the committed fixtures in
//! data/validate/. Tolerance 1e-6, as issue 7 requires.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use mdc_validate::metrics::Interval;
use mdc_validate::{evaluate, Options, SubgroupSpec, SubgroupValues};
use serde_json::Value;

const TOL: f64 = 1e-6;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/validate")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(data_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// (labels, predictions per model) from predictions.csv.
fn predictions() -> (Vec<u8>, Vec<(String, Vec<f64>)>) {
    let text = std::fs::read_to_string(data_dir().join("predictions.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let mut y = Vec::new();
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); header.len() - 1];
    for line in lines {
        let mut it = line.split(',');
        y.push(it.next().unwrap().parse::<u8>().unwrap());
        for c in &mut cols {
            // Model outputs are float32: widen exactly as the CLI does.
            c.push(f64::from(it.next().unwrap().parse::<f32>().unwrap()));
        }
    }
    (y, header.into_iter().skip(1).zip(cols).collect())
}

/// The cohort's subgroup columns, as the CLI reads them.
fn cohort_subgroups() -> Vec<(SubgroupSpec, SubgroupValues)> {
    let text = std::fs::read_to_string(data_dir().join("cohort.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (ia, is, ir) = (col("age"), col("sex"), col("region"));
    let (mut age, mut sex, mut region) = (Vec::new(), Vec::new(), Vec::new());
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        age.push(f[ia].parse::<f64>().unwrap());
        sex.push(Some(f[is].to_owned()));
        region.push(Some(f[ir].to_owned()));
    }
    vec![
        (
            SubgroupSpec::parse("sex").unwrap(),
            SubgroupValues::Text(sex),
        ),
        (
            SubgroupSpec::parse("age:50,65,80").unwrap(),
            SubgroupValues::Numeric(age),
        ),
        (
            SubgroupSpec::parse("region").unwrap(),
            SubgroupValues::Text(region),
        ),
    ]
}

fn close(what: &str, got: Option<f64>, want: &Value) {
    match (got, want.as_f64()) {
        (Some(g), Some(w)) => assert!((g - w).abs() <= TOL, "{what}: got {g}, want {w}"),
        (None, None) => {}
        _ => panic!("{what}: got {got:?}, want {want}"),
    }
}

fn close_interval(what: &str, got: &Interval, want: &Value) {
    if want.is_null() {
        assert_eq!(got.estimate, None, "{what}");
        return;
    }
    close(&format!("{what}.estimate"), got.estimate, &want["estimate"]);
    close(&format!("{what}.ci_low"), got.ci_low, &want["ci_low"]);
    close(&format!("{what}.ci_high"), got.ci_high, &want["ci_high"]);
}

fn check_model(
    name: &str,
    p: &[f64],
    y: &[u8],
    e: &Value,
    subgroups: &[(SubgroupSpec, SubgroupValues)],
) {
    let opts = Options {
        threshold: e["threshold"].as_f64().unwrap(),
        ..Options::default()
    };
    let m = evaluate(p, y, subgroups, &opts).unwrap();
    assert_eq!(m.n, e["n"].as_u64().unwrap(), "{name} n");
    assert_eq!(
        m.positives,
        e["positives"].as_u64().unwrap(),
        "{name} positives"
    );
    for (k, v) in [("tp", m.tp), ("fp", m.fp), ("tn", m.tn), ("fn", m.fn_)] {
        assert_eq!(v, e[k].as_u64().unwrap(), "{name} {k}");
    }
    close_interval(&format!("{name} auroc"), &m.auroc.interval(), &e["auroc"]);
    close(
        &format!("{name} auroc variance"),
        m.auroc.variance,
        &e["auroc"]["variance"],
    );
    close(&format!("{name} auprc"), m.auprc, &e["auprc"]);
    close_interval(
        &format!("{name} sensitivity"),
        &m.sensitivity,
        &e["sensitivity"],
    );
    close_interval(
        &format!("{name} specificity"),
        &m.specificity,
        &e["specificity"],
    );
    close_interval(&format!("{name} ppv"), &m.ppv, &e["ppv"]);
    close_interval(&format!("{name} npv"), &m.npv, &e["npv"]);
    close(&format!("{name} brier"), Some(m.brier), &e["brier"]);
    close(
        &format!("{name} slope"),
        m.calibration_slope,
        &e["calibration_slope"],
    );
    close(
        &format!("{name} intercept"),
        m.calibration_intercept,
        &e["calibration_intercept"],
    );
    close(&format!("{name} ece"), Some(m.ece), &e["ece"]);
    let nb = e["net_benefit"].as_array().unwrap();
    assert_eq!(m.net_benefit.len(), nb.len());
    for (g, w) in m.net_benefit.iter().zip(nb) {
        close(
            &format!("{name} nb threshold"),
            Some(g.threshold),
            &w["threshold"],
        );
        close(
            &format!("{name} nb model @{}", g.threshold),
            Some(g.model),
            &w["model"],
        );
        close(
            &format!("{name} nb all @{}", g.threshold),
            Some(g.treat_all),
            &w["treat_all"],
        );
    }
    let subs = e["subgroups"].as_array().unwrap();
    assert_eq!(m.subgroups.len(), subs.len(), "{name} subgroup count");
    for w in subs {
        let wn = w["name"].as_str().unwrap();
        let g = m
            .subgroups
            .iter()
            .find(|g| g.name == wn)
            .unwrap_or_else(|| panic!("{name}: no subgroup {wn}"));
        assert_eq!(g.n, w["n"].as_u64(), "{name} {wn} n");
        assert_eq!(
            g.positives,
            w["positives"].as_u64(),
            "{name} {wn} positives"
        );
        let a = g.auroc.map(|a| a.interval()).unwrap_or(Interval::UNDEFINED);
        close_interval(&format!("{name} {wn} auroc"), &a, &w["auroc"]);
        close_interval(
            &format!("{name} {wn} sensitivity"),
            &g.sensitivity,
            &w["sensitivity"],
        );
        close_interval(
            &format!("{name} {wn} specificity"),
            &g.specificity,
            &w["specificity"],
        );
    }
}

#[test]
fn every_metric_matches_scikit_learn_statsmodels_and_numpy_delong_for_every_model() {
    let e = expected();
    let (y, models) = predictions();
    let subgroups = cohort_subgroups();
    assert_eq!(models.len(), 5);
    for (name, p) in &models {
        check_model(name, p, &y, &e["models"][name], &subgroups);
    }
}

#[test]
fn tied_scores_count_one_half_as_in_the_reference() {
    let e = expected();
    let (y, models) = predictions();
    // The reference rounded the float32 logreg output (widened) to one decimal.
    let p: Vec<f64> = models[0]
        .1
        .iter()
        .map(|v| (v * 10.0).round() / 10.0)
        .collect();
    check_model("tied", &p, &y, &e["tied_logreg_1dp"], &[]);
}

#[test]
fn a_seeded_bootstrap_is_bit_identical_on_rerun_and_differs_with_another_seed() {
    let (y, models) = predictions();
    let p = &models[0].1;
    let run = |seed| {
        let opts = Options {
            threshold: 0.2,
            bootstrap: 200,
            seed,
            ..Options::default()
        };
        serde_json::to_string(&evaluate(p, &y, &[], &opts).unwrap()).unwrap()
    };
    let a = run(42);
    assert_eq!(a, run(42));
    assert_ne!(a, run(43));
    let m: Value = serde_json::from_str(&a).unwrap();
    let b = &m["bootstrap"]["intervals"]["auroc"];
    let (lo, hi) = (
        b["ci_low"].as_f64().unwrap(),
        b["ci_high"].as_f64().unwrap(),
    );
    // The percentile interval brackets the estimate and is close to DeLong's.
    let est = m["auroc"]["estimate"].as_f64().unwrap();
    assert!(lo < est && est < hi, "{lo} {est} {hi}");
    assert!((lo - m["auroc"]["ci_low"].as_f64().unwrap()).abs() < 0.02);
}

#[test]
fn governed_mode_suppresses_subgroups_with_fewer_than_ten_events() {
    let y: Vec<u8> = (0..400).map(|i| u8::from(i % 10 == 0)).collect();
    let p: Vec<f64> = (0..400)
        .map(|i| {
            if i % 10 == 0 {
                0.6
            } else {
                0.1 + f64::from(i % 7) / 20.0
            }
        })
        .collect();
    // Group "a": 5 events; group "b": 35 events.
    let g: Vec<Option<String>> = (0..400)
        .map(|i| Some(if i < 50 { "a" } else { "b" }.to_owned()))
        .collect();
    let subs = [(
        SubgroupSpec::parse("site").unwrap(),
        SubgroupValues::Text(g),
    )];
    let governed = Options {
        threshold: 0.5,
        suppress_small_subgroups: true,
        ..Options::default()
    };
    let m = evaluate(&p, &y, &subs, &governed).unwrap();
    let a = m.subgroups.iter().find(|s| s.name == "site=a").unwrap();
    assert!(a.suppressed && a.n.is_none() && a.positives.is_none() && a.auroc.is_none());
    let b = m.subgroups.iter().find(|s| s.name == "site=b").unwrap();
    assert!(!b.suppressed && b.positives == Some(35));
    let local = Options {
        threshold: 0.5,
        ..Options::default()
    };
    let m = evaluate(&p, &y, &subs, &local).unwrap();
    let a = m.subgroups.iter().find(|s| s.name == "site=a").unwrap();
    assert!(!a.suppressed && a.small && a.positives == Some(5));
}

#[test]
fn the_html_report_is_self_contained_and_flags_what_the_submitter_must_add() {
    let (y, models) = predictions();
    let m = evaluate(
        &models[0].1,
        &y,
        &cohort_subgroups(),
        &Options {
            threshold: 0.2,
            ..Options::default()
        },
    )
    .unwrap();
    let r = mdc_validate::Report {
        report_format: 1,
        provenance: mdc_validate::Provenance::default(),
        metrics: m,
    };
    let html = mdc_validate::html::render(&r);
    for section in [
        "Data source and dates",
        "Participants",
        "Outcome",
        "Predictors",
        "Missing data",
        "Performance",
        "Subgroups",
        "Limitations",
    ] {
        assert!(html.contains(section), "missing section {section}");
    }
    assert!(html.contains("Submitter to add"));
    assert_eq!(html.matches("<svg").count(), 3, "ROC, calibration, forest");
    assert!(
        !html.contains("<script") && !html.contains("http://")
            || html.contains("http://www.w3.org/2000/svg")
    );
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
}
