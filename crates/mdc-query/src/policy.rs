//! Disclosure-control rules as data (DESIGN §8, issue 6).
//!
//! A `Policy` is plain serialisable data: a preset gives the starting values
//! and a project may override any of them. The engine (`disclosure.rs`) reads
//! only this struct, so the rules applied to a release can be recorded exactly
//! (name, version, SHA-256 of the canonical JSON).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::QueryError;

/// The version of the rule semantics; bump when the engine's reading of a
/// field changes, so a release record says which reading applied.
pub const RULES_VERSION: i64 = 1;

/// What to do with a count cell equal to zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZeroRule {
    /// Treated like any other count (masked when below the threshold).
    Threshold,
    /// Left visible but flagged for the reviewer (ACRO's "zeros" check).
    Flag,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// `kr-public`, `opensafely`, `acro`, or a project's own name.
    pub name: String,
    /// Count cells (and the contributors behind any other cell) below this are masked.
    pub min_count: u64,
    /// Round every visible count to this base (OpenSAFELY: 5).
    #[serde(default)]
    pub rounding: Option<u64>,
    /// Mask complementary cells and totals so no masked value can be recomputed.
    #[serde(default)]
    pub secondary_suppression: bool,
    /// Dominance (N, K%): a magnitude cell fails when its N largest
    /// contributions exceed K% of the cell total.
    #[serde(default)]
    pub dominance: Option<(u32, f64)>,
    /// p-percent: a magnitude cell fails when total − top two < p% of the largest.
    #[serde(default)]
    pub p_percent: Option<f64>,
    pub zeros: ZeroRule,
    /// k for k-anonymity of record-level results on the quasi-identifiers.
    pub k_anonymity: u64,
    /// Column names treated as quasi-identifiers in record-level results.
    #[serde(default)]
    pub quasi_identifiers: Vec<String>,
    /// Differencing control on person counts: refuse a cell whose patient set
    /// differs from an earlier released one by fewer than `min_count` patients.
    #[serde(default = "yes")]
    pub differencing: bool,
}

fn yes() -> bool {
    true
}

fn default_qis() -> Vec<String> {
    [
        "year_of_birth",
        "birth_year",
        "birth_date",
        "age",
        "age_band",
        "sex",
        "gender",
        "gender_concept_id",
        "gender_source_value",
        "race_concept_id",
        "ethnicity_concept_id",
        "region",
        "location_id",
        "zip",
        "postcode",
        "sido",
        "sigungu",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

impl Policy {
    pub const PRESETS: [&'static str; 3] = ["kr-public", "opensafely", "acro"];

    /// `kr-public`: cells < 5 masked, plus any total or complementary cell
    /// that would let a masked value be recomputed.
    pub fn kr_public() -> Policy {
        Policy {
            name: "kr-public".into(),
            min_count: 5,
            rounding: None,
            secondary_suppression: true,
            dominance: None,
            p_percent: None,
            zeros: ZeroRule::Threshold,
            k_anonymity: 5,
            quasi_identifiers: default_qis(),
            differencing: true,
        }
    }

    /// `opensafely`: counts ≤ 7 redacted, then every count rounded to 5.
    pub fn opensafely() -> Policy {
        Policy {
            name: "opensafely".into(),
            min_count: 8,
            rounding: Some(5),
            secondary_suppression: false,
            dominance: None,
            p_percent: None,
            zeros: ZeroRule::Threshold,
            k_anonymity: 8,
            quasi_identifiers: default_qis(),
            differencing: true,
        }
    }

    /// `acro`: threshold 10, dominance N-K (2, 90%), p-percent 10%, zeros flagged.
    pub fn acro() -> Policy {
        Policy {
            name: "acro".into(),
            min_count: 10,
            rounding: None,
            secondary_suppression: false,
            dominance: Some((2, 90.0)),
            p_percent: Some(10.0),
            zeros: ZeroRule::Flag,
            k_anonymity: 10,
            quasi_identifiers: default_qis(),
            differencing: true,
        }
    }

    pub fn preset(name: &str) -> Result<Policy, QueryError> {
        match name {
            "kr-public" => Ok(Policy::kr_public()),
            "opensafely" => Ok(Policy::opensafely()),
            "acro" => Ok(Policy::acro()),
            other => Err(QueryError::Invalid(format!(
                "unknown disclosure preset '{}': expected kr-public, opensafely or acro",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }

    /// A preset with a project's overrides (a JSON object of fields).
    pub fn with_overrides(
        preset: &str,
        overrides: &serde_json::Value,
    ) -> Result<Policy, QueryError> {
        let mut base = serde_json::to_value(Policy::preset(preset)?)
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        if let (Some(b), Some(o)) = (base.as_object_mut(), overrides.as_object()) {
            for (k, v) in o {
                b.insert(k.clone(), v.clone());
            }
        }
        let p: Policy = serde_json::from_value(base)
            .map_err(|e| QueryError::Invalid(format!("disclosure policy: {e}")))?;
        p.validate()?;
        Ok(p)
    }

    pub fn validate(&self) -> Result<(), QueryError> {
        let bad = |m: &str| Err(QueryError::Invalid(format!("disclosure policy: {m}")));
        if self.min_count < 1 || self.min_count > 1000 {
            return bad("min_count must be 1-1000");
        }
        if self.k_anonymity < 2 || self.k_anonymity > 1000 {
            return bad("k_anonymity must be 2-1000");
        }
        if let Some(r) = self.rounding {
            if !(2..=1000).contains(&r) {
                return bad("rounding must be 2-1000");
            }
        }
        if let Some((n, k)) = self.dominance {
            if n < 1 || !(0.0..=100.0).contains(&k) || k.is_nan() {
                return bad("dominance must be (n ≥ 1, 0 ≤ k ≤ 100)");
            }
        }
        if let Some(p) = self.p_percent {
            if !(0.0..=100.0).contains(&p) || p.is_nan() {
                return bad("p_percent must be 0-100");
            }
        }
        Ok(())
    }

    /// SHA-256 of the JSON of this policy (field order is the struct's).
    pub fn sha256(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        data_encoding::HEXLOWER.encode(&Sha256::digest(&json))
    }

    pub fn is_quasi_identifier(&self, column: &str) -> bool {
        self.quasi_identifiers
            .iter()
            .any(|q| q.eq_ignore_ascii_case(column))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn presets_carry_the_issue_thresholds() {
        let kr = Policy::kr_public();
        assert_eq!((kr.min_count, kr.secondary_suppression), (5, true));
        let os = Policy::opensafely();
        assert_eq!((os.min_count, os.rounding), (8, Some(5)));
        let acro = Policy::acro();
        assert_eq!(acro.min_count, 10);
        assert_eq!(acro.dominance, Some((2, 90.0)));
        assert_eq!(acro.p_percent, Some(10.0));
        assert_eq!(acro.zeros, ZeroRule::Flag);
    }

    #[test]
    fn projects_override_thresholds_and_bad_values_are_refused() {
        let p = Policy::with_overrides("kr-public", &serde_json::json!({"min_count": 11})).unwrap();
        assert_eq!(p.min_count, 11);
        assert_ne!(p.sha256(), Policy::kr_public().sha256());
        assert!(Policy::with_overrides("kr-public", &serde_json::json!({"min_count": 0})).is_err());
        assert!(Policy::with_overrides("kr-public", &serde_json::json!({"nonsense": 1})).is_err());
        assert!(Policy::preset("lenient").is_err());
    }
}
