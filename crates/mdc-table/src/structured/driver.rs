//! The per-table driver: reads a table in batches, resolves each row's
//! patient once, rejects bad records into the report, applies the policy's
//! column actions through `mdc_deid::structured::engine`, keeps foreign keys
//! joinable, measures risk, and streams the result into a Parquet sink.
//!
//! This is the columnar transform that has to sit next to arrow (DESIGN §2
//! allows it; ARCHITECTURE.md records it): kept columns pass through as arrow
//! arrays untouched when a batch has no rejected rows.

// `plan` (per-column actions) and `plain` (per-column values) are different things.
#![allow(clippy::similar_names)]

use std::collections::{HashMap, HashSet};
use std::path::Path;

use arrow_array::{Array, ArrayRef};
use mdc_deid::structured::engine::{
    apply, output_kind, plan_table, ColumnPlan, ColumnStats, Ctx, PatientInfo,
};
use mdc_deid::structured::report::{ColumnReport, Reject, Report, TableReport};
use mdc_deid::structured::risk::{
    summarize, Classes, Encoder, Generalization, KeyPacker, QiHierarchy, RiskSummary,
};
use mdc_deid::structured::value::{parse_date, parse_datetime, Column, ColumnKind};
use mdc_deid::structured::{Action, Policy};
use mdc_deid::{PseudonymError, Pseudonymizer};

use super::io::{arrow_type, coerce, to_arrow, type_reason, InCol, ParquetSink, TableReader};
use crate::TableError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeidError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("pseudonymiser: {0}")]
    Pseudonym(#[from] PseudonymError),
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Every patient seen in a run, by source integer id and by record number.
#[derive(Debug, Default)]
pub struct Patients {
    pub infos: Vec<PatientInfo>,
    pub by_id: HashMap<i64, u32>,
    pub by_source: HashMap<String, u32>,
}

impl Patients {
    /// The patient of a record number, resolving it on first sight.
    pub fn resolve(
        &mut self,
        p: &dyn Pseudonymizer,
        source: &str,
    ) -> Result<Option<u32>, PseudonymError> {
        if let Some(i) = self.by_source.get(source) {
            return Ok(Some(*i));
        }
        match PatientInfo::resolve(p, source) {
            Ok(info) => {
                let i = self.infos.len() as u32;
                self.infos.push(info);
                self.by_source.insert(source.to_owned(), i);
                Ok(Some(i))
            }
            Err(PseudonymError::EmptyId) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// How a table's rows find their patient.
#[derive(Debug, Clone)]
pub enum PatientMode {
    None,
    /// OMOP person: the record number is in `source`; `id` (person_id) is registered.
    Register {
        id: String,
        source: String,
    },
    /// An integer column resolved through the registered ids; unknown ids reject the row.
    ById {
        column: String,
    },
    /// A text column holding the record number.
    BySource {
        column: String,
    },
}

/// A QI looked up through an integer key: (QI name, key column, values before, values after).
pub type Lookup = (String, String, HashMap<i64, String>, HashMap<i64, String>);

/// Quasi-identifiers to measure before and after, with an optional sensitive column.
#[derive(Debug, Clone, Default)]
pub struct RiskSpec {
    pub qi: Vec<String>,
    pub sensitive: Option<String>,
    pub threshold: u64,
    /// Values of extra QIs looked up by an integer column (OMOP region via location_id):
    /// (qi name, key column, before map, after map).
    pub lookups: Vec<Lookup>,
}

/// Automatic generalisation of QI columns chosen by `risk::anonymize`.
#[derive(Debug)]
pub struct AutoGen {
    pub columns: Vec<String>,
    pub hierarchies: Vec<QiHierarchy>,
    pub encoders: Vec<Encoder>,
    pub generalization: Generalization,
}

/// One table to transform.
#[derive(Debug)]
pub struct TableJob<'a> {
    pub name: String,
    pub input: &'a Path,
    pub label: String,
    pub output: &'a Path,
    /// Column types (OMOP spec); unknown columns are text. `None`: infer from CSV.
    pub spec: Option<&'a [(&'a str, ColumnKind)]>,
    pub required: &'a [&'a str],
    pub patient: PatientMode,
    /// Integer foreign keys checked against accepted ids: dangling ones become null.
    pub foreign_keys: Vec<(String, &'a HashSet<i64>)>,
    /// Collect the accepted ids of this integer column (a primary key).
    pub collect_ids: Option<String>,
    pub risk: Option<RiskSpec>,
    pub auto: Option<&'a AutoGen>,
    pub text_available: bool,
    /// Keep every accepted row's values before and after, by `collect_ids`
    /// (small reference tables only: location regions for the risk measure).
    pub keep_values: bool,
}

/// What a table job returns besides its report entry.
#[derive(Debug, Default)]
pub struct TableOutcome {
    pub report: TableReport,
    pub ids: HashSet<i64>,
    pub risk: Option<(RiskSummary, RiskSummary)>,
    pub rows: u64,
    /// With `keep_values`: id → column → value, after and before the policy.
    pub after_values: HashMap<i64, HashMap<String, String>>,
    pub before_values: HashMap<i64, HashMap<String, String>>,
}

struct RiskAcc {
    enc_before: Vec<Encoder>,
    enc_after: Vec<Encoder>,
    sens_before: Encoder,
    sens_after: Encoder,
    rows_before: Vec<Vec<u32>>,
    rows_after: Vec<Vec<u32>>,
    sens_b: Vec<u32>,
    sens_a: Vec<u32>,
}

/// Infers column kinds of a CSV from its first batch read as text.
pub fn infer_kinds(path: &Path, label: &str) -> Result<Vec<ColumnKind>, DeidError> {
    let mut r = TableReader::open(path, label)?;
    let n = r.column_names().len();
    if matches!(r, TableReader::Parquet { .. }) {
        return Ok(vec![ColumnKind::Str; n]);
    }
    let Some(b) = r.next_batch(&vec![ColumnKind::Str; n])? else {
        return Ok(vec![ColumnKind::Str; n]);
    };
    Ok(b.columns
        .into_iter()
        .map(|c| {
            let Some(Column::Str(v)) = c.into_plain() else {
                return ColumnKind::Str;
            };
            let vals: Vec<&str> = v.iter().flatten().map(|s| s.trim()).collect();
            if vals.is_empty() {
                ColumnKind::Str
            } else if vals
                .iter()
                .all(|s| s.parse::<i64>().is_ok() && !(s.len() > 1 && s.starts_with('0')))
            {
                ColumnKind::Int
            } else if vals.iter().all(|s| {
                s.parse::<f64>().is_ok_and(f64::is_finite)
                    && !(s.len() > 1 && s.starts_with('0') && !s.starts_with("0."))
            }) {
                ColumnKind::Float
            } else if vals
                .iter()
                .all(|s| parse_date(s).is_some() && s.len() == 10)
            {
                ColumnKind::Date
            } else if vals
                .iter()
                .all(|s| s.len() > 10 && parse_datetime(s).is_some())
            {
                ColumnKind::DateTime
            } else {
                ColumnKind::Str
            }
        })
        .collect())
}

/// Value frequencies of the `suppress_if_rare` columns (a first pass).
fn frequencies(
    job: &TableJob<'_>,
    kinds: &[ColumnKind],
    cols: &[String],
) -> Result<HashMap<String, HashMap<String, u64>>, DeidError> {
    let mut out: HashMap<String, HashMap<String, u64>> = HashMap::new();
    let mut r = TableReader::open(job.input, &job.label)?;
    while let Some(b) = r.next_batch(kinds)? {
        for (name, col) in b.names.iter().zip(b.columns) {
            if !cols.contains(name) {
                continue;
            }
            let Some(c) = col.into_plain() else { continue };
            let m = out.entry(name.clone()).or_default();
            for i in 0..c.len() {
                if let Some(v) = c.text_at(i) {
                    *m.entry(v).or_insert(0) += 1;
                }
            }
        }
    }
    Ok(out)
}

/// Runs one table job, appending rejects and suppressions to `report`.
pub fn run_table(
    job: &TableJob<'_>,
    policy: &Policy,
    ctx: &mut Ctx<'_>,
    patients: &mut Patients,
    report: &mut Report,
) -> Result<TableOutcome, DeidError> {
    let mut reader = TableReader::open(job.input, &job.label)?;
    let names = reader.column_names();
    let is_parquet = matches!(reader, TableReader::Parquet { .. });
    // Input kinds: the spec's, else the Parquet schema's, else inferred from the CSV.
    let kinds: Vec<ColumnKind> = match job.spec {
        Some(spec) => names
            .iter()
            .map(|n| {
                spec.iter()
                    .find(|(c, _)| c == n)
                    .map_or(ColumnKind::Str, |(_, k)| *k)
            })
            .collect(),
        None if is_parquet => {
            let file = std::fs::File::open(job.input).map_err(|source| DeidError::Io {
                path: job.input.to_owned(),
                source,
            })?;
            let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| TableError::NotParquet {
                    path: job.input.to_owned(),
                    reason: e.to_string(),
                })?;
            b.schema()
                .fields()
                .iter()
                .map(|f| super::io::kind_of(f.data_type()).unwrap_or(ColumnKind::Str))
                .collect()
        }
        None => infer_kinds(job.input, &job.label)?,
    };
    let mut plan: Vec<ColumnPlan> = plan_table(policy, Some(&job.name), &names, job.text_available);
    let auto_idx: HashMap<usize, usize> = match job.auto {
        Some(a) => a
            .columns
            .iter()
            .enumerate()
            .filter_map(|(qi, c)| names.iter().position(|n| n == c).map(|i| (i, qi)))
            .collect(),
        None => HashMap::new(),
    };
    for (i, qi) in &auto_idx {
        if let (Some(p), Some(a)) = (plan.get_mut(*i), job.auto) {
            let (_, level, kind) = &a.generalization.levels[*qi];
            p.action = format!("generalize to k (hierarchy {kind:?}, level {level})");
            p.act = Action::Keep;
        }
    }
    let mut table = TableReport {
        name: job.name.clone(),
        input: job.label.clone(),
        ..TableReport::default()
    };
    table.unknown_columns = plan
        .iter()
        .filter(|p| p.unknown())
        .map(|p| p.name.clone())
        .collect();
    if let Some(spec) = job.spec {
        table.absent_columns = spec
            .iter()
            .filter(|(c, _)| !names.iter().any(|n| n == c))
            .map(|(c, _)| (*c).to_owned())
            .collect();
    }
    let missing_required: Vec<&str> = job
        .required
        .iter()
        .copied()
        .filter(|c| !names.iter().any(|n| n == c))
        .collect();
    let col_idx = |c: &str| names.iter().position(|n| n == c);

    // Output schema.
    let mut out_fields: Vec<(usize, String, ColumnKind)> = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        let k = if auto_idx.contains_key(&i) {
            Some(ColumnKind::Str)
        } else {
            output_kind(p.act, kinds[i])
        };
        if let Some(k) = k {
            out_fields.push((i, p.name.clone(), k));
        }
    }
    if out_fields.is_empty() {
        return Err(DeidError::Invalid(format!(
            "table {}: the policy drops every column",
            job.name
        )));
    }
    let mut sink = ParquetSink::create(
        job.output,
        &out_fields
            .iter()
            .map(|(_, n, k)| (n.clone(), *k))
            .collect::<Vec<_>>(),
    )?;

    let rare_cols: Vec<String> = plan
        .iter()
        .filter(|p| matches!(p.act, Action::SuppressIfRare(_)))
        .map(|p| p.name.clone())
        .collect();
    ctx.frequencies = if rare_cols.is_empty() {
        HashMap::new()
    } else {
        frequencies(job, &kinds, &rare_cols)?
    };

    let patient_col = match &job.patient {
        PatientMode::None => None,
        PatientMode::Register { source, .. } => col_idx(source),
        PatientMode::ById { column } | PatientMode::BySource { column } => col_idx(column),
    };
    if let (
        PatientMode::ById { column }
        | PatientMode::BySource { column }
        | PatientMode::Register { source: column, .. },
        None,
    ) = (&job.patient, patient_col)
    {
        if missing_required.is_empty() {
            report.notes.push(format!(
                "table {}: no column {column}; dates that need a patient are removed",
                job.name
            ));
        }
    }
    let id_col = match &job.patient {
        PatientMode::Register { id, .. } => col_idx(id),
        _ => None,
    };
    let mut stats: Vec<ColumnStats> = vec![ColumnStats::default(); plan.len()];
    let mut ids = HashSet::new();
    let collect_col = job.collect_ids.as_deref().and_then(col_idx);
    let fk_cols: Vec<(usize, &HashSet<i64>)> = job
        .foreign_keys
        .iter()
        .filter_map(|(c, set)| col_idx(c).map(|i| (i, *set)))
        .collect();

    let mut risk_acc = job.risk.as_ref().map(|r| RiskAcc {
        enc_before: (0..r.qi.len()).map(|_| Encoder::new()).collect(),
        enc_after: (0..r.qi.len()).map(|_| Encoder::new()).collect(),
        sens_before: Encoder::new(),
        sens_after: Encoder::new(),
        rows_before: Vec::new(),
        rows_after: Vec::new(),
        sens_b: Vec::new(),
        sens_a: Vec::new(),
    });
    let mut after_values: HashMap<i64, HashMap<String, String>> = HashMap::new();
    let mut before_values: HashMap<i64, HashMap<String, String>> = HashMap::new();

    while let Some(batch) = reader.next_batch(&kinds)? {
        // Malformed records never became rows; type errors of CSV values did.
        let (malformed, typed): (Vec<Reject>, Vec<Reject>) =
            batch.rejects.into_iter().partition(|r| r.field.is_none());
        for r in malformed {
            table.rejected += 1;
            table.rows_in += 1;
            report.reject(r);
        }
        let n = batch.records.len();
        table.rows_in += n as u64;
        if n == 0 {
            continue;
        }
        let mut ok = vec![true; n];
        if !missing_required.is_empty() {
            table.rejected += n as u64;
            if table.rejected == n as u64 {
                report.reject(Reject {
                    source: job.label.clone(),
                    record: 0,
                    field: Some(missing_required.join(",")),
                    reason: "required column absent from the table: every record rejected".into(),
                });
                report.rejected_count += table.rejected.saturating_sub(1);
            } else {
                report.rejected_count += n as u64;
            }
            continue;
        }
        let reject = |ok: &mut Vec<bool>,
                      row: usize,
                      field: Option<&str>,
                      reason: String,
                      report: &mut Report,
                      table: &mut TableReport| {
            if ok[row] {
                ok[row] = false;
                table.rejected += 1;
                report.reject(Reject {
                    source: job.label.clone(),
                    record: batch.records[row],
                    field: field.map(str::to_owned),
                    reason,
                });
            }
        };
        if !typed.is_empty() {
            let at: HashMap<u64, usize> = batch
                .records
                .iter()
                .enumerate()
                .map(|(i, r)| (*r, i))
                .collect();
            for r in typed {
                if let Some(row) = at.get(&r.record) {
                    reject(
                        &mut ok,
                        *row,
                        r.field.as_deref(),
                        r.reason,
                        report,
                        &mut table,
                    );
                }
            }
        }
        // Columns as plain values, coerced to their kind (passthrough keeps arrow).
        let mut arrow_cols: Vec<Option<ArrayRef>> = vec![None; plan.len()];
        let mut plain: Vec<Option<Column>> = vec![None; plan.len()];
        for (i, col) in batch.columns.into_iter().enumerate() {
            let needed = job.keep_values
                || output_kind(plan[i].act, kinds[i]).is_some()
                || auto_idx.contains_key(&i)
                || Some(i) == patient_col
                || Some(i) == id_col
                || Some(i) == collect_col
                || job.required.contains(&names[i].as_str())
                || fk_cols.iter().any(|(c, _)| *c == i)
                || job.risk.as_ref().is_some_and(|r| {
                    r.qi.contains(&names[i])
                        || r.sensitive.as_deref() == Some(names[i].as_str())
                        || r.lookups.iter().any(|l| l.1 == names[i])
                });
            if !needed {
                continue;
            }
            if let InCol::Arrow(a) = &col {
                if plan[i].act == Action::Keep
                    && *a.data_type() == arrow_type(kinds[i])
                    && !auto_idx.contains_key(&i)
                {
                    arrow_cols[i] = Some(a.clone());
                    // A kept column used for nothing else is never converted
                    // (a NOT NULL column only when it has no nulls).
                    let other_use = Some(i) == patient_col
                        || Some(i) == id_col
                        || Some(i) == collect_col
                        || fk_cols.iter().any(|(c, _)| *c == i)
                        || job.keep_values
                        || job.risk.as_ref().is_some_and(|r| {
                            r.qi.contains(&names[i])
                                || r.sensitive.as_deref() == Some(names[i].as_str())
                                || r.lookups.iter().any(|l| l.1 == names[i])
                        });
                    let required = job.required.contains(&names[i].as_str());
                    if !other_use && (!required || a.null_count() == 0) {
                        continue;
                    }
                }
            }
            let Some(c) = col.into_plain() else {
                for row in 0..n {
                    reject(
                        &mut ok,
                        row,
                        Some(&names[i]),
                        "unsupported column type".into(),
                        report,
                        &mut table,
                    );
                }
                continue;
            };
            let mut bad = Vec::new();
            let c = coerce(c, kinds[i], &mut bad);
            for row in bad {
                reject(
                    &mut ok,
                    row,
                    Some(&names[i]),
                    type_reason(kinds[i]),
                    report,
                    &mut table,
                );
            }
            plain[i] = Some(c);
        }
        for req in job.required {
            if let Some(i) = col_idx(req) {
                if let Some(c) = &plain[i] {
                    for row in 0..n {
                        if c.is_null(row) {
                            reject(
                                &mut ok,
                                row,
                                Some(req),
                                "required column is empty".into(),
                                report,
                                &mut table,
                            );
                        }
                    }
                }
            }
        }
        // Patients.
        let mut row_patient: Vec<Option<u32>> = vec![None; n];
        if let Some(pc) = patient_col {
            let col = plain[pc].take();
            match (&job.patient, &col) {
                (PatientMode::Register { .. }, Some(c)) => {
                    let idc = id_col.and_then(|i| plain[i].clone());
                    for row in 0..n {
                        if !ok[row] {
                            continue;
                        }
                        let Some(src) = c.text_at(row) else {
                            reject(
                                &mut ok,
                                row,
                                Some(&names[pc]),
                                "the record number is empty".into(),
                                report,
                                &mut table,
                            );
                            continue;
                        };
                        let Some(pi) = patients.resolve(ctx.p, &src)? else {
                            reject(
                                &mut ok,
                                row,
                                Some(&names[pc]),
                                "the record number is empty".into(),
                                report,
                                &mut table,
                            );
                            continue;
                        };
                        if let Some(Column::Int(v)) = &idc {
                            if let Some(Some(id)) = v.get(row) {
                                if patients.by_id.contains_key(id) {
                                    reject(
                                        &mut ok,
                                        row,
                                        id_col.map(|i| names[i].as_str()),
                                        "duplicate person_id".into(),
                                        report,
                                        &mut table,
                                    );
                                    continue;
                                }
                                patients.by_id.insert(*id, pi);
                            }
                        }
                        row_patient[row] = Some(pi);
                    }
                }
                (PatientMode::ById { .. }, Some(Column::Int(v))) => {
                    for row in 0..n {
                        if !ok[row] {
                            continue;
                        }
                        match v[row].and_then(|id| patients.by_id.get(&id)) {
                            Some(pi) => row_patient[row] = Some(*pi),
                            None => reject(
                                &mut ok,
                                row,
                                Some(&names[pc]),
                                "refers to no person (absent from or rejected in the person table)"
                                    .into(),
                                report,
                                &mut table,
                            ),
                        }
                    }
                }
                (PatientMode::BySource { .. }, Some(c)) => {
                    for row in 0..n {
                        if ok[row] {
                            if let Some(src) = c.text_at(row) {
                                row_patient[row] = patients.resolve(ctx.p, &src)?;
                            }
                        }
                    }
                }
                _ => {}
            }
            plain[pc] = col;
        }
        let valid = ok.clone();
        // Automatic generalisation: suppress rows of small classes.
        let mut auto_values: HashMap<usize, Vec<Option<String>>> = HashMap::new();
        if let Some(a) = job.auto {
            let mut codes = vec![vec![0u32; a.columns.len()]; n];
            for (&i, &qi) in &auto_idx {
                let (_, level, _) = a.generalization.levels[qi];
                let mut vals = Vec::with_capacity(n);
                let mut enc = a.encoders[qi].clone();
                for (row, code) in codes.iter_mut().enumerate() {
                    let v = plain[i].as_ref().and_then(|c| c.text_at(row));
                    code[qi] = enc.code(v.as_deref());
                    vals.push(v.map(|v| a.hierarchies[qi].kind.generalize(&v, level)));
                }
                auto_values.insert(i, vals);
            }
            for (row, code) in codes.iter().enumerate() {
                if ok[row]
                    && a.generalization
                        .suppress
                        .contains(&a.generalization.key(&a.hierarchies, code))
                {
                    ok[row] = false;
                    table.suppressed += 1;
                    report.suppress(Reject {
                        source: job.label.clone(),
                        record: batch.records[row],
                        field: None,
                        reason: format!(
                            "in an equivalence class smaller than k = {}",
                            a.generalization.target_k
                        ),
                    });
                }
            }
        }
        let kept = ok.iter().filter(|k| **k).count();
        let all_kept = kept == n;
        // Risk before: over accepted rows, from the input values.
        if let (Some(acc), Some(spec)) = (risk_acc.as_mut(), job.risk.as_ref()) {
            for (row, _) in valid.iter().enumerate().filter(|(_, v)| **v) {
                let mut key = Vec::with_capacity(spec.qi.len());
                for (q, name) in spec.qi.iter().enumerate() {
                    let v = qi_value(name, spec, &names, &plain, row);
                    key.push(acc.enc_before[q].code(v.as_deref()));
                }
                acc.rows_before.push(key);
                if let Some(s) = &spec.sensitive {
                    let v = col_idx(s)
                        .and_then(|i| plain[i].as_ref())
                        .and_then(|c| c.text_at(row));
                    acc.sens_b.push(acc.sens_before.code(v.as_deref()));
                }
            }
        }
        if let Some(Column::Int(v)) = collect_col.and_then(|i| plain[i].as_ref()) {
            for (row, x) in v.iter().enumerate() {
                if let (true, Some(x)) = (ok[row], x) {
                    ids.insert(*x);
                }
            }
        }
        if job.keep_values {
            if let Some(Some(Column::Int(src))) = collect_col.map(|i| &plain[i]) {
                for (row, id) in src.iter().enumerate() {
                    if let (true, Some(id)) = (ok[row], id) {
                        let m = before_values.entry(*id).or_default();
                        for (i, c) in plain.iter().enumerate() {
                            if let Some(v) = c.as_ref().and_then(|c| c.text_at(row)) {
                                m.insert(names[i].clone(), v);
                            }
                        }
                    }
                }
            }
        }
        let pats: Vec<Option<&PatientInfo>> = row_patient
            .iter()
            .zip(&ok)
            .filter(|(_, k)| **k)
            .map(|(p, _)| p.and_then(|i| patients.infos.get(i as usize)))
            .collect();
        let mut out_cols: Vec<ArrayRef> = Vec::with_capacity(out_fields.len());
        let mut out_plain: HashMap<usize, Column> = HashMap::new();
        for (i, _, kind) in &out_fields {
            let i = *i;
            if all_kept {
                if let Some(a) = arrow_cols[i].take() {
                    out_cols.push(a);
                    continue;
                }
            }
            if let Some(vals) = auto_values.remove(&i) {
                let c = Column::Str(vals);
                let c = if all_kept { c } else { c.filter(&ok) };
                out_cols.push(to_arrow(&c));
                out_plain.insert(i, c);
                continue;
            }
            let c = match (plain[i].take(), arrow_cols[i].take()) {
                (Some(c), _) => c,
                (None, Some(a)) => match super::io::from_arrow(a.as_ref()) {
                    Some(c) => c,
                    None => null_column(*kind, n),
                },
                (None, None) => {
                    out_cols.push(to_arrow(&null_column(*kind, kept)));
                    continue;
                }
            };
            let mut c = if all_kept { c } else { c.filter(&ok) };
            if let Some((_, set)) = fk_cols.iter().find(|(fi, _)| *fi == i) {
                if let Column::Int(v) = &mut c {
                    for x in v.iter_mut() {
                        if x.is_some_and(|id| !set.contains(&id)) {
                            *x = None;
                            stats[i].dangling += 1;
                            stats[i].nulled += 1;
                        }
                    }
                }
            }
            let is_pkey = Some(i) == patient_col
                || (Some(i) == id_col)
                || matches!(&job.patient, PatientMode::ById { column } if *column == names[i]);
            let out = apply(
                plan[i].act,
                &names[i],
                c,
                &pats,
                is_pkey,
                ctx,
                &mut stats[i],
            )?;
            let out = if out.kind() == *kind {
                out
            } else {
                let mut bad = Vec::new();
                coerce(out, *kind, &mut bad)
            };
            out_cols.push(to_arrow(&out));
            out_plain.insert(i, out);
        }
        sink.write(out_cols)?;
        table.rows_out += kept as u64;
        // After values for lookups (location region) and risk.
        if let Some(pk) = collect_col.filter(|_| job.keep_values) {
            if let Some(Column::Int(src_ids)) = plain[pk].as_ref().map(|c| c.filter(&ok)) {
                for (row, id) in src_ids.iter().enumerate() {
                    if let Some(id) = id {
                        let m = after_values.entry(*id).or_default();
                        for (i, name, _) in &out_fields {
                            if let Some(v) = out_plain.get(i).and_then(|c| c.text_at(row)) {
                                m.insert(name.clone(), v);
                            }
                        }
                    }
                }
            }
        }
        if let (Some(acc), Some(spec)) = (risk_acc.as_mut(), job.risk.as_ref()) {
            let kept_src: Vec<Option<Column>> = plain
                .iter()
                .map(|c| c.as_ref().map(|c| c.filter(&ok)))
                .collect();
            for row in 0..kept {
                let mut key = Vec::with_capacity(spec.qi.len());
                for (q, name) in spec.qi.iter().enumerate() {
                    let v = match col_idx(name) {
                        Some(i) if out_plain.contains_key(&i) => {
                            out_plain.get(&i).and_then(|c| c.text_at(row))
                        }
                        Some(i) if out_fields.iter().any(|f| f.0 == i) => {
                            qi_value(name, spec, &names, &kept_src, row)
                        }
                        Some(_) => Some("*".to_owned()),
                        None => qi_after(name, spec, &names, &kept_src, row),
                    };
                    key.push(acc.enc_after[q].code(v.as_deref()));
                }
                acc.rows_after.push(key);
                if let Some(s) = &spec.sensitive {
                    let v = col_idx(s).and_then(|i| {
                        out_plain
                            .get(&i)
                            .and_then(|c| c.text_at(row))
                            .or_else(|| kept_src[i].as_ref().and_then(|c| c.text_at(row)))
                    });
                    acc.sens_a.push(acc.sens_after.code(v.as_deref()));
                }
            }
        }
    }
    let rows = sink.finish()?;
    table.output = job
        .output
        .file_name()
        .map(|f| f.to_string_lossy().into_owned());
    table.columns = plan
        .iter()
        .zip(stats)
        .map(|(p, s)| ColumnReport {
            name: p.name.clone(),
            action: p.action.clone(),
            rule: p.rule.clone(),
            stats: s,
        })
        .collect();
    let risk = match (risk_acc, job.risk.as_ref()) {
        (Some(acc), Some(spec)) => Some((
            classes_summary(
                &spec.qi,
                &acc.enc_before,
                &acc.rows_before,
                spec.sensitive.as_deref().map(|s| (s, &acc.sens_b[..])),
                spec.threshold,
            ),
            classes_summary(
                &spec.qi,
                &acc.enc_after,
                &acc.rows_after,
                spec.sensitive.as_deref().map(|s| (s, &acc.sens_a[..])),
                spec.threshold,
            ),
        )),
        _ => None,
    };
    Ok(TableOutcome {
        report: table,
        ids,
        risk,
        rows,
        after_values,
        before_values,
    })
}

fn qi_value(
    name: &str,
    spec: &RiskSpec,
    names: &[String],
    plain: &[Option<Column>],
    row: usize,
) -> Option<String> {
    if let Some(i) = names.iter().position(|n| n == name) {
        return plain
            .get(i)
            .and_then(|c| c.as_ref())
            .and_then(|c| c.text_at(row));
    }
    let (_, key, before, _) = spec.lookups.iter().find(|l| l.0 == name)?;
    let i = names.iter().position(|n| n == key)?;
    let Some(Some(Column::Int(v))) = plain.get(i) else {
        return None;
    };
    v.get(row)
        .copied()
        .flatten()
        .and_then(|id| before.get(&id).cloned())
}

fn qi_after(
    name: &str,
    spec: &RiskSpec,
    names: &[String],
    plain: &[Option<Column>],
    row: usize,
) -> Option<String> {
    let (_, key, _, after) = spec.lookups.iter().find(|l| l.0 == name)?;
    let i = names.iter().position(|n| n == key)?;
    let Some(Some(Column::Int(v))) = plain.get(i) else {
        return None;
    };
    v.get(row)
        .copied()
        .flatten()
        .and_then(|id| after.get(&id).cloned())
}

/// Risk of rows given as per-QI codes.
pub fn classes_summary(
    qi: &[String],
    enc: &[Encoder],
    rows: &[Vec<u32>],
    sensitive: Option<(&str, &[u32])>,
    threshold: u64,
) -> RiskSummary {
    let cards: Vec<usize> = enc.iter().map(Encoder::cardinality).collect();
    let mut classes = Classes::default();
    if let Some(p) = KeyPacker::new(&cards) {
        let keys: Vec<u128> = rows.iter().map(|r| p.pack(r.iter().copied())).collect();
        classes.add(&keys, sensitive.map(|s| s.1));
    }
    summarize(qi, &classes, threshold, None, sensitive.map(|s| s.0))
}

fn null_column(kind: ColumnKind, n: usize) -> Column {
    match kind {
        ColumnKind::Int => Column::Int(vec![None; n]),
        ColumnKind::Float => Column::Float(vec![None; n]),
        ColumnKind::Bool => Column::Bool(vec![None; n]),
        ColumnKind::Str => Column::Str(vec![None; n]),
        ColumnKind::Date => Column::Date(vec![None; n]),
        ColumnKind::DateTime => Column::DateTime(vec![None; n]),
    }
}
