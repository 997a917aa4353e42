//! Reading a researcher's logical plan for disclosure control, and extending it
//! so the statistics the checks need come out of the same pass as the result.
//!
//! A query is an *aggregate* when, walking down from the root through
//! projections, sorts, limits, filters and aliases only, we reach one
//! `Aggregate`; every output column is then traced to a group key (dimension),
//! an aggregate function (count, person count, magnitude, …) or an expression
//! over them (derived). Anything else — joins or scans at the top, DISTINCT,
//! window functions, UNION, or aggregates that list values (`array_agg`,
//! `string_agg`, `first_value`…) — is a *record-level* result.
//!
//! For aggregates the plan is rewritten to carry hidden columns (`__mdc_*`):
//! contributors per row (distinct patients when the aggregate's input has a
//! patient column, else records), the patients behind each person count
//! (`array_agg(DISTINCT …)`, for differencing control), and for magnitude
//! columns the two largest and the total absolute contributions (dominance and
//! p-percent). They are stripped before anything is shown.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::Column;
use datafusion::functions::math::expr_fn::abs;
use datafusion::functions_aggregate::array_agg::array_agg_udaf;
use datafusion::functions_aggregate::expr_fn::{count, max, nth_value, sum};
use datafusion::logical_expr::{
    cast, lit, Aggregate, Expr, ExprFunctionExt, LogicalPlan, Projection,
};

use crate::disclosure::ColumnKind;
use crate::QueryError;

/// Hidden column positions in the rewritten plan's output.
#[derive(Debug, Clone, Default)]
pub struct Hidden {
    pub contributors: Option<usize>,
    /// Instead of contributors, for an aggregate over one table: the hidden
    /// column counting each cell's rows with a patient, the table, and
    /// whether it counts all rows (cheaper, or the query dropped the patient
    /// column; then it holds only if the table has no rows without a
    /// patient, else the engine counts exactly). With the
    /// table's most rows per patient `m`, a cell of `n` rows has at least
    /// ⌈n / m⌉ patients; only cells that bound cannot settle need the exact
    /// count (engine.rs runs the query again for those).
    pub patient_rows: Option<PatientRows>,
    /// (visible column, hidden list column of patient ids)
    pub persons: Vec<(usize, usize)>,
    /// (visible column, top1, top2, total)
    pub tops: Vec<(usize, usize, usize, usize)>,
}

/// See [`Hidden::patient_rows`].
#[derive(Debug, Clone)]
pub struct PatientRows {
    pub column: usize,
    pub table: String,
    pub all_rows: bool,
}

#[derive(Debug)]
pub enum Shape {
    Aggregate(Box<AggregateShape>),
    Record { reason: String },
}

#[derive(Debug)]
pub struct AggregateShape {
    pub kinds: Vec<ColumnKind>,
    pub grouping_sets: bool,
    pub having: bool,
    pub visible: usize,
    pub hidden: Hidden,
    pub plan: LogicalPlan,
}

#[derive(Clone, Copy)]
struct Traced {
    kind: ColumnKind,
    aggr: Option<usize>,
}

const RECORD_FUNCS: &[&str] = &[
    "array_agg",
    "string_agg",
    "first_value",
    "last_value",
    "nth_value",
    "any_value",
];

/// Removes every alias layer (`count(*) AS "count(*)" AS n`).
fn strip_alias(mut e: Expr) -> Expr {
    while let Expr::Alias(a) = e {
        e = *a.expr;
    }
    e
}

fn aggr_kind(e: &Expr, patients: &HashSet<String>) -> Result<ColumnKind, String> {
    let e = strip_alias(e.clone());
    let Expr::AggregateFunction(af) = &e else {
        return Ok(ColumnKind::Other);
    };
    let name = af.func.name().to_ascii_lowercase();
    if RECORD_FUNCS.contains(&name.as_str()) {
        return Err(format!("{name}() lists individual values"));
    }
    Ok(match name.as_str() {
        "count" => {
            let is_patient = af.params.args.first().is_some_and(
                |a| matches!(a, Expr::Column(c) if patients.contains(&c.name.to_ascii_lowercase())),
            );
            if af.params.distinct && is_patient {
                ColumnKind::PersonCount
            } else {
                ColumnKind::Count
            }
        }
        "approx_distinct" => ColumnKind::Count,
        "sum" | "avg" | "mean" => ColumnKind::Magnitude,
        "min"
        | "max"
        | "median"
        | "approx_median"
        | "percentile_cont"
        | "approx_percentile_cont"
        | "approx_percentile_cont_with_weight" => ColumnKind::Extreme,
        "grouping" => ColumnKind::Dimension,
        _ => ColumnKind::Other,
    })
}

fn trace(
    path: &[&LogicalPlan],
    agg: &Aggregate,
    level: usize,
    k: usize,
    patients: &HashSet<String>,
) -> Result<Traced, String> {
    let Some(node) = path.get(level) else {
        let group_fields = agg.schema.fields().len() - agg.aggr_expr.len();
        if k < group_fields {
            return Ok(Traced {
                kind: ColumnKind::Dimension,
                aggr: None,
            });
        }
        let i = k - group_fields;
        let e = agg
            .aggr_expr
            .get(i)
            .ok_or("aggregate column out of range")?;
        return Ok(Traced {
            kind: aggr_kind(e, patients)?,
            aggr: Some(i),
        });
    };
    match node {
        LogicalPlan::Projection(p) => {
            let e = p
                .expr
                .get(k)
                .ok_or("projection column out of range")?
                .clone();
            let e = strip_alias(e);
            if let Expr::Column(c) = &e {
                let idx = p
                    .input
                    .schema()
                    .index_of_column(c)
                    .map_err(|e| e.to_string())?;
                return trace(path, agg, level + 1, idx, patients);
            }
            let refs: Vec<Column> = e.column_refs().into_iter().cloned().collect();
            let mut all_dims = true;
            for c in &refs {
                let idx = p
                    .input
                    .schema()
                    .index_of_column(c)
                    .map_err(|e| e.to_string())?;
                let t = trace(path, agg, level + 1, idx, patients)?;
                if t.kind != ColumnKind::Dimension {
                    all_dims = false;
                }
            }
            Ok(Traced {
                kind: if all_dims {
                    ColumnKind::Dimension
                } else {
                    ColumnKind::Derived
                },
                aggr: None,
            })
        }
        _ => trace(path, agg, level + 1, k, patients),
    }
}

/// The table an aggregate's input reads, when it reads exactly one table in
/// `tables` (those with a patient column) through filters, projections and
/// aliases only: each input row is one row of it.
fn single_table(input: &LogicalPlan, tables: &dyn Fn(&str) -> bool) -> Option<String> {
    let mut node = input;
    loop {
        node = match node {
            LogicalPlan::Filter(f) => &f.input,
            LogicalPlan::SubqueryAlias(a) => &a.input,
            LogicalPlan::Projection(p) => &p.input,
            LogicalPlan::TableScan(t) => {
                let name = t.table_name.to_string();
                return tables(&name).then_some(name);
            }
            _ => return None,
        };
    }
}

/// What the session knows of a table with a patient column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatientTable {
    /// Its statistics say some rows have no patient.
    SomeRowsLackAPatient,
    /// Every row has one, or its statistics are not known yet (the engine
    /// checks before it relies on that).
    NotKnownToLack,
}

/// Classifies a plan and, for aggregates, adds the hidden statistics columns.
// The session builds the set with the default hasher; generality buys nothing.
#[allow(clippy::implicit_hasher)]
pub fn analyse(
    plan: &LogicalPlan,
    patients: &HashSet<String>,
    want_tops: bool,
    want_persons: bool,
    contributor_cap: u64,
    patient_tables: &dyn Fn(&str) -> Option<PatientTable>,
    bound: bool,
) -> Result<Shape, QueryError> {
    let mut path: Vec<&LogicalPlan> = Vec::new();
    let mut node = plan;
    let agg = loop {
        match node {
            LogicalPlan::Projection(p) => {
                path.push(node);
                node = &p.input;
            }
            LogicalPlan::Sort(s) => {
                path.push(node);
                node = &s.input;
            }
            LogicalPlan::Limit(l) => {
                path.push(node);
                node = &l.input;
            }
            LogicalPlan::Filter(f) => {
                path.push(node);
                node = &f.input;
            }
            LogicalPlan::SubqueryAlias(s) => {
                path.push(node);
                node = &s.input;
            }
            LogicalPlan::Aggregate(a) => break a,
            other => {
                return Ok(Shape::Record {
                    reason: format!(
                        "the result is not an aggregate (top operator: {})",
                        other.display()
                    ),
                })
            }
        }
    };
    if agg.aggr_expr.is_empty() {
        return Ok(Shape::Record {
            reason: "GROUP BY without an aggregate lists individual values".into(),
        });
    }
    let having = path.iter().any(|n| matches!(n, LogicalPlan::Filter(_)));
    let visible = plan.schema().fields().len();
    let mut traced = Vec::with_capacity(visible);
    for k in 0..visible {
        match trace(&path, agg, 0, k, patients) {
            Ok(t) => traced.push(t),
            Err(reason) => return Ok(Shape::Record { reason }),
        }
    }
    let grouping_sets = matches!(agg.group_expr.as_slice(), [Expr::GroupingSet(_)]);
    let kinds: Vec<ColumnKind> = traced.iter().map(|t| t.kind).collect();

    // Hidden aggregates, named so they cannot collide with a researcher's.
    let mut extra: Vec<(String, Expr)> = Vec::new();
    let patient_col = agg.input.schema().iter().find_map(|(q, f)| {
        patients
            .contains(&f.name().to_ascii_lowercase())
            .then(|| Column::new(q.cloned(), f.name()))
    });
    // Contributors matter only for cells that are not counts themselves. With a
    // patient column they are distinct patients, counted exactly up to the
    // threshold (`contributors.rs`): the rules only compare them with it.
    let needs_contributors = kinds.iter().any(|k| {
        matches!(
            k,
            ColumnKind::Magnitude | ColumnKind::Extreme | ColumnKind::Other | ColumnKind::Derived
        )
    });
    // A column given a patient column's name but made of something else
    // would count the wrong thing: then contributors are unknown and the
    // cells they guard are masked.
    let mut spoofed = false;
    let _ = agg.input.apply(|node| {
        if let LogicalPlan::Projection(p) = node {
            spoofed |= p.expr.iter().any(|e| match e {
                Expr::Alias(a) => {
                    patients.contains(&a.name.to_ascii_lowercase())
                        && !matches!(a.expr.as_ref(), Expr::Column(c) if c.name.eq_ignore_ascii_case(&a.name))
                }
                _ => false,
            });
        }
        Ok(TreeNodeRecursion::Continue)
    });
    // Without spoofing, a column of a single-table input named like the
    // patient column is that table's patient column (it is the only source).
    let single = single_table(&agg.input, &|n| patient_tables(n).is_some());
    // A shown COUNT(DISTINCT patient) over the same column already is the
    // contributor count of its row (a FILTER only lowers it: masks more).
    let reuse = patient_col.as_ref().and_then(|pc| {
        traced.iter().enumerate().find_map(|(v, t)| {
            if t.kind != ColumnKind::PersonCount {
                return None;
            }
            match agg.aggr_expr.get(t.aggr?).map(|e| strip_alias(e.clone())) {
                Some(Expr::AggregateFunction(af))
                    if matches!(af.params.args.first(), Some(Expr::Column(c)) if c == pc) =>
                {
                    Some(v)
                }
                _ => None,
            }
        })
    });
    let mut patient_rows = None;
    let contributors_at = match (needs_contributors, &single, &patient_col) {
        (false, _, _) => None,
        _ if spoofed => None,
        _ if reuse.is_some() => None,
        (true, Some(table), c) if bound => {
            // Counting all rows spares decoding the patient column; it counts
            // patients' rows unless the table has rows without one.
            let lacking = patient_tables(table) == Some(PatientTable::SomeRowsLackAPatient);
            let (e, all_rows) = match c {
                Some(c) if lacking => (count(Expr::Column(c.clone())), false),
                _ => (count(lit(1i64)), true),
            };
            patient_rows = Some((extra.len(), table.clone(), all_rows));
            extra.push(("__mdc_rows".into(), e));
            None
        }
        // One patient table whose patient column the query dropped: rows are
        // not patients, and nothing else can count them; unknown, masked.
        (true, Some(_), None) => None,
        (true, _, c) => {
            let e = match c {
                Some(c) => crate::contributors::Contributors::udaf(contributor_cap)
                    .call(vec![Expr::Column(c.clone())]),
                None => count(lit(1i64)),
            };
            extra.push(("__mdc_n".into(), e));
            Some(0)
        }
    };
    let mut persons = Vec::new();
    let mut tops = Vec::new();
    for (v, t) in traced.iter().enumerate() {
        let Some(i) = t.aggr else { continue };
        let Some(Expr::AggregateFunction(af)) =
            agg.aggr_expr.get(i).map(|e| strip_alias(e.clone()))
        else {
            continue;
        };
        let Some(arg) = af.params.args.first().cloned() else {
            continue;
        };
        match t.kind {
            ColumnKind::PersonCount if want_persons => {
                let e = array_agg_udaf()
                    .call(vec![arg])
                    .distinct()
                    .build()
                    .map_err(|e| QueryError::Internal(e.to_string()))?;
                persons.push((v, extra.len()));
                extra.push((format!("__mdc_p{v}"), e));
            }
            ColumnKind::Magnitude if want_tops => {
                let a = cast(abs(arg), DataType::Float64);
                let base = extra.len();
                extra.push((format!("__mdc_t1_{v}"), max(a.clone())));
                extra.push((
                    format!("__mdc_t2_{v}"),
                    nth_value(a.clone(), 2, vec![a.clone().sort(false, true)]),
                ));
                extra.push((format!("__mdc_s_{v}"), sum(a)));
                tops.push((v, base, base + 1, base + 2));
            }
            _ => {}
        }
    }
    let mut aggr_expr = agg.aggr_expr.clone();
    aggr_expr.extend(extra.iter().map(|(n, e)| e.clone().alias(n)));
    let new_agg = Aggregate::try_new(agg.input.clone(), agg.group_expr.clone(), aggr_expr)
        .map_err(|e| QueryError::Internal(format!("rewrite: {e}")))?;
    let mut rebuilt = LogicalPlan::Aggregate(new_agg);
    for node in path.iter().rev() {
        rebuilt = match node {
            LogicalPlan::Projection(p) => {
                let mut exprs = p.expr.clone();
                exprs.extend(
                    extra
                        .iter()
                        .map(|(n, _)| Expr::Column(Column::from_name(n.clone()))),
                );
                LogicalPlan::Projection(
                    Projection::try_new(exprs, Arc::new(rebuilt))
                        .map_err(|e| QueryError::Internal(format!("rewrite: {e}")))?,
                )
            }
            other => other
                .with_new_exprs(other.expressions(), vec![rebuilt])
                .map_err(|e| QueryError::Internal(format!("rewrite: {e}")))?,
        };
    }
    let shift = |i: usize| visible + i;
    Ok(Shape::Aggregate(Box::new(AggregateShape {
        kinds,
        grouping_sets,
        having,
        visible,
        hidden: Hidden {
            contributors: if spoofed {
                None
            } else {
                reuse.or(contributors_at.map(shift))
            },
            patient_rows: patient_rows.map(|(i, table, all_rows)| PatientRows {
                column: shift(i),
                table,
                all_rows,
            }),
            persons: persons.into_iter().map(|(v, h)| (v, shift(h))).collect(),
            tops: tops
                .into_iter()
                .map(|(v, a, b, c)| (v, shift(a), shift(b), shift(c)))
                .collect(),
        },
        plan: rebuilt,
    })))
}
