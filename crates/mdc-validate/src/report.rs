//! The report model: every number of `report.json`, computed from predictions,
//! labels and subgroup columns, plus the provenance the caller supplies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bootstrap::{self, Bootstrap};
use crate::metrics::{self, Auroc, CalibrationBin, Confusion, Interval, NetBenefit, Sorted};
use crate::subgroup::{self, SubgroupSpec, SubgroupValues};
use crate::ValidateError;

/// Subgroups with fewer events than this are suppressed in governed mode.
pub const MIN_SUBGROUP_EVENTS: u64 = 10;

/// Format of `report.json`; bumped on any incompatible change.
pub const REPORT_FORMAT: u32 = 1;

#[derive(Debug, Clone)]
pub struct Options {
    pub threshold: f64,
    /// Bootstrap replicates (0: none).
    pub bootstrap: u32,
    pub seed: u64,
    /// Governed mode: suppress subgroups with < MIN_SUBGROUP_EVENTS events.
    pub suppress_small_subgroups: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold: 0.5,
            bootstrap: 0,
            seed: 0,
            suppress_small_subgroups: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subgroup {
    pub name: String,
    /// Counts and metrics are withheld (governed mode, < 10 events).
    pub suppressed: bool,
    /// Fewer than 10 events: estimates are unstable.
    pub small: bool,
    pub n: Option<u64>,
    pub positives: Option<u64>,
    pub auroc: Option<Auroc>,
    pub sensitivity: Interval,
    pub specificity: Interval,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRow {
    pub threshold: f64,
    /// Fraction of patients flagged positive.
    pub flagged: f64,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
    pub ppv: Option<f64>,
    pub npv: Option<f64>,
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocBand {
    pub method: String,
    /// (fpr, tpr_low, tpr_high)
    pub points: Vec<[f64; 3]>,
}

/// All the numbers of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub n: u64,
    pub positives: u64,
    pub prevalence: f64,
    pub threshold: f64,
    pub auroc: Auroc,
    pub auprc: Option<f64>,
    pub sensitivity: Interval,
    pub specificity: Interval,
    pub ppv: Interval,
    pub npv: Interval,
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    pub brier: f64,
    pub calibration_slope: Option<f64>,
    pub calibration_intercept: Option<f64>,
    pub ece: f64,
    pub calibration_bins: Vec<CalibrationBin>,
    pub net_benefit: Vec<NetBenefit>,
    pub threshold_table: Vec<ThresholdRow>,
    /// ROC curve (fpr, tpr), thinned to at most ~500 points for plotting.
    pub roc_curve: Vec<[f64; 2]>,
    pub roc_band: RocBand,
    pub bootstrap: Option<Bootstrap>,
    pub subgroups: Vec<Subgroup>,
    pub warnings: Vec<String>,
}

/// Where the numbers came from: filled in by the caller (the CLI), which
/// knows the files, the runtime and the project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub mdc_version: String,
    pub onnxruntime_version: Option<String>,
    /// UTC time of the run; the only field that differs between reruns.
    pub created_at: String,
    /// `local` (a file) or `governed` (a dataset inside a project).
    pub mode: String,
    pub project: Option<String>,
    pub seed: u64,
    pub model: ModelInfo,
    pub data: DataInfo,
    /// Free-text fields of the model card (name, version, intended use, …).
    pub card: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub file: String,
    pub sha256: String,
    pub producer: Option<String>,
    pub inputs: Vec<String>,
    pub output: String,
    pub positive_index: Option<usize>,
    /// Whether the model file is still held after the run (governed: false).
    pub retained: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    pub source: String,
    pub sha256: String,
    pub features: Vec<String>,
    pub label: String,
    pub rows_read: u64,
    pub rows_used: u64,
    /// Rows left out because the patient opted out (governed mode).
    pub excluded_by_consent: Option<u64>,
    /// Rows with a missing feature or label value, left out with --drop-missing.
    pub rows_dropped_missing: u64,
    /// Missing values per column, counted before anything was dropped.
    pub missing: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub report_format: u32,
    pub provenance: Provenance,
    #[serde(flatten)]
    pub metrics: Metrics,
}

fn confusion_counts(c: &Confusion) -> (u64, u64, u64, u64) {
    (c.tp as u64, c.fp as u64, c.tn as u64, c.fn_ as u64)
}

fn thin(points: &[(f64, f64)], max: usize) -> Vec<[f64; 2]> {
    let step = points.len().div_ceil(max).max(1);
    let mut out: Vec<[f64; 2]> = points.iter().step_by(step).map(|&(a, b)| [a, b]).collect();
    if let Some(&(a, b)) = points.last() {
        if out.last() != Some(&[a, b]) {
            out.push([a, b]);
        }
    }
    out
}

fn subgroup_row(s: &Sorted, name: String, threshold: f64, suppress: bool) -> Subgroup {
    let (pos, neg) = metrics::class_totals(s, None);
    let positives = pos as u64;
    let small = positives < MIN_SUBGROUP_EVENTS;
    if suppress && small {
        return Subgroup {
            name,
            suppressed: true,
            small,
            n: None,
            positives: None,
            auroc: None,
            sensitivity: Interval::UNDEFINED,
            specificity: Interval::UNDEFINED,
        };
    }
    let c = metrics::confusion(s, threshold, None);
    let (tp, fp, tn, fn_) = confusion_counts(&c);
    Subgroup {
        name,
        suppressed: false,
        small,
        n: Some(s.len() as u64),
        positives: Some(positives),
        auroc: (pos > 0.0 && neg > 0.0).then(|| metrics::auroc_delong(s)),
        sensitivity: metrics::wilson(tp, tp + fn_),
        specificity: metrics::wilson(tn, tn + fp),
    }
}

/// Computes every metric. `p` and `y` must have passed [`crate::check_inputs`];
/// each subgroup column has one value per row.
pub fn evaluate(
    p: &[f64],
    y: &[u8],
    subgroups: &[(SubgroupSpec, SubgroupValues)],
    opts: &Options,
) -> Result<Metrics, ValidateError> {
    crate::check_inputs(p, y)?;
    if !(opts.threshold > 0.0 && opts.threshold < 1.0) {
        return Err(ValidateError::Invalid(
            "invalid --threshold: must lie strictly between 0 and 1".into(),
        ));
    }
    for (spec, values) in subgroups {
        let len = match values {
            SubgroupValues::Text(v) => v.len(),
            SubgroupValues::Numeric(v) => v.len(),
        };
        if len != p.len() {
            return Err(ValidateError::Invalid(format!(
                "subgroup column {} has {len} values for {} predictions",
                spec.column,
                p.len()
            )));
        }
        if spec.cuts.is_some() && matches!(values, SubgroupValues::Text(_)) {
            return Err(ValidateError::Invalid(format!(
                "invalid --subgroup {}: cut points need a numeric column",
                spec.column
            )));
        }
    }
    let s = Sorted::new(p, y);
    let t = opts.threshold;
    let (pos, _) = metrics::class_totals(&s, None);
    let n = s.len() as u64;
    let c = metrics::confusion(&s, t, None);
    let (tp, fp, tn, fn_) = confusion_counts(&c);
    let mut warnings = Vec::new();
    let (calibration_slope, calibration_intercept) = metrics::calibration(&s, None);
    if calibration_slope.is_none() || calibration_intercept.is_none() {
        warnings.push(
            "the calibration regression did not converge (separable data?); slope/intercept omitted"
                .into(),
        );
    }
    let mut thresholds: Vec<f64> = vec![0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, t];
    thresholds.sort_unstable_by(f64::total_cmp);
    thresholds.dedup_by(|a, b| (*a - *b).abs() < 1e-12);
    let threshold_table = thresholds
        .iter()
        .map(|&th| {
            let c = metrics::confusion(&s, th, None);
            let (tp, fp, tn, fn_) = confusion_counts(&c);
            ThresholdRow {
                threshold: th,
                flagged: (tp + fp) as f64 / n as f64,
                sensitivity: c.sensitivity(),
                specificity: c.specificity(),
                ppv: c.ppv(),
                npv: c.npv(),
                tp,
                fp,
                tn,
                fn_,
            }
        })
        .collect();
    let roc = metrics::roc_points(&s, None);
    let bootstrap = (opts.bootstrap > 0).then(|| bootstrap::run(&s, t, opts.bootstrap, opts.seed));
    let roc_band = match &bootstrap {
        Some(b) if !b.roc_band.is_empty() => RocBand {
            method: format!(
                "pointwise 95% percentile bootstrap band of TPR at fixed FPR ({} replicates, seed {})",
                b.replicates, b.seed
            ),
            points: b.roc_band.iter().map(|&(f, l, h)| [f, l, h]).collect(),
        },
        _ => RocBand {
            method: "pointwise 95% Wilson interval of TPR at fixed FPR (approximate; pass --bootstrap for a bootstrap band)".into(),
            points: bootstrap::band_grid()
                .into_iter()
                .map(|f| {
                    let tpr = metrics::tpr_at(&roc, f);
                    let w = metrics::wilson((tpr * pos).round() as u64, pos as u64);
                    [f, w.ci_low.unwrap_or(0.0), w.ci_high.unwrap_or(1.0)]
                })
                .collect(),
        },
    };
    let mut rows = Vec::new();
    for (spec, values) in subgroups {
        let a = subgroup::assign(spec, values);
        let parts = s.partition(&a.group, a.names.len());
        for (name, sub) in a.names.into_iter().zip(parts) {
            if sub.is_empty() {
                continue;
            }
            let row = subgroup_row(&sub, name, t, opts.suppress_small_subgroups);
            if row.small && !row.suppressed {
                warnings.push(format!(
                    "subgroup {} has fewer than {MIN_SUBGROUP_EVENTS} events; its estimates are unstable (suppressed in governed mode)",
                    row.name
                ));
            }
            rows.push(row);
        }
    }
    if opts.suppress_small_subgroups {
        let k = rows.iter().filter(|r| r.suppressed).count();
        if k > 0 {
            warnings.push(format!(
                "{k} subgroup(s) with fewer than {MIN_SUBGROUP_EVENTS} events suppressed (governed release rule)"
            ));
        }
    }
    Ok(Metrics {
        n,
        positives: pos as u64,
        prevalence: pos / n as f64,
        threshold: t,
        auroc: metrics::auroc_delong(&s),
        auprc: metrics::auprc(&s, None),
        sensitivity: metrics::wilson(tp, tp + fn_),
        specificity: metrics::wilson(tn, tn + fp),
        ppv: metrics::wilson(tp, tp + fp),
        npv: metrics::wilson(tn, tn + fn_),
        tp,
        fp,
        tn,
        fn_,
        brier: metrics::brier(&s, None),
        calibration_slope,
        calibration_intercept,
        ece: metrics::ece(&s, None),
        calibration_bins: metrics::calibration_bins(&s),
        net_benefit: metrics::net_benefit(&s, &metrics::net_benefit_grid()),
        threshold_table,
        roc_curve: thin(&roc, 500),
        roc_band,
        bootstrap,
        subgroups: rows,
        warnings,
    })
}
