#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CLI tests of structured de-identification (issue 4): `mdc synth omop`,
//! `mdc deid omop|fhir|table|policy`, `mdc risk`, against the real binary and
//! temporary data roots, with the output registered as a dataset.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mdc_table::arrow_array::cast::AsArray;
use mdc_table::arrow_array::types::{Date32Type, Int64Type};
use mdc_table::arrow_array::{Array, RecordBatch};
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

fn code(root: &Path, args: &[&str], expected: i32) -> String {
    let out = run(root, args);
    assert_eq!(
        out.status.code(),
        Some(expected),
        "mdc {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap() + &String::from_utf8_lossy(&out.stderr)
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let e = Env { dir };
        code(
            &e.root(),
            &["init", "--root", e.root().to_str().unwrap()],
            0,
        );
        e
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn s(&self, name: &str) -> String {
        self.p(name).to_str().unwrap().to_owned()
    }
}

fn read(path: &Path) -> Vec<RecordBatch> {
    mdc_table::read_parquet(path).unwrap()
}

fn ints(batches: &[RecordBatch], col: &str) -> Vec<Option<i64>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name(col)
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone();
            (0..a.len())
                .map(move |i| (!a.is_null(i)).then(|| a.value(i)))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn dates(batches: &[RecordBatch], col: &str) -> Vec<Option<i32>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name(col)
                .unwrap()
                .as_primitive::<Date32Type>()
                .clone();
            (0..a.len())
                .map(move |i| (!a.is_null(i)).then(|| a.value(i)))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn strings(batches: &[RecordBatch], col: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column_by_name(col).unwrap().as_string::<i32>().clone();
            (0..a.len())
                .map(move |i| (!a.is_null(i)).then(|| a.value(i).to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every string value of every Parquet and NDJSON file in a folder.
fn all_text(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        match p.extension().and_then(|x| x.to_str()) {
            Some("parquet") => {
                for b in read(&p) {
                    for c in b.columns() {
                        if let Some(a) = c.as_string_opt::<i32>() {
                            for i in 0..a.len() {
                                if !a.is_null(i) {
                                    s.push_str(a.value(i));
                                    s.push('\n');
                                }
                            }
                        }
                    }
                }
            }
            Some("ndjson" | "json" | "html") => s.push_str(&std::fs::read_to_string(&p).unwrap()),
            _ => {}
        }
    }
    s
}

fn csv_column(path: &Path, col: &str) -> Vec<String> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let i = r.headers().unwrap().iter().position(|h| h == col).unwrap();
    r.records()
        .map(|x| x.unwrap().get(i).unwrap().to_owned())
        .collect()
}

fn has_rrn_or_mobile(s: &str) -> Option<String> {
    let b: Vec<char> = s.chars().collect();
    for w in b.windows(14) {
        let t: String = w.iter().collect();
        let d = |r: std::ops::Range<usize>| {
            t.chars()
                .skip(r.start)
                .take(r.len())
                .all(|c| c.is_ascii_digit())
        };
        if d(0..6) && w[6] == '-' && d(7..14) {
            return Some("RRN".into());
        }
        if t.starts_with("010-")
            && d(4..8)
            && w[8] == '-'
            && t.chars().skip(9).take(4).all(|c| c.is_ascii_digit())
        {
            return Some("phone".into());
        }
    }
    None
}

#[test]
fn omop_extract_is_deidentified_joinable_and_registers() {
    let e = Env::new();
    let root = e.root();
    code(
        &root,
        &[
            "synth",
            "omop",
            "--out",
            &e.s("raw"),
            "--persons",
            "60",
            "--seed",
            "3",
        ],
        0,
    );
    let out = code(
        &root,
        &[
            "deid",
            "omop",
            "--input",
            &e.s("raw"),
            "--output",
            &e.s("deid"),
            "--profile",
            "kr-health",
            "--reference-year",
            "2025",
        ],
        0,
    );
    assert!(out.contains("risk on person"), "{out}");
    let d = e.p("deid");
    for t in [
        "person",
        "visit_occurrence",
        "condition_occurrence",
        "drug_exposure",
        "measurement",
        "observation",
        "procedure_occurrence",
        "death",
        "location",
        "care_site",
        "provider",
        "note",
        "visit_detail",
        "observation_period",
    ] {
        assert!(d.join(format!("{t}.parquet")).is_file(), "{t}");
    }
    // person_id is the integer pseudonym; every foreign key joins.
    let person = read(&d.join("person.parquet"));
    let ids: HashSet<i64> = ints(&person, "person_id").into_iter().flatten().collect();
    assert_eq!(ids.len(), 60);
    let raw_ids: HashSet<i64> = csv_column(&e.p("raw/person.csv"), "person_id")
        .iter()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(ids.is_disjoint(&raw_ids));
    for t in [
        "visit_occurrence",
        "measurement",
        "condition_occurrence",
        "drug_exposure",
        "note",
        "death",
    ] {
        for id in ints(&read(&d.join(format!("{t}.parquet"))), "person_id") {
            assert!(ids.contains(&id.unwrap()), "{t}.person_id does not join");
        }
    }
    let visits: HashSet<i64> = ints(
        &read(&d.join("visit_occurrence.parquet")),
        "visit_occurrence_id",
    )
    .into_iter()
    .flatten()
    .collect();
    for v in ints(&read(&d.join("measurement.parquet")), "visit_occurrence_id")
        .into_iter()
        .flatten()
    {
        assert!(
            visits.contains(&v),
            "measurement.visit_occurrence_id does not join"
        );
    }
    let providers: HashSet<i64> = ints(&read(&d.join("provider.parquet")), "provider_id")
        .into_iter()
        .flatten()
        .collect();
    for v in ints(&read(&d.join("visit_occurrence.parquet")), "provider_id")
        .into_iter()
        .flatten()
    {
        assert!(providers.contains(&v));
    }
    // Intervals between one patient's visits are preserved exactly.
    let raw_v = (
        csv_column(&e.p("raw/visit_occurrence.csv"), "person_id"),
        csv_column(&e.p("raw/visit_occurrence.csv"), "visit_start_date"),
    );
    let vo = read(&d.join("visit_occurrence.parquet"));
    let (pid, start) = (ints(&vo, "person_id"), dates(&vo, "visit_start_date"));
    let day = |s: &str| mdc_deid::structured::value::parse_date(s).unwrap();
    let mut by_raw: HashMap<String, Vec<i32>> = HashMap::new();
    for (p, s) in raw_v.0.iter().zip(&raw_v.1) {
        by_raw.entry(p.clone()).or_default().push(day(s));
    }
    let mut by_new: HashMap<i64, Vec<i32>> = HashMap::new();
    for (p, s) in pid.iter().zip(&start) {
        by_new.entry(p.unwrap()).or_default().push(s.unwrap());
    }
    let mut raw_gaps: Vec<Vec<i32>> = by_raw
        .values()
        .map(|v| v.windows(2).map(|w| w[1] - w[0]).collect())
        .collect();
    let mut new_gaps: Vec<Vec<i32>> = by_new
        .values()
        .map(|v| v.windows(2).map(|w| w[1] - w[0]).collect())
        .collect();
    raw_gaps.sort();
    new_gaps.sort();
    assert_eq!(raw_gaps, new_gaps);
    assert_ne!(
        start.iter().flatten().copied().collect::<Vec<_>>(),
        raw_v.1.iter().map(|s| day(s)).collect::<Vec<_>>()
    );
    // Ages above 89 are pooled; birth months are dropped by kr-health.
    assert!(ints(&person, "year_of_birth")
        .into_iter()
        .flatten()
        .all(|y| y >= 1935));
    assert!(person[0].column_by_name("month_of_birth").is_none());
    // No planted identifier survives anywhere in the output.
    let text = all_text(&d);
    assert_eq!(has_rrn_or_mobile(&text), None);
    for mrn in csv_column(&e.p("raw/person.csv"), "person_source_value") {
        assert!(!text.contains(&mrn), "a record number survived");
    }
    for a in csv_column(&e.p("raw/location.csv"), "address_1") {
        assert!(!text.contains(&a), "a street address survived");
    }
    // Names: neither the structured columns nor note_text may hold one (the
    // synthetic notes name the patient after a role word, `환자 권서윤 (…)`).
    let note_text: String = strings(&read(&d.join("note.parquet")), "note_text")
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    let mut in_notes = 0;
    for title in csv_column(&e.p("raw/note.csv"), "note_title") {
        let name = title.split(' ').next().unwrap();
        let outside_notes = text.replace(&note_text, "");
        assert!(
            !outside_notes.contains(name),
            "a patient's name survived outside note_text"
        );
        in_notes += usize::from(note_text.contains(name));
    }
    assert_eq!(in_notes, 0, "patients' names survived in note_text");
    // The manifest registers, and the report is beside it.
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["policy"]["name"], "kr-health");
    assert!(d.join("deid-report.html").is_file());
    code(
        &root,
        &[
            "dataset",
            "register",
            "--name",
            "omop-test",
            "--path",
            &e.s("deid"),
        ],
        0,
    );
    let log = code(&root, &["audit", "log", "--json"], 0);
    assert!(log.contains("deid.omop"));
    // A second run with the same root gives the same pseudonyms and offsets.
    code(
        &root,
        &[
            "deid",
            "omop",
            "--input",
            &e.s("raw"),
            "--output",
            &e.s("deid2"),
            "--profile",
            "kr-health",
            "--reference-year",
            "2025",
        ],
        0,
    );
    let vo2 = read(&e.p("deid2/visit_occurrence.parquet"));
    assert_eq!(ints(&vo2, "person_id"), pid);
    assert_eq!(dates(&vo2, "visit_start_date"), start);
}

#[test]
fn bad_omop_records_are_rejected_and_the_rest_is_processed() {
    let e = Env::new();
    let root = e.root();
    let raw = e.p("raw");
    std::fs::create_dir_all(&raw).unwrap();
    std::fs::write(
        raw.join("person.csv"),
        "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id,person_source_value,shoe_size\n\
         1,8507,1970,0,0,00000001,42\n\
         2,8532,nineteen,0,0,00000002,38\n\
         3,8532,1980,0,0,00000003\n\
         4,,1980,0,0,00000004,40\n\
         5,8532,1990,0,0,00000005,39\n",
    )
    .unwrap();
    std::fs::write(
        raw.join("measurement.csv"),
        "measurement_id,person_id,measurement_concept_id,measurement_date,measurement_type_concept_id,value_as_number\n\
         10,1,3004410,2024-01-05,32856,5.6\n\
         11,99,3004410,2024-01-06,32856,5.7\n\
         12,5,3004410,2024-02-30,32856,5.8\n\
         13,5,3004410,2024-02-03,32856,6.1\n",
    )
    .unwrap();
    let out = code(
        &root,
        &[
            "deid",
            "omop",
            "--input",
            raw.to_str().unwrap(),
            "--output",
            &e.s("deid"),
        ],
        3,
    );
    assert!(
        out.contains("shoe_size"),
        "unknown columns are listed: {out}"
    );
    let rep: Value =
        serde_json::from_str(&std::fs::read_to_string(e.p("deid/deid-report.json")).unwrap())
            .unwrap();
    assert_eq!(rep["rejected_count"], 5, "{rep:#}");
    let reasons: Vec<String> = rep["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["source"], r["record"], r["field"], r["reason"]
            )
        })
        .collect();
    let all = reasons.join("\n");
    assert!(
        all.contains("year_of_birth") && all.contains("not a valid integer"),
        "{all}"
    );
    assert!(all.contains("malformed CSV"), "{all}");
    assert!(
        all.contains("gender_concept_id") && all.contains("required"),
        "{all}"
    );
    assert!(all.contains("refers to no person"), "{all}");
    assert!(
        all.contains("measurement_date") && all.contains("not a valid date"),
        "{all}"
    );
    // Errors never echo values.
    assert!(!all.contains("nineteen") && !all.contains("00000002"));
    assert_eq!(
        ints(&read(&e.p("deid/person.parquet")), "person_id").len(),
        2
    );
    assert_eq!(
        ints(&read(&e.p("deid/measurement.parquet")), "person_id").len(),
        2
    );
    assert!(rep["tables"][0]["unknown_columns"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "shoe_size"));
    code(
        &root,
        &[
            "dataset",
            "register",
            "--name",
            "bad-omop",
            "--path",
            &e.s("deid"),
        ],
        0,
    );
}

#[test]
fn nothing_is_written_when_a_run_fails() {
    let e = Env::new();
    let root = e.root();
    std::fs::create_dir_all(e.p("raw")).unwrap();
    std::fs::write(
        e.p("raw/measurement.csv"),
        "measurement_id,person_id\n1,1\n",
    )
    .unwrap();
    let err = code(
        &root,
        &[
            "deid",
            "omop",
            "--input",
            &e.s("raw"),
            "--output",
            &e.s("deid"),
        ],
        1,
    );
    assert!(err.contains("person table"), "{err}");
    assert!(!e.p("deid").exists());
    assert_eq!(
        std::fs::read_dir(e.dir.path())
            .unwrap()
            .filter(|x| x
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("staging"))
            .count(),
        0
    );
    std::fs::create_dir_all(e.p("full")).unwrap();
    std::fs::write(e.p("full/x"), "keep me").unwrap();
    code(
        &root,
        &["synth", "omop", "--out", &e.s("raw2"), "--persons", "3"],
        0,
    );
    let err = code(
        &root,
        &[
            "deid",
            "omop",
            "--input",
            &e.s("raw2"),
            "--output",
            &e.s("full"),
        ],
        1,
    );
    assert!(err.contains("not an empty folder"), "{err}");
    assert_eq!(std::fs::read_to_string(e.p("full/x")).unwrap(), "keep me");
}

#[test]
fn policy_errors_name_the_key() {
    let e = Env::new();
    std::fs::write(
        e.p("p.toml"),
        "name = \"mine\"\n[columns]\nbirth_date = \"shift_dates\"\n",
    )
    .unwrap();
    let err = code(&e.root(), &["deid", "policy", "--check", &e.s("p.toml")], 1);
    assert!(
        err.contains("columns.\"birth_date\"") && err.contains("unknown action"),
        "{err}"
    );
    let ok = code(&e.root(), &["deid", "policy", "--show", "safe-harbor"], 0);
    assert!(ok.contains("name = \"safe-harbor\""));
}

#[test]
fn a_claims_table_is_generalised_to_k_and_risk_drops() {
    let e = Env::new();
    let mut csv = String::from("patient_id,name,age,sex,address,diagnosis,visit_date,memo\n");
    for i in 0..400 {
        writeln!(
            csv,
            "{:08},홍길동{i},{},{},{} 테헤란로 {},{},2024-0{}-1{},보호자 010-1234-{:04}",
            10_000 + i,
            20 + (i * 7) % 75,
            if i % 2 == 0 { "F" } else { "M" },
            [
                "서울특별시 강남구",
                "부산광역시 해운대구",
                "경기도 성남시 분당구",
                "제주특별자치도 제주시"
            ][i % 4],
            i,
            ["I10", "E11.9", "J18.9"][i % 3],
            1 + i % 9,
            i % 10,
            i
        )
        .unwrap();
    }
    std::fs::write(e.p("claims.csv"), csv).unwrap();
    std::fs::write(e.p("p.toml"), "name = \"claims\"\nextends = \"kr-health\"\n[options]\npatient_column = \"patient_id\"\n[columns]\nage = \"keep\"\naddress = \"generalize(sigungu)\"\nvisit_date = \"shift_date\"\n").unwrap();
    let out = code(
        &e.root(),
        &[
            "deid",
            "table",
            "--policy",
            &e.s("p.toml"),
            "--input",
            &e.s("claims.csv"),
            "--output",
            &e.s("out"),
            "--qi",
            "age,sex,address",
            "--sensitive",
            "diagnosis",
            "--k",
            "5",
            "--json",
        ],
        0,
    );
    let v: Value = serde_json::from_str(&out[..=out.rfind('}').unwrap()]).unwrap();
    let after = &v["risk"][0]["after"];
    assert!(after["k"].as_u64().unwrap() >= 5, "{v:#}");
    assert!(v["risk"][0]["before"]["k"].as_u64().unwrap() < 5);
    assert!(v["generalization"]["precision_loss"].as_f64().unwrap() > 0.0);
    let t = read(&e.p("out/claims.parquet"));
    assert!(t[0].column_by_name("name").is_none());
    assert!(strings(&t, "patient_id")
        .iter()
        .flatten()
        .all(|p| p.len() == 16));
    let text = all_text(&e.p("out"));
    assert!(
        !text.contains("홍길동") && !text.contains("010-1234"),
        "identifiers survived"
    );
    code(
        &e.root(),
        &[
            "dataset",
            "register",
            "--name",
            "claims",
            "--path",
            &e.s("out"),
        ],
        0,
    );
}

#[test]
fn risk_matches_the_hand_computed_example() {
    let e = Env::new();
    std::fs::write(
        e.p("t.csv"),
        "age,sex,diagnosis\n30-39,F,flu\n30-39,F,flu\n30-39,F,asthma\n30-39,M,flu\n30-39,M,diabetes\n40-49,F,flu\n40-49,F,flu\n40-49,F,flu\n40-49,F,flu\n50-59,M,cancer\n",
    )
    .unwrap();
    let out = code(
        &e.root(),
        &[
            "risk",
            "--input",
            &e.s("t.csv"),
            "--qi",
            "age,sex",
            "--sensitive",
            "diagnosis",
            "--threshold",
            "3",
            "--json",
        ],
        0,
    );
    let v: Value = serde_json::from_str(&out[..=out.rfind('}').unwrap()]).unwrap();
    assert_eq!(
        (
            v["records"].as_u64(),
            v["classes"].as_u64(),
            v["k"].as_u64()
        ),
        (Some(10), Some(4), Some(1))
    );
    assert_eq!(v["records_at_risk"], 3);
    assert_eq!(v["prosecutor_max"], 1.0);
    assert_eq!(v["prosecutor_avg"], 0.4);
    assert_eq!(v["l_diversity"]["l"], 1);
    assert_eq!(v["l_diversity"]["records_below_2"], 5);
}

#[test]
fn fhir_examples_get_the_same_pseudonyms_as_omop() {
    let e = Env::new();
    let root = e.root();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fhir");
    let input = e.p("fhir");
    std::fs::create_dir_all(&input).unwrap();
    for f in std::fs::read_dir(&fixtures).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            std::fs::copy(&p, input.join(p.file_name().unwrap())).unwrap();
        }
    }
    // A Bulk Data NDJSON file too, with one broken line and one orphan.
    std::fs::write(
        input.join("more.ndjson"),
        "{\"resourceType\":\"Observation\",\"id\":\"n1\",\"status\":\"final\",\"subject\":{\"reference\":\"Patient/example\"},\"effectiveDateTime\":\"2012-09-17\",\"valueString\":\"환자 홍길동님 연락처 010-9876-5432\"}\n{not json\n{\"resourceType\":\"Observation\",\"id\":\"n2\",\"subject\":{\"reference\":\"Patient/ghost\"}}\n",
    )
    .unwrap();
    let out = code(
        &root,
        &[
            "deid",
            "fhir",
            "--input",
            input.to_str().unwrap(),
            "--output",
            &e.s("fo"),
        ],
        3,
    );
    assert!(out.contains("FHIR"), "{out}");
    let rep: Value =
        serde_json::from_str(&std::fs::read_to_string(e.p("fo/deid-report.json")).unwrap())
            .unwrap();
    assert_eq!(rep["rejected_count"], 2, "{rep:#}");
    for t in [
        "patient",
        "encounter",
        "condition",
        "observation",
        "medication_request",
    ] {
        assert!(e.p(format!("fo/{t}.parquet").as_str()).is_file(), "{t}");
    }
    // Patient/example has MR identifier 12345: its pseudonym is the OMOP one
    // of person_source_value 12345.
    std::fs::create_dir_all(e.p("omop")).unwrap();
    std::fs::write(e.p("omop/person.csv"), "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id,person_source_value\n7,8507,1974,0,0,12345\n").unwrap();
    std::fs::write(e.p("omop/visit_occurrence.csv"), "visit_occurrence_id,person_id,visit_concept_id,visit_start_date,visit_end_date,visit_type_concept_id\n1,7,9202,2012-09-17,2012-09-17,32817\n").unwrap();
    code(
        &root,
        &[
            "deid",
            "omop",
            "--input",
            &e.s("omop"),
            "--output",
            &e.s("oo"),
        ],
        0,
    );
    let person = read(&e.p("oo/person.parquet"));
    let token = strings(&person, "person_source_value")[0].clone().unwrap();
    let patients = std::fs::read_to_string(e.p("fo/Patient.ndjson")).unwrap();
    assert!(
        patients.contains(&format!("\"id\":\"{token}\"")),
        "{patients}"
    );
    let obs = std::fs::read_to_string(e.p("fo/Observation.ndjson")).unwrap();
    assert!(obs.contains(&format!("Patient/{token}")));
    assert!(!obs.contains("Patient/example"));
    // Same date offset: 2012-09-17 moves to the same day in both.
    let shifted = mdc_deid::structured::value::format_date(
        dates(
            &read(&e.p("oo/visit_occurrence.parquet")),
            "visit_start_date",
        )[0]
        .unwrap(),
    );
    assert!(
        obs.contains(&format!("\"effectiveDateTime\":\"{shifted}\"")),
        "{obs}"
    );
    let text = all_text(&e.p("fo"));
    for leak in [
        "Chalmers",
        "Peter",
        "12345",
        "534 Erewhon",
        "010-9876-5432",
        "홍길동",
    ] {
        assert!(!text.contains(leak), "{leak} survived");
    }
    code(
        &root,
        &[
            "dataset",
            "register",
            "--name",
            "fhir-test",
            "--path",
            &e.s("fo"),
        ],
        0,
    );
}

#[test]
fn fhir_narratives_are_dropped_by_default_and_cleaned_when_the_policy_asks() {
    let e = Env::new();
    let root = e.root();
    let input = e.p("narr");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(
        input.join("Patient.ndjson"),
        "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"identifier\":[{\"type\":{\"coding\":[{\"code\":\"MR\"}]},\"value\":\"00077777\"}],\"text\":{\"status\":\"generated\",\"div\":\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">환자 홍길동님, 연락처 010-5555-1234, 당뇨 추적 관찰</div>\"}}\n",
    )
    .unwrap();
    std::fs::write(
        e.p("narr.toml"),
        "name = \"fhir-narratives\"\nextends = \"fhir-r4\"\n[options]\nclean_narratives = true\n",
    )
    .unwrap();
    let run = |out: &str, policy: Option<&str>| {
        let mut args = vec![
            "deid",
            "fhir",
            "--input",
            input.to_str().unwrap(),
            "--output",
            out,
        ];
        if let Some(p) = policy {
            args.extend(["--policy", p]);
        }
        code(&root, &args, 0);
        let text = std::fs::read_to_string(Path::new(out).join("Patient.ndjson")).unwrap();
        let v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        v
    };
    let dropped = run(&e.s("out-default"), None);
    assert!(dropped.get("text").is_none(), "{dropped}");
    let cleaned = run(&e.s("out-clean"), Some(&e.s("narr.toml")));
    let div = cleaned["text"]["div"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(div.contains("당뇨 추적 관찰"), "clinical text kept: {div}");
    assert!(
        !div.contains("홍길동") && !div.contains("010-5555"),
        "{div}"
    );
    assert!(div.starts_with("<div xmlns=\"http://www.w3.org/1999/xhtml\">"));
}
