//! CLI tests: the real `mdc` binary against temporary data roots.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use mdc_table::arrow_array::{Int64Array, RecordBatch, StringArray};
use mdc_table::arrow_schema::{DataType, Field, Schema};
use serde_json::Value;

fn mdc(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mdc"));
    c.env("MDC_ROOT", root)
        .env_remove("MDC_TOKEN")
        .env_remove("MDC_DATABASE")
        .stdin(Stdio::null());
    c
}

fn run(root: &Path, args: &[&str]) -> Output {
    mdc(root).args(args).output().unwrap()
}

fn ok(root: &Path, args: &[&str]) -> String {
    let out = run(root, args);
    assert!(
        out.status.success(),
        "mdc {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(root: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&ok(root, &a)).unwrap()
}

fn fail(root: &Path, args: &[&str], code: i32) -> String {
    let out = run(root, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "mdc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

struct Root {
    dir: tempfile::TempDir,
    admin: String,
}

impl Root {
    fn path(&self) -> PathBuf {
        self.dir.path().join("root")
    }
}

fn init() -> Root {
    let dir = tempfile::tempdir().unwrap();
    let v = json(&dir.path().join("root"), &["init"]);
    Root {
        admin: v["admin_token"].as_str().unwrap().to_owned(),
        dir,
    }
}

/// A manifest-described dataset of `files` Parquet files.
fn dataset(dir: &Path, key_id: &str, files: usize, rows: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut listed = Vec::new();
    for f in 0..files {
        let schema = Arc::new(Schema::new(vec![
            Field::new("person_id", DataType::Int64, false),
            Field::new("note", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows as i64)),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("row {i} of file {f} {}", "x".repeat(i % 50))),
                )),
            ],
        )
        .unwrap();
        let name = format!("part-{f:04}.parquet");
        let path = dir.join(&name);
        mdc_table::write_parquet_atomic(&path, &[batch]).unwrap();
        listed.push(serde_json::json!({"path": name, "sha256": mdc_table::sha256_file(&path).unwrap(), "rows": rows}));
    }
    let m = serde_json::json!({
        "format_version": 1, "kind": "tables",
        "tables": [{"name": "person", "files": listed, "patient_column": "person_id"}],
        "key_id": key_id, "pseudonym_mode": "keyed",
        "policy": {"name": "test", "sha256": "00"}, "source": {"description": "test", "sha256": "00"},
        "created_at": "2026-01-01T00:00:00Z", "mdc_version": "0"
    });
    std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
}

fn key_id(root: &Path) -> String {
    let key = std::fs::read(root.join("keys/pseudonym.key")).unwrap();
    sha2_shim::digest_hex(&key)[..8].to_owned()
}

/// SHA-256 through the binary's own dependency would need sha2 here; use
/// mdc_table's file digest on a temporary copy instead.
mod sha2_shim {
    pub fn digest_hex(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, bytes).unwrap();
        mdc_table::sha256_file(&p).unwrap()
    }
}

#[test]
fn demo_runs_end_to_end_and_verifies_its_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["demo"]);
    assert!(out.contains("ALLOWED kim.researcher"), "{out}");
    assert!(out.matches("DENIED").count() >= 4, "{out}");
    assert!(out.contains("chain verified: true"), "{out}");
    assert!(out.contains("summary:"), "{out}");
    // Differencing control: the total minus one patient is masked.
    assert!(
        out.contains("'all patients but one': [masked] (mask reason: differencing"),
        "{out}"
    );
}

#[test]
fn init_prints_a_token_once_and_never_overwrites_an_existing_root() {
    let r = init();
    let root = r.path();
    assert!(r.admin.starts_with("mdc_"));
    let key_before = std::fs::read(root.join("keys/pseudonym.key")).unwrap();
    let err = fail(&root, &["init"], 1);
    assert!(err.contains("already an mdc data root"), "{err}");
    assert_eq!(
        std::fs::read(root.join("keys/pseudonym.key")).unwrap(),
        key_before
    );
    let db = std::fs::read(root.join("catalog.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&db).contains(&r.admin),
        "tokens are stored only as hashes"
    );
    // The admin token authenticates; the local operator has admin + steward.
    let who = mdc(&root)
        .env("MDC_TOKEN", &r.admin)
        .args(["user", "list", "--json"])
        .output()
        .unwrap();
    assert!(who.status.success());
    let users: Value = serde_json::from_slice(&who.stdout).unwrap();
    let operator = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"].as_str().unwrap().starts_with("local:"))
        .unwrap();
    assert_eq!(operator["roles"], serde_json::json!(["admin", "steward"]));
}

#[test]
fn a_root_whose_catalog_went_missing_is_an_error_not_a_new_empty_catalog() {
    let r = init();
    let root = r.path();
    for f in ["catalog.db", "catalog.db-wal", "catalog.db-shm"] {
        let _ = std::fs::remove_file(root.join(f));
    }
    let err = fail(&root, &["dataset", "list"], 1);
    assert!(err.contains("cannot open sqlite:catalog.db"), "{err}");
    assert!(!root.join("catalog.db").exists());
    let err = fail(&r.dir.path().join("nowhere"), &["dataset", "list"], 1);
    assert!(err.contains("not an mdc data root"), "{err}");
}

#[test]
fn bad_input_names_the_field_exits_1_and_writes_nothing() {
    let r = init();
    let root = r.path();
    let users_before = json(&root, &["user", "list"]);
    let err = fail(
        &root,
        &["user", "add", "kim", "--roles", "researcher,wizard"],
        1,
    );
    assert!(
        err.contains("roles") && err.contains("unknown role"),
        "{err}"
    );
    ok(&root, &["user", "add", "kim", "--roles", "researcher"]);
    let err = fail(&root, &["user", "add", "kim", "--roles", "researcher"], 1);
    assert!(err.contains("already exists"), "{err}");
    let mut users_after = json(&root, &["user", "list"]).as_array().unwrap().clone();
    users_after.retain(|u| u["name"] != "kim");
    assert_eq!(Value::Array(users_after), users_before);

    ok(
        &root,
        &[
            "project",
            "create",
            "--name",
            "p1",
            "--title",
            "T",
            "--purpose",
            "HMB",
            "--commercial",
            "no",
            "--institution",
            "SNUH",
            "--country",
            "KR",
            "--pi",
            "kim",
        ],
    );
    let before = json(&root, &["project", "show", "p1"]);
    for (args, field) in [
        (
            vec!["--approved", "2025-02-30", "--expires", "2026-01-01"],
            "approved",
        ),
        (
            vec!["--approved", "2026-01-01", "--expires", "2025-12-31"],
            "expires",
        ),
        (
            vec!["--approved", "01/02/2026", "--expires", "2027-01-01"],
            "approved",
        ),
    ] {
        let mut a = vec![
            "project",
            "irb",
            "--project",
            "p1",
            "--number",
            "N1",
            "--institution",
            "IRB",
            "--scope",
            "s",
        ];
        a.extend(args);
        let err = fail(&root, &a, 1);
        assert!(err.contains(&format!("invalid {field}")), "{err}");
    }
    assert_eq!(
        json(&root, &["project", "show", "p1"]),
        before,
        "nothing was written"
    );
    let err = fail(
        &root,
        &[
            "project",
            "create",
            "--name",
            "p1",
            "--title",
            "T",
            "--purpose",
            "HMB",
            "--commercial",
            "no",
            "--institution",
            "SNUH",
            "--country",
            "KR",
            "--pi",
            "kim",
        ],
        1,
    );
    assert!(err.contains("already exists"), "{err}");
    let err = fail(
        &root,
        &[
            "project",
            "create",
            "--name",
            "p2",
            "--title",
            "T",
            "--purpose",
            "XYZ",
            "--commercial",
            "no",
            "--institution",
            "SNUH",
            "--country",
            "KR",
            "--pi",
            "kim",
        ],
        1,
    );
    assert!(err.contains("invalid purpose"), "{err}");
    fail(&root, &["user", "add"], 2);
    fail(&root, &["project", "create", "--name", "p3"], 2);

    // Machine-readable errors carry the stable code.
    let out = run(&root, &["user", "add", "x", "--roles", "nope", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "invalid_input");

    // Registration refuses missing or non-Parquet files, and leaves no version.
    let data = r.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("t.parquet"), "not,parquet\n1,2\n").unwrap();
    let err = fail(
        &root,
        &[
            "dataset",
            "register",
            "--name",
            "d",
            "--path",
            data.to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("no manifest.json"), "{err}");
    let err = fail(
        &root,
        &[
            "dataset",
            "register",
            "--name",
            "d",
            "--path",
            data.to_str().unwrap(),
            "--no-manifest",
            "--reason",
            "legacy extract from 2019",
        ],
        1,
    );
    assert!(err.contains("not a readable Parquet file"), "{err}");
    let err = fail(
        &root,
        &[
            "dataset",
            "register",
            "--name",
            "d",
            "--path",
            r.dir.path().join("absent").to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("not a folder"), "{err}");
    assert_eq!(json(&root, &["dataset", "list"]), serde_json::json!([]));
    assert!(!root.join("datasets/d/1").exists());
}

#[test]
fn tokens_act_as_their_user_and_revoked_tokens_are_denied_with_the_reason() {
    let r = init();
    let root = r.path();
    ok(&root, &["user", "add", "kim", "--roles", "researcher"]);
    let t = json(&root, &["token", "issue", "--user", "kim"]);
    let secret = t["secret"].as_str().unwrap();
    let out = mdc(&root)
        .env("MDC_TOKEN", secret)
        .args(["user", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("requires the admin or auditor role"));
    ok(&root, &["token", "revoke", t["id"].as_str().unwrap()]);
    let out = mdc(&root)
        .env("MDC_TOKEN", secret)
        .args(["dataset", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the token was revoked"));
    let log = mdc(&root)
        .env("MDC_TOKEN", &r.admin)
        .args(["audit", "log", "--actor", "kim", "--json"])
        .output()
        .unwrap();
    let log: Value = serde_json::from_slice(&log.stdout).unwrap();
    assert!(log
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["outcome"] == "denied" && e["reason"] == "the token was revoked"));
}

#[test]
fn consent_import_with_bad_rows_exits_3_and_keeps_the_good_ones() {
    let r = init();
    let root = r.path();
    let csv = r.dir.path().join("c.csv");
    std::fs::write(&csv, "patient_id,purpose,status,effective\n00012345,*,opt-out,2026-01-01\n00012346,HMB,sometimes,2026-01-01\n00012347,HMB,opt-out,2026-02-30\n").unwrap();
    let out = run(
        &root,
        &["consent", "import", csv.to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["imported"], 1);
    let lines: Vec<i64> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("00012346"),
        "rejects never echo the record number"
    );
    let db = std::fs::read(root.join("catalog.db")).unwrap();
    let wal = std::fs::read(root.join("catalog.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(8).any(|w| w == b"00012345"),
            "the record number is never stored"
        );
    }
}

/// A root with a few entries and an exported checkpoint of its head.
fn audited_root() -> (Root, PathBuf) {
    let r = init();
    let root = r.path();
    for i in 0..5 {
        ok(
            &root,
            &["user", "add", &format!("u{i}"), "--roles", "researcher"],
        );
    }
    let cp = r.dir.path().join("cp.json");
    ok(
        &root,
        &["audit", "checkpoint", "--export", cp.to_str().unwrap()],
    );
    let out = ok(
        &root,
        &["audit", "verify", "--against", cp.to_str().unwrap()],
    );
    assert!(out.contains("audit log OK"), "{out}");
    (r, cp)
}

#[test]
fn audit_verify_names_an_edited_entry() {
    let (r, _) = audited_root();
    let root = r.path();
    // An administrator with the file drops the guard triggers and edits history.
    sql(
        &root.join("catalog.db"),
        "DROP TRIGGER audit_log_no_update; \
        UPDATE audit_log SET body = replace(body, 'user:u2', 'user:u9') WHERE seq = 7;",
    );
    let out = run(&root, &["audit", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            v["first_problem"]["seq"].as_i64(),
            v["first_problem"]["kind"].as_str()
        ),
        (Some(7), Some("edited")),
        "{v}"
    );
    let human = run(&root, &["audit", "verify"]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("BROKEN at entry 7"));
}

#[test]
fn audit_verify_detects_truncation_only_against_an_exported_checkpoint() {
    let (r, cp) = audited_root();
    let root = r.path();
    sql(
        &root.join("catalog.db"),
        "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_checkpoints; \
        DELETE FROM audit_log WHERE seq >= (SELECT MAX(seq) - 2 FROM audit_log);",
    );
    let out = ok(&root, &["audit", "verify"]);
    assert!(
        out.contains("OK"),
        "without the exported checkpoint a clean truncation looks whole: {out}"
    );
    let out = run(
        &root,
        &[
            "audit",
            "verify",
            "--against",
            cp.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["first_problem"]["kind"], "truncated", "{v}");
}

fn sql(db: &Path, statements: &str) {
    let status = Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()", db.to_str().unwrap(), statements])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn key_backup_restores_the_same_keys_and_refuses_to_overwrite() {
    let r = init();
    let root = r.path();
    let out = r.dir.path().join("keys.backup");
    let o = mdc(&root)
        .env("MDC_BACKUP_PASSPHRASE", "a long enough passphrase")
        .args(["key", "backup", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let key = std::fs::read(root.join("keys/pseudonym.key")).unwrap();
    let sealed = std::fs::read(&out).unwrap();
    assert!(!sealed.windows(16).any(|w| w == &key[..16]));
    let fresh = r.dir.path().join("fresh");
    let o = mdc(&fresh)
        .env("MDC_BACKUP_PASSPHRASE", "a wrong passphrase!!")
        .args(["key", "restore", "--in", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let o = mdc(&fresh)
        .env("MDC_BACKUP_PASSPHRASE", "a long enough passphrase")
        .args(["key", "restore", "--in", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(fresh.join("keys/pseudonym.key")).unwrap(),
        key
    );
    let o = mdc(&root)
        .env("MDC_BACKUP_PASSPHRASE", "a long enough passphrase")
        .args(["key", "restore", "--in", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "restore never overwrites keys");
    assert_eq!(std::fs::read(root.join("keys/pseudonym.key")).unwrap(), key);
}

#[test]
fn eight_concurrent_cli_writers_beside_the_server_leave_the_chain_intact() {
    let r = init();
    let root = r.path();
    let mut server = mdc(&root)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    let before = json(&root, &["audit", "log"]).as_array().unwrap().len();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let root = root.clone();
            std::thread::spawn(move || {
                for i in 0..4 {
                    ok(
                        &root,
                        &["user", "add", &format!("w{w}-{i}"), "--roles", "researcher"],
                    );
                }
            })
        })
        .collect();
    let admin = r.admin.clone();
    let http = std::thread::spawn(move || {
        for i in 0..8 {
            let resp = ureq::post(&format!("{base}/v1/users"))
                .set("Authorization", &format!("Bearer {admin}"))
                .send_json(serde_json::json!({"name": format!("h{i}"), "roles": ["reviewer"]}));
            assert!(resp.is_ok(), "{resp:?}");
        }
    });
    for w in writers {
        w.join().unwrap();
    }
    http.join().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let v = json(&root, &["audit", "verify"]);
    assert_eq!(v["ok"], true, "{v}");
    let users = json(&root, &["user", "list"]).as_array().unwrap().len();
    assert_eq!(users, 2 + 32 + 8);
    // One entry per write, plus the verify's own read was not a write.
    let after = json(&root, &["audit", "log"]).as_array().unwrap().len();
    assert_eq!(after - before, 40);
}

#[test]
fn kill_9_during_register_leaves_the_old_version_or_the_new_never_half() {
    let r = init();
    let root = r.path();
    let data = r.dir.path().join("big");
    dataset(&data, &key_id(&root), 80, 4_000);
    // Time one whole registration, then kill others at points spread across it.
    let t0 = std::time::Instant::now();
    ok(
        &root,
        &[
            "dataset",
            "register",
            "--name",
            "probe",
            "--path",
            data.to_str().unwrap(),
        ],
    );
    let whole = t0.elapsed();
    let mut committed = 0;
    for fraction in [0.05, 0.25, 0.5, 0.75, 0.9, 0.97] {
        let delay = whole.mul_f64(fraction);
        let mut child = mdc(&root)
            .args([
                "dataset",
                "register",
                "--name",
                "big",
                "--path",
                data.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.success() {
            committed += 1;
        }
        let listed = json(&root, &["dataset", "list"]);
        let versions = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "big")
            .map_or(0, |d| d["versions"].as_i64().unwrap());
        // Every catalogued version is a whole folder; no numbered folder exists without its catalog row.
        let numbered: Vec<i64> =
            std::fs::read_dir(root.join("datasets/big")).map_or(vec![], |rd| {
                rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            });
        for v in 1..=versions {
            assert!(
                numbered.contains(&v),
                "catalogued version {v} has no folder"
            );
            let files = std::fs::read_dir(root.join(format!("datasets/big/{v}")))
                .unwrap()
                .count();
            assert_eq!(files, 81, "version {v} is whole");
        }
        assert!(
            numbered.iter().all(|n| *n <= versions + 1),
            "at most one orphan folder, never catalogued"
        );
    }
    // The next registration cleans up and succeeds; the chain is intact.
    let v = json(
        &root,
        &[
            "dataset",
            "register",
            "--name",
            "big",
            "--path",
            data.to_str().unwrap(),
        ],
    );
    assert!(v["version"].as_i64().unwrap() >= 1);
    assert_eq!(json(&root, &["audit", "verify"])["ok"], true);
    eprintln!("whole registration {whole:?}; {committed} of 6 killed runs had already committed");
}
