//! Benchmark driver for structured de-identification (issue 4), used by
//! `benches/structured/run.sh`. It links only mdc-table and mdc-deid (not the
//! whole platform), so a release build takes a minute, not half an hour.
//!
//!   structured_bench synth DIR PERSONS VISITS MEAS_PER_VISIT
//!   structured_bench deid IN_DIR OUT_DIR POLICY.toml
//!   structured_bench risk FILE QI1,QI2,…

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Instant;

use mdc_deid::structured::synth::SynthConfig;
use mdc_deid::structured::Policy;
use mdc_deid::{KeyedPseudonymizer, PseudonymKey};
use mdc_table::structured::{risk_file, run_omop, write_synth, RiskArgs, RunOptions};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(String::as_str) {
        Some("synth") => {
            let cfg = SynthConfig {
                persons: a[3].parse().unwrap(),
                seed: 1,
                visits_per_person: a[4].parse().unwrap(),
                measurements_per_visit: a[5].parse().unwrap(),
                collect_planted: false,
            };
            let t = Instant::now();
            let (_, rows) = write_synth(&cfg, &PathBuf::from(&a[2]), true).unwrap();
            println!("synth {:.2} s {rows:?}", t.elapsed().as_secs_f64());
        }
        Some("deid") => {
            let p = KeyedPseudonymizer::new(PseudonymKey::from_bytes([42; 32]), 180);
            let text = std::fs::read_to_string(&a[4]).unwrap();
            let o = RunOptions {
                input: PathBuf::from(&a[2]),
                output: PathBuf::from(&a[3]),
                policy: Policy::parse(&text, &a[4]).unwrap(),
                pseudonymizer: &p,
                text: None,
                text_engine_name: String::new(),
                created_at: "bench".into(),
                mdc_version: env!("CARGO_PKG_VERSION").into(),
                reference_year: 2025,
                qi: vec![],
                sensitive: None,
                k: None,
                max_suppression: 0.05,
                threshold: 5,
            };
            let t = Instant::now();
            let out = run_omop(&o).unwrap();
            let secs = t.elapsed().as_secs_f64();
            for tb in &out.report.tables {
                println!("table {} rows {}", tb.name, tb.rows_out);
            }
            println!("deid_seconds {secs:.3}");
        }
        Some("risk") => {
            let t = Instant::now();
            let s = risk_file(&RiskArgs {
                input: PathBuf::from(&a[2]),
                qi: a[3].split(',').map(str::to_owned).collect(),
                sensitive: None,
                threshold: 5,
                population: None,
            })
            .unwrap();
            println!(
                "risk_seconds {:.3} records {} classes {} k {}",
                t.elapsed().as_secs_f64(),
                s.records,
                s.classes,
                s.k
            );
        }
        _ => eprintln!("usage: structured_bench synth|deid|risk …"),
    }
}
