#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Governed analysis end to end through the library: SQL over a granted,
//! consent-filtered dataset, disclosure control, pending outputs, and the
//! release workflow with separation of duties (issue 6).

use mdc_query::{Limits, QueryError};
use mdc_store::{
    Actor, Credential, Decision, InitOptions, NewIrb, NewProject, PseudonymMode, RegisterRequest,
    Store, StoreError,
};
use mdc_types::{GrantLevel, SourceId};

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    steward: Actor,
    kim: Actor,
    park: Actor,
    rev1: Actor,
    rev2: Actor,
    auditor: Actor,
    ids: Vec<i64>,
}

async fn user(store: &Store, admin: &Actor, name: &str, roles: &str) -> Actor {
    store.user_add(admin, name, roles, None).await.unwrap();
    let t = store
        .token_issue(admin, name, None, Some(30))
        .await
        .unwrap();
    store
        .actor(&Credential::Token(t.secret), "test")
        .await
        .unwrap()
}

async fn project(store: &Store, steward: &Actor, pi: &Actor, name: &str, level: GrantLevel) {
    let today = chrono::Utc::now().date_naive();
    store
        .project_create(
            pi,
            &NewProject {
                name: name.into(),
                title: "Governed analysis test".into(),
                purpose: "HMB".into(),
                commercial: false,
                institution: "Test Hospital".into(),
                country: "KR".into(),
                pi: pi.name.clone(),
            },
        )
        .await
        .unwrap();
    store
        .project_irb(
            pi,
            name,
            &NewIrb {
                number: format!("IRB-{name}"),
                institution: "Test IRB".into(),
                approved: (today - chrono::Duration::days(5)).to_string(),
                expires: (today + chrono::Duration::days(300)).to_string(),
                scope: "retrospective".into(),
            },
        )
        .await
        .unwrap();
    store.project_approve(steward, name).await.unwrap();
    store
        .grant_add(steward, name, "cohort", Some(1), level)
        .await
        .unwrap();
}

async fn world() -> World {
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
    let store = Store::open(&root).await.unwrap();
    let admin = store
        .actor(&Credential::Token(init.admin_token), "test")
        .await
        .unwrap();
    let steward = user(&store, &admin, "steward", "steward").await;
    let kim = user(&store, &admin, "kim", "researcher").await;
    let park = user(&store, &admin, "park", "researcher,reviewer").await;
    let rev1 = user(&store, &admin, "rev1", "reviewer").await;
    let rev2 = user(&store, &admin, "rev2", "reviewer").await;
    let auditor = user(&store, &admin, "aud", "auditor").await;
    let data = dir.path().join("cohort");
    let ids = mdc_query::synth::write_omop(
        &data,
        store.pseudonymizer().unwrap().as_ref(),
        "keyed",
        mdc_query::synth::Sizes {
            persons: 300,
            conditions_per_person: 2,
            measurements: 3000,
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
    project(&store, &steward, &kim, "study", GrantLevel::Aggregate).await;
    World {
        _dir: dir,
        store,
        steward,
        kim,
        park,
        rev1,
        rev2,
        auditor,
        ids,
    }
}

/// Submission through the query layer, as the CLI and HTTP API do it.
async fn submit(
    w: &World,
    who: &Actor,
    id: i64,
    context: &str,
) -> Result<mdc_store::OutputInfo, QueryError> {
    mdc_query::submit(&w.store, who, id, context, &Limits::default()).await
}

async fn q(
    w: &World,
    who: &Actor,
    project: &str,
    sql: &str,
) -> Result<mdc_query::QueryOutcome, QueryError> {
    mdc_query::run(&w.store, who, project, sql, &Limits::default()).await
}

// Rows hold `Option<Value>` (None is masked); tests read them in place.
#[allow(clippy::ref_option)]
fn int(v: &Option<mdc_query::disclosure::Value>) -> Option<i64> {
    match v {
        Some(mdc_query::disclosure::Value::Int(i)) => Some(*i),
        _ => None,
    }
}

async fn audit_actions(w: &World) -> Vec<(String, String)> {
    w.store
        .audit_log(&w.auditor, &mdc_store::audit::LogFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|e| {
            (
                e.body["action"].as_str().unwrap_or("").to_owned(),
                e.body["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_queries_mask_small_cells_and_are_held_as_pending_outputs() {
    let w = world().await;
    let out = q(
        &w,
        &w.kim,
        "study",
        "SELECT region, sex, COUNT(DISTINCT person_id) AS n FROM cohort.person GROUP BY region, sex ORDER BY region, sex",
    )
    .await
    .unwrap();
    assert_eq!(out.shape, "aggregate");
    assert_eq!(out.output.status, "pending");
    assert_eq!(out.output.policy, "kr-public");
    // The record returned at creation is the one the catalog holds.
    let (held, _) = w.store.output_show(&w.kim, out.output.id).await.unwrap();
    assert_eq!(
        serde_json::to_value(&out.output).unwrap(),
        serde_json::to_value(&held).unwrap()
    );
    // Every visible count is ≥ 5; small ones are masked, with complements.
    let mut masked: i64 = 0;
    for row in &out.rows {
        match int(&row[2]) {
            Some(n) => assert!(n >= 5, "visible small cell {n}"),
            None => masked += 1,
        }
    }
    assert!(
        masked >= 2,
        "the skewed regions should leave small cells: {:?}",
        out.rows
    );
    assert!(out.checks["masks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["reason"] == "below_threshold"));
    // The held file is the masked CSV, nothing more.
    let (info, content) = w.store.output_show(&w.kim, out.output.id).await.unwrap();
    let text = String::from_utf8(content).unwrap();
    assert!(
        text.starts_with("region,sex,n\n") && text.contains("[masked]"),
        "{text}"
    );
    assert_eq!(info.masked_cells, masked);
    let actions = audit_actions(&w).await;
    assert!(actions.contains(&("data.access.aggregate".into(), "allowed".into())));
    assert!(actions.contains(&("output.create".into(), "allowed".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_granted_tables_are_visible_by_their_documented_names() {
    let w = world().await;
    for name in [
        "cohort.person",
        "cohort_person",
        "cohort.measurement",
        "cohort_condition_occurrence",
    ] {
        let out = q(
            &w,
            &w.kim,
            "study",
            &format!("SELECT COUNT(*) AS n FROM {name}"),
        )
        .await;
        assert!(out.is_ok(), "{name}: {:?}", out.err());
    }
    let e = q(&w, &w.kim, "study", "SELECT COUNT(*) FROM other_dataset")
        .await
        .unwrap_err();
    assert!(matches!(e, QueryError::Plan(_)), "{e}");
    assert!(e.to_string().contains("Line: 1"), "{e}");
    // A non-member sees nothing, and the denial is audited by authorize.
    let e = q(&w, &w.park, "study", "SELECT COUNT(*) FROM cohort.person")
        .await
        .unwrap_err();
    assert!(matches!(e, QueryError::Store(StoreError::Denied(_))), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_statements_and_syntax_errors_are_refused_and_audited_as_denied() {
    let w = world().await;
    for (sql, want) in [
        ("DROP TABLE cohort_person", "only SELECT"),
        ("COPY cohort_person TO '/tmp/x'", "only SELECT"),
        ("SELECT 1; DELETE FROM cohort_person", "one query at a time"),
        ("SELEC region FROM cohort_person", "Line: 1"),
    ] {
        let e = q(&w, &w.kim, "study", sql).await.unwrap_err();
        assert!(e.to_string().contains(want), "{sql}: {e}");
    }
    let denied = audit_actions(&w)
        .await
        .into_iter()
        .filter(|(a, o)| a == "query.run" && o == "denied")
        .count();
    assert_eq!(denied, 4);
    assert!(w
        .store
        .output_list(&w.kim, Some("study"), None)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_opt_outs_are_excluded_at_query_time_including_through_joins() {
    let w = world().await;
    let count = |out: &mdc_query::QueryOutcome| int(&out.rows[0][0]).unwrap();
    let before = q(
        &w,
        &w.kim,
        "study",
        "SELECT COUNT(DISTINCT person_id) FROM cohort.person",
    )
    .await
    .unwrap();
    assert_eq!(count(&before), 300);
    for i in [3, 7] {
        w.store
            .consent_withdraw(
                &w.steward,
                &SourceId::new(mdc_query::synth::mrn(i)),
                "*",
                None,
            )
            .await
            .unwrap();
    }
    let after = q(
        &w,
        &w.kim,
        "study",
        "SELECT COUNT(DISTINCT person_id) FROM cohort.person",
    )
    .await
    .unwrap();
    assert_eq!(count(&after), 298);
    let joined = q(
        &w,
        &w.kim,
        "study",
        &format!(
            "SELECT COUNT(*) FROM cohort.measurement m JOIN cohort.person p ON m.person_id = p.person_id WHERE m.person_id IN ({}, {})",
            w.ids[3], w.ids[7]
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        int(&joined.rows[0][0]),
        None,
        "masked: zero rows is below 5"
    );
    let zero = q(
        &w,
        &w.kim,
        "study",
        &format!(
            "SELECT COUNT(*) AS n FROM cohort.measurement WHERE person_id = {}",
            w.ids[3]
        ),
    )
    .await
    .unwrap();
    assert!(zero.checks["masks"].as_array().unwrap().len() == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_results_need_a_record_grant_and_then_pass_k_anonymity() {
    let w = world().await;
    let e = q(
        &w,
        &w.kim,
        "study",
        "SELECT person_id, year_of_birth, sex FROM cohort.person",
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("row-level results are refused"),
        "{e}"
    );
    assert!(audit_actions(&w)
        .await
        .contains(&("data.access.record".into(), "denied".into())));
    // A project with a record grant gets rows, minus small quasi-identifier classes.
    project(&w.store, &w.steward, &w.kim, "records", GrantLevel::Record).await;
    let out = q(
        &w,
        &w.kim,
        "records",
        "SELECT person_id, year_of_birth, sex FROM cohort.person",
    )
    .await
    .unwrap();
    assert_eq!(out.shape, "record");
    let rep = &out.checks["k_anonymity"];
    assert_eq!(
        rep["quasi_identifiers"],
        serde_json::json!(["year_of_birth", "sex"])
    );
    assert_eq!(rep["rows_in"], 300);
    assert_eq!(
        out.rows.len() as u64 + rep["rows_withheld"].as_u64().unwrap(),
        300
    );
    assert!(out.output.needs_review);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_needs_a_reviewer_who_is_not_the_author_and_two_when_required() {
    let w = world().await;
    mdc_query::set_disclosure(
        &w.store,
        &w.steward,
        "study",
        "kr-public",
        &serde_json::json!({}),
        true,
    )
    .await
    .unwrap();
    let out = q(
        &w,
        &w.park,
        "study",
        "SELECT sex, COUNT(DISTINCT person_id) AS n FROM cohort.person GROUP BY sex",
    )
    .await;
    assert!(out.is_err(), "park is not a member");
    w.store
        .project_member_add(&w.kim, "study", "park", "member")
        .await
        .unwrap();
    let out = q(
        &w,
        &w.park,
        "study",
        "SELECT sex, COUNT(DISTINCT person_id) AS n FROM cohort.person GROUP BY sex",
    )
    .await
    .unwrap();
    let id = out.output.id;
    assert_eq!(out.output.required_reviews, 2);
    let (held, _) = w.store.output_show(&w.park, id).await.unwrap();
    assert_eq!(
        serde_json::to_value(&out.output).unwrap(),
        serde_json::to_value(&held).unwrap()
    );
    // Only the author submits; context is required.
    assert!(submit(&w, &w.kim, id, "by sex").await.is_err());
    assert!(submit(&w, &w.park, id, "  ").await.is_err());
    submit(&w, &w.park, id, "Patients by sex, all counts > 100")
        .await
        .unwrap();
    // park is a reviewer too, but never of their own output.
    match w
        .store
        .output_review(&w.park, id, Decision::Approve, None)
        .await
    {
        Err(StoreError::Denied(d)) => assert_eq!(d.gate, mdc_store::Gate::OwnOutput),
        other => panic!("expected separation of duties, got {other:?}"),
    }
    // A researcher without the reviewer role cannot review either.
    assert!(w
        .store
        .output_review(&w.kim, id, Decision::Approve, None)
        .await
        .is_err());
    w.store
        .output_review(&w.rev1, id, Decision::Approve, Some("ok"))
        .await
        .unwrap();
    assert!(
        w.store
            .output_review(&w.rev1, id, Decision::Approve, None)
            .await
            .is_err(),
        "one review per reviewer"
    );
    let e = w.store.output_release(&w.rev1, id).await.unwrap_err();
    assert!(e.to_string().contains("requires 2"), "{e}");
    w.store
        .output_review(&w.rev2, id, Decision::Approve, None)
        .await
        .unwrap();
    assert!(
        w.store.output_release(&w.park, id).await.is_err(),
        "the author never releases"
    );
    let released = w.store.output_release(&w.rev2, id).await.unwrap();
    let sha = released.released_sha256.clone().unwrap();
    let path = w
        .store
        .output_file(released.released_path.as_deref().unwrap());
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(mdc_store::audit::sha256_hex(&[&bytes]), sha);
    assert!(path.ends_with(format!("{sha}.csv")));
    let record = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().contains(".release-"))
        .unwrap();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(record.path()).unwrap()).unwrap();
    assert_eq!(record["rules"]["name"], "kr-public");
    assert_eq!(record["rules"]["version"], mdc_query::RULES_VERSION);
    assert_eq!(record["reviews"].as_array().unwrap().len(), 2);
    // Released is final; the whole story is in the verified audit log.
    assert!(w
        .store
        .output_reject(&w.rev1, id, "too late")
        .await
        .is_err());
    let actions = audit_actions(&w).await;
    for a in [
        "output.submit",
        "output.review",
        "output.release",
        "disclosure.set",
    ] {
        assert!(actions.contains(&(a.into(), "allowed".into())), "{a}");
    }
    assert!(actions.contains(&("output.review".into(), "denied".into())));
    let v = w.store.audit_verify(&w.auditor, None).await.unwrap();
    assert!(v.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_requested_then_resubmitted_and_rejected_outputs_never_leave() {
    let w = world().await;
    let out = q(
        &w,
        &w.kim,
        "study",
        "SELECT sex, COUNT(DISTINCT person_id) AS n FROM cohort.person GROUP BY sex",
    )
    .await
    .unwrap();
    let id = out.output.id;
    submit(&w, &w.kim, id, "by sex").await.unwrap();
    assert!(
        w.store
            .output_review(&w.rev1, id, Decision::Changes, None)
            .await
            .is_err(),
        "say what to change"
    );
    let o = w
        .store
        .output_review(
            &w.rev1,
            id,
            Decision::Changes,
            Some("explain the denominator"),
        )
        .await
        .unwrap();
    assert_eq!(o.status, "changes_requested");
    assert!(w.store.output_release(&w.rev2, id).await.is_err());
    let o = submit(&w, &w.kim, id, "by sex; denominator is all persons")
        .await
        .unwrap();
    assert_eq!((o.status.as_str(), o.round), ("submitted", 2));
    let o = w
        .store
        .output_reject(&w.rev2, id, "not needed outside")
        .await
        .unwrap();
    assert_eq!(o.status, "rejected");
    assert!(o.released_sha256.is_none());
    assert!(w.store.output_release(&w.rev2, id).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differencing_count_all_versus_all_but_one_is_refused() {
    let w = world().await;
    let all = q(
        &w,
        &w.kim,
        "study",
        "SELECT COUNT(DISTINCT person_id) AS n FROM cohort.person",
    )
    .await
    .unwrap();
    assert_eq!(int(&all.rows[0][0]), Some(300));
    assert_eq!(all.checks["person_sets"], "deferred");
    submit(&w, &w.kim, all.output.id, "all patients")
        .await
        .unwrap();
    w.store
        .output_review(&w.rev1, all.output.id, Decision::Approve, None)
        .await
        .unwrap();
    w.store
        .output_release(&w.rev1, all.output.id)
        .await
        .unwrap();
    // "All except one condition" differs by one patient: refused.
    let but_one = q(
        &w,
        &w.kim,
        "study",
        &format!(
            "SELECT COUNT(DISTINCT person_id) AS n FROM cohort.person WHERE person_id <> {}",
            w.ids[0]
        ),
    )
    .await
    .unwrap();
    assert_eq!(int(&but_one.rows[0][0]), None);
    assert_eq!(but_one.checks["differencing"][0]["patients_differing"], 1);
    assert_eq!(but_one.checks["masks"][0]["reason"], "differencing");
    // A cell far from every released one is fine.
    let half = q(
        &w,
        &w.kim,
        "study",
        "SELECT COUNT(DISTINCT person_id) AS n FROM cohort.person WHERE sex = 'F'",
    )
    .await
    .unwrap();
    assert_eq!(int(&half.rows[0][0]), Some(150));
    // Sets are built at query time only for cells whose size is within the
    // threshold of a released one: 150 is far from 300, 299 was not.
    assert_eq!(half.checks["person_sets"], "deferred");
    assert_eq!(but_one.checks["person_sets"], "stored");
    // With its only cell masked it reveals nothing: it may leave.
    submit(&w, &w.kim, but_one.output.id, "all but one, masked")
        .await
        .unwrap();
    approve_and_release(&w, but_one.output.id).await.unwrap();
    // And the half count, whose sets are built at submission, too.
    submit(&w, &w.kim, half.output.id, "women").await.unwrap();
    let released = approve_and_release(&w, half.output.id).await.unwrap();
    assert_eq!(released.checks["person_sets"], "stored");
}

/// Counts all, and all but one patient, both computed before either leaves.
async fn two_close_outputs(w: &World) -> (i64, i64) {
    let all = q(
        w,
        &w.kim,
        "study",
        "SELECT COUNT(DISTINCT person_id) AS n FROM cohort.person",
    )
    .await
    .unwrap();
    let but_one = q(
        w,
        &w.kim,
        "study",
        &format!(
            "SELECT COUNT(DISTINCT person_id) AS n FROM cohort.person WHERE person_id <> {}",
            w.ids[0]
        ),
    )
    .await
    .unwrap();
    // Nothing released yet: neither is masked at query time.
    assert_eq!(int(&but_one.rows[0][0]), Some(299));
    (all.output.id, but_one.output.id)
}

async fn approve_and_release(w: &World, id: i64) -> Result<mdc_store::OutputInfo, StoreError> {
    w.store
        .output_review(&w.rev1, id, Decision::Approve, None)
        .await
        .unwrap();
    w.store.output_release(&w.rev1, id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differencing_is_checked_again_at_release() {
    let w = world().await;
    let (all, but_one) = two_close_outputs(&w).await;
    // Both submitted while nothing was released: each passes on its own.
    submit(&w, &w.kim, all, "all patients").await.unwrap();
    submit(&w, &w.kim, but_one, "all but one").await.unwrap();
    approve_and_release(&w, all).await.unwrap();
    // Releasing the second would let anyone subtract the two.
    let e = approve_and_release(&w, but_one).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    assert!(e.to_string().contains("differencing"), "{e}");
    assert!(
        e.to_string().contains(&format!("released output {all}")),
        "{e}"
    );
    let (o, _) = w.store.output_show(&w.kim, but_one).await.unwrap();
    assert_eq!(o.status, "submitted");
    assert!(o.released_path.is_none());
    // Nothing of it reached the released folder, and the refusal is audited.
    let released = std::fs::read_dir(w.store.root().outputs_dir().join("released"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .contains(&format!("release-{but_one}"))
        })
        .count();
    assert_eq!(released, 0);
    let denied = audit_actions(&w).await;
    assert!(
        denied.contains(&("output.release".into(), "denied".into())),
        "{denied:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_builds_the_sets_and_refuses_what_a_release_made_unsafe() {
    let w = world().await;
    let (all, but_one) = two_close_outputs(&w).await;
    submit(&w, &w.kim, all, "all patients").await.unwrap();
    approve_and_release(&w, all).await.unwrap();
    // Computed before that release, submitted after it: refused at submission.
    let e = submit(&w, &w.kim, but_one, "all but one")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("differencing"), "{e}");
    let (o, _) = w.store.output_show(&w.kim, but_one).await.unwrap();
    assert_eq!(o.status, "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_refuses_a_result_whose_data_changed() {
    let w = world().await;
    let out = q(
        &w,
        &w.kim,
        "study",
        "SELECT sex, COUNT(DISTINCT person_id) AS n FROM cohort.person GROUP BY sex",
    )
    .await
    .unwrap();
    assert_eq!(out.checks["person_sets"], "deferred");
    // A patient withdraws consent after the query ran.
    w.store
        .consent_withdraw(
            &w.steward,
            &SourceId::new(mdc_query::synth::mrn(0)),
            "*",
            None,
        )
        .await
        .unwrap();
    let e = submit(&w, &w.kim, out.output.id, "by sex")
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("changed since it was computed"),
        "{e}"
    );
    // Run again: the new output submits.
    let again = q(
        &w,
        &w.kim,
        "study",
        "SELECT sex, COUNT(DISTINCT person_id) AS n FROM cohort.person GROUP BY sex",
    )
    .await
    .unwrap();
    let total: i64 = again.rows.iter().filter_map(|r| int(&r[1])).sum();
    assert_eq!(total, 299);
    submit(&w, &w.kim, again.output.id, "by sex").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presets_apply_end_to_end_and_magnitudes_go_to_a_human() {
    let w = world().await;
    mdc_query::set_disclosure(
        &w.store,
        &w.steward,
        "study",
        "opensafely",
        &serde_json::json!({}),
        false,
    )
    .await
    .unwrap();
    let out = q(
        &w,
        &w.kim,
        "study",
        "SELECT region, COUNT(*) AS n FROM cohort.person GROUP BY region",
    )
    .await
    .unwrap();
    for row in &out.rows {
        if let Some(n) = int(&row[1]) {
            assert!(
                n % 5 == 0 && n > 7,
                "opensafely shows only rounded counts above 7: {n}"
            );
        }
    }
    mdc_query::set_disclosure(
        &w.store,
        &w.steward,
        "study",
        "acro",
        &serde_json::json!({"min_count": 12}),
        false,
    )
    .await
    .unwrap();
    let out = q(
        &w,
        &w.kim,
        "study",
        "SELECT measurement_concept_id, AVG(value_as_number) AS mean_value, COUNT(*) AS n FROM cohort.measurement GROUP BY measurement_concept_id",
    )
    .await
    .unwrap();
    assert_eq!(out.output.policy, "acro");
    assert!(out.output.needs_review);
    assert!(out.checks["review_reasons"]
        .to_string()
        .contains("mean_value"));
    let e = mdc_query::set_disclosure(
        &w.store,
        &w.kim,
        "study",
        "acro",
        &serde_json::json!({}),
        false,
    )
    .await;
    assert!(e.is_err(), "only stewards set the rules");
}

/// The most rows any one patient has in the synthetic measurement table,
/// counted straight from its Parquet files (no governance involved).
async fn true_max_rows_per_patient(w: &World) -> i64 {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    let v = w.store.version_info("cohort", 1).await.unwrap();
    let dir = w.store.root().path().join(&v.path);
    let ctx = datafusion::prelude::SessionContext::new();
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.contains("measurement-"))
        .collect();
    let df = ctx
        .read_parquet(files, datafusion::prelude::ParquetReadOptions::default())
        .await
        .unwrap();
    ctx.register_table("meas", df.into_view()).unwrap();
    let b = ctx
        .sql("SELECT MAX(n) FROM (SELECT person_id, COUNT(*) AS n FROM meas GROUP BY person_id)")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    b[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test]
async fn contributors_are_bounded_by_rows_per_patient_and_counted_exactly_where_that_cannot_tell() {
    let w = world().await;
    // Many patients per concept: the bound alone shows enough contributors.
    let broad = q(
        &w,
        &w.kim,
        "study",
        "SELECT measurement_concept_id, AVG(value_as_number) AS mean_value FROM cohort.measurement GROUP BY measurement_concept_id",
    )
    .await
    .unwrap();
    assert!(!broad.rows.is_empty());
    assert!(
        broad.rows.iter().all(|r| r[1].is_some()),
        "hundreds of patients per concept: nothing masked"
    );
    // The statistic was derived once and kept in the catalog, correctly.
    let kept = w
        .store
        .table_stats("cohort", 1, "measurement")
        .await
        .unwrap()
        .unwrap();
    let truth = true_max_rows_per_patient(&w).await;
    assert_eq!(kept.max_rows_per_patient, truth);
    assert_eq!(kept.rows_without_patient, 0);
    assert!(truth > 1);
    // One patient's many rows: the bound (⌈n / m⌉ = 1) cannot tell, so the
    // exact count runs and the mean is masked as one patient's value.
    let one = w.ids[7];
    let single = q(
        &w,
        &w.kim,
        "study",
        &format!("SELECT AVG(value_as_number) AS mean_value, COUNT(*) AS n FROM cohort.measurement WHERE person_id = {one}"),
    )
    .await
    .unwrap();
    let n = single.checks["rows"].as_u64().unwrap();
    assert_eq!(n, 1);
    assert!(
        int(&single.rows[0][1]).is_some_and(|n| n >= 5),
        "the patient has enough rows that counting rows would have shown the mean"
    );
    assert!(single.rows[0][0].is_none(), "one patient's mean is masked");
    assert!(single.checks["masks"]
        .to_string()
        .contains("few_contributors"));
    // A column renamed to look like the patient column does not get the
    // bound (it is not the table's patient column).
    let renamed = q(
        &w,
        &w.kim,
        "study",
        &format!("SELECT c, AVG(v) AS mean_value FROM (SELECT measurement_concept_id AS c, value_as_number AS v, person_id AS pid, measurement_year AS person_id FROM cohort.measurement WHERE person_id = {one}) t GROUP BY c"),
    )
    .await
    .unwrap();
    assert!(
        renamed.rows.iter().all(|r| r[1].is_none()),
        "one patient's values stay masked however the columns are named"
    );
    // Dropping the patient column in a subquery: its rows are not counted
    // as patients. Many patients still show (every row has a patient) ...
    let dropped_broad = q(
        &w,
        &w.kim,
        "study",
        "SELECT c, AVG(v) AS mean_value FROM (SELECT measurement_concept_id AS c, value_as_number AS v FROM cohort.measurement) t GROUP BY c",
    )
    .await
    .unwrap();
    assert!(dropped_broad.rows.iter().all(|r| r[1].is_some()));
    // ... and one patient's ten-odd rows stay masked.
    let dropped_one = q(
        &w,
        &w.kim,
        "study",
        &format!("SELECT AVG(v) AS mean_value FROM (SELECT value_as_number AS v FROM cohort.measurement WHERE person_id = {one}) t"),
    )
    .await
    .unwrap();
    assert!(
        dropped_one.rows[0][0].is_none(),
        "rows of one patient are one contributor"
    );
}

#[test]
fn bounded_contributor_rule_agrees_with_exact_counts() {
    // Brute force over small tables: patients with given row counts in a cell.
    for cap in 1..=6_u64 {
        for m in 1..=6_i64 {
            for patients in 0..=8_i64 {
                for per in 1..=m {
                    let n = patients * per;
                    let exact = patients.min(cap as i64);
                    if let Some(c) = mdc_query::engine::bounded_contributors(n, m, cap) {
                        let masked_exact = exact < cap as i64;
                        let masked_bound = c < cap as i64;
                        assert_eq!(masked_exact, masked_bound, "n {n} m {m} cap {cap}");
                        if !masked_exact {
                            assert_eq!(c, exact);
                        }
                    }
                }
            }
        }
    }
}

/// Registers a one-table dataset `name` (table `events`, patient column
/// `person_id`) of the given files, each written with at most
/// `row_group_rows` rows per row group, and grants it to "study".
async fn register_events(
    w: &World,
    name: &str,
    files: &[Vec<datafusion::arrow::array::RecordBatch>],
    row_group_rows: Option<usize>,
    opt_in_only: bool,
) -> tempfile::TempDir {
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;
    use mdc_types::manifest::{
        Manifest, ManifestFile, ManifestKind, ManifestTable, PolicyRef, Rejected, SourceRef,
        MANIFEST_FILE, MANIFEST_FORMAT,
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut entries = Vec::new();
    for (i, batches) in files.iter().enumerate() {
        let path = format!("events-{i}.parquet");
        let file = dir.join(&path);
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(row_group_rows)
            .build();
        let mut writer = ArrowWriter::try_new(
            std::fs::File::create(&file).unwrap(),
            batches[0].schema(),
            Some(props),
        )
        .unwrap();
        for b in batches {
            writer.write(b).unwrap();
        }
        writer.close().unwrap();
        entries.push(ManifestFile {
            path,
            sha256: mdc_table::sha256_file(&file).unwrap(),
            rows: Some(batches.iter().map(|b| b.num_rows() as u64).sum()),
        });
    }
    let manifest = Manifest {
        format_version: MANIFEST_FORMAT,
        kind: ManifestKind::Tables,
        tables: vec![ManifestTable {
            name: "events".into(),
            files: entries,
            schema: serde_json::Value::Null,
            patient_column: Some("person_id".into()),
        }],
        files: vec![],
        key_id: w.store.pseudonymizer().unwrap().key_id().to_owned(),
        pseudonym_mode: "keyed".into(),
        policy: PolicyRef {
            name: "test".into(),
            sha256: "0".repeat(64),
        },
        source: SourceRef {
            description: format!("test dataset {name}"),
            sha256: "0".repeat(64),
        },
        created_at: mdc_store::audit::now_text(),
        mdc_version: "test".into(),
        rejected: Rejected::default(),
    };
    std::fs::write(
        dir.join(MANIFEST_FILE),
        serde_json::to_string(&manifest).unwrap(),
    )
    .unwrap();
    w.store
        .dataset_register(
            &w.steward,
            &RegisterRequest {
                name: name.into(),
                path: dir,
                use_codes: Some("HMB".into()),
                opt_in_only,
                no_manifest_reason: None,
            },
        )
        .await
        .unwrap();
    w.store
        .grant_add(&w.steward, "study", name, Some(1), GrantLevel::Aggregate)
        .await
        .unwrap();
    tmp
}

#[tokio::test]
async fn rows_without_a_patient_are_never_counted_as_contributors() {
    use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let w = world().await;
    // 100 rows with no patient (kind x), 30 patients with 10 rows each (kind
    // y): counting x's rows against 10 rows per patient would claim 10
    // patients where there are none.
    let mut pid = vec![None; 100];
    let mut kind = vec!["x"; 100];
    for p in 0..30 {
        for _ in 0..10 {
            pid.push(Some(w.ids[p]));
            kind.push("y");
        }
    }
    let value: Vec<f64> = (0..pid.len()).map(|i| i as f64).collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("person_id", DataType::Int64, true),
            Field::new("kind", DataType::Utf8, false),
            Field::new("value", DataType::Float64, false),
        ])),
        vec![
            Arc::new(Int64Array::from(pid)) as ArrayRef,
            Arc::new(StringArray::from(kind)),
            Arc::new(Float64Array::from(value)),
        ],
    )
    .unwrap();
    let _tmp = register_events(&w, "events", &[vec![batch]], None, false).await;
    // With the patient column: kind x has no patient behind it.
    let direct = q(
        &w,
        &w.kim,
        "study",
        "SELECT kind, AVG(value) AS mean_value FROM events GROUP BY kind ORDER BY kind",
    )
    .await
    .unwrap();
    assert!(
        direct.rows[0][1].is_none(),
        "rows without a patient: masked"
    );
    assert!(direct.rows[1][1].is_some(), "30 patients: shown");
    let stats = w
        .store
        .table_stats("events", 1, "events")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stats.max_rows_per_patient, stats.rows_without_patient),
        (10, 100)
    );
    // Without it, rows cannot stand for patients here: both masked.
    let dropped = q(
        &w,
        &w.kim,
        "study",
        "SELECT k, AVG(v) AS mean_value FROM (SELECT kind AS k, value AS v FROM events) t GROUP BY k ORDER BY k",
    )
    .await
    .unwrap();
    assert!(dropped.rows.iter().all(|r| r[1].is_none()));
}

#[tokio::test]
async fn a_shown_person_count_serves_as_its_rows_contributors_over_joins() {
    let w = world().await;
    let sql = |filter: &str| {
        format!(
            "SELECT p.sex, COUNT(DISTINCT p.person_id) AS patients, AVG(m.value_as_number) AS mean_value \
             FROM cohort.person p JOIN cohort.measurement m ON m.person_id = p.person_id {filter} GROUP BY p.sex ORDER BY p.sex"
        )
    };
    let broad = q(&w, &w.kim, "study", &sql("")).await.unwrap();
    assert!(broad
        .rows
        .iter()
        .all(|r| int(&r[1]).is_some_and(|n| n >= 5) && r[2].is_some()));
    let one = w.ids[7];
    let single = q(
        &w,
        &w.kim,
        "study",
        &sql(&format!("WHERE p.person_id = {one}")),
    )
    .await
    .unwrap();
    assert_eq!(single.rows.len(), 1);
    assert!(single.rows[0][1].is_none(), "one patient: count masked");
    assert!(single.rows[0][2].is_none(), "and the mean, one contributor");
    assert!(single.checks["masks"]
        .to_string()
        .contains("few_contributors"));
}

/// Three files of 97 rows in row groups of 8; patients 0..20 in turn, every
/// 11th row without one; `value` is the row's number (the largest, 290, is
/// patient 10's).
fn visits(
    w: &World,
) -> (
    Vec<Vec<datafusion::arrow::array::RecordBatch>>,
    Vec<Option<i64>>,
) {
    use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let schema = Arc::new(Schema::new(vec![
        Field::new("person_id", DataType::Int64, true),
        Field::new("value", DataType::Float64, false),
    ]));
    let mut files = Vec::new();
    let mut all = Vec::new();
    for f in 0..3u32 {
        let pid: Vec<Option<i64>> = (0..97)
            .map(|r| (f * 97 + r) as usize)
            .map(|i| (i % 11 != 0).then(|| w.ids[i % 20]))
            .collect();
        all.extend(pid.iter().copied());
        let value: Vec<f64> = (0..97).map(|r| f64::from(f * 97 + r)).collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(pid)) as ArrayRef,
                Arc::new(Float64Array::from(value)),
            ],
        )
        .unwrap();
        files.push(vec![batch]);
    }
    (files, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_skips_opted_out_rows_in_every_file_and_row_group_and_never_trusts_footers() {
    let w = world().await;
    let (files, all) = visits(&w);
    let _tmp = register_events(&w, "visits", &files, Some(8), false).await;
    let count = |sql: &'static str| {
        let w = &w;
        async move { int(&q(w, &w.kim, "study", sql).await.unwrap().rows[0][0]) }
    };
    assert_eq!(count("SELECT COUNT(*) FROM visits").await, Some(291));
    assert_eq!(
        q(&w, &w.kim, "study", "SELECT MAX(value) FROM visits")
            .await
            .unwrap()
            .rows[0][0],
        Some(mdc_query::disclosure::Value::Float(290.0))
    );
    let mut out = Vec::new();
    for (n, i) in [10usize, 3, 7].into_iter().enumerate() {
        w.store
            .consent_withdraw(
                &w.steward,
                &SourceId::new(mdc_query::synth::mrn(i)),
                "*",
                None,
            )
            .await
            .unwrap();
        out.push(w.ids[i]);
        let kept = |rows: &[Option<i64>]| {
            rows.iter()
                .filter(|p| p.is_none_or(|p| !out.contains(&p)))
                .count() as i64
        };
        // The footers say 291 rows; COUNT(*) must not be answered from them.
        assert_eq!(
            count("SELECT COUNT(*) FROM visits").await,
            Some(kept(&all)),
            "after {} opt-outs",
            n + 1
        );
        // Row groups that are all one patient's rows, or none of them.
        assert_eq!(
            count("SELECT COUNT(*) FROM visits WHERE value % 97 < 8").await,
            Some(kept(
                &all.iter()
                    .enumerate()
                    .filter(|(i, _)| i % 97 < 8)
                    .map(|(_, p)| *p)
                    .collect::<Vec<_>>()
            )),
        );
    }
    // Nor MAX from their statistics: 290 was patient 10's.
    assert_eq!(
        q(&w, &w.kim, "study", "SELECT MAX(value) FROM visits")
            .await
            .unwrap()
            .rows[0][0],
        Some(mdc_query::disclosure::Value::Float(289.0))
    );
    // The listing would meet a limit from the first two files' footers (194
    // rows); after consent they hold fewer than 180, so the third is read too.
    let first_two: i64 = all[..194]
        .iter()
        .filter(|p| p.is_none_or(|p| !out.contains(&p)))
        .count() as i64;
    assert!(first_two < 180, "{first_two}");
    assert_eq!(
        count("SELECT COUNT(*) FROM (SELECT person_id, value FROM visits LIMIT 180) t").await,
        Some(180)
    );
    let opted_out = q(
        &w,
        &w.kim,
        "study",
        &format!(
            "SELECT COUNT(*) AS n FROM visits WHERE person_id IN ({}, {}, {})",
            out[0], out[1], out[2]
        ),
    )
    .await
    .unwrap();
    assert_eq!(int(&opted_out.rows[0][0]), None, "zero rows: masked");
    assert_eq!(opted_out.checks["masks"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_in_only_datasets_read_only_the_opted_in_patients_rows() {
    let w = world().await;
    let (files, all) = visits(&w);
    let _tmp = register_events(&w, "registry", &files, Some(8), true).await;
    let count = || async {
        int(&q(&w, &w.kim, "study", "SELECT COUNT(*) FROM registry")
            .await
            .unwrap()
            .rows[0][0])
    };
    assert_eq!(count().await, None, "nobody opted in: no rows, masked");
    let opted_in = [1usize, 2, 4, 5, 6, 9];
    let mut csv = String::from("patient_id,purpose,status,effective\n");
    for i in opted_in {
        csv += &mdc_query::synth::mrn(i);
        csv += ",*,opt-in,2020-01-01\n";
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.csv");
    std::fs::write(&path, csv).unwrap();
    w.store.consent_import(&w.steward, &path).await.unwrap();
    let ids: Vec<i64> = opted_in.iter().map(|i| w.ids[*i]).collect();
    let expected = all
        .iter()
        .filter(|p| p.is_some_and(|p| ids.contains(&p)))
        .count() as i64;
    assert_eq!(
        count().await,
        Some(expected),
        "rows without a patient stay out"
    );
}
