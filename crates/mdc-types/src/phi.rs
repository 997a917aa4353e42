//! Types that carry protected health information.
//!
//! `Phi<T>` wraps any identifier; its `Debug` prints `[redacted]` and it has no
//! `Display`, so formatting it into a log line or an error cannot leak the value.
//! Code that really needs the value calls `expose()`, which is easy to grep for.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A value that must never be logged or echoed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phi<T>(T);

impl<T> Phi<T> {
    pub fn new(value: T) -> Self {
        Phi(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Phi<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A patient's (or other entity's) source identifier, such as a hospital record number.
pub type SourceId = Phi<String>;

/// A pseudonym's text form (DESIGN §4). Pseudonyms are not identifiers and may be
/// shown, but only the pseudonymiser makes them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pseudonym(String);

impl Pseudonym {
    /// Wraps a token that the pseudonymiser (or the vault) produced.
    pub fn from_token(token: String) -> Self {
        Pseudonym(token)
    }
    /// Parses a pseudonym supplied from outside: 16 characters of RFC 4648 base32.
    pub fn parse(s: &str) -> Option<Pseudonym> {
        let ok = s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
        ok.then(|| Pseudonym(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The PHI vocabulary of DESIGN §5, used by every engine and report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PhiType {
    Name,
    Rrn,
    Phone,
    Email,
    Address,
    Date,
    Age,
    Mrn,
    Id,
    Url,
    Ip,
}

impl PhiType {
    pub fn as_str(self) -> &'static str {
        match self {
            PhiType::Name => "NAME",
            PhiType::Rrn => "RRN",
            PhiType::Phone => "PHONE",
            PhiType::Email => "EMAIL",
            PhiType::Address => "ADDRESS",
            PhiType::Date => "DATE",
            PhiType::Age => "AGE",
            PhiType::Mrn => "MRN",
            PhiType::Id => "ID",
            PhiType::Url => "URL",
            PhiType::Ip => "IP",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn phi_debug_never_shows_the_value() {
        let id = SourceId::new("12345678".to_owned());
        assert_eq!(format!("{id:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&id)), "Some([redacted])");
    }

    #[test]
    fn pseudonyms_from_outside_must_be_base32() {
        assert!(Pseudonym::parse("ABCDEFGHIJKLMNO2").is_some());
        assert!(Pseudonym::parse("abcdefghijklmno2").is_none());
        assert!(Pseudonym::parse("ABCDEFGHIJKLMNO1").is_none());
        assert!(Pseudonym::parse("SHORT").is_none());
    }
}
