//! De-identification policies: which action each column or FHIR path gets.
//!
//! A policy is a small TOML file (format in `docs/structured-deid.md`). It is
//! parsed and checked once, up front, so that a typo fails the run before a
//! single row is read, with an error that names the offending key. Columns no
//! rule matches are dropped (deny by default) and listed in the report.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::pseudonym::Domain;

/// How a generalised value is coarsened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generalize {
    /// Age → 5-year band, 90+ pooled.
    Age5,
    /// Date → first day of its month (text: `YYYY-MM`).
    Month,
    /// Date → 1 January of its year (text: `YYYY`).
    Year,
    /// Birth date or year → year, pooled so nobody is older than 90.
    BirthYear,
    /// Korean address → 시/도.
    Sido,
    /// Korean address → 시/군/구.
    Sigungu,
    /// Postal code → first three digits.
    Postal3,
}

impl Generalize {
    fn parse(s: &str) -> Option<Generalize> {
        Some(match s {
            "age" | "age5" => Generalize::Age5,
            "month" => Generalize::Month,
            "year" => Generalize::Year,
            "birth_year" => Generalize::BirthYear,
            "sido" | "province" => Generalize::Sido,
            "sigungu" | "district" => Generalize::Sigungu,
            "postal3" | "zip3" => Generalize::Postal3,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Generalize::Age5 => "age5",
            Generalize::Month => "month",
            Generalize::Year => "year",
            Generalize::BirthYear => "birth_year",
            Generalize::Sido => "sido",
            Generalize::Sigungu => "sigungu",
            Generalize::Postal3 => "postal3",
        }
    }
}

/// One policy action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Drop,
    Keep,
    Pseudonym(Domain),
    ShiftDate,
    Generalize(Generalize),
    SuppressIfRare(u32),
    Text,
    HashDigits,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Drop => f.write_str("drop"),
            Action::Keep => f.write_str("keep"),
            Action::Pseudonym(d) => write!(f, "pseudonym({})", d.as_str()),
            Action::ShiftDate => f.write_str("shift_date"),
            Action::Generalize(g) => write!(f, "generalize({})", g.as_str()),
            Action::SuppressIfRare(k) => write!(f, "suppress_if_rare({k})"),
            Action::Text => f.write_str("text"),
            Action::HashDigits => f.write_str("hash_digits"),
        }
    }
}

pub const ACTIONS_HELP: &str = "drop, keep, pseudonym(patient|encounter|provider|accession|record), shift_date, generalize(age5|month|year|birth_year|sido|sigungu|postal3), suppress_if_rare(K), text, hash_digits";

impl Action {
    /// Parses an action as written in a policy.
    pub fn parse(s: &str) -> Result<Action, String> {
        let s = s.trim();
        let (head, arg) = match s.split_once('(') {
            Some((h, rest)) => {
                let Some(arg) = rest.strip_suffix(')') else {
                    return Err(format!("\"{s}\": missing ')'"));
                };
                (h.trim(), Some(arg.trim()))
            }
            None => (s, None),
        };
        let no_arg = |a: Action| match arg {
            None => Ok(a),
            Some(_) => Err(format!("\"{head}\" takes no argument")),
        };
        match head {
            "drop" => no_arg(Action::Drop),
            "keep" => no_arg(Action::Keep),
            "shift_date" => no_arg(Action::ShiftDate),
            "text" => no_arg(Action::Text),
            "hash_digits" => no_arg(Action::HashDigits),
            "pseudonym" => {
                let d = match arg.unwrap_or("record") {
                    "patient" => Domain::Patient,
                    "encounter" => Domain::Encounter,
                    "provider" => Domain::Provider,
                    "accession" => Domain::Accession,
                    "record" => Domain::Record,
                    other => {
                        return Err(format!(
                            "unknown pseudonym domain \"{other}\" (expected patient, encounter, provider, accession or record)"
                        ))
                    }
                };
                Ok(Action::Pseudonym(d))
            }
            "generalize" | "generalise" => {
                let a = arg.unwrap_or("");
                Generalize::parse(a).map(Action::Generalize).ok_or_else(|| {
                    format!("unknown generalisation \"{a}\" (expected age5, month, year, birth_year, sido, sigungu or postal3)")
                })
            }
            "suppress_if_rare" => {
                let k: u32 = arg
                    .and_then(|a| a.parse().ok())
                    .filter(|k| *k >= 2)
                    .ok_or_else(|| {
                        "suppress_if_rare needs an integer k ≥ 2, e.g. suppress_if_rare(5)"
                            .to_owned()
                    })?;
                Ok(Action::SuppressIfRare(k))
            }
            other => Err(format!(
                "unknown action \"{other}\" (expected one of: {ACTIONS_HELP})"
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("policy {source_name}: {message}")]
    Syntax {
        source_name: String,
        message: String,
    },
    #[error("policy {source_name}: {key}: {message}")]
    Invalid {
        source_name: String,
        key: String,
        message: String,
    },
    #[error(
        "unknown profile \"{0}\" (built-in profiles: omop-cdm, fhir-r4, kr-health, safe-harbor)"
    )]
    UnknownProfile(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionsFile {
    unknown: Option<String>,
    age_reference_year: Option<i32>,
    patient_column: Option<String>,
    keep_attachments: Option<bool>,
    keep_unknown_extensions: Option<bool>,
    clean_narratives: Option<bool>,
    k: Option<u32>,
    qi: Option<Vec<String>>,
}

/// `extends = "profile"` or `extends = ["a", "b"]` (later ones override earlier ones).
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Extends {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Extends {
    fn names(&self) -> Vec<String> {
        match self {
            Extends::None => vec![],
            Extends::One(s) => vec![s.clone()],
            Extends::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    extends: Extends,
    #[serde(default)]
    options: OptionsFile,
    #[serde(default)]
    columns: BTreeMap<String, String>,
    #[serde(default)]
    fhir: BTreeMap<String, String>,
}

/// Options that are not per-column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Reference year for pooling ages above 89 (default: the run's year).
    pub age_reference_year: Option<i32>,
    /// `deid table`: the column holding the patient's record number.
    pub patient_column: Option<String>,
    pub keep_attachments: bool,
    pub keep_unknown_extensions: bool,
    /// FHIR `text.div` under a `text` action: cleaned by the text engine and
    /// kept, instead of dropped (the default).
    pub clean_narratives: bool,
    /// Target k for automatic generalisation, and its quasi-identifiers.
    pub k: Option<u32>,
    pub qi: Vec<String>,
}

/// A compiled rule set: exact keys and `*` globs, most specific first.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    exact: HashMap<String, Action>,
    /// (pattern, action), sorted by decreasing number of literal characters.
    globs: Vec<(String, Action)>,
}

fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

impl Rules {
    /// FHIR keys: `*.` is a path-tail marker, not a wildcard, so all are exact.
    fn insert_exact(&mut self, key: &str, action: Action) {
        self.exact.insert(key.to_owned(), action);
    }

    fn insert(&mut self, key: &str, action: Action) {
        if key.contains('*') {
            self.globs.retain(|(k, _)| k != key);
            self.globs.push((key.to_owned(), action));
            self.globs
                .sort_by_key(|(k, _)| std::cmp::Reverse(k.replace('*', "").chars().count()));
        } else {
            self.exact.insert(key.to_owned(), action);
        }
    }

    /// The rule for a column of a table: `table.column` beats `column`, an
    /// exact key beats a glob, a longer glob beats a shorter one.
    pub fn column(&self, table: Option<&str>, column: &str) -> Option<(String, Action)> {
        let col = column.to_ascii_lowercase();
        let qualified = table.map(|t| format!("{}.{col}", t.to_ascii_lowercase()));
        if let Some(q) = &qualified {
            if let Some(a) = self.exact.get(q) {
                return Some((q.clone(), *a));
            }
        }
        if let Some(a) = self.exact.get(&col) {
            return Some((col, *a));
        }
        if let Some(q) = &qualified {
            for (k, a) in &self.globs {
                if k.contains('.') && glob_match(k, q) {
                    return Some((k.clone(), *a));
                }
            }
        }
        for (k, a) in &self.globs {
            if !k.contains('.') && glob_match(k, &col) {
                return Some((k.clone(), *a));
            }
        }
        None
    }

    /// The rule for a FHIR element path `Type.a.b`: the exact path, then
    /// `*.a.b`, then `*.b` (an element of that name anywhere).
    pub fn path(&self, path: &str) -> Option<(String, Action)> {
        if let Some(a) = self.exact.get(path) {
            return Some((path.to_owned(), *a));
        }
        let mut tail = path;
        while let Some((_, rest)) = tail.split_once('.') {
            let key = format!("*.{rest}");
            if let Some(a) = self.exact.get(&key) {
                return Some((key, *a));
            }
            tail = rest;
        }
        None
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.globs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A parsed and checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub description: String,
    /// SHA-256 of the policy text (and of the profile it extends).
    pub sha256: String,
    pub options: Options,
    pub columns: Rules,
    pub fhir: Rules,
}

pub const PROFILES: &[(&str, &str)] = &[
    ("omop-cdm", include_str!("profiles/omop-cdm.toml")),
    ("fhir-r4", include_str!("profiles/fhir-r4.toml")),
    ("kr-health", include_str!("profiles/kr-health.toml")),
    ("safe-harbor", include_str!("profiles/safe-harbor.toml")),
];

/// The TOML text of a built-in profile.
pub fn profile_text(name: &str) -> Option<&'static str> {
    PROFILES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

impl Policy {
    /// Layers `other` over `self`: its options that are set and its rules win.
    fn merge(&mut self, other: Policy) {
        for (k, a) in other.columns.exact {
            self.columns.insert(&k, a);
        }
        for (k, a) in other.columns.globs {
            self.columns.insert(&k, a);
        }
        for (k, a) in other.fhir.exact {
            self.fhir.insert_exact(&k, a);
        }
        let o = other.options;
        if o.age_reference_year.is_some() {
            self.options.age_reference_year = o.age_reference_year;
        }
        if o.patient_column.is_some() {
            self.options.patient_column = o.patient_column;
        }
        self.options.keep_attachments |= o.keep_attachments;
        self.options.keep_unknown_extensions |= o.keep_unknown_extensions;
        self.options.clean_narratives |= o.clean_narratives;
        if o.k.is_some() {
            self.options.k = o.k;
        }
        if !o.qi.is_empty() {
            self.options.qi = o.qi;
        }
    }

    /// A built-in profile by name.
    pub fn profile(name: &str) -> Result<Policy, PolicyError> {
        let text =
            profile_text(name).ok_or_else(|| PolicyError::UnknownProfile(name.to_owned()))?;
        Policy::parse(text, &format!("profile {name}"))
    }

    /// Parses a policy's TOML text. `source_name` (a file name) appears in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Policy, PolicyError> {
        Policy::parse_depth(text, source_name, 0)
    }

    fn parse_depth(text: &str, source_name: &str, depth: u32) -> Result<Policy, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| PolicyError::Syntax {
            source_name: source_name.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let invalid = |key: String, message: String| PolicyError::Invalid {
            source_name: source_name.to_owned(),
            key,
            message,
        };
        if file.name.trim().is_empty() {
            return Err(invalid("name".into(), "must not be empty".into()));
        }
        let mut hasher = Sha256::new();
        let mut policy = Policy {
            name: String::new(),
            description: String::new(),
            sha256: String::new(),
            options: Options::default(),
            columns: Rules::default(),
            fhir: Rules::default(),
        };
        let bases = file.extends.names();
        if !bases.is_empty() && depth >= 4 {
            return Err(invalid(
                "extends".into(),
                "profiles extend each other too deeply".into(),
            ));
        }
        for base in &bases {
            let base_text = profile_text(base).ok_or_else(|| {
                invalid("extends".into(), format!("unknown profile \"{base}\" (built-in: omop-cdm, fhir-r4, kr-health, safe-harbor)"))
            })?;
            let p = Policy::parse_depth(base_text, &format!("profile {base}"), depth + 1)?;
            hasher.update(p.sha256.as_bytes());
            hasher.update([0]);
            policy.merge(p);
        }
        hasher.update(text.as_bytes());
        policy.sha256 = data_encoding::HEXLOWER.encode(&hasher.finalize());
        file.name.trim().clone_into(&mut policy.name);
        policy.description = file.description;
        let o = file.options;
        if let Some(u) = o.unknown.as_deref() {
            if u != "drop" {
                return Err(invalid(
                    "options.unknown".into(),
                    format!("\"{u}\" is not allowed: unknown columns are always dropped (deny by default); keep a column by naming it"),
                ));
            }
        }
        if let Some(y) = o.age_reference_year {
            if !(1900..=2200).contains(&y) {
                return Err(invalid(
                    "options.age_reference_year".into(),
                    format!("{y} is not a plausible year"),
                ));
            }
            policy.options.age_reference_year = Some(y);
        }
        if let Some(c) = o.patient_column {
            policy.options.patient_column = Some(c);
        }
        if let Some(b) = o.keep_attachments {
            policy.options.keep_attachments = b;
        }
        if let Some(b) = o.keep_unknown_extensions {
            policy.options.keep_unknown_extensions = b;
        }
        if let Some(b) = o.clean_narratives {
            policy.options.clean_narratives = b;
        }
        if let Some(k) = o.k {
            if k < 2 {
                return Err(invalid("options.k".into(), "k must be at least 2".into()));
            }
            policy.options.k = Some(k);
        }
        if let Some(q) = o.qi {
            policy.options.qi = q;
        }
        for (key, value) in &file.columns {
            let k = key.trim().to_ascii_lowercase();
            if k.is_empty() || k.split('.').count() > 2 || k.split('.').any(str::is_empty) {
                return Err(invalid(
                    format!("columns.\"{key}\""),
                    "a column key is COLUMN or TABLE.COLUMN (with * as a wildcard)".into(),
                ));
            }
            let action =
                Action::parse(value).map_err(|m| invalid(format!("columns.\"{key}\""), m))?;
            policy.columns.insert(&k, action);
        }
        for (key, value) in &file.fhir {
            let k = key.trim();
            let ok = k.split('.').count() >= 2
                && k.split('.').all(|s| !s.is_empty())
                && k.split('.').skip(1).all(|s| !s.contains('*'));
            if !ok {
                return Err(invalid(
                    format!("fhir.\"{key}\""),
                    "a FHIR key is Type.element[.element…] or *.element[.element…]".into(),
                ));
            }
            let action = Action::parse(value).map_err(|m| invalid(format!("fhir.\"{key}\""), m))?;
            if matches!(
                action,
                Action::SuppressIfRare(_) | Action::Generalize(Generalize::Age5)
            ) {
                return Err(invalid(
                    format!("fhir.\"{key}\""),
                    format!("{action} is not available for FHIR paths"),
                ));
            }
            policy.fhir.insert_exact(k, action);
        }
        if let Some(pc) = &policy.options.patient_column {
            if let Some((_, a)) = policy.columns.column(None, pc) {
                if matches!(
                    a,
                    Action::Keep | Action::Text | Action::Generalize(_) | Action::ShiftDate
                ) {
                    return Err(invalid(
                        format!("columns.\"{pc}\""),
                        format!(
                            "the patient column must be dropped, pseudonymised or hashed, not {a}"
                        ),
                    ));
                }
            }
        }
        Ok(policy)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_parses() {
        for (name, _) in PROFILES {
            let p = Policy::profile(name).unwrap();
            assert_eq!(&p.name, name);
            assert_eq!(p.sha256.len(), 64);
        }
    }

    #[test]
    fn actions_parse_and_print_back() {
        for s in [
            "drop",
            "keep",
            "pseudonym(patient)",
            "shift_date",
            "generalize(age5)",
            "generalize(sido)",
            "suppress_if_rare(5)",
            "text",
            "hash_digits",
        ] {
            assert_eq!(Action::parse(s).unwrap().to_string(), s);
        }
        assert!(Action::parse("suppress_if_rare(1)").is_err());
        assert!(Action::parse("pseudonym(cat)").unwrap_err().contains("cat"));
    }

    #[test]
    fn errors_name_the_offending_key() {
        let e = Policy::parse("name = \"x\"\n[columns]\nbirth = \"shiftdate\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("columns.\"birth\"") && e.contains("unknown action"),
            "{e}"
        );
        let e = Policy::parse("name = \"x\"\n[options]\nunknown = \"keep\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("options.unknown"), "{e}");
        let e = Policy::parse("name = \"x\"\n[option]\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.toml") && e.contains("option"), "{e}");
        let e = Policy::parse("name = \"x\"\nextends = \"nope\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("extends"), "{e}");
    }

    #[test]
    fn specific_rules_beat_general_ones() {
        let p = Policy::parse(
            "name = \"x\"\n[columns]\n\"*_date\" = \"shift_date\"\n\"person.birth_date\" = \"generalize(year)\"\n\"*name*\" = \"drop\"\n\"visit_date\" = \"keep\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(
            p.columns.column(Some("person"), "birth_date").unwrap().1,
            Action::Generalize(Generalize::Year)
        );
        assert_eq!(
            p.columns.column(Some("visit"), "birth_date").unwrap().1,
            Action::ShiftDate
        );
        assert_eq!(
            p.columns.column(None, "visit_date").unwrap().1,
            Action::Keep
        );
        assert_eq!(
            p.columns.column(None, "Patient_Name").unwrap().1,
            Action::Drop
        );
        assert!(p.columns.column(None, "weight").is_none());
    }

    #[test]
    fn fhir_paths_match_exact_then_by_tail() {
        let p = Policy::parse("name = \"x\"\n[fhir]\n\"*.note\" = \"text\"\n\"Patient.name\" = \"drop\"\n\"*.code\" = \"keep\"\n", "t").unwrap();
        assert_eq!(p.fhir.path("Patient.name").unwrap().1, Action::Drop);
        assert_eq!(p.fhir.path("Observation.note").unwrap().1, Action::Text);
        assert_eq!(
            p.fhir.path("Observation.component.code").unwrap().1,
            Action::Keep
        );
        assert!(p.fhir.path("Observation.name").is_none());
    }

    #[test]
    fn extending_a_profile_overrides_its_rules() {
        let p = Policy::parse("name = \"mine\"\nextends = \"omop-cdm\"\n[columns]\n\"person.year_of_birth\" = \"drop\"\n", "t").unwrap();
        assert_eq!(
            p.columns.column(Some("person"), "year_of_birth").unwrap().1,
            Action::Drop
        );
        assert_eq!(
            p.columns
                .column(Some("measurement"), "person_id")
                .unwrap()
                .1,
            Action::Pseudonym(Domain::Patient)
        );
        assert_ne!(p.sha256, Policy::profile("omop-cdm").unwrap().sha256);
    }
}
