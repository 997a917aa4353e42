//! Paired comparisons of two models scored on the same cases (issue 8's
//! parity check): DeLong's test for the difference of two correlated AUROCs,
//! and Newcombe's interval for the difference of two paired proportions
//! (sensitivity or specificity of two models at one threshold).
//!
//! Why paired: the quantised model and its reference see the very same
//! patients, so their errors are correlated; treating them as independent
//! samples would make every interval far too wide to catch a drift.

use serde::{Deserialize, Serialize};

use crate::metrics::{wilson, Z};

/// AUROC of A and B on the same cases and the DeLong interval for A − B.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedAuroc {
    pub auroc_a: f64,
    pub auroc_b: f64,
    /// A − B.
    pub difference: f64,
    pub se: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// DeLong placements of one model: V10 per positive, V01 per negative.
fn placements(p: &[f64], y: &[u8]) -> (Vec<f64>, Vec<f64>) {
    let mut pos: Vec<f64> = p
        .iter()
        .zip(y)
        .filter(|(_, &l)| l == 1)
        .map(|(&v, _)| v)
        .collect();
    let mut neg: Vec<f64> = p
        .iter()
        .zip(y)
        .filter(|(_, &l)| l != 1)
        .map(|(&v, _)| v)
        .collect();
    pos.sort_by(f64::total_cmp);
    neg.sort_by(f64::total_cmp);
    let (m, n) = (pos.len() as f64, neg.len() as f64);
    let mut v10 = Vec::with_capacity(pos.len());
    let mut v01 = Vec::with_capacity(neg.len());
    // Keep the case order so A's and B's placements stay paired.
    for (&v, &l) in p.iter().zip(y) {
        if l == 1 {
            let below = neg.partition_point(|&x| x < v) as f64;
            let upto = neg.partition_point(|&x| x <= v) as f64;
            v10.push((below + 0.5 * (upto - below)) / n);
        } else {
            let upto = pos.partition_point(|&x| x <= v) as f64;
            let below = pos.partition_point(|&x| x < v) as f64;
            let above = m - upto;
            v01.push((above + 0.5 * (upto - below)) / m);
        }
    }
    (v10, v01)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn cov(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < 2 {
        return 0.0;
    }
    let (ma, mb) = (mean(a), mean(b));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / (a.len() - 1) as f64
}

/// DeLong, DeLong & Clarke-Pearson (1988) for two correlated AUROCs.
/// `None` when a class is missing or the inputs do not line up.
pub fn delong_paired(a: &[f64], b: &[f64], y: &[u8]) -> Option<PairedAuroc> {
    if a.len() != y.len() || b.len() != y.len() {
        return None;
    }
    let m: usize = y.iter().map(|&l| usize::from(l == 1)).sum();
    let n = y.len() - m;
    if m == 0 || n == 0 {
        return None;
    }
    let (a10, a01) = placements(a, y);
    let (b10, b01) = placements(b, y);
    let (auc_a, auc_b) = (mean(&a10), mean(&b10));
    let var = (cov(&a10, &a10) + cov(&b10, &b10) - 2.0 * cov(&a10, &b10)) / m as f64
        + (cov(&a01, &a01) + cov(&b01, &b01) - 2.0 * cov(&a01, &b01)) / n as f64;
    let se = var.max(0.0).sqrt();
    let d = auc_a - auc_b;
    Some(PairedAuroc {
        auroc_a: auc_a,
        auroc_b: auc_b,
        difference: d,
        se,
        ci_low: d - Z * se,
        ci_high: d + Z * se,
    })
}

/// Two paired proportions (A's and B's rate of `true` over the same cases)
/// and Newcombe's (1998, method 10) hybrid score interval for A − B.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedProportion {
    pub n: u64,
    pub a: f64,
    pub b: f64,
    /// A − B.
    pub difference: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Cases true for A only, and for B only.
    pub a_only: u64,
    pub b_only: u64,
}

/// `None` for no cases or unequal lengths.
pub fn paired_proportion_difference(a: &[bool], b: &[bool]) -> Option<PairedProportion> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let (mut both, mut a_only, mut b_only, mut neither) = (0u64, 0u64, 0u64, 0u64);
    for (&x, &z) in a.iter().zip(b) {
        match (x, z) {
            (true, true) => both += 1,
            (true, false) => a_only += 1,
            (false, true) => b_only += 1,
            (false, false) => neither += 1,
        }
    }
    let n = a.len() as u64;
    let nf = n as f64;
    let (xa, xb) = (both + a_only, both + b_only);
    let (pa, pb) = (xa as f64 / nf, xb as f64 / nf);
    let wa = wilson(xa, n);
    let wb = wilson(xb, n);
    let (la, ua) = (wa.ci_low.unwrap_or(0.0), wa.ci_high.unwrap_or(1.0));
    let (lb, ub) = (wb.ci_low.unwrap_or(0.0), wb.ci_high.unwrap_or(1.0));
    // The correlation of the 2×2 table, 0 when a margin is empty.
    let (e, f, g, h) = (both as f64, a_only as f64, b_only as f64, neither as f64);
    let denom = ((e + f) * (g + h) * (e + g) * (f + h)).sqrt();
    let phi = if denom > 0.0 {
        (e * h - f * g) / denom
    } else {
        0.0
    };
    let d = pa - pb;
    let dl = ((pa - la).powi(2) - 2.0 * phi * (pa - la) * (ub - pb) + (ub - pb).powi(2))
        .max(0.0)
        .sqrt();
    let du = ((ua - pa).powi(2) - 2.0 * phi * (ua - pa) * (pb - lb) + (pb - lb).powi(2))
        .max(0.0)
        .sqrt();
    Some(PairedProportion {
        n,
        a: pa,
        b: pb,
        difference: d,
        ci_low: (d - dl).max(-1.0),
        ci_high: (d + du).min(1.0),
        a_only,
        b_only,
    })
}

#[cfg(test)]
// Exact float equality is the point here: ties in DeLong's kernel, and a
// difference that must be exactly zero.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    /// DeLong's kernel by brute force over every positive–negative pair, an
    /// implementation independent of the sorted placements above.
    fn brute(a: &[f64], b: &[f64], y: &[u8]) -> (f64, f64, f64) {
        let psi = |x: f64, z: f64| {
            if x > z {
                1.0
            } else if x == z {
                0.5
            } else {
                0.0
            }
        };
        let pos: Vec<usize> = (0..y.len()).filter(|&i| y[i] == 1).collect();
        let neg: Vec<usize> = (0..y.len()).filter(|&i| y[i] == 0).collect();
        let (m, n) = (pos.len() as f64, neg.len() as f64);
        let comp = |p: &[f64]| {
            let v10: Vec<f64> = pos
                .iter()
                .map(|&i| neg.iter().map(|&j| psi(p[i], p[j])).sum::<f64>() / n)
                .collect();
            let v01: Vec<f64> = neg
                .iter()
                .map(|&j| pos.iter().map(|&i| psi(p[i], p[j])).sum::<f64>() / m)
                .collect();
            (v10, v01)
        };
        let (a10, a01) = comp(a);
        let (b10, b01) = comp(b);
        let s = |u: &[f64], v: &[f64]| {
            let (mu, mv) = (
                u.iter().sum::<f64>() / u.len() as f64,
                v.iter().sum::<f64>() / v.len() as f64,
            );
            u.iter()
                .zip(v)
                .map(|(x, z)| (x - mu) * (z - mv))
                .sum::<f64>()
                / (u.len() - 1) as f64
        };
        let var = (s(&a10, &a10) + s(&b10, &b10) - 2.0 * s(&a10, &b10)) / m
            + (s(&a01, &a01) + s(&b01, &b01) - 2.0 * s(&a01, &b01)) / n;
        let auc = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        (auc(&a10), auc(&b10), var)
    }

    fn cohort(seed: u64, n: usize) -> (Vec<f64>, Vec<f64>, Vec<u8>) {
        let mut s = seed;
        let mut u = || {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let label = u8::from(u() < 0.3);
            let signal = if label == 1 { 0.8 } else { 0.0 };
            let x = signal + u();
            a.push((x * 20.0).round() / 20.0); // ties on purpose
            b.push(x + 0.3 * u());
            y.push(label);
        }
        (a, b, y)
    }

    #[test]
    fn paired_delong_matches_a_brute_force_kernel() {
        for seed in [1, 2, 3] {
            let (a, b, y) = cohort(seed, 300);
            let r = delong_paired(&a, &b, &y).unwrap();
            let (aa, ab, var) = brute(&a, &b, &y);
            assert!((r.auroc_a - aa).abs() < 1e-12);
            assert!((r.auroc_b - ab).abs() < 1e-12);
            assert!(
                (r.se * r.se - var).abs() < 1e-12,
                "{} vs {var}",
                r.se * r.se
            );
        }
    }

    #[test]
    fn identical_models_have_zero_difference_and_zero_width() {
        let (a, _, y) = cohort(9, 200);
        let r = delong_paired(&a, &a, &y).unwrap();
        assert_eq!(r.difference, 0.0);
        assert!(r.se.abs() < 1e-12);
    }

    #[test]
    fn newcombe_interval_covers_the_true_difference_about_95_percent() {
        // Simulation: true P(A)=0.90, P(B)=0.85, correlated; the interval
        // should cover 0.05 in roughly 95% of 2000 replicates.
        let mut s = 12345u64;
        let mut u = || {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut covered = 0;
        let reps = 2000;
        for _ in 0..reps {
            let mut a = Vec::new();
            let mut b = Vec::new();
            for _ in 0..150 {
                let z = u();
                a.push(z < 0.90);
                b.push(z < 0.85);
            }
            let r = paired_proportion_difference(&a, &b).unwrap();
            if r.ci_low <= 0.05 && 0.05 <= r.ci_high {
                covered += 1;
            }
        }
        let rate = f64::from(covered) / f64::from(reps);
        assert!((0.92..=0.985).contains(&rate), "coverage {rate}");
    }

    #[test]
    fn newcombe_matches_hand_computation_on_a_small_table() {
        // 2×2: both 40, A only 5, B only 1, neither 4 (n = 50).
        let mut a = Vec::new();
        let mut b = Vec::new();
        for (x, z, k) in [
            (true, true, 40),
            (true, false, 5),
            (false, true, 1),
            (false, false, 4),
        ] {
            for _ in 0..k {
                a.push(x);
                b.push(z);
            }
        }
        let r = paired_proportion_difference(&a, &b).unwrap();
        assert!((r.difference - 0.08).abs() < 1e-12);
        // Independent arithmetic of the same published formula (Newcombe 1998, method 10):
        let w = |x: f64, n: f64| {
            let z = Z;
            let p = x / n;
            let c = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
            let h = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
            (c - h, c + h)
        };
        let (la, ua) = w(45.0, 50.0);
        let (lb, ub) = w(41.0, 50.0);
        let phi = (40.0 * 4.0 - 5.0 * 1.0) / (45.0f64 * 5.0 * 41.0 * 9.0).sqrt();
        let lo = 0.08
            - ((0.9 - la).powi(2) - 2.0 * phi * (0.9 - la) * (ub - 0.82) + (ub - 0.82).powi(2))
                .sqrt();
        let hi = 0.08
            + ((ua - 0.9).powi(2) - 2.0 * phi * (ua - 0.9) * (0.82 - lb) + (0.82 - lb).powi(2))
                .sqrt();
        assert!((r.ci_low - lo).abs() < 1e-12 && (r.ci_high - hi).abs() < 1e-12);
        assert!(r.ci_low < 0.08 && r.ci_high > 0.08);
    }
}
