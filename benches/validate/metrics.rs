//! Benchmark: the full metric set of a report for 1 M predictions (AUROC +
//! DeLong CI, AUPRC, Wilson intervals, Brier, calibration slope/intercept,
//! ECE, decision curve, threshold table, 4 subgroups) on one core.
//! Reads the predictions that benches/validate/run.sh wrote, so scikit-learn
//! and NumPy see exactly the same numbers. Prints one JSON line.
//!
//! cargo bench -p mdc-validate --bench metrics -- DIR

// A benchmark aborts on any setup failure: it has no user to report to.
#![allow(clippy::expect_used)]

use std::time::Instant;

use mdc_validate::{evaluate, Options, SubgroupSpec, SubgroupValues};

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "target/bench-validate".into());
    let dir = std::path::Path::new(&dir);
    let p: Vec<f64> = std::fs::read(dir.join("p.f64"))
        .expect("p.f64 (run benches/validate/run.sh)")
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    let y: Vec<u8> = std::fs::read(dir.join("y.u8")).expect("y.u8");
    let g: Vec<u8> = std::fs::read(dir.join("g.u8")).expect("g.u8");
    let groups = SubgroupValues::Text(g.iter().map(|v| Some(format!("g{v}"))).collect());
    let subs = vec![(SubgroupSpec::parse("group").expect("spec"), groups)];
    let opts = Options {
        threshold: 0.2,
        ..Options::default()
    };
    let mut times = Vec::new();
    let mut auc = 0.0;
    for _ in 0..5 {
        let t = Instant::now();
        let m = evaluate(&p, &y, &subs, &opts).expect("evaluate");
        times.push(t.elapsed().as_secs_f64());
        auc = m.auroc.estimate.unwrap_or(f64::NAN);
        assert_eq!(m.subgroups.len(), 4);
    }
    times.sort_by(f64::total_cmp);
    // Where the time goes (one run of each stage), on stderr.
    let t = Instant::now();
    let sorted = mdc_validate::metrics::Sorted::new(&p, &y);
    let t_sort = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _ = mdc_validate::metrics::auroc_delong(&sorted);
    let t_delong = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _ = mdc_validate::metrics::calibration_slope(&sorted, None);
    let _ = mdc_validate::metrics::calibration_intercept(&sorted, None);
    let t_cal = t.elapsed().as_secs_f64();
    eprintln!("stages: sort {t_sort:.3} s, DeLong {t_delong:.3} s, calibration slope+intercept {t_cal:.3} s");
    println!(
        "{{\"impl\":\"mdc-validate\",\"n\":{},\"median_s\":{:.6},\"min_s\":{:.6},\"auroc\":{auc:.12}}}",
        p.len(),
        times[2],
        times[0]
    );
}
