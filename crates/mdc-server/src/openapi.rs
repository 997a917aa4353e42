//! The OpenAPI 3.1 document served at `/v1/openapi.json`.
//!
//! Generated from `ROUTES`, the table of every route with its request and
//! response schema; a test checks that each entry is really routed, so the
//! document cannot silently drift from the router.

use serde_json::{json, Map, Value};

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub request: Option<&'static str>,
    pub response: &'static str,
    pub auth: bool,
}

const fn r(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    request: Option<&'static str>,
    response: &'static str,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        summary,
        request,
        response,
        auth: true,
    }
}

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "get",
        path: "/healthz",
        summary: "Liveness probe",
        request: None,
        response: "Health",
        auth: false,
    },
    RouteDoc {
        method: "get",
        path: "/v1/openapi.json",
        summary: "This document",
        request: None,
        response: "Object",
        auth: false,
    },
    r(
        "get",
        "/v1/whoami",
        "The authenticated caller and roles",
        None,
        "Actor",
    ),
    r(
        "get",
        "/v1/users",
        "List users (admin, auditor)",
        None,
        "UserList",
    ),
    r(
        "post",
        "/v1/users",
        "Add a user with roles (admin)",
        Some("UserAdd"),
        "User",
    ),
    r(
        "post",
        "/v1/users/{name}/disable",
        "Disable a user (admin)",
        None,
        "User",
    ),
    r(
        "post",
        "/v1/users/{name}/tokens",
        "Issue a token, shown once (admin, or the user)",
        Some("TokenIssue"),
        "IssuedToken",
    ),
    r(
        "get",
        "/v1/tokens",
        "List tokens, never secrets (admin; ?user= for one user)",
        None,
        "TokenList",
    ),
    r(
        "post",
        "/v1/tokens/{id}/revoke",
        "Revoke a token (admin, or its owner)",
        None,
        "Token",
    ),
    r("get", "/v1/datasets", "List datasets", None, "DatasetList"),
    r(
        "post",
        "/v1/datasets",
        "Register a de-identified folder as a new version (steward)",
        Some("RegisterRequest"),
        "DatasetVersion",
    ),
    r(
        "get",
        "/v1/datasets/{name}",
        "All versions of a dataset",
        None,
        "DatasetVersionList",
    ),
    r("get", "/v1/projects", "List projects", None, "ProjectList"),
    r(
        "post",
        "/v1/projects",
        "Create a project (researcher, steward, admin)",
        Some("NewProject"),
        "Project",
    ),
    r(
        "get",
        "/v1/projects/{name}",
        "A project with IRB, members, grants",
        None,
        "Project",
    ),
    r(
        "post",
        "/v1/projects/{name}/irb",
        "Record an IRB approval (PI or steward)",
        Some("NewIrb"),
        "Project",
    ),
    r(
        "post",
        "/v1/projects/{name}/members",
        "Add a member (PI or steward)",
        Some("MemberAdd"),
        "Project",
    ),
    r(
        "post",
        "/v1/projects/{name}/approve",
        "Approve a project (steward)",
        None,
        "Project",
    ),
    r(
        "post",
        "/v1/projects/{name}/grants",
        "Grant a dataset version (steward)",
        Some("DatasetAt"),
        "Grant",
    ),
    r(
        "post",
        "/v1/projects/{name}/access",
        "Check and record a data access (member)",
        Some("DatasetAt"),
        "Access",
    ),
    r(
        "post",
        "/v1/consent/import",
        "Import a consent CSV (text/csv body; steward)",
        Some("ConsentCsv"),
        "ConsentImport",
    ),
    r(
        "post",
        "/v1/consent/withdraw",
        "Record a withdrawal (steward)",
        Some("Withdraw"),
        "Withdrawal",
    ),
    r(
        "get",
        "/v1/audit/log",
        "Audit entries (?since=&actor=&project=&limit=; auditor, admin)",
        None,
        "AuditEntryList",
    ),
    r(
        "post",
        "/v1/audit/verify",
        "Verify the chain, optionally against an exported checkpoint",
        Some("VerifyBody"),
        "VerifyReport",
    ),
    r(
        "post",
        "/v1/audit/checkpoints",
        "Sign and store a checkpoint of the head (auditor, admin)",
        None,
        "Checkpoint",
    ),
    // Governed analysis (issue 6).
    r(
        "post",
        "/v1/projects/{name}/queries",
        "Run one governed SQL query; the checked result is held as a pending output",
        Some("QueryBody"),
        "QueryOutcome",
    ),
    r(
        "get",
        "/v1/projects/{name}/outputs",
        "Outputs of a project (?status=; members, reviewers, auditors)",
        None,
        "Object",
    ),
    r(
        "get",
        "/v1/projects/{name}/disclosure",
        "The disclosure-control rules in force for a project",
        None,
        "Object",
    ),
    r(
        "put",
        "/v1/projects/{name}/disclosure",
        "Bind a preset with overrides, and whether releases need two reviews (steward)",
        Some("DisclosureBody"),
        "Object",
    ),
    r(
        "get",
        "/v1/outputs",
        "Outputs of every project (?status=; reviewers, auditors)",
        None,
        "Object",
    ),
    r(
        "get",
        "/v1/outputs/{id}",
        "One output with its checked content (audited)",
        None,
        "Object",
    ),
    r(
        "post",
        "/v1/outputs/{id}/submit",
        "The author submits an output for release review, with context",
        Some("SubmitBody"),
        "Object",
    ),
    r(
        "post",
        "/v1/outputs/{id}/reviews",
        "A reviewer who is not the author approves or asks for changes",
        Some("ReviewBody"),
        "Object",
    ),
    r(
        "post",
        "/v1/outputs/{id}/release",
        "A reviewer releases an approved output (content-addressed by SHA-256)",
        None,
        "Object",
    ),
    r(
        "post",
        "/v1/outputs/{id}/reject",
        "A reviewer rejects an output",
        Some("RejectBody"),
        "Object",
    ),
];

fn obj(props: &[(&str, Value)], required: &[&str]) -> Value {
    let mut p = Map::new();
    for (k, v) in props {
        p.insert((*k).to_owned(), v.clone());
    }
    json!({"type": "object", "properties": p, "required": required})
}

fn s() -> Value {
    json!({"type": "string"})
}

fn i() -> Value {
    json!({"type": "integer"})
}

fn b() -> Value {
    json!({"type": "boolean"})
}

fn list(of: &str) -> Value {
    json!({"type": "array", "items": {"$ref": format!("#/components/schemas/{of}")}})
}

#[allow(clippy::needless_pass_by_value)]
fn nullable(v: Value) -> Value {
    json!({"anyOf": [v, {"type": "null"}]})
}

fn schemas() -> Map<String, Value> {
    let roles = json!({"type": "array", "items": {"type": "string", "enum": ["admin", "steward", "researcher", "reviewer", "auditor"]}});
    let level = json!({"type": "string", "enum": ["aggregate", "record"]});
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    put(
        "Error",
        obj(
            &[
                (
                    "code",
                    json!({"type": "string", "enum": mdc_types::ErrorCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>()}),
                ),
                ("message", s()),
            ],
            &["code", "message"],
        ),
    );
    put("Health", obj(&[("status", s())], &["status"]));
    put("Object", json!({"type": "object"}));
    put("QueryBody", obj(&[("sql", s())], &["sql"]));
    put(
        "QueryOutcome",
        obj(
            &[
                ("output", json!({"type": "object"})),
                ("shape", s()),
                ("columns", json!({"type": "array"})),
                ("rows", json!({"type": "array"})),
                ("masked", json!({"type": "array"})),
                ("checks", json!({"type": "object"})),
                ("elapsed_ms", i()),
            ],
            &["output", "shape", "columns", "rows"],
        ),
    );
    put(
        "DisclosureBody",
        obj(
            &[
                ("preset", s()),
                ("overrides", json!({"type": "object"})),
                ("two_reviews", b()),
            ],
            &[],
        ),
    );
    put("SubmitBody", obj(&[("context", s())], &["context"]));
    put(
        "ReviewBody",
        obj(&[("decision", s()), ("comment", s())], &["decision"]),
    );
    put("RejectBody", obj(&[("reason", s())], &["reason"]));
    put(
        "Actor",
        obj(
            &[
                ("name", s()),
                ("via", s()),
                ("client", s()),
                ("roles", roles.clone()),
                ("blocked", nullable(s())),
            ],
            &["name", "via", "roles"],
        ),
    );
    put(
        "UserAdd",
        obj(
            &[
                ("name", s()),
                ("roles", roles.clone()),
                ("display_name", nullable(s())),
            ],
            &["name", "roles"],
        ),
    );
    put(
        "User",
        obj(
            &[
                ("name", s()),
                ("roles", roles),
                ("display_name", nullable(s())),
                ("disabled", b()),
                ("created_at", s()),
            ],
            &["name", "roles", "disabled"],
        ),
    );
    put("UserList", list("User"));
    put(
        "TokenIssue",
        obj(
            &[("label", nullable(s())), ("expires_days", nullable(i()))],
            &[],
        ),
    );
    put(
        "IssuedToken",
        obj(
            &[
                ("id", s()),
                ("user", s()),
                ("secret", s()),
                ("expires_at", nullable(s())),
            ],
            &["id", "user", "secret"],
        ),
    );
    put(
        "Token",
        obj(
            &[
                ("id", s()),
                ("user", s()),
                ("label", nullable(s())),
                ("created_at", s()),
                ("expires_at", nullable(s())),
                ("revoked", b()),
            ],
            &["id", "user", "revoked"],
        ),
    );
    put("TokenList", list("Token"));
    put(
        "RegisterRequest",
        obj(
            &[
                ("name", s()),
                ("path", s()),
                ("use_codes", nullable(s())),
                ("opt_in_only", b()),
                ("no_manifest_reason", nullable(s())),
            ],
            &["name", "path"],
        ),
    );
    put(
        "DatasetVersion",
        obj(
            &[
                ("dataset", s()),
                ("version", i()),
                ("kind", s()),
                ("path", s()),
                ("key_id", nullable(s())),
                ("policy", nullable(s())),
                ("use_codes", s()),
                ("opt_in_only", b()),
                ("override_reason", nullable(s())),
                ("rows", i()),
                ("bytes", i()),
                ("tables", json!({})),
                ("registered_at", s()),
                ("registered_by", s()),
            ],
            &["dataset", "version", "kind"],
        ),
    );
    put("DatasetVersionList", list("DatasetVersion"));
    put(
        "DatasetList",
        json!({"type": "array", "items": obj(&[("name", s()), ("latest_version", i()), ("versions", i()), ("use_codes", s())], &["name", "latest_version"])}),
    );
    put(
        "NewProject",
        obj(
            &[
                ("name", s()),
                ("title", s()),
                ("purpose", s()),
                ("commercial", b()),
                ("institution", s()),
                ("country", s()),
                ("pi", s()),
            ],
            &[
                "name",
                "title",
                "purpose",
                "commercial",
                "institution",
                "country",
                "pi",
            ],
        ),
    );
    put(
        "NewIrb",
        obj(
            &[
                ("number", s()),
                ("institution", s()),
                ("approved", json!({"type": "string", "format": "date"})),
                ("expires", json!({"type": "string", "format": "date"})),
                ("scope", s()),
            ],
            &["number", "institution", "approved", "expires", "scope"],
        ),
    );
    put(
        "MemberAdd",
        obj(
            &[
                ("user", s()),
                ("role", json!({"type": "string", "enum": ["member", "pi"]})),
            ],
            &["user"],
        ),
    );
    put(
        "Grant",
        obj(
            &[
                ("id", i()),
                ("dataset", s()),
                ("version", i()),
                ("level", level.clone()),
                ("created_at", s()),
            ],
            &["id", "dataset", "version", "level"],
        ),
    );
    put(
        "Project",
        obj(
            &[
                ("name", s()),
                ("title", s()),
                ("purpose", s()),
                ("commercial", b()),
                ("institution", s()),
                ("country", s()),
                ("pi", s()),
                ("status", s()),
                ("approved_by", nullable(s())),
                ("irb", json!({})),
                ("members", json!({"type": "array"})),
                ("grants", list("Grant")),
            ],
            &["name", "status"],
        ),
    );
    put("ProjectList", list("Project"));
    put(
        "DatasetAt",
        obj(
            &[
                ("dataset", s()),
                ("version", nullable(i())),
                ("level", level.clone()),
            ],
            &["dataset"],
        ),
    );
    put(
        "Access",
        obj(
            &[
                ("project", s()),
                ("dataset", s()),
                ("version", i()),
                ("level", level),
                ("grant", nullable(i())),
                ("irb", nullable(i())),
                ("audit_seq", i()),
            ],
            &["project", "dataset", "version"],
        ),
    );
    put(
        "ConsentCsv",
        json!({"type": "string", "description": "CSV with header patient_id|pseudonym,purpose,status,effective"}),
    );
    put(
        "ConsentImport",
        obj(
            &[
                ("imported", i()),
                ("opt_out", i()),
                ("opt_in", i()),
                (
                    "rejected",
                    json!({"type": "array", "items": obj(&[("line", i()), ("field", s()), ("reason", s())], &["line", "field", "reason"])}),
                ),
            ],
            &["imported", "rejected"],
        ),
    );
    put(
        "Withdraw",
        obj(
            &[
                ("patient_id", s()),
                ("purpose", s()),
                ("effective", nullable(s())),
            ],
            &["patient_id"],
        ),
    );
    put(
        "Withdrawal",
        obj(&[("pseudonym", s()), ("purpose", s())], &["pseudonym"]),
    );
    put(
        "AuditEntryList",
        json!({"type": "array", "items": {"type": "object", "required": ["seq", "hash", "time", "actor", "action", "outcome"]}}),
    );
    put(
        "Checkpoint",
        obj(
            &[
                ("format", s()),
                ("count", i()),
                ("head", s()),
                ("time", s()),
                ("public_key", s()),
                ("signature", s()),
            ],
            &["format", "count", "head", "time", "public_key", "signature"],
        ),
    );
    put(
        "VerifyBody",
        obj(
            &[(
                "against",
                json!({"$ref": "#/components/schemas/Checkpoint"}),
            )],
            &[],
        ),
    );
    put(
        "VerifyReport",
        obj(
            &[
                ("ok", b()),
                ("entries", i()),
                ("head", s()),
                ("checkpoints_checked", i()),
                ("against_checked", b()),
                (
                    "first_problem",
                    nullable(obj(
                        &[("seq", i()), ("kind", s()), ("detail", s())],
                        &["seq", "kind", "detail"],
                    )),
                ),
            ],
            &["ok", "entries"],
        ),
    );
    m
}

pub fn openapi_document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let mut op = Map::new();
        op.insert("summary".into(), route.summary.into());
        op.insert(
            "operationId".into(),
            format!(
                "{}{}",
                route.method,
                route.path.replace(['/', '{', '}', '.'], "_")
            )
            .into(),
        );
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op.insert("parameters".into(), params.into());
        }
        if let Some(req) = route.request {
            let media = if req == "ConsentCsv" {
                "text/csv"
            } else {
                "application/json"
            };
            op.insert("requestBody".into(), json!({"required": req != "VerifyBody", "content": {media: {"schema": {"$ref": format!("#/components/schemas/{req}")}}}}));
        }
        let err = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        let mut responses = Map::new();
        responses.insert("200".into(), json!({"description": "success", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", route.response)}}}}));
        for code in mdc_types::ErrorCode::ALL {
            responses.insert(code.http_status().to_string(), err.clone());
        }
        op.insert("responses".into(), responses.into());
        if route.auth {
            op.insert("security".into(), json!([{"bearer": []}]));
        } else {
            op.insert("security".into(), json!([]));
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        if let Some(o) = entry.as_object_mut() {
            o.insert(route.method.to_owned(), Value::Object(op));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "mdc API", "version": env!("CARGO_PKG_VERSION"), "description": "Governed access to a sovereign medical AI data center. Every call is authorised by the same rules as the CLI and recorded in the tamper-evident audit log."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas(), "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    })
}
