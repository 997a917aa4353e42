//! Latency statistics: an HDR histogram for the percentiles (no sampling
//! loss, 3 significant digits), and LoadGen's early-stopping estimate.
//!
//! The early-stopping rule (MLPerf Inference rules, "early stopping"
//! appendix; LoadGen `early_stopping.cc`) asks how many of the slowest queries
//! may be discarded while still being 99% confident that the true p-th
//! percentile is at most the reported one. With `t` queries over a latency
//! and `h` under it, the run supports the claim when
//! P[Binomial(h + t, 1 − p) ≤ t] ≤ 1 − c (c = 0.99, tolerance d = 0). For a
//! run of n queries, t is the largest count with `min_passing(t) + t ≤ n`, and
//! the estimate is the (n − t)-th smallest latency (0-based), exactly as
//! LoadGen indexes it.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// LoadGen's confidence for early stopping.
pub const CONFIDENCE: f64 = 0.99;

/// Nanosecond latencies, recorded without loss of count.
#[derive(Debug, Clone)]
pub struct Latencies {
    hist: Histogram<u64>,
    raw: Vec<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl Latencies {
    pub fn new() -> Latencies {
        // Auto-resizing, 3 significant digits: any latency from 1 ns up is
        // recorded with at most 0.1% error and no count lost.
        let mut hist = Histogram::new(3).unwrap_or_else(|_| unreachable_hist());
        hist.auto(true);
        Latencies {
            hist,
            raw: Vec::new(),
        }
    }

    pub fn record(&mut self, ns: u64) {
        let v = ns.max(1);
        // With auto-resize on, recording cannot fail; count it as the max if it did.
        if self.hist.record(v).is_err() {
            let _ = self.hist.record(self.hist.max());
        }
        self.raw.push(v);
    }

    pub fn merge(&mut self, other: &Latencies) {
        let _ = self.hist.add(&other.hist);
        self.raw.extend_from_slice(&other.raw);
    }

    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The q-quantile (0..=1) in nanoseconds from the histogram.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }

    pub fn max_ns(&self) -> u64 {
        self.hist.max()
    }

    pub fn mean_ns(&self) -> f64 {
        self.hist.mean()
    }

    /// The raw latencies, sorted (for the early-stopping estimate).
    pub fn sorted(&self) -> Vec<u64> {
        let mut v = self.raw.clone();
        v.sort_unstable();
        v
    }

    /// p50/p90/p95/p99/p99.9/max in milliseconds.
    pub fn summary(&self) -> LatencySummary {
        let ms = |ns: u64| ns as f64 / 1e6;
        LatencySummary {
            p50: ms(self.quantile_ns(0.50)),
            p90: ms(self.quantile_ns(0.90)),
            p95: ms(self.quantile_ns(0.95)),
            p99: ms(self.quantile_ns(0.99)),
            p999: ms(self.quantile_ns(0.999)),
            max: ms(self.max_ns()),
            mean: self.mean_ns() / 1e6,
        }
    }

    /// A compact shape of the distribution for plots: the CDF at up to
    /// `points` quantiles and a histogram over log-spaced bins.
    pub fn shape(&self, points: usize) -> Distribution {
        let mut cdf = Vec::new();
        if !self.is_empty() {
            for i in 0..=points {
                let q = i as f64 / points as f64;
                cdf.push((self.quantile_ns(q) as f64 / 1e6, q));
            }
        }
        let mut bins = Vec::new();
        if !self.is_empty() {
            let lo = (self.hist.min().max(1) as f64).ln();
            let hi = (self.max_ns().max(2) as f64).ln();
            let n = 40usize;
            let width = ((hi - lo) / n as f64).max(1e-9);
            let mut counts = vec![0u64; n];
            for v in self.hist.iter_recorded() {
                let x = (v.value_iterated_to().max(1) as f64).ln();
                let k = (((x - lo) / width) as usize).min(n - 1);
                counts[k] += v.count_at_value();
            }
            for (k, c) in counts.into_iter().enumerate() {
                bins.push(((lo + width * k as f64).exp() / 1e6, c));
            }
        }
        Distribution { cdf, bins }
    }
}

fn unreachable_hist() -> Histogram<u64> {
    // 3 significant digits is always a valid precision; this path is never taken.
    Histogram::new_with_bounds(1, u64::MAX / 2, 3).unwrap_or_else(|_| std::process::abort())
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// CDF points (ms, quantile) and histogram bins (lower edge ms, count).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Distribution {
    pub cdf: Vec<(f64, f64)>,
    pub bins: Vec<(f64, u64)>,
}

/// ln C(n, k) by summing logs (exact enough for the sums below).
fn ln_choose_table(n: u64) -> Vec<f64> {
    // ln k! for k = 0..=n
    let mut t = Vec::with_capacity(n as usize + 1);
    t.push(0.0);
    let mut acc = 0.0;
    for k in 1..=n {
        acc += (k as f64).ln();
        t.push(acc);
    }
    t
}

/// P[at most t of h + t queries are over the latency] when each is under it
/// with probability `p` (LoadGen's `odds` with tolerance 0): the binomial
/// CDF Σ_{x=0..t} C(h+t, x) p^(h+t−x) (1−p)^x.
pub fn odds(h: u64, t: u64, p: f64) -> f64 {
    let n = h + t;
    let lf = ln_choose_table(n);
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut s = 0.0;
    for x in 0..=t {
        let ln_term = lf[n as usize] - lf[x as usize] - lf[(n - x) as usize]
            + (n - x) as f64 * lp
            + x as f64 * lq;
        s += ln_term.exp();
    }
    s
}

/// The minimum number of under-latency queries `h` such that, with `t` over
/// it, `odds(h, t, p) ≤ 1 − c` (LoadGen's `MinPassingQueriesFinder`).
pub fn min_passing(t: u64, p: f64, c: f64) -> u64 {
    // odds falls as h grows; find an upper bracket, then bisect.
    let mut hi = ((t + 1) as f64 * p / (1.0 - p)).ceil() as u64 + 16;
    while odds(hi, t, p) > 1.0 - c {
        hi *= 2;
    }
    let mut lo = 0u64;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if odds(mid, t, p) <= 1.0 - c {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// LoadGen's early-stopping estimate of the `p` percentile from `sorted`
/// latencies (ascending): `Err(needed)` when there are too few queries.
pub fn early_stopping(sorted: &[u64], p: f64) -> Result<EarlyStop, u64> {
    let n = sorted.len() as u64;
    let h_min = min_passing(1, p, CONFIDENCE);
    if n < h_min + 1 {
        return Err(h_min + 1);
    }
    // The largest t with min_passing(t) + t <= n; min_passing(t) + t grows with t.
    let (mut lo, mut hi) = (1u64, n);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if min_passing(mid, p, CONFIDENCE) + mid <= n {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let t = lo;
    let idx = (n - t) as usize;
    Ok(EarlyStop {
        percentile: p,
        estimate_ns: sorted[idx.min(sorted.len() - 1)],
        discarded: t - 1,
        min_queries: h_min + 1,
    })
}

/// Server-scenario early stopping: with `over` queries over the bound out of
/// `n`, is the run long enough to claim the percentile meets it?
pub fn server_early_stopping_ok(n: u64, over: u64, p: f64) -> Result<(), u64> {
    let h = min_passing(over, p, CONFIDENCE);
    if n >= h + over {
        Ok(())
    } else {
        Err(h + over - n)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct EarlyStop {
    pub percentile: f64,
    pub estimate_ns: u64,
    /// How many of the highest latencies the estimate discards.
    pub discarded: u64,
    /// Queries needed for any estimate at this percentile.
    pub min_queries: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_a_sorted_array_within_hdr_precision() {
        let mut l = Latencies::new();
        let mut rng = mdc_infer::generic::Seeded::new(3);
        for _ in 0..20_000 {
            // Log-normal-ish latencies from 50 µs to tens of ms.
            l.record((50_000.0 * (2.0 * rng.normal()).exp()) as u64);
        }
        let s = l.sorted();
        for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
            // Nearest-rank reference.
            let rank = ((q * s.len() as f64).ceil() as usize).max(1) - 1;
            let want = s[rank] as f64;
            let got = l.quantile_ns(q) as f64;
            assert!(
                (got - want).abs() / want <= 0.002,
                "q={q}: hdr {got} vs sorted {want}"
            );
        }
        let m = *s.last().unwrap() as f64;
        assert!((l.max_ns() as f64 - m).abs() / m <= 0.001);
        assert_eq!(l.len(), 20_000);
    }
}
