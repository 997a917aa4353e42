//! `mdc query` and `mdc output …` (issue 6): governed SQL and the release
//! workflow, on the local data root or against a server (`--server URL`).
//! Both paths call the same library operations; this file only parses and prints.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use mdc_query::{Limits, QueryOutcome};
use mdc_store::{Decision, OutputInfo, Store};
use serde_json::{json, Value};

use crate::cli::Global;

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The project whose granted datasets the SQL sees.
    #[arg(long)]
    pub project: String,
    /// The SQL text (one SELECT).
    #[arg(long, conflicts_with = "file")]
    pub sql: Option<String>,
    /// Read the SQL from this file.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Print the checked result as CSV.
    #[arg(long)]
    pub csv: bool,
    /// Run against this server instead of the local data root.
    #[arg(long, env = "MDC_SERVER")]
    pub server: Option<String>,
    /// Most result rows before disclosure control.
    #[arg(long, default_value_t = 10_000)]
    pub max_rows: usize,
    /// Stop the query after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    #[command(subcommand)]
    pub cmd: OutputCmd,
    /// Run against this server instead of the local data root.
    #[arg(long, global = true, env = "MDC_SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DecisionArg {
    Approve,
    Changes,
}

#[derive(Debug, Subcommand)]
pub enum OutputCmd {
    /// Outputs of a project (or, for reviewers, of every project).
    List {
        #[arg(long)]
        project: Option<String>,
        /// pending, submitted, changes_requested, released, rejected
        #[arg(long)]
        status: Option<String>,
    },
    /// One output with its checks and checked content.
    Show { id: i64 },
    /// Submit an output for release review (its author), saying what it is.
    Submit {
        id: i64,
        /// What the table is and the counts behind it.
        #[arg(long)]
        context: String,
    },
    /// Review a submitted output (a reviewer who is not the author).
    Review {
        id: i64,
        #[arg(long, value_enum)]
        decision: DecisionArg,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Release an approved output: writes outputs/released/<sha256>.
    Release { id: i64 },
    /// Reject an output.
    Reject {
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Bind disclosure-control rules to a project (steward).
    Policy {
        #[arg(long)]
        project: String,
        /// kr-public, opensafely or acro
        #[arg(long, default_value = "kr-public")]
        preset: String,
        /// Override the threshold (cells below it are masked).
        #[arg(long)]
        min_count: Option<u64>,
        /// Override rounding (e.g. 5).
        #[arg(long)]
        rounding: Option<u64>,
        /// Comma-separated quasi-identifier columns for record-level results.
        #[arg(long)]
        quasi_identifiers: Option<String>,
        /// Releases need two independent approving reviews.
        #[arg(long)]
        two_reviews: bool,
    },
}

fn read_sql(a: &QueryArgs) -> anyhow::Result<String> {
    match (&a.sql, &a.file) {
        (Some(s), None) => Ok(s.clone()),
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))
        }
        _ => bail!("invalid arguments: give the SQL with --sql \"…\" or --file q.sql"),
    }
}

/// A small client for `--server`: bearer token, JSON, `{code, message}` errors.
struct Remote {
    base: String,
    token: String,
}

impl Remote {
    fn new(server: &str, g: &Global) -> anyhow::Result<Remote> {
        let token = g
            .token
            .clone()
            .context("--server needs your token (--token or MDC_TOKEN)")?;
        Ok(Remote {
            base: server.trim_end_matches('/').to_owned(),
            token,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let req = ureq::request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token));
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match res {
            Ok(r) => Ok(r.into_json()?),
            Err(ureq::Error::Status(status, r)) => {
                let v: Value = r.into_json().unwrap_or(Value::Null);
                bail!(
                    "server refused ({status} {}): {}",
                    v["code"].as_str().unwrap_or("error"),
                    v["message"].as_str().unwrap_or("no message")
                )
            }
            Err(e) => bail!("cannot reach {}: {e}", self.base),
        }
    }
}

async fn local(g: &Global) -> anyhow::Result<(Store, mdc_store::Actor)> {
    let (store, actor) = crate::commands::open_as(g).await?;
    Ok((store, actor))
}

pub async fn query(g: &Global, a: QueryArgs) -> anyhow::Result<u8> {
    let sql = read_sql(&a)?;
    let value = if let Some(server) = &a.server {
        let r = Remote::new(server, g)?;
        let path = format!("/v1/projects/{}/queries", a.project);
        tokio::task::block_in_place(|| r.call("POST", &path, Some(json!({"sql": sql}))))?
    } else {
        let (store, actor) = local(g).await?;
        let limits = Limits {
            max_rows: a.max_rows,
            timeout: std::time::Duration::from_secs(a.timeout_secs),
            ..Limits::default()
        };
        let r = mdc_query::run(&store, &actor, &a.project, &sql, &limits).await;
        store.close().await;
        serde_json::to_value(r?)?
    };
    if g.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(0);
    }
    let outcome: QueryOutcomeView = serde_json::from_value(value)?;
    if a.csv {
        print!("{}", outcome.csv());
    } else {
        outcome.print_table();
    }
    outcome.print_footer();
    Ok(0)
}

/// The parts of a `QueryOutcome` the CLI prints (from local or remote JSON).
#[derive(Debug, serde::Deserialize)]
struct QueryOutcomeView {
    output: Value,
    shape: String,
    columns: Vec<Value>,
    rows: Vec<Vec<Value>>,
    checks: Value,
    elapsed_ms: u64,
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => "[masked]".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl QueryOutcomeView {
    fn names(&self) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| c["name"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(self.names());
        for r in &self.rows {
            let _ = w.write_record(r.iter().map(cell_text));
        }
        w.into_inner()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn print_table(&self) {
        let names = self.names();
        let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(cell_text).collect())
            .collect();
        for r in &cells {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let line = |vals: &[String]| {
            vals.iter()
                .enumerate()
                .map(|(i, v)| format!("{v:<w$}", w = widths.get(i).copied().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join("  ")
        };
        println!("{}", line(&names));
        println!(
            "{}",
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  ")
        );
        for r in &cells {
            println!("{}", line(r));
        }
    }

    fn print_footer(&self) {
        let masks = self.checks["masks"].as_array().map_or(0, Vec::len);
        eprintln!(
            "({} row(s), {} result, {} ms) output #{} held as {} under policy {}: {} cell(s) masked{}",
            self.rows.len(),
            self.shape,
            self.elapsed_ms,
            self.output["id"],
            self.output["status"].as_str().unwrap_or("?"),
            self.output["policy"].as_str().unwrap_or("?"),
            masks,
            if self.checks["needs_review"].as_bool() == Some(true) {
                "; a reviewer must look at it"
            } else {
                ""
            }
        );
        eprintln!(
            "To take it out of the secure zone: mdc output submit {} --context \"what this table is\"",
            self.output["id"]
        );
    }
}

fn print_output(o: &Value) {
    println!(
        "#{:<4} {:<18} {:<16} {:<10} {:<10} masked {:<3} {}",
        o["id"],
        o["status"].as_str().unwrap_or("?"),
        o["project"].as_str().unwrap_or("?"),
        o["author"].as_str().unwrap_or("?"),
        o["policy"].as_str().unwrap_or("?"),
        o["masked_cells"],
        o["title"].as_str().unwrap_or("")
    );
    if let Some(sha) = o["released_sha256"].as_str() {
        println!(
            "      released {} sha256 {sha}",
            o["released_path"].as_str().unwrap_or("")
        );
    }
}

pub async fn output(g: &Global, a: OutputArgs) -> anyhow::Result<u8> {
    let value = match &a.server {
        Some(server) => {
            let r = Remote::new(server, g)?;
            tokio::task::block_in_place(|| remote_output(&r, &a.cmd))?
        }
        None => {
            let (store, actor) = local(g).await?;
            let r = local_output(&store, &actor, &a.cmd).await;
            store.close().await;
            r?
        }
    };
    if g.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(0);
    }
    match &a.cmd {
        OutputCmd::List { .. } => {
            for o in value.as_array().into_iter().flatten() {
                print_output(o);
            }
        }
        OutputCmd::Show { .. } => {
            let o = &value["output"];
            print_output(o);
            println!(
                "      policy {} v{} (sha256 {}), needs review: {}",
                o["policy"].as_str().unwrap_or("?"),
                o["policy_version"],
                o["policy_sha256"].as_str().unwrap_or("?"),
                o["needs_review"]
            );
            if let Some(ctx) = o["context"].as_str() {
                println!("      context: {ctx}");
            }
            for r in o["reviews"].as_array().into_iter().flatten() {
                println!(
                    "      review round {}: {} {} {}",
                    r["round"],
                    r["reviewer"].as_str().unwrap_or("?"),
                    r["decision"].as_str().unwrap_or("?"),
                    r["comment"].as_str().unwrap_or("")
                );
            }
            for why in o["checks"]["review_reasons"]
                .as_array()
                .into_iter()
                .flatten()
            {
                println!("      check: {}", why.as_str().unwrap_or(""));
            }
            println!("{}", value["content"].as_str().unwrap_or(""));
        }
        OutputCmd::Policy { .. } => {
            println!(
                "project {}: policy {} (min_count {}), two reviews: {}",
                value["project"].as_str().unwrap_or("?"),
                value["policy"]["name"].as_str().unwrap_or("?"),
                value["policy"]["min_count"],
                value["two_reviews"]
            );
        }
        _ => print_output(&value),
    }
    Ok(0)
}

fn policy_overrides(min_count: Option<u64>, rounding: Option<u64>, qis: Option<&String>) -> Value {
    let mut o = serde_json::Map::new();
    if let Some(m) = min_count {
        o.insert("min_count".into(), m.into());
    }
    if let Some(r) = rounding {
        o.insert("rounding".into(), r.into());
    }
    if let Some(q) = qis {
        let list: Vec<Value> = q
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::from(s.to_owned()))
            .collect();
        o.insert("quasi_identifiers".into(), list.into());
    }
    Value::Object(o)
}

async fn local_output(
    store: &Store,
    actor: &mdc_store::Actor,
    cmd: &OutputCmd,
) -> anyhow::Result<Value> {
    let info = |o: OutputInfo| serde_json::to_value(o);
    Ok(match cmd {
        OutputCmd::List { project, status } => serde_json::to_value(
            store
                .output_list(actor, project.as_deref(), status.as_deref())
                .await?,
        )?,
        OutputCmd::Show { id } => {
            let (o, content) = store.output_show(actor, *id).await?;
            json!({"output": o, "content": String::from_utf8_lossy(&content)})
        }
        OutputCmd::Submit { id, context } => {
            info(mdc_query::submit(store, actor, *id, context, &Limits::default()).await?)?
        }
        OutputCmd::Review {
            id,
            decision,
            comment,
        } => {
            let d = match decision {
                DecisionArg::Approve => Decision::Approve,
                DecisionArg::Changes => Decision::Changes,
            };
            info(
                store
                    .output_review(actor, *id, d, comment.as_deref())
                    .await?,
            )?
        }
        OutputCmd::Release { id } => info(store.output_release(actor, *id).await?)?,
        OutputCmd::Reject { id, reason } => info(store.output_reject(actor, *id, reason).await?)?,
        OutputCmd::Policy {
            project,
            preset,
            min_count,
            rounding,
            quasi_identifiers,
            two_reviews,
        } => {
            let o = policy_overrides(*min_count, *rounding, quasi_identifiers.as_ref());
            serde_json::to_value(
                mdc_query::set_disclosure(store, actor, project, preset, &o, *two_reviews).await?,
            )?
        }
    })
}

fn remote_output(r: &Remote, cmd: &OutputCmd) -> anyhow::Result<Value> {
    match cmd {
        OutputCmd::List { project, status } => {
            let q = status
                .as_ref()
                .map(|s| format!("?status={s}"))
                .unwrap_or_default();
            match project {
                Some(p) => r.call("GET", &format!("/v1/projects/{p}/outputs{q}"), None),
                None => r.call("GET", &format!("/v1/outputs{q}"), None),
            }
        }
        OutputCmd::Show { id } => r.call("GET", &format!("/v1/outputs/{id}"), None),
        OutputCmd::Submit { id, context } => r.call(
            "POST",
            &format!("/v1/outputs/{id}/submit"),
            Some(json!({"context": context})),
        ),
        OutputCmd::Review {
            id,
            decision,
            comment,
        } => {
            let d = match decision {
                DecisionArg::Approve => "approve",
                DecisionArg::Changes => "changes",
            };
            r.call(
                "POST",
                &format!("/v1/outputs/{id}/reviews"),
                Some(json!({"decision": d, "comment": comment})),
            )
        }
        OutputCmd::Release { id } => r.call("POST", &format!("/v1/outputs/{id}/release"), None),
        OutputCmd::Reject { id, reason } => r.call(
            "POST",
            &format!("/v1/outputs/{id}/reject"),
            Some(json!({"reason": reason})),
        ),
        OutputCmd::Policy {
            project,
            preset,
            min_count,
            rounding,
            quasi_identifiers,
            two_reviews,
        } => r.call(
            "PUT",
            &format!("/v1/projects/{project}/disclosure"),
            Some(json!({
                "preset": preset,
                "overrides": policy_overrides(*min_count, *rounding, quasi_identifiers.as_ref()),
                "two_reviews": two_reviews,
            })),
        ),
    }
}

/// `mdc demo` step: a researcher runs an aggregate query, sees a masked small
/// cell, submits; a reviewer releases; the released file's SHA-256 is printed.
pub async fn demo_step(
    store: &Store,
    researcher: &mdc_store::Actor,
    reviewer: &mdc_store::Actor,
    project: &str,
) -> anyhow::Result<()> {
    let sql = "SELECT region, COUNT(DISTINCT person_id) AS patients FROM sepsis_cohort \
               WHERE year_of_birth < 1950 GROUP BY region ORDER BY region";
    let out: QueryOutcome =
        mdc_query::run(store, researcher, project, sql, &Limits::default()).await?;
    let shown: Vec<String> = out
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| {
                    v.as_ref()
                        .map_or("[masked]".to_owned(), mdc_query::disclosure::Value::to_text)
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    println!(
        "  {} ran: patients born before 1950 by region → {} rows, {} cell(s) masked under {}: {}",
        researcher.name,
        out.rows.len(),
        out.masked.len(),
        out.output.policy,
        shown.join("; ")
    );
    let id = out.output.id;
    mdc_query::submit(store, researcher, id, "Patients born before 1950 by region in the pseudonymised sepsis cohort; cells below 5 masked by kr-public.", &Limits::default())
        .await?;
    match store
        .output_review(researcher, id, Decision::Approve, None)
        .await
    {
        Err(mdc_store::StoreError::Denied(d)) => println!(
            "  DENIED  {} → review of their own output: {}",
            researcher.name, d.reason
        ),
        _ => bail!("demo expected the author to be refused as reviewer"),
    }
    store
        .output_review(
            reviewer,
            id,
            Decision::Approve,
            Some("cells < 5 masked with complements; fine to release"),
        )
        .await?;
    let released = store.output_release(reviewer, id).await?;
    println!(
        "  {} approved and released output #{id}: {} sha256 {}",
        reviewer.name,
        released.released_path.as_deref().unwrap_or("?"),
        released.released_sha256.as_deref().unwrap_or("?")
    );
    differencing_demo(store, researcher, reviewer, project).await
}

/// Differencing control: a released total, then "the total minus one
/// patient", whose difference would single that patient out.
async fn differencing_demo(
    store: &Store,
    researcher: &mdc_store::Actor,
    reviewer: &mdc_store::Actor,
    project: &str,
) -> anyhow::Result<()> {
    let limits = Limits::default();
    let all = "SELECT COUNT(DISTINCT person_id) AS patients FROM sepsis_cohort";
    let total = mdc_query::run(store, researcher, project, all, &limits).await?;
    let id = total.output.id;
    mdc_query::submit(
        store,
        researcher,
        id,
        "All patients of the cohort.",
        &limits,
    )
    .await?;
    store
        .output_review(reviewer, id, Decision::Approve, Some("a single total"))
        .await?;
    store.output_release(reviewer, id).await?;
    let shown = |o: &QueryOutcome| {
        o.rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .map_or("[masked]".to_owned(), |v| v.to_text())
    };
    println!(
        "  {} released output #{id}: all patients = {}",
        reviewer.name,
        shown(&total)
    );
    let purpose = store.project_show(researcher, project).await?.purpose;
    let out = store
        .patient_exclusion("sepsis-cohort", 1, &purpose, mdc_store::today())
        .await?
        .out_int
        .len();
    let kept = std::fs::read_dir(store.root().cache_dir().join("consent"))
        .map(Iterator::count)
        .unwrap_or(0);
    println!(
        "  consent: the {out} opted-out patient(s) are in none of these counts; the Parquet reader skipped their rows ({kept} row selection(s) kept under cache/consent/)"
    );
    let but_one = "SELECT COUNT(DISTINCT person_id) AS patients FROM sepsis_cohort \
                   WHERE person_id <> (SELECT MIN(person_id) FROM sepsis_cohort)";
    let out = mdc_query::run(store, researcher, project, but_one, &limits).await?;
    let why = out.checks["masks"]
        .get(0)
        .and_then(|m| m["reason"].as_str())
        .unwrap_or("none");
    let d = &out.checks["differencing"][0];
    println!(
        "  {} ran 'all patients but one': {} (mask reason: {why}; differs from output #{} by {} patient(s))",
        researcher.name,
        shown(&out),
        d["earlier_output"],
        d["patients_differing"]
    );
    Ok(())
}
