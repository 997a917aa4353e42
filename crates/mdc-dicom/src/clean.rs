//! Cleaning of free text that a profile option keeps (C under Clean
//! Descriptors, Retain Patient Characteristics, Retain Device Identity).
//!
//! The seam is [`TextCleaner`], passed in [`crate::Config::text_cleaner`].
//! [`EngineCleaner`] (what the CLI uses) runs the free-text PHI engine of
//! `mdc_deid::text` (issue 3) with the file's own identifiers as known values,
//! after [`KnownValueCleaner`]. The latter, used alone when no engine is
//! given, removes every identifying value of the same file (patient name
//! parts, ids, birth date, accession number, physician and operator names)
//! and long digit runs (record and registration numbers, phone numbers); it
//! cannot find a name that appears nowhere else in the header, which is what
//! the engine is for.

use std::fmt;
use std::sync::Arc;

use mdc_deid::text::{DetectOptions, Detector, Known, Lang};

/// Identifying values of one file, gathered before any is removed.
#[derive(Clone, Default)]
pub struct KnownIdentifiers {
    values: Vec<String>,
}

impl fmt::Debug for KnownIdentifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KnownIdentifiers([redacted; {}])", self.values.len())
    }
}

impl KnownIdentifiers {
    /// Adds a decoded value: the whole value and, for names, each component.
    pub fn add(&mut self, value: &str, person_name: bool) {
        let mut push = |s: &str| {
            let s = s.trim();
            // One-letter parts (initials) would erase ordinary words.
            if s.chars().count() >= 2 && !self.values.iter().any(|v| v == s) {
                self.values.push(s.to_owned());
            }
        };
        push(value);
        if person_name {
            for group in value.split('=') {
                push(&group.replace('^', " "));
                // Korean and Chinese names are written without a space.
                push(&group.replace('^', ""));
                for part in group.split('^') {
                    push(part);
                }
            }
        }
        // Longest first, so "Hong Gildong" goes before "Hong".
        self.values
            .sort_by_key(|v| std::cmp::Reverse(v.chars().count()));
    }

    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(String::as_str)
    }
}

/// Cleans one free-text value. Implementations must not log the text.
pub trait TextCleaner: Send + Sync {
    fn clean(&self, text: &str, known: &KnownIdentifiers) -> String;
}

/// The built-in cleaner: known values of the file and long digit runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct KnownValueCleaner;

const MASK: &str = "[REMOVED]";

impl TextCleaner for KnownValueCleaner {
    fn clean(&self, text: &str, known: &KnownIdentifiers) -> String {
        let mut s = text.to_owned();
        for v in known.values() {
            s = replace_ignore_ascii_case(&s, v);
        }
        mask_digit_runs(&s)
    }
}

/// The free-text PHI engine of mdc-deid behind the [`TextCleaner`] seam.
pub struct EngineCleaner {
    detector: Detector,
}

impl fmt::Debug for EngineCleaner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EngineCleaner")
    }
}

impl TextCleaner for EngineCleaner {
    fn clean(&self, text: &str, known: &KnownIdentifiers) -> String {
        let mut s = KnownValueCleaner.clean(text, known);
        let mut k = Known::default();
        for v in known.values() {
            k.add(None, v);
        }
        let opts = DetectOptions {
            lang: Lang::Auto,
            known: Some(&k),
        };
        let mut spans = self.detector.detect(&s, &opts);
        // Replace from the end so earlier byte ranges stay valid.
        spans.sort_by_key(|sp| std::cmp::Reverse(sp.bytes.start));
        for sp in spans {
            if sp.bytes.end <= s.len()
                && s.is_char_boundary(sp.bytes.start)
                && s.is_char_boundary(sp.bytes.end)
            {
                s.replace_range(sp.bytes.clone(), &format!("[{}]", sp.ty.as_str()));
            }
        }
        s
    }
}

/// The engine cleaner, or `None` if the engine cannot be built (then the
/// caller falls back to [`KnownValueCleaner`]).
pub fn engine_cleaner() -> Option<Arc<dyn TextCleaner>> {
    Detector::new()
        .ok()
        .map(|detector| Arc::new(EngineCleaner { detector }) as Arc<dyn TextCleaner>)
}

fn replace_ignore_ascii_case(haystack: &str, needle: &str) -> String {
    if needle.is_empty() {
        return haystack.to_owned();
    }
    let lower_h = haystack.to_ascii_lowercase();
    let lower_n = needle.to_ascii_lowercase();
    let mut out = String::with_capacity(haystack.len());
    let mut i = 0;
    while let Some(off) = lower_h[i..].find(&lower_n) {
        out.push_str(&haystack[i..i + off]);
        out.push_str(MASK);
        i += off + lower_n.len();
    }
    out.push_str(&haystack[i..]);
    out
}

/// Masks runs of 6 or more digits (allowing `-` and spaces inside), which in
/// descriptors are record numbers, registration numbers or phone numbers.
fn mask_digit_runs(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let mut j = i;
            let mut digits = 0;
            while j < chars.len()
                && (chars[j].is_ascii_digit()
                    || ((chars[j] == '-' || chars[j] == ' ')
                        && chars.get(j + 1).is_some_and(char::is_ascii_digit)))
            {
                if chars[j].is_ascii_digit() {
                    digits += 1;
                }
                j += 1;
            }
            if digits >= 6 {
                out.push_str(MASK);
            } else {
                out.extend(&chars[i..j]);
            }
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_digit_runs_are_removed() {
        let mut k = KnownIdentifiers::default();
        k.add("Hong^Gildong=洪^吉洞=홍^길동", true);
        k.add("12345678", false);
        let c = KnownValueCleaner;
        assert_eq!(
            c.clean(
                "CT chest for HONG GILDONG (홍길동) 12345678, tel 010-1234-5678",
                &k
            ),
            "CT chest for [REMOVED] ([REMOVED]) [REMOVED], tel [REMOVED]"
        );
        assert_eq!(c.clean("T1 3D 1.0mm axial", &k), "T1 3D 1.0mm axial");
        assert!(!format!("{k:?}").contains("Hong"));
    }
}
