//! The patient's own identifiers, passed by the caller from the structured
//! record (the NLM Scrubber trick): whatever the local context, a string that
//! *is* the patient's name or number is redacted, in any spacing or format.

use mdc_types::{Phi, PhiType};

use super::{is_hangul, Raw};

/// Known identifiers of one note's patient. `Debug` never shows them.
#[derive(Clone, Default)]
pub struct Known {
    /// Korean names as syllables without spaces.
    ko_names: Vec<Phi<String>>,
    /// Words of Latin-script names, matched case-insensitively as whole words.
    words: Vec<Phi<String>>,
    /// Numbers as their digits, with the type to report.
    numbers: Vec<(PhiType, Phi<String>)>,
    /// Anything else (emails, addresses), matched case-insensitively.
    texts: Vec<(PhiType, Phi<String>)>,
}

impl std::fmt::Debug for Known {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Known({} identifiers, [redacted])",
            self.ko_names.len() + self.words.len() + self.numbers.len() + self.texts.len()
        )
    }
}

impl Known {
    pub fn new() -> Known {
        Known::default()
    }

    pub fn is_empty(&self) -> bool {
        self.ko_names.is_empty()
            && self.words.is_empty()
            && self.numbers.is_empty()
            && self.texts.is_empty()
    }

    /// Adds one identifier. Without a type it is guessed: mostly digits is a
    /// number (a phone if it looks like one, else a record number), an `@`
    /// makes an email, anything else is a name.
    pub fn add(&mut self, ty: Option<PhiType>, value: &str) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        let letters = value.chars().filter(|c| c.is_alphabetic()).count();
        let ty = ty.unwrap_or_else(|| {
            if value.contains('@') {
                PhiType::Email
            } else if digits.len() >= 4 && digits.len() >= letters {
                if digits.starts_with('0') && (9..=11).contains(&digits.len()) {
                    PhiType::Phone
                } else {
                    PhiType::Mrn
                }
            } else {
                PhiType::Name
            }
        });
        match ty {
            PhiType::Name => {
                if value.chars().any(is_hangul) {
                    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
                    if compact.chars().count() >= 2 {
                        self.ko_names.push(Phi::new(compact));
                    }
                } else {
                    for w in value.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-') {
                        if w.chars().count() >= 2 {
                            self.words.push(Phi::new(w.to_owned()));
                        }
                    }
                }
            }
            _ if digits.len() >= 4 && digits.len() * 2 >= value.chars().count() => {
                self.numbers.push((ty, Phi::new(digits)));
            }
            _ => {
                if value.chars().count() >= 3 {
                    self.texts.push((ty, Phi::new(value.to_owned())));
                }
            }
        }
    }

    pub(crate) fn find(&self, text: &str, out: &mut Vec<Raw>) {
        if !self.numbers.is_empty() {
            self.find_numbers(text, out);
        }
        for name in &self.ko_names {
            find_spaced(text, name.expose(), out);
        }
        self.find_words(text, out);
    }

    /// Scans runs of digits joined by single separators and looks for each
    /// known number among their digits.
    fn find_numbers(&self, text: &str, out: &mut Vec<Raw>) {
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if !b[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let mut digits = Vec::new();
            let mut pos = Vec::new();
            let mut j = i;
            while j < b.len() {
                if b[j].is_ascii_digit() {
                    digits.push(b[j]);
                    pos.push(j);
                    j += 1;
                } else if matches!(b[j], b' ' | b'-' | b'.' | b'/' | b')' | b'(')
                    && j + 1 < b.len()
                    && (b[j + 1].is_ascii_digit()
                        || (j + 2 < b.len()
                            && matches!(b[j + 1], b' ' | b'-')
                            && b[j + 2].is_ascii_digit()))
                {
                    j += 1;
                } else {
                    break;
                }
            }
            for (ty, known) in &self.numbers {
                let k = known.expose().as_bytes();
                if k.is_empty() || k.len() > digits.len() {
                    continue;
                }
                let mut from = 0;
                while from + k.len() <= digits.len() {
                    if &digits[from..from + k.len()] == k {
                        out.push(Raw {
                            start: pos[from],
                            end: pos[from + k.len() - 1] + 1,
                            ty: *ty,
                            rule: "known-identifier",
                        });
                        from += k.len();
                    } else {
                        from += 1;
                    }
                }
            }
            i = j.max(i + 1);
        }
    }

    fn find_words(&self, text: &str, out: &mut Vec<Raw>) {
        let mut pats: Vec<&str> = self.words.iter().map(|w| w.expose().as_str()).collect();
        let types: Vec<PhiType> = std::iter::repeat_n(PhiType::Name, pats.len())
            .chain(self.texts.iter().map(|t| t.0))
            .collect();
        pats.extend(self.texts.iter().map(|t| t.1.expose().as_str()));
        if pats.is_empty() {
            return;
        }
        // A handful of patterns per note: a SIMD substring search each (over
        // an ASCII-lowercased copy, which keeps byte offsets) beats building
        // an automaton per note (perf: the automaton's build was 5 % of all
        // samples). Overlaps between patterns are merged with the other spans.
        let folded;
        let hay: &[u8] = if pats
            .iter()
            .any(|p| p.bytes().any(|b| b.is_ascii_alphabetic()))
        {
            folded = text.to_ascii_lowercase();
            folded.as_bytes()
        } else {
            text.as_bytes()
        };
        let mut hits: Vec<(usize, usize, usize)> = Vec::new();
        for (pi, p) in pats.iter().enumerate() {
            let needle = p.to_ascii_lowercase();
            if needle.is_empty() {
                continue;
            }
            hits.extend(
                memchr::memmem::find_iter(hay, needle.as_bytes())
                    .map(|s| (s, s + needle.len(), pi)),
            );
        }
        for (start, end, pi) in hits {
            let before = text[..start].chars().next_back();
            let after = text[end..].chars().next();
            let ty = types[pi];
            let word_like = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
            if ty == PhiType::Name
                && (word_like(before) || after.is_some_and(|c| c.is_ascii_alphanumeric()))
            {
                continue;
            }
            out.push(Raw {
                start,
                end,
                ty,
                rule: "known-identifier",
            });
        }
    }
}

/// Finds a Korean name with any whitespace between its syllables, not glued
/// to a preceding Hangul syllable (a particle may follow).
fn find_spaced(text: &str, name: &str, out: &mut Vec<Raw>) {
    let syl: Vec<char> = name.chars().collect();
    let Some(&first) = syl.first() else { return };
    for (i, c) in text.char_indices() {
        if c != first || text[..i].chars().next_back().is_some_and(is_hangul) {
            continue;
        }
        let mut it = text[i..].char_indices().peekable();
        let mut k = 0;
        let mut end = i;
        while let Some((off, ch)) = it.next() {
            if ch == syl[k] {
                k += 1;
                end = i + off + ch.len_utf8();
                if k == syl.len() {
                    break;
                }
            } else if !(ch.is_whitespace() && k > 0 && it.peek().is_some_and(|(_, n)| *n == syl[k]))
            {
                break;
            }
        }
        if k == syl.len() {
            out.push(Raw {
                start: i,
                end,
                ty: PhiType::Name,
                rule: "known-identifier",
            });
        }
    }
}
