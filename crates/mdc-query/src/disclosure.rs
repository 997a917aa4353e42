//! The disclosure-control engine: pure code over a small table model, no IO,
//! no arrow, no SQL. The query layer classifies each result column (dimension,
//! count, person count, magnitude, …) and supplies per-row statistics computed
//! in the same pass as the query (contributors, top contributions); this module
//! decides which cells are masked, which are rounded, and what a human must
//! look at, following a [`Policy`].
//!
//! Secondary suppression (kr-public) works line by line: a *line* is the set of
//! cells that differ in one dimension only, plus its total when the table shows
//! one (ROLLUP rows) — or an implied total, which another query could release.
//! A line with exactly one masked entry lets that value be recomputed from the
//! total, so another entry (the smallest visible cell, else the total) is masked
//! too, repeated until no line has exactly one masked entry.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::policy::{Policy, ZeroRule};

/// One cell value of a result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The text form used in CSV output and as a dimension key.
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Text(s) => s.clone(),
        }
    }
}

/// What a result column is, as far as disclosure is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// A GROUP BY key.
    Dimension,
    /// COUNT(*) or COUNT(x): a frequency.
    Count,
    /// COUNT(DISTINCT <patient column>): a person count (differencing control).
    PersonCount,
    /// SUM or AVG of values: a magnitude, with contributors and top values.
    Magnitude,
    /// MIN, MAX, MEDIAN, percentiles…: a single contributor's value.
    Extreme,
    /// An expression over other aggregates (ratios, percentages).
    Derived,
    /// Any other aggregate function.
    Other,
}

impl ColumnKind {
    fn is_count(self) -> bool {
        matches!(self, ColumnKind::Count | ColumnKind::PersonCount)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
}

/// Statistics about one result row that the result itself does not show.
#[derive(Debug, Clone, Default)]
pub struct RowStats {
    /// Contributors behind the row (distinct patients when known, else records).
    pub contributors: Option<u64>,
    /// For magnitude columns (by index): the largest and second-largest
    /// absolute contribution, and the sum of absolute contributions.
    pub tops: BTreeMap<usize, (f64, f64, f64)>,
}

/// An aggregate result as the engine sees it.
#[derive(Debug, Clone, Default)]
pub struct AggTable {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    /// One per row (may be empty when nothing is known).
    pub stats: Vec<RowStats>,
    /// The query used GROUPING SETS/ROLLUP/CUBE: a NULL dimension means "all".
    pub grouping_sets: bool,
}

/// Why a cell is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    BelowThreshold,
    FewContributors,
    Dominance,
    PPercent,
    Differencing,
    Secondary,
    DerivedFromMasked,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mask {
    pub row: usize,
    pub column: String,
    pub reason: Reason,
}

#[derive(Debug, Clone, Serialize)]
pub struct Flag {
    pub row: Option<usize>,
    pub column: Option<String>,
    pub check: String,
    pub note: String,
}

/// The checked result: what may be shown, and why the rest is not.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub columns: Vec<Column>,
    /// `None` is a masked cell.
    pub rows: Vec<Vec<Option<Value>>>,
    pub masks: Vec<Mask>,
    pub flags: Vec<Flag>,
    pub rounded_cells: usize,
    /// The checks could not decide everything; a reviewer must look.
    pub needs_review: bool,
    pub review_reasons: Vec<String>,
}

impl Checked {
    pub fn masked_cells(&self) -> usize {
        self.masks.len()
    }

    pub fn is_masked(&self, row: usize, col: usize) -> bool {
        self.rows
            .get(row)
            .and_then(|r| r.get(col))
            .is_some_and(Option::is_none)
    }
}

type MaskSet = BTreeMap<(usize, usize), Reason>;

/// Lines of a table along one dimension: the other dimensions' values → (cells, total row).
type Lines = BTreeMap<Vec<Option<String>>, (Vec<usize>, Option<usize>)>;

/// Checks an aggregate table. `pre` are masks decided outside (differencing).
pub fn check_aggregate(
    policy: &Policy,
    table: &AggTable,
    pre: &[(usize, usize, Reason)],
) -> Checked {
    let mut masks: MaskSet = pre.iter().map(|(r, c, why)| ((*r, *c), *why)).collect();
    let mut flags = Vec::new();
    let mut review = BTreeSet::new();
    let min = policy.min_count as f64;
    for (ri, row) in table.rows.iter().enumerate() {
        let stats = table.stats.get(ri).cloned().unwrap_or_default();
        for (ci, col) in table.columns.iter().enumerate() {
            let v = row.get(ci).unwrap_or(&Value::Null);
            match col.kind {
                ColumnKind::Dimension | ColumnKind::Derived => {}
                ColumnKind::Count | ColumnKind::PersonCount => {
                    let Some(x) = v.as_f64() else { continue };
                    if x == 0.0 && policy.zeros == ZeroRule::Flag {
                        flags.push(Flag {
                            row: Some(ri),
                            column: Some(col.name.clone()),
                            check: "zero".into(),
                            note: "a zero cell can reveal that nobody has an attribute; the reviewer decides".into(),
                        });
                        review.insert("zero cells are flagged by the policy".to_owned());
                    } else if x < min {
                        masks.entry((ri, ci)).or_insert(Reason::BelowThreshold);
                    }
                }
                ColumnKind::Magnitude | ColumnKind::Extreme | ColumnKind::Other => {
                    if matches!(v, Value::Null) {
                        continue;
                    }
                    match stats.contributors {
                        Some(n) if (n as f64) < min => {
                            masks.entry((ri, ci)).or_insert(Reason::FewContributors);
                            continue;
                        }
                        Some(_) => {}
                        None => {
                            masks.entry((ri, ci)).or_insert(Reason::FewContributors);
                            review.insert(format!("{}: contributors unknown, masked", col.name));
                            continue;
                        }
                    }
                    if col.kind == ColumnKind::Magnitude {
                        if let Some(why) = magnitude_rule(policy, &stats, ci) {
                            masks.entry((ri, ci)).or_insert(why);
                        }
                    }
                }
            }
        }
    }
    for col in &table.columns {
        match col.kind {
            ColumnKind::Magnitude => {
                review.insert(format!(
                    "{}: sums and means cannot be checked for differencing; a reviewer must look",
                    col.name
                ));
            }
            ColumnKind::Extreme => {
                review.insert(format!(
                    "{}: minimum, maximum and quantiles are single patients' values",
                    col.name
                ));
            }
            ColumnKind::Derived => {
                review.insert(format!(
                    "{}: derived from other aggregates (masked where they are)",
                    col.name
                ));
            }
            ColumnKind::Other => {
                review.insert(format!("{}: aggregate not known to the checks", col.name));
            }
            _ => {}
        }
    }
    if policy.secondary_suppression {
        for (ci, col) in table.columns.iter().enumerate() {
            if col.kind.is_count() {
                secondary(table, ci, &mut masks);
            }
        }
    }
    // Derived cells: masked wherever the row has any masked aggregate or too few contributors.
    for ri in 0..table.rows.len() {
        let row_masked = table.columns.iter().enumerate().any(|(ci, c)| {
            c.kind != ColumnKind::Dimension
                && c.kind != ColumnKind::Derived
                && masks.contains_key(&(ri, ci))
        });
        let few = table
            .stats
            .get(ri)
            .and_then(|s| s.contributors)
            .is_none_or(|n| (n as f64) < min);
        for (ci, c) in table.columns.iter().enumerate() {
            if c.kind == ColumnKind::Derived && (row_masked || few) {
                masks.entry((ri, ci)).or_insert(Reason::DerivedFromMasked);
            }
        }
    }
    let mut rounded = 0;
    let mut rows = Vec::with_capacity(table.rows.len());
    for (ri, row) in table.rows.iter().enumerate() {
        let mut out = Vec::with_capacity(row.len());
        for (ci, v) in row.iter().enumerate() {
            if masks.contains_key(&(ri, ci)) {
                out.push(None);
                continue;
            }
            let kind = table.columns.get(ci).map(|c| c.kind);
            match (policy.rounding, kind, v) {
                (Some(base), Some(k), Value::Int(x)) if k.is_count() => {
                    let b = base as i64;
                    let r = ((x + b / 2).div_euclid(b)) * b;
                    if r != *x {
                        rounded += 1;
                    }
                    out.push(Some(Value::Int(r)));
                }
                _ => out.push(Some(v.clone())),
            }
        }
        rows.push(out);
    }
    let masks = masks
        .into_iter()
        .map(|((row, ci), reason)| Mask {
            row,
            column: table
                .columns
                .get(ci)
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            reason,
        })
        .collect();
    let review_reasons: Vec<String> = review.into_iter().collect();
    Checked {
        columns: table.columns.clone(),
        rows,
        masks,
        flags,
        rounded_cells: rounded,
        needs_review: !review_reasons.is_empty(),
        review_reasons,
    }
}

/// Dominance (N-K) and p-percent for one magnitude cell.
fn magnitude_rule(policy: &Policy, stats: &RowStats, ci: usize) -> Option<Reason> {
    if policy.dominance.is_none() && policy.p_percent.is_none() {
        return None;
    }
    let Some((t1, t2, total)) = stats.tops.get(&ci).copied() else {
        // Rules that need contributions cannot be evaluated: be safe.
        return Some(Reason::Dominance);
    };
    if total <= 0.0 {
        return None;
    }
    if let Some((k_n, k_pct)) = policy.dominance {
        let top = if k_n >= 2 { t1 + t2 } else { t1 };
        if top > total * k_pct / 100.0 {
            return Some(Reason::Dominance);
        }
    }
    if let Some(p) = policy.p_percent {
        if total - t1 - t2 < t1 * p / 100.0 {
            return Some(Reason::PPercent);
        }
    }
    None
}

/// Complementary suppression for one count column (see the module comment).
fn secondary(table: &AggTable, ci: usize, masks: &mut MaskSet) {
    let dims: Vec<usize> = table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == ColumnKind::Dimension)
        .map(|(i, _)| i)
        .collect();
    if dims.is_empty() {
        return;
    }
    let keys: Vec<Vec<Option<String>>> = table
        .rows
        .iter()
        .map(|row| {
            dims.iter()
                .map(|&d| match row.get(d) {
                    Some(Value::Null) if table.grouping_sets => None,
                    Some(v) => Some(v.to_text()),
                    None => Some(String::new()),
                })
                .collect()
        })
        .collect();
    let value = |ri: usize| {
        table
            .rows
            .get(ri)
            .and_then(|r| r.get(ci))
            .and_then(Value::as_f64)
    };
    loop {
        let mut changed = false;
        for j in 0..dims.len() {
            // Lines along dimension j: rows that agree on every other dimension.
            let mut lines: Lines = BTreeMap::new();
            for (ri, k) in keys.iter().enumerate() {
                if value(ri).is_none() {
                    continue;
                }
                let mut rest = k.clone();
                let own = rest.remove(j);
                let e = lines.entry(rest).or_default();
                match own {
                    Some(_) => e.0.push(ri),
                    None => e.1 = Some(ri),
                }
            }
            for (cells, total) in lines.values() {
                let entries = cells.len() + usize::from(total.is_some());
                if entries < 2 {
                    continue;
                }
                let masked = cells
                    .iter()
                    .chain(total.iter())
                    .filter(|&&r| masks.contains_key(&(r, ci)))
                    .count();
                if masked != 1 {
                    continue;
                }
                let pick = cells
                    .iter()
                    .filter(|&&r| !masks.contains_key(&(r, ci)))
                    .min_by(|&&a, &&b| {
                        value(a)
                            .unwrap_or(f64::MAX)
                            .total_cmp(&value(b).unwrap_or(f64::MAX))
                    })
                    .copied()
                    .or(total.filter(|t| !masks.contains_key(&(*t, ci))));
                if let Some(r) = pick {
                    masks.insert((r, ci), Reason::Secondary);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
}

/// Record-level results: rows whose quasi-identifier combination is shared by
/// fewer than k rows are withheld. Returns the kept rows and a report.
pub fn check_records(
    policy: &Policy,
    columns: &[String],
    rows: Vec<Vec<Value>>,
) -> (Vec<Vec<Value>>, RecordReport) {
    let qi: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| policy.is_quasi_identifier(c))
        .map(|(i, _)| i)
        .collect();
    let key = |row: &Vec<Value>| -> Vec<String> {
        qi.iter()
            .map(|&i| row.get(i).map(Value::to_text).unwrap_or_default())
            .collect()
    };
    let mut sizes: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for r in &rows {
        *sizes.entry(key(r)).or_default() += 1;
    }
    let total = rows.len();
    let kept: Vec<Vec<Value>> = if qi.is_empty() {
        rows
    } else {
        rows.into_iter()
            .filter(|r| sizes.get(&key(r)).copied().unwrap_or(0) >= policy.k_anonymity)
            .collect()
    };
    let report = RecordReport {
        quasi_identifiers: qi.iter().filter_map(|&i| columns.get(i).cloned()).collect(),
        k: policy.k_anonymity,
        rows_in: total,
        rows_withheld: total - kept.len(),
        smallest_class: if qi.is_empty() {
            None
        } else {
            sizes.values().min().copied()
        },
    };
    (kept, report)
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordReport {
    pub quasi_identifiers: Vec<String>,
    pub k: u64,
    pub rows_in: usize,
    pub rows_withheld: usize,
    pub smallest_class: Option<u64>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dim(n: &str) -> Column {
        Column {
            name: n.into(),
            kind: ColumnKind::Dimension,
        }
    }
    fn count(n: &str) -> Column {
        Column {
            name: n.into(),
            kind: ColumnKind::Count,
        }
    }
    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }
    fn table1(counts: &[i64]) -> AggTable {
        AggTable {
            columns: vec![dim("region"), count("n")],
            rows: counts
                .iter()
                .enumerate()
                .map(|(i, c)| vec![t(&format!("r{i}")), Value::Int(*c)])
                .collect(),
            stats: counts
                .iter()
                .map(|c| RowStats {
                    contributors: Some(*c as u64),
                    ..RowStats::default()
                })
                .collect(),
            grouping_sets: false,
        }
    }
    fn shown(c: &Checked, col: usize) -> Vec<Option<i64>> {
        c.rows
            .iter()
            .map(|r| match r.get(col) {
                Some(Some(Value::Int(x))) => Some(*x),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn kr_public_masks_cells_below_five_and_a_complementary_cell() {
        let c = check_aggregate(&Policy::kr_public(), &table1(&[120, 3, 40, 77]), &[]);
        // 3 is masked; the smallest other cell (40) too, so the total cannot give it back.
        assert_eq!(shown(&c, 1), vec![Some(120), None, None, Some(77)]);
        assert_eq!(
            c.masks
                .iter()
                .filter(|m| m.reason == Reason::Secondary)
                .count(),
            1
        );
        assert!(!c.needs_review);
    }

    #[test]
    fn kr_public_masks_the_total_row_of_a_rollup_when_it_reveals_a_cell() {
        // sex rollup: F=2, M=50, total=52. Masking only F lets 52-50 recompute it.
        let table = AggTable {
            columns: vec![dim("sex"), count("n")],
            rows: vec![
                vec![t("F"), Value::Int(2)],
                vec![t("M"), Value::Int(50)],
                vec![Value::Null, Value::Int(52)],
            ],
            stats: vec![],
            grouping_sets: true,
        };
        let c = check_aggregate(&Policy::kr_public(), &table, &[]);
        let v = shown(&c, 1);
        assert_eq!(v[0], None);
        assert!(v[1].is_none() || v[2].is_none(), "{v:?}");
    }

    #[test]
    fn opensafely_redacts_seven_or_less_and_rounds_to_five() {
        let c = check_aggregate(&Policy::opensafely(), &table1(&[7, 8, 12, 103, 0]), &[]);
        assert_eq!(
            shown(&c, 1),
            vec![None, Some(10), Some(10), Some(105), None]
        );
        assert!(c.rounded_cells >= 3);
    }

    #[test]
    fn acro_masks_below_ten_flags_zeros_and_applies_dominance_and_p_percent() {
        let policy = Policy::acro();
        let c = check_aggregate(&policy, &table1(&[9, 10, 0]), &[]);
        assert_eq!(shown(&c, 1), vec![None, Some(10), Some(0)]);
        assert!(c.flags.iter().any(|f| f.check == "zero"));
        assert!(c.needs_review);
        let mut table = AggTable {
            columns: vec![
                dim("ward"),
                Column {
                    name: "total_cost".into(),
                    kind: ColumnKind::Magnitude,
                },
            ],
            rows: vec![
                vec![t("a"), Value::Float(1000.0)],
                vec![t("b"), Value::Float(1000.0)],
                vec![t("c"), Value::Float(1000.0)],
            ],
            stats: vec![RowStats::default(); 3],
            grouping_sets: false,
        };
        // a: one contributor holds 95% → dominance; b: top two leave 5% < 10% of the largest → p-percent;
        // c: evenly spread.
        table.stats[0].contributors = Some(20);
        table.stats[0].tops.insert(1, (950.0, 10.0, 1000.0));
        table.stats[1].contributors = Some(20);
        table.stats[1].tops.insert(1, (500.0, 460.0, 1000.0));
        table.stats[2].contributors = Some(20);
        table.stats[2].tops.insert(1, (60.0, 55.0, 1000.0));
        let c = check_aggregate(&policy, &table, &[]);
        let reasons: Vec<Reason> = c.masks.iter().map(|m| m.reason).collect();
        assert_eq!(reasons, vec![Reason::Dominance, Reason::Dominance]);
        assert!(!c.is_masked(2, 1));
        // With dominance off, b fails on p-percent alone.
        let mut only_p = policy.clone();
        only_p.dominance = None;
        let c = check_aggregate(&only_p, &table, &[]);
        assert!(c
            .masks
            .iter()
            .any(|m| m.row == 1 && m.reason == Reason::PPercent));
        assert!(c.needs_review, "magnitudes always go to a human");
    }

    #[test]
    fn magnitudes_with_few_contributors_and_derived_cells_are_masked() {
        let table = AggTable {
            columns: vec![
                dim("sex"),
                count("n"),
                Column {
                    name: "mean_age".into(),
                    kind: ColumnKind::Magnitude,
                },
                Column {
                    name: "pct".into(),
                    kind: ColumnKind::Derived,
                },
            ],
            rows: vec![
                vec![t("F"), Value::Int(3), Value::Float(61.0), Value::Float(3.0)],
                vec![
                    t("M"),
                    Value::Int(97),
                    Value::Float(58.0),
                    Value::Float(97.0),
                ],
                vec![
                    t("X"),
                    Value::Int(40),
                    Value::Float(55.0),
                    Value::Float(40.0),
                ],
            ],
            stats: vec![
                RowStats {
                    contributors: Some(3),
                    ..RowStats::default()
                },
                RowStats {
                    contributors: Some(97),
                    ..RowStats::default()
                },
                RowStats {
                    contributors: Some(40),
                    ..RowStats::default()
                },
            ],
            grouping_sets: false,
        };
        let c = check_aggregate(&Policy::kr_public(), &table, &[]);
        assert!(c.is_masked(0, 1) && c.is_masked(0, 2) && c.is_masked(0, 3));
        assert!(!c.is_masked(1, 2));
        assert!(c.needs_review);
    }

    #[test]
    fn k_anonymity_withholds_rows_in_small_classes() {
        let cols = vec![
            "person_id".to_owned(),
            "sex".to_owned(),
            "year_of_birth".to_owned(),
        ];
        let mut rows = Vec::new();
        for i in 0..12 {
            rows.push(vec![Value::Int(i), t("F"), Value::Int(1950)]);
        }
        rows.push(vec![Value::Int(99), t("M"), Value::Int(1931)]);
        let (kept, rep) = check_records(&Policy::kr_public(), &cols, rows);
        assert_eq!(kept.len(), 12);
        assert_eq!(rep.rows_withheld, 1);
        assert_eq!(rep.quasi_identifiers, vec!["sex", "year_of_birth"]);
    }

    /// Every line (cells plus its total, shown or implied) has zero or at least
    /// two masked entries, so no masked value is the difference of shown ones.
    fn no_line_reveals(table: &AggTable, c: &Checked) -> bool {
        let dims: Vec<usize> = (0..table.columns.len())
            .filter(|&i| table.columns[i].kind == ColumnKind::Dimension)
            .collect();
        let ci = table
            .columns
            .iter()
            .position(|c| c.kind == ColumnKind::Count)
            .unwrap();
        for j in 0..dims.len() {
            let mut lines: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
            for (ri, row) in table.rows.iter().enumerate() {
                let key: Vec<String> = dims
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| *k != j)
                    .map(|(_, &d)| row[d].to_text())
                    .collect();
                lines.entry(key).or_default().push(ri);
            }
            for members in lines.values() {
                let masked = members.iter().filter(|&&r| c.is_masked(r, ci)).count();
                if members.len() >= 2 && masked == 1 {
                    return false;
                }
            }
        }
        true
    }

    proptest! {
        #[test]
        fn secondary_suppression_leaves_no_line_with_a_single_masked_entry(
            counts in proptest::collection::vec(0i64..40, 2..30),
            width in 1usize..5,
        ) {
            // A 2-D table (a × b) from the counts, with implied totals.
            let rows: Vec<Vec<Value>> = counts.iter().enumerate().map(|(i, c)| {
                vec![Value::Text(format!("a{}", i / width)), Value::Text(format!("b{}", i % width)), Value::Int(*c)]
            }).collect();
            let table = AggTable {
                columns: vec![dim("a"), dim("b"), count("n")],
                rows,
                stats: vec![],
                grouping_sets: false,
            };
            let c = check_aggregate(&Policy::kr_public(), &table, &[]);
            prop_assert!(no_line_reveals(&table, &c));
            // Every primary cell below 5 is masked.
            for (ri, cnt) in counts.iter().enumerate() {
                if *cnt < 5 { prop_assert!(c.is_masked(ri, 2)); }
            }
        }

        #[test]
        fn a_masked_cell_cannot_be_recomputed_from_a_shown_total(
            counts in proptest::collection::vec(0i64..30, 2..12),
        ) {
            let total: i64 = counts.iter().sum();
            let mut rows: Vec<Vec<Value>> = counts.iter().enumerate().map(|(i, c)| vec![Value::Text(format!("g{i}")), Value::Int(*c)]).collect();
            rows.push(vec![Value::Null, Value::Int(total)]);
            let table = AggTable { columns: vec![dim("g"), count("n")], rows, stats: vec![], grouping_sets: true };
            let c = check_aggregate(&Policy::kr_public(), &table, &[]);
            let v = shown(&c, 1);
            let masked: Vec<usize> = (0..v.len()).filter(|&i| v[i].is_none()).collect();
            // Solving total = Σ cells for one unknown needs every other entry shown.
            prop_assert!(masked.len() != 1, "exactly one masked entry: {:?}", v);
        }
    }
}
