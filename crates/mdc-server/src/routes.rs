//! Routes of `/v1`. Each handler: authenticate, parse, call `Store`, serialise.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequestParts, MatchedPath, Path, Query, State,
};
use axum::http::request::Parts;
use axum::http::{header, Request};
use axum::routing::{get, post};
use axum::{Json, Router};
use mdc_store::audit::{Checkpoint, LogFilter};
use mdc_store::{Actor, Credential, NewIrb, NewProject, RegisterRequest, Store};
use mdc_types::{ErrorCode, GrantLevel, SourceId};
use serde::Deserialize;
use serde_json::{json, Value};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::BODY_LIMIT;

type App = Arc<Store>;
type ApiResult = Result<Json<Value>, ApiError>;

fn ok<T: serde::Serialize>(v: &T) -> ApiResult {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(ApiError::from)
}

/// The authenticated caller of a request.
pub struct Auth(pub Actor);

impl FromRequestParts<App> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, store: &App) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(token) = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "missing bearer token (Authorization: Bearer <token>)",
            ));
        };
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "http".to_owned(), |c| c.0.ip().to_string());
        let actor = store
            .actor(&Credential::Token(token.to_owned()), &client)
            .await?;
        Ok(Auth(actor))
    }
}

pub fn router(store: Arc<Store>) -> Router {
    let v1 = Router::new()
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi_document()) }),
        )
        .route("/whoami", get(whoami))
        .route("/users", get(user_list).post(user_add))
        .route("/users/{name}/disable", post(user_disable))
        .route("/users/{name}/tokens", post(token_issue))
        .route("/tokens", get(token_list))
        .route("/tokens/{id}/revoke", post(token_revoke))
        .route("/datasets", get(dataset_list).post(dataset_register))
        .route("/datasets/{name}", get(dataset_show))
        .route("/projects", get(project_list).post(project_create))
        .route("/projects/{name}", get(project_show))
        .route("/projects/{name}/irb", post(project_irb))
        .route("/projects/{name}/members", post(project_member_add))
        .route("/projects/{name}/approve", post(project_approve))
        .route("/projects/{name}/grants", post(grant_add))
        .route("/projects/{name}/access", post(access_check))
        .route("/consent/import", post(consent_import))
        .route("/consent/withdraw", post(consent_withdraw))
        .route("/audit/log", get(audit_log))
        .route("/audit/verify", post(audit_verify))
        .route("/audit/checkpoints", post(audit_checkpoint))
        // Governed analysis (issue 6): handlers in query_routes.rs.
        .route("/projects/{name}/queries", post(crate::query_routes::query))
        .route(
            "/projects/{name}/outputs",
            get(crate::query_routes::project_outputs),
        )
        .route(
            "/projects/{name}/disclosure",
            get(crate::query_routes::disclosure_get).put(crate::query_routes::disclosure_set),
        )
        .route("/outputs", get(crate::query_routes::all_outputs))
        .route("/outputs/{id}", get(crate::query_routes::output_show))
        .route(
            "/outputs/{id}/submit",
            post(crate::query_routes::output_submit),
        )
        .route(
            "/outputs/{id}/reviews",
            post(crate::query_routes::output_review),
        )
        .route(
            "/outputs/{id}/release",
            post(crate::query_routes::output_release),
        )
        .route(
            "/outputs/{id}/reject",
            post(crate::query_routes::output_reject),
        );
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .nest("/v1", v1)
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::InvalidInput, "method not allowed on this route")
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                // The matched route, never the raw URI: paths can carry names.
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", MatchedPath::as_str)
                    .to_owned();
                tracing::info_span!("request", method = %req.method(), route)
            }),
        )
        .with_state(store)
}

async fn whoami(Auth(a): Auth) -> ApiResult {
    ok(&a)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserAdd {
    name: String,
    roles: Vec<String>,
    display_name: Option<String>,
}

async fn user_add(
    State(s): State<App>,
    Auth(a): Auth,
    b: Result<Json<UserAdd>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    ok(&s
        .user_add(&a, &b.name, &b.roles.join(","), b.display_name.as_deref())
        .await?)
}

async fn user_list(State(s): State<App>, Auth(a): Auth) -> ApiResult {
    ok(&s.user_list(&a).await?)
}

async fn user_disable(State(s): State<App>, Auth(a): Auth, Path(name): Path<String>) -> ApiResult {
    ok(&s.user_disable(&a, &name).await?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TokenIssue {
    label: Option<String>,
    expires_days: Option<u32>,
}

async fn token_issue(
    State(s): State<App>,
    Auth(a): Auth,
    Path(name): Path<String>,
    b: Result<Json<TokenIssue>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    ok(&s
        .token_issue(&a, &name, b.label.as_deref(), b.expires_days)
        .await?)
}

#[derive(Deserialize)]
struct UserQuery {
    user: Option<String>,
}

async fn token_list(
    State(s): State<App>,
    Auth(a): Auth,
    q: Result<Query<UserQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = q?;
    ok(&s.tokens(&a, q.user.as_deref()).await?)
}

async fn token_revoke(State(s): State<App>, Auth(a): Auth, Path(id): Path<String>) -> ApiResult {
    ok(&s.token_revoke(&a, &id).await?)
}

async fn dataset_list(State(s): State<App>, Auth(a): Auth) -> ApiResult {
    ok(&s.dataset_list(&a).await?)
}

async fn dataset_register(
    State(s): State<App>,
    Auth(a): Auth,
    b: Result<Json<RegisterRequest>, JsonRejection>,
) -> ApiResult {
    ok(&s.dataset_register(&a, &body(b)?).await?)
}

async fn dataset_show(State(s): State<App>, Auth(a): Auth, Path(name): Path<String>) -> ApiResult {
    ok(&s.dataset_show(&a, &name).await?)
}

async fn project_list(State(s): State<App>, Auth(a): Auth) -> ApiResult {
    ok(&s.project_list(&a).await?)
}

async fn project_create(
    State(s): State<App>,
    Auth(a): Auth,
    b: Result<Json<NewProject>, JsonRejection>,
) -> ApiResult {
    ok(&s.project_create(&a, &body(b)?).await?)
}

async fn project_show(State(s): State<App>, Auth(a): Auth, Path(name): Path<String>) -> ApiResult {
    ok(&s.project_show(&a, &name).await?)
}

async fn project_irb(
    State(s): State<App>,
    Auth(a): Auth,
    Path(name): Path<String>,
    b: Result<Json<NewIrb>, JsonRejection>,
) -> ApiResult {
    ok(&s.project_irb(&a, &name, &body(b)?).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberAdd {
    user: String,
    #[serde(default = "default_member")]
    role: String,
}

fn default_member() -> String {
    "member".into()
}

async fn project_member_add(
    State(s): State<App>,
    Auth(a): Auth,
    Path(name): Path<String>,
    b: Result<Json<MemberAdd>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    ok(&s.project_member_add(&a, &name, &b.user, &b.role).await?)
}

async fn project_approve(
    State(s): State<App>,
    Auth(a): Auth,
    Path(name): Path<String>,
) -> ApiResult {
    ok(&s.project_approve(&a, &name).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetAt {
    dataset: String,
    version: Option<i64>,
    #[serde(default = "default_level")]
    level: GrantLevel,
}

fn default_level() -> GrantLevel {
    GrantLevel::Aggregate
}

async fn grant_add(
    State(s): State<App>,
    Auth(a): Auth,
    Path(name): Path<String>,
    b: Result<Json<DatasetAt>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    ok(&s
        .grant_add(&a, &name, &b.dataset, b.version, b.level)
        .await?)
}

async fn access_check(
    State(s): State<App>,
    Auth(a): Auth,
    Path(name): Path<String>,
    b: Result<Json<DatasetAt>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    ok(&s
        .access_check(&a, &name, &b.dataset, b.version, b.level)
        .await?)
}

async fn consent_import(State(s): State<App>, Auth(a): Auth, csv: axum::body::Bytes) -> ApiResult {
    let mut tmp = tempfile::NamedTempFile::new()
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    std::io::Write::write_all(&mut tmp, &csv)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    ok(&s.consent_import(&a, tmp.path()).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Withdraw {
    patient_id: String,
    #[serde(default = "default_purpose")]
    purpose: String,
    effective: Option<String>,
}

fn default_purpose() -> String {
    "*".into()
}

async fn consent_withdraw(
    State(s): State<App>,
    Auth(a): Auth,
    b: Result<Json<Withdraw>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let p = s
        .consent_withdraw(
            &a,
            &SourceId::new(b.patient_id),
            &b.purpose,
            b.effective.as_deref(),
        )
        .await?;
    ok(&json!({"pseudonym": p, "purpose": b.purpose}))
}

#[derive(Deserialize)]
struct LogQuery {
    since: Option<String>,
    actor: Option<String>,
    project: Option<String>,
    limit: Option<i64>,
}

async fn audit_log(
    State(s): State<App>,
    Auth(a): Auth,
    q: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = q?;
    ok(&s
        .audit_log(
            &a,
            &LogFilter {
                since: q.since,
                actor: q.actor,
                project: q.project,
                limit: q.limit,
            },
        )
        .await?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    against: Option<Checkpoint>,
}

async fn audit_verify(
    State(s): State<App>,
    Auth(a): Auth,
    b: Result<Json<VerifyBody>, JsonRejection>,
) -> ApiResult {
    // The body is optional: no JSON body means "no exported checkpoint".
    let b = match b {
        Ok(Json(b)) => b,
        Err(JsonRejection::MissingJsonContentType(_)) => VerifyBody::default(),
        Err(e) => return Err(e.into()),
    };
    ok(&s.audit_verify(&a, b.against.as_ref()).await?)
}

async fn audit_checkpoint(State(s): State<App>, Auth(a): Auth) -> ApiResult {
    ok(&s.audit_checkpoint(&a).await?)
}
