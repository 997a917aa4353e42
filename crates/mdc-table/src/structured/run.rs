//! Whole runs: `deid omop`, `deid table` and `risk`, each writing into a
//! staging folder beside the output that becomes the output folder by one
//! rename, so a failed run leaves no partial output.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use mdc_deid::structured::engine::{Ctx, DigitHasher, TextScrubber};
use mdc_deid::structured::omop;
use mdc_deid::structured::report::{Report, RiskComparison};
use mdc_deid::structured::risk::{anonymize, Encoder, HierarchyKind, QiHierarchy, RiskSummary};
use mdc_deid::structured::value::ColumnKind;
use mdc_deid::structured::{Action, Generalize, Policy};
use mdc_deid::{Domain, Pseudonymizer};
use mdc_types::manifest::{
    Manifest, ManifestFile, ManifestKind, ManifestTable, PolicyRef, Rejected, SourceRef,
    MANIFEST_FILE, MANIFEST_FORMAT,
};

use super::driver::{run_table, AutoGen, DeidError, PatientMode, Patients, RiskSpec, TableJob};
use super::io::TableReader;
use crate::sha256_file;

pub const REPORT_JSON: &str = "deid-report.json";
pub const REPORT_HTML: &str = "deid-report.html";

/// What every run needs besides its input.
pub struct RunOptions<'a> {
    pub input: PathBuf,
    pub output: PathBuf,
    pub policy: Policy,
    pub pseudonymizer: &'a dyn Pseudonymizer,
    pub text: Option<&'a dyn TextScrubber>,
    pub text_engine_name: String,
    pub created_at: String,
    pub mdc_version: String,
    /// The year ages are pooled against (90+).
    pub reference_year: i32,
    pub qi: Vec<String>,
    pub sensitive: Option<String>,
    pub k: Option<u32>,
    pub max_suppression: f64,
    pub threshold: u64,
}

impl std::fmt::Debug for RunOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RunOptions({} → {})",
            self.input.display(),
            self.output.display()
        )
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct RunOutcome {
    pub report: Report,
    pub output: PathBuf,
    pub manifest: Manifest,
}

/// A folder beside the output, renamed into place by `commit`, removed on drop.
pub struct Staging {
    pub dir: PathBuf,
    target: PathBuf,
    done: bool,
}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Staging({})", self.dir.display())
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DeidError + '_ {
    move |source| DeidError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Staging {
    pub fn begin(target: &Path) -> Result<Staging, DeidError> {
        if target.exists() {
            let empty = target.is_dir()
                && fs::read_dir(target)
                    .map_err(io_err(target))?
                    .next()
                    .is_none();
            if !empty {
                return Err(DeidError::Invalid(format!(
                    "{} exists and is not an empty folder; choose a new output folder",
                    target.display()
                )));
            }
        }
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(io_err(parent))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = parent.join(format!(".{name}.staging-{}-{nanos}", std::process::id()));
        fs::create_dir(&dir).map_err(io_err(&dir))?;
        Ok(Staging {
            dir,
            target: target.to_owned(),
            done: false,
        })
    }

    pub fn commit(mut self) -> Result<PathBuf, DeidError> {
        if self.target.is_dir() {
            fs::remove_dir(&self.target).map_err(io_err(&self.target))?;
        }
        fs::rename(&self.dir, &self.target).map_err(io_err(&self.target))?;
        self.done = true;
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// SHA-256 over `name sha256` lines of the inputs, sorted by name.
pub fn inputs_digest(files: &[(String, PathBuf)]) -> Result<String, DeidError> {
    let mut lines: Vec<String> = Vec::new();
    for (name, p) in files {
        lines.push(format!("{name} {}\n", sha256_file(p)?));
    }
    lines.sort();
    Ok(mdc_deid_sha(lines.concat().as_bytes()))
}

fn mdc_deid_sha(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    data_encoding::HEXLOWER.encode(&Sha256::digest(b))
}

/// Writes the report (JSON + HTML) and the manifest into the staging folder.
pub fn finish(
    staging: Staging,
    mut report: Report,
    tables: Vec<ManifestTable>,
    mut extra: Vec<ManifestFile>,
    kind_desc: String,
    input_sha: String,
) -> Result<RunOutcome, DeidError> {
    let dir = staging.dir.clone();
    report.output = staging.target.display().to_string();
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| DeidError::Invalid(format!("report: {e}")))?;
    let jp = dir.join(REPORT_JSON);
    write_synced(&jp, json.as_bytes())?;
    let hp = dir.join(REPORT_HTML);
    write_synced(&hp, report.to_html().as_bytes())?;
    extra.push(ManifestFile {
        path: REPORT_JSON.into(),
        sha256: sha256_file(&jp)?,
        rows: None,
    });
    extra.push(ManifestFile {
        path: REPORT_HTML.into(),
        sha256: sha256_file(&hp)?,
        rows: None,
    });
    let manifest = Manifest {
        format_version: MANIFEST_FORMAT,
        kind: ManifestKind::Tables,
        tables,
        files: extra,
        key_id: report.key_id.clone(),
        pseudonym_mode: report.pseudonym_mode.clone(),
        policy: PolicyRef {
            name: report.policy_name.clone(),
            sha256: report.policy_sha256.clone(),
        },
        source: SourceRef {
            description: kind_desc,
            sha256: input_sha,
        },
        created_at: report.created_at.clone(),
        mdc_version: report.mdc_version.clone(),
        rejected: Rejected {
            count: report.rejected_count,
            report: Some(REPORT_JSON.into()),
        },
    };
    let mp = dir.join(MANIFEST_FILE);
    let mj = serde_json::to_string_pretty(&manifest)
        .map_err(|e| DeidError::Invalid(format!("manifest: {e}")))?;
    write_synced(&mp, mj.as_bytes())?;
    let output = staging.commit()?;
    Ok(RunOutcome {
        report,
        output,
        manifest,
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), DeidError> {
    use std::io::Write;
    let mut f = fs::File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// A report with the run's identity filled in.
pub fn new_report_pub(kind: &str, o: &RunOptions<'_>) -> Report {
    new_report(kind, o)
}

fn new_report(kind: &str, o: &RunOptions<'_>) -> Report {
    Report {
        kind: kind.into(),
        created_at: o.created_at.clone(),
        mdc_version: o.mdc_version.clone(),
        policy_name: o.policy.name.clone(),
        policy_sha256: o.policy.sha256.clone(),
        key_id: o.pseudonymizer.key_id().to_owned(),
        pseudonym_mode: o.pseudonymizer.mode().to_owned(),
        text_engine: if o.text.is_some() {
            o.text_engine_name.clone()
        } else {
            "text engine not available: text columns dropped".into()
        },
        input: o.input.display().to_string(),
        ..Report::default()
    }
}

fn table_entry(
    name: &str,
    file: &str,
    dir: &Path,
    rows: u64,
    patient_column: Option<&str>,
) -> Result<ManifestTable, DeidError> {
    let p = dir.join(file);
    Ok(ManifestTable {
        name: name.to_owned(),
        files: vec![ManifestFile {
            path: file.to_owned(),
            sha256: sha256_file(&p)?,
            rows: Some(rows),
        }],
        schema: serde_json::Value::Null,
        patient_column: patient_column.map(str::to_owned),
    })
}

/// The order OMOP tables are processed in: referenced tables first.
const OMOP_ORDER: &[&str] = &[
    "location",
    "care_site",
    "provider",
    "person",
    "visit_occurrence",
    "visit_detail",
    "observation_period",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "device_exposure",
    "measurement",
    "observation",
    "death",
    "note",
    "specimen",
];

/// `mdc deid omop`: OMOP CDM v5.4 CSV or Parquet tables → Parquet + manifest.
pub fn run_omop(o: &RunOptions<'_>) -> Result<RunOutcome, DeidError> {
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut ignored = Vec::new();
    let entries = fs::read_dir(&o.input).map_err(io_err(&o.input))?;
    for e in entries {
        let e = e.map_err(io_err(&o.input))?;
        let p = e.path();
        if !p.is_file() {
            continue;
        }
        let ext = p
            .extension()
            .and_then(|x| x.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let stem = p
            .file_stem()
            .and_then(|x| x.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if matches!(ext.as_str(), "csv" | "tsv" | "parquet") && omop::columns(&stem).is_some() {
            if found.insert(stem.clone(), p.clone()).is_some() {
                return Err(DeidError::Invalid(format!(
                    "table {stem} is given twice (as CSV and Parquet?)"
                )));
            }
        } else {
            ignored.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    if !found.contains_key("person") {
        return Err(DeidError::Invalid(format!("{}: no person table (person.csv or person.parquet); it is required to identify patients", o.input.display())));
    }
    let mut report = new_report("omop", o);
    ignored.sort();
    for f in ignored {
        report.notes.push(format!(
            "ignored {f}: not an OMOP CDM v5.4 table this command reads"
        ));
    }
    let missing: Vec<&str> = OMOP_ORDER
        .iter()
        .copied()
        .filter(|t| !found.contains_key(*t))
        .collect();
    if !missing.is_empty() {
        report
            .notes
            .push(format!("absent optional tables: {}", missing.join(", ")));
    }
    let staging = Staging::begin(&o.output)?;
    let hasher = DigitHasher::new(o.pseudonymizer)?;
    let mut ctx = Ctx::new(o.pseudonymizer, &hasher, o.text, o.reference_year);
    let mut patients = Patients::default();
    let mut ids: HashMap<&str, HashSet<i64>> = HashMap::new();
    let mut region_before: HashMap<i64, String> = HashMap::new();
    let mut region_after: HashMap<i64, String> = HashMap::new();
    let mut tables = Vec::new();
    let inputs: Vec<(String, PathBuf)> =
        found.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for t in OMOP_ORDER {
        let Some(path) = found.get(*t) else { continue };
        let file = format!("{t}.parquet");
        let out = staging.dir.join(&file);
        let label = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| (*t).to_owned());
        let pk = match *t {
            "location" => Some("location_id"),
            "care_site" => Some("care_site_id"),
            "provider" => Some("provider_id"),
            "visit_occurrence" => Some("visit_occurrence_id"),
            _ => None,
        };
        let mut fks: Vec<(String, &HashSet<i64>)> = Vec::new();
        for (col, target) in [
            ("location_id", "location"),
            ("care_site_id", "care_site"),
            ("provider_id", "provider"),
            ("visit_occurrence_id", "visit_occurrence"),
        ] {
            if Some(col) != pk {
                if let Some(set) = ids.get(target) {
                    fks.push((col.to_owned(), set));
                }
            }
        }
        let patient = match *t {
            "location" | "care_site" | "provider" => PatientMode::None,
            "person" => PatientMode::Register {
                id: "person_id".into(),
                source: "person_source_value".into(),
            },
            _ => PatientMode::ById {
                column: "person_id".into(),
            },
        };
        let risk = (*t == "person").then(|| RiskSpec {
            qi: vec![
                "year_of_birth".into(),
                "month_of_birth".into(),
                "gender_concept_id".into(),
                "region".into(),
            ],
            sensitive: None,
            threshold: o.threshold,
            lookups: vec![(
                "region".into(),
                "location_id".into(),
                region_before.clone(),
                region_after.clone(),
            )],
        });
        let job = TableJob {
            name: (*t).to_owned(),
            input: path,
            label,
            output: &out,
            spec: omop::columns(t),
            required: omop::required(t),
            patient,
            foreign_keys: fks,
            collect_ids: pk.map(str::to_owned),
            risk,
            auto: None,
            text_available: o.text.is_some(),
            keep_values: *t == "location",
        };
        let outcome = run_table(&job, &o.policy, &mut ctx, &mut patients, &mut report)?;
        if *t == "location" {
            let region = |m: &HashMap<String, String>| {
                let s = [m.get("state"), m.get("city")]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ");
                if s.is_empty() {
                    "*".to_owned()
                } else {
                    s
                }
            };
            region_before = outcome
                .before_values
                .iter()
                .map(|(k, m)| (*k, region(m)))
                .collect();
            region_after = outcome
                .after_values
                .iter()
                .map(|(k, m)| (*k, region(m)))
                .collect();
        }
        if let Some(pk) = pk {
            let _ = pk;
            ids.insert(t, outcome.ids);
        }
        if let Some((before, after)) = outcome.risk {
            report.risk.push(RiskComparison {
                table: (*t).to_owned(),
                before,
                after,
            });
        }
        tables.push(table_entry(
            t,
            &file,
            &staging.dir,
            outcome.rows,
            (!matches!(*t, "location" | "care_site" | "provider")).then_some("person_id"),
        )?);
        report.tables.push(outcome.report);
    }
    report.notes.push(format!("{} patients pseudonymised; person_id is the integer form of each patient's pseudonym (DESIGN §4)", patients.by_id.len()));
    let digest = inputs_digest(&inputs)?;
    report.input_sha256.clone_from(&digest);
    finish(
        staging,
        report,
        tables,
        vec![],
        format!("OMOP CDM v5.4 extract, {} tables", found.len()),
        digest,
    )
}

/// The minimum hierarchy level a policy action already implies.
fn min_level(action: Action, kind: HierarchyKind) -> Result<usize, String> {
    Ok(match (action, kind) {
        (Action::Keep, _) => 0,
        (Action::Generalize(Generalize::Age5), HierarchyKind::Number) => 1,
        (Action::Generalize(Generalize::Month), HierarchyKind::Date) => 1,
        (Action::Generalize(Generalize::Year | Generalize::BirthYear), HierarchyKind::Date) => 2,
        (Action::Generalize(Generalize::Sigungu), HierarchyKind::KoreanAddress) => 1,
        (Action::Generalize(Generalize::Sido), HierarchyKind::KoreanAddress) => 2,
        (Action::Generalize(Generalize::Postal3), HierarchyKind::Postal) => 1,
        (Action::Generalize(_), _) => 0,
        (a, _) => return Err(format!("its policy action is {a}; only kept or generalised columns can be generalised toward k")),
    })
}

/// Common quasi-identifier column names, used when no --qi is given.
fn default_qi(names: &[String]) -> Vec<String> {
    let pats = [
        "age",
        "sex",
        "gender",
        "region",
        "zip",
        "postal",
        "birth",
        "address",
        "city",
        "state",
        "sido",
        "year_of_birth",
    ];
    names
        .iter()
        .filter(|n| pats.iter().any(|p| n.contains(p)))
        .cloned()
        .collect()
}

/// `mdc deid table`: one CSV or Parquet file → Parquet + manifest.
pub fn run_table_file(o: &RunOptions<'_>) -> Result<RunOutcome, DeidError> {
    let stem = o
        .input
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("table")
        .to_ascii_lowercase();
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let label = o
        .input
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.clone());
    let reader = TableReader::open(&o.input, &label)?;
    let names = reader.column_names();
    drop(reader);
    let mut report = new_report("table", o);
    // The patient column: the policy's, else the column the policy pseudonymises as a patient.
    let patient_col = o
        .policy
        .options
        .patient_column
        .clone()
        .map(|c| c.to_ascii_lowercase())
        .or_else(|| {
            names
                .iter()
                .find(|n| {
                    matches!(
                        o.policy.columns.column(Some(&name), n),
                        Some((_, Action::Pseudonym(Domain::Patient)))
                    )
                })
                .cloned()
        });
    if let Some(pc) = &patient_col {
        if !names.contains(pc) {
            return Err(DeidError::Invalid(format!(
                "{label}: the policy's patient column {pc} is not in the table"
            )));
        }
    } else if names.iter().any(|n| {
        matches!(
            o.policy.columns.column(Some(&name), n),
            Some((_, Action::ShiftDate))
        )
    }) {
        report.notes.push("no patient column: shift_date needs one (options.patient_column); those dates are removed".into());
    }
    let qi: Vec<String> = if !o.qi.is_empty() {
        o.qi.iter().map(|q| q.to_ascii_lowercase()).collect()
    } else if !o.policy.options.qi.is_empty() {
        o.policy.options.qi.clone()
    } else {
        default_qi(&names)
    };
    for q in &qi {
        if !names.contains(q) {
            return Err(DeidError::Invalid(format!(
                "quasi-identifier {q} is not a column of {label}"
            )));
        }
    }
    let k = o.k.or(o.policy.options.k);
    let auto = match k {
        Some(k) if !qi.is_empty() => Some(auto_generalize(
            o,
            &label,
            &name,
            &names,
            &qi,
            u64::from(k),
        )?),
        Some(_) => {
            return Err(DeidError::Invalid(
                "--k needs quasi-identifiers (--qi)".into(),
            ))
        }
        None => None,
    };
    let staging = Staging::begin(&o.output)?;
    let hasher = DigitHasher::new(o.pseudonymizer)?;
    let mut ctx = Ctx::new(o.pseudonymizer, &hasher, o.text, o.reference_year);
    let mut patients = Patients::default();
    let file = format!("{name}.parquet");
    let out = staging.dir.join(&file);
    let job = TableJob {
        name: name.clone(),
        input: &o.input,
        label: label.clone(),
        output: &out,
        spec: None,
        required: &[],
        patient: patient_col
            .clone()
            .map_or(PatientMode::None, |c| PatientMode::BySource { column: c }),
        foreign_keys: vec![],
        collect_ids: None,
        risk: (!qi.is_empty()).then(|| RiskSpec {
            qi: qi.clone(),
            sensitive: o.sensitive.clone(),
            threshold: o.threshold,
            lookups: vec![],
        }),
        auto: auto.as_ref(),
        text_available: o.text.is_some(),
        keep_values: false,
    };
    let outcome = run_table(&job, &o.policy, &mut ctx, &mut patients, &mut report)?;
    if let Some((before, after)) = outcome.risk {
        report.risk.push(RiskComparison {
            table: name.clone(),
            before,
            after,
        });
    }
    if let Some(a) = auto {
        report.generalization = Some(a.generalization);
    }
    let tables = vec![table_entry(
        &name,
        &file,
        &staging.dir,
        outcome.rows,
        patient_col.as_deref(),
    )?];
    report.tables.push(outcome.report);
    let digest = inputs_digest(&[(label.clone(), o.input.clone())])?;
    report.input_sha256.clone_from(&digest);
    finish(
        staging,
        report,
        tables,
        vec![],
        format!("table {label}"),
        digest,
    )
}

/// First pass of `--k`: the distinct QI combinations, their hierarchies, and
/// the least-loss generalisation that reaches k.
fn auto_generalize(
    o: &RunOptions<'_>,
    label: &str,
    table: &str,
    names: &[String],
    qi: &[String],
    k: u64,
) -> Result<AutoGen, DeidError> {
    let kinds = vec![ColumnKind::Str; names.len()];
    let idx: Vec<usize> = qi
        .iter()
        .filter_map(|q| names.iter().position(|n| n == q))
        .collect();
    let mut enc: Vec<Encoder> = qi.iter().map(|_| Encoder::new()).collect();
    let mut tuples: HashMap<Vec<u32>, u64> = HashMap::new();
    let mut reader = TableReader::open(&o.input, label)?;
    while let Some(b) = reader.next_batch(&kinds)? {
        let cols: Vec<Option<mdc_deid::structured::Column>> = idx
            .iter()
            .map(|i| {
                b.columns
                    .get(*i)
                    .cloned()
                    .and_then(super::io::InCol::into_plain)
            })
            .collect();
        for row in 0..b.records.len() {
            let key: Vec<u32> = cols
                .iter()
                .zip(enc.iter_mut())
                .map(|(c, e)| e.code(c.as_ref().and_then(|c| c.text_at(row)).as_deref()))
                .collect();
            *tuples.entry(key).or_insert(0) += 1;
        }
    }
    let mut hier = Vec::new();
    for (q, name) in qi.iter().enumerate() {
        let values: Vec<&str> = (1..enc[q].cardinality() as u32)
            .filter_map(|c| enc[q].value(c))
            .collect();
        let kind = HierarchyKind::infer(name, values.into_iter());
        let action = o
            .policy
            .columns
            .column(Some(table), name)
            .map_or(Action::Drop, |(_, a)| a);
        let min = min_level(action, kind)
            .map_err(|m| DeidError::Invalid(format!("quasi-identifier {name}: {m}")))?;
        hier.push(QiHierarchy::new(name, kind, min, &enc[q]));
    }
    let tuples: Vec<(Vec<u32>, u64)> = tuples.into_iter().collect();
    let g = anonymize(&hier, &tuples, k, o.max_suppression).ok_or_else(|| {
        DeidError::Invalid(format!(
            "no generalisation reaches k = {k} within the suppression limit ({:.0}% of records)",
            o.max_suppression * 100.0
        ))
    })?;
    Ok(AutoGen {
        columns: qi.to_vec(),
        hierarchies: hier,
        encoders: enc,
        generalization: g,
    })
}

/// Arguments of `mdc risk`.
#[derive(Debug, Clone)]
pub struct RiskArgs {
    pub input: PathBuf,
    pub qi: Vec<String>,
    pub sensitive: Option<String>,
    pub threshold: u64,
    pub population: Option<PathBuf>,
}

/// Dictionary codes of one column's values, without allocating per lookup.
#[derive(Default)]
struct ColCodes {
    ints: HashMap<i64, u32>,
    strs: HashMap<String, u32>,
    next: u32,
}

impl ColCodes {
    fn int(&mut self, v: Option<i64>) -> u32 {
        let Some(v) = v else { return 0 };
        let next = &mut self.next;
        *self.ints.entry(v).or_insert_with(|| {
            *next += 1;
            *next
        })
    }
    fn str(&mut self, v: Option<&str>) -> u32 {
        let Some(v) = v else { return 0 };
        if let Some(c) = self.strs.get(v) {
            return *c;
        }
        self.next += 1;
        self.strs.insert(v.to_owned(), self.next);
        self.next
    }
    /// Codes of a whole column (arrow fast paths for integers, dates and text).
    fn column(&mut self, col: super::io::InCol, out: &mut Vec<u32>) {
        use arrow_array::cast::AsArray;
        use arrow_array::types::{Date32Type, Int32Type, Int64Type};
        use arrow_array::Array;
        use arrow_schema::DataType;
        out.clear();
        if let super::io::InCol::Arrow(a) = &col {
            match a.data_type() {
                DataType::Int64 => {
                    let p = a.as_primitive::<Int64Type>();
                    out.extend((0..p.len()).map(|i| self.int((!p.is_null(i)).then(|| p.value(i)))));
                    return;
                }
                DataType::Int32 => {
                    let p = a.as_primitive::<Int32Type>();
                    out.extend(
                        (0..p.len())
                            .map(|i| self.int((!p.is_null(i)).then(|| i64::from(p.value(i))))),
                    );
                    return;
                }
                DataType::Date32 => {
                    let p = a.as_primitive::<Date32Type>();
                    out.extend(
                        (0..p.len())
                            .map(|i| self.int((!p.is_null(i)).then(|| i64::from(p.value(i))))),
                    );
                    return;
                }
                DataType::Utf8 => {
                    let p = a.as_string::<i32>();
                    out.extend((0..p.len()).map(|i| self.str((!p.is_null(i)).then(|| p.value(i)))));
                    return;
                }
                _ => {}
            }
        }
        if let Some(c) = col.into_plain() {
            out.extend((0..c.len()).map(|i| self.str(c.text_at(i).as_deref())));
        }
    }
}

/// Streams a table into class sizes keyed by the QI codes (32 bits each, so
/// up to four QIs pack into a `u128`; more fall back to hashing the codes).
fn classes_of(
    path: &Path,
    label: &str,
    qi: &[String],
    sensitive: Option<&str>,
    codes: &mut [ColCodes],
    sens_codes: &mut ColCodes,
) -> Result<mdc_deid::structured::risk::Classes, DeidError> {
    use mdc_deid::structured::risk::Classes;
    let mut reader = TableReader::open(path, label)?;
    let names = reader.column_names();
    let mut idx = Vec::new();
    for q in qi {
        idx.push(
            names
                .iter()
                .position(|n| n == q)
                .ok_or_else(|| DeidError::Invalid(format!("{}: no column {q}", path.display())))?,
        );
    }
    let sidx = match sensitive {
        Some(s) => Some(
            names
                .iter()
                .position(|n| n == s)
                .ok_or_else(|| DeidError::Invalid(format!("{}: no column {s}", path.display())))?,
        ),
        None => None,
    };
    let kinds = vec![ColumnKind::Str; names.len()];
    let mut classes = Classes::default();
    let mut wide: HashMap<Vec<u32>, u128> = HashMap::new();
    let mut col_codes: Vec<Vec<u32>> = vec![Vec::new(); qi.len()];
    let mut sens = Vec::new();
    let mut keys = Vec::new();
    while let Some(b) = reader.next_batch(&kinds)? {
        let n = b.records.len();
        let mut cols: Vec<Option<super::io::InCol>> = b.columns.into_iter().map(Some).collect();
        for (q, i) in idx.iter().enumerate() {
            if let Some(c) = cols.get_mut(*i).and_then(Option::take) {
                codes[q].column(c, &mut col_codes[q]);
            }
        }
        if let Some(c) = sidx.and_then(|i| cols.get_mut(i).and_then(Option::take)) {
            sens_codes.column(c, &mut sens);
        }
        keys.clear();
        for row in 0..n {
            let k = if qi.len() <= 4 {
                col_codes.iter().fold(0u128, |k, c| {
                    (k << 32) | u128::from(c.get(row).copied().unwrap_or(0))
                })
            } else {
                let v: Vec<u32> = col_codes
                    .iter()
                    .map(|c| c.get(row).copied().unwrap_or(0))
                    .collect();
                let next = wide.len() as u128;
                *wide.entry(v).or_insert(next)
            };
            keys.push(k);
        }
        classes.add(&keys, sidx.map(|_| &sens[..]));
    }
    Ok(classes)
}

/// `mdc risk`: risk measures of one table (CSV or Parquet), streamed; memory
/// grows with the number of distinct values and classes, not rows.
pub fn risk_file(a: &RiskArgs) -> Result<RiskSummary, DeidError> {
    let label = a
        .input
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let qi: Vec<String> = a.qi.iter().map(|q| q.trim().to_ascii_lowercase()).collect();
    let mut codes: Vec<ColCodes> = qi.iter().map(|_| ColCodes::default()).collect();
    let mut sens = ColCodes::default();
    let sample = classes_of(
        &a.input,
        &label,
        &qi,
        a.sensitive.as_deref(),
        &mut codes,
        &mut sens,
    )?;
    let pop = match &a.population {
        Some(p) if qi.len() <= 4 => {
            let mut dummy = ColCodes::default();
            Some(classes_of(p, &label, &qi, None, &mut codes, &mut dummy)?.sizes)
        }
        Some(_) => {
            return Err(DeidError::Invalid(
                "--population supports at most 4 quasi-identifiers".into(),
            ))
        }
        None => None,
    };
    Ok(mdc_deid::structured::risk::summarize(
        &qi,
        &sample,
        a.threshold,
        pop.as_ref(),
        a.sensitive.as_deref(),
    ))
}
