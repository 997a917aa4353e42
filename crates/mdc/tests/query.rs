#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mdc query` and `mdc output …` run as the real binary (issue 6): a
//! researcher queries, sees masked cells, submits; a reviewer releases; bad
//! SQL exits 1 with the position; the author cannot review their own output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mdc_store::{
    Credential, InitOptions, NewIrb, NewProject, PseudonymMode, RegisterRequest, Store,
};
use mdc_types::GrantLevel;
use serde_json::Value;

struct Root {
    _dir: tempfile::TempDir,
    path: PathBuf,
    kim: String,
    rev: String,
    steward: String,
}

fn setup() -> Root {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root");
        let init = Store::init(
            &path,
            InitOptions {
                pseudonyms: PseudonymMode::Keyed,
                date_shift_range: 30,
                database: None,
                os_user: "tester".into(),
            },
        )
        .await
        .unwrap();
        let store = Store::open(&path).await.unwrap();
        let admin = store
            .actor(&Credential::Token(init.admin_token), "t")
            .await
            .unwrap();
        let mut t = Vec::new();
        for (u, r) in [
            ("steward", "steward"),
            ("kim", "researcher,reviewer"),
            ("rev", "reviewer"),
        ] {
            store.user_add(&admin, u, r, None).await.unwrap();
            t.push(
                store
                    .token_issue(&admin, u, None, Some(30))
                    .await
                    .unwrap()
                    .secret,
            );
        }
        let steward = store
            .actor(&Credential::Token(t[0].clone()), "t")
            .await
            .unwrap();
        let kim = store
            .actor(&Credential::Token(t[1].clone()), "t")
            .await
            .unwrap();
        let data = dir.path().join("cohort");
        mdc_query::synth::write_omop(
            &data,
            store.pseudonymizer().unwrap().as_ref(),
            "keyed",
            mdc_query::synth::Sizes {
                persons: 300,
                conditions_per_person: 1,
                measurements: 500,
                rows_per_file: 500,
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
        let today = chrono::Utc::now().date_naive();
        store
            .project_create(
                &kim,
                &NewProject {
                    name: "study".into(),
                    title: "CLI".into(),
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
                    number: "I-1".into(),
                    institution: "I".into(),
                    approved: (today - chrono::Duration::days(1)).to_string(),
                    expires: (today + chrono::Duration::days(50)).to_string(),
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
        store.close().await;
        Root {
            _dir: dir,
            path,
            kim: t[1].clone(),
            rev: t[2].clone(),
            steward: t[0].clone(),
        }
    })
}

fn mdc(root: &Path, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mdc"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("MDC_TOKEN", token)
        .env_remove("MDC_SERVER")
        .output()
        .unwrap()
}

fn ok_json(root: &Path, token: &str, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = mdc(root, token, &a);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn researcher_queries_submits_and_a_reviewer_releases_from_the_cli() {
    let r = setup();
    let sql = "SELECT region, COUNT(DISTINCT person_id) AS n FROM cohort.person GROUP BY region ORDER BY region";
    // Human output: a table with [masked] cells and the output id.
    let out = mdc(
        &r.path,
        &r.kim,
        &["query", "--project", "study", "--sql", sql],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with("region") && table.contains("[masked]"),
        "{table}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("mdc output submit"));
    // CSV from a file.
    let q = r.path.parent().unwrap().join("q.sql");
    std::fs::write(&q, sql).unwrap();
    let out = mdc(
        &r.path,
        &r.kim,
        &[
            "query",
            "--project",
            "study",
            "--file",
            q.to_str().unwrap(),
            "--csv",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("region,n\n"));
    // JSON, then the workflow.
    let v = ok_json(
        &r.path,
        &r.kim,
        &["query", "--project", "study", "--sql", sql],
    );
    let id = v["output"]["id"].as_i64().unwrap().to_string();
    assert_eq!(v["output"]["status"], "pending");
    ok_json(
        &r.path,
        &r.kim,
        &[
            "output",
            "submit",
            &id,
            "--context",
            "patients per region, kr-public",
        ],
    );
    let own = mdc(
        &r.path,
        &r.kim,
        &["output", "review", &id, "--decision", "approve"],
    );
    assert_eq!(own.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&own.stderr).contains("own output"));
    ok_json(
        &r.path,
        &r.rev,
        &[
            "output",
            "review",
            &id,
            "--decision",
            "approve",
            "--comment",
            "ok",
        ],
    );
    let rel = ok_json(&r.path, &r.rev, &["output", "release", &id]);
    let sha = rel["released_sha256"].as_str().unwrap();
    let file = r.path.join(rel["released_path"].as_str().unwrap());
    assert!(file.to_string_lossy().contains(sha));
    let list = ok_json(
        &r.path,
        &r.kim,
        &[
            "output",
            "list",
            "--project",
            "study",
            "--status",
            "released",
        ],
    );
    assert_eq!(list.as_array().unwrap().len(), 1);
    let shown = mdc(&r.path, &r.kim, &["output", "show", &id]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("released"));
}

#[test]
fn bad_sql_exits_1_with_the_position_and_nothing_is_held() {
    let r = setup();
    let out = mdc(
        &r.path,
        &r.kim,
        &[
            "--json",
            "query",
            "--project",
            "study",
            "--sql",
            "SELECT region FROM\nnope",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "invalid_input");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("Line: 2"),
        "{v}"
    );
    let out = mdc(
        &r.path,
        &r.kim,
        &[
            "query",
            "--project",
            "study",
            "--sql",
            "UPDATE cohort_person SET sex = 'F'",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only SELECT"));
    let out = mdc(&r.path, &r.kim, &["query", "--project", "study"]);
    assert_eq!(out.status.code(), Some(1));
    let list = ok_json(&r.path, &r.kim, &["output", "list", "--project", "study"]);
    assert!(list.as_array().unwrap().is_empty());
}

#[test]
fn stewards_bind_presets_and_two_review_rules_per_project() {
    let r = setup();
    let v = ok_json(
        &r.path,
        &r.steward,
        &[
            "output",
            "policy",
            "--project",
            "study",
            "--preset",
            "opensafely",
            "--two-reviews",
        ],
    );
    assert_eq!(v["policy"]["name"], "opensafely");
    assert_eq!(v["two_reviews"], true);
    let refused = mdc(
        &r.path,
        &r.kim,
        &["output", "policy", "--project", "study", "--preset", "acro"],
    );
    assert_eq!(refused.status.code(), Some(1));
    let q = ok_json(
        &r.path,
        &r.kim,
        &[
            "query",
            "--project",
            "study",
            "--sql",
            "SELECT sex, COUNT(*) AS n FROM cohort_person GROUP BY sex",
        ],
    );
    for row in q["rows"].as_array().unwrap() {
        assert_eq!(row[1].as_i64().unwrap() % 5, 0, "opensafely rounds to 5");
    }
    assert_eq!(q["output"]["required_reviews"], 2);
}
