//! Command-line grammar: `mdc <noun> <verb>` with global `--root`, `--json`, `--token`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "mdc",
    version,
    about = "Sovereign medical AI data center: de-identify, govern, audit"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Data root (default ./mdc-data).
    #[arg(long, global = true, env = "MDC_ROOT", default_value = "mdc-data")]
    pub root: PathBuf,
    /// Machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Act as the user of this token instead of the local operator.
    #[arg(long, global = true, env = "MDC_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new data root (keys, catalog, first admin).
    Init(InitArgs),
    /// Users and roles.
    #[command(subcommand)]
    User(UserCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// The dataset catalog.
    #[command(subcommand)]
    Dataset(DatasetCmd),
    /// Projects, IRB approvals and members.
    #[command(subcommand)]
    Project(ProjectCmd),
    /// Grants of dataset versions to projects.
    #[command(subcommand)]
    Grant(GrantCmd),
    /// Check (and record) an access to data inside a project.
    #[command(subcommand)]
    Access(AccessCmd),
    /// The consent registry.
    #[command(subcommand)]
    Consent(ConsentCmd),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Key backup and restore.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Run the end-to-end demonstration on a temporary data root.
    Demo(DemoArgs),
    /// Accelerator testbed: LoadGen-style benchmarks and clinical accuracy parity.
    #[command(subcommand)]
    Bench(crate::cmd_bench::BenchCmd),
    /// Validate an ONNX model on a cohort: metrics, calibration, subgroups, report.
    Validate(crate::cmd_validate::ValidateArgs),
    /// Governed SQL over a project's granted datasets; results held as outputs.
    Query(crate::cmd_query::QueryArgs),
    /// Outputs and their release workflow (submit, review, release, reject).
    Output(crate::cmd_query::OutputArgs),
    /// De-identify hospital exports into a folder that registers as a dataset.
    #[command(subcommand)]
    Deid(DeidCmd),
    /// Re-identification risk of a table: k, records at risk, prosecutor/journalist/marketer, l-diversity.
    Risk(crate::cmd_structured::RiskCmdArgs),
    /// Synthetic data for tests, the demo and benchmarks.
    #[command(subcommand)]
    Synth(crate::cmd_structured::SynthCmd),
}

/// `mdc deid …`: one variant per input kind (DICOM, tables, notes).
#[derive(Debug, Subcommand)]
pub enum DeidCmd {
    /// DICOM to the PS3.15 Basic Profile; pixel data streamed through untouched.
    Dicom(crate::cmd_deid_dicom::DeidDicomArgs),
    /// Free-text clinical notes (Korean and English): JSONL in, JSONL out; stdin → stdout.
    Text(crate::cmd_deid_text::TextArgs),
    /// Evaluate the text detector on a generated labelled corpus (recall, precision per type).
    TextEval(crate::cmd_deid_text::TextEvalArgs),
    /// Write a generated labelled corpus of notes (JSONL with gold spans) for benchmarks.
    TextCorpus(crate::cmd_deid_text::TextCorpusArgs),
    /// OMOP CDM v5.4 tables (CSV or Parquet) → Parquet + manifest, by policy.
    Omop(crate::cmd_structured::OmopArgs),
    /// FHIR R4 NDJSON, Bundles or a folder → NDJSON + flattened Parquet, by policy.
    Fhir(crate::cmd_structured::FhirArgs),
    /// Any CSV or Parquet table, column by column, by policy (optionally to a target k).
    Table(crate::cmd_structured::TableArgs),
    /// Check a policy file, or print a built-in profile.
    Policy(crate::cmd_structured::PolicyCheckArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PseudonymArg {
    Keyed,
    Vault,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Pseudonym mode for this root, fixed for its lifetime (DESIGN §4).
    #[arg(long, value_enum, default_value = "keyed")]
    pub pseudonyms: PseudonymArg,
    /// Date shifts fall within ±DAYS (never 0).
    #[arg(long, default_value_t = 180)]
    pub date_shift_range: u32,
    /// Catalog database URL (default: sqlite:catalog.db inside the root).
    #[arg(long)]
    pub database: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a user with one or more roles.
    Add {
        name: String,
        /// Comma-separated: admin, steward, researcher, reviewer, auditor.
        #[arg(long)]
        roles: String,
        #[arg(long)]
        display_name: Option<String>,
    },
    List,
    Disable {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Issue a token (shown once).
    Issue {
        #[arg(long)]
        user: String,
        #[arg(long)]
        label: Option<String>,
        #[arg(long)]
        expires_days: Option<u32>,
    },
    Revoke {
        id: String,
    },
    List {
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DatasetCmd {
    /// Register a de-identified folder as a new immutable version.
    Register {
        #[arg(long)]
        name: String,
        #[arg(long)]
        path: PathBuf,
        /// DUO use conditions, e.g. GRU,NCU,GS-KR.
        #[arg(long = "use", default_value = "GRU")]
        use_codes: String,
        /// Patients are included only with an explicit opt-in.
        #[arg(long)]
        opt_in_only: bool,
        /// Register a folder that has no manifest.json (audited; needs --reason).
        #[arg(long, requires = "reason")]
        no_manifest: bool,
        #[arg(long, requires = "no_manifest")]
        reason: Option<String>,
    },
    List,
    Show {
        name: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum YesNo {
    Yes,
    No,
}

#[derive(Debug, Subcommand)]
pub enum ProjectCmd {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        title: String,
        /// DUO purpose: GRU, HMB, DS-<disease>, POA or NMDS.
        #[arg(long)]
        purpose: String,
        #[arg(long, value_enum)]
        commercial: YesNo,
        #[arg(long)]
        institution: String,
        /// ISO 3166 alpha-2 country of the institution.
        #[arg(long)]
        country: String,
        /// The principal investigator (an existing user).
        #[arg(long)]
        pi: String,
    },
    /// Record an IRB approval (the latest one recorded is in force).
    Irb {
        #[arg(long)]
        project: String,
        #[arg(long)]
        number: String,
        #[arg(long)]
        institution: String,
        /// YYYY-MM-DD
        #[arg(long)]
        approved: String,
        /// YYYY-MM-DD
        #[arg(long)]
        expires: String,
        #[arg(long)]
        scope: String,
    },
    #[command(subcommand)]
    Member(MemberCmd),
    /// Approve a project (steward only; needs an IRB on file).
    Approve {
        #[arg(long)]
        project: String,
    },
    Show {
        name: String,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum MemberCmd {
    Add {
        #[arg(long)]
        project: String,
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "member")]
        role: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LevelArg {
    Aggregate,
    Record,
}

#[derive(Debug, Subcommand)]
pub enum GrantCmd {
    Add {
        #[arg(long)]
        project: String,
        /// NAME or NAME@VERSION (default: the latest version now).
        #[arg(long)]
        dataset: String,
        #[arg(long, value_enum, default_value = "aggregate")]
        level: LevelArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccessCmd {
    Check {
        #[arg(long)]
        project: String,
        /// NAME or NAME@VERSION (default: the granted version).
        #[arg(long)]
        dataset: String,
        #[arg(long, value_enum, default_value = "aggregate")]
        level: LevelArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConsentCmd {
    /// Import a CSV: patient_id|pseudonym, purpose, status, effective.
    Import { file: PathBuf },
    /// Record a patient's withdrawal (opt-out).
    Withdraw {
        /// The hospital record number; pseudonymised at once, never stored.
        #[arg(long)]
        patient_id: String,
        #[arg(long, default_value = "*")]
        purpose: String,
        /// YYYY-MM-DD (default today).
        #[arg(long)]
        effective: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Recompute the hash chain and check checkpoints.
    Verify {
        /// A checkpoint exported earlier, kept off this host.
        #[arg(long)]
        against: Option<PathBuf>,
    },
    Log {
        /// ISO time or date, e.g. 2026-11-01.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        limit: Option<i64>,
    },
    /// Sign the current head; optionally export it for safekeeping.
    Checkpoint {
        #[arg(long)]
        export: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Write an encrypted export of the keys and vault.
    Backup {
        #[arg(long)]
        out: PathBuf,
        /// Read the passphrase from this environment variable instead of stdin.
        #[arg(long, default_value = "MDC_BACKUP_PASSPHRASE")]
        passphrase_env: String,
    },
    /// Restore keys from a backup into a root whose keys/ are missing.
    Restore {
        #[arg(long = "in")]
        input: PathBuf,
        #[arg(long, default_value = "MDC_BACKUP_PASSPHRASE")]
        passphrase_env: String,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Also serve the PostgreSQL wire protocol here (token as password).
    #[arg(long)]
    pub pg_addr: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo data root instead of deleting it.
    #[arg(long)]
    pub keep: bool,
}
