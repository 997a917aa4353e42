//! The stored and printed result of one run (`--json` shape of issue 8).

use serde::{Deserialize, Serialize};

use crate::harness::Outcome;
use crate::stats::{Distribution, LatencySummary};
use crate::system::{Energy, SystemInfo};

/// What every result says about its standing.
pub const METHOD_NOTE: &str =
    "measured with the method of MLPerf Inference LoadGen; not an MLPerf result (unaudited, not submitted)";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EarlyStopping {
    pub percentile: f64,
    pub estimate_ms: f64,
    pub discarded_queries: u64,
    pub min_queries: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchResult {
    /// Catalog id (empty until stored).
    #[serde(default)]
    pub id: String,
    pub scenario: String,
    pub valid: bool,
    pub invalid_reason: Option<String>,
    pub queries: u64,
    pub samples: u64,
    pub samples_per_second: f64,
    pub latency_ms: LatencySummary,
    pub early_stopping: Option<EarlyStopping>,
    pub target_qps: Option<f64>,
    pub scheduled_qps: Option<f64>,
    pub achieved_qps: Option<f64>,
    pub latency_bound_ms: Option<f64>,
    pub generator_max_lag_us: Option<f64>,
    pub duration_s: f64,
    pub short_of_mlperf_minimums: bool,
    /// `onnxruntime` or `kserve`.
    pub sut: String,
    pub model: String,
    pub backend: String,
    pub batch: usize,
    pub threads: usize,
    pub workers: usize,
    pub system: SystemInfo,
    pub energy: Energy,
    pub distribution: Distribution,
    pub notes: Vec<String>,
    pub method: String,
    #[serde(default)]
    pub created_at: String,
}

/// How the run was set up, besides the outcome.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub sut: String,
    pub model: String,
    pub backend: String,
    pub batch: usize,
    pub threads: usize,
    pub workers: usize,
    pub system: SystemInfo,
}

impl BenchResult {
    pub fn new(o: Outcome, info: RunInfo) -> BenchResult {
        BenchResult {
            id: String::new(),
            scenario: o.scenario.as_str().to_owned(),
            valid: o.valid,
            invalid_reason: o.invalid_reason,
            queries: o.queries,
            samples: o.samples,
            samples_per_second: o.samples_per_second,
            latency_ms: o.latencies.summary(),
            early_stopping: o.early_stop.map(|e| EarlyStopping {
                percentile: e.percentile,
                estimate_ms: e.estimate_ns as f64 / 1e6,
                discarded_queries: e.discarded,
                min_queries: e.min_queries,
            }),
            target_qps: o.target_qps,
            scheduled_qps: o.scheduled_qps,
            achieved_qps: o.achieved_qps,
            latency_bound_ms: o.latency_bound_ms,
            generator_max_lag_us: o.generator_max_lag_us,
            duration_s: o.elapsed.as_secs_f64(),
            short_of_mlperf_minimums: o.short_of_mlperf_minimums,
            sut: info.sut,
            model: info.model,
            backend: info.backend,
            batch: info.batch,
            threads: info.threads,
            workers: info.workers,
            system: info.system,
            energy: o.energy,
            distribution: o.latencies.shape(50),
            notes: o.notes,
            method: METHOD_NOTE.into(),
            created_at: String::new(),
        }
    }

    /// The headline figure of the scenario, as text.
    pub fn headline(&self) -> String {
        match self.scenario.as_str() {
            "single-stream" => match &self.early_stopping {
                Some(e) => format!(
                    "p90 {:.3} ms (early-stopping estimate {:.3} ms)",
                    self.latency_ms.p90, e.estimate_ms
                ),
                None => format!("p90 {:.3} ms", self.latency_ms.p90),
            },
            "multi-stream" => match &self.early_stopping {
                Some(e) => format!(
                    "p99 {:.3} ms per query (early-stopping estimate {:.3} ms)",
                    self.latency_ms.p99, e.estimate_ms
                ),
                None => format!("p99 {:.3} ms per query", self.latency_ms.p99),
            },
            "server" => format!(
                "{:.1} queries/s achieved at target {:.1}, p99 {:.3} ms (bound {:.1} ms)",
                self.achieved_qps.unwrap_or(0.0),
                self.target_qps.unwrap_or(0.0),
                self.latency_ms.p99,
                self.latency_bound_ms.unwrap_or(0.0)
            ),
            _ => format!("{:.1} samples/s", self.samples_per_second),
        }
    }
}
