//! The audit entry of a governed model validation run (issue 7).
//!
//! `access_check` has already authorised and audited the read of the dataset
//! version; this records what the run did with it: the digests of the model
//! (which is deleted after the run) and of the data, the pending output that
//! holds the report, and the row counts. Only names, digests and counts go in:
//! never a patient value, and no floats (the audit's canonical JSON has none).

use serde_json::{Map, Value};

use crate::authz::{Actor, Allowed, Resource};
use crate::error::Result;
use crate::projects::AccessInfo;
use crate::store::Store;

/// What a finished validation run reports to the audit log.
#[derive(Debug, Clone)]
pub struct ValidationRun {
    pub model_sha256: String,
    pub data_sha256: String,
    /// `outputs/<project>/<id>/` of the pending report.
    pub output_id: String,
    pub report_sha256: String,
    pub rows_used: u64,
    pub excluded_by_consent: u64,
    pub seed: u64,
}

impl Store {
    /// Appends `validate.run` for a run made under `access` (from `access_check`).
    pub async fn record_validation_run(
        &self,
        actor: &Actor,
        access: &AccessInfo,
        run: &ValidationRun,
    ) -> Result<i64> {
        let resource = Resource::DatasetVersion {
            project: access.project.clone(),
            dataset: access.dataset.clone(),
            version: access.version,
        };
        let mut params = Map::new();
        params.insert("model_sha256".into(), Value::from(run.model_sha256.clone()));
        params.insert("data_sha256".into(), Value::from(run.data_sha256.clone()));
        params.insert("output".into(), Value::from(run.output_id.clone()));
        params.insert(
            "report_sha256".into(),
            Value::from(run.report_sha256.clone()),
        );
        params.insert("rows".into(), Value::from(run.rows_used));
        params.insert(
            "excluded_by_consent".into(),
            Value::from(run.excluded_by_consent),
        );
        params.insert("seed".into(), Value::from(run.seed.to_string()));
        params.insert("model_retained".into(), Value::from(false));
        let mut tx = self.db().write().await?;
        let seq = self
            .audit_in(
                &mut tx,
                actor,
                "validate.run",
                &resource,
                Allowed {
                    grant: access.grant,
                    irb: access.irb,
                },
                params,
            )
            .await?;
        tx.commit().await?;
        Ok(seq)
    }
}
