//! Re-identification risk under the k-anonymity model, and automatic
//! generalisation toward a target k.
//!
//! Records are grouped into equivalence classes by their quasi-identifiers
//! (QIs). With `f` the size of a record's class in the released sample and
//! `F` its size in the population (F = f when no population is given):
//! - k = the smallest class size;
//! - prosecutor risk of a record = 1/f (the attacker knows the person is in
//!   the data); highest = 1/k, average = classes / records;
//! - journalist risk: highest = max 1/F over the sample's classes;
//! - marketer risk = (1/n) Σ f/F over classes (the expected share of records
//!   re-identified when everyone is matched), = classes / records without a
//!   population;
//! - records at risk = records in classes smaller than the threshold;
//! - distinct l-diversity of a sensitive column = the fewest distinct values
//!   of it in any class.
//!
//! The caller dictionary-encodes each QI column (`Encoder`) so that a class
//! key is a few integers packed into a `u128`; 10 M rows with 4 QIs is a
//! hash-map pass.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::generalize::{age_band_width, korean_sido, korean_sigungu, parse_number, postal_prefix};
use super::value::{civil_from_days, parse_date, parse_datetime, MICROS_PER_DAY};

/// Maps the values of one column to dense codes (null has its own code 0).
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    map: HashMap<String, u32>,
    values: Vec<Option<String>>,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder {
            map: HashMap::new(),
            values: vec![None],
        }
    }

    pub fn code(&mut self, v: Option<&str>) -> u32 {
        let Some(v) = v else { return 0 };
        if let Some(c) = self.map.get(v) {
            return *c;
        }
        let c = self.values.len() as u32;
        self.map.insert(v.to_owned(), c);
        self.values.push(Some(v.to_owned()));
        c
    }

    /// Number of codes, null included.
    pub fn cardinality(&self) -> usize {
        self.values.len()
    }

    pub fn value(&self, code: u32) -> Option<&str> {
        self.values.get(code as usize).and_then(|v| v.as_deref())
    }
}

/// Packs per-column codes into one key; `None` if the radices overflow 128 bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPacker {
    radices: Vec<u128>,
}

impl KeyPacker {
    pub fn new(cardinalities: &[usize]) -> Option<KeyPacker> {
        let mut total: u128 = 1;
        for c in cardinalities {
            total = total.checked_mul(*c.max(&1) as u128)?;
        }
        Some(KeyPacker {
            radices: cardinalities.iter().map(|c| (*c).max(1) as u128).collect(),
        })
    }

    pub fn pack(&self, codes: impl IntoIterator<Item = u32>) -> u128 {
        let mut k: u128 = 0;
        for (c, r) in codes.into_iter().zip(&self.radices) {
            k = k * r + u128::from(c);
        }
        k
    }
}

/// The distinct QI combinations and how many records have each.
#[derive(Debug, Clone, Default)]
pub struct Classes {
    pub sizes: HashMap<u128, u64>,
    /// Distinct sensitive codes per class (only when a sensitive column is given).
    pub sensitive: Option<HashMap<u128, HashSet<u32>>>,
    pub records: u64,
}

impl Classes {
    /// Groups rows by `keys` (one packed key per row), with an optional
    /// sensitive code per row.
    pub fn add(&mut self, keys: &[u128], sensitive: Option<&[u32]>) {
        for (i, k) in keys.iter().enumerate() {
            *self.sizes.entry(*k).or_insert(0) += 1;
            if let Some(s) = sensitive {
                let set = self
                    .sensitive
                    .get_or_insert_with(HashMap::new)
                    .entry(*k)
                    .or_default();
                if let Some(c) = s.get(i) {
                    set.insert(*c);
                }
            }
        }
        self.records += keys.len() as u64;
    }
}

/// l-diversity of one sensitive column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LDiversity {
    pub column: String,
    /// The fewest distinct sensitive values in any class.
    pub l: u64,
    /// Classes (and their records) with a single sensitive value: attribute disclosure.
    pub classes_below_2: u64,
    pub records_below_2: u64,
}

/// The risk of one table under one set of QIs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskSummary {
    pub qi: Vec<String>,
    pub records: u64,
    pub classes: u64,
    /// Smallest class size (0 for an empty table).
    pub k: u64,
    pub threshold: u64,
    pub records_at_risk: u64,
    pub classes_at_risk: u64,
    pub prosecutor_max: f64,
    pub prosecutor_avg: f64,
    pub journalist_max: f64,
    pub marketer: f64,
    /// `sample` (F = f) or `population` (a population table was given).
    pub population: String,
    pub l_diversity: Option<LDiversity>,
    /// Classes by size: 1, 2, 3, 4, 5–9, 10+.
    pub class_sizes: Vec<(String, u64)>,
}

/// Summarises `classes`. `population` maps the same packed keys to population
/// class sizes (for journalist and marketer risk).
#[allow(clippy::implicit_hasher)]
pub fn summarize(
    qi: &[String],
    classes: &Classes,
    threshold: u64,
    population: Option<&HashMap<u128, u64>>,
    sensitive_name: Option<&str>,
) -> RiskSummary {
    let n = classes.records;
    let k = classes.sizes.values().copied().min().unwrap_or(0);
    let mut at_risk = 0;
    let mut classes_at_risk = 0;
    let mut journalist_max: f64 = 0.0;
    let mut marketer_sum = 0.0;
    let mut hist = [0u64; 6];
    for (key, f) in &classes.sizes {
        if *f < threshold {
            at_risk += f;
            classes_at_risk += 1;
        }
        let big_f = population
            .and_then(|p| p.get(key))
            .copied()
            .unwrap_or(*f)
            .max(*f);
        journalist_max = journalist_max.max(1.0 / big_f as f64);
        marketer_sum += *f as f64 / big_f as f64;
        let b = match f {
            1 => 0,
            2 => 1,
            3 => 2,
            4 => 3,
            5..=9 => 4,
            _ => 5,
        };
        hist[b] += 1;
    }
    let l_diversity = classes.sensitive.as_ref().map(|s| {
        let mut l = u64::MAX;
        let mut below = 0;
        let mut rec_below = 0;
        for (key, set) in s {
            let d = set.len() as u64;
            l = l.min(d);
            if d < 2 {
                below += 1;
                rec_below += classes.sizes.get(key).copied().unwrap_or(0);
            }
        }
        LDiversity {
            column: sensitive_name.unwrap_or("").to_owned(),
            l: if l == u64::MAX { 0 } else { l },
            classes_below_2: below,
            records_below_2: rec_below,
        }
    });
    let c = classes.sizes.len() as u64;
    RiskSummary {
        qi: qi.to_vec(),
        records: n,
        classes: c,
        k,
        threshold,
        records_at_risk: at_risk,
        classes_at_risk,
        prosecutor_max: if k == 0 { 0.0 } else { 1.0 / k as f64 },
        prosecutor_avg: if n == 0 { 0.0 } else { c as f64 / n as f64 },
        journalist_max,
        marketer: if n == 0 { 0.0 } else { marketer_sum / n as f64 },
        population: if population.is_some() {
            "population"
        } else {
            "sample"
        }
        .to_owned(),
        l_diversity,
        class_sizes: ["1", "2", "3", "4", "5-9", "10+"]
            .iter()
            .zip(hist)
            .map(|(l, c)| ((*l).to_owned(), c))
            .collect(),
    }
}

/// The generalisation hierarchy of a quasi-identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HierarchyKind {
    /// Numbers (ages): exact, 5-, 10-, 20-year bands (90+ pooled), `*`.
    Number,
    /// Dates: day, month, year, `*`.
    Date,
    /// Korean addresses: full, 시/군/구, 시/도, `*`.
    KoreanAddress,
    /// Postal codes: 5, 3, 2 digits, `*`.
    Postal,
    /// Anything else: the value, `*`.
    Categorical,
}

impl HierarchyKind {
    /// Levels above the value itself (the top level is `*`).
    pub fn height(self) -> usize {
        match self {
            HierarchyKind::Number => 4,
            HierarchyKind::Date | HierarchyKind::KoreanAddress | HierarchyKind::Postal => 3,
            HierarchyKind::Categorical => 1,
        }
    }

    /// Guesses the hierarchy from the column name and its values: most
    /// non-null values must parse for a specific kind.
    pub fn infer<'a>(name: &str, values: impl Iterator<Item = &'a str>) -> HierarchyKind {
        let (mut n, mut num, mut date, mut addr, mut postal) = (0, 0, 0, 0, 0);
        for v in values.take(10_000) {
            n += 1;
            if parse_number(v).is_some() {
                num += 1;
            }
            if parse_date(v).is_some() || parse_datetime(v).is_some() {
                date += 1;
            }
            if korean_sido(v).is_some() {
                addr += 1;
            }
            if v.trim().len() == 5 && v.trim().bytes().all(|b| b.is_ascii_digit()) {
                postal += 1;
            }
        }
        let lname = name.to_ascii_lowercase();
        let most = |c: usize| n > 0 && c * 10 >= n * 9;
        if most(postal) && (lname.contains("zip") || lname.contains("postal")) {
            HierarchyKind::Postal
        } else if most(date) {
            HierarchyKind::Date
        } else if most(num) {
            HierarchyKind::Number
        } else if most(addr) {
            HierarchyKind::KoreanAddress
        } else {
            HierarchyKind::Categorical
        }
    }

    /// `value` generalised to `level` (0 = itself, `height()` = `*`).
    pub fn generalize(self, value: &str, level: usize) -> String {
        if level == 0 {
            return value.to_owned();
        }
        if level >= self.height() {
            return "*".to_owned();
        }
        let out = match self {
            HierarchyKind::Number => parse_number(value).map(|x| {
                let w = [1, 5, 10, 20][level.min(3)];
                let v = x.floor() as i64;
                if (0..130).contains(&v) {
                    // An age: bands with 90+ pooled.
                    age_band_width(v, w)
                } else {
                    // A year or another number: plain bands.
                    let lo = v.div_euclid(w) * w;
                    format!("{lo}-{}", lo + w - 1)
                }
            }),
            HierarchyKind::Date => {
                let d = parse_date(value)
                    .or_else(|| parse_datetime(value).map(|t| t.div_euclid(MICROS_PER_DAY) as i32));
                d.map(|d| {
                    let (y, m, _) = civil_from_days(d);
                    if level == 1 {
                        format!("{y:04}-{m:02}")
                    } else {
                        format!("{y:04}")
                    }
                })
            }
            HierarchyKind::KoreanAddress => {
                if level == 1 {
                    korean_sigungu(value)
                } else {
                    korean_sido(value).map(str::to_owned)
                }
            }
            HierarchyKind::Postal => postal_prefix(value, if level == 1 { 3 } else { 2 }),
            HierarchyKind::Categorical => None,
        };
        out.unwrap_or_else(|| "*".to_owned())
    }
}

/// One quasi-identifier prepared for the lattice search: its distinct values
/// and, per level, the code of each value's generalisation.
#[derive(Debug, Clone)]
pub struct QiHierarchy {
    pub name: String,
    pub kind: HierarchyKind,
    /// The lowest level allowed (the policy may already require some).
    pub min_level: usize,
    /// `codes[level][value code]` = code of the generalised value at that level.
    codes: Vec<Vec<u32>>,
    /// `labels[level][generalised code]`.
    labels: Vec<Vec<String>>,
}

impl QiHierarchy {
    /// Builds the hierarchy over the encoder's values (code 0, null, stays null-ish `*`).
    pub fn new(name: &str, kind: HierarchyKind, min_level: usize, enc: &Encoder) -> QiHierarchy {
        let mut codes = Vec::new();
        let mut labels = Vec::new();
        for level in 0..=kind.height() {
            let mut m: HashMap<String, u32> = HashMap::new();
            let mut lab = Vec::new();
            let mut col = Vec::with_capacity(enc.cardinality());
            for c in 0..enc.cardinality() {
                let g = match enc.value(c as u32) {
                    Some(v) => kind.generalize(v, level),
                    None => String::new(),
                };
                let next = m.len() as u32;
                let code = *m.entry(g.clone()).or_insert_with(|| {
                    lab.push(g);
                    next
                });
                col.push(code);
            }
            codes.push(col);
            labels.push(lab);
        }
        QiHierarchy {
            name: name.to_owned(),
            kind,
            min_level: min_level.min(kind.height()),
            codes,
            labels,
        }
    }

    pub fn height(&self) -> usize {
        self.kind.height()
    }

    pub fn code_at(&self, level: usize, value_code: u32) -> u32 {
        self.codes
            .get(level)
            .and_then(|c| c.get(value_code as usize))
            .copied()
            .unwrap_or(0)
    }

    pub fn label(&self, level: usize, gen_code: u32) -> Option<&str> {
        self.labels
            .get(level)
            .and_then(|l| l.get(gen_code as usize))
            .map(String::as_str)
    }

    fn cardinality(&self, level: usize) -> usize {
        self.labels.get(level).map_or(1, Vec::len)
    }
}

/// The generalisation chosen for a target k.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generalization {
    pub target_k: u64,
    /// QI name → level and hierarchy.
    pub levels: Vec<(String, usize, HierarchyKind)>,
    pub suppressed_records: u64,
    pub suppressed_classes: u64,
    /// Precision loss (Sweeney): mean over QIs of level / height, in [0, 1].
    pub precision_loss: f64,
    /// Share of records suppressed.
    pub suppression_share: f64,
    pub nodes_searched: u64,
    /// Packed keys (at the chosen levels) of the classes to suppress.
    #[serde(skip)]
    pub suppress: HashSet<u128>,
    #[serde(skip)]
    packer: Option<KeyPacker>,
}

impl Generalization {
    /// The packed key of a record, from its value codes, at the chosen levels.
    pub fn key(&self, hierarchies: &[QiHierarchy], value_codes: &[u32]) -> u128 {
        match &self.packer {
            Some(p) => p.pack(
                hierarchies
                    .iter()
                    .zip(&self.levels)
                    .zip(value_codes)
                    .map(|((h, (_, l, _)), c)| h.code_at(*l, *c)),
            ),
            None => 0,
        }
    }
}

/// Searches the lattice of generalisation levels for the node with the least
/// precision loss whose classes smaller than `k` hold at most
/// `max_suppression` of the records; those classes are suppressed.
/// `tuples` are the distinct combinations of value codes with their counts.
#[allow(clippy::type_complexity)]
pub fn anonymize(
    hierarchies: &[QiHierarchy],
    tuples: &[(Vec<u32>, u64)],
    k: u64,
    max_suppression: f64,
) -> Option<Generalization> {
    let n: u64 = tuples.iter().map(|(_, c)| c).sum();
    let limit = (max_suppression.clamp(0.0, 1.0) * n as f64).floor() as u64;
    let ranges: Vec<(usize, usize)> = hierarchies
        .iter()
        .map(|h| (h.min_level, h.height()))
        .collect();
    let mut node: Vec<usize> = ranges.iter().map(|r| r.0).collect();
    let mut best: Option<(f64, u64, Vec<usize>, HashSet<u128>, KeyPacker)> = None;
    let mut searched = 0u64;
    loop {
        searched += 1;
        let loss = if hierarchies.is_empty() {
            0.0
        } else {
            hierarchies
                .iter()
                .zip(&node)
                .map(|(h, l)| *l as f64 / h.height() as f64)
                .sum::<f64>()
                / hierarchies.len() as f64
        };
        let better_possible = best.as_ref().is_none_or(|b| loss <= b.0);
        if better_possible {
            let cards: Vec<usize> = hierarchies
                .iter()
                .zip(&node)
                .map(|(h, l)| h.cardinality(*l))
                .collect();
            if let Some(packer) = KeyPacker::new(&cards) {
                let mut sizes: HashMap<u128, u64> = HashMap::new();
                for (codes, c) in tuples {
                    let key = packer.pack(
                        hierarchies
                            .iter()
                            .zip(&node)
                            .zip(codes)
                            .map(|((h, l), v)| h.code_at(*l, *v)),
                    );
                    *sizes.entry(key).or_insert(0) += c;
                }
                let small: HashSet<u128> = sizes
                    .iter()
                    .filter(|(_, s)| **s < k)
                    .map(|(key, _)| *key)
                    .collect();
                let suppressed: u64 = small
                    .iter()
                    .map(|key| sizes.get(key).copied().unwrap_or(0))
                    .sum();
                if suppressed <= limit {
                    let take = match &best {
                        None => true,
                        Some(b) => {
                            loss < b.0 - 1e-12 || ((loss - b.0).abs() <= 1e-12 && suppressed < b.1)
                        }
                    };
                    if take {
                        best = Some((loss, suppressed, node.clone(), small, packer));
                    }
                }
            }
        }
        // Next node of the lattice (odometer order).
        let mut i = 0;
        loop {
            if i == node.len() {
                let (loss, suppressed, levels, small, packer) = best?;
                return Some(Generalization {
                    target_k: k,
                    levels: hierarchies
                        .iter()
                        .zip(&levels)
                        .map(|(h, l)| (h.name.clone(), *l, h.kind))
                        .collect(),
                    suppressed_records: suppressed,
                    suppressed_classes: small.len() as u64,
                    precision_loss: loss,
                    suppression_share: if n == 0 {
                        0.0
                    } else {
                        suppressed as f64 / n as f64
                    },
                    nodes_searched: searched,
                    suppress: small,
                    packer: Some(packer),
                });
            }
            if node[i] < ranges[i].1 {
                node[i] += 1;
                break;
            }
            node[i] = ranges[i].0;
            i += 1;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The hand-computed example of docs/structured-deid.md: ten records,
    /// QIs (age band, sex), sensitive diagnosis.
    #[test]
    fn risk_matches_a_hand_computed_example() {
        let rows = [
            ("30-39", "F", "flu"),
            ("30-39", "F", "flu"),
            ("30-39", "F", "asthma"),
            ("30-39", "M", "flu"),
            ("30-39", "M", "diabetes"),
            ("40-49", "F", "flu"),
            ("40-49", "F", "flu"),
            ("40-49", "F", "flu"),
            ("40-49", "F", "flu"),
            ("50-59", "M", "cancer"),
        ];
        let (mut a, mut s, mut d) = (Encoder::new(), Encoder::new(), Encoder::new());
        let codes: Vec<(u32, u32, u32)> = rows
            .iter()
            .map(|(x, y, z)| (a.code(Some(x)), s.code(Some(y)), d.code(Some(z))))
            .collect();
        let packer = KeyPacker::new(&[a.cardinality(), s.cardinality()]).unwrap();
        let keys: Vec<u128> = codes
            .iter()
            .map(|(x, y, _)| packer.pack([*x, *y]))
            .collect();
        let sens: Vec<u32> = codes.iter().map(|c| c.2).collect();
        let mut cl = Classes::default();
        cl.add(&keys, Some(&sens));
        let r = summarize(
            &["age".into(), "sex".into()],
            &cl,
            3,
            None,
            Some("diagnosis"),
        );
        // Classes: (30-39,F)=3, (30-39,M)=2, (40-49,F)=4, (50-59,M)=1.
        assert_eq!((r.records, r.classes, r.k), (10, 4, 1));
        // Below 3: the classes of 2 and 1 → 3 records.
        assert_eq!((r.records_at_risk, r.classes_at_risk), (3, 2));
        assert!((r.prosecutor_max - 1.0).abs() < 1e-12);
        assert!((r.prosecutor_avg - 0.4).abs() < 1e-12);
        assert!((r.marketer - 0.4).abs() < 1e-12);
        let l = r.l_diversity.unwrap();
        // (40-49,F) all flu and (50-59,M) one cancer: l = 1, two classes, 5 records.
        assert_eq!((l.l, l.classes_below_2, l.records_below_2), (1, 2, 5));
        // With a population where every class is 10× larger.
        let pop: HashMap<u128, u64> = cl.sizes.iter().map(|(k, v)| (*k, v * 10)).collect();
        let r = summarize(&["age".into(), "sex".into()], &cl, 3, Some(&pop), None);
        assert!((r.journalist_max - 0.1).abs() < 1e-12);
        assert!((r.marketer - 0.04).abs() < 1e-12);
    }

    #[test]
    fn anonymize_reaches_k_with_least_loss() {
        let mut age = Encoder::new();
        let mut sex = Encoder::new();
        let mut tuples: HashMap<Vec<u32>, u64> = HashMap::new();
        for i in 0..200u32 {
            let a = age.code(Some(&(20 + i % 50).to_string()));
            let s = sex.code(Some(if i % 2 == 0 { "F" } else { "M" }));
            *tuples.entry(vec![a, s]).or_insert(0) += 1;
        }
        let tuples: Vec<(Vec<u32>, u64)> = tuples.into_iter().collect();
        let h = vec![
            QiHierarchy::new("age", HierarchyKind::Number, 0, &age),
            QiHierarchy::new("sex", HierarchyKind::Categorical, 0, &sex),
        ];
        let g = anonymize(&h, &tuples, 5, 0.0).unwrap();
        // Exact ages give classes of 4; 5-year bands give classes of 10 per sex.
        assert_eq!(g.levels[0].1, 1);
        assert_eq!(g.levels[1].1, 0);
        assert_eq!(g.suppressed_records, 0);
        assert!((g.precision_loss - 0.125).abs() < 1e-12);
    }

    #[test]
    fn hierarchies_are_inferred_and_climb_to_star() {
        assert_eq!(
            HierarchyKind::infer("age", ["34", "71"].into_iter()),
            HierarchyKind::Number
        );
        assert_eq!(
            HierarchyKind::infer("zip", ["06236", "48058"].into_iter()),
            HierarchyKind::Postal
        );
        assert_eq!(
            HierarchyKind::infer("addr", ["서울특별시 강남구 역삼동"].into_iter()),
            HierarchyKind::KoreanAddress
        );
        assert_eq!(HierarchyKind::Date.generalize("2024-05-17", 1), "2024-05");
        assert_eq!(
            HierarchyKind::KoreanAddress.generalize("서울특별시 강남구 역삼동", 2),
            "서울특별시"
        );
        assert_eq!(HierarchyKind::Number.generalize("47", 2), "40-49");
        assert_eq!(HierarchyKind::Number.generalize("47", 4), "*");
        // Years are banded, not pooled as if they were ages above 89.
        assert_eq!(HierarchyKind::Number.generalize("1987", 1), "1985-1989");
    }
}
