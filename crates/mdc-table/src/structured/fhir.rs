//! `mdc deid fhir`: FHIR R4 NDJSON (Bulk Data), Bundles, or a folder of them
//! → de-identified NDJSON per resource type, plus flattened Parquet tables
//! (patient, encounter, condition, observation, medication_request).
//!
//! Two passes over the input: the first indexes patients (MR identifiers)
//! and bundle fullUrls so that references resolve whatever the file order;
//! the second rewrites. Memory is bounded by the number of patients.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use mdc_deid::structured::engine::DigitHasher;
use mdc_deid::structured::fhir::{deidentify, FhirCtx, FhirIndex};
use mdc_deid::structured::report::{FhirReport, PathReport, Reject};
use mdc_deid::structured::value::{Column, ColumnKind};
use mdc_types::manifest::ManifestFile;
use serde_json::Value;

use super::driver::DeidError;
use super::io::{to_arrow, ParquetSink};
use super::run::{finish, inputs_digest, RunOptions, RunOutcome, Staging};
use crate::sha256_file;

/// One resource read from the input: (file label, record number, fullUrl, JSON).
type Item = (String, u64, Option<String>, Value);

fn input_files(input: &Path) -> Result<Vec<PathBuf>, DeidError> {
    let io = |source| DeidError::Io {
        path: input.to_owned(),
        source,
    };
    if input.is_dir() {
        let mut v: Vec<PathBuf> = fs::read_dir(input)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .is_some_and(|e| e == "ndjson" || e == "json" || e == "jsonl")
            })
            .collect();
        v.sort();
        Ok(v)
    } else if input.is_file() {
        Ok(vec![input.to_owned()])
    } else {
        Err(DeidError::Invalid(format!(
            "{} is neither a file nor a folder",
            input.display()
        )))
    }
}

/// Calls `f` on every resource of every file; unreadable records go to `bad`.
fn each(
    files: &[PathBuf],
    bad: &mut dyn FnMut(Reject),
    f: &mut dyn FnMut(Item) -> Result<(), DeidError>,
) -> Result<(), DeidError> {
    for path in files {
        let label = path
            .file_name()
            .map(|x| x.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ndjson = path
            .extension()
            .is_some_and(|e| e == "ndjson" || e == "jsonl");
        let file = File::open(path).map_err(|source| DeidError::Io {
            path: path.clone(),
            source,
        })?;
        if ndjson {
            let mut reader = BufReader::new(file);
            let mut line = Vec::new();
            let mut n = 0u64;
            loop {
                line.clear();
                let read = reader
                    .read_until(b'\n', &mut line)
                    .map_err(|source| DeidError::Io {
                        path: path.clone(),
                        source,
                    })?;
                if read == 0 {
                    break;
                }
                n += 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<Value>(&line) {
                    Ok(v) => f((label.clone(), n, None, v))?,
                    Err(_) => bad(Reject {
                        source: label.clone(),
                        record: n,
                        field: None,
                        reason: "broken JSON".into(),
                    }),
                }
            }
        } else {
            let v: Value = match serde_json::from_reader(BufReader::new(file)) {
                Ok(v) => v,
                Err(_) => {
                    bad(Reject {
                        source: label.clone(),
                        record: 1,
                        field: None,
                        reason: "broken JSON".into(),
                    });
                    continue;
                }
            };
            if v.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
                for (i, e) in v
                    .get("entry")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let url = e.get("fullUrl").and_then(Value::as_str).map(str::to_owned);
                    // Entries without a resource (a transaction's DELETE or GET) carry no data.
                    if let Some(r) = e.get("resource") {
                        f((label.clone(), i as u64 + 1, url, r.clone()))?;
                    }
                }
            } else {
                f((label.clone(), 1, None, v))?;
            }
        }
    }
    Ok(())
}

struct Flat {
    name: &'static str,
    cols: Vec<(&'static str, ColumnKind)>,
    data: Vec<Vec<Option<String>>>,
}

fn flats() -> Vec<Flat> {
    use ColumnKind::{Float, Str};
    let mk = |name, cols: Vec<(&'static str, ColumnKind)>| Flat {
        name,
        data: vec![Vec::new(); cols.len()],
        cols,
    };
    vec![
        mk(
            "patient",
            vec![
                ("id", Str),
                ("gender", Str),
                ("birth_date", Str),
                ("deceased", Str),
                ("address_state", Str),
                ("marital_status", Str),
            ],
        ),
        mk(
            "encounter",
            vec![
                ("id", Str),
                ("patient_id", Str),
                ("status", Str),
                ("class_code", Str),
                ("type_code", Str),
                ("period_start", Str),
                ("period_end", Str),
            ],
        ),
        mk(
            "condition",
            vec![
                ("id", Str),
                ("patient_id", Str),
                ("encounter_id", Str),
                ("code_system", Str),
                ("code", Str),
                ("clinical_status", Str),
                ("onset", Str),
                ("recorded_date", Str),
            ],
        ),
        mk(
            "observation",
            vec![
                ("id", Str),
                ("patient_id", Str),
                ("encounter_id", Str),
                ("status", Str),
                ("code_system", Str),
                ("code", Str),
                ("value_num", Float),
                ("value_unit", Str),
                ("value_code", Str),
                ("effective", Str),
            ],
        ),
        mk(
            "medication_request",
            vec![
                ("id", Str),
                ("patient_id", Str),
                ("encounter_id", Str),
                ("status", Str),
                ("intent", Str),
                ("med_system", Str),
                ("med_code", Str),
                ("authored_on", Str),
            ],
        ),
    ]
}

fn s(v: &Value, ptr: &str) -> Option<String> {
    v.pointer(ptr).and_then(|x| match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

fn ref_id(v: &Value, ptr: &str) -> Option<String> {
    s(v, ptr).and_then(|r| r.rsplit('/').next().map(str::to_owned))
}

fn flatten(r: &Value, flats: &mut [Flat]) {
    let t = r.get("resourceType").and_then(Value::as_str).unwrap_or("");
    let row: Vec<Option<String>> = match t {
        "Patient" => vec![
            s(r, "/id"),
            s(r, "/gender"),
            s(r, "/birthDate"),
            s(r, "/deceasedDateTime").or_else(|| s(r, "/deceasedBoolean")),
            s(r, "/address/0/state"),
            s(r, "/maritalStatus/coding/0/code"),
        ],
        "Encounter" => vec![
            s(r, "/id"),
            ref_id(r, "/subject/reference"),
            s(r, "/status"),
            s(r, "/class/code"),
            s(r, "/type/0/coding/0/code"),
            s(r, "/period/start"),
            s(r, "/period/end"),
        ],
        "Condition" => vec![
            s(r, "/id"),
            ref_id(r, "/subject/reference"),
            ref_id(r, "/encounter/reference"),
            s(r, "/code/coding/0/system"),
            s(r, "/code/coding/0/code"),
            s(r, "/clinicalStatus/coding/0/code"),
            s(r, "/onsetDateTime"),
            s(r, "/recordedDate"),
        ],
        "Observation" => vec![
            s(r, "/id"),
            ref_id(r, "/subject/reference"),
            ref_id(r, "/encounter/reference"),
            s(r, "/status"),
            s(r, "/code/coding/0/system"),
            s(r, "/code/coding/0/code"),
            s(r, "/valueQuantity/value"),
            s(r, "/valueQuantity/unit"),
            s(r, "/valueCodeableConcept/coding/0/code"),
            s(r, "/effectiveDateTime").or_else(|| s(r, "/effectivePeriod/start")),
        ],
        "MedicationRequest" => vec![
            s(r, "/id"),
            ref_id(r, "/subject/reference"),
            ref_id(r, "/encounter/reference"),
            s(r, "/status"),
            s(r, "/intent"),
            s(r, "/medicationCodeableConcept/coding/0/system"),
            s(r, "/medicationCodeableConcept/coding/0/code"),
            s(r, "/authoredOn"),
        ],
        _ => return,
    };
    let idx = match t {
        "Patient" => 0,
        "Encounter" => 1,
        "Condition" => 2,
        "Observation" => 3,
        _ => 4,
    };
    for (c, v) in flats[idx].data.iter_mut().zip(row) {
        c.push(v);
    }
}

/// `mdc deid fhir`.
pub fn run_fhir(o: &RunOptions<'_>) -> Result<RunOutcome, DeidError> {
    let files = input_files(&o.input)?;
    if files.is_empty() {
        return Err(DeidError::Invalid(format!(
            "{}: no .ndjson or .json files",
            o.input.display()
        )));
    }
    let mut report = super::run::new_report_pub("fhir", o);
    // Pass 1: index.
    let mut index = FhirIndex::default();
    each(&files, &mut |_| {}, &mut |(_, _, url, v)| {
        index.add(&v, url.as_deref());
        Ok(())
    })?;
    let staging = Staging::begin(&o.output)?;
    let hasher = DigitHasher::new(o.pseudonymizer)?;
    let mut ctx = FhirCtx::new(
        &o.policy,
        o.pseudonymizer,
        &hasher,
        o.text,
        o.reference_year,
        &index,
    );
    let mut writers: BTreeMap<String, (BufWriter<File>, u64)> = BTreeMap::new();
    let mut flat = flats();
    let mut fr = FhirReport::default();
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut rejects = Vec::new();
    let mut broken = Vec::new();
    let dir = staging.dir.clone();
    each(&files, &mut |r| broken.push(r), &mut |(
        label,
        n,
        url,
        v,
    )| {
        fr.resources_in += 1;
        match deidentify(&v, url.as_deref(), &mut ctx) {
            Ok(out) => {
                let t = out
                    .get("resourceType")
                    .and_then(Value::as_str)
                    .unwrap_or("Unknown")
                    .to_owned();
                *by_type.entry(t.clone()).or_insert(0) += 1;
                flatten(&out, &mut flat);
                if !writers.contains_key(&t) {
                    let p = dir.join(format!("{t}.ndjson"));
                    let f = File::create(&p).map_err(|source| DeidError::Io {
                        path: p.clone(),
                        source,
                    })?;
                    writers.insert(t.clone(), (BufWriter::new(f), 0));
                }
                if let Some((w, c)) = writers.get_mut(&t) {
                    let line = serde_json::to_string(&out)
                        .map_err(|e| DeidError::Invalid(e.to_string()))?;
                    w.write_all(line.as_bytes())
                        .and_then(|()| w.write_all(b"\n"))
                        .map_err(|source| DeidError::Io {
                            path: dir.join(format!("{t}.ndjson")),
                            source,
                        })?;
                    *c += 1;
                }
                fr.resources_out += 1;
            }
            Err(e) => rejects.push(Reject {
                source: label,
                record: n,
                field: e.field,
                reason: e.reason,
            }),
        }
        Ok(())
    })?;
    for r in broken.into_iter().chain(rejects) {
        report.reject(r);
    }
    let mut extra = Vec::new();
    for (t, (mut w, n)) in writers {
        let p = dir.join(format!("{t}.ndjson"));
        w.flush().map_err(|source| DeidError::Io {
            path: p.clone(),
            source,
        })?;
        let f = w
            .into_inner()
            .map_err(|e| DeidError::Invalid(e.to_string()))?;
        f.sync_all().map_err(|source| DeidError::Io {
            path: p.clone(),
            source,
        })?;
        extra.push(ManifestFile {
            path: format!("{t}.ndjson"),
            sha256: sha256_file(&p)?,
            rows: Some(n),
        });
    }
    let mut tables = Vec::new();
    for f in flat {
        let p = dir.join(format!("{}.parquet", f.name));
        let mut sink = ParquetSink::create(
            &p,
            &f.cols
                .iter()
                .map(|(n, k)| ((*n).to_owned(), *k))
                .collect::<Vec<_>>(),
        )?;
        let arrays = f
            .data
            .into_iter()
            .zip(&f.cols)
            .map(|(d, (_, k))| {
                let mut bad = Vec::new();
                to_arrow(&super::io::coerce(Column::Str(d), *k, &mut bad))
            })
            .collect();
        sink.write(arrays)?;
        let rows = sink.finish()?;
        tables.push(mdc_types::manifest::ManifestTable {
            name: f.name.to_owned(),
            files: vec![ManifestFile {
                path: format!("{}.parquet", f.name),
                sha256: sha256_file(&p)?,
                rows: Some(rows),
            }],
            schema: Value::Null,
            patient_column: Some(
                if f.name == "patient" {
                    "id"
                } else {
                    "patient_id"
                }
                .to_owned(),
            ),
        });
    }
    let stats = std::mem::take(&mut ctx.stats);
    fr.paths = stats
        .paths
        .into_iter()
        .map(|(path, (action, count))| PathReport {
            path,
            action,
            count,
        })
        .collect();
    fr.unknown_paths = stats.unknown.into_iter().collect();
    fr.references_rewritten = stats.references;
    fr.by_type = by_type.into_iter().collect();
    report.fhir = Some(fr);
    report.notes.push(format!(
        "{} patients indexed by MR identifier; bundles are unpacked into NDJSON per resource type",
        index.patients.len()
    ));
    let named: Vec<(String, PathBuf)> = files
        .iter()
        .map(|p| {
            (
                p.file_name()
                    .map(|x| x.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                p.clone(),
            )
        })
        .collect();
    let digest = inputs_digest(&named)?;
    report.input_sha256.clone_from(&digest);
    finish(
        staging,
        report,
        tables,
        extra,
        format!("FHIR R4, {} files", files.len()),
        digest,
    )
}
