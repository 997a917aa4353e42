//! Specific Character Set (0008,0005) decoding, ISO 2022 code extensions included.
//!
//! dicom-rs decodes single-byte sets, UTF-8 and GB18030, but not ISO 2022 code
//! extensions, which Korean PACS exports use (`\ISO 2022 IR 149`: ASCII in G0,
//! KS X 1001 designated into G1 by `ESC $ ) C`). This module owns that layer:
//! it follows the escape sequences of PS3.5 §6.1.2.5, resets to the initial
//! designations at the delimiters the standard names (backslash, CR, LF, FF,
//! TAB, and `^`/`=` in person names), and hands runs of bytes to `encoding_rs`
//! decoders (EUC-KR decodes KS X 1001 in GR; EUC-JP decodes JIS X 0208).
//!
//! Output is always UTF-8: the engine writes `ISO_IR 192`.

use encoding_rs::Encoding;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CharsetError {
    /// A defined term we do not decode. The term is not PHI, so it is named.
    #[error("unsupported specific character set {0:?}")]
    Unsupported(String),
}

/// A graphic set that can be designated into G0 or G1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    Ascii,
    /// JIS X 0201 Romaji: ASCII except two glyphs; decoded as ASCII.
    Romaji,
    /// A 96-character single-byte set in GR; `None` is ISO 8859-1 (decoded directly).
    Single(Option<&'static Encoding>),
    /// JIS X 0201 Katakana in GR.
    Katakana,
    /// A two-byte set, decoded by the EUC form of the given encoding.
    Double(&'static Encoding),
    /// JIS X 0208 / JIS X 0212 in G0 (GL), decoded as EUC-JP after setting the top bits.
    JisG0 {
        supplementary: bool,
    },
}

/// How a value is to be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A whole-string encoding with no code extensions (UTF-8, GB18030, GBK, 8859-x).
    Whole(&'static Encoding),
    /// ISO 8859-1 without code extensions (byte value = code point).
    Latin1,
    /// ISO 2022 with initial designations.
    Iso2022 { g0: Set, g1: Option<Set> },
}

/// The decoder for one dataset's Specific Character Set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charset {
    kind: Kind,
}

impl Default for Charset {
    /// The default repertoire (ISO IR 6). Bytes above 0x7F are not allowed
    /// there; real files have them, so they are read as ISO 8859-1 rather than lost.
    fn default() -> Self {
        Charset { kind: Kind::Latin1 }
    }
}

// None: not a single-byte term; Some(None): ISO 8859-1, decoded without a table.
#[allow(clippy::option_option)]
fn single_byte(term: &str) -> Option<Option<&'static Encoding>> {
    // `None` = ISO 8859-1, decoded without a table.
    Some(match term {
        "ISO_IR 100" | "ISO 2022 IR 100" => None,
        "ISO_IR 101" | "ISO 2022 IR 101" => Some(encoding_rs::ISO_8859_2),
        "ISO_IR 109" | "ISO 2022 IR 109" => Some(encoding_rs::ISO_8859_3),
        "ISO_IR 110" | "ISO 2022 IR 110" => Some(encoding_rs::ISO_8859_4),
        "ISO_IR 144" | "ISO 2022 IR 144" => Some(encoding_rs::ISO_8859_5),
        "ISO_IR 127" | "ISO 2022 IR 127" => Some(encoding_rs::ISO_8859_6),
        "ISO_IR 126" | "ISO 2022 IR 126" => Some(encoding_rs::ISO_8859_7),
        "ISO_IR 138" | "ISO 2022 IR 138" => Some(encoding_rs::ISO_8859_8),
        // WHATWG maps ISO 8859-9 to windows-1254, identical in the GR range.
        "ISO_IR 148" | "ISO 2022 IR 148" => Some(encoding_rs::WINDOWS_1254),
        "ISO_IR 203" | "ISO 2022 IR 203" => Some(encoding_rs::ISO_8859_15),
        "ISO_IR 166" | "ISO 2022 IR 166" => Some(encoding_rs::WINDOWS_874),
        _ => return None,
    })
}

impl Charset {
    /// Parses the raw value of (0008,0005). An empty value is the default.
    pub fn parse(raw: &[u8]) -> Result<Charset, CharsetError> {
        let text = String::from_utf8_lossy(raw);
        let terms: Vec<&str> = text
            .split('\\')
            .map(|t| t.trim_matches(|c: char| c == ' ' || c == '\0'))
            .collect();
        let first = terms.first().copied().unwrap_or("");
        let any_2022 = terms.iter().any(|t| t.starts_with("ISO 2022"));
        if !any_2022 {
            return Ok(Charset {
                kind: match first {
                    "" | "ISO_IR 6" => Kind::Latin1,
                    "ISO_IR 192" => Kind::Whole(encoding_rs::UTF_8),
                    "GB18030" => Kind::Whole(encoding_rs::GB18030),
                    "GBK" => Kind::Whole(encoding_rs::GBK),
                    "ISO_IR 13" => Kind::Iso2022 {
                        g0: Set::Romaji,
                        g1: Some(Set::Katakana),
                    },
                    t => match single_byte(t) {
                        Some(None) => Kind::Latin1,
                        Some(Some(enc)) => Kind::Whole(enc),
                        None => return Err(CharsetError::Unsupported(t.to_owned())),
                    },
                },
            });
        }
        // ISO 2022: every term must be one we can switch to.
        for t in &terms {
            if !matches!(
                *t,
                "" | "ISO 2022 IR 6"
                    | "ISO 2022 IR 13"
                    | "ISO 2022 IR 87"
                    | "ISO 2022 IR 159"
                    | "ISO 2022 IR 149"
                    | "ISO 2022 IR 58"
            ) && single_byte(t).is_none()
            {
                return Err(CharsetError::Unsupported((*t).to_owned()));
            }
        }
        let (g0, mut g1) = match first {
            "" | "ISO 2022 IR 6" => (Set::Ascii, None),
            "ISO 2022 IR 13" => (Set::Romaji, Some(Set::Katakana)),
            "ISO 2022 IR 149" => (Set::Ascii, Some(Set::Double(encoding_rs::EUC_KR))),
            "ISO 2022 IR 58" => (Set::Ascii, Some(Set::Double(encoding_rs::GBK))),
            t => match single_byte(t) {
                Some(enc) => (Set::Ascii, Some(Set::Single(enc))),
                None => (Set::Ascii, None),
            },
        };
        // Lenient: writers often omit the G1 escape for the only Korean or
        // Chinese set listed; GR bytes then mean that set.
        if g1.is_none() {
            if terms.contains(&"ISO 2022 IR 149") {
                g1 = Some(Set::Double(encoding_rs::EUC_KR));
            } else if terms.contains(&"ISO 2022 IR 58") {
                g1 = Some(Set::Double(encoding_rs::GBK));
            }
        }
        Ok(Charset {
            kind: Kind::Iso2022 { g0, g1 },
        })
    }

    /// True when the bytes are already UTF-8 (or plain ASCII), so a kept
    /// value can be written unchanged.
    pub fn is_utf8(&self) -> bool {
        matches!(self.kind, Kind::Whole(e) if e == encoding_rs::UTF_8)
    }

    /// Decodes one element value (all of its `\`-separated values).
    /// `person_name` makes `^` and `=` reset the code extensions too.
    pub fn decode(&self, bytes: &[u8], person_name: bool) -> String {
        match self.kind {
            Kind::Whole(enc) => enc.decode_without_bom_handling(bytes).0.into_owned(),
            Kind::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
            Kind::Iso2022 { g0, g1 } => decode_2022(bytes, g0, g1, person_name),
        }
    }
}

/// Appends a run of bytes of one set to `out`.
fn flush(out: &mut String, run: &mut Vec<u8>, set: Set) {
    if run.is_empty() {
        return;
    }
    match set {
        Set::Ascii | Set::Romaji => out.extend(run.iter().map(|&b| char::from(b))),
        Set::Single(None) => out.extend(run.iter().map(|&b| char::from(b | 0x80))),
        Set::Single(Some(enc)) => {
            let hi: Vec<u8> = run.iter().map(|&b| b | 0x80).collect();
            out.push_str(&enc.decode_without_bom_handling(&hi).0);
        }
        Set::Katakana => out.extend(run.iter().map(|&b| {
            (b | 0x80)
                .checked_sub(0xA1)
                .and_then(|d| char::from_u32(0xFF61 + u32::from(d)))
                .unwrap_or('\u{FFFD}')
        })),
        Set::Double(enc) => {
            let hi: Vec<u8> = run.iter().map(|&b| b | 0x80).collect();
            out.push_str(&enc.decode_without_bom_handling(&hi).0);
        }
        Set::JisG0 { supplementary } => {
            let mut euc = Vec::with_capacity(run.len() * 3 / 2);
            for pair in run.chunks(2) {
                if supplementary {
                    euc.push(0x8F);
                }
                euc.extend(pair.iter().map(|&b| b | 0x80));
            }
            out.push_str(&encoding_rs::EUC_JP.decode_without_bom_handling(&euc).0);
        }
    }
    run.clear();
}

/// The set an escape sequence designates, and whether into G1.
fn escape(seq: &[u8]) -> Option<(Set, bool, usize)> {
    // Returns (set, into_g1, length of the sequence after ESC).
    match seq {
        [b'(', b'B', ..] => Some((Set::Ascii, false, 2)),
        [b'(', b'J', ..] => Some((Set::Romaji, false, 2)),
        [b')', b'I', ..] => Some((Set::Katakana, true, 2)),
        [b'$', b'B' | b'@', ..] => Some((
            Set::JisG0 {
                supplementary: false,
            },
            false,
            2,
        )),
        [b'$', b'(', b'D', ..] => Some((
            Set::JisG0 {
                supplementary: true,
            },
            false,
            3,
        )),
        [b'$', b')', b'C', ..] => Some((Set::Double(encoding_rs::EUC_KR), true, 3)),
        [b'$', b')', b'A', ..] => Some((Set::Double(encoding_rs::GBK), true, 3)),
        [b'-', f, ..] => {
            let enc = match f {
                b'A' => None,
                b'B' => Some(encoding_rs::ISO_8859_2),
                b'C' => Some(encoding_rs::ISO_8859_3),
                b'D' => Some(encoding_rs::ISO_8859_4),
                b'L' => Some(encoding_rs::ISO_8859_5),
                b'G' => Some(encoding_rs::ISO_8859_6),
                b'F' => Some(encoding_rs::ISO_8859_7),
                b'H' => Some(encoding_rs::ISO_8859_8),
                b'M' => Some(encoding_rs::WINDOWS_1254),
                b'b' => Some(encoding_rs::ISO_8859_15),
                b'T' => Some(encoding_rs::WINDOWS_874),
                _ => return None,
            };
            Some((Set::Single(enc), true, 2))
        }
        _ => None,
    }
}

fn decode_2022(bytes: &[u8], init_g0: Set, init_g1: Option<Set>, pn: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    let (mut g0, mut g1) = (init_g0, init_g1);
    let mut run: Vec<u8> = Vec::new();
    let mut run_set = g0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0x1B {
            flush(&mut out, &mut run, run_set);
            match escape(&bytes[i + 1..]) {
                Some((set, into_g1, len)) => {
                    if into_g1 {
                        g1 = Some(set);
                    } else {
                        g0 = set;
                    }
                    i += 1 + len;
                }
                None => {
                    // An escape we do not know: drop the ESC byte only.
                    out.push('\u{FFFD}');
                    i += 1;
                }
            }
            continue;
        }
        let two_byte_g0 = matches!(g0, Set::JisG0 { .. });
        if b < 0x80 && two_byte_g0 && b > 0x20 {
            // A GL pair of JIS X 0208/0212: delimiters cannot occur inside it.
            if run_set != g0 {
                flush(&mut out, &mut run, run_set);
                run_set = g0;
            }
            run.push(b);
            if let Some(&b2) = bytes.get(i + 1) {
                run.push(b2);
            }
            i += 2;
            continue;
        }
        let delimiter =
            matches!(b, b'\\' | b'\r' | b'\n' | 0x0C | b'\t') || (pn && matches!(b, b'^' | b'='));
        if delimiter {
            flush(&mut out, &mut run, run_set);
            out.push(char::from(b));
            g0 = init_g0;
            g1 = init_g1;
            run_set = g0;
            i += 1;
            continue;
        }
        if b < 0x80 {
            let set = if two_byte_g0 { Set::Ascii } else { g0 };
            if run_set != set {
                flush(&mut out, &mut run, run_set);
                run_set = set;
            }
            run.push(b);
            i += 1;
        } else {
            let set = g1.unwrap_or(Set::Single(None));
            if run_set != set {
                flush(&mut out, &mut run, run_set);
                run_set = set;
            }
            run.push(b);
            if matches!(set, Set::Double(_)) {
                if let Some(&b2) = bytes.get(i + 1) {
                    run.push(b2);
                }
                i += 2;
            } else {
                i += 1;
            }
        }
    }
    flush(&mut out, &mut run, run_set);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn korean_person_name_with_escapes_decodes() {
        // Hong^Gildong=洪^吉洞=홍^길동 as PS3.5 Annex I.2 encodes it.
        let mut raw = b"Hong^Gildong=".to_vec();
        raw.extend_from_slice(b"\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=");
        raw.extend_from_slice(b"\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf");
        let cs = Charset::parse(b"\\ISO 2022 IR 149").unwrap();
        assert_eq!(cs.decode(&raw, true), "Hong^Gildong=洪^吉洞=홍^길동");
    }

    #[test]
    fn korean_gr_bytes_without_escape_are_ks_x_1001() {
        let cs = Charset::parse(b"\\ISO 2022 IR 149").unwrap();
        assert_eq!(cs.decode(b"\xc8\xab", false), "홍");
    }

    #[test]
    fn latin1_utf8_and_unknown_terms() {
        let cs = Charset::parse(b"ISO_IR 100").unwrap();
        assert_eq!(cs.decode(b"Buc^J\xe9r\xf4me", true), "Buc^Jérôme");
        let cs = Charset::parse(b"ISO_IR 192").unwrap();
        assert_eq!(cs.decode("홍길동".as_bytes(), true), "홍길동");
        assert!(cs.is_utf8());
        assert!(matches!(
            Charset::parse(b"ISO_IR 999"),
            Err(CharsetError::Unsupported(_))
        ));
    }

    #[test]
    fn japanese_jis_x_0208_in_g0() {
        // Yamada^Tarou=山田^太郎 (PS3.5 Annex H).
        let raw = b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B";
        let cs = Charset::parse(b"\\ISO 2022 IR 87").unwrap();
        assert_eq!(cs.decode(raw, true), "Yamada^Tarou=山田^太郎");
    }
}
