//! Pseudonyms, date shifts and DICOM UIDs (DESIGN §4).
//!
//! Everything derives from `h(domain, id) = HMAC-SHA256(key, domain ‖ 0x00 ‖
//! normalise(id))`. In `keyed` mode the pseudonym *is* a function of `h`; in
//! `vault` mode (implemented in `mdc-store`) `h` only indexes a table of random
//! tokens. Engines depend on the `Pseudonymizer` trait and never know which.

use std::fmt;

use hmac::{Hmac, Mac};
use mdc_types::{Pseudonym, SourceId};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

/// The namespace of a pseudonym, so that a patient and an encounter with the same
/// source number get unrelated pseudonyms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    Patient,
    Encounter,
    Provider,
    Accession,
    Record,
    /// Used only for date offsets.
    DateShift,
    /// Used only for DICOM UIDs.
    Uid,
}

impl Domain {
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Patient => "patient",
            Domain::Encounter => "encounter",
            Domain::Provider => "provider",
            Domain::Accession => "accession",
            Domain::Record => "record",
            Domain::DateShift => "dateshift",
            Domain::Uid => "uid",
        }
    }
}

/// A pseudonym in both forms: text (16 base32 characters) and a positive int64
/// for integer keys such as OMOP `person_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Token {
    pub text: Pseudonym,
    pub int: i64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PseudonymError {
    #[error("the source identifier is empty after normalisation")]
    EmptyId,
    #[error("pseudonym vault: {0}")]
    Vault(String),
}

/// The source of pseudonyms and date offsets for one data root.
pub trait Pseudonymizer: Send + Sync {
    fn token(&self, domain: Domain, id: &SourceId) -> Result<Token, PseudonymError>;
    /// The patient's date offset in days: never 0, within ±range.
    fn date_shift_days(&self, patient: &SourceId) -> Result<i32, PseudonymError>;
    /// First 8 hex digits of SHA-256 of the key, recorded in every manifest.
    fn key_id(&self) -> &str;
    /// `keyed` or `vault`.
    fn mode(&self) -> &'static str;

    fn patient(&self, id: &SourceId) -> Result<Pseudonym, PseudonymError> {
        Ok(self.token(Domain::Patient, id)?.text)
    }
}

/// The 32-byte pseudonym key. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct PseudonymKey([u8; 32]);

impl PseudonymKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PseudonymKey(bytes)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    pub fn key_id(&self) -> String {
        let digest = Sha256::digest(self.0);
        data_encoding::HEXLOWER.encode(&digest[..4])
    }

    /// `h(domain, id)` of DESIGN §4.
    pub fn h(&self, domain: Domain, id: &SourceId) -> Result<[u8; 32], PseudonymError> {
        let norm = normalise(id.expose());
        if norm.is_empty() {
            return Err(PseudonymError::EmptyId);
        }
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).map_err(|_| PseudonymError::EmptyId)?;
        mac.update(domain.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(norm.as_bytes());
        Ok(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PseudonymKey({})", self.key_id())
    }
}

/// Normalises a source identifier: trim, Unicode NFC, ASCII letters upper-cased.
pub fn normalise(id: &str) -> String {
    id.trim().nfc().map(|c| c.to_ascii_uppercase()).collect()
}

/// Text form of a digest: first 16 characters of unpadded upper-case base32.
pub fn text_form(h: &[u8]) -> Pseudonym {
    let encoded = data_encoding::BASE32_NOPAD.encode(&h[..10]);
    Pseudonym::from_token(encoded[..16].to_owned())
}

/// Integer form: first 8 bytes big-endian with the top bit cleared.
pub fn int_form(h: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    (u64::from_be_bytes(b) & 0x7fff_ffff_ffff_ffff) as i64
}

/// Maps a uniform `u64` to a non-zero offset in `[-range, -1] ∪ [1, range]`.
///
/// DESIGN §4 writes `(u mod 2R+1) − R, never 0`; we map onto the 2R non-zero
/// values directly so that no value is twice as likely as the others.
pub fn offset_from_u64(u: u64, range: u32) -> i32 {
    let r = u64::from(range.max(1));
    let v = u % (2 * r);
    if v < r {
        v as i32 - r as i32
    } else {
        (v - r + 1) as i32
    }
}

/// The keyed mode: pseudonyms are computed from the key alone.
#[derive(Debug, Clone)]
pub struct KeyedPseudonymizer {
    key: PseudonymKey,
    key_id: String,
    range: u32,
}

impl KeyedPseudonymizer {
    pub fn new(key: PseudonymKey, date_shift_range: u32) -> Self {
        let key_id = key.key_id();
        KeyedPseudonymizer {
            key,
            key_id,
            range: date_shift_range,
        }
    }

    /// A DICOM UID replacement: `2.25.` + decimal of the first 128 bits of `h("uid", uid)`.
    pub fn uid(&self, original: &str) -> Result<String, PseudonymError> {
        let h = self
            .key
            .h(Domain::Uid, &SourceId::new(original.to_owned()))?;
        let mut b = [0u8; 16];
        b.copy_from_slice(&h[..16]);
        Ok(format!("2.25.{}", u128::from_be_bytes(b)))
    }
}

impl Pseudonymizer for KeyedPseudonymizer {
    fn token(&self, domain: Domain, id: &SourceId) -> Result<Token, PseudonymError> {
        let h = self.key.h(domain, id)?;
        Ok(Token {
            text: text_form(&h),
            int: int_form(&h),
        })
    }

    fn date_shift_days(&self, patient: &SourceId) -> Result<i32, PseudonymError> {
        let h = self.key.h(Domain::DateShift, patient)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[..8]);
        Ok(offset_from_u64(u64::from_be_bytes(b), self.range))
    }

    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn mode(&self) -> &'static str {
        "keyed"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn keyed() -> KeyedPseudonymizer {
        KeyedPseudonymizer::new(PseudonymKey::from_bytes([7; 32]), 180)
    }

    fn id(s: &str) -> SourceId {
        SourceId::new(s.to_owned())
    }

    #[test]
    fn keyed_pseudonyms_match_an_independent_hmac() {
        // Independent computation with the hmac crate's one-shot API.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).unwrap();
        mac.update(b"patient\x00MRN00123");
        let h = mac.finalize().into_bytes();
        let expected = data_encoding::BASE32_NOPAD.encode(&h)[..16].to_owned();
        let t = keyed().token(Domain::Patient, &id("  mrn00123 ")).unwrap();
        assert_eq!(t.text.as_str(), expected);
        let top = u64::from_be_bytes(h[..8].try_into().unwrap()) & 0x7fff_ffff_ffff_ffff;
        assert_eq!(t.int, top as i64);
        assert!(t.int >= 0);
    }

    #[test]
    fn normalisation_makes_case_space_and_composition_irrelevant() {
        let p = keyed();
        let a = p.token(Domain::Patient, &id("ab-12")).unwrap();
        let b = p.token(Domain::Patient, &id(" AB-12\t")).unwrap();
        assert_eq!(a, b);
        // 한 as one precomposed code point vs. conjoining jamo.
        let composed = p.token(Domain::Patient, &id("\u{D55C}1")).unwrap();
        let decomposed = p
            .token(Domain::Patient, &id("\u{1112}\u{1161}\u{11AB}1"))
            .unwrap();
        assert_eq!(composed, decomposed);
    }

    #[test]
    fn domains_separate_pseudonyms_and_samples_are_injective() {
        let p = keyed();
        assert_ne!(
            p.token(Domain::Patient, &id("1")).unwrap(),
            p.token(Domain::Encounter, &id("1")).unwrap()
        );
        let mut texts = HashSet::new();
        let mut ints = HashSet::new();
        for n in 0..20_000 {
            let t = p.token(Domain::Patient, &id(&format!("{n:08}"))).unwrap();
            assert!(texts.insert(t.text));
            assert!(ints.insert(t.int));
        }
    }

    #[test]
    fn date_shifts_are_never_zero_and_stay_in_range() {
        for range in [1u32, 2, 180, 365] {
            let p = KeyedPseudonymizer::new(PseudonymKey::from_bytes([1; 32]), range);
            let mut seen = HashSet::new();
            for n in 0..5_000 {
                let d = p.date_shift_days(&id(&n.to_string())).unwrap();
                assert!(d != 0 && d.unsigned_abs() <= range, "{d} out of ±{range}");
                seen.insert(d);
            }
            if range <= 2 {
                assert_eq!(
                    seen.len(),
                    2 * range as usize,
                    "every non-zero offset is reachable"
                );
            }
        }
        assert_eq!(offset_from_u64(0, 3), -3);
        assert_eq!(offset_from_u64(2, 3), -1);
        assert_eq!(offset_from_u64(3, 3), 1);
        assert_eq!(offset_from_u64(5, 3), 3);
    }

    #[test]
    fn empty_ids_are_refused_and_keys_are_not_debug_printed() {
        assert!(matches!(
            keyed().token(Domain::Patient, &id("   ")),
            Err(PseudonymError::EmptyId)
        ));
        let dbg = format!("{:?}", PseudonymKey::from_bytes([7; 32]));
        assert!(!dbg.contains("7, 7"));
    }

    #[test]
    fn dicom_uids_are_deterministic_and_well_formed() {
        let p = keyed();
        let a = p.uid("1.2.840.113619.2.55.3").unwrap();
        assert_eq!(a, p.uid("1.2.840.113619.2.55.3").unwrap());
        assert!(a.starts_with("2.25.") && a.len() <= 64);
        assert_ne!(a, p.uid("1.2.840.113619.2.55.4").unwrap());
    }
}
