//! Subgroup specifications: `COL` splits by each value, `COL:cuts` splits a
//! numeric column at the cut points (`age:65` → `age<65`, `age>=65`).

use crate::ValidateError;

#[derive(Debug, Clone, PartialEq)]
pub struct SubgroupSpec {
    pub column: String,
    /// Ascending, distinct cut points; `None` splits by value.
    pub cuts: Option<Vec<f64>>,
}

impl SubgroupSpec {
    pub fn parse(s: &str) -> Result<SubgroupSpec, ValidateError> {
        let bad = |m: &str| ValidateError::Invalid(format!("invalid --subgroup {s:?}: {m}"));
        let (col, cuts) = match s.split_once(':') {
            None => (s.trim(), None),
            Some((c, rest)) => {
                let mut cuts = Vec::new();
                for part in rest.split(',') {
                    let v: f64 = part
                        .trim()
                        .parse()
                        .map_err(|_| bad("cut points must be numbers, e.g. age:50,65,80"))?;
                    if !v.is_finite() {
                        return Err(bad("cut points must be finite"));
                    }
                    cuts.push(v);
                }
                if cuts.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(bad("cut points must be strictly increasing"));
                }
                (c.trim(), Some(cuts))
            }
        };
        if col.is_empty() {
            return Err(bad("the column name is empty"));
        }
        Ok(SubgroupSpec {
            column: col.to_owned(),
            cuts,
        })
    }
}

/// A subgroup column's values, one per row.
#[derive(Debug, Clone)]
pub enum SubgroupValues {
    Text(Vec<Option<String>>),
    /// NaN is missing.
    Numeric(Vec<f64>),
}

fn fmt_cut(v: f64) -> String {
    format!("{v}")
}

/// Every row's group, found in one pass: `group[row]` indexes `names`.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// In a stable order: values sorted, cut intervals ascending, missing last.
    pub names: Vec<String>,
    pub group: Vec<u32>,
}

/// Assigns each row to exactly one named group.
pub fn assign(spec: &SubgroupSpec, values: &SubgroupValues) -> Assignment {
    let col = &spec.column;
    match (&spec.cuts, values) {
        (Some(cuts), SubgroupValues::Numeric(v)) => {
            let mut names = Vec::with_capacity(cuts.len() + 2);
            for k in 0..=cuts.len() {
                let lo = k.checked_sub(1).map(|j| cuts[j]);
                let hi = cuts.get(k).copied();
                names.push(match (lo, hi) {
                    (None, Some(h)) => format!("{col}<{}", fmt_cut(h)),
                    (Some(l), Some(h)) => format!("{}<={col}<{}", fmt_cut(l), fmt_cut(h)),
                    (Some(l), None) => format!("{col}>={}", fmt_cut(l)),
                    (None, None) => col.clone(),
                });
            }
            // Interval k holds cuts[k-1] <= x < cuts[k]: k = the cuts <= x.
            let missing = names.len() as u32;
            let group: Vec<u32> = v
                .iter()
                .map(|&x| {
                    if x.is_nan() {
                        missing
                    } else {
                        cuts.partition_point(|&c| c <= x) as u32
                    }
                })
                .collect();
            if group.contains(&missing) {
                names.push(format!("{col} missing"));
            }
            Assignment { names, group }
        }
        (_, SubgroupValues::Numeric(v)) => {
            let text: Vec<Option<String>> = v
                .iter()
                .map(|x| (!x.is_nan()).then(|| fmt_cut(*x)))
                .collect();
            assign_text(col, &text)
        }
        (_, SubgroupValues::Text(t)) => assign_text(col, t),
    }
}

/// Splits rows into named groups as boolean masks (see [`assign`]).
pub fn split(spec: &SubgroupSpec, values: &SubgroupValues) -> Vec<(String, Vec<bool>)> {
    let a = assign(spec, values);
    a.names
        .into_iter()
        .enumerate()
        .map(|(g, name)| (name, a.group.iter().map(|&i| i as usize == g).collect()))
        .collect()
}

/// FNV-1a: subgroup values are short, trusted-length strings, hashed once
/// per row; SipHash's DoS resistance buys nothing here and costs 2×.
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type BuildFnv = std::hash::BuildHasherDefault<Fnv>;

fn assign_text(col: &str, t: &[Option<String>]) -> Assignment {
    // Ids in order of first appearance (one hash lookup per row), then
    // renumbered so that groups come out in sorted order.
    let mut ids: std::collections::HashMap<&str, u32, BuildFnv> =
        std::collections::HashMap::default();
    let mut first: Vec<&str> = Vec::new();
    let mut seen: Vec<u32> = Vec::with_capacity(t.len());
    let mut any_missing = false;
    for v in t {
        match v {
            Some(v) => {
                let id = *ids.entry(v.as_str()).or_insert_with(|| {
                    first.push(v.as_str());
                    (first.len() - 1) as u32
                });
                seen.push(id);
            }
            None => {
                any_missing = true;
                seen.push(u32::MAX);
            }
        }
    }
    let mut sorted: Vec<u32> = (0..first.len() as u32).collect();
    sorted.sort_by(|&a, &b| first[a as usize].cmp(first[b as usize]));
    let mut rank = vec![0u32; first.len()];
    for (r, &id) in sorted.iter().enumerate() {
        rank[id as usize] = r as u32;
    }
    let missing = first.len() as u32;
    let group = seen
        .into_iter()
        .map(|id| {
            if id == u32::MAX {
                missing
            } else {
                rank[id as usize]
            }
        })
        .collect();
    let mut names: Vec<String> = sorted
        .iter()
        .map(|&id| format!("{col}={}", first[id as usize]))
        .collect();
    if any_missing {
        names.push(format!("{col} missing"));
    }
    Assignment { names, group }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_points_name_half_open_intervals() {
        let s = SubgroupSpec::parse("age:50,65,80").unwrap();
        let v = SubgroupValues::Numeric(vec![10.0, 50.0, 64.9, 80.0, f64::NAN]);
        let g = split(&s, &v);
        let names: Vec<_> = g.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "age<50",
                "50<=age<65",
                "65<=age<80",
                "age>=80",
                "age missing"
            ]
        );
        assert_eq!(g[1].1, vec![false, true, true, false, false]);
        assert_eq!(g[4].1, vec![false, false, false, false, true]);
    }

    #[test]
    fn text_groups_come_out_sorted_with_missing_last() {
        let s = SubgroupSpec::parse("region").unwrap();
        let v = SubgroupValues::Text(vec![
            Some("서울".into()),
            None,
            Some("부산".into()),
            Some("서울".into()),
        ]);
        let a = assign(&s, &v);
        assert_eq!(a.names, ["region=부산", "region=서울", "region missing"]);
        assert_eq!(a.group, [1, 2, 0, 1]);
    }

    #[test]
    fn bad_cut_points_are_refused() {
        assert!(SubgroupSpec::parse("age:65,50").is_err());
        assert!(SubgroupSpec::parse("age:x").is_err());
        assert!(SubgroupSpec::parse(":5").is_err());
    }
}
