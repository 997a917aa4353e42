//! Free-text PHI de-identification for Korean and English clinical notes.
//!
//! Notes are where identifiers hide, and foreign tools do not read Korean, so
//! this engine knows Korean names with their honorifics and particles, Korean
//! registration, phone and address formats, and the English forms as well.
//! It is sans-IO and deterministic: [`Detector::detect`] turns a note into
//! [`Span`]s (offsets in Unicode code points of the input, as Python and
//! Presidio count them), and [`transform`] replaces them by tags, surrogates
//! or pseudonyms (DESIGN §4, §5) using only a [`Pseudonymizer`].
//!
//! Speed comes from scanning each note once: every rule is one pattern of a
//! single multi-pattern lazy DFA (`patterns`), and a rule runs its own check
//! (boundaries, calendar, surname lists) only on the rare matches. Names found
//! with strong context are then looked for again throughout the same note
//! (an Aho-Corasick pass), and so are the patient's own identifiers when the
//! caller passes them ([`Known`]), which is what catches a bare `김민준은` or
//! `Smith` that no local context gives away.

pub mod corpus;
mod dates;
pub mod eval;
mod known;
mod lexicon;
mod patterns;
mod transform;

use std::collections::HashSet;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use mdc_types::PhiType;
use regex_automata::meta;
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input};

pub use known::Known;
pub use transform::{transform, Mode, TransformContext};

use lexicon::{
    EN_STOP_WORDS, KO_BAD_FINAL, KO_COMPOUND_SURNAMES, KO_GIVEN_SYLLABLES, KO_HONORIFICS,
    KO_PARTICLES, KO_STOPWORDS, KO_SURNAMES,
};
use patterns::Rule;

/// Which language's rules to run. `Auto` runs all of them: Korean notes are
/// full of English, and the rules of one language rarely fire on the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Auto,
    Ko,
    En,
}

/// One detected identifier. `start`/`end` count Unicode code points of the
/// input; `bytes` is the same range in UTF-8 bytes, for slicing in Rust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub bytes: std::ops::Range<usize>,
    pub ty: PhiType,
    /// The rule that found it (see `--explain`); not PHI.
    pub rule: &'static str,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    #[error("cannot build the detector's patterns: {0}")]
    Build(String),
    #[error("this mode needs the data root's key (a pseudonymiser)")]
    NeedsKey,
    #[error("pseudonymiser: {0}")]
    Pseudonym(#[from] crate::PseudonymError),
}

/// Options of one detection.
#[derive(Debug, Clone, Copy, Default)]
pub struct DetectOptions<'a> {
    pub lang: Lang,
    /// The patient's own identifiers from the structured record.
    pub known: Option<&'a Known>,
}

/// A raw span in bytes, before merging.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Raw {
    pub start: usize,
    pub end: usize,
    pub ty: PhiType,
    pub rule: &'static str,
}

struct Compiled {
    re: meta::Regex,
    rules: Vec<Rule>,
}

/// The compiled detector. Build it once ([`Detector::new`], a few tens of
/// milliseconds) and share it: `detect` takes `&self` and is thread-safe.
pub struct Detector {
    auto: Compiled,
    ko: Compiled,
    en: Compiled,
    words: Words,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Detector")
    }
}

struct Words {
    ko_stop: HashSet<&'static str>,
    ko_given: HashSet<char>,
    ko_bad_final: HashSet<char>,
    en_stop: HashSet<&'static str>,
}

fn compile(lang: Lang) -> Result<Compiled, TextError> {
    let (rules, pats): (Vec<Rule>, Vec<String>) = patterns::table()
        .into_iter()
        .filter(|(r, _)| r.enabled(lang))
        .unzip();
    let re = meta::Regex::builder()
        .configure(
            meta::Config::new()
                .starts_for_each_pattern(true)
                // A larger lazy-DFA cache keeps the one-pass scan on the DFA for
                // Hangul-heavy text instead of falling back to the slower NFA.
                .hybrid_cache_capacity(32 * 1024 * 1024),
        )
        .build_many(&pats)
        .map_err(|e| TextError::Build(e.to_string()))?;
    Ok(Compiled { re, rules })
}

impl Detector {
    pub fn new() -> Result<Detector, TextError> {
        Ok(Detector {
            auto: compile(Lang::Auto)?,
            ko: compile(Lang::Ko)?,
            en: compile(Lang::En)?,
            words: Words {
                ko_stop: KO_STOPWORDS.iter().copied().collect(),
                ko_given: KO_GIVEN_SYLLABLES.chars().collect(),
                ko_bad_final: KO_BAD_FINAL.chars().collect(),
                en_stop: EN_STOP_WORDS.iter().copied().collect(),
            },
        })
    }

    /// Finds every identifier in `text`. Spans are sorted, never overlap, and
    /// cover the identifier only (not its label, honorific or particle).
    pub fn detect(&self, text: &str, opts: &DetectOptions<'_>) -> Vec<Span> {
        let mut raw = Vec::new();
        self.scan(text, opts.lang, &mut raw);
        if let Some(known) = opts.known {
            known.find(text, &mut raw);
        }
        propagate_names(text, &self.words, &mut raw);
        to_spans(text, merge(raw))
    }

    fn scan(&self, text: &str, lang: Lang, out: &mut Vec<Raw>) {
        let c = match lang {
            Lang::Auto => &self.auto,
            Lang::Ko => &self.ko,
            Lang::En => &self.en,
        };
        let mut caps = c.re.create_captures();
        let mut at = 0;
        while at < text.len() {
            let Some(m) = c.re.search(&Input::new(text).span(at..text.len())) else {
                break;
            };
            let rule = c.rules[m.pattern().as_usize()];
            let group = group1(&c.re, text, &m, &mut caps);
            match check(rule, text, m.range(), group, &self.words) {
                Some(r) => {
                    out.push(r);
                    at = m.end();
                }
                None => at = next_boundary(text, m.start()),
            }
        }
    }
}

fn group1(
    re: &meta::Regex,
    text: &str,
    m: &regex_automata::Match,
    caps: &mut Captures,
) -> Option<std::ops::Range<usize>> {
    let input = Input::new(text)
        .span(m.range())
        .anchored(Anchored::Pattern(m.pattern()));
    re.search_captures(&input, caps);
    caps.get_group(1).map(|s| s.range())
}

fn next_boundary(text: &str, at: usize) -> usize {
    at + text[at..].chars().next().map_or(1, char::len_utf8)
}

fn prev_char(text: &str, at: usize) -> Option<char> {
    text[..at].chars().next_back()
}

fn next_char(text: &str, at: usize) -> Option<char> {
    text[at..].chars().next()
}

pub(crate) fn is_hangul(c: char) -> bool {
    ('\u{AC00}'..='\u{D7A3}').contains(&c)
}

fn is_digit(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_digit())
}

fn is_alnum(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric())
}

fn is_letter(c: Option<char>) -> bool {
    c.is_some_and(char::is_alphabetic)
}

/// Numbers must not be glued to other digits (a 13-digit RRN inside a
/// 20-digit accession number is not an RRN).
fn digit_bounded(text: &str, s: usize, e: usize) -> bool {
    let before = prev_char(text, s);
    !is_digit(before) && before != Some('+') && !is_digit(next_char(text, e))
}

fn raw(start: usize, end: usize, ty: PhiType, rule: Rule) -> Option<Raw> {
    (end > start).then_some(Raw {
        start,
        end,
        ty,
        rule: rule.name(),
    })
}

fn trim_end_by(text: &str, s: usize, mut e: usize, drop: impl Fn(char) -> bool) -> usize {
    while e > s {
        match text[..e].chars().next_back() {
            Some(c) if drop(c) => e -= c.len_utf8(),
            _ => break,
        }
    }
    e
}

/// Runs one rule's own check on a match. `None` rejects it.
fn check(
    rule: Rule,
    text: &str,
    m: std::ops::Range<usize>,
    group: Option<std::ops::Range<usize>>,
    w: &Words,
) -> Option<Raw> {
    let (s, e) = match &group {
        Some(g) => (g.start, g.end),
        None => (m.start, m.end),
    };
    let val = &text[s..e];
    match rule {
        Rule::Email => {
            let e = trim_end_by(text, s, e, |c| c == '.' || c == '-');
            raw(s, e, PhiType::Email, rule)
        }
        Rule::Url => {
            // Stop at the first non-ASCII character: Korean particles attach to URLs.
            let cut = val.find(|c: char| !c.is_ascii()).map_or(e, |i| s + i);
            let e = trim_end_by(text, s, cut, |c| ".,;:!?)'\"".contains(c));
            raw(s, e, PhiType::Url, rule)
        }
        Rule::Ip => {
            let before = prev_char(text, s);
            let after = next_char(text, e);
            let after2 = text[e..].chars().nth(1);
            let ok = !is_digit(before)
                && before != Some('.')
                && !is_digit(after)
                && !(after == Some('.') && is_digit(after2))
                && val.split('.').all(|o| o.parse::<u16>().is_ok_and(|n| n <= 255));
            ok.then(|| raw(s, e, PhiType::Ip, rule)).flatten()
        }
        Rule::Rrn => {
            if !digit_bounded(text, s, e) {
                return None;
            }
            let digits: Vec<u32> = val.chars().filter_map(|c| c.to_digit(10)).collect();
            if digits.len() < 7 {
                return None;
            }
            let month = digits[2] * 10 + digits[3];
            let day = digits[4] * 10 + digits[5];
            let gender = digits[6];
            let hyphen = val.contains(['-', '–']);
            // Post-2020 numbers have random trailing digits: never reject on the
            // checksum; the birth date and the sex digit carry the evidence.
            let ok = (1..=12).contains(&month)
                && (1..=31).contains(&day)
                && (hyphen || (1..=8).contains(&gender));
            ok.then(|| raw(s, e, PhiType::Rrn, rule)).flatten()
        }
        Rule::Card | Rule::KoDriverLicence | Rule::Ssn | Rule::KoPlate => {
            if !digit_bounded(text, s, e) {
                return None;
            }
            if rule == Rule::Ssn && (val.starts_with("000") || val.ends_with("0000")) {
                return None;
            }
            raw(s, e, PhiType::Id, rule)
        }
        Rule::PhoneKo | Rule::PhoneUs => {
            if !digit_bounded(text, s, e) || is_letter(prev_char(text, s)) {
                return None;
            }
            raw(s, e, PhiType::Phone, rule)
        }
        Rule::MrnLabel | Rule::IdLabel => {
            let e = trim_end_by(text, s, e, |c| c == '-' || c == ' ');
            let id = &text[s..e];
            if is_alnum(next_char(text, e)) || !id.chars().any(|c| c.is_ascii_digit()) {
                return None;
            }
            let ty = if rule == Rule::MrnLabel {
                PhiType::Mrn
            } else {
                PhiType::Id
            };
            raw(s, e, ty, rule)
        }
        Rule::DateKo | Rule::DateNumeric | Rule::DateEnglish => {
            let before = prev_char(text, s);
            if is_digit(before) || (rule == Rule::DateEnglish && is_letter(before)) {
                return None;
            }
            let e = trim_end_by(text, s, e, |c| c == '.' || c == ' ');
            let after = next_char(text, e);
            if is_digit(after) || (rule == Rule::DateNumeric && matches!(after, Some('/' | '-'))) {
                return None;
            }
            if rule == Rule::DateNumeric
                && (before == Some('.') || before == Some('/') || before == Some('-'))
            {
                return None;
            }
            dates::parse(&text[s..e])?;
            raw(s, e, PhiType::Date, rule)
        }
        Rule::AgeNumberFirst | Rule::AgeLabelFirst => {
            let before = prev_char(text, s);
            if is_digit(before) || before == Some('.') || is_digit(next_char(text, e)) {
                return None;
            }
            if rule == Rule::AgeLabelFirst && is_letter(prev_char(text, m.start)) {
                return None;
            }
            raw(s, e, PhiType::Age, rule)
        }
        Rule::AddressKo | Rule::AddressKoDistrict => {
            if prev_char(text, s).is_some_and(is_hangul) {
                return None;
            }
            let e = trim_end_by(text, s, e, |c| c == ' ' || c == ',');
            raw(s, e, PhiType::Address, rule)
        }
        Rule::AddressUs | Rule::PoBox => {
            if is_alnum(prev_char(text, s)) {
                return None;
            }
            raw(s, e, PhiType::Address, rule)
        }
        Rule::KoNameHonorific => {
            if prev_char(text, s).is_some_and(is_hangul) || !ko_name_ok(val, false, w) {
                return None;
            }
            raw(s, e, PhiType::Name, rule)
        }
        Rule::KoNameLabel => {
            let strong = text[m.start..s].contains([':', '：']);
            let (ns, ne) = strip_ko_suffixes(text, s, e);
            if !ko_name_ok(&text[ns..ne], strong, w) {
                return None;
            }
            raw(ns, ne, PhiType::Name, rule)
        }
        Rule::EnNameTitle
        | Rule::EnNameLabel
        | Rule::EnNameCredential
        | Rule::EnNameLastFirst
        | Rule::EnNameFirstLast
        | Rule::EnNameInitial => en_name(rule, text, s, e, w),
    }
}

/// Strips a trailing honorific or particle from a Hangul word found after a
/// label (`김민준님은` → `김민준`), keeping at least two syllables.
fn strip_ko_suffixes(text: &str, s: usize, mut e: usize) -> (usize, usize) {
    for list in [KO_PARTICLES, KO_HONORIFICS, KO_PARTICLES] {
        let word = &text[s..e];
        if let Some(suf) = list
            .iter()
            .filter(|p| word.ends_with(*p))
            .max_by_key(|p| p.len())
        {
            let rest = word.len() - suf.len();
            if word[..rest].chars().count() >= 2 {
                e = s + rest;
            }
        }
    }
    (s, e)
}

fn ko_name_ok(name: &str, strong: bool, w: &Words) -> bool {
    let n = name.chars().count();
    if !(2..=4).contains(&n) || !name.chars().all(is_hangul) || w.ko_stop.contains(name) {
        return false;
    }
    let given: &str = if let Some(c) = KO_COMPOUND_SURNAMES.iter().find(|c| name.starts_with(*c)) {
        &name[c.len()..]
    } else if let Some(c) = KO_SURNAMES.iter().find(|c| name.starts_with(*c)) {
        &name[c.len()..]
    } else {
        return false;
    };
    if given.is_empty() || given.chars().count() > 3 {
        return false;
    }
    if strong {
        return true;
    }
    given.chars().all(|c| w.ko_given.contains(&c))
        && given
            .chars()
            .next_back()
            .is_some_and(|c| !w.ko_bad_final.contains(&c))
}

fn en_name(rule: Rule, text: &str, s: usize, e: usize, w: &Words) -> Option<Raw> {
    if is_letter(prev_char(text, s)) && rule != Rule::EnNameTitle && rule != Rule::EnNameLabel {
        return None;
    }
    if is_letter(next_char(text, e)) {
        return None;
    }
    // Tokens with their byte ranges; initials ("A.") are kept.
    let mut toks: Vec<(usize, usize)> = Vec::new();
    let mut i = s;
    for part in text[s..e].split([' ', ',']) {
        if !part.is_empty() {
            toks.push((i, i + part.len()));
        }
        i += part.len() + 1;
    }
    let is_stop = |t: &(usize, usize)| {
        let word = text[t.0..t.1].trim_end_matches('.');
        w.en_stop.contains(word)
    };
    // A trailing capitalised word that is clinical vocabulary is not part of the name.
    while toks.len() > 1 && toks.last().is_some_and(is_stop) {
        toks.pop();
    }
    let first = toks.first()?;
    if toks.iter().any(is_stop) {
        if rule == Rule::EnNameTitle || rule == Rule::EnNameLabel {
            if is_stop(first) {
                return None;
            }
            let keep = toks.iter().position(is_stop).unwrap_or(toks.len());
            toks.truncate(keep);
        } else {
            return None;
        }
    }
    let is_initial = |t: &(usize, usize)| t.1 - t.0 == 2 && text[t.0..t.1].ends_with('.');
    while toks.len() > 1 && toks.last().is_some_and(is_initial) && rule != Rule::EnNameLastFirst {
        toks.pop();
    }
    if rule == Rule::EnNameLabel && toks.len() < 2 {
        return None;
    }
    let (a, b) = (toks.first()?.0, toks.last()?.1);
    raw(a, b, PhiType::Name, rule)
}

/// Names found with strong context are searched for again in the whole note:
/// the full Korean name (bare, with any particle), English name words alone.
fn propagate_names(text: &str, w: &Words, raw_spans: &mut Vec<Raw>) {
    let mut pats: Vec<String> = Vec::new();
    for r in raw_spans.iter().filter(|r| r.ty == PhiType::Name) {
        let name = &text[r.start..r.end];
        if name.chars().any(is_hangul) {
            let compact: String = name.chars().filter(|c| !c.is_whitespace()).collect();
            if compact.chars().count() >= 2 {
                pats.push(compact);
            }
        } else {
            for tok in name.split([' ', ',']) {
                let tok = tok.trim_end_matches('.');
                if tok.chars().count() >= 3
                    && tok.chars().next().is_some_and(char::is_uppercase)
                    && !w.en_stop.contains(tok)
                {
                    pats.push(tok.to_owned());
                }
            }
        }
    }
    if pats.is_empty() {
        return;
    }
    pats.sort();
    pats.dedup();
    let Ok(ac) = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .kind(Some(AhoCorasickKind::DFA))
        .build(&pats)
    else {
        return;
    };
    for m in ac.find_iter(text) {
        let (s, e) = (m.start(), m.end());
        let before = prev_char(text, s);
        let ok = if text[s..e].chars().next().is_some_and(is_hangul) {
            !before.is_some_and(is_hangul)
        } else {
            !is_letter(before) && !is_letter(next_char(text, e))
        };
        if ok {
            raw_spans.push(Raw {
                start: s,
                end: e,
                ty: PhiType::Name,
                rule: "name-propagated",
            });
        }
    }
}

/// Sorts and merges overlapping spans; the earliest, longest span gives the type.
fn merge(mut v: Vec<Raw>) -> Vec<Raw> {
    v.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Raw> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if r.start < last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Adds code-point offsets in one pass over the text.
fn to_spans(text: &str, v: Vec<Raw>) -> Vec<Span> {
    let mut out = Vec::with_capacity(v.len());
    let mut chars = 0usize;
    let mut byte = 0usize;
    let mut count_to = |target: usize, chars: &mut usize, byte: &mut usize| {
        *chars += text[*byte..target].chars().count();
        *byte = target;
    };
    for r in v {
        count_to(r.start, &mut chars, &mut byte);
        let start = chars;
        count_to(r.end, &mut chars, &mut byte);
        out.push(Span {
            start,
            end: chars,
            bytes: r.start..r.end,
            ty: r.ty,
            rule: r.rule,
        });
    }
    out
}

#[cfg(test)]
mod tests;
