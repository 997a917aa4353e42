//! `mdc deid dicom`: parse the flags, open the root for its key and
//! pseudonymiser, run `mdc_dicom::batch`, print, choose the exit code.
//!
//! Progress goes to stderr as counts only: no file name or value from a file
//! is ever printed (paths can hold patient names). The per-file outcome is in
//! the JSON report, which lives beside the output folder, not inside it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use mdc_dicom::{batch, Config, Deidentifier, Options, Paths, ProfileOption, UidMapper};
use mdc_store::Store;

use crate::cli::Global;
use crate::output::emit;

/// Exit code 2: usage error (DESIGN §9).
const EXIT_USAGE: u8 = 2;
/// Exit code 3: done, some files rejected or quarantined (DESIGN §9).
const EXIT_REJECTS: u8 = 3;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProfileArg {
    /// PS3.15 Basic Application Level Confidentiality Profile.
    Basic,
}

#[derive(Debug, Args)]
pub struct DeidDicomArgs {
    /// A DICOM file or a folder (searched recursively).
    #[arg(long)]
    pub input: PathBuf,
    /// A new (or empty) folder for the de-identified dataset.
    #[arg(long)]
    pub output: PathBuf,
    #[arg(long, value_enum, default_value = "basic")]
    pub profile: ProfileArg,
    /// A profile option, repeatable: retain-longitudinal-modified-dates (the
    /// default), retain-longitudinal-full-dates, clean-descriptors,
    /// retain-device-identity, retain-institution-identity,
    /// retain-patient-characteristics, retain-uids, retain-safe-private.
    #[arg(long = "option", value_name = "OPTION")]
    pub options: Vec<String>,
    /// The Basic Profile alone: dates emptied instead of shifted.
    #[arg(long)]
    pub no_default_options: bool,
    /// JSON report (default: OUTPUT.report.json beside the output folder).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Where quarantined originals go (default: OUTPUT.quarantine/ beside the output).
    #[arg(long)]
    pub quarantine: Option<PathBuf>,
    /// Let a modality known for burned-in text through (steward override after
    /// review), e.g. --allow-modality US. BurnedInAnnotation=YES is always quarantined.
    #[arg(long = "allow-modality", value_name = "MODALITY")]
    pub allow_modalities: Vec<String>,
    /// Worker threads (default: the number of CPUs).
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// Resolves the option flags; `Err` is a usage error message.
pub fn resolve_options(args: &[String], no_default: bool) -> Result<Options, String> {
    let mut opts = Vec::new();
    for a in args {
        match ProfileOption::parse(a) {
            Some(o) => opts.push(o),
            None if a == "clean-structured-content" || a == "clean-graphics" => {
                return Err(format!(
                    "--option {a} is not supported: structured content and graphics are removed under the Basic Profile instead"
                ))
            }
            None => {
                let names: Vec<&str> = ProfileOption::ALL.iter().map(|o| o.name()).collect();
                return Err(format!(
                    "unknown --option {a}; expected one of: {}",
                    names.join(", ")
                ));
            }
        }
    }
    let full = opts.contains(&ProfileOption::RetainLongitudinalFullDates);
    if full && opts.contains(&ProfileOption::RetainLongitudinalModifiedDates) {
        return Err(
            "retain-longitudinal-full-dates and retain-longitudinal-modified-dates exclude each other"
                .into(),
        );
    }
    if !no_default && !full {
        opts.push(ProfileOption::RetainLongitudinalModifiedDates);
    }
    Ok(Options::new(opts))
}

/// The text cleaner for C actions: the free-text PHI engine of mdc-deid.
fn text_cleaner() -> Option<std::sync::Arc<dyn mdc_dicom::TextCleaner>> {
    mdc_dicom::engine_cleaner()
}

pub async fn run(g: &Global, a: DeidDicomArgs) -> anyhow::Result<u8> {
    let options = match resolve_options(&a.options, a.no_default_options) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("error: {msg}");
            return Ok(EXIT_USAGE);
        }
    };
    if a.jobs == Some(0) {
        eprintln!("error: --jobs must be at least 1");
        return Ok(EXIT_USAGE);
    }
    if !a.input.exists() {
        anyhow::bail!("input {} does not exist", a.input.display());
    }
    let (store, actor) = crate::commands::open_as(g).await?;
    // Authorised (and a refusal audited) before any input is read.
    let allowed = store.authorize_deid(&actor).await?;
    let pseudonyms = store.pseudonymizer()?;
    let key = mdc_store::keys::load_pseudonym_key(&store.root().pseudonym_key())
        .context("cannot read the pseudonym key")?;
    let paths = Paths::with_defaults(a.input, a.output, a.report, a.quarantine);
    let config = Config {
        options,
        allow_modalities: a.allow_modalities,
        text_cleaner: text_cleaner(),
    };
    let jobs = a.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let summary = tokio::task::block_in_place(|| {
        let deid = Deidentifier::new(config, pseudonyms.as_ref(), UidMapper::new(key));
        let last = Mutex::new(Instant::now());
        let progress = |done: usize, total: usize| {
            let Ok(mut t) = last.lock() else { return };
            if done == total || t.elapsed() >= Duration::from_millis(250) {
                *t = Instant::now();
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\rdeid dicom: {done}/{total} files");
                if done == total {
                    let _ = writeln!(err);
                }
            }
        };
        batch::run(&deid, pseudonyms.as_ref(), &paths, jobs, &progress)
    })?;
    record(
        &store,
        &actor,
        allowed,
        &summary.counts,
        pseudonyms.key_id(),
    )
    .await?;
    store.close().await;
    let c = &summary.counts;
    emit(g.json, &summary, |s| {
        println!(
            "de-identified {} of {} DICOM files in {:.2} s ({} quarantined, {} rejected)",
            c.done, c.files, s.seconds, c.quarantined, c.rejected
        );
        if s.manifest_written {
            println!(
                "  output      {} (manifest.json, instances.parquet)",
                show(&s.output)
            );
        }
        println!("  report      {}", show(&s.report));
        if c.quarantined > 0 {
            println!("  quarantine  {}", show(&s.quarantine));
        }
    })?;
    Ok(if c.done == 0 {
        eprintln!("error: no file was de-identified; nothing written (see the report for reasons)");
        1
    } else if c.rejected + c.quarantined > 0 {
        EXIT_REJECTS
    } else {
        0
    })
}

/// The run's audit entry (`deid.dicom`): counts and the key id, no paths or
/// values from the files.
async fn record(
    store: &Store,
    actor: &mdc_store::Actor,
    allowed: mdc_store::Allowed,
    c: &batch::Counts,
    key_id: &str,
) -> anyhow::Result<()> {
    use mdc_store::DeidParam;
    store
        .record_deid_run(
            actor,
            allowed,
            "dicom",
            &[
                ("files", DeidParam::Count(c.files as u64)),
                ("done", DeidParam::Count(c.done as u64)),
                ("quarantined", DeidParam::Count(c.quarantined as u64)),
                ("rejected", DeidParam::Count(c.rejected as u64)),
                ("key_id", DeidParam::Digest(key_id.to_owned())),
            ],
        )
        .await?;
    Ok(())
}

fn show(p: &Path) -> String {
    p.display().to_string()
}

/// The demo step: de-identifies a small DICOM study (public test files
/// embedded in the binary) and registers it as an imaging dataset.
pub async fn demo(work: &Path, store: &Store, steward: &mdc_store::Actor) -> anyhow::Result<()> {
    let input = work.join("dicom-in");
    std::fs::create_dir_all(&input)?;
    for (name, bytes) in mdc_dicom::demo::FILES {
        std::fs::write(input.join(name), bytes)?;
    }
    let pseudonyms = store.pseudonymizer()?;
    let key = mdc_store::keys::load_pseudonym_key(&store.root().pseudonym_key())?;
    let config = Config {
        options: resolve_options(&[], false).map_err(anyhow::Error::msg)?,
        allow_modalities: Vec::new(),
        text_cleaner: text_cleaner(),
    };
    let out = work.join("dicom-deid");
    let paths = Paths::with_defaults(input, out.clone(), None, None);
    let allowed = store.authorize_deid(steward).await?;
    let summary = {
        let deid = Deidentifier::new(config, pseudonyms.as_ref(), UidMapper::new(key));
        batch::run(&deid, pseudonyms.as_ref(), &paths, 2, &|_, _| {})?
    };
    record(
        store,
        steward,
        allowed,
        &summary.counts,
        pseudonyms.key_id(),
    )
    .await?;
    let c = &summary.counts;
    println!(
        "  {} files: {} de-identified (names → patient pseudonyms, dates shifted, UIDs remapped, private tags removed), {} quarantined (burned-in annotation)",
        c.files, c.done, c.quarantined
    );
    let v = store
        .dataset_register(
            steward,
            &mdc_store::RegisterRequest {
                name: "imaging-demo".into(),
                path: out,
                use_codes: Some("HMB,NCU".into()),
                opt_in_only: false,
                no_manifest_reason: None,
            },
        )
        .await?;
    println!(
        "  registered imaging dataset {}@{} (kind dicom, manifest + instances.parquet checked)",
        v.dataset, v.version
    );
    Ok(())
}
