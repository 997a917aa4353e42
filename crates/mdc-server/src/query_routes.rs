//! HTTP routes of governed analysis (issue 6): queries and the output release
//! workflow. Same library calls as `mdc query` and `mdc output`.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use mdc_query::{Limits, QueryError};
use mdc_store::{Decision, Store};
use mdc_types::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::routes::Auth;

type ApiResult = Result<Json<Value>, ApiError>;

fn ok<T: serde::Serialize>(v: &T) -> ApiResult {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(ApiError::from)
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> ApiError {
        match e {
            QueryError::Store(s) => s.into(),
            other => {
                let code = other.code();
                if code == ErrorCode::Internal {
                    tracing::error!(error = %other, "query engine error");
                    ApiError::new(code, "internal error; the server log has details")
                } else {
                    ApiError::new(code, other.to_string())
                }
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    sql: String,
}

/// `POST /v1/projects/{name}/queries` — runs one governed query.
pub async fn query(
    State(s): State<Arc<Store>>,
    Auth(a): Auth,
    Path(project): Path<String>,
    b: Result<Json<QueryBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let outcome = mdc_query::run(&s, &a, &project, &b.sql, &Limits::default()).await?;
    ok(&outcome)
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
}

/// `GET /v1/projects/{name}/outputs`
pub async fn project_outputs(
    State(s): State<Arc<Store>>,
    Auth(a): Auth,
    Path(project): Path<String>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = q?;
    ok(&s
        .output_list(&a, Some(&project), q.status.as_deref())
        .await?)
}

/// `GET /v1/outputs` — every project's outputs (reviewers, auditors).
pub async fn all_outputs(
    State(s): State<Arc<Store>>,
    Auth(a): Auth,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = q?;
    ok(&s.output_list(&a, None, q.status.as_deref()).await?)
}

/// `GET /v1/outputs/{id}` — the output with its checked content.
pub async fn output_show(
    State(s): State<Arc<Store>>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult {
    let (info, content) = s.output_show(&a, id).await?;
    let text = String::from_utf8(content).ok();
    ok(&json!({"output": info, "content": text}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    context: String,
}

pub async fn output_submit(
    State(s): State<Arc<Store>>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    b: Result<Json<SubmitBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    ok(&mdc_query::submit(&s, &a, id, &b.context, &Limits::default()).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    decision: String,
    comment: Option<String>,
}

pub async fn output_review(
    State(s): State<Arc<Store>>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    b: Result<Json<ReviewBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let d = Decision::parse(&b.decision)?;
    ok(&s.output_review(&a, id, d, b.comment.as_deref()).await?)
}

pub async fn output_release(
    State(s): State<Arc<Store>>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(&s.output_release(&a, id).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    reason: String,
}

pub async fn output_reject(
    State(s): State<Arc<Store>>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    b: Result<Json<RejectBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    ok(&s.output_reject(&a, id, &b.reason).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureBody {
    #[serde(default = "default_preset")]
    preset: String,
    #[serde(default)]
    overrides: Value,
    #[serde(default)]
    two_reviews: bool,
}

fn default_preset() -> String {
    "kr-public".into()
}

/// `PUT /v1/projects/{name}/disclosure` (steward).
pub async fn disclosure_set(
    State(s): State<Arc<Store>>,
    Auth(a): Auth,
    Path(project): Path<String>,
    b: Result<Json<DisclosureBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    ok(
        &mdc_query::set_disclosure(&s, &a, &project, &b.preset, &b.overrides, b.two_reviews)
            .await?,
    )
}

/// `GET /v1/projects/{name}/disclosure`: the rules in force.
pub async fn disclosure_get(
    State(s): State<Arc<Store>>,
    Auth(a): Auth,
    Path(project): Path<String>,
) -> ApiResult {
    s.project_show(&a, &project).await?;
    let (policy, two) = mdc_query::project_policy(&s, &project).await?;
    ok(
        &json!({"project": project, "policy": policy, "policy_sha256": policy.sha256(), "two_reviews": two}),
    )
}
