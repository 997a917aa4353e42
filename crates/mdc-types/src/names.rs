//! Names of catalog objects, roles, grant levels and dates, parsed at the boundary.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::FieldError;

/// A dataset or project name: 1–64 of `a-z 0-9 - _`, starting with a letter or digit.
/// Names appear in paths under the data root, so nothing else is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn parse(field: &str, s: &str) -> Result<Slug, FieldError> {
        let ok_len = (1..=64).contains(&s.len());
        let ok_first = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok_len && ok_first && ok_chars {
            Ok(Slug(s.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                "expected 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user name: 1–64 of `A-Z a-z 0-9 . _ - @`, optionally prefixed `local:` for an
/// operating-system account (DESIGN §9).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    pub fn parse(field: &str, s: &str) -> Result<UserName, FieldError> {
        let body = s.strip_prefix("local:").unwrap_or(s);
        let ok = (1..=64).contains(&body.len())
            && body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
        if ok {
            Ok(UserName(s.to_owned()))
        } else {
            Err(FieldError::new(field, "expected 1-64 characters of letters, digits, '.', '_', '-' or '@' (optionally prefixed 'local:')"))
        }
    }
    pub fn local(os_user: &str) -> Result<UserName, FieldError> {
        UserName::parse("os user", &format!("local:{os_user}"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Roles of DESIGN §6. A user may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Steward,
    Researcher,
    Reviewer,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Steward,
        Role::Researcher,
        Role::Reviewer,
        Role::Auditor,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Steward => "steward",
            Role::Researcher => "researcher",
            Role::Reviewer => "reviewer",
            Role::Auditor => "auditor",
        }
    }
    /// Parses a comma-separated list, rejecting unknown roles and empty lists.
    pub fn parse_list(field: &str, s: &str) -> Result<Vec<Role>, FieldError> {
        let mut roles = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let role = part.parse().map_err(|()| {
                FieldError::new(
                    field,
                    "unknown role (expected admin, steward, researcher, reviewer or auditor)",
                )
            })?;
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        if roles.is_empty() {
            return Err(FieldError::new(field, "at least one role is required"));
        }
        roles.sort();
        Ok(roles)
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Role, ()> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or(())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a grant lets a project see (DESIGN §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantLevel {
    /// Aggregates only, after disclosure control.
    Aggregate,
    /// Row-level results, still subject to k-anonymity.
    Record,
}

impl GrantLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantLevel::Aggregate => "aggregate",
            GrantLevel::Record => "record",
        }
    }
    pub fn parse(field: &str, s: &str) -> Result<GrantLevel, FieldError> {
        match s {
            "aggregate" => Ok(GrantLevel::Aggregate),
            "record" => Ok(GrantLevel::Record),
            _ => Err(FieldError::new(field, "expected 'aggregate' or 'record'")),
        }
    }
}

/// Parses an ISO calendar date (`YYYY-MM-DD`); impossible dates such as
/// 2025-02-30 are rejected.
pub fn parse_date(field: &str, s: &str) -> Result<NaiveDate, FieldError> {
    let s = s.trim();
    if s.len() != 10 {
        return Err(FieldError::new(field, "expected a date as YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| FieldError::new(field, "expected a real calendar date as YYYY-MM-DD"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slugs_reject_path_characters_and_upper_case() {
        assert!(Slug::parse("name", "cxr-2024_v1").is_ok());
        for bad in ["", "../x", "a/b", "Upper", "-lead", &"x".repeat(65)] {
            assert!(
                Slug::parse("name", bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn roles_parse_as_a_sorted_set_and_reject_unknown_ones() {
        assert_eq!(
            Role::parse_list("roles", "steward, admin,steward").unwrap(),
            vec![Role::Admin, Role::Steward]
        );
        let err = Role::parse_list("roles", "admin,superuser").unwrap_err();
        assert_eq!(err.field, "roles");
        assert!(!err.message.contains("superuser"));
        assert!(Role::parse_list("roles", " , ").is_err());
    }

    #[test]
    fn dates_reject_impossible_and_malformed_values() {
        assert!(parse_date("d", "2024-02-29").is_ok());
        for bad in [
            "2025-02-30",
            "2025-13-01",
            "2025-1-1",
            "yesterday",
            "2025-01-01T00:00",
        ] {
            assert!(parse_date("d", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_names_allow_local_prefix_only_once() {
        assert!(UserName::parse("u", "local:root").is_ok());
        assert!(UserName::parse("u", "kim.minjun@snuh").is_ok());
        assert!(UserName::parse("u", "local:local:x").is_err());
        assert!(UserName::parse("u", "a b").is_err());
    }
}
