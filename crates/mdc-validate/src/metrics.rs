//! The statistics of a validation report, each defined exactly as issue 7
//! states, so that independent implementations (scikit-learn, statsmodels, a
//! NumPy DeLong) agree to 1e-6.
//!
//! Everything works on one [`Sorted`] view of the predictions (sorted once,
//! ascending), and every metric that the bootstrap needs takes optional
//! per-row weights (resampling counts) aligned with that view. A bootstrap
//! replicate is then O(n) with no re-sorting, and the point estimate is the
//! same code with no weights: the two can never drift apart.

use serde::{Deserialize, Serialize};

/// The normal quantile the issue fixes for every 95% interval.
pub const Z: f64 = 1.959_964;

/// Predictions clipped this far from 0 and 1 before taking the logit.
const LOGIT_EPS: f64 = 1e-12;

/// An estimate with its 95% interval; `None` when undefined (e.g. no positives).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub estimate: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

impl Interval {
    pub const UNDEFINED: Interval = Interval {
        estimate: None,
        ci_low: None,
        ci_high: None,
    };
}

/// Wilson score interval for `x` successes out of `n`.
pub fn wilson(x: u64, n: u64) -> Interval {
    if n == 0 {
        return Interval::UNDEFINED;
    }
    let n = n as f64;
    let ph = x as f64 / n;
    let z2 = Z * Z;
    let denom = 1.0 + z2 / n;
    let centre = (ph + z2 / (2.0 * n)) / denom;
    let half = Z / denom * (ph * (1.0 - ph) / n + z2 / (4.0 * n * n)).sqrt();
    Interval {
        estimate: Some(ph),
        ci_low: Some((centre - half).max(0.0)),
        ci_high: Some((centre + half).min(1.0)),
    }
}

/// Predictions and 0/1 labels sorted by prediction, ascending, with the
/// logits that calibration needs precomputed.
#[derive(Debug, Clone)]
pub struct Sorted {
    pub p: Vec<f64>,
    pub y: Vec<u8>,
    /// Runs of equal predictions (start, end, logit of the value), built on
    /// first use: calibration and every bootstrap replicate walk these.
    runs: std::sync::OnceLock<Vec<(u32, u32, f64)>>,
    /// Original row index of each sorted entry.
    pub order: Vec<u32>,
    /// Positives among the first k sorted entries, k = 0..=n: unweighted
    /// confusion counts at any threshold in O(log n).
    cum_pos: Vec<u32>,
}

impl Sorted {
    /// `p` must be finite and `y` in {0, 1}; [`crate::check_inputs`] says so first.
    pub fn new(p: &[f64], y: &[u8]) -> Sorted {
        // Probabilities are ≥ 0 (−0.0 normalised to +0.0), so their IEEE bit
        // patterns sort like the values: one stable radix sort of the bits,
        // ties kept in row order.
        let mut keys: Vec<(u64, u32)> = p
            .iter()
            .enumerate()
            .map(|(i, &v)| ((v + 0.0).to_bits(), i as u32))
            .collect();
        radix_sort(&mut keys);
        let order: Vec<u32> = keys.iter().map(|&(_, i)| i).collect();
        let sp: Vec<f64> = keys.iter().map(|&(b, _)| f64::from_bits(b)).collect();
        let sy: Vec<u8> = order.iter().map(|&i| y[i as usize]).collect();
        let cum_pos = cumulative(&sy);
        Sorted {
            p: sp,
            y: sy,
            runs: std::sync::OnceLock::new(),
            order,
            cum_pos,
        }
    }

    /// Runs of equal predictions with the logit of each (see `runs`).
    fn runs(&self) -> &[(u32, u32, f64)] {
        self.runs.get_or_init(|| {
            let mut out = Vec::new();
            let mut i = 0;
            while i < self.len() {
                let e = self.tie_end(i);
                out.push((i as u32, e as u32, logit(self.p[i])));
                i = e;
            }
            out
        })
    }

    pub fn len(&self) -> usize {
        self.p.len()
    }

    pub fn is_empty(&self) -> bool {
        self.p.is_empty()
    }

    /// Splits into `n` subsets in one pass: `group[row]` (by original row
    /// index) names each row's subset; rows with a group ≥ `n` go nowhere.
    pub fn partition(&self, group: &[u32], n: usize) -> Vec<Sorted> {
        let mut counts = vec![0usize; n];
        for &g in group {
            if let Some(c) = counts.get_mut(g as usize) {
                *c += 1;
            }
        }
        let mut out: Vec<Sorted> = counts
            .iter()
            .map(|&c| Sorted {
                p: Vec::with_capacity(c),
                y: Vec::with_capacity(c),
                runs: std::sync::OnceLock::new(),
                order: Vec::with_capacity(c),
                cum_pos: Vec::new(),
            })
            .collect();
        for k in 0..self.len() {
            let row = self.order[k];
            if let Some(o) = group
                .get(row as usize)
                .and_then(|&g| out.get_mut(g as usize))
            {
                o.p.push(self.p[k]);
                o.y.push(self.y[k]);
                o.order.push(row);
            }
        }
        for o in &mut out {
            o.cum_pos = cumulative(&o.y);
        }
        out
    }

    /// End (exclusive) of the run of equal predictions starting at `i`.
    #[allow(clippy::float_cmp)] // a tie is exact equality, by definition
    fn tie_end(&self, i: usize) -> usize {
        let mut e = i + 1;
        while e < self.p.len() && self.p[e] == self.p[i] {
            e += 1;
        }
        e
    }
}

fn cumulative(y: &[u8]) -> Vec<u32> {
    let mut c = Vec::with_capacity(y.len() + 1);
    let mut acc = 0u32;
    c.push(0);
    for &v in y {
        acc += u32::from(v);
        c.push(acc);
    }
    c
}

/// Stable LSD radix sort by the `u64` key, 11 bits a pass; passes in which
/// every key has the same digit are skipped.
fn radix_sort(keys: &mut Vec<(u64, u32)>) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    let n = keys.len();
    if n < 256 {
        keys.sort_unstable();
        return;
    }
    let passes = 64u32.div_ceil(BITS) as usize;
    let mut counts = vec![vec![0usize; BUCKETS]; passes];
    for &(k, _) in keys.iter() {
        for (d, c) in counts.iter_mut().enumerate() {
            c[((k >> (d as u32 * BITS)) as usize) & (BUCKETS - 1)] += 1;
        }
    }
    let mut buf = vec![(0u64, 0u32); n];
    for (d, c) in counts.iter_mut().enumerate() {
        if c.contains(&n) {
            continue;
        }
        let mut sum = 0;
        for v in c.iter_mut() {
            let t = *v;
            *v = sum;
            sum += t;
        }
        let shift = d as u32 * BITS;
        for &e in keys.iter() {
            let b = ((e.0 >> shift) as usize) & (BUCKETS - 1);
            buf[c[b]] = e;
            c[b] += 1;
        }
        std::mem::swap(keys, &mut buf);
    }
}

fn logit(p: f64) -> f64 {
    let q = p.clamp(LOGIT_EPS, 1.0 - LOGIT_EPS);
    (q / (1.0 - q)).ln()
}

#[inline]
fn wt(w: Option<&[u32]>, i: usize) -> f64 {
    w.map_or(1.0, |w| f64::from(w[i]))
}

/// Weighted totals of positives and negatives.
pub fn class_totals(s: &Sorted, w: Option<&[u32]>) -> (f64, f64) {
    if w.is_none() {
        let pos = f64::from(s.cum_pos[s.len()]);
        return (pos, s.len() as f64 - pos);
    }
    let mut pos = 0.0;
    let mut neg = 0.0;
    for i in 0..s.len() {
        if s.y[i] == 1 {
            pos += wt(w, i);
        } else {
            neg += wt(w, i);
        }
    }
    (pos, neg)
}

/// AUROC with ties counted ½ (the Mann–Whitney statistic); `None` with one class.
pub fn auroc(s: &Sorted, w: Option<&[u32]>) -> Option<f64> {
    let mut neg_below = 0.0;
    let mut sum = 0.0;
    let (mut pos_total, mut neg_total) = (0.0, 0.0);
    let mut i = 0;
    while i < s.len() {
        let e = s.tie_end(i);
        let (mut gp, mut gn) = (0.0, 0.0);
        for k in i..e {
            if s.y[k] == 1 {
                gp += wt(w, k);
            } else {
                gn += wt(w, k);
            }
        }
        sum += gp * (neg_below + 0.5 * gn);
        neg_below += gn;
        pos_total += gp;
        neg_total += gn;
        i = e;
    }
    (pos_total > 0.0 && neg_total > 0.0).then(|| sum / (pos_total * neg_total))
}

/// AUROC with its DeLong variance and Wald interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Auroc {
    pub estimate: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// DeLong: var(V10)/m + var(V01)/n, sample variances (ddof 1).
    pub variance: Option<f64>,
}

impl Auroc {
    pub fn interval(&self) -> Interval {
        Interval {
            estimate: self.estimate,
            ci_low: self.ci_low,
            ci_high: self.ci_high,
        }
    }
}

/// Running mean and sum of squared deviations (Welford), for ddof-1 variances.
#[derive(Default)]
struct Welford {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Welford {
    /// Adds `c` copies of `x` (Chan et al.'s merge of a constant block).
    fn push_n(&mut self, x: f64, c: f64) {
        if c <= 0.0 {
            return;
        }
        let n = self.n + c;
        let d = x - self.mean;
        self.mean += d * c / n;
        self.m2 += d * d * self.n * c / n;
        self.n = n;
    }
    fn var(&self) -> f64 {
        if self.n > 1.0 {
            self.m2 / (self.n - 1.0)
        } else {
            0.0
        }
    }
}

/// DeLong's structural components from one pass over the sorted predictions:
/// V10 of a positive = (negatives below + ½ tied negatives) / n, V01 of a
/// negative = (positives above + ½ tied positives) / m.
pub fn auroc_delong(s: &Sorted) -> Auroc {
    let (m, n) = class_totals(s, None);
    if m == 0.0 || n == 0.0 {
        return Auroc {
            estimate: None,
            ci_low: None,
            ci_high: None,
            variance: None,
        };
    }
    let mut v10 = Welford::default();
    let mut v01 = Welford::default();
    let (mut neg_below, mut pos_below) = (0.0, 0.0);
    let mut i = 0;
    while i < s.len() {
        let e = s.tie_end(i);
        let gp = f64::from(s.cum_pos[e] - s.cum_pos[i]);
        let gn = (e - i) as f64 - gp;
        let pv = (neg_below + 0.5 * gn) / n;
        let nv = ((m - pos_below - gp) + 0.5 * gp) / m;
        v10.push_n(pv, gp);
        v01.push_n(nv, gn);
        neg_below += gn;
        pos_below += gp;
        i = e;
    }
    let auc = v10.mean;
    let var = v10.var() / m + v01.var() / n;
    let se = var.sqrt();
    Auroc {
        estimate: Some(auc),
        ci_low: Some((auc - Z * se).max(0.0)),
        ci_high: Some((auc + Z * se).min(1.0)),
        variance: Some(var),
    }
}

/// Average precision as scikit-learn's `average_precision_score` defines it:
/// Σ (R_k − R_{k−1}) P_k over distinct thresholds, descending.
pub fn auprc(s: &Sorted, w: Option<&[u32]>) -> Option<f64> {
    let (pos_total, _) = class_totals(s, w);
    if pos_total == 0.0 {
        return None;
    }
    let (mut tp, mut fp, mut ap, mut prev_recall) = (0.0, 0.0, 0.0, 0.0);
    let mut e = s.len();
    while e > 0 {
        // The tie group ending at e (exclusive), walking down.
        let mut i = e - 1;
        #[allow(clippy::float_cmp)] // ties are exact equality
        while i > 0 && s.p[i - 1] == s.p[e - 1] {
            i -= 1;
        }
        for k in i..e {
            if s.y[k] == 1 {
                tp += wt(w, k);
            } else {
                fp += wt(w, k);
            }
        }
        if tp + fp > 0.0 {
            let recall = tp / pos_total;
            ap += (recall - prev_recall) * (tp / (tp + fp));
            prev_recall = recall;
        }
        e = i;
    }
    Some(ap)
}

/// Confusion counts at a threshold: predicted positive iff p ≥ threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub tp: f64,
    pub fp: f64,
    pub tn: f64,
    #[serde(rename = "fn")]
    pub fn_: f64,
}

pub fn confusion(s: &Sorted, threshold: f64, w: Option<&[u32]>) -> Confusion {
    // Sorted ascending: everything from the first p ≥ threshold is flagged.
    let cut = s.p.partition_point(|&p| p < threshold);
    if w.is_none() {
        let n = s.len() as f64;
        let pos = f64::from(s.cum_pos[s.len()]);
        let below_pos = f64::from(s.cum_pos[cut]);
        let tp = pos - below_pos;
        let fn_ = below_pos;
        let tn = cut as f64 - below_pos;
        let fp = n - cut as f64 - tp;
        return Confusion { tp, fp, tn, fn_ };
    }
    let mut c = Confusion {
        tp: 0.0,
        fp: 0.0,
        tn: 0.0,
        fn_: 0.0,
    };
    for i in 0..s.len() {
        let v = wt(w, i);
        match (i >= cut, s.y[i] == 1) {
            (true, true) => c.tp += v,
            (true, false) => c.fp += v,
            (false, false) => c.tn += v,
            (false, true) => c.fn_ += v,
        }
    }
    c
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

impl Confusion {
    pub fn sensitivity(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fn_)
    }
    pub fn specificity(&self) -> Option<f64> {
        ratio(self.tn, self.tn + self.fp)
    }
    pub fn ppv(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn npv(&self) -> Option<f64> {
        ratio(self.tn, self.tn + self.fn_)
    }
}

/// Mean squared error of the probabilities.
pub fn brier(s: &Sorted, w: Option<&[u32]>) -> f64 {
    let (mut sum, mut tot) = (0.0, 0.0);
    for i in 0..s.len() {
        let d = s.p[i] - f64::from(s.y[i]);
        let v = wt(w, i);
        sum += v * d * d;
        tot += v;
    }
    sum / tot
}

/// One of the ten equal-width bins, b = min(floor(10p), 9).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub n: u64,
    pub positives: u64,
    pub mean_predicted: Option<f64>,
    /// Observed event rate with its Wilson interval.
    pub observed: Interval,
}

fn bin_of(p: f64) -> usize {
    ((10.0 * p).floor().max(0.0) as usize).min(9)
}

/// Expected calibration error: Σ_b (n_b/n)·|mean p − mean y| over 10 bins.
pub fn ece(s: &Sorted, w: Option<&[u32]>) -> f64 {
    let mut n = [0.0f64; 10];
    let mut sp = [0.0f64; 10];
    let mut sy = [0.0f64; 10];
    let mut tot = 0.0;
    for i in 0..s.len() {
        let b = bin_of(s.p[i]);
        let v = wt(w, i);
        n[b] += v;
        sp[b] += v * s.p[i];
        sy[b] += v * f64::from(s.y[i]);
        tot += v;
    }
    (0..10)
        .filter(|&b| n[b] > 0.0)
        .map(|b| n[b] / tot * (sp[b] / n[b] - sy[b] / n[b]).abs())
        .sum()
}

pub fn calibration_bins(s: &Sorted) -> Vec<CalibrationBin> {
    let mut n = [0u64; 10];
    let mut pos = [0u64; 10];
    let mut sp = [0.0f64; 10];
    for i in 0..s.len() {
        let b = bin_of(s.p[i]);
        n[b] += 1;
        pos[b] += u64::from(s.y[i]);
        sp[b] += s.p[i];
    }
    (0..10)
        .map(|b| CalibrationBin {
            lower: b as f64 / 10.0,
            upper: (b + 1) as f64 / 10.0,
            n: n[b],
            positives: pos[b],
            mean_predicted: (n[b] > 0).then(|| sp[b] / n[b] as f64),
            observed: wilson(pos[b], n[b]),
        })
        .collect()
}

/// Calibration slope: the coefficient of an unpenalised logistic regression of
/// y on logit(p) with an intercept, by Newton–Raphson (IRLS). `None` when it
/// does not converge (e.g. perfect separation).
pub fn calibration_slope(s: &Sorted, w: Option<&[u32]>) -> Option<f64> {
    newton(s, w, true).map(|(_, b)| b)
}

/// Log-likelihood, gradient and Hessian of the logistic model a + b·logit(p)
/// at one point, in one pass (one exp and one ln_1p per row).
#[derive(Clone, Copy)]
struct Fit {
    ll: f64,
    g0: f64,
    g1: f64,
    h00: f64,
    h01: f64,
    h11: f64,
}

/// One pass over the tie groups. The log-likelihood (one `ln_1p` per group,
/// the dearest part) is only computed when `with_ll`: Newton needs it only
/// when a full step fails to shrink the Newton decrement.
fn fit_pass(groups: &[(f64, f64, f64)], a: f64, b: f64, with_ll: bool) -> Fit {
    let mut f = Fit {
        ll: 0.0,
        g0: 0.0,
        g1: 0.0,
        h00: 0.0,
        h01: 0.0,
        h11: 0.0,
    };
    for &(x, wp, wn) in groups {
        let v = wp + wn;
        let t = a + b * x;
        let e = (-t.abs()).exp();
        let mu = if t >= 0.0 {
            1.0 / (1.0 + e)
        } else {
            e / (1.0 + e)
        };
        if with_ll {
            // Σ y·log σ(t) + (1 − y)·log(1 − σ(t)) = wp·t − (wp + wn)·softplus(t).
            f.ll += wp * t - v * (t.max(0.0) + e.ln_1p());
        }
        let r = wp - v * mu;
        let q = v * mu * (1.0 - mu);
        f.g0 += r;
        f.g1 += r * x;
        f.h00 += q;
        f.h01 += q * x;
        f.h11 += q * x * x;
    }
    f
}

/// Rows with the same prediction share logit(p): one (logit, weighted
/// events, weighted non-events) entry per distinct prediction, so each Newton
/// pass costs the number of distinct predictions, not of rows.
fn tie_groups(s: &Sorted, w: Option<&[u32]>) -> Vec<(f64, f64, f64)> {
    let runs = s.runs();
    let mut out = Vec::with_capacity(runs.len());
    for &(i, e, x) in runs {
        let (i, e) = (i as usize, e as usize);
        let (wp, wn) = match w {
            None => {
                let wp = f64::from(s.cum_pos[e] - s.cum_pos[i]);
                (wp, (e - i) as f64 - wp)
            }
            Some(w) => {
                let (mut wp, mut wn) = (0.0, 0.0);
                for (&y, &v) in s.y[i..e].iter().zip(&w[i..e]) {
                    if y == 1 {
                        wp += f64::from(v);
                    } else {
                        wn += f64::from(v);
                    }
                }
                (wp, wn)
            }
        };
        if wp + wn > 0.0 {
            out.push((x, wp, wn));
        }
    }
    out
}

/// Newton–Raphson with step halving for the logistic regression of y on
/// logit(p): both coefficients (`free_slope`) or the intercept alone with the
/// slope fixed at 1 (logit(p) as offset). Returns (intercept, slope).
fn newton(s: &Sorted, w: Option<&[u32]>, free_slope: bool) -> Option<(f64, f64)> {
    let groups = tie_groups(s, w);
    newton_on(&groups, free_slope)
}

/// The Newton step (da, db) at a point, and the Newton decrement gᵀH⁻¹g.
fn newton_step(f: &Fit, free_slope: bool) -> Option<(f64, f64, f64)> {
    if free_slope {
        let det = f.h00 * f.h11 - f.h01 * f.h01;
        if !(det.is_finite() && det.abs() > 1e-300) {
            return None;
        }
        let da = (f.h11 * f.g0 - f.h01 * f.g1) / det;
        let db = (f.h00 * f.g1 - f.h01 * f.g0) / det;
        Some((da, db, f.g0 * da + f.g1 * db))
    } else {
        if !(f.h00.is_finite() && f.h00 > 1e-300) {
            return None;
        }
        let da = f.g0 / f.h00;
        Some((da, 0.0, f.g0 * da))
    }
}

/// Newton–Raphson from (0, 1) over precomputed tie groups. A full step is
/// taken while it shrinks the Newton decrement (the usual case: the
/// log-likelihood is concave and smooth); otherwise the step is halved until
/// the log-likelihood does not drop.
fn newton_on(groups: &[(f64, f64, f64)], free_slope: bool) -> Option<(f64, f64)> {
    let (mut a, mut b) = (0.0f64, 1.0f64);
    let mut cur = fit_pass(groups, a, b, false);
    let mut cur_has_ll = false;
    for _ in 0..200 {
        let (da, db, dec) = newton_step(&cur, free_slope)?;
        let converged = |na: f64, nb: f64| {
            (na - a).abs() <= 1e-11 * (1.0 + a.abs()) && (nb - b).abs() <= 1e-11 * (1.0 + b.abs())
        };
        let (na, nb) = (a + da, b + db);
        if !(na.is_finite() && nb.is_finite()) {
            return None;
        }
        if converged(na, nb) {
            // The step is below the tolerance: this is the optimum.
            return Some((na, nb));
        }
        let full = fit_pass(groups, na, nb, false);
        let shrinks =
            newton_step(&full, free_slope).is_some_and(|(_, _, d)| d.is_finite() && d < dec);
        if shrinks {
            let done = converged(na, nb);
            (a, b, cur, cur_has_ll) = (na, nb, full, false);
            if done {
                return Some((a, b));
            }
            continue;
        }
        // Step halving: never accept a step that lowers the likelihood.
        if !cur_has_ll {
            cur = fit_pass(groups, a, b, true);
        }
        let mut step = 1.0;
        loop {
            let (na, nb) = (a + step * da, b + step * db);
            if !(na.is_finite() && nb.is_finite()) {
                return None;
            }
            let next = fit_pass(groups, na, nb, true);
            if next.ll >= cur.ll - 1e-12 * cur.ll.abs() || step < 1e-10 {
                let done = converged(na, nb);
                (a, b, cur, cur_has_ll) = (na, nb, next, true);
                if done {
                    return Some((a, b));
                }
                break;
            }
            step *= 0.5;
        }
    }
    None
}

/// Calibration slope and calibration-in-the-large together, sharing one
/// grouping of tied predictions.
pub fn calibration(s: &Sorted, w: Option<&[u32]>) -> (Option<f64>, Option<f64>) {
    let groups = tie_groups(s, w);
    (
        newton_on(&groups, true).map(|(_, b)| b),
        newton_on(&groups, false).map(|(a, _)| a),
    )
}

/// Calibration-in-the-large: the intercept of a logistic regression with
/// logit(p) as offset (slope fixed at 1), by Newton–Raphson.
pub fn calibration_intercept(s: &Sorted, w: Option<&[u32]>) -> Option<f64> {
    newton(s, w, false).map(|(a, _)| a)
}

/// Decision-curve net benefit of the model and of treating everyone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NetBenefit {
    pub threshold: f64,
    pub model: f64,
    pub treat_all: f64,
}

/// The thresholds of the decision curve: 0.05, 0.10, …, 0.95.
pub fn net_benefit_grid() -> Vec<f64> {
    (1..20).map(|k| f64::from(k) / 20.0).collect()
}

pub fn net_benefit(s: &Sorted, thresholds: &[f64]) -> Vec<NetBenefit> {
    let n = s.len() as f64;
    let (pos, _) = class_totals(s, None);
    let prev = pos / n;
    thresholds
        .iter()
        .map(|&t| {
            let c = confusion(s, t, None);
            let odds = t / (1.0 - t);
            NetBenefit {
                threshold: t,
                model: c.tp / n - c.fp / n * odds,
                treat_all: prev - (1.0 - prev) * odds,
            }
        })
        .collect()
}

/// ROC curve points (fpr, tpr), one per distinct threshold, from (0,0) to (1,1).
pub fn roc_points(s: &Sorted, w: Option<&[u32]>) -> Vec<(f64, f64)> {
    let (pos_total, neg_total) = class_totals(s, w);
    let mut pts = vec![(0.0, 0.0)];
    if pos_total == 0.0 || neg_total == 0.0 {
        return pts;
    }
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut e = s.len();
    while e > 0 {
        let mut i = e - 1;
        #[allow(clippy::float_cmp)] // ties are exact equality
        while i > 0 && s.p[i - 1] == s.p[e - 1] {
            i -= 1;
        }
        for k in i..e {
            if s.y[k] == 1 {
                tp += wt(w, k);
            } else {
                fp += wt(w, k);
            }
        }
        pts.push((fp / neg_total, tp / pos_total));
        e = i;
    }
    pts
}

/// TPR of a ROC curve at a given FPR (the highest TPR reached at or below it).
pub fn tpr_at(points: &[(f64, f64)], fpr: f64) -> f64 {
    let k = points.partition_point(|&(f, _)| f <= fpr + 1e-15);
    if k == 0 {
        0.0
    } else {
        points[k - 1].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_sort_matches_a_comparison_sort_and_keeps_ties_in_row_order() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut keys: Vec<(u64, u32)> = (0..20_000u32)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Few distinct values (many ties), spread over every digit.
                let p = (x % 97) as f64 / 96.0;
                (p.to_bits(), i)
            })
            .collect();
        let mut want = keys.clone();
        want.sort_unstable();
        radix_sort(&mut keys);
        assert_eq!(keys, want);
    }

    #[test]
    fn partition_keeps_sorted_order_and_drops_ungrouped_rows() {
        let s = Sorted::new(&[0.9, 0.1, 0.5, 0.3], &[1, 0, 1, 0]);
        let parts = s.partition(&[0, 1, 0, u32::MAX], 2);
        assert_eq!(parts[0].p, [0.5, 0.9]);
        assert_eq!(parts[0].order, [2, 0]);
        assert_eq!(parts[1].p, [0.1]);
        assert_eq!(class_totals(&parts[0], None), (2.0, 0.0));
    }
}
