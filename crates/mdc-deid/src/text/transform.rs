//! Replacing detected spans: tags, surrogates or pseudonyms.
//!
//! Surrogates and pseudonyms are functions of the root's key (through the
//! `Pseudonymizer`), so the same identifier becomes the same replacement in
//! every note and run. Surrogates are realistic but can never be real: phone
//! numbers in unallocated ranges (010-0xxx, exchange 0xx, 555-01xx), birth
//! dates with month 00 in registration numbers, RFC 2606/5737 domains and
//! addresses for e-mail, URLs and IPs.

use mdc_types::{PhiType, SourceId};

use crate::pseudonym::{normalise, Domain, Pseudonymizer};

use super::dates;
use super::{is_hangul, Span, TextError};

/// How spans are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// `[NAME]`, `[PHONE]`, …
    #[default]
    Tag,
    /// Realistic fake values of the same format; dates shifted.
    Surrogate,
    /// Keyed pseudonyms (DESIGN §4): an MRN becomes the patient's pseudonym,
    /// other identifiers `TYPE_<token>`; dates shifted by the patient's offset.
    Pseudonym,
    /// Spans only; the library renders tags, the CLI writes no text.
    Detect,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Tag => "tag",
            Mode::Surrogate => "surrogate",
            Mode::Pseudonym => "pseudonym",
            Mode::Detect => "detect",
        }
    }

    pub fn needs_key(self) -> bool {
        matches!(self, Mode::Surrogate | Mode::Pseudonym)
    }
}

/// What a transform may use besides the text.
#[derive(Clone, Copy, Default)]
pub struct TransformContext<'a> {
    pub pseudonymizer: Option<&'a dyn Pseudonymizer>,
    /// The note's patient (hospital record number, DESIGN §4).
    pub patient: Option<&'a SourceId>,
    /// A stable key of the note (its id). In surrogate mode without a patient
    /// the note's dates are shifted by an offset derived from it, so intervals
    /// inside the note survive.
    pub note_key: Option<&'a str>,
}

impl std::fmt::Debug for TransformContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransformContext([redacted])")
    }
}

const KO_FAKE_SURNAMES: &[&str] = &[
    "김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권", "황",
];
const KO_FAKE_COMPOUND: &[&str] = &["남궁", "황보", "선우", "제갈"];
const KO_FAKE_GIVEN: &[char] = &[
    '민', '서', '지', '현', '수', '영', '준', '우', '하', '윤', '은', '재', '성', '진', '혜', '연',
    '동', '희', '경', '태', '승', '아', '주', '유', '채', '다', '소', '예', '도', '건',
];
const EN_FAKE_FIRST: &[&str] = &[
    "Alex", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn", "Parker",
    "Reese", "Rowan",
];
const EN_FAKE_LAST: &[&str] = &[
    "Hale",
    "Marlow",
    "Prescott",
    "Whitfield",
    "Danvers",
    "Ashby",
    "Kendrick",
    "Lowell",
    "Farrow",
    "Sutton",
    "Merriman",
    "Thorne",
];
const KO_FAKE_SIDO: &[&str] = &[
    "서울특별시",
    "부산광역시",
    "대구광역시",
    "인천광역시",
    "광주광역시",
    "대전광역시",
    "경기도",
    "강원특별자치도",
];
const KO_FAKE_GU: &[&str] = &["중구", "동구", "서구", "남구", "북구"];
const KO_FAKE_ROAD: &[&str] = &[
    "가온로",
    "나래로",
    "다온길",
    "하늘로",
    "새봄길",
    "누리로",
    "한빛로",
    "솔내길",
];
const EN_FAKE_STREET: &[&str] = &[
    "Oak", "Maple", "Cedar", "Pine", "Elm", "Birch", "Willow", "Aspen",
];
const EN_FAKE_CITY: &[&str] = &[
    "Springfield",
    "Riverton",
    "Fairview",
    "Greenville",
    "Lakeside",
    "Milford",
];

/// A small deterministic generator seeded from a keyed token.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T: ?Sized>(&mut self, v: &[&'a T]) -> &'a T {
        v[self.below(v.len())]
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

/// The identity of a value for keying: spacing and punctuation do not matter.
fn value_key(ty: PhiType, value: &str) -> String {
    let compact: String = match ty {
        PhiType::Name | PhiType::Address | PhiType::Email | PhiType::Url => {
            value.chars().filter(|c| !c.is_whitespace()).collect()
        }
        _ => value.chars().filter(char::is_ascii_alphanumeric).collect(),
    };
    format!("{}:{}", ty.as_str(), normalise(&compact))
}

struct Ctx<'a> {
    p: Option<&'a dyn Pseudonymizer>,
    patient: Option<&'a SourceId>,
    note_key: Option<&'a str>,
    mode: Mode,
    offset: Offset,
    /// Words of the note's own names: a surrogate never reuses one
    /// ("Taylor" the patient must not reappear as a surrogate's first name).
    avoid: Vec<&'a str>,
}

/// The note's date offset, computed once when the first date is met.
#[derive(Clone, Copy)]
enum Offset {
    NotYet,
    Known(Option<i64>),
}

impl Ctx<'_> {
    fn key(&self) -> Result<&dyn Pseudonymizer, TextError> {
        self.p.ok_or(TextError::NeedsKey)
    }

    fn gen(&self, ty: PhiType, value: &str) -> Result<Gen, TextError> {
        let id = SourceId::new(format!("surrogate\u{0}{}", value_key(ty, value)));
        let t = self.key()?.token(Domain::Record, &id)?;
        Ok(Gen(t.int as u64))
    }

    fn date_offset(&mut self) -> Result<Option<i64>, TextError> {
        if let Offset::Known(o) = self.offset {
            return Ok(o);
        }
        let p = self.key()?;
        let o = if let Some(patient) = self.patient {
            Some(i64::from(p.date_shift_days(patient)?))
        } else if let (Mode::Surrogate, Some(k)) = (self.mode, self.note_key) {
            Some(i64::from(
                p.date_shift_days(&SourceId::new(format!("note\u{0}{k}")))?,
            ))
        } else {
            None
        };
        self.offset = Offset::Known(o);
        Ok(o)
    }

    fn replacement(&mut self, ty: PhiType, value: &str) -> Result<String, TextError> {
        match self.mode {
            Mode::Tag | Mode::Detect => Ok(tag(ty)),
            Mode::Pseudonym => self.pseudonym(ty, value),
            Mode::Surrogate => self.surrogate(ty, value),
        }
    }

    fn pseudonym(&mut self, ty: PhiType, value: &str) -> Result<String, TextError> {
        match ty {
            PhiType::Date => self.shift(value),
            PhiType::Age => Ok(tag(ty)),
            PhiType::Mrn => {
                // The record number is the patient's source id: the same
                // pseudonym as in the OMOP, FHIR and DICOM outputs.
                let t = self
                    .key()?
                    .token(Domain::Patient, &SourceId::new(value.to_owned()))?;
                Ok(t.text.as_str().to_owned())
            }
            _ => {
                let id = SourceId::new(value_key(ty, value));
                let t = self.key()?.token(Domain::Record, &id)?;
                Ok(format!("{}_{}", ty.as_str(), &t.text.as_str()[..10]))
            }
        }
    }

    fn shift(&mut self, value: &str) -> Result<String, TextError> {
        match (self.date_offset()?, dates::parse(value)) {
            (Some(days), Some(d)) => Ok(d.shifted(days)),
            _ => Ok(tag(PhiType::Date)),
        }
    }

    fn surrogate(&mut self, ty: PhiType, value: &str) -> Result<String, TextError> {
        if ty == PhiType::Date {
            return self.shift(value);
        }
        let mut g = self.gen(ty, value)?;
        Ok(match ty {
            PhiType::Name => {
                let mut name = fake_name(&mut g, value);
                // A few redraws; the lists are far longer than a note's names.
                for _ in 0..16 {
                    if !shares_a_word(&name, &self.avoid) {
                        break;
                    }
                    name = fake_name(&mut g, value);
                }
                name
            }
            PhiType::Phone => {
                let digits: String = value.chars().filter(char::is_ascii_digit).collect();
                if value.starts_with("+82") || digits.starts_with("01") {
                    format!("010-0{}-{}", g.digits(3), g.digits(4))
                } else if digits.starts_with('0') || digits.len() == 8 {
                    format!("02-0{}-{}", g.digits(2), g.digits(4))
                } else {
                    format!("({}{}) 555-01{}", 2 + g.below(8), g.digits(2), g.digits(2))
                }
            }
            PhiType::Rrn => {
                // Month 00: a registration number that can never be valid.
                let sep = if value.contains(['-', '–']) {
                    "-"
                } else {
                    ""
                };
                format!(
                    "{}00{:02}{sep}{}{}",
                    g.digits(2),
                    1 + g.below(28),
                    1 + g.below(4),
                    g.digits(6)
                )
            }
            PhiType::Email => format!("user{}@example.com", g.digits(5)),
            PhiType::Url => format!("https://example.org/r/{}", g.digits(6)),
            PhiType::Ip => format!("192.0.2.{}", 1 + g.below(254)),
            PhiType::Address => {
                if value.chars().any(is_hangul) {
                    format!(
                        "{} {} {} {}",
                        g.pick(KO_FAKE_SIDO),
                        g.pick(KO_FAKE_GU),
                        g.pick(KO_FAKE_ROAD),
                        1 + g.below(300)
                    )
                } else {
                    format!(
                        "{} {} Street, {}, IL 6{}",
                        1 + g.below(9000),
                        g.pick(EN_FAKE_STREET),
                        g.pick(EN_FAKE_CITY),
                        g.digits(4)
                    )
                }
            }
            PhiType::Age => "90".to_owned(),
            // Record numbers and other IDs keep their shape: digits stay
            // digits, letters letters, punctuation as is.
            _ => value
                .chars()
                .map(|c| {
                    if c.is_ascii_digit() {
                        char::from(b'0' + g.below(10) as u8)
                    } else if c.is_ascii_uppercase() {
                        char::from(b'A' + g.below(26) as u8)
                    } else if c.is_ascii_lowercase() {
                        char::from(b'a' + g.below(26) as u8)
                    } else if is_hangul(c) {
                        '가'
                    } else {
                        c
                    }
                })
                .collect(),
        })
    }
}

fn tag(ty: PhiType) -> String {
    format!("[{}]", ty.as_str())
}

fn name_words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-')
        .filter(|w| w.chars().count() >= 2)
}

fn shares_a_word(name: &str, avoid: &[&str]) -> bool {
    if name.chars().any(is_hangul) {
        // Korean names are written without spaces: compare the whole name.
        return avoid.contains(&name);
    }
    name_words(name).any(|w| avoid.iter().any(|a| a.eq_ignore_ascii_case(w)))
}

fn fake_name(g: &mut Gen, value: &str) -> String {
    if value.chars().any(is_hangul) {
        let n = value.chars().filter(|c| is_hangul(*c)).count().clamp(2, 4);
        let mut s = String::new();
        let given = if n == 4 {
            s.push_str(g.pick(KO_FAKE_COMPOUND));
            2
        } else {
            s.push_str(g.pick(KO_FAKE_SURNAMES));
            n - 1
        };
        for _ in 0..given {
            s.push(KO_FAKE_GIVEN[g.below(KO_FAKE_GIVEN.len())]);
        }
        s
    } else {
        let words = value.split_whitespace().count();
        let (first, last) = (g.pick(EN_FAKE_FIRST), g.pick(EN_FAKE_LAST));
        if value.contains(',') {
            format!("{last}, {first}")
        } else if words >= 3 {
            format!("{first} {}. {last}", char::from(b'A' + g.below(26) as u8))
        } else if words == 2 {
            format!("{first} {last}")
        } else {
            last.to_owned()
        }
    }
}

/// Replaces `spans` (from [`super::Detector::detect`] on the same `text`).
pub fn transform(
    text: &str,
    spans: &[Span],
    mode: Mode,
    ctx: &TransformContext<'_>,
) -> Result<String, TextError> {
    let mut c = Ctx {
        p: ctx.pseudonymizer,
        patient: ctx.patient,
        note_key: ctx.note_key,
        mode,
        offset: Offset::NotYet,
        avoid: Vec::new(),
    };
    if mode == Mode::Surrogate {
        for s in spans.iter().filter(|s| s.ty == PhiType::Name) {
            if let Some(v) = text.get(s.bytes.clone()) {
                c.avoid.extend(name_words(v));
            }
        }
    }
    let mut out = String::with_capacity(text.len() + spans.len() * 8);
    let mut at = 0;
    for s in spans {
        // Spans from another text (not on this text's boundaries) are skipped
        // rather than trusted.
        let (Some(before), Some(value)) = (text.get(at..s.bytes.start), text.get(s.bytes.clone()))
        else {
            continue;
        };
        out.push_str(before);
        out.push_str(&c.replacement(s.ty, value)?);
        at = s.bytes.end;
    }
    out.push_str(text.get(at..).unwrap_or_default());
    Ok(out)
}
