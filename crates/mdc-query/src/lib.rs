//! Governed SQL over the Parquet of granted dataset versions, and the
//! disclosure-control engine (DESIGN §2, §8; issue 6).
//!
//! The one crate that links DataFusion. `engine` builds a per-query session
//! holding only the project's granted tables, consent-filtered; `guard` refuses
//! anything but one SELECT; `plan` classifies the result (aggregate or record
//! level) and adds hidden statistics columns; `disclosure` (pure, no arrow) and
//! `policy` (rules as data) decide what may be shown; `differencing` keeps the
//! patients behind released person counts. Results become pending outputs in
//! `mdc-store`, from which only a reviewer who is not the author releases them.

pub mod catalog;
mod consent;
pub mod contributors;
pub use mdc_store::differencing;

pub mod disclosure;
pub mod engine;
pub mod guard;
pub mod plan;
pub mod policy;
pub mod synth;

use mdc_store::StoreError;
use mdc_types::ErrorCode;

pub use datafusion::arrow::datatypes::DataType;
pub use engine::{
    describe, project_policy, run, run_in, session_config, submit, Limits, QueryOutcome, Session,
    ShownColumn, VisibleTable,
};
pub use policy::{Policy, ZeroRule, RULES_VERSION};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error("syntax error: {0}")]
    Syntax(String),
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("{0}")]
    Plan(String),
    #[error("limit exceeded: {0}")]
    Limit(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("query engine: {0}")]
    Internal(String),
}

impl QueryError {
    pub fn code(&self) -> ErrorCode {
        match self {
            QueryError::Syntax(_)
            | QueryError::Plan(_)
            | QueryError::Invalid(_)
            | QueryError::Limit(_) => ErrorCode::InvalidInput,
            QueryError::Forbidden(_) => ErrorCode::Forbidden,
            QueryError::Store(e) => e.code(),
            QueryError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// A refusal of the request itself (audited as denied); store denials are
    /// audited where they are decided.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            QueryError::Syntax(_)
                | QueryError::Forbidden(_)
                | QueryError::Plan(_)
                | QueryError::Limit(_)
        )
    }
}

/// A steward binds a preset (with overrides) to a project.
pub async fn set_disclosure(
    store: &mdc_store::Store,
    actor: &mdc_store::Actor,
    project: &str,
    preset: &str,
    overrides: &serde_json::Value,
    two_reviews: bool,
) -> Result<mdc_store::DisclosureSettings, QueryError> {
    let policy = Policy::with_overrides(preset, overrides)?;
    let value = serde_json::to_value(&policy).map_err(|e| QueryError::Internal(e.to_string()))?;
    Ok(store
        .disclosure_set(actor, project, &value, two_reviews)
        .await?)
}
