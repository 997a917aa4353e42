//! `mdc bench …`: the accelerator testbed of issue 8 (run, parity, sweep,
//! list, show, compare). Parses arguments, builds the system under test from
//! mdc-infer, runs the harness of mdc-bench, stores results through the
//! catalog and prints. Exit codes: 0 when the run happened (an INVALID run
//! included, with `valid: false` and the reason), 1 when it could not run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use mdc_bench::harness::{Scenario, Settings};
use mdc_bench::parity::{evaluate, Gates, ParityReport};
use mdc_bench::result::{BenchResult, RunInfo};
use mdc_bench::sut::{kserve_predict, KserveSut, OrtSut, Rows};
use mdc_bench::system::{describe_host, sha256_file, SystemInfo};
use mdc_bench::Sut;
use mdc_store::{BenchRunInfo, NewBenchRun, Store};
use mdc_table::columns::{self, Values, Want};
use serde::Serialize;

use crate::cli::Global;
use crate::output::emit;

#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Benchmark a model (ONNX Runtime) or an Open Inference Protocol endpoint in one scenario.
    Run(RunArgs),
    /// Clinical accuracy parity of a model (or endpoint, or predictions) against a reference.
    Parity(ParityArgs),
    /// Grid over batch size, threads and backends: the best configuration under a latency bound.
    Sweep(SweepArgs),
    /// Stored benchmark, sweep and parity runs.
    List,
    /// One stored run in full.
    Show { id: String },
    /// Compare stored runs: a table here and an HTML page with plots.
    Compare(CompareArgs),
}

#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The ONNX model to run in-process through ONNX Runtime.
    #[arg(long, conflicts_with = "endpoint")]
    pub model: Option<PathBuf>,
    /// An Open Inference Protocol (KServe v2 REST) server, e.g. http://host:8000.
    #[arg(long, requires = "model_name")]
    pub endpoint: Option<String>,
    /// The model's name on the endpoint.
    #[arg(long)]
    pub model_name: Option<String>,
    /// Execution provider: cpu, cuda, tensorrt, openvino, … or ONNX Runtime's full name.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// libonnxruntime.so (else MDC_ONNXRUNTIME/ORT_DYLIB_PATH, mdc.toml, beside the executable).
    #[arg(long)]
    pub onnxruntime: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: Target,
    /// single-stream, multi-stream, server or offline.
    #[arg(long, default_value = "offline")]
    pub scenario: String,
    /// Server: Poisson arrival rate (queries/s).
    #[arg(long)]
    pub target_qps: Option<f64>,
    /// Server: bound on the 99th-percentile latency, e.g. 50ms.
    #[arg(long)]
    pub latency_bound: Option<String>,
    /// Minimum run time, e.g. 60s, 500ms, 2m.
    #[arg(long, default_value = "60s")]
    pub duration: String,
    /// Minimum number of queries.
    #[arg(long, default_value_t = 1024)]
    pub min_queries: u64,
    /// Samples per query (multi-stream default 8).
    #[arg(long)]
    pub batch: Option<usize>,
    /// ONNX Runtime intra-op threads per session (0: its default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Concurrent sessions / connections.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Warm-up queries per worker, excluded from every figure.
    #[arg(long, default_value_t = 8)]
    pub warmup: u64,
    /// Rows for a tabular model (CSV/Parquet) instead of generated inputs; needs --features.
    #[arg(long, requires = "features")]
    pub dataset: Option<PathBuf>,
    /// Feature columns of --dataset, in the model's order.
    #[arg(long, value_delimiter = ',')]
    pub features: Vec<String>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Do not store the result in the catalog.
    #[arg(long)]
    pub no_store: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ParityArgs {
    /// The model under test (ONNX, run on --backend).
    #[arg(long, conflicts_with_all = ["endpoint", "predictions"])]
    pub model: Option<PathBuf>,
    /// The model under test behind an Open Inference Protocol endpoint.
    #[arg(long, requires = "model_name", conflicts_with = "predictions")]
    pub endpoint: Option<String>,
    #[arg(long)]
    pub model_name: Option<String>,
    /// Predictions of the model under test: a CSV with column `prediction`, rows in cohort order.
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// The reference model (ONNX, run on the CPU).
    #[arg(long, conflicts_with = "reference_backend")]
    pub reference: Option<PathBuf>,
    /// Use --model itself on this backend as the reference (e.g. cpu).
    #[arg(long)]
    pub reference_backend: Option<String>,
    /// Backend of --model.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// The cohort (CSV or Parquet).
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long, value_delimiter = ',', required = true)]
    pub features: Vec<String>,
    #[arg(long)]
    pub label: String,
    /// The locked clinical threshold.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
    /// COL or COL:cut,cut (repeatable), as in `mdc validate`.
    #[arg(long)]
    pub subgroup: Vec<String>,
    /// clinical, mlperf-99 or mlperf-99.9.
    #[arg(long, default_value = "clinical")]
    pub gate: String,
    #[arg(long)]
    pub max_flip_rate: Option<f64>,
    #[arg(long)]
    pub max_sensitivity_drop: Option<f64>,
    #[arg(long)]
    pub max_auroc_difference: Option<f64>,
    #[arg(long)]
    pub output_name: Option<String>,
    #[arg(long)]
    pub positive_index: Option<usize>,
    #[arg(long)]
    pub onnxruntime: Option<PathBuf>,
    #[arg(long)]
    pub no_store: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub target: Target,
    /// Comma-separated batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub batches: Vec<usize>,
    /// Comma-separated intra-op thread counts (0: ONNX Runtime's default).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Further backends to try besides --backend.
    #[arg(long, value_delimiter = ',')]
    pub backends: Vec<String>,
    /// Bound on the p99 per-query latency, e.g. 20ms.
    #[arg(long, default_value = "50ms")]
    pub latency_bound: String,
    #[arg(long, default_value = "2s")]
    pub duration: String,
    #[arg(long, default_value_t = 64)]
    pub min_queries: u64,
    #[arg(long)]
    pub no_store: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Run ids (from `mdc bench list`).
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Where to write the HTML page.
    #[arg(long, default_value = "bench-compare.html")]
    pub html: PathBuf,
}

/// `60s`, `500ms`, `2m`, `1.5s`, `250us`, or seconds as a bare number.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let t = s.trim();
    let (num, unit) = t
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((t, "s"), |i| (&t[..i], &t[i..]));
    let v: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("invalid duration {s:?}: expected e.g. 60s, 500ms, 2m"))?;
    let secs = match unit {
        "s" => v,
        "ms" => v / 1e3,
        "us" | "µs" => v / 1e6,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        _ => bail!("invalid duration {s:?}: unit must be us, ms, s, m or h"),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        bail!("invalid duration {s:?}");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Finds and loads ONNX Runtime (DESIGN §9).
fn runtime(flag: Option<&Path>, root: &Path) -> anyhow::Result<mdc_infer::Runtime> {
    let env = std::env::var_os("MDC_ONNXRUNTIME")
        .or_else(|| std::env::var_os("ORT_DYLIB_PATH"))
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
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
    let lib = mdc_infer::locate(&mdc_infer::Search {
        flag: flag.map(Path::to_owned),
        env,
        config,
        exe: std::env::current_exe().ok(),
    })?;
    Ok(mdc_infer::init(&lib)?)
}

/// Opens the catalog when the data root exists; `None` (with a note) when not.
async fn open_store(g: &Global) -> anyhow::Result<Option<(Store, mdc_store::Actor)>> {
    if !g.root.join("mdc.toml").is_file() {
        eprintln!(
            "note: no data root at {} (run `mdc init`): the result is not stored",
            g.root.display()
        );
        return Ok(None);
    }
    let (store, actor) = crate::commands::open_as(g).await?;
    Ok(Some((store, actor)))
}

fn read_rows(path: &Path, features: &[String]) -> anyhow::Result<Rows> {
    let want: Vec<(String, Want)> = features
        .iter()
        .map(|f| (f.clone(), Want::Numeric))
        .collect();
    let cols = columns::read_columns(path, &want)?;
    let mut numeric = Vec::new();
    for f in features {
        match cols.columns.iter().find(|(n, _)| n == f) {
            Some((_, Values::Numeric(v))) => numeric.push(v.clone()),
            _ => bail!("{}: column {f} is not numeric", path.display()),
        }
    }
    let values = (0..cols.rows)
        .map(|r| numeric.iter().map(|c| c[r]).collect())
        .collect();
    Ok(Rows {
        columns: features.to_vec(),
        values,
    })
}

/// A system under test built from the target arguments, with its description.
struct Built {
    sut: Box<dyn Sut>,
    system: SystemInfo,
    sut_kind: &'static str,
    model: String,
    backend: String,
}

fn build(
    t: &Target,
    root: &Path,
    batch: usize,
    threads: usize,
    workers: usize,
    rows: Option<&Rows>,
    seed: u64,
) -> anyhow::Result<Built> {
    let mut system = describe_host();
    match (&t.model, &t.endpoint) {
        (Some(model), None) => {
            // Usage errors first: an unknown EP name needs no library.
            mdc_infer::ep::provider_name(&t.backend)?;
            if !model.is_file() {
                bail!("no such model file: {}", model.display());
            }
            let rt = runtime(t.onnxruntime.as_deref(), root)?;
            let ep = mdc_infer::ep::resolve(&t.backend)?;
            system.onnxruntime.clone_from(&rt.version);
            system.execution_provider.clone_from(&ep.provider);
            system.model_sha256 =
                sha256_file(model).with_context(|| format!("cannot read {}", model.display()))?;
            let sut = OrtSut::open(model, &ep, threads, workers, batch, rows, seed)?;
            Ok(Built {
                sut: Box::new(sut),
                system,
                sut_kind: "onnxruntime",
                model: model.display().to_string(),
                backend: ep.name.clone(),
            })
        }
        (None, Some(endpoint)) => {
            let name = t.model_name.clone().unwrap_or_default();
            let sut = KserveSut::open(endpoint, &name, workers, batch, rows, seed)?;
            system.onnxruntime = "n/a (external runtime)".into();
            system.execution_provider = format!("Open Inference Protocol at {endpoint}");
            system.model_sha256 = "n/a (served model)".into();
            Ok(Built {
                sut: Box::new(sut),
                system,
                sut_kind: "kserve-v2",
                model: name,
                backend: endpoint.clone(),
            })
        }
        _ => bail!("give --model MODEL.onnx or --endpoint URL --model-name NAME"),
    }
}

fn print_result(r: &BenchResult) {
    println!(
        "{} {} [{}] {}",
        if r.id.is_empty() {
            "(not stored)"
        } else {
            &r.id
        },
        r.scenario,
        if r.valid { "VALID" } else { "INVALID" },
        r.headline()
    );
    if let Some(why) = &r.invalid_reason {
        println!("  invalid: {why}");
    }
    let l = &r.latency_ms;
    println!(
        "  {} queries, {:.1} samples/s over {:.2} s; latency ms p50 {:.3} p90 {:.3} p95 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
        r.queries, r.samples_per_second, r.duration_s, l.p50, l.p90, l.p95, l.p99, l.p999, l.max
    );
    println!(
        "  {} on {} ({} cores, {} GiB), accelerator {}, ONNX Runtime {}, {}",
        r.model,
        r.system.cpu_model,
        r.system.cpu_cores,
        r.system.memory_gib,
        r.system.accelerator,
        r.system.onnxruntime,
        r.system.execution_provider
    );
    match r.energy.inferences_per_joule {
        Some(ipj) => println!(
            "  energy {:.1} J, {:.3e} J/inference, {ipj:.1} inferences/J",
            r.energy.joules.unwrap_or(0.0),
            r.energy.joules_per_inference.unwrap_or(0.0)
        ),
        None => println!(
            "  energy: absent ({})",
            r.energy
                .sensors
                .iter()
                .map(|s| format!("{}: {}", s.name, s.note))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
    println!("  {}", r.energy.capacity);
    for n in &r.notes {
        println!("  note: {n}");
    }
}

async fn store_result(
    g: &Global,
    no_store: bool,
    kind: &str,
    r: &mut BenchResult,
) -> anyhow::Result<()> {
    if no_store {
        return Ok(());
    }
    let Some((store, actor)) = open_store(g).await? else {
        return Ok(());
    };
    let info = store
        .bench_record(
            &actor,
            NewBenchRun {
                kind: kind.into(),
                scenario: Some(r.scenario.clone()),
                model: r.model.clone(),
                model_sha256: Some(r.system.model_sha256.clone()),
                backend: r.backend.clone(),
                valid: r.valid,
                headline: r.headline(),
                result: serde_json::to_value(&*r)?,
            },
        )
        .await;
    store.close().await;
    let info = info?;
    r.id = info.id;
    r.created_at = info.created_at;
    Ok(())
}

/// One benchmark run; shared by `run`, `sweep` and the demo.
pub fn bench_once(root: &Path, a: &RunArgs) -> anyhow::Result<BenchResult> {
    let scenario = Scenario::parse(&a.scenario).with_context(|| {
        format!(
            "unknown --scenario {:?}: single-stream, multi-stream, server or offline",
            a.scenario
        )
    })?;
    let duration = parse_duration(&a.duration)?;
    let bound = a.latency_bound.as_deref().map(parse_duration).transpose()?;
    if scenario == Scenario::Server && (a.target_qps.is_none() || bound.is_none()) {
        bail!("the server scenario needs --target-qps and --latency-bound");
    }
    let batch = a.batch.unwrap_or(if scenario == Scenario::MultiStream {
        8
    } else {
        1
    });
    if batch == 0 || a.workers == 0 {
        bail!("--batch and --workers must be at least 1");
    }
    let rows = match &a.dataset {
        Some(p) => Some(read_rows(p, &a.features)?),
        None => None,
    };
    let built = build(
        &a.target,
        root,
        batch,
        a.threads,
        a.workers,
        rows.as_ref(),
        a.seed,
    )?;
    let settings = Settings {
        scenario,
        duration,
        min_queries: a.min_queries,
        target_qps: a.target_qps,
        latency_bound: bound,
        warmup_queries: a.warmup,
        seed: a.seed,
    };
    let outcome = mdc_bench::run(built.sut.as_ref(), &settings)?;
    Ok(BenchResult::new(
        outcome,
        RunInfo {
            sut: built.sut_kind.into(),
            model: built.model,
            backend: built.backend,
            batch: built.sut.samples_per_query(),
            threads: a.threads,
            workers: built.sut.workers(),
            system: built.system,
        },
    ))
}

/// Predictions of an ONNX model on the CPU through the validation wrapper.
fn onnx_predict(
    path: &Path,
    features: &[String],
    columns: &[Vec<f64>],
    a: &ParityArgs,
) -> anyhow::Result<Vec<f64>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut m = mdc_infer::Model::load(&bytes, 0)?;
    let plan = m.plan(features, a.output_name.as_deref(), a.positive_index)?;
    Ok(m.predict(&plan, columns, 256)?)
}

/// Predictions of an ONNX model on a named execution provider (one
/// `[N, features]` input; output `[N]`, `[N, 1]` or `[N, k]`).
fn ep_predict(
    path: &Path,
    backend: &str,
    columns: &[Vec<f64>],
    positive_index: Option<usize>,
) -> anyhow::Result<Vec<f64>> {
    use mdc_infer::generic::{Data, Feed, ModelSession};
    let ep = mdc_infer::ep::resolve(backend)?;
    let mut s = ModelSession::open(path, &ep, 0)?;
    let spec = match s.inputs() {
        [one] => one.clone(),
        many => bail!(
            "parity on --backend needs one [N, features] input; the model has {}",
            many.len()
        ),
    };
    let d = columns.len();
    let rows = columns.first().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(rows);
    let mut start = 0;
    while start < rows {
        let end = (start + 256).min(rows);
        let n = end - start;
        let mut flat = Vec::with_capacity(n * d);
        for r in start..end {
            flat.extend(columns.iter().map(|c| c[r]));
        }
        let prepared = s.prepare(&[Feed {
            name: spec.name.clone(),
            shape: vec![n, d],
            data: Data::F32(flat.iter().map(|&v| v as f32).collect()),
        }])?;
        let outs = s.run(&prepared, true)?;
        let o = outs
            .iter()
            .find(|o| o.name.to_ascii_lowercase().contains("prob"))
            .or_else(|| outs.first())
            .context("the model returned no tensor output")?;
        let cols = if o.shape.len() == 2 {
            o.shape[1].max(1) as usize
        } else {
            1
        };
        let col = if cols == 1 {
            0
        } else {
            positive_index.unwrap_or(1)
        };
        if col >= cols || o.values.len() < n * cols {
            bail!(
                "output {} has shape {:?}; choose --positive-index",
                o.name,
                o.shape
            );
        }
        out.extend((0..n).map(|r| o.values[r * cols + col]));
        start = end;
    }
    Ok(out)
}

fn read_predictions(path: &Path) -> anyhow::Result<Vec<f64>> {
    let want = [("prediction".to_owned(), Want::Numeric)];
    let cols = columns::read_columns(path, &want)?;
    match cols.columns.first() {
        Some((_, Values::Numeric(v))) => Ok(v.clone()),
        _ => bail!("{}: column prediction is not numeric", path.display()),
    }
}

#[derive(Debug, Serialize)]
struct ParityOut {
    id: String,
    #[serde(flatten)]
    report: ParityReport,
}

pub fn parity_report(root: &Path, a: &ParityArgs) -> anyhow::Result<ParityReport> {
    let mut gates = Gates::preset(&a.gate).with_context(|| {
        format!(
            "unknown --gate {:?}: clinical, mlperf-99 or mlperf-99.9",
            a.gate
        )
    })?;
    if a.max_flip_rate.is_some() {
        gates.max_flip_rate = a.max_flip_rate;
    }
    if a.max_sensitivity_drop.is_some() {
        gates.max_sensitivity_drop_upper = a.max_sensitivity_drop;
    }
    if a.max_auroc_difference.is_some() {
        gates.max_abs_auroc_difference_ci = a.max_auroc_difference;
    }
    if !(0.0..=1.0).contains(&a.threshold) {
        bail!("--threshold must be within [0, 1]");
    }
    let specs = a
        .subgroup
        .iter()
        .map(|s| mdc_validate::SubgroupSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut want: Vec<(String, Want)> = a
        .features
        .iter()
        .map(|f| (f.clone(), Want::Numeric))
        .collect();
    want.push((a.label.clone(), Want::Numeric));
    for s in &specs {
        if !want.iter().any(|(n, _)| *n == s.column) {
            want.push((
                s.column.clone(),
                if s.cuts.is_some() {
                    Want::Numeric
                } else {
                    Want::Text
                },
            ));
        }
    }
    let cols = columns::read_columns(&a.data, &want)?;
    let col = |n: &str| cols.columns.iter().find(|(c, _)| c == n).map(|(_, v)| v);
    let mut features = Vec::new();
    for f in &a.features {
        match col(f) {
            Some(Values::Numeric(v)) => features.push(v.clone()),
            _ => bail!("column {f} is not numeric"),
        }
    }
    let Some(Values::Numeric(label)) = col(&a.label) else {
        bail!("label column {} is not numeric", a.label);
    };
    let y = mdc_validate::labels_from_f64(&a.label, label)?;
    let mut subgroups = Vec::new();
    for s in &specs {
        let values = match col(&s.column) {
            Some(Values::Numeric(v)) => mdc_validate::SubgroupValues::Numeric(v.clone()),
            Some(Values::Text(v)) => mdc_validate::SubgroupValues::Text(v.clone()),
            None => bail!("no subgroup column {}", s.column),
        };
        subgroups.extend(mdc_validate::subgroup::split(s, &values));
    }
    // Library first when any ONNX file is involved.
    let needs_ort = a.model.is_some() || a.reference.is_some();
    if needs_ort {
        runtime(a.onnxruntime.as_deref(), root)?;
    }
    let (model_p, model_desc) = match (&a.model, &a.endpoint, &a.predictions) {
        (Some(m), None, None) => {
            let p = if a.backend == "cpu" || a.backend.eq_ignore_ascii_case("CPUExecutionProvider")
            {
                onnx_predict(m, &a.features, &features, a)?
            } else {
                ep_predict(m, &a.backend, &features, a.positive_index)?
            };
            (p, format!("{} on {}", m.display(), a.backend))
        }
        (None, Some(e), None) => {
            let client = mdc_infer::kserve::Client::new(
                e,
                a.model_name.as_deref().unwrap_or_default(),
                Duration::from_secs(60),
            )?;
            client.ready()?;
            (
                kserve_predict(&client, &features, 256, a.positive_index)?,
                format!("{} at {e}", client.model_name()),
            )
        }
        (None, None, Some(p)) => (read_predictions(p)?, p.display().to_string()),
        _ => bail!("give one of --model, --endpoint (with --model-name) or --predictions"),
    };
    let (ref_p, ref_desc) = match (&a.reference, &a.reference_backend) {
        (Some(r), None) => (
            onnx_predict(r, &a.features, &features, a)?,
            format!("{} on cpu", r.display()),
        ),
        (None, Some(b)) => {
            let Some(m) = &a.model else {
                bail!("--reference-backend runs --model as the reference; give --model, or --reference B.onnx");
            };
            let p = if b == "cpu" {
                onnx_predict(m, &a.features, &features, a)?
            } else {
                ep_predict(m, b, &features, a.positive_index)?
            };
            (p, format!("{} on {b}", m.display()))
        }
        _ => bail!("give --reference B.onnx or --reference-backend cpu"),
    };
    if model_p.len() != y.len() || ref_p.len() != y.len() {
        bail!(
            "shape mismatch: {} model and {} reference predictions for {} cohort rows",
            model_p.len(),
            ref_p.len(),
            y.len()
        );
    }
    if let Some(i) = model_p.iter().chain(&ref_p).position(|v| !v.is_finite()) {
        bail!(
            "a prediction is not a finite number (position {})",
            i % y.len() + 1
        );
    }
    let mut r = evaluate(&model_p, &ref_p, &y, a.threshold, &subgroups, &gates);
    r.model = model_desc;
    r.reference = ref_desc;
    Ok(r)
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

fn print_parity(id: &str, r: &ParityReport) {
    let o = &r.overall;
    println!(
        "{} parity [{}] gate {}: {} vs reference {}",
        if id.is_empty() { "(not stored)" } else { id },
        if r.pass { "PASS" } else { "FAIL" },
        r.gates.preset,
        r.model,
        r.reference
    );
    println!(
        "  {} cases ({} positive), threshold {}: |Δp| max {:.5} mean {:.5}; {} decision flips ({}, 95% CI {}–{})",
        o.n,
        o.positives,
        r.threshold,
        o.max_abs_difference,
        o.mean_abs_difference,
        o.flips,
        pct(o.flip_rate),
        pct(o.flip_rate_ci.0),
        pct(o.flip_rate_ci.1)
    );
    if let Some(s) = &o.sensitivity {
        println!(
            "  sensitivity {} vs {}: Δ {} (95% CI {} to {})",
            pct(s.a),
            pct(s.b),
            pct(s.difference),
            pct(s.ci_low),
            pct(s.ci_high)
        );
    }
    if let Some(s) = &o.specificity {
        println!(
            "  specificity {} vs {}: Δ {} (95% CI {} to {})",
            pct(s.a),
            pct(s.b),
            pct(s.difference),
            pct(s.ci_low),
            pct(s.ci_high)
        );
    }
    if let Some(au) = &o.auroc {
        println!(
            "  AUROC {:.5} vs {:.5}: Δ {:+.5} (DeLong 95% CI {:+.5} to {:+.5})",
            au.auroc_a, au.auroc_b, au.difference, au.ci_low, au.ci_high
        );
    }
    if let (Some(em), Some(er)) = (o.ece_model, o.ece_reference) {
        println!(
            "  calibration: ECE {em:.4} vs {er:.4} (drift {:+.4}); mean prediction drift {:+.5}",
            em - er,
            o.mean_prediction_drift
        );
    }
    for c in &r.checks {
        println!(
            "  gate {}: {} ({})",
            c.gate,
            if c.pass { "pass" } else { "FAIL" },
            c.value
                .map_or_else(|| "undefined".to_owned(), |v| format!("{v:.5}"))
        );
    }
    for s in &r.subgroups {
        let c = &s.comparison;
        println!(
            "  subgroup {}: n {}, flips {} ({}), sensitivity Δ {}{}",
            s.name,
            c.n,
            c.flips,
            pct(c.flip_rate),
            c.sensitivity
                .map_or_else(|| "n/a".to_owned(), |x| pct(x.difference)),
            if s.checks.iter().all(|k| k.pass) {
                ""
            } else {
                " (would fail the gate; informative only)"
            }
        );
    }
}

fn print_list(runs: &[BenchRunInfo]) {
    if runs.is_empty() {
        println!("no benchmark runs stored");
    }
    for r in runs {
        println!(
            "{:<6} {:<7} {:<14} {:<8} {:<10} {}  {}  {}",
            r.id,
            r.kind,
            r.scenario.as_deref().unwrap_or("-"),
            if r.valid { "VALID" } else { "INVALID" },
            r.backend,
            r.created_at,
            r.model,
            r.headline
        );
    }
}

#[derive(Serialize)]
struct SweepOut {
    latency_bound_ms: f64,
    runs: Vec<BenchResult>,
    best: Option<BenchResult>,
}

#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    scenario: &'a str,
    valid: bool,
    backend: &'a str,
    batch: usize,
    threads: usize,
    samples_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    inferences_per_joule: Option<f64>,
}

#[derive(Serialize)]
struct CompareOut<'a> {
    html: String,
    runs: Vec<Row<'a>>,
}

pub async fn run(g: &Global, cmd: BenchCmd) -> anyhow::Result<u8> {
    let json = g.json;
    match cmd {
        BenchCmd::Run(a) => {
            let root = g.root.clone();
            let a2 = a.clone();
            let mut r = tokio::task::spawn_blocking(move || bench_once(&root, &a2))
                .await
                .context("the benchmark thread failed")??;
            store_result(g, a.no_store, "run", &mut r).await?;
            emit(json, &r, print_result)?;
        }
        BenchCmd::Parity(a) => {
            let root = g.root.clone();
            let a2 = a.clone();
            let report = tokio::task::spawn_blocking(move || parity_report(&root, &a2))
                .await
                .context("the parity thread failed")??;
            let mut id = String::new();
            if !a.no_store {
                if let Some((store, actor)) = open_store(g).await? {
                    let sha = a.model.as_deref().and_then(|m| sha256_file(m).ok());
                    let info = store
                        .bench_record(
                            &actor,
                            NewBenchRun {
                                kind: "parity".into(),
                                scenario: None,
                                model: report.model.clone(),
                                model_sha256: sha,
                                backend: a.backend.clone(),
                                valid: report.pass,
                                headline: format!(
                                    "{} {}: {} flips, pass={}",
                                    report.gates.preset,
                                    report.reference,
                                    report.overall.flips,
                                    report.pass
                                ),
                                result: serde_json::to_value(&report)?,
                            },
                        )
                        .await;
                    store.close().await;
                    id = info?.id;
                }
            }
            let out = ParityOut { id, report };
            emit(json, &out, |o| print_parity(&o.id, &o.report))?;
        }
        BenchCmd::Sweep(a) => {
            let bound = parse_duration(&a.latency_bound)?;
            let mut backends = vec![a.target.backend.clone()];
            backends.extend(
                a.backends
                    .iter()
                    .filter(|b| **b != a.target.backend)
                    .cloned(),
            );
            let mut results = Vec::new();
            for backend in &backends {
                for &threads in &a.threads {
                    for &batch in &a.batches {
                        let mut target = a.target.clone();
                        target.backend.clone_from(backend);
                        let ra = RunArgs {
                            target,
                            scenario: "offline".into(),
                            target_qps: None,
                            latency_bound: None,
                            duration: a.duration.clone(),
                            min_queries: a.min_queries,
                            batch: Some(batch),
                            threads,
                            workers: 1,
                            warmup: 4,
                            dataset: None,
                            features: Vec::new(),
                            seed: 42,
                            no_store: a.no_store,
                        };
                        let root = g.root.clone();
                        let mut r = tokio::task::spawn_blocking(move || bench_once(&root, &ra))
                            .await
                            .context("the benchmark thread failed")??;
                        store_result(g, a.no_store, "run", &mut r).await?;
                        if !json {
                            eprintln!(
                                "  {backend} threads {threads} batch {batch}: {:.1} samples/s, p99 {:.3} ms",
                                r.samples_per_second, r.latency_ms.p99
                            );
                        }
                        results.push(r);
                    }
                }
            }
            let bound_ms = bound.as_secs_f64() * 1e3;
            let best = results
                .iter()
                .filter(|r| r.latency_ms.p99 <= bound_ms)
                .max_by(|x, y| x.samples_per_second.total_cmp(&y.samples_per_second))
                .cloned();
            let out = SweepOut {
                latency_bound_ms: bound_ms,
                runs: results,
                best,
            };
            emit(json, &out, |o| {
                println!("backend     threads batch  samples/s    p99 ms  run");
                for r in &o.runs {
                    println!(
                        "{:<11} {:>7} {:>5} {:>10.1} {:>9.3}  {}",
                        r.backend, r.threads, r.batch, r.samples_per_second, r.latency_ms.p99, r.id
                    );
                }
                match &o.best {
                    Some(b) => println!(
                        "best under p99 ≤ {} ms: {} threads {} batch {} → {:.1} samples/s (p99 {:.3} ms)",
                        o.latency_bound_ms, b.backend, b.threads, b.batch, b.samples_per_second, b.latency_ms.p99
                    ),
                    None => println!("no configuration met p99 ≤ {} ms", o.latency_bound_ms),
                }
            })?;
        }
        BenchCmd::List => {
            let Some((store, actor)) = open_store(g).await? else {
                bail!("no data root at {}: run `mdc init` first", g.root.display());
            };
            let runs = store.bench_list(&actor).await;
            store.close().await;
            emit(json, &runs?, |r| print_list(r))?;
        }
        BenchCmd::Show { id } => {
            let Some((store, actor)) = open_store(g).await? else {
                bail!("no data root at {}: run `mdc init` first", g.root.display());
            };
            let run = store.bench_show(&actor, &id).await;
            store.close().await;
            let run = run?;
            emit(json, &run, |r| {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&r.result).unwrap_or_default()
                );
            })?;
        }
        BenchCmd::Compare(a) => {
            let Some((store, actor)) = open_store(g).await? else {
                bail!("no data root at {}: run `mdc init` first", g.root.display());
            };
            let mut runs = Vec::new();
            for id in &a.ids {
                match store.bench_show(&actor, id).await {
                    Ok(info) => {
                        if info.kind != "run" {
                            store.close().await;
                            bail!(
                                "{id} is a {} record; compare takes benchmark runs",
                                info.kind
                            );
                        }
                        let r: BenchResult = serde_json::from_value(
                            info.result.unwrap_or_default(),
                        )
                        .with_context(|| format!("stored run {id} is not a benchmark result"))?;
                        runs.push(r);
                    }
                    Err(e) => {
                        store.close().await;
                        return Err(e.into());
                    }
                }
            }
            store.close().await;
            let page = mdc_bench::html::render(&runs);
            std::fs::write(&a.html, page)
                .with_context(|| format!("cannot write {}", a.html.display()))?;
            let out = CompareOut {
                html: a.html.display().to_string(),
                runs: runs
                    .iter()
                    .map(|r| Row {
                        id: &r.id,
                        scenario: &r.scenario,
                        valid: r.valid,
                        backend: &r.backend,
                        batch: r.batch,
                        threads: r.threads,
                        samples_per_second: r.samples_per_second,
                        p50_ms: r.latency_ms.p50,
                        p99_ms: r.latency_ms.p99,
                        inferences_per_joule: r.energy.inferences_per_joule,
                    })
                    .collect(),
            };
            emit(json, &out, |o| {
                println!("run    scenario       valid    backend    batch threads  samples/s   p50 ms    p99 ms  inf/J");
                for r in &o.runs {
                    println!(
                        "{:<6} {:<14} {:<8} {:<10} {:>5} {:>7} {:>10.1} {:>8.3} {:>9.3}  {}",
                        r.id,
                        r.scenario,
                        if r.valid { "VALID" } else { "INVALID" },
                        r.backend,
                        r.batch,
                        r.threads,
                        r.samples_per_second,
                        r.p50_ms,
                        r.p99_ms,
                        r.inferences_per_joule
                            .map_or_else(|| "absent".to_owned(), |v| format!("{v:.1}"))
                    );
                }
                println!(
                    "HTML with latency histograms, CDFs and throughput vs latency: {}",
                    o.html
                );
            })?;
        }
    }
    Ok(0)
}

// The demo's inputs travel inside the binary, so `mdc demo` works anywhere.
const DEMO_ECG: &[u8] = include_bytes!("../../../benches/bench/models/ecg_cnn1d.onnx");
const DEMO_MLP: &[u8] = include_bytes!("../../../data/validate/models/mlp_torch_layout.onnx");
const DEMO_MLP_INT8: &[u8] = include_bytes!("../../../benches/bench/models/tabular_mlp_int8.onnx");
const DEMO_COHORT: &[u8] = include_bytes!("../../../data/validate/cohort.csv");

/// The demo step: a one-second offline benchmark of the shipped ECG CNN and
/// a parity check of the INT8 sepsis model against its float reference.
pub fn demo(work: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(work)?;
    let files = [
        ("ecg_cnn1d.onnx", DEMO_ECG),
        ("mlp.onnx", DEMO_MLP),
        ("mlp_int8.onnx", DEMO_MLP_INT8),
        ("cohort.csv", DEMO_COHORT),
    ];
    for (name, bytes) in files {
        std::fs::write(work.join(name), bytes)?;
    }
    if let Err(e) = runtime(None, work) {
        println!("  skipped: {e}");
        return Ok(());
    }
    let a = RunArgs {
        target: Target {
            model: Some(work.join("ecg_cnn1d.onnx")),
            endpoint: None,
            model_name: None,
            backend: "cpu".into(),
            onnxruntime: None,
        },
        scenario: "offline".into(),
        target_qps: None,
        latency_bound: None,
        duration: "1s".into(),
        min_queries: 16,
        batch: Some(8),
        threads: 0,
        workers: 1,
        warmup: 2,
        dataset: None,
        features: Vec::new(),
        seed: 42,
        no_store: true,
    };
    let r = bench_once(work, &a)?;
    println!(
        "  ECG 1D CNN [N,1,1000], offline on {} (ONNX Runtime {}): {:.0} samples/s, p99 {:.2} ms per batch of 8, {} queries, {}",
        r.system.execution_provider,
        r.system.onnxruntime,
        r.samples_per_second,
        r.latency_ms.p99,
        r.queries,
        if r.valid { "VALID (short of MLPerf minimums, so marked)" } else { "INVALID" }
    );
    let p = ParityArgs {
        model: Some(work.join("mlp_int8.onnx")),
        endpoint: None,
        model_name: None,
        predictions: None,
        reference: Some(work.join("mlp.onnx")),
        reference_backend: None,
        backend: "cpu".into(),
        data: work.join("cohort.csv"),
        features: [
            "age",
            "sex_male",
            "heart_rate",
            "resp_rate",
            "temperature",
            "lactate",
            "wbc",
            "sbp",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
        label: "sepsis".into(),
        threshold: 0.2,
        subgroup: Vec::new(),
        gate: "clinical".into(),
        max_flip_rate: None,
        max_sensitivity_drop: None,
        max_auroc_difference: None,
        output_name: None,
        positive_index: None,
        onnxruntime: None,
        no_store: true,
    };
    let rep = parity_report(work, &p)?;
    let aggregate = rep
        .overall
        .auroc
        .is_some_and(|x| x.auroc_a >= 0.999 * x.auroc_b);
    println!(
        "  INT8 sepsis MLP vs its float reference, threshold 0.2: {} of {} decisions flip, AUROC {:+.5}",
        rep.overall.flips,
        rep.overall.n,
        rep.overall.auroc.map_or(0.0, |x| x.difference)
    );
    println!(
        "  MLPerf-style 99.9% AUROC rule: {}; clinical gate (sensitivity-drop bound, flips, ΔAUROC CI): {}",
        if aggregate { "PASS" } else { "FAIL" },
        if rep.pass { "PASS" } else { "FAIL" }
    );
    Ok(())
}
