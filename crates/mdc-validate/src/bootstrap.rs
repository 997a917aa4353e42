//! Percentile bootstrap with a seeded generator, so that a rerun with the same
//! `--seed` is bit-identical (the report records the seed).
//!
//! The generator is SplitMix64 written out here rather than taken from a crate:
//! its output is fixed by this file, not by a dependency's version. Each
//! replicate draws n row indices with replacement (Lemire's unbiased
//! multiply-shift), turns them into per-row counts, and evaluates the metrics
//! as weighted sums over the already sorted predictions: O(n) per replicate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::{self, Sorted};

/// SplitMix64 (Steele, Lea & Flood 2014).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            let low = m as u64;
            if low >= n.wrapping_neg() % n {
                return (m >> 64) as u64;
            }
        }
    }
}

/// Percentile interval of one metric over the replicates where it is defined.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootInterval {
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Replicates in which the metric was defined.
    pub replicates: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    pub replicates: u32,
    pub seed: u64,
    pub method: String,
    /// Metric name → 95% percentile interval.
    pub intervals: BTreeMap<String, BootInterval>,
    /// Pointwise 95% band of the ROC curve: (fpr, tpr_low, tpr_high).
    #[serde(skip)]
    pub roc_band: Vec<(f64, f64, f64)>,
}

/// Linear-interpolation quantile of sorted values (NumPy's default).
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// The FPR grid of the ROC band.
pub fn band_grid() -> Vec<f64> {
    (0..=50).map(|k| f64::from(k) / 50.0).collect()
}

pub fn run(s: &Sorted, threshold: f64, replicates: u32, seed: u64) -> Bootstrap {
    let n = s.len();
    let mut rng = SplitMix64::new(seed);
    let mut counts = vec![0u32; n];
    let mut samples: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let grid = band_grid();
    let mut band: Vec<Vec<f64>> = vec![Vec::with_capacity(replicates as usize); grid.len()];
    for _ in 0..replicates {
        counts.fill(0);
        for _ in 0..n {
            counts[rng.below(n as u64) as usize] += 1;
        }
        let w = Some(counts.as_slice());
        let c = metrics::confusion(s, threshold, w);
        let values = [
            ("auroc", metrics::auroc(s, w)),
            ("auprc", metrics::auprc(s, w)),
            ("brier", Some(metrics::brier(s, w))),
            ("ece", Some(metrics::ece(s, w))),
            ("calibration_slope", metrics::calibration_slope(s, w)),
            (
                "calibration_intercept",
                metrics::calibration_intercept(s, w),
            ),
            ("sensitivity", c.sensitivity()),
            ("specificity", c.specificity()),
            ("ppv", c.ppv()),
            ("npv", c.npv()),
        ];
        for (name, v) in values {
            let entry = samples.entry(name).or_default();
            if let Some(v) = v {
                entry.push(v);
            }
        }
        let pts = metrics::roc_points(s, w);
        if pts.len() > 1 {
            for (g, f) in grid.iter().enumerate() {
                band[g].push(metrics::tpr_at(&pts, *f));
            }
        }
    }
    let intervals = samples
        .into_iter()
        .map(|(name, mut v)| {
            v.sort_unstable_by(f64::total_cmp);
            (
                name.to_owned(),
                BootInterval {
                    ci_low: quantile(&v, 0.025),
                    ci_high: quantile(&v, 0.975),
                    replicates: v.len() as u32,
                },
            )
        })
        .collect();
    let roc_band = grid
        .iter()
        .zip(band.iter_mut())
        .filter_map(|(f, v)| {
            v.sort_unstable_by(f64::total_cmp);
            Some((*f, quantile(v, 0.025)?, quantile(v, 0.975)?))
        })
        .collect();
    Bootstrap {
        replicates,
        seed,
        method: "percentile, n rows drawn with replacement, SplitMix64".into(),
        intervals,
        roc_band,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First outputs of SplitMix64 seeded with 1234567 (from the paper's C code).
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert_eq!(quantile(&v, 0.025), Some(1.075));
    }
}
