//! A synthetic, already de-identified OMOP-like dataset (person, condition,
//! measurement) pseudonymised with a root's key as `mdc deid` would, with its
//! manifest; and a governed project around it. Used by the demo, the tests and
//! the benchmark (`benches/query/`), so all three exercise the same layout:
//! Hive-friendly Parquet, int64 `person_id` as the patient column.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use mdc_deid::{Domain, Pseudonymizer};
use mdc_types::manifest::{
    Manifest, ManifestFile, ManifestKind, ManifestTable, PolicyRef, Rejected, SourceRef,
    MANIFEST_FILE, MANIFEST_FORMAT,
};
use mdc_types::SourceId;

use crate::QueryError;

/// Sizes of the synthetic dataset.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub persons: usize,
    pub conditions_per_person: usize,
    pub measurements: usize,
    /// Rows per measurement Parquet file.
    pub rows_per_file: usize,
}

/// Source record numbers of the synthetic patients (for consent tests).
pub fn mrn(i: usize) -> String {
    format!("{:08}", 10_000_000 + i * 7919)
}

/// A small deterministic generator (no rand dependency needed here).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn err(e: impl std::fmt::Display) -> QueryError {
    QueryError::Internal(e.to_string())
}

fn write(dir: &Path, name: &str, batch: &RecordBatch) -> Result<ManifestFile, QueryError> {
    let path = dir.join(name);
    mdc_table::write_parquet_atomic(&path, std::slice::from_ref(batch)).map_err(err)?;
    Ok(ManifestFile {
        path: name.to_owned(),
        sha256: mdc_table::sha256_file(&path).map_err(err)?,
        rows: Some(batch.num_rows() as u64),
    })
}

/// Writes the dataset into `dir` with a manifest; returns the person ids.
pub fn write_omop(
    dir: &Path,
    p: &dyn Pseudonymizer,
    mode: &str,
    sizes: Sizes,
) -> Result<Vec<i64>, QueryError> {
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut rng = Lcg(42);
    let regions = ["서울", "부산", "대구", "인천", "광주", "대전", "제주"];
    let mut ids = Vec::with_capacity(sizes.persons);
    for i in 0..sizes.persons {
        ids.push(
            p.token(Domain::Patient, &SourceId::new(mrn(i)))
                .map_err(err)?
                .int,
        );
    }
    let person = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("person_id", DataType::Int64, false),
            Field::new("year_of_birth", DataType::Int64, false),
            Field::new("sex", DataType::Utf8, false),
            Field::new("region", DataType::Utf8, false),
            Field::new("sepsis", DataType::Int64, false),
        ])),
        vec![
            Arc::new(Int64Array::from(ids.clone())) as ArrayRef,
            Arc::new(Int64Array::from_iter_values(
                (0..sizes.persons).map(|i| 1930 + (i as i64 * 37) % 75),
            )),
            Arc::new(StringArray::from_iter_values((0..sizes.persons).map(|i| {
                if i % 2 == 0 {
                    "F"
                } else {
                    "M"
                }
            }))),
            // Skewed so some region × sex cells are small (both sexes alike).
            Arc::new(StringArray::from_iter_values((0..sizes.persons).map(|i| {
                regions[match (i / 2) % 100 {
                    0..=39 => 0,
                    40..=59 => 1,
                    60..=74 => 2,
                    75..=86 => 3,
                    87..=94 => 4,
                    95..=97 => 5,
                    _ => 6,
                }]
            }))),
            Arc::new(Int64Array::from_iter_values(
                (0..sizes.persons).map(|i| i64::from(i % 9 == 0)),
            )),
        ],
    )
    .map_err(err)?;
    let person_file = write(dir, "person.parquet", &person)?;
    let conditions = [
        (201_826, "type 2 diabetes"),
        (320_128, "hypertension"),
        (132_797, "sepsis"),
        (255_573, "COPD"),
        (4_329_847, "myocardial infarction"),
    ];
    let mut c_person = Vec::new();
    let mut c_concept = Vec::new();
    let mut c_year = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        for k in 0..sizes.conditions_per_person {
            // Rarer conditions further down the list.
            let pick = rng.below(100);
            let c = match pick {
                0..=44 => 1,
                45..=79 => 0,
                80..=91 => 3,
                92..=97 => 2,
                _ => 4,
            };
            if k > 0 && rng.below(3) == 0 {
                continue;
            }
            c_person.push(*id);
            c_concept.push(conditions[c].0);
            c_year.push(2015 + ((i + k) % 10) as i64);
        }
    }
    let condition = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("person_id", DataType::Int64, false),
            Field::new("condition_concept_id", DataType::Int64, false),
            Field::new("condition_year", DataType::Int64, false),
        ])),
        vec![
            Arc::new(Int64Array::from(c_person)) as ArrayRef,
            Arc::new(Int64Array::from(c_concept)),
            Arc::new(Int64Array::from(c_year)),
        ],
    )
    .map_err(err)?;
    let condition_file = write(dir, "condition_occurrence.parquet", &condition)?;
    let concepts = [3_004_410_i64, 3_013_682, 3_016_723, 3_027_018, 3_020_891];
    let mut m_files = Vec::new();
    let mut written = 0usize;
    let mut part = 0usize;
    while written < sizes.measurements {
        let n = sizes.rows_per_file.min(sizes.measurements - written);
        let mut pid = Vec::with_capacity(n);
        let mut concept = Vec::with_capacity(n);
        let mut value = Vec::with_capacity(n);
        let mut year = Vec::with_capacity(n);
        for _ in 0..n {
            let who = rng.below(ids.len() as u64) as usize;
            pid.push(ids[who]);
            let c = rng.below(concepts.len() as u64) as usize;
            concept.push(concepts[c]);
            value.push(50.0 + (rng.below(10_000) as f64) / 100.0 + c as f64 * 10.0);
            year.push(2015 + rng.below(10) as i64);
        }
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("person_id", DataType::Int64, false),
                Field::new("measurement_concept_id", DataType::Int64, false),
                Field::new("value_as_number", DataType::Float64, false),
                Field::new("measurement_year", DataType::Int64, false),
            ])),
            vec![
                Arc::new(Int64Array::from(pid)) as ArrayRef,
                Arc::new(Int64Array::from(concept)),
                Arc::new(Float64Array::from(value)),
                Arc::new(Int64Array::from(year)),
            ],
        )
        .map_err(err)?;
        m_files.push(write(
            dir,
            &format!("measurement-{part:04}.parquet"),
            &batch,
        )?);
        written += n;
        part += 1;
    }
    let table = |name: &str, files: Vec<ManifestFile>| ManifestTable {
        name: name.into(),
        files,
        schema: serde_json::Value::Null,
        patient_column: Some("person_id".into()),
    };
    let manifest = Manifest {
        format_version: MANIFEST_FORMAT,
        kind: ManifestKind::Tables,
        tables: vec![
            table("person", vec![person_file]),
            table("condition_occurrence", vec![condition_file]),
            table("measurement", m_files),
        ],
        files: vec![],
        key_id: p.key_id().to_owned(),
        pseudonym_mode: mode.into(),
        policy: PolicyRef {
            name: "synthetic".into(),
            sha256: "0".repeat(64),
        },
        source: SourceRef {
            description: "synthetic OMOP-like cohort (mdc-query synth)".into(),
            sha256: "0".repeat(64),
        },
        created_at: mdc_store::audit::now_text(),
        mdc_version: env!("CARGO_PKG_VERSION").into(),
        rejected: Rejected::default(),
    };
    std::fs::write(
        dir.join(MANIFEST_FILE),
        serde_json::to_string_pretty(&manifest).map_err(err)?,
    )
    .map_err(err)?;
    Ok(ids)
}
