//! Dispatch: each arm parses its arguments into library types, calls the
//! `Store`, and prints. No access decision or database access happens here.

use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context};
use mdc_store::audit::{Checkpoint, LogFilter};
use mdc_store::{
    Credential, InitOptions, NewIrb, NewProject, PseudonymMode, RegisterRequest, Store,
};
use mdc_types::{GrantLevel, SourceId};

use crate::cli::{
    AccessCmd, AuditCmd, Cli, Command, ConsentCmd, DatasetCmd, GrantCmd, KeyCmd, LevelArg,
    MemberCmd, ProjectCmd, PseudonymArg, TokenCmd, UserCmd, YesNo,
};
use crate::output::emit;
use crate::{demo, os_user};

/// Exit code 3: done, but some records were rejected (DESIGN §9).
const EXIT_REJECTS: u8 = 3;

fn level(l: LevelArg) -> GrantLevel {
    match l {
        LevelArg::Aggregate => GrantLevel::Aggregate,
        LevelArg::Record => GrantLevel::Record,
    }
}

/// Splits `name@version`.
pub fn dataset_ref(s: &str) -> anyhow::Result<(String, Option<i64>)> {
    match s.split_once('@') {
        None => Ok((s.to_owned(), None)),
        Some((n, v)) => {
            let v: i64 =
                v.parse().ok().filter(|v| *v >= 1).context(
                    "invalid --dataset: the version after '@' must be a positive integer",
                )?;
            Ok((n.to_owned(), Some(v)))
        }
    }
}

fn read_passphrase(env_var: &str) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var(env_var) {
        if !p.is_empty() {
            return Ok(p);
        }
    }
    eprint!("passphrase (input is read from stdin): ");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the passphrase")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    let g = cli.global;
    let json = g.json;
    match cli.command {
        Command::Init(a) => {
            let opts = InitOptions {
                pseudonyms: match a.pseudonyms {
                    PseudonymArg::Keyed => PseudonymMode::Keyed,
                    PseudonymArg::Vault => PseudonymMode::Vault,
                },
                date_shift_range: a.date_shift_range,
                database: a.database,
                os_user: os_user::current(),
            };
            let r = Store::init(&g.root, opts).await?;
            emit(json, &r, |r| {
                println!("initialised data root {}", r.root.display());
                println!(
                    "  pseudonym mode  {} (key id {})",
                    r.pseudonym_mode.as_str(),
                    r.key_id
                );
                println!("  catalog         {}", r.database);
                println!("  local operator  {} (admin, steward)", r.operator);
                println!("  admin token     {}", r.admin_token);
                println!("The token is shown once; only its hash is stored. Back up the keys with `mdc key backup`.");
            })?;
            return Ok(0);
        }
        Command::Demo(a) => return demo::run(a.keep).await,
        Command::Validate(a) => return crate::cmd_validate::run(&g, a).await,
        Command::Query(a) => return crate::cmd_query::query(&g, a).await,
        Command::Output(a) => return crate::cmd_query::output(&g, a).await,
        Command::Bench(c) => return crate::cmd_bench::run(&g, c).await,
        Command::Deid(crate::cli::DeidCmd::Dicom(a)) => {
            return crate::cmd_deid_dicom::run(&g, a).await
        }
        Command::Deid(crate::cli::DeidCmd::Text(a)) => {
            return crate::cmd_deid_text::run_text(&g, a).await
        }
        Command::Deid(crate::cli::DeidCmd::TextEval(a)) => {
            return crate::cmd_deid_text::run_eval(&g, &a)
        }
        Command::Deid(crate::cli::DeidCmd::TextCorpus(a)) => {
            return crate::cmd_deid_text::run_corpus(&g, &a)
        }
        Command::Deid(crate::cli::DeidCmd::Omop(a)) => {
            return crate::cmd_structured::run_omop_cmd(&g, a).await
        }
        Command::Deid(crate::cli::DeidCmd::Fhir(a)) => {
            return crate::cmd_structured::run_fhir_cmd(&g, a).await
        }
        Command::Deid(crate::cli::DeidCmd::Table(a)) => {
            return crate::cmd_structured::run_table_cmd(&g, a).await
        }
        Command::Deid(crate::cli::DeidCmd::Policy(a)) => {
            return crate::cmd_structured::run_policy_cmd(&g, &a)
        }
        Command::Risk(a) => return crate::cmd_structured::run_risk_cmd(&g, a),
        Command::Synth(c) => return crate::cmd_structured::run_synth_cmd(&g, c),
        Command::Serve(a) => {
            let store = std::sync::Arc::new(Store::open(&g.root).await?);
            if let Some(pg) = &a.pg_addr {
                let listener = tokio::net::TcpListener::bind(pg)
                    .await
                    .with_context(|| format!("cannot serve PostgreSQL on {pg}"))?;
                println!(
                    "mdc SQL (PostgreSQL protocol) listening on {}",
                    listener.local_addr()?
                );
                tokio::spawn(mdc_server::pg::serve(store.clone(), listener));
            }
            mdc_server::serve(store, &a.addr)
                .await
                .with_context(|| format!("cannot serve on {}", a.addr))?;
            return Ok(0);
        }
        Command::Key(KeyCmd::Restore {
            input,
            passphrase_env,
        }) => {
            let bytes = std::fs::read(&input)
                .with_context(|| format!("cannot read {}", input.display()))?;
            let pass = read_passphrase(&passphrase_env)?;
            let restored = Store::restore_keys(&g.root, &bytes, &pass)?;
            emit(json, &restored, |r| {
                println!(
                    "restored {} into {}",
                    r.join(", "),
                    g.root.join("keys").display()
                );
            })?;
            return Ok(0);
        }
        _ => {}
    }

    let (store, actor) = crate::commands::open_as(&g).await?;
    let code = dispatch(&store, &actor, cli.command, json).await;
    store.close().await;
    code
}

/// Opens the data root and resolves who is acting: the `--token` holder, else
/// the local operator (the OS user). Every command that touches the catalog
/// starts here.
pub(crate) async fn open_as(g: &crate::cli::Global) -> anyhow::Result<(Store, mdc_store::Actor)> {
    let store = Store::open(&g.root).await?;
    let credential = match &g.token {
        Some(t) => Credential::Token(t.clone()),
        None => Credential::Local(os_user::current()),
    };
    let actor = store.actor(&credential, "cli").await?;
    Ok((store, actor))
}

async fn dispatch(
    store: &Store,
    actor: &mdc_store::Actor,
    command: Command,
    json: bool,
) -> anyhow::Result<u8> {
    match command {
        Command::Init(_)
        | Command::Demo(_)
        | Command::Validate(_)
        | Command::Query(_)
        | Command::Output(_)
        | Command::Bench(_)
        | Command::Deid(_)
        | Command::Risk(_)
        | Command::Synth(_)
        | Command::Serve(_)
        | Command::Key(KeyCmd::Restore { .. }) => return unreachable_command(),
        Command::User(UserCmd::Add {
            name,
            roles,
            display_name,
        }) => {
            let u = store
                .user_add(actor, &name, &roles, display_name.as_deref())
                .await?;
            emit(json, &u, |u| {
                println!("added user {} ({})", u.name, roles_text(&u.roles));
            })?;
        }
        Command::User(UserCmd::List) => {
            let users = store.user_list(actor).await?;
            emit(json, &users, |us| {
                for u in us {
                    println!(
                        "{:<28} {:<36} {}",
                        u.name,
                        roles_text(&u.roles),
                        if u.disabled { "disabled" } else { "active" }
                    );
                }
            })?;
        }
        Command::User(UserCmd::Disable { name }) => {
            let u = store.user_disable(actor, &name).await?;
            emit(json, &u, |u| println!("disabled user {}", u.name))?;
        }
        Command::Token(TokenCmd::Issue {
            user,
            label,
            expires_days,
        }) => {
            let t = store
                .token_issue(actor, &user, label.as_deref(), expires_days)
                .await?;
            emit(json, &t, |t| {
                println!("token {} for {} (shown once):", t.id, t.user);
                println!("{}", t.secret);
            })?;
        }
        Command::Token(TokenCmd::Revoke { id }) => {
            let t = store.token_revoke(actor, &id).await?;
            emit(json, &t, |t| {
                println!("revoked token {} of {}", t.id, t.user);
            })?;
        }
        Command::Token(TokenCmd::List { user }) => {
            let ts = store.tokens(actor, user.as_deref()).await?;
            emit(json, &ts, |ts| {
                for t in ts {
                    println!(
                        "{}  {:<24} {:<10} {}",
                        t.id,
                        t.user,
                        if t.revoked { "revoked" } else { "active" },
                        t.label.as_deref().unwrap_or("")
                    );
                }
            })?;
        }
        Command::Dataset(DatasetCmd::Register {
            name,
            path,
            use_codes,
            opt_in_only,
            no_manifest,
            reason,
        }) => {
            let req = RegisterRequest {
                name,
                path,
                use_codes: Some(use_codes),
                opt_in_only,
                no_manifest_reason: if no_manifest { reason } else { None },
            };
            let v = store.dataset_register(actor, &req).await?;
            emit(json, &v, |v| {
                println!(
                    "registered {}@{} ({}, {} rows, {} bytes, use {})",
                    v.dataset, v.version, v.kind, v.rows, v.bytes, v.use_codes
                );
            })?;
        }
        Command::Dataset(DatasetCmd::List) => {
            let ds = store.dataset_list(actor).await?;
            emit(json, &ds, |ds| {
                for d in ds {
                    println!(
                        "{:<32} latest {:<4} versions {:<4} use {}",
                        d.name, d.latest_version, d.versions, d.use_codes
                    );
                }
            })?;
        }
        Command::Dataset(DatasetCmd::Show { name }) => {
            let vs = store.dataset_show(actor, &name).await?;
            emit(json, &vs, |vs| {
                for v in vs {
                    println!(
                        "{}@{}  {}  rows {}  key {}  use {}  registered {} by {}",
                        v.dataset,
                        v.version,
                        v.kind,
                        v.rows,
                        v.key_id.as_deref().unwrap_or("-"),
                        v.use_codes,
                        v.registered_at,
                        v.registered_by
                    );
                    if let Some(r) = &v.override_reason {
                        println!("  registered WITHOUT a manifest: {r}");
                    }
                }
            })?;
        }
        Command::Project(cmd) => project(store, actor, cmd, json).await?,
        Command::Grant(GrantCmd::Add {
            project,
            dataset,
            level: l,
        }) => {
            let (name, version) = dataset_ref(&dataset)?;
            let g = store
                .grant_add(actor, &project, &name, version, level(l))
                .await?;
            emit(json, &g, |g| {
                println!(
                    "granted {}@{} ({}) to {project} (grant {})",
                    g.dataset,
                    g.version,
                    g.level.as_str(),
                    g.id
                );
            })?;
        }
        Command::Access(AccessCmd::Check {
            project,
            dataset,
            level: l,
        }) => {
            let (name, version) = dataset_ref(&dataset)?;
            let a = store
                .access_check(actor, &project, &name, version, level(l))
                .await?;
            emit(json, &a, |a| {
                println!(
                    "allowed: {} may read {}@{} ({}) under grant {} and IRB record {} (audit #{})",
                    actor.name,
                    a.dataset,
                    a.version,
                    a.level.as_str(),
                    a.grant.unwrap_or_default(),
                    a.irb.unwrap_or_default(),
                    a.audit_seq
                );
            })?;
        }
        Command::Consent(ConsentCmd::Import { file }) => {
            let r = store.consent_import(actor, &file).await?;
            emit(json, &r, |r| {
                println!(
                    "imported {} consent records ({} opt-out, {} opt-in), rejected {}",
                    r.imported,
                    r.opt_out,
                    r.opt_in,
                    r.rejected.len()
                );
                for x in &r.rejected {
                    eprintln!("  line {}: {}: {}", x.line, x.field, x.reason);
                }
            })?;
            if !r.rejected.is_empty() {
                return Ok(EXIT_REJECTS);
            }
        }
        Command::Consent(ConsentCmd::Withdraw {
            patient_id,
            purpose,
            effective,
        }) => {
            let p = store
                .consent_withdraw(
                    actor,
                    &SourceId::new(patient_id),
                    &purpose,
                    effective.as_deref(),
                )
                .await?;
            emit(
                json,
                &serde_json::json!({"pseudonym": p, "purpose": purpose}),
                |_| {
                    println!("recorded opt-out for pseudonym {p} (purpose {purpose})");
                },
            )?;
        }
        Command::Audit(cmd) => return audit(store, actor, cmd, json).await,
        Command::Key(KeyCmd::Backup {
            out,
            passphrase_env,
        }) => {
            if out.exists() {
                bail!(
                    "invalid --out: {} exists; refusing to overwrite",
                    out.display()
                );
            }
            let pass = read_passphrase(&passphrase_env)?;
            let sealed = store.key_backup(actor, &pass).await?;
            write_atomic(&out, &sealed)?;
            emit(
                json,
                &serde_json::json!({"out": out, "key_id": store.key_id(), "bytes": sealed.len()}),
                |_| {
                    println!(
                        "wrote encrypted key backup {} (key id {}); keep it off this host",
                        out.display(),
                        store.key_id()
                    );
                },
            )?;
        }
    }
    Ok(0)
}

fn unreachable_command() -> anyhow::Result<u8> {
    bail!("internal: command dispatched twice")
}

fn roles_text(roles: &[mdc_types::Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write into {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

async fn project(
    store: &Store,
    actor: &mdc_store::Actor,
    cmd: ProjectCmd,
    json: bool,
) -> anyhow::Result<()> {
    let print = |p: &mdc_store::ProjectInfo| {
        println!(
            "{}  \"{}\"  purpose {}  {}  {} ({})  PI {}  status {}",
            p.name,
            p.title,
            p.purpose,
            if p.commercial {
                "commercial"
            } else {
                "non-commercial"
            },
            p.institution,
            p.country,
            p.pi,
            p.status
        );
        if let Some(i) = &p.irb {
            println!(
                "  IRB {} ({}) {} .. {}",
                i.number, i.institution, i.approved_on, i.expires_on
            );
        }
        for m in &p.members {
            println!("  member {} ({})", m.user, m.role);
        }
        for g in &p.grants {
            println!(
                "  grant {}: {}@{} ({})",
                g.id,
                g.dataset,
                g.version,
                g.level.as_str()
            );
        }
    };
    match cmd {
        ProjectCmd::Create {
            name,
            title,
            purpose,
            commercial,
            institution,
            country,
            pi,
        } => {
            let p = NewProject {
                name,
                title,
                purpose,
                commercial: commercial == YesNo::Yes,
                institution,
                country,
                pi,
            };
            let info = store.project_create(actor, &p).await?;
            emit(json, &info, print)?;
        }
        ProjectCmd::Irb {
            project,
            number,
            institution,
            approved,
            expires,
            scope,
        } => {
            let info = store
                .project_irb(
                    actor,
                    &project,
                    &NewIrb {
                        number,
                        institution,
                        approved,
                        expires,
                        scope,
                    },
                )
                .await?;
            emit(json, &info, print)?;
        }
        ProjectCmd::Member(MemberCmd::Add {
            project,
            user,
            role,
        }) => {
            let info = store
                .project_member_add(actor, &project, &user, &role)
                .await?;
            emit(json, &info, print)?;
        }
        ProjectCmd::Approve { project } => {
            let info = store.project_approve(actor, &project).await?;
            emit(json, &info, print)?;
        }
        ProjectCmd::Show { name } => {
            let info = store.project_show(actor, &name).await?;
            emit(json, &info, print)?;
        }
        ProjectCmd::List => {
            let ps = store.project_list(actor).await?;
            emit(json, &ps, |ps| ps.iter().for_each(print))?;
        }
    }
    Ok(())
}

async fn audit(
    store: &Store,
    actor: &mdc_store::Actor,
    cmd: AuditCmd,
    json: bool,
) -> anyhow::Result<u8> {
    match cmd {
        AuditCmd::Verify { against } => {
            let cp: Option<Checkpoint> = match &against {
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read {}", p.display()))?;
                    Some(serde_json::from_str(&text).with_context(|| {
                        format!(
                            "invalid --against: {} is not a checkpoint file",
                            p.display()
                        )
                    })?)
                }
                None => None,
            };
            let r = store.audit_verify(actor, cp.as_ref()).await?;
            emit(json, &r, |r| {
                if r.ok {
                    println!(
                        "audit log OK: {} entries, head {}, {} signed checkpoints verified{}",
                        r.entries,
                        &r.head[..16],
                        r.checkpoints_checked,
                        if r.against_checked {
                            ", extends the exported checkpoint"
                        } else {
                            ""
                        }
                    );
                } else if let Some(p) = &r.first_problem {
                    println!(
                        "audit log BROKEN at entry {} ({}): {}",
                        p.seq, p.kind, p.detail
                    );
                }
            })?;
            if !r.ok {
                // Verification failing is the command's finding, not a crash: exit 1.
                return Ok(1);
            }
        }
        AuditCmd::Log {
            since,
            actor: who,
            project,
            limit,
        } => {
            let filter = LogFilter {
                since,
                actor: who,
                project,
                limit,
            };
            let entries = store.audit_log(actor, &filter).await?;
            emit(json, &entries, |es| {
                for e in es {
                    let b = &e.body;
                    let s = |k: &str| b.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_owned();
                    let reason = b
                        .get("reason")
                        .and_then(|v| v.as_str())
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default();
                    println!(
                        "#{:<5} {} {:<22} {:<26} {:<28} {}{}",
                        e.seq,
                        s("time"),
                        s("actor"),
                        s("action"),
                        s("resource"),
                        s("outcome"),
                        reason
                    );
                }
            })?;
        }
        AuditCmd::Checkpoint { export } => {
            let cp = store.audit_checkpoint(actor).await?;
            if let Some(path) = &export {
                write_atomic(path, serde_json::to_string_pretty(&cp)?.as_bytes())?;
            }
            emit(json, &cp, |cp| {
                println!(
                    "signed checkpoint: {} entries, head {}",
                    cp.count,
                    &cp.head[..16]
                );
                if let Some(p) = &export {
                    println!("exported to {}; keep it off this host", p.display());
                }
            })?;
        }
    }
    Ok(0)
}
