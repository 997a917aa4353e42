//! Applying a policy to columns.
//!
//! The caller (the table driver in `mdc-table`) resolves each row's patient
//! once — pseudonym, date offset, record number — and hands the engine whole
//! columns, so that per-value work is a cache hit or a little arithmetic.
//! Nothing here logs or returns a value it was given: statistics are counts.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use mdc_types::SourceId;
use sha2::Sha256;

use super::generalize::{
    age_band, korean_sido, korean_sigungu, parse_number, pooled_birth_year, postal_prefix,
};
use super::policy::{Action, Generalize, Policy};
use super::value::{
    civil_from_days, days_from_civil, parse_date, parse_datetime, shift_date_text, year_of, Column,
    ColumnKind, MICROS_PER_DAY,
};
use crate::pseudonym::{Domain, PseudonymError, Pseudonymizer, Token};

/// Free text goes through this (the free-text PHI engine when it is built in).
pub trait TextScrubber: Send + Sync {
    /// The scrubbed text, or `None` if it could not be processed (then the
    /// value is dropped).
    fn scrub(&self, text: &str, patient: Option<&SourceId>) -> Option<String>;
    fn name(&self) -> &'static str;
}

/// One patient as the engines see it: pseudonym, date offset, record number.
#[derive(Clone)]
pub struct PatientInfo {
    pub token: Token,
    pub offset_days: i32,
    pub source: SourceId,
}

impl std::fmt::Debug for PatientInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PatientInfo({}, [redacted])", self.token.text.as_str())
    }
}

impl PatientInfo {
    pub fn resolve(p: &dyn Pseudonymizer, source: &str) -> Result<PatientInfo, PseudonymError> {
        let id = SourceId::new(source.to_owned());
        Ok(PatientInfo {
            token: p.token(Domain::Patient, &id)?,
            offset_days: p.date_shift_days(&id)?,
            source: id,
        })
    }
}

/// A keyed hash for `hash_digits`: HMAC-SHA256 under a sub-key that the
/// pseudonymiser derives (so it follows the root's key and mode) with the
/// inner and outer pads computed once. Two SHA-256 blocks per value.
#[derive(Clone)]
pub struct DigitHasher {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for DigitHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigitHasher([key])")
    }
}

impl DigitHasher {
    pub fn new(p: &dyn Pseudonymizer) -> Result<DigitHasher, PseudonymError> {
        let sub = p.token(
            Domain::Record,
            &SourceId::new("mdc:hash_digits:v1".to_owned()),
        )?;
        let mut key = sub.text.as_str().as_bytes().to_vec();
        key.extend_from_slice(&sub.int.to_be_bytes());
        let mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&key).map_err(|_| PseudonymError::EmptyId)?;
        Ok(DigitHasher { mac })
    }

    fn digest(&self, bytes: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(bytes);
        m.finalize().into_bytes().into()
    }

    /// A positive int64 for an integer key.
    pub fn int(&self, v: i64) -> i64 {
        let h = self.digest(&v.to_be_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[..8]);
        (u64::from_be_bytes(b) & 0x7fff_ffff_ffff_ffff) as i64
    }

    /// The digits of `s` replaced by as many keyed digits; other characters kept.
    pub fn digits(&self, s: &str) -> String {
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return s.to_owned();
        }
        let h = self.digest(digits.as_bytes());
        let mut out_digits = Vec::with_capacity(digits.len());
        let mut i = 0usize;
        while out_digits.len() < digits.len() {
            let byte = h[i % 32].wrapping_add((i / 32) as u8);
            out_digits.push(char::from(b'0' + byte % 10));
            i += 1;
        }
        let mut it = out_digits.into_iter();
        s.chars()
            .map(|c| {
                if c.is_ascii_digit() {
                    it.next().unwrap_or('0')
                } else {
                    c
                }
            })
            .collect()
    }
}

/// Counts of what an action did to one column.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ColumnStats {
    /// Values replaced by something else.
    pub changed: u64,
    /// Values removed (null) by the action: suppressed, unparseable, no patient.
    pub nulled: u64,
    /// Of `nulled`: values that could not be parsed for the action.
    pub unparseable: u64,
    /// Of `nulled`: dates in rows without a patient (no offset to apply).
    pub no_patient: u64,
    /// Of `nulled`: foreign keys to a record absent from (or rejected in) its table.
    pub dangling: u64,
}

impl ColumnStats {
    pub fn add(&mut self, o: &ColumnStats) {
        self.changed += o.changed;
        self.nulled += o.nulled;
        self.unparseable += o.unparseable;
        self.no_patient += o.no_patient;
        self.dangling += o.dangling;
    }
}

const CACHE_LIMIT: usize = 1 << 20;

/// Everything an action may use besides the column.
pub struct Ctx<'a> {
    pub p: &'a dyn Pseudonymizer,
    pub hasher: &'a DigitHasher,
    pub text: Option<&'a dyn TextScrubber>,
    pub reference_year: i32,
    /// Per column name: value frequencies over the whole table, for `suppress_if_rare`.
    pub frequencies: HashMap<String, HashMap<String, u64>>,
    int_cache: HashMap<(Domain, i64), i64>,
    text_cache: HashMap<(Domain, String), String>,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ctx([redacted])")
    }
}

impl<'a> Ctx<'a> {
    pub fn new(
        p: &'a dyn Pseudonymizer,
        hasher: &'a DigitHasher,
        text: Option<&'a dyn TextScrubber>,
        reference_year: i32,
    ) -> Ctx<'a> {
        Ctx {
            p,
            hasher,
            text,
            reference_year,
            frequencies: HashMap::new(),
            int_cache: HashMap::new(),
            text_cache: HashMap::new(),
        }
    }

    fn int_token(&mut self, d: Domain, v: i64) -> Result<i64, PseudonymError> {
        if let Some(t) = self.int_cache.get(&(d, v)) {
            return Ok(*t);
        }
        let t = self.p.token(d, &SourceId::new(v.to_string()))?.int;
        if self.int_cache.len() >= CACHE_LIMIT {
            self.int_cache.clear();
        }
        self.int_cache.insert((d, v), t);
        Ok(t)
    }

    fn text_token(&mut self, d: Domain, v: &str) -> Result<String, PseudonymError> {
        let key = (d, v.to_owned());
        if let Some(t) = self.text_cache.get(&key) {
            return Ok(t.clone());
        }
        let t = self
            .p
            .token(d, &SourceId::new(v.to_owned()))?
            .text
            .as_str()
            .to_owned();
        if self.text_cache.len() >= CACHE_LIMIT {
            self.text_cache.clear();
        }
        self.text_cache.insert(key, t.clone());
        Ok(t)
    }
}

/// Applies `action` to one column. `patients[i]` is row i's patient, if
/// known; `patient_key` marks the column that identifies the row's patient,
/// whose pseudonym then comes from `patients` (for OMOP `person_id` this is
/// the pseudonym of the record number, not of the integer).
pub fn apply(
    action: Action,
    column_name: &str,
    column: Column,
    patients: &[Option<&PatientInfo>],
    patient_key: bool,
    ctx: &mut Ctx<'_>,
    stats: &mut ColumnStats,
) -> Result<Column, PseudonymError> {
    let n = column.len();
    let patient = |i: usize| patients.get(i).copied().flatten();
    Ok(match action {
        Action::Keep | Action::Drop => column,
        Action::Pseudonym(domain) => match column {
            Column::Int(v) => {
                let mut out = Vec::with_capacity(n);
                for (i, x) in v.into_iter().enumerate() {
                    out.push(match x {
                        None => None,
                        Some(_) if patient_key && domain == Domain::Patient => match patient(i) {
                            Some(p) => Some(p.token.int),
                            None => {
                                stats.nulled += 1;
                                stats.no_patient += 1;
                                None
                            }
                        },
                        Some(x) => Some(ctx.int_token(domain, x)?),
                    });
                }
                stats.changed += out.iter().flatten().count() as u64;
                Column::Int(out)
            }
            other => {
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    let Some(s) = other.text_at(i) else {
                        out.push(None);
                        continue;
                    };
                    if patient_key && domain == Domain::Patient {
                        if let Some(p) = patient(i) {
                            out.push(Some(p.token.text.as_str().to_owned()));
                            continue;
                        }
                    }
                    match ctx.text_token(domain, &s) {
                        Ok(t) => out.push(Some(t)),
                        Err(PseudonymError::EmptyId) => {
                            stats.nulled += 1;
                            out.push(None);
                        }
                        Err(e) => return Err(e),
                    }
                }
                stats.changed += out.iter().flatten().count() as u64;
                Column::Str(out)
            }
        },
        Action::HashDigits => match column {
            Column::Int(v) => {
                let out: Vec<Option<i64>> = v
                    .into_iter()
                    .map(|x| x.map(|x| ctx.hasher.int(x)))
                    .collect();
                stats.changed += out.iter().flatten().count() as u64;
                Column::Int(out)
            }
            other => {
                let out: Vec<Option<String>> = (0..n)
                    .map(|i| other.text_at(i).map(|s| ctx.hasher.digits(&s)))
                    .collect();
                stats.changed += out.iter().flatten().count() as u64;
                Column::Str(out)
            }
        },
        Action::ShiftDate => shift(column, patients, stats),
        Action::Generalize(g) => generalize(g, column, ctx.reference_year, stats),
        Action::SuppressIfRare(k) => {
            let freq = ctx.frequencies.get(column_name);
            let keep: Vec<bool> = (0..n)
                .map(|i| match column.text_at(i) {
                    None => true,
                    Some(v) => freq
                        .and_then(|f| f.get(&v))
                        .is_some_and(|c| *c >= u64::from(k)),
                })
                .collect();
            let suppressed = (0..n).filter(|i| !keep[*i] && !column.is_null(*i)).count() as u64;
            stats.nulled += suppressed;
            null_where(column, &keep)
        }
        Action::Text => {
            let Some(engine) = ctx.text else {
                // The caller drops the column when no engine is present.
                return Ok(column);
            };
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let Some(s) = column.text_at(i) else {
                    out.push(None);
                    continue;
                };
                let src = patient(i).map(|p| &p.source);
                match engine.scrub(&s, src) {
                    Some(t) => {
                        if t != s {
                            stats.changed += 1;
                        }
                        out.push(Some(t));
                    }
                    None => {
                        stats.nulled += 1;
                        stats.unparseable += 1;
                        out.push(None);
                    }
                }
            }
            Column::Str(out)
        }
    })
}

fn null_where(column: Column, keep: &[bool]) -> Column {
    fn f<T>(v: Vec<Option<T>>, keep: &[bool]) -> Vec<Option<T>> {
        v.into_iter()
            .zip(keep)
            .map(|(x, k)| if *k { x } else { None })
            .collect()
    }
    match column {
        Column::Int(v) => Column::Int(f(v, keep)),
        Column::Float(v) => Column::Float(f(v, keep)),
        Column::Bool(v) => Column::Bool(f(v, keep)),
        Column::Str(v) => Column::Str(f(v, keep)),
        Column::Date(v) => Column::Date(f(v, keep)),
        Column::DateTime(v) => Column::DateTime(f(v, keep)),
    }
}

fn shift(column: Column, patients: &[Option<&PatientInfo>], stats: &mut ColumnStats) -> Column {
    let off = |i: usize| patients.get(i).copied().flatten().map(|p| p.offset_days);
    let miss = |stats: &mut ColumnStats| {
        stats.nulled += 1;
        stats.no_patient += 1;
    };
    match column {
        Column::Date(v) => Column::Date(
            v.into_iter()
                .enumerate()
                .map(|(i, x)| {
                    let x = x?;
                    match off(i) {
                        Some(o) => {
                            stats.changed += 1;
                            Some(x + o)
                        }
                        None => {
                            miss(stats);
                            None
                        }
                    }
                })
                .collect(),
        ),
        Column::DateTime(v) => Column::DateTime(
            v.into_iter()
                .enumerate()
                .map(|(i, x)| {
                    let x = x?;
                    match off(i) {
                        Some(o) => {
                            stats.changed += 1;
                            Some(x + i64::from(o) * MICROS_PER_DAY)
                        }
                        None => {
                            miss(stats);
                            None
                        }
                    }
                })
                .collect(),
        ),
        Column::Str(v) => Column::Str(
            v.into_iter()
                .enumerate()
                .map(|(i, x)| {
                    let x = x?;
                    let Some(o) = off(i) else {
                        miss(stats);
                        return None;
                    };
                    if let Some(s) = shift_date_text(&x, o) {
                        stats.changed += 1;
                        Some(s)
                    } else {
                        stats.nulled += 1;
                        stats.unparseable += 1;
                        None
                    }
                })
                .collect(),
        ),
        // Numbers and flags are not dates: removed, and counted.
        other => {
            let n = other.len();
            let nonnull = (0..n).filter(|i| !other.is_null(*i)).count() as u64;
            stats.nulled += nonnull;
            stats.unparseable += nonnull;
            Column::Str(vec![None; n])
        }
    }
}

fn generalize(
    g: Generalize,
    column: Column,
    reference_year: i32,
    stats: &mut ColumnStats,
) -> Column {
    let n = column.len();
    let ry = i64::from(reference_year);
    match (g, column) {
        (Generalize::Year | Generalize::BirthYear, Column::Int(v)) => Column::Int(
            v.into_iter()
                .map(|x| {
                    let y = x?;
                    let out = if g == Generalize::BirthYear {
                        pooled_birth_year(y, ry)
                    } else {
                        y
                    };
                    if out != y {
                        stats.changed += 1;
                    }
                    Some(out)
                })
                .collect(),
        ),
        (Generalize::Month | Generalize::Year | Generalize::BirthYear, Column::Date(v)) => {
            Column::Date(
                v.into_iter()
                    .map(|x| {
                        let d = x?;
                        stats.changed += 1;
                        Some(coarsen_day(g, d, reference_year))
                    })
                    .collect(),
            )
        }
        (Generalize::Month | Generalize::Year | Generalize::BirthYear, Column::DateTime(v)) => {
            Column::DateTime(
                v.into_iter()
                    .map(|x| {
                        let t = x?;
                        stats.changed += 1;
                        let d = t.div_euclid(MICROS_PER_DAY) as i32;
                        Some(i64::from(coarsen_day(g, d, reference_year)) * MICROS_PER_DAY)
                    })
                    .collect(),
            )
        }
        (g, column) => {
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let Some(s) = column.text_at(i) else {
                    out.push(None);
                    continue;
                };
                let r = generalize_text(g, &s, reference_year);
                match r {
                    Some(r) => {
                        if r != s {
                            stats.changed += 1;
                        }
                        out.push(Some(r));
                    }
                    None => {
                        stats.nulled += 1;
                        stats.unparseable += 1;
                        out.push(None);
                    }
                }
            }
            Column::Str(out)
        }
    }
}

fn coarsen_day(g: Generalize, d: i32, reference_year: i32) -> i32 {
    let (y, m, _) = civil_from_days(d);
    match g {
        Generalize::Month => days_from_civil(y, m, 1),
        Generalize::BirthYear => days_from_civil(y.max(reference_year - 90), 1, 1),
        _ => days_from_civil(y, 1, 1),
    }
}

/// Generalises one value written as text; `None` if it does not parse.
pub fn generalize_text(g: Generalize, s: &str, reference_year: i32) -> Option<String> {
    match g {
        Generalize::Age5 => parse_number(s).map(|a| age_band(a.floor() as i64)),
        Generalize::Month => {
            let d = parse_date(s)
                .or_else(|| parse_datetime(s).map(|t| t.div_euclid(MICROS_PER_DAY) as i32));
            match d {
                Some(d) => {
                    let (y, m, _) = civil_from_days(d);
                    Some(format!("{y:04}-{m:02}"))
                }
                None => partial_year(s).map(|(y, m)| match m {
                    Some(m) => format!("{y:04}-{m:02}"),
                    None => format!("{y:04}"),
                }),
            }
        }
        Generalize::Year | Generalize::BirthYear => {
            let y = parse_date(s)
                .or_else(|| parse_datetime(s).map(|t| t.div_euclid(MICROS_PER_DAY) as i32))
                .map(year_of)
                .or_else(|| partial_year(s).map(|(y, _)| y))?;
            let y = if g == Generalize::BirthYear {
                y.max(reference_year - 90)
            } else {
                y
            };
            Some(format!("{y:04}"))
        }
        Generalize::Sido => korean_sido(s).map(str::to_owned),
        Generalize::Sigungu => korean_sigungu(s),
        Generalize::Postal3 => postal_prefix(s, 3),
    }
}

/// `YYYY` or `YYYY-MM` (FHIR partial dates), or a bare year number.
fn partial_year(s: &str) -> Option<(i32, Option<u32>)> {
    let s = s.trim();
    if !s.is_ascii() {
        return None;
    }
    let y: i32 = s.get(0..4)?.parse().ok()?;
    if !(1000..=9999).contains(&y) {
        return None;
    }
    match s.len() {
        4 => Some((y, None)),
        7 if &s[4..5] == "-" => s[5..7]
            .parse()
            .ok()
            .filter(|m| (1..=12).contains(m))
            .map(|m| (y, Some(m))),
        _ => None,
    }
}

/// The type of a column after `action`, or `None` when it is dropped.
pub fn output_kind(action: Action, input: ColumnKind) -> Option<ColumnKind> {
    use ColumnKind as K;
    Some(match (action, input) {
        (Action::Drop, _) => return None,
        (Action::Keep | Action::SuppressIfRare(_), k) => k,
        (Action::Pseudonym(_) | Action::HashDigits, K::Int) => K::Int,
        (Action::ShiftDate, k @ (K::Date | K::DateTime)) => k,
        (
            Action::Generalize(Generalize::Year | Generalize::BirthYear),
            k @ (K::Int | K::Date | K::DateTime),
        ) => k,
        (Action::Generalize(Generalize::Month), k @ (K::Date | K::DateTime)) => k,
        _ => K::Str,
    })
}

/// How a policy treats each column of a table, decided before reading rows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ColumnPlan {
    pub name: String,
    /// The action, as written in policies.
    pub action: String,
    #[serde(skip)]
    pub act: Action,
    /// The policy key that matched (`None`: no rule, dropped by default).
    pub rule: Option<String>,
}

impl ColumnPlan {
    pub fn unknown(&self) -> bool {
        self.rule.is_none()
    }
}

/// Plans every column of `table`: the matching rule, or drop (deny by default).
/// `text` actions become `drop` when `text_available` is false.
pub fn plan_table(
    policy: &Policy,
    table: Option<&str>,
    columns: &[String],
    text_available: bool,
) -> Vec<ColumnPlan> {
    columns
        .iter()
        .map(|c| {
            let (rule, act) = match policy.columns.column(table, c) {
                Some((k, a)) => (Some(k), a),
                None => (None, Action::Drop),
            };
            let act = if act == Action::Text && !text_available {
                Action::Drop
            } else {
                act
            };
            let action = match (rule.as_deref(), act) {
                (None, _) => "drop (not in policy)".to_owned(),
                (Some(_), Action::Drop)
                    if policy
                        .columns
                        .column(table, c)
                        .is_some_and(|(_, a)| a == Action::Text) =>
                {
                    "drop (text engine not available)".to_owned()
                }
                (_, a) => a.to_string(),
            };
            ColumnPlan {
                name: c.clone(),
                action,
                act,
                rule,
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pseudonym::{KeyedPseudonymizer, PseudonymKey};

    fn keyed() -> KeyedPseudonymizer {
        KeyedPseudonymizer::new(PseudonymKey::from_bytes([3; 32]), 180)
    }

    fn run(
        action: &str,
        col: Column,
        patients: &[Option<&PatientInfo>],
        key: bool,
    ) -> (Column, ColumnStats) {
        let p = keyed();
        let h = DigitHasher::new(&p).unwrap();
        let mut ctx = Ctx::new(&p, &h, None, 2025);
        let mut stats = ColumnStats::default();
        let out = apply(
            Action::parse(action).unwrap(),
            "c",
            col,
            patients,
            key,
            &mut ctx,
            &mut stats,
        )
        .unwrap();
        (out, stats)
    }

    #[test]
    fn patient_keys_take_the_pseudonym_of_the_record_number() {
        let p = keyed();
        let a = PatientInfo::resolve(&p, "00012345").unwrap();
        let (out, stats) = run(
            "pseudonym(patient)",
            Column::Int(vec![Some(1), None, Some(2)]),
            &[Some(&a), None, None],
            true,
        );
        assert_eq!(out, Column::Int(vec![Some(a.token.int), None, None]));
        assert_eq!(stats.no_patient, 1);
        let (out, _) = run(
            "pseudonym(patient)",
            Column::Str(vec![Some("00012345".into())]),
            &[None],
            false,
        );
        assert_eq!(
            out,
            Column::Str(vec![Some(a.token.text.as_str().to_owned())])
        );
    }

    #[test]
    fn other_integer_keys_map_consistently() {
        let (a, _) = run(
            "pseudonym(provider)",
            Column::Int(vec![Some(7), Some(8), Some(7)]),
            &[None, None, None],
            false,
        );
        let Column::Int(v) = a else { panic!() };
        assert_eq!(v[0], v[2]);
        assert_ne!(v[0], v[1]);
        assert!(v.iter().flatten().all(|x| *x >= 0));
        let (h, _) = run(
            "hash_digits",
            Column::Int(vec![Some(7), Some(7)]),
            &[None, None],
            false,
        );
        let Column::Int(h) = h else { panic!() };
        assert_eq!(h[0], h[1]);
        assert_ne!(h[0], v[0]);
    }

    #[test]
    fn hashed_digits_keep_the_format() {
        let p = keyed();
        let h = DigitHasher::new(&p).unwrap();
        let out = h.digits("010-1234-5678");
        assert_eq!(out.len(), 13);
        assert_eq!(&out[3..4], "-");
        assert_ne!(out, "010-1234-5678");
        assert_eq!(out, h.digits("010-1234-5678"));
    }

    #[test]
    fn dates_shift_by_the_row_patients_offset() {
        let p = keyed();
        let a = PatientInfo::resolve(&p, "A").unwrap();
        let d0 = days_from_civil(2024, 1, 1);
        let (out, _) = run(
            "shift_date",
            Column::Date(vec![Some(d0), Some(d0 + 10)]),
            &[Some(&a), Some(&a)],
            false,
        );
        assert_eq!(
            out,
            Column::Date(vec![
                Some(d0 + a.offset_days),
                Some(d0 + 10 + a.offset_days)
            ])
        );
        let (out, st) = run(
            "shift_date",
            Column::Str(vec![Some("2024-01-01".into()), Some("bad".into())]),
            &[Some(&a), Some(&a)],
            false,
        );
        assert_eq!(
            out,
            Column::Str(vec![shift_date_text("2024-01-01", a.offset_days), None])
        );
        assert_eq!(st.unparseable, 1);
    }

    #[test]
    fn generalisations_follow_their_hierarchies() {
        let (out, _) = run(
            "generalize(age5)",
            Column::Int(vec![Some(47), Some(93)]),
            &[None, None],
            false,
        );
        assert_eq!(
            out,
            Column::Str(vec![Some("45-49".into()), Some("90+".into())])
        );
        let (out, _) = run(
            "generalize(birth_year)",
            Column::Int(vec![Some(1921), Some(1980)]),
            &[None, None],
            false,
        );
        assert_eq!(out, Column::Int(vec![Some(1935), Some(1980)]));
        let (out, _) = run(
            "generalize(month)",
            Column::Date(vec![Some(days_from_civil(2024, 5, 17))]),
            &[None],
            false,
        );
        assert_eq!(out, Column::Date(vec![Some(days_from_civil(2024, 5, 1))]));
        let (out, _) = run(
            "generalize(year)",
            Column::Str(vec![Some("2024-05-17".into())]),
            &[None],
            false,
        );
        assert_eq!(out, Column::Str(vec![Some("2024".into())]));
        let (out, _) = run(
            "generalize(sido)",
            Column::Str(vec![Some("부산광역시 해운대구 센텀로 1".into())]),
            &[None],
            false,
        );
        assert_eq!(out, Column::Str(vec![Some("부산광역시".into())]));
        let (out, _) = run(
            "generalize(postal3)",
            Column::Str(vec![Some("48058".into())]),
            &[None],
            false,
        );
        assert_eq!(out, Column::Str(vec![Some("480".into())]));
    }

    #[test]
    fn rare_values_are_suppressed() {
        let p = keyed();
        let h = DigitHasher::new(&p).unwrap();
        let mut freq = HashMap::new();
        freq.insert(
            "c".to_owned(),
            HashMap::from([("a".to_owned(), 5u64), ("b".to_owned(), 1)]),
        );
        let mut ctx = Ctx::new(&p, &h, None, 2025);
        ctx.frequencies = freq;
        let mut st = ColumnStats::default();
        let out = apply(
            Action::SuppressIfRare(5),
            "c",
            Column::Str(vec![Some("a".into()), Some("b".into())]),
            &[None, None],
            false,
            &mut ctx,
            &mut st,
        )
        .unwrap();
        assert_eq!(out, Column::Str(vec![Some("a".into()), None]));
        assert_eq!(st.nulled, 1);
    }

    #[test]
    fn unknown_columns_are_dropped_and_text_falls_back_to_drop() {
        let p = Policy::profile("kr-health").unwrap();
        let plan = plan_table(
            &p,
            None,
            &["patient_id".into(), "shoe_size".into(), "memo".into()],
            false,
        );
        assert_eq!(plan[0].act, Action::Pseudonym(Domain::Patient));
        assert!(plan[1].unknown() && plan[1].act == Action::Drop);
        assert_eq!(plan[2].action, "drop (text engine not available)");
    }
}
