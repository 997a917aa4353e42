//! Outputs that may leave the center (DESIGN §8) and their release workflow.
//!
//! An output is a result computed inside the secure zone, already passed
//! through the project's disclosure-control rules by its producer (the query
//! engine, or any other producer such as a validation report), and held here as
//! *pending* with its check results. Taking it out of the zone is a *release*:
//! the author submits it with context, one or two reviewers who are not the
//! author approve (or ask for changes), and a reviewer releases it; the released
//! file is written content-addressed (`outputs/released/<sha256>.<ext>`) next to
//! a record of the rules applied. Every step goes through `Store::authorize` and
//! appends its audit entry in the same transaction as the change.
//!
//! Producers call [`Store::output_create`] with a [`NewOutput`]; nothing here
//! knows SQL. The pending content lives under `outputs/<project>/<id>/`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::Row;

use crate::audit::{now_text, sha256_hex};
use crate::authz::{Action, Actor, Allowed, Resource};
use crate::error::{Result, StoreError};
use crate::store::Store;

/// The rules an output was checked with (name, version and a digest of the
/// exact JSON), recorded with the output and again with the release.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub name: String,
    pub version: i64,
    pub sha256: String,
    pub rules: Value,
}

/// The pseudonymised patients behind one person-count cell (differencing
/// control): `bitmap` is the set as `differencing::encode` writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellPatients {
    pub cell: String,
    pub patients: i64,
    pub bitmap: String,
}

/// What a producer hands over: the checked content and how it was checked.
#[derive(Debug, Clone)]
pub struct NewOutput {
    pub project: String,
    /// `query`, `validation-report`, …
    pub kind: String,
    pub title: String,
    /// `text/csv`, `application/json`, `text/html`, …
    pub media_type: String,
    /// The content as checked (masked where the rules said so). Never raw rows
    /// that failed a check.
    pub content: Vec<u8>,
    pub rows: i64,
    pub policy: PolicyRecord,
    pub checks: Value,
    /// The checks could not decide everything (sums, means, models…).
    pub needs_review: bool,
    pub masked_cells: i64,
    /// The SQL (or other description) that produced it; never PHI.
    pub source_text: Option<String>,
    pub cells: Vec<CellPatients>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReviewInfo {
    pub round: i64,
    pub reviewer: String,
    pub decision: String,
    pub comment: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputInfo {
    pub id: i64,
    pub project: String,
    pub author: String,
    pub kind: String,
    pub title: String,
    pub status: String,
    pub round: i64,
    pub media_type: String,
    pub path: String,
    pub sha256: String,
    pub bytes: i64,
    pub rows: i64,
    pub policy: String,
    pub policy_version: i64,
    pub policy_sha256: String,
    pub needs_review: bool,
    pub masked_cells: i64,
    pub source_text: Option<String>,
    pub context: Option<String>,
    pub created_at: String,
    pub submitted_at: Option<String>,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub released_path: Option<String>,
    pub released_sha256: Option<String>,
    /// Approvals needed in the current round before release.
    pub required_reviews: i64,
    pub reviews: Vec<ReviewInfo>,
    pub checks: Value,
}

/// A project's disclosure-control settings as stored (the query layer parses
/// `policy`).
#[derive(Debug, Clone, Serialize)]
pub struct DisclosureSettings {
    pub project: String,
    pub policy: Value,
    pub two_reviews: bool,
    pub updated_at: String,
    pub updated_by: String,
}

/// A review decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Changes,
}

impl Decision {
    pub fn parse(s: &str) -> Result<Decision> {
        match s.trim().to_ascii_lowercase().as_str() {
            "approve" | "approved" => Ok(Decision::Approve),
            "changes" | "request-changes" | "changes_requested" => Ok(Decision::Changes),
            _ => Err(StoreError::invalid(
                "decision",
                "must be 'approve' or 'changes'",
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Changes => "changes",
        }
    }
}

fn extension(media_type: &str) -> &'static str {
    match media_type {
        "text/csv" => "csv",
        "application/json" => "json",
        "text/html" => "html",
        "text/plain" => "txt",
        _ => "bin",
    }
}

fn short_text(field: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(StoreError::invalid(
            field,
            format!("must be 1-{max} characters"),
        ));
    }
    Ok(v.to_owned())
}

const OUTPUT_COLUMNS: &str = "id, project, author, kind, title, status, round, media_type, path, sha256, byte_count, row_count, \
     policy_name, policy_version, policy_sha256, needs_review, masked_cells, source_text, context, created_at, \
     submitted_at, decided_at, decided_by, decision_reason, released_path, released_sha256, checks_json";

async fn insert_cells(tx: &mut crate::db::Tx, id: i64, cells: &[CellPatients]) -> Result<()> {
    for c in cells {
        sqlx::query(
            "INSERT INTO output_cells (output_id, cell, patients, bitmap) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(&c.cell)
        .bind(c.patients)
        .bind(&c.bitmap)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Person-count cells with their sets: of one output (`Of::Output`), or the
/// released ones of a project whose size lies in one of `ranges`.
enum Of<'a> {
    Output(i64),
    Released {
        project: &'a str,
        ranges: &'a [(i64, i64)],
    },
}

async fn cells_of(
    conn: &mut sqlx::AnyConnection,
    of: Of<'_>,
) -> Result<Vec<(i64, String, crate::differencing::IdSet)>> {
    const SELECT: &str = "SELECT c.output_id, c.cell, c.bitmap FROM output_cells c JOIN outputs o ON o.id = c.output_id";
    let mut rows = Vec::new();
    match of {
        Of::Output(id) => {
            rows = sqlx::query(&format!("{SELECT} WHERE c.output_id = $1 ORDER BY c.cell"))
                .bind(id)
                .fetch_all(&mut *conn)
                .await?;
        }
        Of::Released { project, ranges } => {
            for (lo, hi) in ranges {
                rows.extend(
                    sqlx::query(&format!(
                        "{SELECT} WHERE o.project = $1 AND o.status = 'released' AND c.patients BETWEEN $2 AND $3 \
                         ORDER BY c.output_id, c.cell"
                    ))
                    .bind(project)
                    .bind(*lo)
                    .bind(*hi)
                    .fetch_all(&mut *conn)
                    .await?,
                );
            }
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let bitmap: String = r.try_get(2)?;
        let set = crate::differencing::decode(&bitmap).ok_or_else(|| {
            StoreError::Integrity(format!(
                "output {}: a stored person set cannot be read",
                r.try_get::<i64, _>(0).unwrap_or_default()
            ))
        })?;
        out.push((r.try_get(0)?, r.try_get(1)?, set));
    }
    Ok(out)
}

fn params(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

impl Store {
    /// Records a query (or other request) refused before any data was read,
    /// e.g. a syntax error or a forbidden statement: audited as denied.
    pub async fn audit_denied(
        &self,
        actor: &Actor,
        action: &str,
        project: &str,
        reason: &str,
        extra: Map<String, Value>,
    ) -> Result<()> {
        let mut tx = self.db.write().await?;
        let ev = self.event(
            actor,
            action,
            &Resource::Project(project.to_owned()),
            crate::audit::Outcome::Denied,
            Some(reason.chars().take(500).collect()),
            Allowed::default(),
            extra,
        );
        crate::audit::record(
            &mut tx,
            &self.signer,
            self.config.audit_checkpoint_every,
            &ev,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Holds a checked result as a pending output of `project`.
    pub async fn output_create(&self, actor: &Actor, new: NewOutput) -> Result<OutputInfo> {
        let title = short_text("title", &new.title, 300)?;
        let kind = short_text("kind", &new.kind, 40)?;
        let project = self.existing_project_name(&new.project).await?;
        let allowed = self
            .authorize(
                actor,
                Action::CreateOutput,
                &Resource::Project(project.clone()),
            )
            .await?;
        let sha = sha256_hex(&[&new.content]);
        let created_at = now_text();
        let policy_json = serde_json::to_string(&new.policy.rules)
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let checks_json =
            serde_json::to_string(&new.checks).map_err(|e| StoreError::Config(e.to_string()))?;
        let mut tx = self.db.write().await?;
        let id: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 FROM outputs")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let rel = format!(
            "outputs/{project}/{id}/result.{}",
            extension(&new.media_type)
        );
        let file = self.root.path().join(&rel);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
            mdc_table::write_file_atomic(&dir.join("checks.json"), checks_json.as_bytes(), false)?;
        }
        mdc_table::write_file_atomic(&file, &new.content, false)?;
        sqlx::query(
            "INSERT INTO outputs (id, project, author, kind, title, status, round, media_type, path, sha256, byte_count, row_count, \
             policy_name, policy_version, policy_sha256, policy_json, checks_json, needs_review, masked_cells, source_text, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(id)
        .bind(&project)
        .bind(&actor.name)
        .bind(&kind)
        .bind(&title)
        .bind(&new.media_type)
        .bind(&rel)
        .bind(&sha)
        .bind(new.content.len() as i64)
        .bind(new.rows)
        .bind(&new.policy.name)
        .bind(new.policy.version)
        .bind(&new.policy.sha256)
        .bind(&policy_json)
        .bind(&checks_json)
        .bind(i64::from(new.needs_review))
        .bind(new.masked_cells)
        .bind(new.source_text.as_deref())
        .bind(&created_at)
        .execute(&mut *tx)
        .await?;
        insert_cells(&mut tx, id, &new.cells).await?;
        self.audit_in(
            &mut tx,
            actor,
            "output.create",
            &Resource::Output {
                project: project.clone(),
                id,
                author: actor.name.clone(),
            },
            allowed,
            params(&[
                ("output", id.into()),
                ("kind", kind.clone().into()),
                ("sha256", sha.clone().into()),
                ("rows", new.rows.into()),
                ("policy", new.policy.name.clone().into()),
                ("policy_version", new.policy.version.into()),
                ("masked_cells", new.masked_cells.into()),
                ("needs_review", new.needs_review.into()),
            ]),
        )
        .await?;
        tx.commit().await?;
        // What `output_info` would read back, without reading it back.
        let two = self
            .disclosure_settings(&project)
            .await?
            .is_some_and(|d| d.two_reviews);
        Ok(OutputInfo {
            id,
            project,
            author: actor.name.clone(),
            kind,
            title,
            status: "pending".into(),
            round: 0,
            media_type: new.media_type,
            path: rel,
            sha256: sha,
            bytes: new.content.len() as i64,
            rows: new.rows,
            policy: new.policy.name,
            policy_version: new.policy.version,
            policy_sha256: new.policy.sha256,
            needs_review: new.needs_review,
            masked_cells: new.masked_cells,
            source_text: new.source_text,
            context: None,
            created_at,
            submitted_at: None,
            decided_at: None,
            decided_by: None,
            decision_reason: None,
            released_path: None,
            released_sha256: None,
            required_reviews: if two { 2 } else { 1 },
            reviews: Vec::new(),
            checks: new.checks,
        })
    }

    /// Outputs of a project (members, reviewers, auditors), or of every project
    /// (reviewers and auditors), optionally with one status.
    pub async fn output_list(
        &self,
        actor: &Actor,
        project: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<OutputInfo>> {
        let resource = match project {
            Some(p) => Resource::Project(self.existing_project_name(p).await?),
            None => Resource::System,
        };
        self.authorize(actor, Action::ReadOutput, &resource).await?;
        let rows = sqlx::query(
            "SELECT id FROM outputs WHERE ($1 = '' OR project = $1) AND ($2 = '' OR status = $2) ORDER BY id",
        )
        .bind(project.unwrap_or(""))
        .bind(status.unwrap_or(""))
        .fetch_all(self.db.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.output_info(r.try_get(0)?).await?);
        }
        Ok(out)
    }

    /// One output with its checked content (inside the secure zone). Audited.
    pub async fn output_show(&self, actor: &Actor, id: i64) -> Result<(OutputInfo, Vec<u8>)> {
        let info = self.output_info(id).await?;
        let resource = output_resource(&info);
        let allowed = self.authorize(actor, Action::ReadOutput, &resource).await?;
        let file = self.root.path().join(&info.path);
        let content = std::fs::read(&file).map_err(StoreError::io(&file))?;
        if sha256_hex(&[&content]) != info.sha256 {
            return Err(StoreError::Integrity(format!(
                "output {id}: the held file no longer matches its SHA-256"
            )));
        }
        let mut tx = self.db.write().await?;
        self.audit_in(
            &mut tx,
            actor,
            "output.read",
            &resource,
            allowed,
            params(&[("output", id.into())]),
        )
        .await?;
        tx.commit().await?;
        Ok((info, content))
    }

    /// The author submits a pending output for release review, saying what it is.
    pub async fn output_submit(&self, actor: &Actor, id: i64, context: &str) -> Result<OutputInfo> {
        self.output_submit_with_cells(actor, id, context, None)
            .await
    }

    /// The output and its held content, for its author about to submit it:
    /// the query layer recomputes the person sets behind deferred cells from
    /// it. Authorised as the submission itself; denials are audited there.
    pub async fn output_for_submit(&self, actor: &Actor, id: i64) -> Result<(OutputInfo, Vec<u8>)> {
        let info = self.output_info(id).await?;
        self.authorize(actor, Action::SubmitOutput, &output_resource(&info))
            .await?;
        let file = self.root.path().join(&info.path);
        let content = std::fs::read(&file).map_err(StoreError::io(&file))?;
        Ok((info, content))
    }

    /// Submits; `Some(cells)` when the person sets behind the output's
    /// visible person-count cells were computed only now (issue 6: sets are
    /// built at submission unless an earlier release needed them at query
    /// time). They are stored and the output's `checks.person_sets` becomes
    /// `stored`, even when every person count is masked and none is kept.
    pub async fn output_submit_with_cells(
        &self,
        actor: &Actor,
        id: i64,
        context: &str,
        cells: Option<&[CellPatients]>,
    ) -> Result<OutputInfo> {
        let context = short_text("context", context, 4000)?;
        let info = self.output_info(id).await?;
        let resource = output_resource(&info);
        let allowed = self
            .authorize(actor, Action::SubmitOutput, &resource)
            .await?;
        if !matches!(info.status.as_str(), "pending" | "changes_requested") {
            return Err(StoreError::Conflict(format!(
                "output {id} is {}; only pending outputs or ones with changes requested can be submitted",
                info.status
            )));
        }
        let mut tx = self.db.write().await?;
        let n = sqlx::query(
            "UPDATE outputs SET status = 'submitted', round = round + 1, context = $1, submitted_at = $2 WHERE id = $3 AND status = $4",
        )
        .bind(&context)
        .bind(now_text())
        .bind(id)
        .bind(&info.status)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Err(StoreError::Conflict(format!(
                "output {id} changed concurrently"
            )));
        }
        if let Some(cells) = cells {
            let held: i64 = sqlx::query("SELECT COUNT(*) FROM output_cells WHERE output_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if held == 0 {
                insert_cells(&mut tx, id, cells).await?;
            }
            let mut checks = info.checks.clone();
            if let Some(m) = checks.as_object_mut() {
                m.insert("person_sets".into(), Value::from("stored"));
            }
            sqlx::query("UPDATE outputs SET checks_json = $1 WHERE id = $2")
                .bind(
                    serde_json::to_string(&checks)
                        .map_err(|e| StoreError::Config(e.to_string()))?,
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        self.audit_in(
            &mut tx,
            actor,
            "output.submit",
            &resource,
            allowed,
            params(&[("output", id.into()), ("round", (info.round + 1).into())]),
        )
        .await?;
        tx.commit().await?;
        self.output_info(id).await
    }

    /// A reviewer (never the author) approves or asks for changes.
    pub async fn output_review(
        &self,
        actor: &Actor,
        id: i64,
        decision: Decision,
        comment: Option<&str>,
    ) -> Result<OutputInfo> {
        let info = self.output_info(id).await?;
        let resource = output_resource(&info);
        let allowed = self
            .authorize(actor, Action::ReviewOutput, &resource)
            .await?;
        if info.status != "submitted" {
            return Err(StoreError::Conflict(format!(
                "output {id} is {}; only submitted outputs can be reviewed",
                info.status
            )));
        }
        if decision == Decision::Changes && comment.is_none_or(|c| c.trim().is_empty()) {
            return Err(StoreError::invalid(
                "comment",
                "say what should change when asking for changes",
            ));
        }
        if info
            .reviews
            .iter()
            .any(|r| r.round == info.round && r.reviewer == actor.name)
        {
            return Err(StoreError::Conflict(format!(
                "{} has already reviewed output {id} in this round; a second review must come from another reviewer",
                actor.name
            )));
        }
        let mut tx = self.db.write().await?;
        let rid: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 FROM output_reviews")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        sqlx::query(
            "INSERT INTO output_reviews (id, output_id, round, reviewer, decision, comment, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(rid)
        .bind(id)
        .bind(info.round)
        .bind(&actor.name)
        .bind(decision.as_str())
        .bind(comment.map(|c| c.chars().take(4000).collect::<String>()))
        .bind(now_text())
        .execute(&mut *tx)
        .await?;
        if decision == Decision::Changes {
            sqlx::query("UPDATE outputs SET status = 'changes_requested' WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        self.audit_in(
            &mut tx,
            actor,
            "output.review",
            &resource,
            allowed,
            params(&[
                ("output", id.into()),
                ("round", info.round.into()),
                ("decision", decision.as_str().into()),
            ]),
        )
        .await?;
        tx.commit().await?;
        self.output_info(id).await
    }

    /// A reviewer (never the author) releases a submitted output that has the
    /// approvals its project requires. Writes the content-addressed file and
    /// the release record; returns the output with `released_sha256`.
    pub async fn output_release(&self, actor: &Actor, id: i64) -> Result<OutputInfo> {
        let info = self.output_info(id).await?;
        let resource = output_resource(&info);
        let allowed = self
            .authorize(actor, Action::ReviewOutput, &resource)
            .await?;
        if info.status != "submitted" {
            return Err(StoreError::Conflict(format!(
                "output {id} is {}; only submitted outputs can be released",
                info.status
            )));
        }
        let approvers: Vec<&ReviewInfo> = info
            .reviews
            .iter()
            .filter(|r| r.round == info.round && r.decision == "approve")
            .collect();
        if (approvers.len() as i64) < info.required_reviews {
            return Err(StoreError::Conflict(format!(
                "output {id} has {} approving review(s) in this round; project {} requires {} independent review(s) before release",
                approvers.len(),
                info.project,
                info.required_reviews
            )));
        }
        let file = self.root.path().join(&info.path);
        let content = std::fs::read(&file).map_err(StoreError::io(&file))?;
        let sha = sha256_hex(&[&content]);
        if sha != info.sha256 {
            return Err(StoreError::Integrity(format!(
                "output {id}: the held file no longer matches its SHA-256; not released"
            )));
        }
        let policy_json: String = sqlx::query("SELECT policy_json FROM outputs WHERE id = $1")
            .bind(id)
            .fetch_one(self.db.pool())
            .await?
            .try_get(0)?;
        // Under the write lock from here: the differencing check and the
        // release see the same set of released outputs.
        let mut tx = self.db.write().await?;
        if let Some(why) = release_differencing(&mut tx, &info, &policy_json).await? {
            drop(tx);
            let mut p = Map::new();
            p.insert("output".into(), id.into());
            self.audit_denied(actor, "output.release", &info.project, &why, p)
                .await?;
            return Err(StoreError::Conflict(why));
        }
        let released_dir = self.root.outputs_dir().join("released");
        std::fs::create_dir_all(&released_dir).map_err(StoreError::io(&released_dir))?;
        let name = format!("{sha}.{}", extension(&info.media_type));
        let target = released_dir.join(&name);
        if !target.exists() {
            mdc_table::write_file_atomic(&target, &content, true)?;
        }
        let released_at = now_text();
        let record = serde_json::json!({
            "format": "mdc-release/1",
            "sha256": sha,
            "file": name,
            "media_type": info.media_type,
            "output": id,
            "project": info.project,
            "kind": info.kind,
            "title": info.title,
            "author": info.author,
            "context": info.context,
            "reviews": info.reviews.iter().filter(|r| r.round == info.round).collect::<Vec<_>>(),
            "released_by": actor.name,
            "released_at": released_at,
            "rules": {
                "name": info.policy,
                "version": info.policy_version,
                "sha256": info.policy_sha256,
                "rules": serde_json::from_str::<Value>(&policy_json).unwrap_or(Value::Null),
            },
            "checks": info.checks,
        });
        let record_path = released_dir.join(format!("{sha}.release-{id}.json"));
        mdc_table::write_file_atomic(
            &record_path,
            &serde_json::to_vec_pretty(&record).map_err(|e| StoreError::Config(e.to_string()))?,
            true,
        )?;
        let rel = format!("outputs/released/{name}");
        let n = sqlx::query(
            "UPDATE outputs SET status = 'released', decided_at = $1, decided_by = $2, released_path = $3, released_sha256 = $4 WHERE id = $5 AND status = 'submitted'",
        )
        .bind(&released_at)
        .bind(&actor.name)
        .bind(&rel)
        .bind(&sha)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Err(StoreError::Conflict(format!(
                "output {id} changed concurrently"
            )));
        }
        self.audit_in(
            &mut tx,
            actor,
            "output.release",
            &resource,
            allowed,
            params(&[
                ("output", id.into()),
                ("sha256", sha.clone().into()),
                ("policy", info.policy.clone().into()),
                ("policy_version", info.policy_version.into()),
                ("policy_sha256", info.policy_sha256.clone().into()),
                (
                    "reviewers",
                    approvers
                        .iter()
                        .map(|r| Value::from(r.reviewer.clone()))
                        .collect::<Vec<_>>()
                        .into(),
                ),
            ]),
        )
        .await?;
        tx.commit().await?;
        self.output_info(id).await
    }

    /// A reviewer (never the author) rejects an output; it can never leave.
    pub async fn output_reject(&self, actor: &Actor, id: i64, reason: &str) -> Result<OutputInfo> {
        let reason = short_text("reason", reason, 2000)?;
        let info = self.output_info(id).await?;
        let resource = output_resource(&info);
        let allowed = self
            .authorize(actor, Action::ReviewOutput, &resource)
            .await?;
        if matches!(info.status.as_str(), "released" | "rejected") {
            return Err(StoreError::Conflict(format!(
                "output {id} is already {}",
                info.status
            )));
        }
        let mut tx = self.db.write().await?;
        sqlx::query(
            "UPDATE outputs SET status = 'rejected', decided_at = $1, decided_by = $2, decision_reason = $3 WHERE id = $4",
        )
        .bind(now_text())
        .bind(&actor.name)
        .bind(&reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        self.audit_in(
            &mut tx,
            actor,
            "output.reject",
            &resource,
            allowed,
            params(&[("output", id.into())]),
        )
        .await?;
        tx.commit().await?;
        self.output_info(id).await
    }

    /// The sizes of the person sets behind the project's released cells. A new
    /// cell can conflict only with one whose size is within the threshold of
    /// its own (|A △ B| ≥ ||A| − |B||), so most queries need no sets at all.
    pub async fn released_cell_sizes(&self, project: &str) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT c.patients FROM output_cells c JOIN outputs o ON o.id = c.output_id \
             WHERE o.project = $1 AND o.status = 'released'",
        )
        .bind(project)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// The released person sets of `project` that could conflict with a new
    /// cell of one of `sizes`: those whose size is within `threshold` of it.
    pub async fn released_sets_near(
        &self,
        project: &str,
        sizes: &[i64],
        threshold: u64,
    ) -> Result<Vec<(i64, String, crate::differencing::IdSet)>> {
        let ranges = crate::differencing::near_ranges(sizes, threshold);
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.db.pool().acquire().await?;
        cells_of(
            &mut conn,
            Of::Released {
                project,
                ranges: &ranges,
            },
        )
        .await
    }

    /// The project's disclosure settings, if a steward set any (the root's
    /// `disclosure_preset` applies otherwise).
    pub async fn disclosure_settings(&self, project: &str) -> Result<Option<DisclosureSettings>> {
        let row = sqlx::query(
            "SELECT policy_json, two_reviews, updated_at, updated_by FROM project_disclosure WHERE project = $1",
        )
        .bind(project)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| {
            let json: String = r.try_get(0)?;
            Ok(DisclosureSettings {
                project: project.to_owned(),
                policy: serde_json::from_str(&json)
                    .map_err(|e| StoreError::Integrity(format!("disclosure policy: {e}")))?,
                two_reviews: r.try_get::<i64, _>(1)? != 0,
                updated_at: r.try_get(2)?,
                updated_by: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// A steward binds disclosure-control rules (already validated by the
    /// caller) to a project, and whether releases need two reviews.
    pub async fn disclosure_set(
        &self,
        actor: &Actor,
        project: &str,
        policy: &Value,
        two_reviews: bool,
    ) -> Result<DisclosureSettings> {
        let project = self.existing_project_name(project).await?;
        let resource = Resource::Project(project.clone());
        let allowed = self
            .authorize(actor, Action::SetDisclosure, &resource)
            .await?;
        let json = serde_json::to_string(policy).map_err(|e| StoreError::Config(e.to_string()))?;
        let mut tx = self.db.write().await?;
        sqlx::query("DELETE FROM project_disclosure WHERE project = $1")
            .bind(&project)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO project_disclosure (project, policy_json, two_reviews, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&project)
        .bind(&json)
        .bind(i64::from(two_reviews))
        .bind(now_text())
        .bind(&actor.name)
        .execute(&mut *tx)
        .await?;
        self.audit_in(
            &mut tx,
            actor,
            "disclosure.set",
            &resource,
            allowed,
            params(&[
                ("policy_sha256", sha256_hex(&[json.as_bytes()]).into()),
                ("two_reviews", two_reviews.into()),
            ]),
        )
        .await?;
        tx.commit().await?;
        self.disclosure_settings(&project)
            .await?
            .ok_or_else(|| StoreError::Conflict("disclosure settings vanished".into()))
    }

    /// Where a released output's file is, for the front ends.
    pub fn output_file(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    async fn existing_project_name(&self, project: &str) -> Result<String> {
        if sqlx::query("SELECT 1 FROM projects WHERE name = $1")
            .bind(project)
            .fetch_optional(self.db.pool())
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound {
                what: "project",
                name: project.chars().take(64).collect(),
            });
        }
        Ok(project.to_owned())
    }

    async fn output_info(&self, id: i64) -> Result<OutputInfo> {
        let r = sqlx::query(&format!(
            "SELECT {OUTPUT_COLUMNS} FROM outputs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "output",
            name: id.to_string(),
        })?;
        let project: String = r.try_get(1)?;
        let reviews = sqlx::query(
            "SELECT round, reviewer, decision, comment, created_at FROM output_reviews WHERE output_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|v| {
            Ok(ReviewInfo {
                round: v.try_get(0)?,
                reviewer: v.try_get(1)?,
                decision: v.try_get(2)?,
                comment: v.try_get(3)?,
                created_at: v.try_get(4)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let two = self
            .disclosure_settings(&project)
            .await?
            .is_some_and(|d| d.two_reviews);
        let checks: String = r.try_get(26)?;
        Ok(OutputInfo {
            id: r.try_get(0)?,
            project,
            author: r.try_get(2)?,
            kind: r.try_get(3)?,
            title: r.try_get(4)?,
            status: r.try_get(5)?,
            round: r.try_get(6)?,
            media_type: r.try_get(7)?,
            path: r.try_get(8)?,
            sha256: r.try_get(9)?,
            bytes: r.try_get(10)?,
            rows: r.try_get(11)?,
            policy: r.try_get(12)?,
            policy_version: r.try_get(13)?,
            policy_sha256: r.try_get(14)?,
            needs_review: r.try_get::<i64, _>(15)? != 0,
            masked_cells: r.try_get(16)?,
            source_text: r.try_get(17)?,
            context: r.try_get(18)?,
            created_at: r.try_get(19)?,
            submitted_at: r.try_get(20)?,
            decided_at: r.try_get(21)?,
            decided_by: r.try_get(22)?,
            decision_reason: r.try_get(23)?,
            released_path: r.try_get(24)?,
            released_sha256: r.try_get(25)?,
            required_reviews: if two { 2 } else { 1 },
            reviews,
            checks: serde_json::from_str(&checks).unwrap_or(Value::Null),
        })
    }
}

fn output_resource(info: &OutputInfo) -> Resource {
    Resource::Output {
        project: info.project.clone(),
        id: info.id,
        author: info.author.clone(),
    }
}

/// Differencing control again at release: an output checked before another
/// one was released may now differ from it by a handful of patients. Returns
/// why the release must not go ahead.
async fn release_differencing(
    tx: &mut crate::db::Tx,
    info: &OutputInfo,
    policy_json: &str,
) -> Result<Option<String>> {
    let policy: Value = serde_json::from_str(policy_json).unwrap_or(Value::Null);
    if policy.get("differencing").and_then(Value::as_bool) == Some(false) {
        return Ok(None);
    }
    let threshold = policy.get("min_count").and_then(Value::as_u64).unwrap_or(0);
    let mine = cells_of(tx, Of::Output(info.id)).await?;
    if mine.is_empty() {
        let deferred = info.checks.get("person_sets").and_then(Value::as_str) == Some("deferred");
        return Ok(deferred.then(|| {
            format!(
                "output {}: the patient sets behind its person counts were never computed; submit it with `mdc output submit`",
                info.id
            )
        }));
    }
    let sizes: Vec<i64> = mine.iter().map(|(_, _, s)| s.len() as i64).collect();
    let ranges = crate::differencing::near_ranges(&sizes, threshold);
    let released: Vec<_> = cells_of(
        tx,
        Of::Released {
            project: &info.project,
            ranges: &ranges,
        },
    )
    .await?
    .into_iter()
    .filter(|(o, _, _)| *o != info.id)
    .collect();
    Ok(crate::differencing::refusal(
        info.id, &mine, &released, threshold,
    ))
}
