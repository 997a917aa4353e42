//! Differencing control (issue 6): the pseudonymised patients behind each
//! person-count cell are kept; a new cell whose patient set differs from an
//! earlier released one by more than nothing but fewer than the threshold
//! would let someone subtract the two and learn about a handful of patients
//! ("count all" versus "count all except one condition"), so it is refused
//! (masked) and the finding recorded.
//!
//! Pseudonymised ids are random 63-bit numbers, which compressed bitmaps
//! store one container per id; a sorted vector is smaller and far faster to
//! build and compare. Stored as `v2:` + base64 of the delta-encoded ids
//! (LEB128); older roaring bitmaps are still read.

use roaring::RoaringTreemap;
use sha2::{Digest, Sha256};

/// A set of patient ids, sorted and without duplicates.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct IdSet(Vec<u64>);

impl std::fmt::Debug for IdSet {
    // The ids are pseudonyms, but there is no reason to print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdSet({} ids)", self.0.len())
    }
}

impl IdSet {
    pub fn from_unsorted(mut ids: Vec<u64>) -> IdSet {
        ids.sort_unstable();
        ids.dedup();
        IdSet(ids)
    }

    pub fn len(&self) -> u64 {
        self.0.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// |self △ other|, counted only up to `limit` (then `limit` is returned).
    pub fn sym_diff_up_to(&self, other: &IdSet, limit: u64) -> u64 {
        let (a, b) = (&self.0, &other.0);
        let (mut i, mut j, mut d) = (0, 0, 0u64);
        while i < a.len() && j < b.len() {
            if d >= limit {
                return limit;
            }
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Equal => {
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => {
                    d += 1;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    d += 1;
                    j += 1;
                }
            }
        }
        (d + (a.len() - i) as u64 + (b.len() - j) as u64).min(limit)
    }
}

impl FromIterator<u64> for IdSet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> IdSet {
        IdSet::from_unsorted(iter.into_iter().collect())
    }
}

/// A text pseudonym as a 64-bit id (first 8 bytes of its SHA-256). Integer
/// pseudonyms (OMOP `person_id`) are used as they are.
pub fn text_id(s: &str) -> u64 {
    let h = Sha256::digest(s.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_be_bytes(b)
}

const V2: &str = "v2:";

pub fn encode(set: &IdSet) -> String {
    let mut bytes = Vec::with_capacity(set.0.len() * 8);
    let mut prev = 0u64;
    for &id in &set.0 {
        let mut delta = id - prev;
        prev = id;
        loop {
            let byte = (delta & 0x7f) as u8;
            delta >>= 7;
            if delta == 0 {
                bytes.push(byte);
                break;
            }
            bytes.push(byte | 0x80);
        }
    }
    format!("{V2}{}", data_encoding::BASE64.encode(&bytes))
}

pub fn decode(s: &str) -> Option<IdSet> {
    let Some(body) = s.strip_prefix(V2) else {
        // Stored before v2: a serialised roaring treemap.
        let bytes = data_encoding::BASE64.decode(s.as_bytes()).ok()?;
        let legacy = RoaringTreemap::deserialize_from(&bytes[..]).ok()?;
        return Some(IdSet(legacy.iter().collect()));
    };
    let bytes = data_encoding::BASE64.decode(body.as_bytes()).ok()?;
    let mut ids = Vec::with_capacity(bytes.len() / 6);
    let (mut prev, mut delta, mut shift) = (0u64, 0u64, 0u32);
    for b in bytes {
        if shift > 63 {
            return None;
        }
        delta |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            prev = prev.checked_add(delta)?;
            if !ids.is_empty() && delta == 0 {
                return None;
            }
            ids.push(prev);
            delta = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
    (shift == 0).then_some(IdSet(ids))
}

/// The earlier cell whose symmetric difference with `new` is non-empty but
/// below `threshold`, with that difference, if any.
pub fn closest_conflict<'a>(
    new: &IdSet,
    earlier: &'a [(i64, String, IdSet)],
    threshold: u64,
) -> Option<(i64, &'a str, u64)> {
    let n = new.len();
    earlier
        .iter()
        // |A △ B| ≥ ||A| − |B||: most pairs are ruled out by size alone.
        .filter(|(_, _, set)| n.abs_diff(set.len()) < threshold)
        .filter_map(|(id, cell, set)| {
            let d = new.sym_diff_up_to(set, threshold);
            (d > 0 && d < threshold).then_some((*id, cell.as_str(), d))
        })
        .min_by_key(|(_, _, d)| *d)
}

/// Why an output must not leave: the first of its cells (`mine`: any id,
/// `column|key` label, set) that differs from a released one by fewer
/// patients than the threshold. Used at submission and at release.
pub fn refusal(
    output: i64,
    mine: &[(i64, String, IdSet)],
    released: &[(i64, String, IdSet)],
    threshold: u64,
) -> Option<String> {
    mine.iter().find_map(|(_, cell, set)| {
        let (earlier, _, d) = closest_conflict(set, released, threshold)?;
        let col = cell.split('|').next().unwrap_or_default();
        Some(format!(
            "differencing: column {col} of output {output} differs from released output {earlier} by {d} patient(s), fewer than {threshold}; run the query again and the cell will be masked"
        ))
    })
}

/// The size ranges a released cell must fall in to possibly conflict with a
/// cell of one of `sizes`: `[n − t + 1, n + t − 1]`, merged.
pub fn near_ranges(sizes: &[i64], threshold: u64) -> Vec<(i64, i64)> {
    let t = i64::try_from(threshold).unwrap_or(i64::MAX);
    let mut r: Vec<(i64, i64)> = sizes
        .iter()
        .map(|n| (n.saturating_sub(t - 1), n.saturating_add(t - 1)))
        .filter(|(lo, hi)| lo <= hi)
        .collect();
    r.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(r.len());
    for (lo, hi) in r {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn count_all_versus_all_but_one_is_caught() {
        let all: IdSet = (1..=240u64).collect();
        let all_but_one: IdSet = (2..=240u64).collect();
        let earlier = vec![(1, "n|".to_owned(), all.clone())];
        let hit = closest_conflict(&all_but_one, &earlier, 5).unwrap();
        assert_eq!((hit.0, hit.2), (1, 1));
        // The same cell again, or a very different one, is fine.
        assert!(closest_conflict(&all, &earlier, 5).is_none());
        let half: IdSet = (1..=120u64).collect();
        assert!(closest_conflict(&half, &earlier, 5).is_none());
        // Same size, two patients swapped: a difference of 2.
        let swapped: IdSet = (2..=241u64).collect();
        assert_eq!(closest_conflict(&swapped, &earlier, 5).unwrap().2, 2);
    }

    #[test]
    fn sets_survive_the_catalog_and_old_bitmaps_are_read() {
        let ids: IdSet = [u64::MAX >> 1, 0, 7, 1 << 40, 123_456_789_012_345, 7]
            .into_iter()
            .collect();
        assert_eq!(ids.len(), 5);
        assert_eq!(decode(&encode(&ids)).unwrap(), ids);
        assert_eq!(
            decode(&encode(&IdSet::default())).unwrap(),
            IdSet::default()
        );
        let legacy: RoaringTreemap = [3u64, 1 << 50, 9].into_iter().collect();
        let mut bytes = Vec::new();
        legacy.serialize_into(&mut bytes).unwrap();
        let old = data_encoding::BASE64.encode(&bytes);
        assert_eq!(
            decode(&old).unwrap(),
            [3u64, 9, 1 << 50].into_iter().collect()
        );
        // Damaged text is refused, never misread.
        assert!(decode("v2:!!").is_none());
        assert!(decode("v2:gA==").is_none()); // a varint that never ends
        assert!(decode("v2:AQA=").is_none()); // a repeated id
    }

    #[test]
    fn differences_are_counted_exactly_below_the_limit() {
        let a: IdSet = (0..1000u64).map(|i| i * 3).collect();
        let b: IdSet = (0..1000u64)
            .map(|i| i * 3 + u64::from(i % 250 == 0))
            .collect();
        assert_eq!(a.sym_diff_up_to(&b, 100), 8);
        assert_eq!(a.sym_diff_up_to(&b, 5), 5);
        assert_eq!(a.sym_diff_up_to(&a, 5), 0);
        assert_eq!(
            near_ranges(&[100, 103, 300], 5),
            vec![(96, 107), (296, 304)]
        );
    }
}
