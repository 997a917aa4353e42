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

/// Splits rows into named groups (in a stable order: values sorted, cut
/// intervals ascending, missing last).
pub fn split(spec: &SubgroupSpec, values: &SubgroupValues) -> Vec<(String, Vec<bool>)> {
    let col = &spec.column;
    match (&spec.cuts, values) {
        (Some(cuts), SubgroupValues::Numeric(v)) => {
            let mut out = Vec::new();
            for k in 0..=cuts.len() {
                let lo = k.checked_sub(1).map(|j| cuts[j]);
                let hi = cuts.get(k).copied();
                let name = match (lo, hi) {
                    (None, Some(h)) => format!("{col}<{}", fmt_cut(h)),
                    (Some(l), Some(h)) => format!("{}<={col}<{}", fmt_cut(l), fmt_cut(h)),
                    (Some(l), None) => format!("{col}>={}", fmt_cut(l)),
                    (None, None) => col.clone(),
                };
                let mask = v
                    .iter()
                    .map(|&x| !x.is_nan() && lo.is_none_or(|l| x >= l) && hi.is_none_or(|h| x < h))
                    .collect();
                out.push((name, mask));
            }
            if v.iter().any(|x| x.is_nan()) {
                out.push((
                    format!("{col} missing"),
                    v.iter().map(|x| x.is_nan()).collect(),
                ));
            }
            out
        }
        (_, SubgroupValues::Numeric(v)) => {
            let text: Vec<Option<String>> = v
                .iter()
                .map(|x| (!x.is_nan()).then(|| fmt_cut(*x)))
                .collect();
            split_text(col, &text)
        }
        (_, SubgroupValues::Text(t)) => split_text(col, t),
    }
}

fn split_text(col: &str, t: &[Option<String>]) -> Vec<(String, Vec<bool>)> {
    // One pass assigns each row its group (distinct values in sorted order);
    // the masks are built from those indices.
    let mut keys: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for v in t.iter().flatten() {
        let len = keys.len();
        keys.entry(v.as_str()).or_insert(len);
    }
    let mut rank = vec![0usize; keys.len()];
    for (r, (_, &first_seen)) in keys.iter().enumerate() {
        rank[first_seen] = r;
    }
    let missing = keys.len();
    let idx: Vec<usize> = t
        .iter()
        .map(|v| v.as_deref().map_or(missing, |k| rank[keys[k]]))
        .collect();
    let mut names: Vec<String> = keys.keys().map(|k| format!("{col}={k}")).collect();
    if idx.contains(&missing) {
        names.push(format!("{col} missing"));
    }
    names
        .into_iter()
        .enumerate()
        .map(|(g, name)| (name, idx.iter().map(|&i| i == g).collect()))
        .collect()
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
    }

    #[test]
    fn bad_cut_points_are_refused() {
        assert!(SubgroupSpec::parse("age:65,50").is_err());
        assert!(SubgroupSpec::parse("age:x").is_err());
        assert!(SubgroupSpec::parse(":5").is_err());
    }
}
