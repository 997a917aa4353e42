//! Integration tests of the `Store` facade: the data root (DESIGN §3), pseudonyms
//! in consent (§4), governance (§6) and the tamper-evident audit log (§7).
//!
//! Every test builds its own data root in a temporary folder. The PostgreSQL test
//! runs when `MDC_TEST_POSTGRES_URL` is set (a server URL whose user may create
//! databases) and otherwise prints that it was skipped.

// Fixture helpers outside `#[test]` functions panic on failure too, as tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use mdc_deid::Pseudonymizer;
use mdc_store::audit::{self, Checkpoint, LogFilter, VerifyReport};
use mdc_store::{
    Actor, Credential, Gate, InitOptions, InitReport, NewIrb, NewProject, PseudonymMode,
    RegisterRequest, Store, StoreError,
};
use mdc_table::arrow_array::{Int64Array, RecordBatch, StringArray};
use mdc_table::arrow_schema::{DataType, Field, Schema};
use mdc_types::manifest::{
    Manifest, ManifestFile, ManifestKind, ManifestTable, PolicyRef, Rejected, SourceRef,
    MANIFEST_FILE, MANIFEST_FORMAT,
};
use mdc_types::{ErrorCode, GrantLevel, Pseudonym, SourceId};
use serde_json::Value;
use sqlx::Row;
use tempfile::TempDir;

const OS_USER: &str = "tester";
const OPERATOR: &str = "local:tester";

// ---- fixtures ---------------------------------------------------------------

/// Today in Korea Standard Time, as the store reckons IRB and consent dates.
fn today() -> NaiveDate {
    (Utc::now() + Duration::hours(9)).date_naive()
}

fn day(offset: i64) -> String {
    (today() + Duration::days(offset)).to_string()
}

fn opts(mode: PseudonymMode, database: Option<String>) -> InitOptions {
    InitOptions {
        pseudonyms: mode,
        date_shift_range: 180,
        database,
        os_user: OS_USER.into(),
    }
}

async fn init_root(parent: &Path, name: &str, mode: PseudonymMode) -> (PathBuf, InitReport) {
    let root = parent.join(name);
    let report = Store::init(&root, opts(mode, None)).await.unwrap();
    (root, report)
}

/// The local operator `local:tester` (admin + steward since init).
async fn operator(store: &Store) -> Actor {
    store
        .actor(&Credential::Local(OS_USER.into()), "cli")
        .await
        .unwrap()
}

async fn by_token(store: &Store, secret: &str) -> Actor {
    store
        .actor(&Credential::Token(secret.into()), "cli")
        .await
        .unwrap()
}

/// Adds a user and returns an actor for them through a freshly issued token.
async fn user_with_token(
    store: &Store,
    admin: &Actor,
    name: &str,
    roles: &str,
) -> (Actor, String, String) {
    store.user_add(admin, name, roles, None).await.unwrap();
    let t = store
        .token_issue(admin, name, Some("test"), None)
        .await
        .unwrap();
    (by_token(store, &t.secret).await, t.id, t.secret)
}

fn write_table(path: &Path, rows: i64) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("person_id", DataType::Int64, false),
        Field::new("sex", DataType::Utf8, true),
    ]));
    let ids = Int64Array::from_iter_values(0..rows);
    let sex = StringArray::from_iter_values((0..rows).map(|i| if i % 2 == 0 { "F" } else { "M" }));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(sex)]).unwrap();
    mdc_table::write_parquet_atomic(path, &[batch]).unwrap();
}

/// The manifest `mdc deid` would write for `dir/person.parquet`.
fn manifest_for(store: &Store, dir: &Path, rows: i64) -> Manifest {
    let sha256 = mdc_table::sha256_file(&dir.join("person.parquet")).unwrap();
    Manifest {
        format_version: MANIFEST_FORMAT,
        kind: ManifestKind::Tables,
        tables: vec![ManifestTable {
            name: "person".into(),
            files: vec![ManifestFile {
                path: "person.parquet".into(),
                sha256,
                rows: Some(rows as u64),
            }],
            schema: Value::Null,
            patient_column: Some("person_id".into()),
        }],
        files: vec![],
        key_id: store.key_id(),
        pseudonym_mode: store.config().pseudonym_mode.as_str().into(),
        policy: PolicyRef {
            name: "test-policy".into(),
            sha256: "0".repeat(64),
        },
        source: SourceRef {
            description: "synthetic test table".into(),
            sha256: "1".repeat(64),
        },
        created_at: "2026-01-01T00:00:00.000000Z".into(),
        mdc_version: "test".into(),
        rejected: Rejected::default(),
    }
}

fn write_manifest(dir: &Path, m: &Manifest) {
    fs::write(
        dir.join(MANIFEST_FILE),
        serde_json::to_string_pretty(m).unwrap(),
    )
    .unwrap();
}

/// A de-identified folder: one Parquet table and its manifest.
fn deid_folder(store: &Store, parent: &Path, name: &str, rows: i64) -> PathBuf {
    let dir = parent.join(name);
    fs::create_dir_all(&dir).unwrap();
    write_table(&dir.join("person.parquet"), rows);
    write_manifest(&dir, &manifest_for(store, &dir, rows));
    dir
}

fn register(name: &str, path: &Path, uses: Option<&str>) -> RegisterRequest {
    RegisterRequest {
        name: name.into(),
        path: path.to_owned(),
        use_codes: uses.map(str::to_owned),
        opt_in_only: false,
        no_manifest_reason: None,
    }
}

fn project(name: &str, purpose: &str, commercial: bool, pi: &str) -> NewProject {
    NewProject {
        name: name.into(),
        title: format!("Study {name}"),
        purpose: purpose.into(),
        commercial,
        institution: "Seoul National University Hospital".into(),
        country: "KR".into(),
        pi: pi.into(),
    }
}

fn irb(number: &str, approved: &str, expires: &str) -> NewIrb {
    NewIrb {
        number: number.into(),
        institution: "SNUH IRB".into(),
        approved: approved.into(),
        expires: expires.into(),
        scope: "retrospective chart review".into(),
    }
}

/// Creates a project with `pi` as PI and an IRB valid over the given day offsets;
/// approves it when asked. Returns the IRB record's id.
async fn setup_project(
    store: &Store,
    pi: &Actor,
    steward: &Actor,
    name: &str,
    commercial: bool,
    irb_days: (i64, i64),
    approve: bool,
) -> i64 {
    store
        .project_create(pi, &project(name, "HMB", commercial, &pi.name))
        .await
        .unwrap();
    let info = store
        .project_irb(
            pi,
            name,
            &irb(&format!("IRB-{name}"), &day(irb_days.0), &day(irb_days.1)),
        )
        .await
        .unwrap();
    if approve {
        let approved = store.project_approve(steward, name).await.unwrap();
        assert_eq!(approved.status, "approved");
    }
    info.irb.unwrap().id
}

fn expect_err<T: std::fmt::Debug>(
    r: Result<T, StoreError>,
    code: ErrorCode,
    needle: &str,
) -> StoreError {
    let e = r.expect_err("expected an error");
    assert_eq!(e.code(), code, "{e}");
    assert!(
        e.to_string().contains(needle),
        "the message {:?} should mention {needle:?}",
        e.to_string()
    );
    e
}

async fn entries(store: &Store, reader: &Actor) -> Vec<audit::Entry> {
    store
        .audit_log(reader, &LogFilter::default())
        .await
        .unwrap()
}

/// Asserts a store-level denial at `gate`, and that the latest audit entry
/// records it as denied with the same reason.
async fn assert_denied<T: std::fmt::Debug>(
    store: &Store,
    auditor: &Actor,
    r: Result<T, StoreError>,
    gate: Gate,
    who: &str,
) {
    let e = r.expect_err("expected a denial");
    assert_eq!(e.code(), ErrorCode::Forbidden, "{e}");
    let StoreError::Denied(denied) = &e else {
        panic!("expected Denied, got {e:?}")
    };
    assert_eq!(denied.gate, gate, "{}", denied.reason);
    let log = entries(store, auditor).await;
    let last = log.last().unwrap();
    assert_eq!(last.body["outcome"], "denied", "{last:?}");
    assert_eq!(last.body["reason"], denied.reason.as_str(), "{last:?}");
    assert_eq!(last.body["actor"], who, "{last:?}");
    assert_eq!(last.body["grant"], Value::Null);
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Copies a (closed) data root; the copy keeps the key files' modes.
fn copy_root(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().ends_with("-shm") {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_root(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            all_files(&entry.path(), out);
        } else {
            out.push(entry.path());
        }
    }
}

/// Every file under `dir` with its bytes. A vault connection closing on its own
/// thread may still fold its WAL into the main file, so a scan that meets a
/// vanished file starts again.
async fn read_all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    'scan: for _ in 0..50 {
        let mut paths = Vec::new();
        all_files(dir, &mut paths);
        let mut out = Vec::new();
        for p in paths {
            match fs::read(&p) {
                Ok(bytes) => out.push((p, bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue 'scan;
                }
                Err(e) => panic!("{}: {e}", p.display()),
            }
        }
        return out;
    }
    panic!("files under {} kept changing", dir.display());
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

// ---- 1. init ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_creates_the_data_root_layout_and_a_working_admin_token_and_never_runs_twice() {
    let tmp = TempDir::new().unwrap();
    let (root, report) = init_root(tmp.path(), "root", PseudonymMode::Keyed).await;

    assert!(root.join("mdc.toml").is_file());
    assert!(root.join("catalog.db").is_file());
    assert!(root.join("datasets").is_dir());
    assert!(root.join("outputs").is_dir());
    for key in ["keys/pseudonym.key", "keys/audit.ed25519"] {
        let p = root.join(key);
        assert_eq!(fs::read(&p).unwrap().len(), 32, "{key}");
        assert_eq!(mode_of(&p), 0o600, "{key}");
    }
    assert_eq!(mode_of(&root.join("keys")), 0o700);
    assert!(
        !root.join("keys/vault.db").exists(),
        "keyed mode has no vault"
    );
    let toml = fs::read_to_string(root.join("mdc.toml")).unwrap();
    assert!(toml.contains("database = \"sqlite:catalog.db\""), "{toml}");
    assert!(toml.contains("pseudonym_mode = \"keyed\""), "{toml}");
    assert!(
        !toml.contains(&report.admin_token),
        "the token is never written to the config"
    );
    assert_eq!(report.operator, OPERATOR);
    assert_eq!(report.admin_user, "admin");

    let store = Store::open(&root).await.unwrap();
    assert_eq!(report.key_id, store.key_id());
    assert_eq!(store.key_id().len(), 8);

    // The admin token authenticates as `admin` with the admin role, and works.
    let admin = by_token(&store, &report.admin_token).await;
    assert_eq!(admin.name, "admin");
    assert!(admin.via.starts_with("token:"), "{}", admin.via);
    assert!(admin.roles.contains(&mdc_types::Role::Admin));
    assert!(admin.blocked.is_none());
    let users: Vec<String> = store
        .user_list(&admin)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(users, vec!["admin".to_owned(), OPERATOR.to_owned()]);
    // Only the token's hash is stored.
    drop(store);
    let db = fs::read(root.join("catalog.db")).unwrap();
    let wal = fs::read(root.join("catalog.db-wal")).unwrap_or_default();
    assert!(!contains(&db, &report.admin_token) && !contains(&wal, &report.admin_token));

    let store = Store::open(&root).await.unwrap();
    let err = expect_err(
        store
            .actor(&Credential::Token("mdc_0000_nope".into()), "cli")
            .await,
        ErrorCode::Unauthenticated,
        "unknown token",
    );
    assert!(matches!(err, StoreError::Unauthenticated(_)));
    let op = operator(&store).await;
    let verify = store.audit_verify(&op, None).await.unwrap();
    assert!(verify.ok, "{verify:?}");
    let log = entries(&store, &op).await;
    assert_eq!(log[0].body["action"], "root.init");
    assert_eq!(log.last().unwrap().body["action"], "auth.token");
    assert_eq!(log.last().unwrap().body["outcome"], "denied");
    store.close().await;

    // A second init refuses and leaves every key byte and the config as they were.
    let keys_before: Vec<Vec<u8>> = ["keys/pseudonym.key", "keys/audit.ed25519"]
        .iter()
        .map(|k| fs::read(root.join(k)).unwrap())
        .collect();
    expect_err(
        Store::init(&root, opts(PseudonymMode::Vault, None)).await,
        ErrorCode::Conflict,
        "already an mdc data root",
    );
    let keys_after: Vec<Vec<u8>> = ["keys/pseudonym.key", "keys/audit.ed25519"]
        .iter()
        .map(|k| fs::read(root.join(k)).unwrap())
        .collect();
    assert_eq!(keys_before, keys_after);
    assert_eq!(fs::read_to_string(root.join("mdc.toml")).unwrap(), toml);
    assert!(!root.join("keys/vault.db").exists());
    let store = Store::open(&root).await.unwrap();
    let admin = by_token(&store, &report.admin_token).await;
    assert_eq!(store.user_list(&admin).await.unwrap().len(), 2);
    store.close().await;

    // Even without mdc.toml, existing keys are never overwritten.
    fs::remove_file(root.join("mdc.toml")).unwrap();
    expect_err(
        Store::init(&root, opts(PseudonymMode::Keyed, None)).await,
        ErrorCode::Conflict,
        "never overwrites keys",
    );
    assert_eq!(
        fs::read(root.join("keys/pseudonym.key")).unwrap(),
        keys_before[0]
    );
    assert!(
        Store::open(&root).await.is_err(),
        "a folder without mdc.toml is not a root"
    );

    // A bad option leaves nothing behind.
    let bad = tmp.path().join("bad");
    let mut o = opts(PseudonymMode::Keyed, None);
    o.date_shift_range = 0;
    expect_err(
        Store::init(&bad, o).await,
        ErrorCode::InvalidInput,
        "date-shift-range",
    );
    assert!(!bad.exists());

    // Vault mode adds keys/vault.db, also 0600.
    let (vroot, vreport) = init_root(tmp.path(), "vault-root", PseudonymMode::Vault).await;
    assert_eq!(mode_of(&vroot.join("keys/vault.db")), 0o600);
    assert_eq!(vreport.pseudonym_mode, PseudonymMode::Vault);
    assert!(fs::read_to_string(vroot.join("mdc.toml"))
        .unwrap()
        .contains("pseudonym_mode = \"vault\""));
    assert_ne!(
        vreport.key_id, report.key_id,
        "every root gets its own random key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_backup_restores_the_same_keys_and_vault_and_restore_never_overwrites() {
    let tmp = TempDir::new().unwrap();
    let (root, report) = init_root(tmp.path(), "root", PseudonymMode::Vault).await;
    let store = Store::open(&root).await.unwrap();
    let admin = by_token(&store, &report.admin_token).await;
    let patient = SourceId::new("MRN-BACKUP-42".to_owned());
    let pseudonym =
        tokio::task::block_in_place(|| store.pseudonymizer().unwrap().patient(&patient).unwrap());

    let (researcher, _, _) = user_with_token(&store, &admin, "rita", "researcher").await;
    assert_denied(
        &store,
        &admin,
        store
            .key_backup(&researcher, "correct horse battery staple")
            .await,
        Gate::MissingRole,
        "rita",
    )
    .await;
    expect_err(
        store.key_backup(&admin, "short").await,
        ErrorCode::InvalidInput,
        "passphrase",
    );

    let sealed = store
        .key_backup(&admin, "correct horse battery staple")
        .await
        .unwrap();
    let key_bytes = fs::read(root.join("keys/pseudonym.key")).unwrap();
    assert!(
        !sealed.windows(32).any(|w| w == key_bytes.as_slice()),
        "the backup is encrypted"
    );
    let last = entries(&store, &admin).await.pop().unwrap();
    assert_eq!(last.body["action"], "key.backup");
    assert_eq!(last.body["outcome"], "allowed");

    let restored = tmp.path().join("restored");
    expect_err(
        Store::restore_keys(&restored, &sealed, "wrong horse battery staple"),
        ErrorCode::InvalidInput,
        "passphrase",
    );
    let mut names =
        Store::restore_keys(&restored, &sealed, "correct horse battery staple").unwrap();
    names.sort();
    assert_eq!(names, vec!["audit.ed25519", "pseudonym.key", "vault.db"]);
    for k in ["pseudonym.key", "audit.ed25519"] {
        assert_eq!(
            fs::read(restored.join("keys").join(k)).unwrap(),
            fs::read(root.join("keys").join(k)).unwrap(),
            "{k}"
        );
    }
    for k in ["pseudonym.key", "audit.ed25519", "vault.db"] {
        assert_eq!(mode_of(&restored.join("keys").join(k)), 0o600, "{k}");
    }
    // The restored vault maps the patient to the same token.
    let key = mdc_store::keys::load_pseudonym_key(&restored.join("keys/pseudonym.key")).unwrap();
    let vault =
        mdc_store::vault::VaultPseudonymizer::open(&restored.join("keys/vault.db"), key, 180)
            .unwrap();
    assert_eq!(
        tokio::task::block_in_place(|| vault.patient(&patient).unwrap()),
        pseudonym
    );
    drop(vault);

    let before = fs::read(restored.join("keys/pseudonym.key")).unwrap();
    expect_err(
        Store::restore_keys(&restored, &sealed, "correct horse battery staple"),
        ErrorCode::Conflict,
        "never overwrites",
    );
    assert_eq!(
        fs::read(restored.join("keys/pseudonym.key")).unwrap(),
        before
    );
}

// ---- 2. bad input -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_the_field_named_and_nothing_written() {
    let tmp = TempDir::new().unwrap();
    let (root, _) = init_root(tmp.path(), "root", PseudonymMode::Keyed).await;
    let store = Store::open(&root).await.unwrap();
    let op = operator(&store).await;
    store
        .user_add(&op, "alice", "researcher", Some("Alice Kim"))
        .await
        .unwrap();
    store
        .project_create(&op, &project("p1", "HMB", false, "alice"))
        .await
        .unwrap();

    let users_before = serde_json::to_value(store.user_list(&op).await.unwrap()).unwrap();
    let projects_before = serde_json::to_value(store.project_list(&op).await.unwrap()).unwrap();
    let audit_before = entries(&store, &op).await.len();

    let e = expect_err(
        store
            .user_add(&op, "bob", "researcher,superuser", None)
            .await,
        ErrorCode::InvalidInput,
        "roles",
    );
    assert!(
        !e.to_string().contains("superuser"),
        "the message does not echo the value"
    );
    expect_err(
        store.user_add(&op, "bob", "", None).await,
        ErrorCode::InvalidInput,
        "roles",
    );
    expect_err(
        store.user_add(&op, "bad name", "researcher", None).await,
        ErrorCode::InvalidInput,
        "name",
    );
    expect_err(
        store.user_add(&op, "alice", "steward", None).await,
        ErrorCode::Conflict,
        "alice",
    );
    expect_err(
        store
            .project_create(&op, &project("p1", "GRU", false, "alice"))
            .await,
        ErrorCode::Conflict,
        "p1",
    );
    expect_err(
        store
            .project_create(&op, &project("P 2", "GRU", false, "alice"))
            .await,
        ErrorCode::InvalidInput,
        "name",
    );
    expect_err(
        store
            .project_create(&op, &project("p2", "NCU", false, "alice"))
            .await,
        ErrorCode::InvalidInput,
        "purpose",
    );
    expect_err(
        store
            .project_create(&op, &project("p2", "XYZ", false, "alice"))
            .await,
        ErrorCode::InvalidInput,
        "purpose",
    );
    expect_err(
        store
            .project_create(&op, &project("p2", "HMB", false, "nobody"))
            .await,
        ErrorCode::InvalidInput,
        "pi",
    );
    for country in ["KOR", "K1", "", "한국"] {
        let mut p = project("p2", "HMB", false, "alice");
        p.country = country.into();
        expect_err(
            store.project_create(&op, &p).await,
            ErrorCode::InvalidInput,
            "country",
        );
    }
    expect_err(
        store
            .project_irb(&op, "p1", &irb("IRB-1", "2025-02-30", "2026-02-01"))
            .await,
        ErrorCode::InvalidInput,
        "approved",
    );
    expect_err(
        store
            .project_irb(&op, "p1", &irb("IRB-1", "2025-01-01", "2025-13-01"))
            .await,
        ErrorCode::InvalidInput,
        "expires",
    );
    expect_err(
        store
            .project_irb(&op, "p1", &irb("IRB-1", "2025-06-01", "2025-05-31"))
            .await,
        ErrorCode::InvalidInput,
        "expires",
    );
    expect_err(
        store
            .project_irb(&op, "p1", &irb("IRB-1", "2025-06-01", "2025-06-01"))
            .await,
        ErrorCode::InvalidInput,
        "expires",
    );
    expect_err(
        store
            .project_irb(&op, "p1", &irb("", "2025-01-01", "2026-01-01"))
            .await,
        ErrorCode::InvalidInput,
        "number",
    );
    expect_err(
        store
            .project_irb(&op, "nope", &irb("IRB-1", "2025-01-01", "2026-01-01"))
            .await,
        ErrorCode::NotFound,
        "nope",
    );
    expect_err(
        store.project_member_add(&op, "p1", "alice", "owner").await,
        ErrorCode::InvalidInput,
        "role",
    );
    expect_err(
        store.project_member_add(&op, "p1", "alice", "member").await,
        ErrorCode::Conflict,
        "alice",
    );
    expect_err(
        store.project_approve(&op, "p1").await,
        ErrorCode::Conflict,
        "IRB",
    );
    expect_err(
        store.token_issue(&op, "alice", None, Some(0)).await,
        ErrorCode::InvalidInput,
        "expires-days",
    );
    expect_err(
        store
            .grant_add(&op, "p1", "nosuch", None, GrantLevel::Aggregate)
            .await,
        ErrorCode::NotFound,
        "nosuch",
    );

    assert_eq!(
        serde_json::to_value(store.user_list(&op).await.unwrap()).unwrap(),
        users_before
    );
    let projects_after = serde_json::to_value(store.project_list(&op).await.unwrap()).unwrap();
    assert_eq!(projects_after, projects_before);
    assert_eq!(projects_after[0]["irb"], Value::Null, "no IRB was recorded");
    assert_eq!(projects_after[0]["status"], "pending");
    assert_eq!(
        entries(&store, &op).await.len(),
        audit_before,
        "a refused request writes no audit entry"
    );
    assert!(store.audit_verify(&op, None).await.unwrap().ok);
}

// ---- 3. governance ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governance_allows_a_granted_member_and_denies_every_failing_gate_with_an_audited_reason() {
    let tmp = TempDir::new().unwrap();
    let (root, report) = init_root(tmp.path(), "root", PseudonymMode::Keyed).await;
    let store = Store::open(&root).await.unwrap();
    let admin = by_token(&store, &report.admin_token).await;
    let (steward, _, _) = user_with_token(&store, &admin, "sam", "steward").await;
    let (alice, _, _) = user_with_token(&store, &admin, "alice", "researcher").await;
    let (bob, _, bob_secret) = user_with_token(&store, &admin, "bob", "researcher").await;
    let (carol, _, _) = user_with_token(&store, &admin, "carol", "researcher").await;

    // Researchers cannot register; the steward registers cxr twice (v1, v2) and an NCU dataset.
    let src = deid_folder(&store, tmp.path(), "cxr-src", 10);
    assert_denied(
        &store,
        &admin,
        store
            .dataset_register(&alice, &register("cxr", &src, None))
            .await,
        Gate::MissingRole,
        "alice",
    )
    .await;
    let v1 = store
        .dataset_register(&steward, &register("cxr", &src, None))
        .await
        .unwrap();
    let v2 = store
        .dataset_register(&steward, &register("cxr", &src, None))
        .await
        .unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v1.rows, 10);
    assert_eq!(v1.key_id.as_deref(), Some(store.key_id().as_str()));
    assert_eq!(v1.registered_by, "sam");
    let ncu = store
        .dataset_register(&steward, &register("ncu-notes", &src, Some("GRU,NCU")))
        .await
        .unwrap();
    assert_eq!(ncu.use_codes, "GRU,NCU");

    // Alice's project p1: HMB, IRB valid, approved by the steward, granted cxr@1.
    let irb_id = setup_project(&store, &alice, &steward, "p1", false, (-30, 300), true).await;
    assert_denied(
        &store,
        &admin,
        store
            .grant_add(&alice, "p1", "cxr", Some(1), GrantLevel::Aggregate)
            .await,
        Gate::MissingRole,
        "alice",
    )
    .await;
    let grant = store
        .grant_add(&steward, "p1", "cxr", Some(1), GrantLevel::Aggregate)
        .await
        .unwrap();
    assert_eq!((grant.dataset.as_str(), grant.version), ("cxr", 1));
    store
        .project_member_add(&alice, "p1", "bob", "member")
        .await
        .unwrap();
    let shown = store.project_show(&bob, "p1").await.unwrap();
    assert_eq!(shown.approved_by.as_deref(), Some("sam"));
    assert_eq!(shown.members.len(), 2);

    // A member with a grant is allowed; the grant and IRB are in the answer and the audit entry.
    let ok = store
        .access_check(&bob, "p1", "cxr", Some(1), GrantLevel::Aggregate)
        .await
        .unwrap();
    assert_eq!(
        (ok.grant, ok.irb, ok.version),
        (Some(grant.id), Some(irb_id), 1)
    );
    let log = entries(&store, &admin).await;
    let entry = log.iter().find(|e| e.seq == ok.audit_seq).unwrap();
    assert_eq!(entry.body["outcome"], "allowed");
    assert_eq!(entry.body["actor"], "bob");
    assert_eq!(entry.body["action"], "data.access.aggregate");
    assert_eq!(entry.body["project"], "p1");
    assert_eq!(entry.body["resource"], "dataset:cxr@1");
    assert_eq!(entry.body["grant"], grant.id);
    assert_eq!(entry.body["irb"], irb_id);
    assert!(entry.body["via"].as_str().unwrap().starts_with("token:"));
    // Without a version, the granted one is used.
    assert_eq!(
        store
            .access_check(&bob, "p1", "cxr", None, GrantLevel::Aggregate)
            .await
            .unwrap()
            .version,
        1
    );

    // Non-member.
    assert_denied(
        &store,
        &admin,
        store
            .access_check(&carol, "p1", "cxr", Some(1), GrantLevel::Aggregate)
            .await,
        Gate::NotMember,
        "carol",
    )
    .await;
    // Record-level access on an aggregate grant.
    assert_denied(
        &store,
        &admin,
        store
            .access_check(&bob, "p1", "cxr", Some(1), GrantLevel::Record)
            .await,
        Gate::GrantLevel,
        "bob",
    )
    .await;
    // A grant for v1 does not cover v2.
    let e = store
        .access_check(&bob, "p1", "cxr", Some(2), GrantLevel::Aggregate)
        .await;
    assert_denied(&store, &admin, e, Gate::GrantOtherVersion, "bob").await;
    // Unknown project.
    assert_denied(
        &store,
        &admin,
        store
            .access_check(&bob, "ghost", "cxr", Some(1), GrantLevel::Aggregate)
            .await,
        Gate::NoSuchProject,
        "bob",
    )
    .await;

    // Unapproved project (valid IRB, granted).
    setup_project(
        &store,
        &alice,
        &steward,
        "p-pending",
        false,
        (-30, 300),
        false,
    )
    .await;
    store
        .grant_add(&steward, "p-pending", "cxr", Some(1), GrantLevel::Aggregate)
        .await
        .unwrap();
    let r = store
        .access_check(&alice, "p-pending", "cxr", Some(1), GrantLevel::Aggregate)
        .await;
    assert_denied(&store, &admin, r, Gate::ProjectNotApproved, "alice").await;

    // Expired IRB.
    setup_project(
        &store,
        &alice,
        &steward,
        "p-expired",
        false,
        (-400, -10),
        true,
    )
    .await;
    store
        .grant_add(&steward, "p-expired", "cxr", Some(1), GrantLevel::Aggregate)
        .await
        .unwrap();
    let r = store
        .access_check(&alice, "p-expired", "cxr", Some(1), GrantLevel::Aggregate)
        .await;
    assert_denied(&store, &admin, r, Gate::IrbExpired, "alice").await;

    // IRB not yet valid.
    setup_project(&store, &alice, &steward, "p-future", false, (10, 400), true).await;
    store
        .grant_add(&steward, "p-future", "cxr", Some(1), GrantLevel::Aggregate)
        .await
        .unwrap();
    let r = store
        .access_check(&alice, "p-future", "cxr", Some(1), GrantLevel::Aggregate)
        .await;
    assert_denied(&store, &admin, r, Gate::IrbNotYetValid, "alice").await;

    // Approved with a valid IRB, but no grant to the dataset.
    setup_project(
        &store,
        &alice,
        &steward,
        "p-nogrant",
        false,
        (-30, 300),
        true,
    )
    .await;
    let r = store
        .access_check(&alice, "p-nogrant", "cxr", Some(1), GrantLevel::Aggregate)
        .await;
    assert_denied(&store, &admin, r, Gate::NoGrant, "alice").await;

    // DUO: an NCU dataset is denied to a commercial project, allowed to a non-commercial one.
    setup_project(
        &store,
        &alice,
        &steward,
        "p-commercial",
        true,
        (-30, 300),
        true,
    )
    .await;
    store
        .grant_add(
            &steward,
            "p-commercial",
            "ncu-notes",
            None,
            GrantLevel::Aggregate,
        )
        .await
        .unwrap();
    let r = store
        .access_check(
            &alice,
            "p-commercial",
            "ncu-notes",
            Some(1),
            GrantLevel::Aggregate,
        )
        .await;
    assert_denied(&store, &admin, r, Gate::DuoConflict, "alice").await;
    store
        .grant_add(&steward, "p1", "ncu-notes", None, GrantLevel::Aggregate)
        .await
        .unwrap();
    store
        .access_check(&alice, "p1", "ncu-notes", Some(1), GrantLevel::Aggregate)
        .await
        .unwrap();

    // A revoked token: the actor resolves but is blocked.
    let t2 = store
        .token_issue(&alice, "alice", Some("laptop"), Some(30))
        .await
        .unwrap();
    assert!(t2.expires_at.is_some());
    store
        .access_check(
            &by_token(&store, &t2.secret).await,
            "p1",
            "cxr",
            Some(1),
            GrantLevel::Aggregate,
        )
        .await
        .unwrap();
    let revoked = store.token_revoke(&alice, &t2.id).await.unwrap();
    assert!(revoked.revoked);
    expect_err(
        store.token_revoke(&alice, &t2.id).await,
        ErrorCode::Conflict,
        "already revoked",
    );
    let stale = by_token(&store, &t2.secret).await;
    assert_eq!(stale.name, "alice");
    let r = store
        .access_check(&stale, "p1", "cxr", Some(1), GrantLevel::Aggregate)
        .await;
    assert_denied(&store, &admin, r, Gate::TokenRevoked, "alice").await;
    // Alice's other token still works.
    store
        .access_check(&alice, "p1", "cxr", Some(1), GrantLevel::Aggregate)
        .await
        .unwrap();

    // A disabled user: every action is denied, even through a valid token.
    store.user_disable(&admin, "bob").await.unwrap();
    let disabled = by_token(&store, &bob_secret).await;
    let r = store
        .access_check(&disabled, "p1", "cxr", Some(1), GrantLevel::Aggregate)
        .await;
    assert_denied(&store, &admin, r, Gate::Disabled, "bob").await;
    expect_err(
        store.user_disable(&admin, "bob").await,
        ErrorCode::Conflict,
        "already disabled",
    );
    // An OS account nobody registered.
    let stranger = store
        .actor(&Credential::Local("mallory".into()), "cli")
        .await
        .unwrap();
    assert_denied(
        &store,
        &admin,
        store.dataset_list(&stranger).await,
        Gate::UnknownUser,
        "local:mallory",
    )
    .await;

    // Every denial above is in the log with outcome "denied" and a reason, and the chain holds.
    let log = entries(&store, &admin).await;
    let denied: Vec<&audit::Entry> = log
        .iter()
        .filter(|e| e.body["outcome"] == "denied")
        .collect();
    assert_eq!(denied.len(), 14, "{denied:#?}");
    assert!(denied
        .iter()
        .all(|e| e.body["reason"].as_str().is_some_and(|r| !r.is_empty())));
    let verify = store.audit_verify(&admin, None).await.unwrap();
    assert!(verify.ok, "{verify:?}");
    assert_eq!(verify.entries, log.len() as i64);
    assert_eq!(verify.head, log.last().unwrap().hash);
}

/// Spoils a freshly made de-identified folder in one way.
type Break = fn(&Store, &Path);

// ---- 4. registration ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_refuses_folders_that_do_not_match_their_manifest_and_leaves_no_version() {
    let tmp = TempDir::new().unwrap();
    let (root, _) = init_root(tmp.path(), "root", PseudonymMode::Keyed).await;
    let store = Store::open(&root).await.unwrap();
    let op = operator(&store).await;
    let good = deid_folder(&store, tmp.path(), "good", 12);
    let info = store
        .dataset_register(&op, &register("good", &good, None))
        .await
        .unwrap();
    assert!(root.join("datasets/good/1/person.parquet").is_file());
    assert!(root.join("datasets/good/1/manifest.json").is_file());
    assert_eq!(
        mdc_table::sha256_file(&root.join("datasets/good/1/person.parquet")).unwrap(),
        mdc_table::sha256_file(&good.join("person.parquet")).unwrap()
    );
    assert_eq!(
        info.tables[0]["schema"][0]["name"], "person_id",
        "the schema is read from the file: {}",
        info.tables
    );
    let before = serde_json::to_value(store.dataset_list(&op).await.unwrap()).unwrap();

    let check_nothing_written = |label: &str, before: &Value, after: Value| {
        assert_eq!(&after, before, "{label}: the catalog changed");
        assert!(
            !root.join("datasets/bad/1").exists(),
            "{label}: a version folder was left"
        );
        let left: Vec<String> = fs::read_dir(root.join("datasets/bad"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "{label}: left behind {left:?}");
    };

    // Each case: a fresh folder, one defect.
    let cases: Vec<(&str, Break, ErrorCode, &str)> = vec![
        (
            "no manifest",
            |_, d| fs::remove_file(d.join(MANIFEST_FILE)).unwrap(),
            ErrorCode::InvalidInput,
            "manifest.json",
        ),
        (
            "sha256 mismatch",
            |s, d| {
                let mut m = manifest_for(s, d, 12);
                m.tables[0].files[0].sha256 = "ab".repeat(32);
                write_manifest(d, &m);
            },
            ErrorCode::IntegrityFailure,
            "SHA-256",
        ),
        (
            "file changed after the manifest",
            |_, d| write_table(&d.join("person.parquet"), 13),
            ErrorCode::IntegrityFailure,
            "person.parquet",
        ),
        (
            "row-count mismatch",
            |s, d| {
                let mut m = manifest_for(s, d, 12);
                m.tables[0].files[0].rows = Some(11);
                write_manifest(d, &m);
            },
            ErrorCode::IntegrityFailure,
            "rows",
        ),
        (
            "unlisted extra file",
            |_, d| fs::write(d.join("extra.csv"), "mrn,name\n").unwrap(),
            ErrorCode::InvalidInput,
            "extra.csv",
        ),
        (
            "unlisted file in a subfolder",
            |_, d| {
                fs::create_dir_all(d.join("raw")).unwrap();
                fs::write(d.join("raw/notes.txt"), "x").unwrap();
            },
            ErrorCode::InvalidInput,
            "raw/notes.txt",
        ),
        (
            "wrong key_id",
            |s, d| {
                let mut m = manifest_for(s, d, 12);
                m.key_id = "deadbeef".into();
                write_manifest(d, &m);
            },
            ErrorCode::InvalidInput,
            "key_id",
        ),
        (
            "wrong pseudonym mode",
            |s, d| {
                let mut m = manifest_for(s, d, 12);
                m.pseudonym_mode = "vault".into();
                write_manifest(d, &m);
            },
            ErrorCode::InvalidInput,
            "pseudonym_mode",
        ),
        (
            "listed file missing",
            |s, d| {
                let mut m = manifest_for(s, d, 12);
                m.tables[0].files.push(ManifestFile {
                    path: "visit.parquet".into(),
                    sha256: "00".repeat(32),
                    rows: Some(1),
                });
                write_manifest(d, &m);
            },
            ErrorCode::InvalidInput,
            "visit.parquet",
        ),
        (
            "path escaping the folder",
            |s, d| {
                let mut m = manifest_for(s, d, 12);
                m.tables[0].files[0].path = "../good/person.parquet".into();
                write_manifest(d, &m);
            },
            ErrorCode::InvalidInput,
            "relative",
        ),
        (
            "not a manifest",
            |_, d| fs::write(d.join(MANIFEST_FILE), "{\"tables\": 3}").unwrap(),
            ErrorCode::InvalidInput,
            "manifest",
        ),
    ];
    for (i, (label, breaker, code, needle)) in cases.into_iter().enumerate() {
        let dir = deid_folder(&store, tmp.path(), &format!("case-{i}"), 12);
        breaker(&store, &dir);
        expect_err(
            store
                .dataset_register(&op, &register("bad", &dir, None))
                .await,
            code,
            needle,
        );
        check_nothing_written(
            label,
            &before,
            serde_json::to_value(store.dataset_list(&op).await.unwrap()).unwrap(),
        );
    }
    expect_err(
        store.dataset_show(&op, "bad").await,
        ErrorCode::NotFound,
        "bad",
    );

    // Without a manifest, an override needs a real reason, refuses non-Parquet files,
    // and is never allowed for a folder that has a manifest.
    let bare = tmp.path().join("bare");
    fs::create_dir_all(bare.join("sub")).unwrap();
    write_table(&bare.join("person.parquet"), 4);
    write_table(&bare.join("sub/visit.parquet"), 6);
    fs::write(bare.join("readme.txt"), "exported 2019").unwrap();
    let reason = "legacy 2019 export, de-identified before mdc existed";
    let mut req = register("bad", &bare, None);
    req.no_manifest_reason = Some("because".into());
    expect_err(
        store.dataset_register(&op, &req).await,
        ErrorCode::InvalidInput,
        "reason",
    );
    req.no_manifest_reason = Some(reason.into());
    expect_err(
        store.dataset_register(&op, &req).await,
        ErrorCode::InvalidInput,
        "readme.txt",
    );
    check_nothing_written(
        "override with a text file",
        &before,
        serde_json::to_value(store.dataset_list(&op).await.unwrap()).unwrap(),
    );
    let mut with_manifest = register("bad", &good, None);
    with_manifest.no_manifest_reason = Some(reason.into());
    expect_err(
        store.dataset_register(&op, &with_manifest).await,
        ErrorCode::InvalidInput,
        "no-manifest",
    );
    check_nothing_written(
        "override with a manifest",
        &before,
        serde_json::to_value(store.dataset_list(&op).await.unwrap()).unwrap(),
    );

    fs::remove_file(bare.join("readme.txt")).unwrap();
    let legacy = store
        .dataset_register(
            &op,
            &RegisterRequest {
                name: "legacy".into(),
                ..req
            },
        )
        .await
        .unwrap();
    assert_eq!(legacy.override_reason.as_deref(), Some(reason));
    assert_eq!(legacy.key_id, None);
    assert_eq!(legacy.rows, 10);
    assert!(root.join("datasets/legacy/1/sub/visit.parquet").is_file());
    let last = entries(&store, &op).await.pop().unwrap();
    assert_eq!(last.body["action"], "dataset.register");
    assert_eq!(last.body["params"]["no_manifest_reason"], reason);
    let names: Vec<String> = store
        .dataset_list(&op)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, vec!["good", "legacy"]);
}

// ---- 5. consent ---------------------------------------------------------------

async fn consent_scenario(mode: PseudonymMode) {
    let tmp = TempDir::new().unwrap();
    let (root, _) = init_root(tmp.path(), "root", mode).await;
    let store = Store::open(&root).await.unwrap();
    let op = operator(&store).await;
    let src = deid_folder(&store, tmp.path(), "src", 5);
    store
        .dataset_register(&op, &register("cxr", &src, None))
        .await
        .unwrap();

    let (old, later, future) = (day(-60), day(-30), day(30));
    let csv = format!(
        "patient_id,purpose,status,effective\n\
         MRN-PLANT-0001,*,opt-out,{old}\n\
         MRN-PLANT-0002,HMB,opt-in,{later}\n\
         MRN-PLANT-0002,HMB,opt-out,{old}\n\
         MRN-PLANT-0003,HMB,opt-out,2025-02-30\n\
         MRN-PLANT-0004,HMB,maybe,{old}\n\
         MRN-PLANT-0005,HMB,opt-out,{future}\n\
         MRN-PLANT-0006,GRU,opt-out,{old}\n\
         MRN-PLANT-0007,XYZ,opt-out,{old}\n\
         MRN-PLANT-0008,HMB,opt-in,{old}\n\
         mrn-plant-0008 ,hmb,OPT-OUT,{later}\n\
         MRN-PLANT-0009,*,opt-out,{old}\n\
         MRN-PLANT-0009,HMB,opt-in,{later}\n\
         ,HMB,opt-out,{old}\n"
    );
    let csv_path = tmp.path().join("consent.csv");
    fs::write(&csv_path, &csv).unwrap();

    // A researcher may not import consent.
    let researcher = {
        store
            .user_add(&op, "rita", "researcher", None)
            .await
            .unwrap();
        let t = store.token_issue(&op, "rita", None, None).await.unwrap();
        by_token(&store, &t.secret).await
    };
    assert_denied(
        &store,
        &op,
        store.consent_import(&researcher, &csv_path).await,
        Gate::MissingRole,
        "rita",
    )
    .await;

    let report = store.consent_import(&op, &csv_path).await.unwrap();
    let rejected: Vec<(u64, &str)> = report
        .rejected
        .iter()
        .map(|r| (r.line, r.field.as_str()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (5, "effective"),
            (6, "status"),
            (9, "purpose"),
            (14, "patient_id")
        ]
    );
    assert_eq!((report.imported, report.opt_out, report.opt_in), (9, 6, 3));
    let report_json = serde_json::to_string(&report).unwrap();
    assert!(
        !report_json.contains("MRN-PLANT")
            && !report_json.contains("2025-02-30")
            && !report_json.contains("maybe"),
        "{report_json}"
    );

    let pseudonymizer = store.pseudonymizer().unwrap();
    let p = |id: &str| -> Pseudonym {
        tokio::task::block_in_place(|| {
            pseudonymizer
                .patient(&SourceId::new(id.to_owned()))
                .unwrap()
        })
    };
    let set =
        |v: &[&str]| -> std::collections::HashSet<Pseudonym> { v.iter().map(|id| p(id)).collect() };

    let hmb = store
        .excluded_patients("cxr", 1, "HMB", today())
        .await
        .unwrap();
    assert!(!hmb.opt_in_only);
    // 0001: '*' applies to HMB; 0002: the later opt-in wins although listed first;
    // 0005: effective in the future; 0006: GRU only; 0008: later opt-out wins (id normalised);
    // 0009: '*' opt-out overridden for HMB by a later HMB opt-in.
    assert_eq!(hmb.opted_out, set(&["MRN-PLANT-0001", "MRN-PLANT-0008"]));
    assert_eq!(hmb.opted_in, set(&["MRN-PLANT-0002", "MRN-PLANT-0009"]));
    assert!(hmb.excludes(&p("MRN-PLANT-0001")));
    assert!(!hmb.excludes(&p("MRN-PLANT-0005")));
    assert!(!hmb.excludes(&p("MRN-NEVER-SEEN")), "no record: included");
    let gru = store
        .excluded_patients("cxr", 1, "GRU", today())
        .await
        .unwrap();
    assert_eq!(
        gru.opted_out,
        set(&["MRN-PLANT-0001", "MRN-PLANT-0006", "MRN-PLANT-0009"])
    );
    let ds = store
        .excluded_patients("cxr", 1, "DS-C50", today())
        .await
        .unwrap();
    assert_eq!(ds.opted_out, set(&["MRN-PLANT-0001", "MRN-PLANT-0009"]));
    // Once the future record takes effect, it applies.
    let later_view = store
        .excluded_patients("cxr", 1, "HMB", today() + Duration::days(31))
        .await
        .unwrap();
    assert!(later_view.opted_out.contains(&p("MRN-PLANT-0005")));
    // As of a date before any record, nobody is excluded.
    assert!(store
        .excluded_patients("cxr", 1, "HMB", today() - Duration::days(365))
        .await
        .unwrap()
        .opted_out
        .is_empty());
    expect_err(
        store.excluded_patients("cxr", 9, "HMB", today()).await,
        ErrorCode::NotFound,
        "cxr@9",
    );

    // Withdrawal by record number, effective today: it beats the earlier opt-in.
    expect_err(
        store
            .consent_withdraw(&op, &SourceId::new("MRN-PLANT-0002".into()), "XYZ", None)
            .await,
        ErrorCode::InvalidInput,
        "purpose",
    );
    expect_err(
        store
            .consent_withdraw(
                &op,
                &SourceId::new("MRN-PLANT-0002".into()),
                "HMB",
                Some("2025-02-30"),
            )
            .await,
        ErrorCode::InvalidInput,
        "effective",
    );
    let withdrawn = store
        .consent_withdraw(&op, &SourceId::new("MRN-PLANT-0002".into()), "HMB", None)
        .await
        .unwrap();
    assert_eq!(withdrawn, p("MRN-PLANT-0002"));
    let hmb = store
        .excluded_patients("cxr", 1, "HMB", today())
        .await
        .unwrap();
    assert_eq!(
        hmb.opted_out,
        set(&["MRN-PLANT-0001", "MRN-PLANT-0002", "MRN-PLANT-0008"])
    );
    // Importing by pseudonym works too.
    let by_pseudonym = tmp.path().join("by-pseudonym.csv");
    fs::write(&by_pseudonym, format!("pseudonym,purpose,status,effective\n{},*,opt-out,{old}\nnot-a-pseudonym,*,opt-out,{old}\n", p("MRN-PLANT-0010"))).unwrap();
    let r = store.consent_import(&op, &by_pseudonym).await.unwrap();
    assert_eq!((r.imported, r.rejected.len()), (1, 1));
    assert!(store
        .excluded_patients("cxr", 1, "GRU", today())
        .await
        .unwrap()
        .opted_out
        .contains(&p("MRN-PLANT-0010")));
    drop(pseudonymizer);

    // No record number anywhere: not in the audit log, nor in any file of the root.
    let log = serde_json::to_string(&entries(&store, &op).await).unwrap();
    assert!(log.contains("consent.import") && log.contains("consent.withdraw"));
    assert!(
        log.contains(withdrawn.as_str()),
        "withdrawal is audited by pseudonym"
    );
    store.close().await;
    let files = read_all_files(&root).await;
    assert!(files.iter().any(|(f, _)| f.ends_with("catalog.db")));
    for needle in ["MRN-PLANT", "mrn-plant"] {
        assert!(!log.contains(needle), "the audit log holds a record number");
        for (f, bytes) in &files {
            assert!(
                !contains(bytes, needle),
                "{} holds a record number",
                f.display()
            );
        }
    }
    let store = Store::open(&root).await.unwrap();
    assert!(
        store
            .audit_verify(&operator(&store).await, None)
            .await
            .unwrap()
            .ok
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_import_excludes_opted_out_pseudonyms_and_never_stores_record_numbers() {
    consent_scenario(PseudonymMode::Keyed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_in_vault_mode_excludes_vault_pseudonyms_and_never_stores_record_numbers() {
    consent_scenario(PseudonymMode::Vault).await;
}

// ---- 6. audit tamper detection ------------------------------------------------

async fn raw_sqlite(root: &Path) -> sqlx::SqlitePool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(root.join("catalog.db"));
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap()
}

async fn exec(pool: &sqlx::SqlitePool, sql: &str) {
    sqlx::query(sql)
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Opens the copy's catalog as someone with the file would, and drops the
/// append-only triggers (after checking that they do refuse changes).
async fn unlocked(root: &Path) -> sqlx::SqlitePool {
    let pool = raw_sqlite(root).await;
    let refused = sqlx::query("UPDATE audit_log SET actor = 'x' WHERE seq = 1")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    let refused = sqlx::query("DELETE FROM audit_log WHERE seq = 1")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    exec(&pool, "DROP TRIGGER audit_log_no_update").await;
    exec(&pool, "DROP TRIGGER audit_log_no_delete").await;
    pool
}

async fn body_of(pool: &sqlx::SqlitePool, seq: i64) -> (String, String) {
    let row = sqlx::query("SELECT body, hash FROM audit_log WHERE seq = ?")
        .bind(seq)
        .fetch_one(pool)
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

fn with_actor(body: &str, actor: &str) -> String {
    let mut v: Value = serde_json::from_str(body).unwrap();
    v["actor"] = actor.into();
    mdc_store::canonical_json(&v).unwrap()
}

async fn verify_root(root: &Path, against: Option<&Checkpoint>) -> VerifyReport {
    let store = Store::open(root).await.unwrap();
    let report = store
        .audit_verify(&operator(&store).await, against)
        .await
        .unwrap();
    store.close().await;
    report
}

fn assert_problem(r: &VerifyReport, seq: i64, kind: &str) {
    assert!(!r.ok, "{r:?}");
    let p = r.first_problem.as_ref().unwrap();
    assert_eq!((p.seq, p.kind.as_str()), (seq, kind), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_detects_edits_deletions_reordering_insertion_truncation_and_rewrites() {
    let tmp = TempDir::new().unwrap();
    let (root, _) = init_root(tmp.path(), "root", PseudonymMode::Keyed).await;
    let store = Store::open(&root).await.unwrap();
    let op = operator(&store).await;
    for i in 1..=16 {
        store
            .user_add(&op, &format!("u{i:02}"), "researcher", None)
            .await
            .unwrap();
    }
    // Entries: root.init, 2 × user.add, token.issue (init), 16 × user.add, audit.checkpoint.
    let cp = store.audit_checkpoint(&op).await.unwrap();
    let n = cp.count;
    assert_eq!(n, 21);
    let exported = serde_json::to_string_pretty(&cp).unwrap();
    let cp: Checkpoint = serde_json::from_str(&exported).unwrap();
    let clean = store.audit_verify(&op, Some(&cp)).await.unwrap();
    assert!(
        clean.ok && clean.against_checked && clean.entries == n && clean.checkpoints_checked == 1,
        "{clean:?}"
    );
    assert_eq!(entries(&store, &op).await[4].body["actor"], OPERATOR);
    store.close().await;

    let case = |name: &str| {
        let dir = tmp.path().join(name);
        copy_root(&root, &dir);
        dir
    };

    // (a) entry 5's actor edited in both the hashed body and the column.
    let a = case("a");
    let pool = unlocked(&a).await;
    let (body, _) = body_of(&pool, 5).await;
    sqlx::query("UPDATE audit_log SET actor = 'mallory', body = ? WHERE seq = 5")
        .bind(with_actor(&body, "mallory"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_problem(&verify_root(&a, None).await, 5, "edited");

    // (a') only the indexed column edited.
    let a2 = case("a2");
    let pool = unlocked(&a2).await;
    exec(
        &pool,
        "UPDATE audit_log SET outcome = 'denied' WHERE seq = 6",
    )
    .await;
    pool.close().await;
    assert_problem(&verify_root(&a2, None).await, 6, "edited");

    // (b) entry 7 deleted.
    let b = case("b");
    let pool = unlocked(&b).await;
    exec(&pool, "DELETE FROM audit_log WHERE seq = 7").await;
    pool.close().await;
    let r = verify_root(&b, None).await;
    assert_problem(&r, 7, "missing");

    // (c) entries 8 and 9 swapped.
    let c = case("c");
    let pool = unlocked(&c).await;
    exec(&pool, "UPDATE audit_log SET seq = -8 WHERE seq = 8").await;
    exec(&pool, "UPDATE audit_log SET seq = 8 WHERE seq = 9").await;
    exec(&pool, "UPDATE audit_log SET seq = 9 WHERE seq = -8").await;
    pool.close().await;
    assert_problem(&verify_root(&c, None).await, 8, "reordered");

    // (d) a well-formed forged entry inserted at 10, the rest renumbered.
    let d = case("d");
    let pool = unlocked(&d).await;
    exec(
        &pool,
        "UPDATE audit_log SET seq = -(seq + 1) WHERE seq >= 10",
    )
    .await;
    exec(&pool, "UPDATE audit_log SET seq = -seq WHERE seq < 0").await;
    let (body9, hash9) = body_of(&pool, 9).await;
    let mut forged: Value = serde_json::from_str(&body9).unwrap();
    forged["seq"] = 10.into();
    forged["actor"] = "mallory".into();
    forged["action"] = "user.disable".into();
    let forged_body = mdc_store::canonical_json(&forged).unwrap();
    sqlx::query(
        "INSERT INTO audit_log (seq, time, actor, action, resource, project, outcome, body, prev_hash, hash) \
         VALUES (10, ?, 'mallory', 'user.disable', ?, NULL, 'allowed', ?, ?, ?)",
    )
    .bind(forged["time"].as_str().unwrap())
    .bind(forged["resource"].as_str().unwrap())
    .bind(&forged_body)
    .bind(&hash9)
    .bind(audit::chain_hash(&hash9, &forged_body))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    // The forged entry itself links and hashes correctly; the next one gives it away.
    assert_problem(&verify_root(&d, None).await, 11, "reordered");

    // (e) the last 3 entries deleted: the stored checkpoint catches it; if the attacker
    // also deletes the stored checkpoints, only the exported one does.
    let e = case("e");
    let pool = unlocked(&e).await;
    exec(
        &pool,
        &format!("DELETE FROM audit_log WHERE seq > {}", n - 3),
    )
    .await;
    pool.close().await;
    assert_problem(&verify_root(&e, None).await, n - 2, "truncated");
    let pool = raw_sqlite(&e).await;
    exec(&pool, "DELETE FROM audit_checkpoints").await;
    pool.close().await;
    let blind = verify_root(&e, None).await;
    assert!(
        blind.ok && blind.entries == n - 3,
        "the chain alone cannot see truncation: {blind:?}"
    );
    let r = verify_root(&e, Some(&cp)).await;
    assert_problem(&r, n - 2, "truncated");
    assert_eq!(r.entries, n - 3);

    // (f) the chain rewritten from entry 4 with correct hashes, stored checkpoints
    // removed: consistent in itself, caught by the exported checkpoint.
    let f = case("f");
    let pool = unlocked(&f).await;
    let (_, mut prev) = body_of(&pool, 3).await;
    for seq in 4..=n {
        let (body, _) = body_of(&pool, seq).await;
        let body = if seq == 4 {
            with_actor(&body, "mallory")
        } else {
            body
        };
        let hash = audit::chain_hash(&prev, &body);
        sqlx::query("UPDATE audit_log SET body = ?, prev_hash = ?, hash = ?, actor = CASE WHEN seq = 4 THEN 'mallory' ELSE actor END WHERE seq = ?")
            .bind(&body)
            .bind(&prev)
            .bind(&hash)
            .bind(seq)
            .execute(&pool)
            .await
            .unwrap();
        prev = hash;
    }
    pool.close().await;
    let before_delete = verify_root(&f, None).await;
    assert_problem(&before_delete, n, "rewritten");
    let pool = raw_sqlite(&f).await;
    exec(&pool, "DELETE FROM audit_checkpoints").await;
    pool.close().await;
    let blind = verify_root(&f, None).await;
    assert!(
        blind.ok,
        "a fully rewritten chain is self-consistent: {blind:?}"
    );
    assert_problem(&verify_root(&f, Some(&cp)).await, n, "rewritten");

    // An exported checkpoint whose count was edited fails its signature.
    let mut edited: Checkpoint = serde_json::from_str(&exported).unwrap();
    edited.count += 1;
    let r = verify_root(&root, Some(&edited)).await;
    assert!(!r.ok, "{r:?}");
    assert_eq!(
        r.first_problem.as_ref().unwrap().kind,
        "bad-checkpoint",
        "{r:?}"
    );
    assert!(
        r.first_problem
            .as_ref()
            .unwrap()
            .detail
            .contains("signature"),
        "{r:?}"
    );
    let mut edited: Checkpoint = serde_json::from_str(&exported).unwrap();
    edited.head = prev.clone();
    let r = verify_root(&root, Some(&edited)).await;
    assert!(!r.ok, "{r:?}");
    // A checkpoint from another root's key is refused.
    let (other, _) = init_root(tmp.path(), "other", PseudonymMode::Keyed).await;
    let other_store = Store::open(&other).await.unwrap();
    let foreign = other_store
        .audit_checkpoint(&operator(&other_store).await)
        .await
        .unwrap();
    other_store.close().await;
    let r = verify_root(&root, Some(&foreign)).await;
    // A checkpoint signed by another root's key is no evidence about this log.
    assert!(!r.ok, "{r:?}");
    let kind = r.first_problem.as_ref().unwrap().kind.as_str();
    assert_eq!(kind, "bad-checkpoint", "{r:?}");

    // The untouched log still verifies, and keeps extending the exported checkpoint.
    let store = Store::open(&root).await.unwrap();
    let op = operator(&store).await;
    store.user_add(&op, "late", "auditor", None).await.unwrap();
    let r = store.audit_verify(&op, Some(&cp)).await.unwrap();
    assert!(r.ok && r.entries == n + 1, "{r:?}");
}

// ---- 7. concurrency -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_one_root_keep_the_audit_chain_intact() {
    const TASKS: usize = 8;
    const WRITES: usize = 5;
    let tmp = TempDir::new().unwrap();
    let (root, _) = init_root(tmp.path(), "root", PseudonymMode::Keyed).await;
    let store = Store::open(&root).await.unwrap();
    let op = operator(&store).await;
    let before = store.audit_verify(&op, None).await.unwrap().entries;

    let mut handles = Vec::new();
    for t in 0..TASKS {
        let root = root.clone();
        handles.push(tokio::spawn(async move {
            let store = Store::open(&root).await.unwrap();
            let op = operator(&store).await;
            for i in 0..WRITES {
                store
                    .user_add(&op, &format!("w{t}-{i}"), "researcher", None)
                    .await
                    .unwrap();
            }
            store.close().await;
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let report = store.audit_verify(&op, None).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries, before + (TASKS * WRITES) as i64);
    assert_eq!(
        store.user_list(&op).await.unwrap().len(),
        2 + TASKS * WRITES
    );
    let seqs: Vec<i64> = entries(&store, &op).await.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=report.entries).collect::<Vec<_>>());
}

// ---- 8. PostgreSQL ------------------------------------------------------------

/// `url` with its database name replaced, keeping any query string.
fn with_database(url: &str, db: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (url, None),
    };
    let host_start = main.find("://").map_or(0, |i| i + 3);
    let base = match main[host_start..].find('/') {
        Some(i) => &main[..host_start + i],
        None => main,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

#[test]
fn database_urls_are_rewritten_for_the_test_database() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgresql://h:5432", "x"),
        "postgresql://h:5432/x"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catalog_governs_audits_and_detects_tampering() {
    let Some(server) = std::env::var("MDC_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        println!("skipped: MDC_TEST_POSTGRES_URL is not set (set it to a PostgreSQL server URL to run this test)");
        return;
    };
    let name = format!(
        "mdc_test_{}_{}",
        std::process::id(),
        Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .rem_euclid(1_000_000_000_000)
    );
    let admin_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&server)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&admin_pool)
        .await
        .unwrap();
    admin_pool.close().await;
    let _drop_when_done = TestDatabase {
        server: server.clone(),
        name: name.clone(),
    };
    let url = with_database(&server, &name);

    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("root");
    let report = Store::init(&root, opts(PseudonymMode::Keyed, Some(url.clone())))
        .await
        .unwrap();
    assert_eq!(report.database, url);
    assert!(
        !root.join("catalog.db").exists(),
        "the catalog lives in PostgreSQL"
    );
    assert!(fs::read_to_string(root.join("mdc.toml"))
        .unwrap()
        .contains(&name));

    // A second root cannot take over an initialised catalog, and leaves nothing behind.
    let second = tmp.path().join("second");
    expect_err(
        Store::init(&second, opts(PseudonymMode::Keyed, Some(url.clone()))).await,
        ErrorCode::Conflict,
        "already holds",
    );
    assert!(!second.exists());

    let store = Store::open(&root).await.unwrap();
    let admin = by_token(&store, &report.admin_token).await;
    let op = operator(&store).await;
    let (alice, _, _) = user_with_token(&store, &admin, "alice", "researcher").await;
    let (carol, _, _) = user_with_token(&store, &admin, "carol", "researcher").await;
    let src = deid_folder(&store, tmp.path(), "src", 7);
    store
        .dataset_register(&op, &register("cxr", &src, Some("HMB,NCU")))
        .await
        .unwrap();
    let irb_id = setup_project(&store, &alice, &op, "p1", false, (-30, 300), true).await;
    let grant = store
        .grant_add(&op, "p1", "cxr", None, GrantLevel::Aggregate)
        .await
        .unwrap();
    let ok = store
        .access_check(&alice, "p1", "cxr", None, GrantLevel::Aggregate)
        .await
        .unwrap();
    assert_eq!((ok.grant, ok.irb), (Some(grant.id), Some(irb_id)));
    assert_denied(
        &store,
        &admin,
        store
            .access_check(&carol, "p1", "cxr", None, GrantLevel::Aggregate)
            .await,
        Gate::NotMember,
        "carol",
    )
    .await;
    assert_denied(
        &store,
        &admin,
        store
            .access_check(&alice, "p1", "cxr", Some(1), GrantLevel::Record)
            .await,
        Gate::GrantLevel,
        "alice",
    )
    .await;
    let withdrawn = store
        .consent_withdraw(&op, &SourceId::new("MRN-PG-1".into()), "*", Some(&day(-1)))
        .await
        .unwrap();
    assert!(store
        .excluded_patients("cxr", 1, "HMB", today())
        .await
        .unwrap()
        .opted_out
        .contains(&withdrawn));

    // Testbed results (migration 0003) round-trip on PostgreSQL too.
    let run = store
        .bench_record(
            &op,
            mdc_store::NewBenchRun {
                kind: "run".into(),
                scenario: Some("offline".into()),
                model: "ecg_cnn.onnx".into(),
                model_sha256: Some("ab".repeat(32)),
                backend: "cpu".into(),
                valid: false,
                headline: "12.5 samples/s".into(),
                result: serde_json::json!({"scenario": "offline", "valid": false}),
            },
        )
        .await
        .unwrap();
    let listed = store.bench_list(&op).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].valid);
    let shown = store.bench_show(&op, &run.id).await.unwrap();
    assert_eq!(shown.result.unwrap()["id"], Value::String(run.id.clone()));

    // Concurrent writers through separate pools serialise on the write lock.
    let mut handles = Vec::new();
    for t in 0..4 {
        let root = root.clone();
        handles.push(tokio::spawn(async move {
            let s = Store::open(&root).await.unwrap();
            let op = operator(&s).await;
            for i in 0..3 {
                s.user_add(&op, &format!("pg{t}-{i}"), "reviewer", None)
                    .await
                    .unwrap();
            }
            s.close().await;
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let cp = store.audit_checkpoint(&op).await.unwrap();
    let clean = store.audit_verify(&op, Some(&cp)).await.unwrap();
    assert!(clean.ok, "{clean:?}");
    assert_eq!(clean.entries, entries(&store, &op).await.len() as i64);
    assert_eq!(clean.entries, cp.count);

    // Tampering through SQL: the trigger refuses; with triggers disabled, verify catches it.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let refused = sqlx::query("UPDATE audit_log SET actor = 'x' WHERE seq = 5")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    sqlx::raw_sql("ALTER TABLE audit_log DISABLE TRIGGER ALL")
        .execute(&pool)
        .await
        .unwrap();
    let row = sqlx::query("SELECT body, actor FROM audit_log WHERE seq = 5")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (body, actor): (String, String) = (row.get(0), row.get(1));
    sqlx::query("UPDATE audit_log SET actor = 'mallory', body = $1 WHERE seq = 5")
        .bind(with_actor(&body, "mallory"))
        .execute(&pool)
        .await
        .unwrap();
    assert_problem(&store.audit_verify(&op, None).await.unwrap(), 5, "edited");
    // Deleting the tail (and the stored checkpoints) is caught by the exported checkpoint.
    sqlx::query("DELETE FROM audit_log WHERE seq > $1")
        .bind(cp.count - 2)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_checkpoints")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET actor = $1, body = $2 WHERE seq = 5")
        .bind(&actor)
        .bind(&body)
        .execute(&pool)
        .await
        .unwrap();
    assert!(store.audit_verify(&op, None).await.unwrap().ok);
    assert_problem(
        &store.audit_verify(&op, Some(&cp)).await.unwrap(),
        cp.count - 1,
        "truncated",
    );
    pool.close().await;
    store.close().await;
}

/// Drops the per-test database at the end of the test, even when it panicked.
struct TestDatabase {
    server: String,
    name: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop may run inside the test's runtime: do the async work on a thread of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&server)
                    .await?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&pool)
                    .await?;
                pool.close().await;
                Ok::<(), sqlx::Error>(())
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}
