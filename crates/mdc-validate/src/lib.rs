//! Clinical model validation: the metrics and the report of issue 7.
//!
//! Why a crate of its own: the statistics are the part a regulator reads, so
//! they live in a small engine with no IO and no heavy dependency, tested
//! number by number against scikit-learn, statsmodels and a NumPy DeLong on
//! committed fixtures (`data/validate/`). Reading tables (mdc-table), running
//! the model (mdc-infer) and governance (mdc-store) happen in the callers; this
//! crate sees predictions as `f64`, labels as 0/1 bytes and subgroup columns
//! as plain vectors.
//!
//! Architecture invariant: no IO, no clock, no randomness other than the
//! seeded bootstrap, so the same inputs and seed give a bit-identical report.

pub mod bootstrap;
pub mod html;
pub mod metrics;
pub mod paired;
pub mod report;
pub mod subgroup;

pub use metrics::{Auroc, Interval, Z};
pub use report::{
    evaluate, DataInfo, Metrics, ModelInfo, Options, Provenance, Report, Subgroup,
    MIN_SUBGROUP_EVENTS, REPORT_FORMAT,
};
pub use subgroup::{SubgroupSpec, SubgroupValues};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidateError {
    /// The inputs cannot be validated as given (the message says why).
    #[error("{0}")]
    Invalid(String),
}

/// Checks predictions and labels before any work: same length, probabilities
/// finite and within [0, 1], labels 0/1, both classes present.
pub fn check_inputs(p: &[f64], y: &[u8]) -> Result<(), ValidateError> {
    let bad = |m: String| Err(ValidateError::Invalid(m));
    if p.len() != y.len() {
        return bad(format!("{} predictions for {} labels", p.len(), y.len()));
    }
    if p.is_empty() {
        return bad("the cohort has no rows".into());
    }
    if let Some(i) = p.iter().position(|v| !v.is_finite()) {
        return bad(format!(
            "the model returned a non-finite value (NaN or infinity) for data row {}",
            i + 1
        ));
    }
    if let Some(i) = p.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return bad(format!(
            "the model output for data row {} is not a probability in [0, 1]; choose the probability output with --output-name/--positive-index",
            i + 1
        ));
    }
    if let Some(i) = y.iter().position(|&v| v > 1) {
        return bad(format!("label of data row {} is not 0 or 1", i + 1));
    }
    let pos = y.iter().map(|&v| usize::from(v)).sum::<usize>();
    if pos == 0 || pos == y.len() {
        return bad(format!(
            "the cohort has one class only ({} rows, {pos} positive): AUROC and calibration need both outcomes",
            y.len()
        ));
    }
    Ok(())
}

/// Turns a numeric label column into 0/1, refusing anything else (NaN must
/// have been dealt with as missing before). Names the first offending row.
#[allow(clippy::float_cmp)] // a label is exactly 0 or 1, nothing near it
pub fn labels_from_f64(label: &str, values: &[f64]) -> Result<Vec<u8>, ValidateError> {
    let mut out = Vec::with_capacity(values.len());
    let mut bad = 0usize;
    let mut first = None;
    for (i, &v) in values.iter().enumerate() {
        if v == 0.0 {
            out.push(0);
        } else if v == 1.0 {
            out.push(1);
        } else {
            bad += 1;
            first.get_or_insert((i, v));
            out.push(2);
        }
    }
    if let Some((i, v)) = first {
        return Err(ValidateError::Invalid(format!(
            "label column {label} must hold 0 or 1: {bad} row(s) do not (first: data row {}, value {v})",
            i + 1
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_other_than_zero_and_one_are_refused_with_the_row() {
        let e = labels_from_f64("y", &[0.0, 1.0, 2.0, 0.5]).unwrap_err();
        assert!(e.to_string().contains("2 row(s)"), "{e}");
        assert!(e.to_string().contains("data row 3"), "{e}");
    }

    #[test]
    fn one_class_is_refused_before_any_work() {
        let e = check_inputs(&[0.1, 0.2], &[0, 0]).unwrap_err();
        assert!(e.to_string().contains("one class"), "{e}");
    }

    #[test]
    fn non_probabilities_are_refused() {
        assert!(check_inputs(&[0.1, 1.5], &[0, 1]).is_err());
        assert!(check_inputs(&[0.1, f64::NAN], &[0, 1]).is_err());
    }
}
