//! `mdc validate`: run a submitted ONNX model on a cohort and write a
//! validation report (issue 7).
//!
//! Two modes. Local: `--data FILE.csv|.parquet`, the report goes to
//! `--output DIR`. Governed: `--data dataset:NAME@VER --project P` with a
//! researcher token: the read is authorised and audited by the store, opted-out
//! patients are dropped, the model file is moved in for the run and deleted
//! after (its SHA-256 stays in the report and the audit), subgroups with fewer
//! than 10 events are suppressed, and the report is written as a *pending
//! output* under `outputs/<project>/<id>/` for the release workflow.
//!
//! Every check that can fail (arguments, model inputs against the features,
//! labels, missing values, one class) runs before inference, and the report
//! files are written only when everything succeeded: no partial report.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use mdc_table::columns::{self, Values, Want};
use mdc_validate::{
    DataInfo, ModelInfo, Options, Provenance, Report, SubgroupSpec, SubgroupValues,
};
use serde::Deserialize;

use crate::cli::Global;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The model, an ONNX file (scikit-learn, XGBoost, LightGBM, PyTorch exports).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// COHORT.csv, COHORT.parquet, or dataset:NAME[@VER][/TABLE] (governed, needs --project).
    #[arg(long)]
    pub data: Option<String>,
    /// Feature columns, in the order the model expects: a,b,c.
    #[arg(long, value_delimiter = ',')]
    pub features: Vec<String>,
    /// Outcome column (0/1).
    #[arg(long)]
    pub label: Option<String>,
    /// Predicted positive iff p >= threshold (default 0.5).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// COL (each value) or COL:cut,cut (numeric intervals); repeatable.
    #[arg(long = "subgroup")]
    pub subgroups: Vec<String>,
    /// Bootstrap replicates for percentile CIs (default 0: none).
    #[arg(long)]
    pub bootstrap: Option<u32>,
    /// Bootstrap seed, recorded in the report (default 20260501).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Report folder (local mode; default ./validation-report).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Model card (TOML) carrying these settings and the descriptive fields.
    #[arg(long)]
    pub card: Option<PathBuf>,
    /// The model output holding the probability (default: found automatically).
    #[arg(long)]
    pub output_name: Option<String>,
    /// Column of that output for the positive class (default 1 of [N,2]).
    #[arg(long)]
    pub positive_index: Option<usize>,
    /// Governed mode: the project the run belongs to.
    #[arg(long)]
    pub project: Option<String>,
    /// Governed mode: the column of patient pseudonyms (default: the manifest's).
    #[arg(long)]
    pub patient_column: Option<String>,
    /// Leave out rows with a missing feature or label (counted in the report).
    #[arg(long)]
    pub drop_missing: bool,
    /// Rows per inference batch.
    #[arg(long, default_value_t = 4096)]
    pub batch_size: usize,
    /// ONNX Runtime intra-op threads (0: ONNX Runtime's default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// libonnxruntime.so (file or folder); else MDC_ONNXRUNTIME, ORT_DYLIB_PATH,
    /// mdc.toml, then beside the executable.
    #[arg(long, env = "MDC_ONNXRUNTIME")]
    pub onnxruntime: Option<PathBuf>,
}

/// A model card: descriptive fields for the report plus optional settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Card {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    developer: Option<String>,
    #[serde(default)]
    intended_use: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    participants: Option<String>,
    #[serde(default)]
    data_dates: Option<String>,
    #[serde(default)]
    limitations: Option<String>,
    #[serde(default)]
    validate: CardSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardSettings {
    features: Option<Vec<String>>,
    label: Option<String>,
    threshold: Option<f64>,
    subgroups: Option<Vec<String>>,
    bootstrap: Option<u32>,
    seed: Option<u64>,
    output_name: Option<String>,
    positive_index: Option<usize>,
    patient_column: Option<String>,
}

const DEFAULT_SEED: u64 = 20_260_501;

/// The settings after merging the card and the flags (flags win).
struct Settings {
    model: PathBuf,
    data: String,
    features: Vec<String>,
    label: String,
    threshold: f64,
    subgroups: Vec<SubgroupSpec>,
    bootstrap: u32,
    seed: u64,
    output_name: Option<String>,
    positive_index: Option<usize>,
    patient_column: Option<String>,
    card: BTreeMap<String, String>,
}

fn settings(a: &ValidateArgs) -> anyhow::Result<Settings> {
    let card: Card = match &a.card {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the model card {}", p.display()))?;
            toml::from_str(&text).map_err(|e| {
                anyhow::anyhow!("invalid model card {}: {}", p.display(), e.message())
            })?
        }
        None => Card::default(),
    };
    let c = card.validate;
    let Some(model) = a.model.clone() else {
        bail!("invalid arguments: --model MODEL.onnx is required");
    };
    let Some(data) = a.data.clone() else {
        bail!("invalid arguments: --data COHORT.csv|COHORT.parquet|dataset:NAME@VER is required");
    };
    let features = if a.features.is_empty() {
        c.features.unwrap_or_default()
    } else {
        a.features.clone()
    };
    let features: Vec<String> = features
        .into_iter()
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect();
    if features.is_empty() {
        bail!("invalid arguments: --features a,b,c (or `features` in the card) is required");
    }
    let mut seen = HashSet::new();
    if let Some(d) = features.iter().find(|f| !seen.insert(f.as_str())) {
        bail!("invalid --features: {d} is named twice");
    }
    let Some(label) = a.label.clone().or(c.label) else {
        bail!("invalid arguments: --label COLUMN (or `label` in the card) is required");
    };
    if features.contains(&label) {
        bail!("invalid arguments: the label {label} is also a feature");
    }
    let threshold = a.threshold.or(c.threshold).unwrap_or(0.5);
    if !(threshold > 0.0 && threshold < 1.0) {
        bail!("invalid --threshold: must lie strictly between 0 and 1");
    }
    let subs = if a.subgroups.is_empty() {
        c.subgroups.unwrap_or_default()
    } else {
        a.subgroups.clone()
    };
    let subgroups = subs
        .iter()
        .map(|s| SubgroupSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut text = BTreeMap::new();
    for (k, v) in [
        ("name", card.name),
        ("version", card.version),
        ("developer", card.developer),
        ("intended_use", card.intended_use),
        ("outcome", card.outcome),
        ("participants", card.participants),
        ("data_dates", card.data_dates),
        ("limitations", card.limitations),
    ] {
        if let Some(v) = v {
            text.insert(k.to_owned(), v);
        }
    }
    Ok(Settings {
        model,
        data,
        features,
        label,
        threshold,
        subgroups,
        bootstrap: a.bootstrap.or(c.bootstrap).unwrap_or(0),
        seed: a.seed.or(c.seed).unwrap_or(DEFAULT_SEED),
        output_name: a.output_name.clone().or(c.output_name),
        positive_index: a.positive_index.or(c.positive_index),
        patient_column: a.patient_column.clone().or(c.patient_column),
        card: text,
    })
}

/// Finds and loads ONNX Runtime (DESIGN §9).
fn runtime(a: &ValidateArgs, root: &Path) -> anyhow::Result<mdc_infer::Runtime> {
    let env = std::env::var_os("ORT_DYLIB_PATH")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    // mdc.toml only when the root exists: local mode needs no data root.
    let config = if root.join("mdc.toml").is_file() {
        mdc_store::Config::load(&mdc_store::Root::new(root))?
            .onnxruntime
            .map(|p| {
                let p = PathBuf::from(p);
                if p.is_relative() {
                    root.join(p)
                } else {
                    p
                }
            })
    } else {
        None
    };
    let search = mdc_infer::Search {
        flag: a.onnxruntime.clone(),
        env,
        config,
        exe: std::env::current_exe().ok(),
    };
    let lib = mdc_infer::locate(&search)?;
    Ok(mdc_infer::init(&lib)?)
}

/// Deletes the run folder (and so the staged model) however the run ends.
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the cohort comes from.
enum Source {
    File(PathBuf),
    Dataset {
        name: String,
        version: Option<i64>,
        table: Option<String>,
    },
}

fn parse_source(data: &str) -> anyhow::Result<Source> {
    let Some(rest) = data.strip_prefix("dataset:") else {
        return Ok(Source::File(PathBuf::from(data)));
    };
    let (dv, table) = match rest.split_once('/') {
        Some((a, t)) => (a, Some(t.to_owned())),
        None => (rest, None),
    };
    let (name, version) = crate::commands::dataset_ref(dv)?;
    if name.is_empty() {
        bail!("invalid --data: expected dataset:NAME@VERSION");
    }
    Ok(Source::Dataset {
        name,
        version,
        table,
    })
}

/// The governed context of a run.
struct Governed {
    store: mdc_store::Store,
    actor: mdc_store::Actor,
    access: mdc_store::AccessInfo,
}

pub async fn run(g: &Global, a: ValidateArgs) -> anyhow::Result<u8> {
    let s = settings(&a)?;
    let source = parse_source(&s.data)?;
    if a.batch_size == 0 {
        bail!("invalid --batch-size: must be at least 1");
    }
    // Mode checks, before anything is read.
    let governed = match (&source, &a.project) {
        (Source::File(_), Some(_)) => {
            bail!("invalid arguments: --project needs --data dataset:NAME@VERSION (governed mode)")
        }
        (Source::Dataset { .. }, None) => {
            bail!("invalid arguments: --data dataset:… runs inside a project: add --project P")
        }
        (Source::Dataset { .. }, Some(_)) if a.output.is_some() => bail!(
            "invalid arguments: in governed mode the report is written as a pending output of the project; --output is not allowed"
        ),
        (Source::File(_), None) => false,
        (Source::Dataset { .. }, Some(_)) => true,
    };
    if !s.model.is_file() {
        bail!("cannot read the model {}: no such file", s.model.display());
    }
    let rt = runtime(&a, &g.root)?;

    // Governed: authorise (and audit) the read before touching the model.
    let mut gov: Option<Governed> = None;
    let mut run_dir: Option<RunDir> = None;
    let mut consent_filter = None;
    let mut table_files: Vec<PathBuf> = Vec::new();
    let mut data_sha = String::new();
    let mut source_text = s.data.clone();
    let mut patient_col: Option<String> = None;
    if let (
        true,
        Source::Dataset {
            name,
            version,
            table,
        },
        Some(project),
    ) = (governed, &source, &a.project)
    {
        let Some(token) = &g.token else {
            bail!("governed validation needs a researcher token: pass --token or set MDC_TOKEN");
        };
        let store = mdc_store::Store::open(&g.root).await?;
        let actor = store
            .actor(&mdc_store::Credential::Token(token.clone()), "cli")
            .await?;
        if !actor.has(mdc_types::Role::Researcher) {
            bail!(
                "governed validation needs a researcher token; {} does not hold the researcher role",
                actor.name
            );
        }
        let access = store
            .access_check(
                &actor,
                project,
                name,
                *version,
                mdc_types::GrantLevel::Aggregate,
            )
            .await?;
        let info = store.project_show(&actor, project).await?;
        let vinfo = store.version_info(name, access.version).await?;
        let dir = g.root.join(&vinfo.path);
        let manifest: mdc_types::manifest::Manifest = serde_json::from_str(
            &std::fs::read_to_string(dir.join(mdc_types::manifest::MANIFEST_FILE)).with_context(
                || format!("cannot read the manifest of {name}@{}", access.version),
            )?,
        )
        .with_context(|| format!("invalid manifest of {name}@{}", access.version))?;
        let t = match table {
            Some(t) => manifest.tables.iter().find(|x| &x.name == t),
            None if manifest.tables.len() == 1 => manifest.tables.first(),
            None => None,
        };
        let Some(t) = t else {
            bail!(
                "invalid --data: name one table of {name}@{} as dataset:{name}@{}/TABLE (tables: {})",
                access.version,
                access.version,
                manifest
                    .tables
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        table_files = t.files.iter().map(|f| dir.join(&f.path)).collect();
        // The data digest: SHA-256 over "sha256  path\n" of the table's files.
        let mut listing = String::new();
        for f in &t.files {
            listing.push_str(&f.sha256);
            listing.push_str("  ");
            listing.push_str(&f.path);
            listing.push('\n');
        }
        data_sha = mdc_store::audit::sha256_hex(&[listing.as_bytes()]);
        source_text = format!("dataset:{name}@{}/{}", access.version, t.name);
        patient_col = s
            .patient_column
            .clone()
            .or_else(|| t.patient_column.clone());
        consent_filter = Some(
            store
                .excluded_patients(name, access.version, &info.purpose, mdc_store::today())
                .await?,
        );
        // The model is moved in for the run and deleted after it.
        let id = format!(
            "validate-{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%6fZ"),
            std::process::id()
        );
        let rd = g.root.join("runs").join(&id);
        std::fs::create_dir_all(&rd).with_context(|| format!("cannot create {}", rd.display()))?;
        let guard = RunDir(rd.clone());
        let staged = rd.join("model.onnx");
        if std::fs::rename(&s.model, &staged).is_err() {
            std::fs::copy(&s.model, &staged)
                .with_context(|| format!("cannot read the model {}", s.model.display()))?;
            std::fs::remove_file(&s.model).with_context(|| {
                format!("cannot remove the submitted model {}", s.model.display())
            })?;
        }
        run_dir = Some(guard);
        gov = Some(Governed {
            store,
            actor,
            access,
        });
    }
    let model_path = run_dir
        .as_ref()
        .map_or_else(|| s.model.clone(), |d| d.0.join("model.onnx"));
    let model_sha = mdc_table::sha256_file(&model_path)?;
    let bytes = std::fs::read(&model_path)
        .with_context(|| format!("cannot read the model {}", s.model.display()))?;
    let mut model = mdc_infer::Model::load(&bytes, a.threads)
        .with_context(|| format!("cannot load the model {}", s.model.display()))?;
    drop(bytes);
    let plan = model.plan(&s.features, s.output_name.as_deref(), s.positive_index)?;

    // The cohort's columns.
    let mut want: Vec<(String, Want)> = s
        .features
        .iter()
        .map(|f| (f.clone(), Want::Numeric))
        .collect();
    want.push((s.label.clone(), Want::Numeric));
    for sg in &s.subgroups {
        if !want.iter().any(|(n, _)| n == &sg.column) {
            let w = if sg.cuts.is_some() {
                Want::Numeric
            } else {
                Want::Text
            };
            want.push((sg.column.clone(), w));
        }
    }
    let cols = match &source {
        Source::File(p) => {
            data_sha = mdc_table::sha256_file(p)?;
            columns::read_columns(p, &want)?
        }
        Source::Dataset { .. } => {
            let Some(pc) = patient_col.clone() else {
                bail!("governed validation needs the column of patient pseudonyms to apply consent opt-outs: name it with --patient-column");
            };
            want.push((pc.clone(), Want::Text));
            columns::read_parquet_files(&table_files, &want)?
        }
    };
    let rows_read = cols.rows;
    let col = |name: &str| cols.columns.iter().find(|(n, _)| n == name).map(|(_, v)| v);

    // Consent: keep rows whose patient has not opted out (as of today).
    let mut keep = vec![true; rows_read];
    let mut excluded_by_consent = None;
    if let (Some(filter), Some(pc)) = (&consent_filter, &patient_col) {
        let Some(Values::Text(ids)) = col(pc) else {
            bail!("internal: patient column not read");
        };
        let mut excluded = 0u64;
        for (k, id) in keep.iter_mut().zip(ids) {
            let Some(p) = id.as_deref().and_then(mdc_types::Pseudonym::parse) else {
                bail!("column {pc} must hold patient pseudonyms (16 base32 characters) in every row to apply consent; name the pseudonym column with --patient-column");
            };
            if filter.excludes(&p) {
                *k = false;
                excluded += 1;
            }
        }
        excluded_by_consent = Some(excluded);
    }

    // Missing values: counted per column; refused unless --drop-missing.
    let mut missing = BTreeMap::new();
    let mut has_missing = vec![false; rows_read];
    for name in s.features.iter().chain(std::iter::once(&s.label)) {
        let Some(Values::Numeric(v)) = col(name) else {
            bail!("internal: column {name} not read as numbers");
        };
        let mut n = 0u64;
        for (i, x) in v.iter().enumerate() {
            if x.is_nan() && keep[i] {
                has_missing[i] = true;
                n += 1;
            }
        }
        missing.insert(name.clone(), n);
    }
    let dropped = has_missing.iter().filter(|&&m| m).count() as u64;
    if dropped > 0 && !a.drop_missing {
        let which: Vec<String> = missing
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        bail!(
            "missing values (NaN or empty) in {} row(s): {}; nothing is imputed: pass --drop-missing to leave those rows out (the report counts them)",
            dropped,
            which.join(", ")
        );
    }
    for (k, m) in keep.iter_mut().zip(&has_missing) {
        if *m {
            *k = false;
        }
    }
    let pick = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .zip(&keep)
            .filter(|(_, &k)| k)
            .map(|(x, _)| *x)
            .collect()
    };
    let mut features = Vec::with_capacity(s.features.len());
    for name in &s.features {
        let Some(Values::Numeric(v)) = col(name) else {
            bail!("internal: column {name} not read");
        };
        let kept = pick(v);
        if let Some(i) = kept.iter().position(|x| !x.is_finite()) {
            bail!("feature {name} is infinite in data row {}", i + 1);
        }
        features.push(kept);
    }
    let Some(Values::Numeric(label_raw)) = col(&s.label) else {
        bail!("internal: label not read");
    };
    let y = mdc_validate::labels_from_f64(&s.label, &pick(label_raw))?;
    let pos = y.iter().map(|&v| usize::from(v)).sum::<usize>();
    if y.is_empty() {
        bail!("the cohort has no rows left to validate");
    }
    if pos == 0 || pos == y.len() {
        bail!(
            "the cohort has one class only ({} rows, {pos} with {} = 1): AUROC and calibration need both outcomes",
            y.len(),
            s.label
        );
    }
    let mut subgroups = Vec::new();
    for sg in &s.subgroups {
        let values = match col(&sg.column) {
            Some(Values::Numeric(v)) => SubgroupValues::Numeric(pick(v)),
            Some(Values::Text(t)) => SubgroupValues::Text(
                t.iter()
                    .zip(&keep)
                    .filter(|(_, &k)| k)
                    .map(|(x, _)| x.clone())
                    .collect(),
            ),
            None => bail!("internal: subgroup column {} not read", sg.column),
        };
        subgroups.push((sg.clone(), values));
    }

    // Inference, then the statistics.
    let p = model.predict(&plan, &features, a.batch_size)?;
    let opts = Options {
        threshold: s.threshold,
        bootstrap: s.bootstrap,
        seed: s.seed,
        suppress_small_subgroups: governed,
    };
    let metrics = mdc_validate::evaluate(&p, &y, &subgroups, &opts)?;
    let report = Report {
        report_format: mdc_validate::REPORT_FORMAT,
        provenance: Provenance {
            mdc_version: env!("CARGO_PKG_VERSION").into(),
            onnxruntime_version: Some(rt.version.clone()),
            created_at: mdc_store::audit::now_text(),
            mode: if governed { "governed" } else { "local" }.into(),
            project: a.project.clone(),
            seed: s.seed,
            model: ModelInfo {
                file: s
                    .model
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: model_sha.clone(),
                producer: model.producer.clone(),
                inputs: model
                    .inputs
                    .iter()
                    .map(|i| format!("{} {}", i.name, i.kind))
                    .collect(),
                output: plan.output.clone(),
                positive_index: plan.positive_index,
                retained: !governed,
            },
            data: DataInfo {
                source: source_text,
                sha256: data_sha.clone(),
                features: s.features.clone(),
                label: s.label.clone(),
                rows_read: rows_read as u64,
                rows_used: y.len() as u64,
                excluded_by_consent,
                rows_dropped_missing: dropped,
                missing,
            },
            card: s.card.clone(),
        },
        metrics,
    };
    drop(model);
    let json = serde_json::to_string_pretty(&report)? + "\n";
    let html = mdc_validate::html::render(&report);

    let written = match gov {
        Some(gv) => {
            let project = a.project.clone().unwrap_or_default();
            let id = format!(
                "validation-{}",
                &mdc_store::audit::sha256_hex(&[json.as_bytes(), model_sha.as_bytes()])[..16]
            );
            let dir = g.root.join("outputs").join(&project).join(&id);
            let report_sha = mdc_store::audit::sha256_hex(&[json.as_bytes()]);
            let html_sha = mdc_store::audit::sha256_hex(&[html.as_bytes()]);
            let meta = serde_json::json!({
                "kind": "validation-report",
                "status": "pending",
                "project": project,
                "author": gv.actor.name,
                "created_at": report.provenance.created_at,
                "files": [
                    {"path": "report.json", "sha256": report_sha},
                    {"path": "report.html", "sha256": html_sha},
                ],
                "model_sha256": model_sha,
                "data_sha256": data_sha,
                "note": "held for review; released through the output release workflow",
            });
            write_folder(
                &dir,
                &[
                    ("report.json", json.as_bytes()),
                    ("report.html", html.as_bytes()),
                    (
                        "output.json",
                        serde_json::to_string_pretty(&meta)?.as_bytes(),
                    ),
                ],
            )?;
            gv.store
                .record_validation_run(
                    &gv.actor,
                    &gv.access,
                    &mdc_store::ValidationRun {
                        model_sha256: model_sha.clone(),
                        data_sha256: data_sha.clone(),
                        output_id: format!("{project}/{id}"),
                        report_sha256: report_sha,
                        rows_used: y.len() as u64,
                        excluded_by_consent: excluded_by_consent.unwrap_or(0),
                        seed: s.seed,
                    },
                )
                .await?;
            gv.store.close().await;
            dir
        }
        None => {
            let dir = a
                .output
                .clone()
                .unwrap_or_else(|| PathBuf::from("validation-report"));
            write_folder(
                &dir,
                &[
                    ("report.json", json.as_bytes()),
                    ("report.html", html.as_bytes()),
                ],
            )?;
            dir
        }
    };
    drop(run_dir);

    let m = &report.metrics;
    if g.json {
        let summary = serde_json::json!({
            "output": written,
            "pending_output": governed,
            "model_sha256": model_sha,
            "data_sha256": data_sha,
            "n": m.n,
            "positives": m.positives,
            "auroc": m.auroc,
            "sensitivity": m.sensitivity,
            "specificity": m.specificity,
            "brier": m.brier,
            "calibration_slope": m.calibration_slope,
            "calibration_intercept": m.calibration_intercept,
            "ece": m.ece,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&report);
        if governed {
            println!(
                "report held as a pending output in {} (model deleted; SHA-256 {model_sha} kept in the report and the audit)",
                written.display()
            );
        } else {
            println!("wrote {}/report.json and report.html", written.display());
        }
    }
    Ok(0)
}

fn f3(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.3}"))
}

fn iv(i: &mdc_validate::Interval) -> String {
    format!("{} ({}–{})", f3(i.estimate), f3(i.ci_low), f3(i.ci_high))
}

/// The headline lines shared by the CLI and the demo.
pub fn print_summary(r: &Report) {
    let m = &r.metrics;
    println!(
        "  n {}  events {} ({:.1}%)  model {} (sha256 {}…)  ONNX Runtime {}",
        m.n,
        m.positives,
        100.0 * m.prevalence,
        r.provenance.model.file,
        r.provenance.model.sha256.get(..12).unwrap_or_default(),
        r.provenance.onnxruntime_version.as_deref().unwrap_or("?")
    );
    println!(
        "  AUROC {} DeLong · sensitivity {} · specificity {} at p ≥ {}",
        iv(&m.auroc.interval()),
        iv(&m.sensitivity),
        iv(&m.specificity),
        m.threshold
    );
    println!(
        "  calibration slope {} · intercept {} · Brier {:.4} · ECE {:.4}",
        f3(m.calibration_slope),
        f3(m.calibration_intercept),
        m.brier,
        m.ece
    );
    for w in &m.warnings {
        println!("  note: {w}");
    }
}

/// Writes files into `dir` all-or-nothing: into a fresh temporary folder
/// beside it, then each file renamed into place.
fn write_folder(dir: &Path, files: &[(&str, &[u8])]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-report-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot write into {}", dir.display()))?;
    for (name, bytes) in files {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
    }
    for (name, _) in files {
        std::fs::rename(tmp.path().join(name), dir.join(name))
            .with_context(|| format!("cannot write {}", dir.join(name).display()))?;
    }
    Ok(())
}

/// Validates a bundled model on a synthetic cohort in `work` (the demo step).
pub fn demo(work: &Path) -> anyhow::Result<()> {
    let lib = mdc_infer::locate(&mdc_infer::Search {
        flag: None,
        env: std::env::var_os("MDC_ONNXRUNTIME")
            .or_else(|| std::env::var_os("ORT_DYLIB_PATH"))
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        config: None,
        exe: std::env::current_exe().ok(),
    });
    let lib = match lib {
        Ok(l) => l,
        Err(e) => {
            println!("  skipped: {e}");
            return Ok(());
        }
    };
    let rt = mdc_infer::init(&lib)?;
    std::fs::create_dir_all(work)?;
    let cohort = work.join("cohort.csv");
    std::fs::write(&cohort, DEMO_COHORT)?;
    let features: Vec<String> = DEMO_FEATURES.iter().map(|s| (*s).to_owned()).collect();
    let mut model = mdc_infer::Model::load(DEMO_MODEL, 1)?;
    let plan = model.plan(&features, None, None)?;
    let mut want: Vec<(String, Want)> = features
        .iter()
        .map(|f| (f.clone(), Want::Numeric))
        .collect();
    want.push(("sepsis".into(), Want::Numeric));
    want.push(("sex".into(), Want::Text));
    let cols = columns::read_columns(&cohort, &want)?;
    let mut num = Vec::new();
    let mut text = None;
    for (_, v) in cols.columns {
        match v {
            Values::Numeric(v) => num.push(v),
            Values::Text(t) => text = Some(t),
        }
    }
    let Some(label) = num.pop() else {
        bail!("demo cohort has no label column");
    };
    let y = mdc_validate::labels_from_f64("sepsis", &label)?;
    let p = model.predict(&plan, &num, 4096)?;
    let subgroups = vec![
        (
            SubgroupSpec::parse("sex")?,
            SubgroupValues::Text(text.unwrap_or_default()),
        ),
        (
            SubgroupSpec::parse("age:65")?,
            SubgroupValues::Numeric(num[0].clone()),
        ),
    ];
    let metrics = mdc_validate::evaluate(
        &p,
        &y,
        &subgroups,
        &Options {
            threshold: 0.2,
            ..Options::default()
        },
    )?;
    let report = Report {
        report_format: mdc_validate::REPORT_FORMAT,
        provenance: Provenance {
            mdc_version: env!("CARGO_PKG_VERSION").into(),
            onnxruntime_version: Some(rt.version),
            mode: "local".into(),
            seed: DEFAULT_SEED,
            model: ModelInfo {
                file: "logreg.onnx (bundled)".into(),
                sha256: mdc_store::audit::sha256_hex(&[DEMO_MODEL]),
                ..ModelInfo::default()
            },
            ..Provenance::default()
        },
        metrics,
    };
    print_summary(&report);
    let out = work.join("validation");
    write_folder(
        &out,
        &[(
            "report.html",
            mdc_validate::html::render(&report).as_bytes(),
        )],
    )?;
    println!(
        "  report.html with ROC, calibration and forest plots in {}",
        out.display()
    );
    Ok(())
}

const DEMO_MODEL: &[u8] = include_bytes!("../../../data/validate/models/logreg.onnx");
const DEMO_COHORT: &str = include_str!("../../../data/validate/cohort.csv");
const DEMO_FEATURES: [&str; 8] = [
    "age",
    "sex_male",
    "heart_rate",
    "resp_rate",
    "temperature",
    "lactate",
    "wbc",
    "sbp",
];
