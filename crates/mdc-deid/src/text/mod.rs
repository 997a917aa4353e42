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
//! Speed comes from looking at each note once: every rule is one pattern of a
//! single multi-pattern lazy DFA (`patterns`), run anchored only where an
//! identifier can start (a change of script, a syllable that can begin a
//! Korean rule), and a rule runs its own check (boundaries, calendar, surname
//! lists) only on the rare matches. Names found with strong context are then
//! looked for again throughout the same note, and so are the patient's own
//! identifiers when the caller passes them ([`Known`]), which is what catches
//! a bare `김민준은` or `Smith` that no local context gives away.

pub mod corpus;
mod dates;
pub mod eval;
mod known;
mod lexicon;
mod patterns;
mod transform;

use std::collections::HashSet;
use std::sync::Mutex;

use mdc_types::PhiType;

use regex_automata::util::captures::Captures;
use regex_automata::{hybrid, meta};
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

/// The rule table as (rule name, pattern), for profiling the scan
/// (examples/text_throughput.rs). Not a stable interface.
#[doc(hidden)]
pub fn rule_patterns() -> Vec<(&'static str, String)> {
    patterns::table()
        .into_iter()
        .map(|(r, p)| (r.name(), p))
        .collect()
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
    /// For capture groups of a match, and a fallback should the lazy DFA give up.
    re: meta::Regex,
    /// The scan: an anchored lazy DFA tried at each candidate start.
    dfa: hybrid::dfa::DFA,
    caches: Mutex<Vec<hybrid::dfa::Cache>>,
    /// One small regex per rule that has a capture group, so that finding
    /// the group does not run the NFA of every pattern.
    groups: Vec<Option<meta::Regex>>,
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

/// Character classes whose changes mark where a rule may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Digit,
    Latin,
    Hangul,
    Other,
}

impl Class {
    fn of(c: char) -> Class {
        if c.is_ascii_digit() {
            Class::Digit
        } else if c.is_ascii_alphabetic() {
            Class::Latin
        } else if is_hangul(c) {
            Class::Hangul
        } else {
            Class::Other
        }
    }
}

struct Words {
    /// First syllables of every Korean pattern: surnames, labels, provinces.
    ko_first: HashSet<char>,
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
                // A larger lazy-DFA cache keeps the one-pass scan on the DFA for
                // Hangul-heavy text instead of falling back to the slower NFA.
                .hybrid_cache_capacity(32 * 1024 * 1024),
        )
        .build_many(&pats)
        .map_err(|e| TextError::Build(e.to_string()))?;
    let dfa = hybrid::dfa::DFA::builder()
        .configure(
            hybrid::dfa::Config::new()
                .cache_capacity(8 * 1024 * 1024)
                .minimum_cache_clear_count(None),
        )
        .build_many(&pats)
        .map_err(|e| TextError::Build(e.to_string()))?;
    let mut groups = Vec::with_capacity(pats.len());
    for p in &pats {
        let r = meta::Regex::new(p).map_err(|e| TextError::Build(e.to_string()))?;
        let has_group = r.group_info().group_len(regex_automata::PatternID::ZERO) > 1;
        groups.push(has_group.then_some(r));
    }
    Ok(Compiled {
        re,
        dfa,
        caches: Mutex::new(Vec::new()),
        groups,
        rules,
    })
}

impl Detector {
    pub fn new() -> Result<Detector, TextError> {
        Ok(Detector {
            auto: compile(Lang::Auto)?,
            ko: compile(Lang::Ko)?,
            en: compile(Lang::En)?,
            words: Words {
                ko_first: lexicon::ko_first_syllables(),
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
        // One unanchored pass of all patterns together blows up the lazy
        // DFA's states on mixed text (measured: 0.2 MB/s). Instead the DFA is
        // run anchored, only where an identifier can start: where the script
        // changes (a word start, digits after Hangul, …) and the first
        // character can begin some rule.
        let mut cache = c
            .caches
            .lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_else(|| c.dfa.create_cache());
        let mut caps: Vec<Option<Captures>> = Vec::new();
        let mut skip_to = 0;
        let mut prev = Class::Other;
        for (p, ch) in text.char_indices() {
            let class = Class::of(ch);
            let boundary = class != prev;
            prev = class;
            if p < skip_to || !self.may_start(text, p, ch, class, boundary) {
                continue;
            }
            let input = Input::new(text).span(p..text.len()).anchored(Anchored::Yes);
            let found = match c.dfa.try_search_fwd(&mut cache, &input) {
                Ok(hm) => hm.map(|hm| regex_automata::Match::new(hm.pattern(), p..hm.offset())),
                Err(_) => c.re.search(&input),
            };
            let Some(m) = found else { continue };
            let rule = c.rules[m.pattern().as_usize()];
            let pid = m.pattern().as_usize();
            let group = c.groups[pid].as_ref().and_then(|g| {
                if caps.len() <= pid {
                    caps.resize_with(pid + 1, || None);
                }
                let cap = caps[pid].get_or_insert_with(|| g.create_captures());
                group1(g, text, &m, cap)
            });
            if let Some(r) = check(rule, text, &m.range(), group.as_ref(), &self.words) {
                out.push(r);
                skip_to = m.end();
            }
        }
        if let Ok(mut v) = c.caches.lock() {
            v.push(cache);
        }
    }

    /// Whether a rule can start at `p`: a cheap gate before the DFA.
    fn may_start(&self, text: &str, p: usize, ch: char, class: Class, boundary: bool) -> bool {
        match class {
            Class::Digit | Class::Latin => boundary,
            Class::Hangul => {
                boundary
                    && (self.words.ko_first.contains(&ch) || {
                        // A district (`강남구 테헤란로 1`): the word ends in 시/군/구.
                        let run = text[p..]
                            .find(|c: char| !is_hangul(c))
                            .map_or(text.len(), |i| p + i);
                        text[..run].ends_with(['시', '군', '구'])
                    })
            }
            Class::Other => matches!(ch, '+' | '(' | '\'' | '’'),
        }
    }
}

fn group1(
    re: &meta::Regex,
    text: &str,
    m: &regex_automata::Match,
    caps: &mut Captures,
) -> Option<std::ops::Range<usize>> {
    let input = Input::new(text).span(m.range()).anchored(Anchored::Yes);
    re.search_captures(&input, caps);
    caps.get_group(1).map(|s| s.range())
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
    m: &std::ops::Range<usize>,
    group: Option<&std::ops::Range<usize>>,
    w: &Words,
) -> Option<Raw> {
    let (s, e) = match group {
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
                && (after != Some('.') || !is_digit(after2))
                && val
                    .split('.')
                    .all(|o| o.parse::<u16>().is_ok_and(|n| n <= 255));
            ok.then(|| raw(s, e, PhiType::Ip, rule)).flatten()
        }
        Rule::Ipv6 => {
            // Clock times (`10:30:00`) are not addresses: an address has all
            // eight groups or a `::`, and at least one group of 3–4 digits.
            let addr = val.split('%').next().unwrap_or(val);
            let groups: Vec<&str> = addr.split(':').filter(|g| !g.is_empty()).collect();
            let ok = !is_alnum(prev_char(text, s))
                && prev_char(text, s) != Some(':')
                && !is_alnum(next_char(text, e))
                && addr.parse::<std::net::Ipv6Addr>().is_ok()
                && (groups.len() == 8 || addr.contains("::"))
                && groups.iter().any(|g| g.len() >= 3);
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
            if !digit_bounded(text, s, e) || is_latin(prev_char(text, s)) {
                return None;
            }
            raw(s, e, PhiType::Phone, rule)
        }
        Rule::MrnLabel | Rule::IdLabel => {
            // The label must start a word: `주민등록번호` is not `등록번호`, and a
            // pseudonym such as `PHONE_TMRN…` contains no label.
            let lb = prev_char(text, m.start);
            if lb.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || is_hangul(c)) {
                return None;
            }
            // It must also end a word: `DEAL4…` holds no `DEA` label. A value
            // glued to a Latin label counts only if it starts with a digit.
            if prev_char(text, s).is_some_and(|c| c.is_ascii_alphabetic())
                && next_char(text, s).is_some_and(|c| c.is_ascii_alphabetic())
            {
                return None;
            }
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
            if is_digit(before) || (rule == Rule::DateEnglish && is_latin(before)) {
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
            if rule == Rule::AgeLabelFirst && is_latin(prev_char(text, m.start)) {
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
            if prev_char(text, s).is_some_and(is_hangul) {
                return None;
            }
            // `윤서현의 보호자`: a particle syllable glued to a full name is not
            // part of it (four syllables with a single-syllable surname).
            let mut e = e;
            let single = !KO_COMPOUND_SURNAMES.iter().any(|c| val.starts_with(c));
            if single && val.chars().count() == 4 {
                if let Some(last) = val.chars().next_back() {
                    if "은는이가을를의와과도".contains(last) {
                        e -= last.len_utf8();
                    }
                }
            }
            if !ko_name_ok(&text[s..e], false, w) {
                return None;
            }
            raw(s, e, PhiType::Name, rule)
        }
        Rule::KoNameLabel => {
            let label = &text[m.start..s];
            let strong = label.contains([':', '：']);
            let (ns, ne) = strip_ko_suffixes(text, s, e);
            // After a role word (`환자 송우진`) a two-syllable word is far more
            // often a noun (`환자 이송 완료`) than a name: take one only where
            // a header puts it, before `(` or `,` (`환자 이훈 (등록번호 …)`).
            let role_word = !strong && KO_ROLE_WORDS.iter().any(|r| label.trim_end() == *r);
            if role_word && text[ns..ne].chars().count() < 3 {
                let next = text[ne..].trim_start_matches(' ').chars().next();
                if !matches!(next, Some('(' | ',' | '/' | '[')) {
                    return None;
                }
            }
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

/// Labels that are everyday words too (`환자 이송`, `환자 교육`).
const KO_ROLE_WORDS: &[&str] = &["환자", "환자분", "환아", "담당 교수", "담당교수"];

/// Strips a trailing honorific or particle from a Hangul word found after a
/// label (`김민준님은` → `김민준`). A particle is only stripped from a word of
/// four or more syllables, because so many given names end in one (`하은`,
/// `다은`, `은지`): `노하은` stays whole, and `김철은` is redacted whole.
fn strip_ko_suffixes(text: &str, s: usize, mut e: usize) -> (usize, usize) {
    // A compound surname (`황보예은`) makes a full name one syllable longer.
    let compound = usize::from(
        KO_COMPOUND_SURNAMES
            .iter()
            .any(|c| text[s..e].starts_with(c)),
    );
    for (list, keep) in [
        (KO_PARTICLES, 3 + compound),
        (KO_HONORIFICS, 2),
        (KO_PARTICLES, 3 + compound),
    ] {
        let word = &text[s..e];
        if let Some(suf) = list
            .iter()
            .filter(|p| word.ends_with(*p))
            .max_by_key(|p| p.len())
        {
            let rest = word.len() - suf.len();
            if word[..rest].chars().count() >= keep {
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

fn is_latin(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphabetic())
}

fn en_name(rule: Rule, text: &str, s: usize, e: usize, w: &Words) -> Option<Raw> {
    // Hangul may touch an English name (`Dr. Smith에게`); Latin letters may not.
    if is_latin(prev_char(text, s)) && rule != Rule::EnNameTitle && rule != Rule::EnNameLabel {
        return None;
    }
    if is_latin(next_char(text, e)) {
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
    // A note names a handful of people: a SIMD substring search per name
    // costs less than building an automaton for each note (measured).
    let mut found = Vec::new();
    for p in &pats {
        found.extend(
            memchr::memmem::find_iter(text.as_bytes(), p.as_bytes()).map(|i| (i, i + p.len())),
        );
    }
    for (s, e) in found {
        let before = prev_char(text, s);
        let ok = if text[s..e].chars().next().is_some_and(is_hangul) {
            !before.is_some_and(is_hangul)
        } else {
            !is_latin(before) && !is_latin(next_char(text, e))
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
    let count_to = |target: usize, chars: &mut usize, byte: &mut usize| {
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
