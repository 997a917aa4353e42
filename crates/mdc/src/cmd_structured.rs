//! `mdc deid omop|fhir|table|policy`, `mdc risk`, `mdc synth omop`:
//! structured de-identification (issue 4). Parses arguments, runs the
//! engines (in `mdc_table::structured`, off the async runtime because the
//! vault pseudonymiser blocks), records one audit entry per run, prints.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use mdc_deid::structured::risk::RiskSummary;
use mdc_deid::structured::synth::SynthConfig;
use mdc_deid::structured::text_bridge::TextEngine;
use mdc_deid::structured::{Policy, Report, TextScrubber};
use mdc_deid::Pseudonymizer;
use mdc_store::{DeidParam, Store};
use mdc_table::structured::{
    risk_file, run_omop, run_table_file, write_synth, RiskArgs, RunOptions, RunOutcome,
};

use crate::cli::Global;

/// Exit code 3: done, but some records were rejected (DESIGN §9).
const EXIT_REJECTS: u8 = 3;

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// A built-in profile: omop-cdm, fhir-r4, kr-health, safe-harbor.
    #[arg(long, conflicts_with = "policy")]
    pub profile: Option<String>,
    /// A policy TOML file (see docs/structured-deid.md).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Re-identification risk threshold: classes smaller than this are "at risk".
    #[arg(long, default_value_t = 5)]
    pub threshold: u64,
    /// Ages are pooled (90+) relative to this year (default: the current year).
    #[arg(long)]
    pub reference_year: Option<i32>,
}

#[derive(Debug, Args)]
pub struct OmopArgs {
    /// Folder of OMOP CDM v5.4 tables (person.csv, measurement.parquet, …).
    #[arg(long)]
    pub input: PathBuf,
    /// New folder for Parquet tables, manifest.json and the report.
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Args)]
pub struct FhirArgs {
    /// NDJSON file, Bundle JSON file, or a folder of them.
    #[arg(long)]
    pub input: PathBuf,
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Args)]
pub struct TableArgs {
    /// A CSV (or TSV) or Parquet file.
    #[arg(long)]
    pub input: PathBuf,
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Quasi-identifier columns, comma-separated (default: the policy's, else common names).
    #[arg(long, value_delimiter = ',')]
    pub qi: Vec<String>,
    /// A sensitive column for l-diversity.
    #[arg(long)]
    pub sensitive: Option<String>,
    /// Generalise the QIs along their hierarchies until every class has ≥ K records.
    #[arg(long)]
    pub k: Option<u32>,
    /// With --k: the largest share of records that may be suppressed.
    #[arg(long, default_value_t = 0.05)]
    pub max_suppression: f64,
}

#[derive(Debug, Args)]
pub struct PolicyCheckArgs {
    /// Check a policy file and print its rules' count and digest.
    #[arg(long, conflicts_with = "show")]
    pub check: Option<PathBuf>,
    /// Print a built-in profile's TOML.
    #[arg(long)]
    pub show: Option<String>,
}

#[derive(Debug, Args)]
pub struct RiskCmdArgs {
    #[arg(long)]
    pub input: PathBuf,
    /// Quasi-identifier columns, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub qi: Vec<String>,
    /// A sensitive column for l-diversity.
    #[arg(long)]
    pub sensitive: Option<String>,
    /// Classes smaller than this are "at risk".
    #[arg(long, default_value_t = 5)]
    pub threshold: u64,
    /// A population table with the same QI columns (journalist and marketer risk).
    #[arg(long)]
    pub population: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SynthCmd {
    /// A synthetic Korean OMOP CDM v5.4 extract (CSV or Parquet).
    Omop(SynthOmopArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SynthFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Args)]
pub struct SynthOmopArgs {
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, alias = "patients", default_value_t = 100)]
    pub persons: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 3)]
    pub visits_per_person: u64,
    #[arg(long, default_value_t = 4)]
    pub measurements_per_visit: u64,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: SynthFormat,
}

/// Which run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Omop,
    Fhir,
    Table,
}

fn load_policy(p: &PolicyArgs, default_profile: &str) -> anyhow::Result<Policy> {
    Ok(match (&p.policy, &p.profile) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the policy {}", file.display()))?;
            Policy::parse(&text, &file.display().to_string())?
        }
        (None, Some(name)) => Policy::profile(name)?,
        (None, None) => Policy::profile(default_profile)?,
    })
}

fn current_year() -> i32 {
    use chrono::Datelike;
    chrono::Utc::now().year()
}

/// Runs one de-identification with this root's pseudonymiser, off the runtime.
pub fn run_sync(kind: Kind, p: &dyn Pseudonymizer, opts: RunInputs) -> anyhow::Result<RunOutcome> {
    let text = TextEngine::new(p);
    let scrubber: Option<&dyn TextScrubber> = text.as_ref().map(|t| t as &dyn TextScrubber);
    let name = scrubber.map(|s| s.name().to_owned()).unwrap_or_default();
    let o = RunOptions {
        input: opts.input,
        output: opts.output,
        policy: opts.policy,
        pseudonymizer: p,
        text: scrubber,
        text_engine_name: name,
        created_at: mdc_store::audit::now_text(),
        mdc_version: env!("CARGO_PKG_VERSION").to_owned(),
        reference_year: opts.reference_year,
        qi: opts.qi,
        sensitive: opts.sensitive,
        k: opts.k,
        max_suppression: opts.max_suppression,
        threshold: opts.threshold,
    };
    Ok(match kind {
        Kind::Omop => run_omop(&o)?,
        Kind::Table => run_table_file(&o)?,
        Kind::Fhir => mdc_table::structured::fhir::run_fhir(&o)?,
    })
}

/// Runs one de-identification on the blocking pool with this root's
/// pseudonymiser (the CLI command and the demo alike).
async fn run_blocking(store: &Store, kind: Kind, inputs: RunInputs) -> anyhow::Result<RunOutcome> {
    let p = store.pseudonymizer()?;
    let (outcome, _p) =
        tokio::task::spawn_blocking(move || (run_sync(kind, p.as_ref(), inputs), p))
            .await
            .map_err(|_| anyhow::anyhow!("the de-identification task failed unexpectedly (an internal error; no output was written)"))?;
    outcome
}

/// The owned inputs of a run (moved onto the blocking pool).
#[derive(Debug)]
pub struct RunInputs {
    pub input: PathBuf,
    pub output: PathBuf,
    pub policy: Policy,
    pub reference_year: i32,
    pub qi: Vec<String>,
    pub sensitive: Option<String>,
    pub k: Option<u32>,
    pub max_suppression: f64,
    pub threshold: u64,
}

/// A panic message could quote a value from the data, so the runs print
/// only where a panic happened, never its message.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("internal error at {at} (message withheld: it may quote patient data)");
    }));
}

/// Opens the store, authorises, runs, audits, prints; returns the exit code.
pub async fn deid(g: &Global, kind: Kind, inputs: RunInputs) -> anyhow::Result<u8> {
    let (store, actor) = crate::commands::open_as(g).await?;
    let allowed = store.authorize_deid(&actor).await?;
    quiet_panics();
    let outcome = run_blocking(&store, kind, inputs).await?;
    let r = &outcome.report;
    let rows_in: u64 = r.tables.iter().map(|t| t.rows_in).sum();
    let rows_out: u64 = r.tables.iter().map(|t| t.rows_out).sum();
    let params = vec![
        ("tables", DeidParam::Count(r.tables.len() as u64)),
        ("rows_in", DeidParam::Count(rows_in)),
        ("rows_out", DeidParam::Count(rows_out)),
        (
            "resources",
            DeidParam::Count(r.fhir.as_ref().map_or(0, |f| f.resources_in)),
        ),
        ("rejected", DeidParam::Count(r.rejected_count)),
        ("suppressed", DeidParam::Count(r.suppressed_count)),
        ("input_sha256", DeidParam::Digest(r.input_sha256.clone())),
        ("policy_sha256", DeidParam::Digest(r.policy_sha256.clone())),
        ("key_id", DeidParam::Digest(r.key_id.clone())),
    ];
    let word = match kind {
        Kind::Omop => "omop",
        Kind::Fhir => "fhir",
        Kind::Table => "table",
    };
    store
        .record_deid_run(&actor, allowed, word, &params)
        .await?;
    store.close().await;
    print_report(g.json, &outcome)?;
    Ok(if r.rejected_count > 0 {
        EXIT_REJECTS
    } else {
        0
    })
}

fn print_report(json: bool, o: &RunOutcome) -> anyhow::Result<()> {
    let r = &o.report;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "output": o.output, "manifest": o.output.join("manifest.json"),
                "report": o.output.join("deid-report.json"), "html": o.output.join("deid-report.html"),
                "policy": {"name": r.policy_name, "sha256": r.policy_sha256}, "key_id": r.key_id,
                "tables": r.tables.iter().map(|t| serde_json::json!({"name": t.name, "rows_in": t.rows_in, "rows_out": t.rows_out, "rejected": t.rejected, "suppressed": t.suppressed, "unknown_columns": t.unknown_columns})).collect::<Vec<_>>(),
                "fhir": r.fhir.as_ref().map(|f| serde_json::json!({"resources_in": f.resources_in, "resources_out": f.resources_out})),
                "rejected": r.rejected_count, "suppressed": r.suppressed_count,
                "risk": r.risk, "generalization": r.generalization,
            }))?
        );
        return Ok(());
    }
    println!(
        "de-identified {} ({}) → {}",
        r.input,
        r.kind,
        o.output.display()
    );
    println!(
        "  policy {} (sha256 {}…), key id {}, {} pseudonyms; {}",
        r.policy_name,
        &r.policy_sha256[..12.min(r.policy_sha256.len())],
        r.key_id,
        r.pseudonym_mode,
        r.text_engine
    );
    for t in &r.tables {
        println!(
            "  {:<22} {:>9} rows in {:>9} out {:>6} rejected {:>6} suppressed{}",
            t.name,
            t.rows_in,
            t.rows_out,
            t.rejected,
            t.suppressed,
            if t.unknown_columns.is_empty() {
                String::new()
            } else {
                format!(
                    "  (dropped, not in policy: {})",
                    t.unknown_columns.join(", ")
                )
            }
        );
    }
    if let Some(f) = &r.fhir {
        println!(
            "  FHIR: {} resources in, {} out, {} references rewritten",
            f.resources_in, f.resources_out, f.references_rewritten
        );
    }
    for c in &r.risk {
        print_risk_pair(&c.table, &c.before, &c.after);
    }
    if let Some(g) = &r.generalization {
        println!("  generalised to k={}: {} records suppressed ({:.2}%), precision loss {:.3}; levels {}", g.target_k, g.suppressed_records, g.suppression_share * 100.0, g.precision_loss, g.levels.iter().map(|(q, l, _)| format!("{q}={l}")).collect::<Vec<_>>().join(", "));
    }
    if r.rejected_count > 0 {
        println!(
            "  {} records rejected: see {}",
            r.rejected_count,
            o.output.join("deid-report.html").display()
        );
    }
    println!(
        "  manifest {}; register with `mdc dataset register --name NAME --path {}`",
        o.output.join("manifest.json").display(),
        o.output.display()
    );
    Ok(())
}

pub fn print_risk_pair(table: &str, b: &RiskSummary, a: &RiskSummary) {
    println!(
        "  risk on {table} ({}): k {} → {}, records at risk (<{}) {} → {}, prosecutor max {:.3} → {:.3}, avg {:.3} → {:.3}",
        a.qi.join(","), b.k, a.k, a.threshold, b.records_at_risk, a.records_at_risk, b.prosecutor_max, a.prosecutor_max, b.prosecutor_avg, a.prosecutor_avg
    );
}

fn inputs(
    input: PathBuf,
    output: PathBuf,
    p: &PolicyArgs,
    default_profile: &str,
) -> anyhow::Result<RunInputs> {
    Ok(RunInputs {
        input,
        output,
        policy: load_policy(p, default_profile)?,
        reference_year: p.reference_year.unwrap_or_else(current_year),
        qi: vec![],
        sensitive: None,
        k: None,
        max_suppression: 0.05,
        threshold: p.threshold,
    })
}

pub async fn run_omop_cmd(g: &Global, a: OmopArgs) -> anyhow::Result<u8> {
    let i = inputs(a.input, a.output, &a.policy, "omop-cdm")?;
    deid(g, Kind::Omop, i).await
}

pub async fn run_fhir_cmd(g: &Global, a: FhirArgs) -> anyhow::Result<u8> {
    let i = inputs(a.input, a.output, &a.policy, "fhir-r4")?;
    deid(g, Kind::Fhir, i).await
}

pub async fn run_table_cmd(g: &Global, a: TableArgs) -> anyhow::Result<u8> {
    if a.policy.policy.is_none() && a.policy.profile.is_none() {
        anyhow::bail!("mdc deid table needs --policy FILE or --profile NAME");
    }
    let mut i = inputs(a.input, a.output, &a.policy, "kr-health")?;
    i.qi = a.qi.into_iter().filter(|q| !q.trim().is_empty()).collect();
    i.sensitive = a.sensitive;
    i.k = a.k;
    i.max_suppression = a.max_suppression;
    deid(g, Kind::Table, i).await
}

pub fn run_policy_cmd(g: &Global, a: &PolicyCheckArgs) -> anyhow::Result<u8> {
    if let Some(name) = &a.show {
        let text = mdc_deid::structured::policy::profile_text(name).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown profile \"{name}\" (built-in: omop-cdm, fhir-r4, kr-health, safe-harbor)"
            )
        })?;
        print!("{text}");
        return Ok(0);
    }
    let Some(file) = &a.check else {
        anyhow::bail!("give --check FILE or --show PROFILE");
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let p = Policy::parse(&text, &file.display().to_string())?;
    crate::output::emit(
        g.json,
        &serde_json::json!({"name": p.name, "sha256": p.sha256, "column_rules": p.columns.len(), "fhir_rules": p.fhir.len()}),
        |_| {
            println!(
                "policy {} is valid: {} column rules, {} FHIR rules, sha256 {}",
                p.name,
                p.columns.len(),
                p.fhir.len(),
                p.sha256
            );
        },
    )?;
    Ok(0)
}

pub fn run_risk_cmd(g: &Global, a: RiskCmdArgs) -> anyhow::Result<u8> {
    let s = risk_file(&RiskArgs {
        input: a.input,
        qi: a.qi,
        sensitive: a.sensitive.map(|s| s.to_ascii_lowercase()),
        threshold: a.threshold,
        population: a.population,
    })?;
    crate::output::emit(g.json, &s, |s| {
        println!(
            "records {}, equivalence classes {}, k = {}",
            s.records, s.classes, s.k
        );
        println!(
            "records at risk (class < {}): {} in {} classes",
            s.threshold, s.records_at_risk, s.classes_at_risk
        );
        println!(
            "prosecutor risk: highest {:.4}, average {:.4}",
            s.prosecutor_max, s.prosecutor_avg
        );
        println!(
            "journalist risk: highest {:.4}; marketer risk {:.4} ({})",
            s.journalist_max, s.marketer, s.population
        );
        if let Some(l) = &s.l_diversity {
            println!(
                "l-diversity of {}: l = {} ({} classes, {} records with a single value)",
                l.column, l.l, l.classes_below_2, l.records_below_2
            );
        }
        println!(
            "class sizes: {}",
            s.class_sizes
                .iter()
                .map(|(b, c)| format!("{b}: {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    })?;
    Ok(0)
}

pub fn run_synth_cmd(g: &Global, c: SynthCmd) -> anyhow::Result<u8> {
    let SynthCmd::Omop(a) = c;
    let cfg = SynthConfig {
        persons: a.persons,
        seed: a.seed,
        visits_per_person: a.visits_per_person,
        measurements_per_visit: a.measurements_per_visit,
        collect_planted: false,
    };
    let started = std::time::Instant::now();
    let (_, rows) = write_synth(&cfg, &a.out, matches!(a.format, SynthFormat::Parquet))?;
    crate::output::emit(g.json, &rows, |rows| {
        println!(
            "wrote a synthetic OMOP CDM v5.4 extract ({} persons, seed {}) to {} in {:.2} s",
            a.persons,
            a.seed,
            a.out.display(),
            started.elapsed().as_secs_f64()
        );
        for (t, n) in rows {
            println!("  {t:<22} {n:>10} rows");
        }
    })?;
    Ok(0)
}

/// The demo step: synthesise, de-identify with kr-health, show risk, register.
pub async fn demo_step(
    store: &Store,
    actor: &mdc_store::Actor,
    work: &std::path::Path,
) -> anyhow::Result<()> {
    let raw = work.join("omop-raw");
    let out = work.join("omop-deid");
    let cfg = SynthConfig {
        persons: 300,
        seed: 7,
        visits_per_person: 3,
        measurements_per_visit: 3,
        collect_planted: false,
    };
    write_synth(&cfg, &raw, false)?;
    let allowed = store.authorize_deid(actor).await?;
    let inputs = RunInputs {
        input: raw,
        output: out.clone(),
        policy: Policy::profile("kr-health")?,
        reference_year: current_year(),
        qi: vec![],
        sensitive: None,
        k: None,
        max_suppression: 0.05,
        threshold: 5,
    };
    let outcome = run_blocking(store, Kind::Omop, inputs).await?;
    let r: &Report = &outcome.report;
    store
        .record_deid_run(
            actor,
            allowed,
            "omop",
            &[
                ("tables", DeidParam::Count(r.tables.len() as u64)),
                ("rejected", DeidParam::Count(r.rejected_count)),
                ("policy_sha256", DeidParam::Digest(r.policy_sha256.clone())),
            ],
        )
        .await?;
    let rows: u64 = r.tables.iter().map(|t| t.rows_out).sum();
    println!("  synthesised 300 Korean patients (names, RRNs, phones in notes), de-identified {} OMOP tables ({rows} rows) with profile kr-health, text engine: {}", r.tables.len(), if r.text_engine.starts_with("mdc") { "on" } else { "off" });
    for c in &r.risk {
        print_risk_pair(&c.table, &c.before, &c.after);
    }
    let v = store
        .dataset_register(
            actor,
            &mdc_store::RegisterRequest {
                name: "omop-demo".into(),
                path: out,
                use_codes: Some("GRU".into()),
                opt_in_only: false,
                no_manifest_reason: None,
            },
        )
        .await?;
    println!(
        "  registered omop-demo@{} from its manifest (key id {})",
        v.version, r.key_id
    );
    demo_k_anonymity(store, actor, work).await
}

/// The demo's second half: a claims table generalised until every class of
/// its quasi-identifiers holds at least 5 people (`mdc deid table --k 5`).
async fn demo_k_anonymity(
    store: &Store,
    actor: &mdc_store::Actor,
    work: &std::path::Path,
) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let mut csv = String::from("patient_id,age,sex,address,diagnosis,visit_date\n");
    let regions = [
        "서울특별시 강남구 테헤란로",
        "부산광역시 해운대구 해운대로",
        "경기도 성남시 분당구 판교역로",
        "제주특별자치도 제주시 연북로",
    ];
    for i in 0..400u32 {
        let _ = writeln!(
            csv,
            "{:08},{},{},{} {},{},2024-0{}-1{}",
            20_000 + i,
            20 + (i * 7) % 75,
            if i % 2 == 0 { "F" } else { "M" },
            regions[i as usize % 4],
            1 + i % 300,
            ["I10", "E11.9", "J18.9"][i as usize % 3],
            1 + i % 9,
            i % 10
        );
    }
    let input = work.join("claims.csv");
    std::fs::write(&input, csv)?;
    let policy = Policy::parse(
        "name = \"claims-demo\"\nextends = \"kr-health\"\n[options]\npatient_column = \"patient_id\"\n[columns]\nage = \"keep\"\naddress = \"generalize(sigungu)\"\nvisit_date = \"shift_date\"\n",
        "claims-demo.toml",
    )?;
    let allowed = store.authorize_deid(actor).await?;
    let inputs = RunInputs {
        input,
        output: work.join("claims-deid"),
        policy,
        reference_year: current_year(),
        qi: vec!["age".into(), "sex".into(), "address".into()],
        sensitive: Some("diagnosis".into()),
        k: Some(5),
        max_suppression: 0.05,
        threshold: 5,
    };
    let r = run_blocking(store, Kind::Table, inputs).await?.report;
    store
        .record_deid_run(
            actor,
            allowed,
            "table",
            &[
                ("rejected", DeidParam::Count(r.rejected_count)),
                ("policy_sha256", DeidParam::Digest(r.policy_sha256.clone())),
            ],
        )
        .await?;
    println!("  a 400-row claims table, generalised toward k = 5 on (age, sex, address):");
    for c in &r.risk {
        print_risk_pair(&c.table, &c.before, &c.after);
    }
    if let Some(g) = &r.generalization {
        let levels: Vec<String> = g
            .levels
            .iter()
            .map(|(q, l, _)| format!("{q} level {l}"))
            .collect();
        println!(
            "  generalised {}, {} record(s) suppressed, precision loss {:.2}",
            levels.join(", "),
            g.suppressed_records,
            g.precision_loss
        );
    }
    Ok(())
}
