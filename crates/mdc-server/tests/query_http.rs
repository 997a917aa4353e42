#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Governed analysis over HTTP and the PostgreSQL wire protocol (issue 6): the
//! real router on port 0, the real pgwire listener on port 0, a real HTTP
//! client, and the real `psql` when it is installed.

use std::net::SocketAddr;
use std::sync::Arc;

use mdc_store::{
    Credential, InitOptions, NewIrb, NewProject, PseudonymMode, RegisterRequest, Store,
};
use mdc_types::GrantLevel;
use serde_json::{json, Value};

struct App {
    base: String,
    pg_port: u16,
    kim: String,
    rev: String,
    auditor: String,
    _dir: tempfile::TempDir,
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
    let admin = store
        .actor(&Credential::Token(init.admin_token), "t")
        .await
        .unwrap();
    let mut tokens = Vec::new();
    for (u, r) in [
        ("steward", "steward"),
        ("kim", "researcher"),
        ("rev", "reviewer"),
        ("aud", "auditor"),
    ] {
        store.user_add(&admin, u, r, None).await.unwrap();
        tokens.push(
            store
                .token_issue(&admin, u, None, Some(30))
                .await
                .unwrap()
                .secret,
        );
    }
    let steward = store
        .actor(&Credential::Token(tokens[0].clone()), "t")
        .await
        .unwrap();
    let kim = store
        .actor(&Credential::Token(tokens[1].clone()), "t")
        .await
        .unwrap();
    let data = dir.path().join("cohort");
    mdc_query::synth::write_omop(
        &data,
        store.pseudonymizer().unwrap().as_ref(),
        "keyed",
        mdc_query::synth::Sizes {
            persons: 200,
            conditions_per_person: 1,
            measurements: 1000,
            rows_per_file: 1000,
        },
    )
    .unwrap();
    store
        .dataset_register(
            &steward,
            &RegisterRequest {
                name: "cohort".into(),
                path: data,
                use_codes: Some("HMB".into()),
                opt_in_only: false,
                no_manifest_reason: None,
            },
        )
        .await
        .unwrap();
    // A second dataset that the project is not granted: nothing about it may
    // show through the catalog.
    let other = dir.path().join("registry");
    mdc_query::synth::write_omop(
        &other,
        store.pseudonymizer().unwrap().as_ref(),
        "keyed",
        mdc_query::synth::Sizes {
            persons: 20,
            conditions_per_person: 1,
            measurements: 20,
            rows_per_file: 100,
        },
    )
    .unwrap();
    store
        .dataset_register(
            &steward,
            &RegisterRequest {
                name: "registry".into(),
                path: other,
                use_codes: Some("HMB".into()),
                opt_in_only: false,
                no_manifest_reason: None,
            },
        )
        .await
        .unwrap();
    let today = chrono::Utc::now().date_naive();
    store
        .project_create(
            &kim,
            &NewProject {
                name: "study".into(),
                title: "HTTP test".into(),
                purpose: "HMB".into(),
                commercial: false,
                institution: "H".into(),
                country: "KR".into(),
                pi: "kim".into(),
            },
        )
        .await
        .unwrap();
    store
        .project_irb(
            &kim,
            "study",
            &NewIrb {
                number: "IRB-1".into(),
                institution: "IRB".into(),
                approved: (today - chrono::Duration::days(1)).to_string(),
                expires: (today + chrono::Duration::days(100)).to_string(),
                scope: "s".into(),
            },
        )
        .await
        .unwrap();
    store.project_approve(&steward, "study").await.unwrap();
    store
        .grant_add(&steward, "study", "cohort", Some(1), GrantLevel::Aggregate)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = mdc_server::router(store.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let pg = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pg_port = pg.local_addr().unwrap().port();
    tokio::spawn(mdc_server::pg::serve(store.clone(), pg));
    App {
        base: format!("http://{addr}"),
        pg_port,
        kim: tokens[1].clone(),
        rev: tokens[2].clone(),
        auditor: tokens[3].clone(),
        _dir: dir,
    }
}

async fn call(method: &str, url: String, token: &str, body: Option<Value>) -> (u16, Value) {
    let method = method.to_owned();
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || {
        let req = ureq::request(&method, &url).set("Authorization", &format!("Bearer {token}"));
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
        (status, resp.into_json().unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_query_submit_review_release_round_trip() {
    let app = spawn_app().await;
    let (s, v) = call(
        "POST",
        format!("{}/v1/projects/study/queries", app.base),
        &app.kim,
        Some(json!({"sql": "SELECT region, COUNT(DISTINCT person_id) AS n FROM cohort_person GROUP BY region ORDER BY region"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["shape"], "aggregate");
    assert!(
        v["rows"].as_array().unwrap().iter().any(|r| r[1].is_null()),
        "a masked small region: {v}"
    );
    let id = v["output"]["id"].as_i64().unwrap();
    // Bad SQL: a clear error with its position and a stable code.
    let (s, e) = call(
        "POST",
        format!("{}/v1/projects/study/queries", app.base),
        &app.kim,
        Some(json!({"sql": "SELECT FROM WHERE"})),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (400, Some("invalid_input")), "{e}");
    let (s, e) = call(
        "POST",
        format!("{}/v1/projects/study/queries", app.base),
        &app.kim,
        Some(json!({"sql": "DELETE FROM cohort_person"})),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (403, Some("forbidden")), "{e}");
    // The reviewer cannot review before submission; the author cannot review at all.
    let (s, _) = call(
        "POST",
        format!("{}/v1/outputs/{id}/reviews", app.base),
        &app.rev,
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(s, 409);
    let (s, v) = call(
        "POST",
        format!("{}/v1/outputs/{id}/submit", app.base),
        &app.kim,
        Some(json!({"context": "patients per region"})),
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("submitted")), "{v}");
    let (s, _) = call(
        "POST",
        format!("{}/v1/outputs/{id}/reviews", app.base),
        &app.kim,
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, v) = call(
        "GET",
        format!("{}/v1/outputs?status=submitted", app.base),
        &app.rev,
        None,
    )
    .await;
    assert_eq!((s, v.as_array().map(Vec::len)), (200, Some(1)));
    let (s, _) = call(
        "POST",
        format!("{}/v1/outputs/{id}/reviews", app.base),
        &app.rev,
        Some(json!({"decision": "approve", "comment": "fine"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = call(
        "POST",
        format!("{}/v1/outputs/{id}/release", app.base),
        &app.rev,
        None,
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("released")), "{v}");
    assert_eq!(v["released_sha256"].as_str().unwrap().len(), 64);
    let (s, v) = call(
        "GET",
        format!("{}/v1/outputs/{id}", app.base),
        &app.kim,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(v["content"].as_str().unwrap().contains("[masked]"));
    let (s, v) = call(
        "GET",
        format!("{}/v1/projects/study/disclosure", app.base),
        &app.kim,
        None,
    )
    .await;
    assert_eq!((s, v["policy"]["name"].as_str()), (200, Some("kr-public")));
    let (_, log) = call(
        "GET",
        format!("{}/v1/audit/log?project=study", app.base),
        &app.auditor,
        None,
    )
    .await;
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "data.access.aggregate",
        "output.create",
        "output.submit",
        "output.review",
        "output.release",
        "query.run",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_researchers_query_at_once_over_http() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = format!("{}/v1/projects/study/queries", app.base);
        let token = app.kim.clone();
        tasks.push(tokio::spawn(async move {
            call("POST", url, &token, Some(json!({"sql": format!("SELECT measurement_concept_id, COUNT(*) AS n FROM cohort.measurement WHERE measurement_year >= {} GROUP BY 1", 2015 + i % 5)}))).await
        }));
    }
    for t in tasks {
        let (s, v) = t.await.unwrap();
        assert_eq!(s, 200, "{v}");
    }
}

fn psql(port: u16, token: &str, sql: &str) -> std::process::Output {
    std::process::Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "kim",
            "-d",
            "study",
            "-c",
            sql,
        ])
        .env("PGPASSWORD", token)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn psql_sees_granted_tables_and_masked_results() {
    if std::process::Command::new("psql")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIPPED: psql is not installed (apt-get install postgresql-client to run this test)"
        );
        return;
    }
    let app = spawn_app().await;
    let run = |sql: &'static str| {
        let (port, kim) = (app.pg_port, app.kim.clone());
        tokio::task::spawn_blocking(move || psql(port, &kim, sql))
    };
    let out = run("SELECT region, COUNT(DISTINCT person_id) AS n FROM cohort_person GROUP BY region ORDER BY region").await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Masked cells come back as NULL (empty in psql's unaligned output).
    assert!(text.lines().any(|l| l.ends_with('|')), "{text}");
    let out = run("SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2")
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cohort|person") && text.contains("public|cohort_measurement"),
        "{text}"
    );
    let out = run("\\dt").await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("cohort_person"));
    // psql's describe commands: the granted relations only, PostgreSQL's type
    // names, stable oids between psql's follow-up queries.
    let ok = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let list = ok(&run("\\d").await.unwrap());
    for rel in [
        "public|cohort_person|table|mdc",
        "public|cohort_measurement|table|mdc",
        "public|cohort_condition_occurrence|table|mdc",
    ] {
        assert!(list.lines().any(|l| l == rel), "{rel} in:\n{list}");
    }
    assert!(!list.contains("registry"), "{list}");
    let person = ok(&run("\\d cohort.person").await.unwrap());
    assert_eq!(
        person.lines().collect::<Vec<_>>(),
        [
            "person_id|bigint||not null|",
            "year_of_birth|bigint||not null|",
            "sex|text||not null|",
            "region|text||not null|",
            "sepsis|bigint||not null|",
        ],
        "{person}"
    );
    let measurement = ok(&run("\\d+ cohort.measurement").await.unwrap());
    assert!(
        measurement
            .lines()
            .any(|l| l.starts_with("value_as_number|double precision||not null|")),
        "{measurement}"
    );
    let short = ok(&run("\\d cohort_person").await.unwrap());
    assert_eq!(short, person, "the short name is the same table");
    for missing in ["registry.person", "person", "nosuch"] {
        let cmd: &'static str = Box::leak(format!("\\d {missing}").into_boxed_str());
        let out = run(cmd).await.unwrap();
        assert!(out.stdout.is_empty(), "{missing}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains(&format!("Did not find any relation named \"{missing}\"")),
            "{missing}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let schemas = ok(&run("\\dn").await.unwrap());
    assert_eq!(
        schemas.lines().collect::<Vec<_>>(),
        ["cohort|mdc", "public|mdc"],
        "{schemas}"
    );
    let tables = ok(&run("\\dt cohort.*").await.unwrap());
    assert!(
        tables.lines().any(|l| l == "cohort|person|table|mdc"),
        "{tables}"
    );
    assert!(ok(&run("\\dt+").await.unwrap()).contains("cohort_person|table|mdc|permanent|heap"));
    // Row-level results and writes are refused with a message psql shows.
    let out = run("SELECT * FROM cohort_person").await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("row-level results are refused"));
    let out = run("DROP TABLE cohort_person").await.unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("only SELECT"));
    // Catalog-looking text gets the same guard: no COPY out of the zone.
    let target = std::env::temp_dir().join(format!("mdc-copy-{}.csv", app.pg_port));
    let copy = format!(
        "COPY (SELECT * FROM information_schema.tables) TO '{}'",
        target.display()
    );
    let copy: &'static str = Box::leak(copy.into_boxed_str());
    let out = run(copy).await.unwrap();
    assert!(!out.status.success());
    assert!(!target.exists());
    // A wrong password (not a token) is refused.
    let bad = tokio::task::spawn_blocking({
        let port = app.pg_port;
        move || {
            std::process::Command::new("psql")
                .args([
                    "-X",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-U",
                    "kim",
                    "-d",
                    "study",
                    "-c",
                    "SELECT 1",
                ])
                .env("PGPASSWORD", "not-a-token")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!bad.status.success());
    // Same output store: the psql query is a pending output like any other.
    let (s, v) = call(
        "GET",
        format!("{}/v1/projects/study/outputs", app.base),
        &app.kim,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(!v.as_array().unwrap().is_empty());
}

/// psycopg 3 (benches/query/psycopg_check.py), including 20 concurrent
/// pgwire connections. Tests never download: it runs when a Python with
/// psycopg exists at $MDC_TEST_PYTHON or target/venv-query/bin/python.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn psycopg_connects_queries_and_twenty_researchers_at_once() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var("MDC_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join("target/venv-query/bin/python"));
    let has = std::process::Command::new(&python)
        .args(["-c", "import psycopg"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        eprintln!(
            "SKIPPED: no Python with psycopg at {} (see benches/query/psycopg_check.py)",
            python.display()
        );
        return;
    }
    let app = spawn_app().await;
    let script = root.join("benches/query/psycopg_check.py");
    let (port, token) = (app.pg_port.to_string(), app.kim.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args([
                port.as_str(),
                "kim",
                token.as_str(),
                "study",
                "--load",
                "20",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
