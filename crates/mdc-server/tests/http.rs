//! HTTP API tests: the real router served on port 0 over a temporary data root,

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! driven by a real HTTP client.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use mdc_store::{InitOptions, PseudonymMode, Store};
use mdc_table::arrow_array::{Int64Array, RecordBatch};
use mdc_table::arrow_schema::{DataType, Field, Schema};
use mdc_types::manifest::{
    Manifest, ManifestFile, ManifestKind, ManifestTable, PolicyRef, Rejected, SourceRef,
};
use serde_json::{json, Value};

struct App {
    base: String,
    admin: String,
    store: Arc<Store>,
    dir: tempfile::TempDir,
}

async fn spawn_app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let init = Store::init(
        &root,
        InitOptions {
            pseudonyms: PseudonymMode::Keyed,
            date_shift_range: 30,
            database: None,
            os_user: "tester".into(),
        },
    )
    .await
    .unwrap();
    let store = Arc::new(Store::open(&root).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = mdc_server::router(store.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum_serve(listener, app).await });
    App {
        base: format!("http://{addr}"),
        admin: init.admin_token,
        store,
        dir,
    }
}

async fn axum_serve(
    listener: tokio::net::TcpListener,
    app: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr>,
) {
    axum::serve(listener, app).await.unwrap();
}

/// One request; returns (status, JSON body).
async fn call(
    method: &str,
    url: String,
    token: Option<String>,
    body: Option<Value>,
) -> (u16, Value) {
    let method = method.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut req = ureq::request(&method, &url);
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let status = resp.status();
        let text = resp.into_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
    .await
    .unwrap()
}

async fn raw(
    method: &str,
    url: String,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let (method, token, ct) = (method.to_owned(), token.to_owned(), content_type.to_owned());
    tokio::task::spawn_blocking(move || {
        let req = ureq::request(&method, &url)
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", &ct);
        let resp = match req.send_bytes(&body) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let status = resp.status();
        let text = resp.into_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
    .await
    .unwrap()
}

impl App {
    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        call(
            "GET",
            format!("{}{path}", self.base),
            Some(token.to_owned()),
            None,
        )
        .await
    }
    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        call(
            "POST",
            format!("{}{path}", self.base),
            Some(token.to_owned()),
            Some(body),
        )
        .await
    }
    async fn user_with_token(&self, name: &str, roles: &[&str]) -> String {
        let (s, _) = self
            .post(
                "/v1/users",
                &self.admin,
                json!({"name": name, "roles": roles}),
            )
            .await;
        assert_eq!(s, 200);
        let (s, t) = self
            .post(
                &format!("/v1/users/{name}/tokens"),
                &self.admin,
                json!({"label": "test"}),
            )
            .await;
        assert_eq!(s, 200, "{t}");
        t["secret"].as_str().unwrap().to_owned()
    }
}

fn write_dataset(dir: &Path, key_id: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "person_id",
        DataType::Int64,
        false,
    )]));
    let batch =
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..50))]).unwrap();
    let file = dir.join("person.parquet");
    mdc_table::write_parquet_atomic(&file, &[batch]).unwrap();
    let m = Manifest {
        format_version: 1,
        kind: ManifestKind::Tables,
        tables: vec![ManifestTable {
            name: "person".into(),
            files: vec![ManifestFile {
                path: "person.parquet".into(),
                sha256: mdc_table::sha256_file(&file).unwrap(),
                rows: Some(50),
            }],
            schema: Value::Null,
            patient_column: Some("person_id".into()),
        }],
        files: vec![],
        key_id: key_id.into(),
        pseudonym_mode: "keyed".into(),
        policy: PolicyRef {
            name: "test".into(),
            sha256: "0".repeat(64),
        },
        source: SourceRef {
            description: "test".into(),
            sha256: "0".repeat(64),
        },
        created_at: "2026-01-01T00:00:00Z".into(),
        mdc_version: "0".into(),
        rejected: Rejected::default(),
    };
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string(&m).unwrap(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_openapi_are_served_without_a_token() {
    let app = spawn_app().await;
    let (s, v) = call("GET", format!("{}/healthz", app.base), None, None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("ok")));
    let (s, doc) = call("GET", format!("{}/v1/openapi.json", app.base), None, None).await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for r in mdc_server::ROUTES {
        assert!(
            doc["paths"][r.path][r.method].is_object(),
            "{} {} missing from the document",
            r.method,
            r.path
        );
        if let Some(req) = r.request {
            assert!(
                doc["components"]["schemas"][req].is_object(),
                "schema {req} missing"
            );
        }
        assert!(
            doc["components"]["schemas"][r.response].is_object(),
            "schema {} missing",
            r.response
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_is_really_routed() {
    let app = spawn_app().await;
    for r in mdc_server::ROUTES {
        let path = r
            .path
            .replace("{name}", "nobody")
            .replace("{id}", "00000000");
        let method = r.method.to_uppercase();
        let body = (method == "POST").then(|| json!({}));
        let (status, v) = call(
            &method,
            format!("{}{path}", app.base),
            Some(app.admin.clone()),
            body,
        )
        .await;
        let unrouted = status == 404 && v["message"] == "no such route";
        assert!(
            !unrouted && status != 405,
            "{method} {path} is documented but not routed ({status} {v})"
        );
    }
    let (s, v) = app.get("/v1/nothing-here", &app.admin).await;
    assert_eq!((s, v["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_unknown_and_revoked_tokens_are_refused() {
    let app = spawn_app().await;
    let (s, v) = call("GET", format!("{}/v1/whoami", app.base), None, None).await;
    assert_eq!((s, v["code"].as_str()), (401, Some("unauthenticated")));
    let (s, v) = app.get("/v1/whoami", "mdc_deadbeef_notatoken").await;
    assert_eq!((s, v["code"].as_str()), (401, Some("unauthenticated")));
    let kim = app.user_with_token("kim", &["researcher"]).await;
    let (s, who) = app.get("/v1/whoami", &kim).await;
    assert_eq!((s, who["name"].as_str()), (200, Some("kim")));
    let id = who["via"]
        .as_str()
        .unwrap()
        .trim_start_matches("token:")
        .to_owned();
    let (s, _) = app
        .post(&format!("/v1/tokens/{id}/revoke"), &kim, json!({}))
        .await;
    assert_eq!(s, 200, "a user may revoke their own token");
    let (s, v) = app.get("/v1/datasets", &kim).await;
    assert_eq!((s, v["code"].as_str()), (403, Some("forbidden")));
    assert!(v["message"].as_str().unwrap().contains("revoked"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_bodies_get_400_and_413_never_500() {
    let app = spawn_app().await;
    let url = format!("{}/v1/users", app.base);
    let (s, v) = raw(
        "POST",
        url.clone(),
        &app.admin,
        "application/json",
        b"{\"name\": ".to_vec(),
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_input")), "{v}");
    assert!(!v["message"].as_str().unwrap().is_empty());
    let (s, v) = raw(
        "POST",
        url.clone(),
        &app.admin,
        "application/json",
        br#"{"name": 5, "roles": "x"}"#.to_vec(),
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_input")), "{v}");
    let (s, v) = raw(
        "POST",
        url.clone(),
        &app.admin,
        "text/plain",
        b"hello".to_vec(),
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_input")), "{v}");
    let big = format!(
        "{{\"name\": \"{}\", \"roles\": []}}",
        "x".repeat(mdc_server::BODY_LIMIT + 10)
    );
    let (s, v) = raw(
        "POST",
        url.clone(),
        &app.admin,
        "application/json",
        big.into_bytes(),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (413, Some("payload_too_large")),
        "{v}"
    );
    let (s, v) = app
        .post(
            "/v1/users",
            &app.admin,
            json!({"name": "x", "roles": ["superuser"]}),
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_input")));
    assert!(
        v["message"].as_str().unwrap().contains("roles"),
        "the error names the field: {v}"
    );
    let (s, v) = app.post("/v1/projects/nope/irb", &app.admin, json!({"number": "1", "institution": "i", "approved": "2026-02-30", "expires": "2027-01-01", "scope": "s"})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_input")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_governance_flow_works_over_http_with_the_same_gates_and_audit() {
    let app = spawn_app().await;
    let steward = app.user_with_token("seo", &["steward"]).await;
    let kim = app.user_with_token("kim", &["researcher"]).await;
    let park = app.user_with_token("park", &["researcher"]).await;
    let auditor = app.user_with_token("han", &["auditor"]).await;
    let data = app.dir.path().join("cohort");
    write_dataset(&data, &app.store.key_id());

    let (s, v) = app
        .post(
            "/v1/datasets",
            &kim,
            json!({"name": "cohort", "path": data}),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("forbidden")),
        "researchers cannot register: {v}"
    );
    let (s, v) = app
        .post(
            "/v1/datasets",
            &steward,
            json!({"name": "cohort", "path": data, "use_codes": "HMB,NCU"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["version"].as_i64(), v["rows"].as_i64()),
        (Some(1), Some(50))
    );

    let project = json!({"name": "sepsis", "title": "Sepsis", "purpose": "HMB", "commercial": false, "institution": "SNUH", "country": "KR", "pi": "kim"});
    let (s, v) = app.post("/v1/projects", &kim, project.clone()).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app.post("/v1/projects", &kim, project).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("conflict")));
    let (s, v) = app
        .post("/v1/projects/sepsis/approve", &steward, json!({}))
        .await;
    assert_eq!(s, 409, "approval needs an IRB first: {v}");
    let (s, v) = app.post("/v1/projects/sepsis/irb", &kim, json!({"number": "SNUH-1", "institution": "SNUH IRB", "approved": "2020-01-01", "expires": "2099-12-31", "scope": "retrospective"})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app
        .post("/v1/projects/sepsis/approve", &kim, json!({}))
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("forbidden")),
        "only stewards approve"
    );
    let (s, _) = app
        .post("/v1/projects/sepsis/approve", &steward, json!({}))
        .await;
    assert_eq!(s, 200);
    let (s, g) = app
        .post(
            "/v1/projects/sepsis/grants",
            &steward,
            json!({"dataset": "cohort", "version": 1}),
        )
        .await;
    assert_eq!(s, 200, "{g}");

    let (s, a) = app
        .post(
            "/v1/projects/sepsis/access",
            &kim,
            json!({"dataset": "cohort"}),
        )
        .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["grant"], g["id"]);
    let (s, d) = app
        .post(
            "/v1/projects/sepsis/access",
            &park,
            json!({"dataset": "cohort"}),
        )
        .await;
    assert_eq!((s, d["code"].as_str()), (403, Some("forbidden")));
    assert!(
        d["message"].as_str().unwrap().contains("not a member"),
        "{d}"
    );
    let (s, d) = app
        .post(
            "/v1/projects/sepsis/access",
            &kim,
            json!({"dataset": "cohort", "level": "record"}),
        )
        .await;
    assert_eq!(s, 403, "{d}");

    let (s, r) = raw("POST", format!("{}/v1/consent/import", app.base), &steward, "text/csv", b"patient_id,purpose,status,effective\n12345678,*,opt-out,2026-01-01\nbad,*,opt-out,2026-13-01\n".to_vec()).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["imported"].as_i64(), r["rejected"][0]["line"].as_i64()),
        (Some(1), Some(3))
    );

    let (s, log) = app.get("/v1/audit/log", &kim).await;
    assert_eq!(s, 403, "researchers cannot read the audit log: {log}");
    let (s, log) = app.get("/v1/audit/log?actor=park", &auditor).await;
    assert_eq!(s, 200);
    let entries = log.as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["outcome"] == "denied"
            && e["client"] == "127.0.0.1"
            && e["reason"].as_str().unwrap().contains("not a member")),
        "{log}"
    );
    let allowed = app.get("/v1/audit/log?actor=kim", &auditor).await.1;
    let access = allowed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "data.access.aggregate" && e["outcome"] == "allowed")
        .unwrap()
        .clone();
    assert_eq!(access["grant"], g["id"]);
    assert!(access["irb"].as_i64().is_some());
    let raw_log = serde_json::to_string(&app.get("/v1/audit/log", &auditor).await.1).unwrap();
    assert!(
        !raw_log.contains("12345678"),
        "the record number must never reach the audit log"
    );

    let (s, cp) = app.post("/v1/audit/checkpoints", &auditor, json!({})).await;
    assert_eq!(s, 200, "{cp}");
    let (s, rep) = app
        .post("/v1/audit/verify", &auditor, json!({"against": cp}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (rep["ok"].as_bool(), rep["against_checked"].as_bool()),
        (Some(true), Some(true)),
        "{rep}"
    );
    let mut forged = cp.clone();
    forged["count"] = json!(cp["count"].as_i64().unwrap() + 5);
    let (_, rep) = app
        .post("/v1/audit/verify", &auditor, json!({"against": forged}))
        .await;
    assert_eq!(rep["ok"], false, "a forged checkpoint fails: {rep}");
}
