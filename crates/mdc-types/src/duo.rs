//! GA4GH Data Use Ontology (DUO) codes as used by datasets and projects.
//!
//! Datasets carry use conditions (permissions such as GRU/HMB/DS-x and modifiers
//! such as NCU, NPU, GS-xx, TS-date); a project declares one purpose code. The
//! matching rules live in `mdc-store`'s authorizer; this module only parses.

use std::fmt;

use chrono::NaiveDate;

use crate::FieldError;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DuoCode {
    /// General research use.
    Gru,
    /// Health, medical or biomedical research.
    Hmb,
    /// Disease-specific research, with the disease label (e.g. `DS-CANCER`).
    Ds(String),
    /// Population origins or ancestry research.
    Poa,
    /// Methods development only.
    Nmds,
    /// Not for commercial use.
    Ncu,
    /// Not-for-profit organisations only.
    Npu,
    /// Geographic restriction, with ISO 3166 country codes (`GS-KR` or `GS-KR+JP`).
    Gs(Vec<String>),
    /// Ethics approval required.
    Irb,
    /// Time limit on use: usable until this date, inclusive.
    Ts(NaiveDate),
    /// Modifiers recorded and shown but not machine-enforced (PUB, COL, RTN, US, PS, MOR).
    Informational(String),
}

impl DuoCode {
    pub fn parse(field: &str, s: &str) -> Result<DuoCode, FieldError> {
        let s = s.trim().to_ascii_uppercase();
        let code = match s.as_str() {
            "GRU" => DuoCode::Gru,
            "HMB" => DuoCode::Hmb,
            "POA" => DuoCode::Poa,
            "NMDS" => DuoCode::Nmds,
            "NCU" => DuoCode::Ncu,
            "NPU" => DuoCode::Npu,
            "IRB" => DuoCode::Irb,
            "PUB" | "COL" | "RTN" | "US" | "PS" => DuoCode::Informational(s.clone()),
            _ => {
                if let Some(d) = s.strip_prefix("DS-") {
                    let ok = !d.is_empty()
                        && d.len() <= 40
                        && d.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
                    if !ok {
                        return Err(FieldError::new(field, "DS- must be followed by a disease label of letters, digits, '_' or ':'"));
                    }
                    DuoCode::Ds(d.to_owned())
                } else if let Some(c) = s.strip_prefix("GS-") {
                    let countries: Vec<String> = c.split('+').map(str::to_owned).collect();
                    if countries
                        .iter()
                        .any(|c| c.len() != 2 || !c.chars().all(|x| x.is_ascii_uppercase()))
                    {
                        return Err(FieldError::new(field, "GS- must be followed by ISO 3166 alpha-2 codes joined by '+' (e.g. GS-KR)"));
                    }
                    DuoCode::Gs(countries)
                } else if let Some(d) = s.strip_prefix("TS-") {
                    DuoCode::Ts(crate::parse_date(field, d)?)
                } else if let Some(d) = s.strip_prefix("MOR-") {
                    crate::parse_date(field, d)?;
                    DuoCode::Informational(s.clone())
                } else {
                    return Err(FieldError::new(field, "unknown DUO code (expected GRU, HMB, DS-x, POA, NMDS, NCU, NPU, GS-xx, IRB, TS-date, PUB, COL, RTN, US, PS or MOR-date)"));
                }
            }
        };
        Ok(code)
    }

    /// Whether this code can be a project's declared purpose.
    pub fn is_purpose(&self) -> bool {
        matches!(
            self,
            DuoCode::Gru | DuoCode::Hmb | DuoCode::Ds(_) | DuoCode::Poa | DuoCode::Nmds
        )
    }
}

impl fmt::Display for DuoCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DuoCode::Gru => f.write_str("GRU"),
            DuoCode::Hmb => f.write_str("HMB"),
            DuoCode::Ds(d) => write!(f, "DS-{d}"),
            DuoCode::Poa => f.write_str("POA"),
            DuoCode::Nmds => f.write_str("NMDS"),
            DuoCode::Ncu => f.write_str("NCU"),
            DuoCode::Npu => f.write_str("NPU"),
            DuoCode::Gs(c) => write!(f, "GS-{}", c.join("+")),
            DuoCode::Irb => f.write_str("IRB"),
            DuoCode::Ts(d) => write!(f, "TS-{}", d.format("%Y-%m-%d")),
            DuoCode::Informational(s) => f.write_str(s),
        }
    }
}

/// A dataset's list of use conditions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DuoList(pub Vec<DuoCode>);

impl DuoList {
    /// Parses `GRU,NCU,GS-KR`; an empty string is an empty list.
    pub fn parse(field: &str, s: &str) -> Result<DuoList, FieldError> {
        let mut codes = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let code = DuoCode::parse(field, part)?;
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        Ok(DuoList(codes))
    }
}

impl fmt::Display for DuoList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn duo_codes_round_trip_through_text() {
        let list = DuoList::parse(
            "use",
            "gru, NCU,GS-KR+JP,TS-2027-12-31,DS-C50,MOR-2026-01-01",
        )
        .unwrap();
        assert_eq!(
            list.to_string(),
            "GRU,NCU,GS-KR+JP,TS-2027-12-31,DS-C50,MOR-2026-01-01"
        );
    }

    #[test]
    fn malformed_duo_codes_are_rejected_with_the_field_name() {
        for bad in ["XYZ", "GS-KOR", "TS-2027-02-30", "DS-", "DS-a b"] {
            let err = DuoList::parse("use", bad).unwrap_err();
            assert_eq!(err.field, "use", "{bad}");
        }
    }
}
