//! Differencing control (issue 6): the pseudonymised patients behind each
//! person-count cell are kept as a roaring bitmap; a new cell whose patient set
//! differs from an earlier released one by more than nothing but fewer than
//! the threshold would let someone subtract the two and learn about a handful
//! of patients ("count all" versus "count all except one condition"), so it is
//! refused (masked) and the finding recorded.

use roaring::RoaringTreemap;
use sha2::{Digest, Sha256};

/// A text pseudonym as a 64-bit id (first 8 bytes of its SHA-256). Integer
/// pseudonyms (OMOP `person_id`) are used as they are.
pub fn text_id(s: &str) -> u64 {
    let h = Sha256::digest(s.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_be_bytes(b)
}

pub fn encode(set: &RoaringTreemap) -> String {
    let mut bytes = Vec::with_capacity(set.serialized_size());
    if set.serialize_into(&mut bytes).is_err() {
        return String::new();
    }
    data_encoding::BASE64.encode(&bytes)
}

pub fn decode(s: &str) -> Option<RoaringTreemap> {
    let bytes = data_encoding::BASE64.decode(s.as_bytes()).ok()?;
    RoaringTreemap::deserialize_from(&bytes[..]).ok()
}

/// The earlier cell whose symmetric difference with `new` is non-empty but
/// below `threshold`, with that difference, if any.
pub fn closest_conflict<'a>(
    new: &RoaringTreemap,
    earlier: &'a [(i64, String, RoaringTreemap)],
    threshold: u64,
) -> Option<(i64, &'a str, u64)> {
    let n = new.len();
    earlier
        .iter()
        // |A △ B| ≥ ||A| − |B||: most pairs are ruled out by size alone.
        .filter(|(_, _, set)| n.abs_diff(set.len()) < threshold)
        .filter_map(|(id, cell, set)| {
            let d = (new ^ set).len();
            (d > 0 && d < threshold).then_some((*id, cell.as_str(), d))
        })
        .min_by_key(|(_, _, d)| *d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn count_all_versus_all_but_one_is_caught() {
        let all: RoaringTreemap = (1..=240u64).collect();
        let all_but_one: RoaringTreemap = (2..=240u64).collect();
        let earlier = vec![(1, "n|".to_owned(), all.clone())];
        let hit = closest_conflict(&all_but_one, &earlier, 5).unwrap();
        assert_eq!((hit.0, hit.2), (1, 1));
        // The same cell again, or a very different one, is fine.
        assert!(closest_conflict(&all, &earlier, 5).is_none());
        let half: RoaringTreemap = (1..=120u64).collect();
        assert!(closest_conflict(&half, &earlier, 5).is_none());
        // Bitmaps survive the round trip through the catalog.
        assert_eq!(decode(&encode(&all)).unwrap(), all);
    }
}
