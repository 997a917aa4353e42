//! Accelerator testbed results in the catalog (issue 8).
//!
//! A benchmark touches no patient data, but its result is evidence a vendor
//! and the center will both rely on, so recording it is an audited write like
//! any other (who ran what, on which model hash and backend), and the stored
//! JSON is exactly what `mdc bench show` prints.

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;

use crate::audit::now_text;
use crate::authz::{Action, Actor, Resource};
use crate::error::{Result, StoreError};
use crate::store::Store;

/// What to record.
#[derive(Debug, Clone)]
pub struct NewBenchRun {
    /// `run`, `sweep` or `parity`.
    pub kind: String,
    pub scenario: Option<String>,
    pub model: String,
    pub model_sha256: Option<String>,
    pub backend: String,
    pub valid: bool,
    pub headline: String,
    /// The full result; its `id` and `created_at` fields are filled in here.
    pub result: Value,
}

/// A stored run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRunInfo {
    pub id: String,
    pub kind: String,
    pub scenario: Option<String>,
    pub model: String,
    pub model_sha256: Option<String>,
    pub backend: String,
    pub valid: bool,
    pub headline: String,
    pub created_at: String,
    pub created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

const COLUMNS: &str =
    "id, kind, scenario, model, model_sha256, backend, valid, headline, created_at, created_by";

fn info(r: &sqlx::any::AnyRow, with_result: bool) -> Result<BenchRunInfo> {
    let result = if with_result {
        let text: String = r.try_get(10)?;
        Some(serde_json::from_str(&text).map_err(|e| {
            StoreError::Integrity(format!("stored benchmark result is not JSON: {e}"))
        })?)
    } else {
        None
    };
    Ok(BenchRunInfo {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        scenario: r.try_get(2)?,
        model: r.try_get(3)?,
        model_sha256: r.try_get(4)?,
        backend: r.try_get(5)?,
        valid: r.try_get::<i64, _>(6)? != 0,
        headline: r.try_get(7)?,
        created_at: r.try_get(8)?,
        created_by: r.try_get(9)?,
        result,
    })
}

impl Store {
    /// Stores one result and its audit entry in one transaction.
    pub async fn bench_record(&self, actor: &Actor, run: NewBenchRun) -> Result<BenchRunInfo> {
        let allowed = self
            .authorize(actor, Action::RunBenchmark, &Resource::System)
            .await?;
        let mut tx = self.db.write().await?;
        let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 FROM bench_runs")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let id = format!("b{seq}");
        let now = now_text();
        let mut result = run.result;
        if let Value::Object(m) = &mut result {
            m.insert("id".into(), Value::String(id.clone()));
            m.insert("created_at".into(), Value::String(now.clone()));
        }
        let text = serde_json::to_string(&result)
            .map_err(|e| StoreError::Config(format!("cannot encode the result: {e}")))?;
        sqlx::query("INSERT INTO bench_runs (seq, id, kind, scenario, model, model_sha256, backend, valid, headline, result, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
            .bind(seq)
            .bind(&id)
            .bind(&run.kind)
            .bind(run.scenario.clone())
            .bind(&run.model)
            .bind(run.model_sha256.clone())
            .bind(&run.backend)
            .bind(i64::from(run.valid))
            .bind(&run.headline)
            .bind(&text)
            .bind(&now)
            .bind(&actor.name)
            .execute(&mut *tx)
            .await?;
        let mut params = Map::new();
        params.insert("id".into(), id.clone().into());
        params.insert("kind".into(), run.kind.clone().into());
        params.insert("model".into(), run.model.clone().into());
        if let Some(h) = &run.model_sha256 {
            params.insert("model_sha256".into(), h.clone().into());
        }
        params.insert("backend".into(), run.backend.clone().into());
        params.insert("valid".into(), run.valid.into());
        self.audit_in(
            &mut tx,
            actor,
            "bench.record",
            &Resource::System,
            allowed,
            params,
        )
        .await?;
        tx.commit().await?;
        Ok(BenchRunInfo {
            id,
            kind: run.kind,
            scenario: run.scenario,
            model: run.model,
            model_sha256: run.model_sha256,
            backend: run.backend,
            valid: run.valid,
            headline: run.headline,
            created_at: now,
            created_by: actor.name.clone(),
            result: Some(result),
        })
    }

    /// All stored runs, oldest first, without their full results.
    pub async fn bench_list(&self, actor: &Actor) -> Result<Vec<BenchRunInfo>> {
        self.authorize(actor, Action::ReadCatalog, &Resource::System)
            .await?;
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM bench_runs ORDER BY seq"))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(|r| info(r, false)).collect()
    }

    /// One stored run with its full result.
    pub async fn bench_show(&self, actor: &Actor, id: &str) -> Result<BenchRunInfo> {
        self.authorize(actor, Action::ReadCatalog, &Resource::System)
            .await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, result FROM bench_runs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "benchmark run",
            name: id.to_owned(),
        })?;
        info(&row, true)
    }
}
