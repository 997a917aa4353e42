//! CLI tests of `mdc deid dicom`: the real binary on public DICOM test files
//! (crates/mdc-dicom/tests/data, MIT licences noted there).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mdc-dicom/tests/data")
}

fn mdc(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mdc"))
        .env("MDC_ROOT", root)
        .env_remove("MDC_TOKEN")
        .stdin(Stdio::null())
        .args(args)
        .output()
        .unwrap()
}

fn init(dir: &Path, mode: &str) -> PathBuf {
    let root = dir.join("root");
    let out = mdc(&root, &["init", "--pseudonyms", mode]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    root
}

fn input_with(dir: &Path, names: &[&str]) -> PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(input.join("nested/deeper")).unwrap();
    for (i, n) in names.iter().enumerate() {
        let sub = if i % 2 == 0 {
            "nested"
        } else {
            "nested/deeper"
        };
        std::fs::copy(fixtures().join(n), input.join(sub).join(n)).unwrap();
    }
    input
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                v.push(e.path().strip_prefix(dir).unwrap().to_owned());
            }
        }
    }
    v.sort();
    v
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

const IDENTIFIERS: [&str; 8] = [
    "SIMPSON",
    "HIBBARD",
    "00007041776",
    "CompressedSamples",
    "Hong^Gildong",
    "I2EXAMPLE",
    "김희중",
    "SPRINGFIELD",
];

#[test]
fn deid_dicom_writes_a_registrable_dataset_and_reports_rejects_with_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let root = init(tmp.path(), "keyed");
    let input = input_with(
        tmp.path(),
        &[
            "CT_small.dcm",
            "ctbrain1.dcm",
            "chrI2.dcm",
            "chrKoreanMulti.dcm",
            "MR_truncated.dcm",
            "not_dicom.txt",
            "derived_us_burned_in.dcm",
            "ExplVR_LitEndNoMeta.dcm",
        ],
    );
    let out_dir = tmp.path().join("out");
    let out = mdc(
        &root,
        &[
            "deid",
            "dicom",
            "--input",
            input.to_str().unwrap(),
            "--output",
            out_dir.to_str().unwrap(),
            "--option",
            "clean-descriptors",
            "--json",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["counts"]["done"], 4);
    assert_eq!(summary["counts"]["quarantined"], 1);
    assert_eq!(summary["counts"]["rejected"], 3);
    // Nothing identifying on stdout or stderr, not even file names.
    let stdout = String::from_utf8_lossy(&out.stdout);
    for id in IDENTIFIERS.iter().chain(&["MR_truncated", "ctbrain1"]) {
        assert!(!stderr.contains(id) && !stdout.contains(id));
    }
    assert!(stderr.contains("8/8 files"), "progress on stderr: {stderr}");
    // Report and quarantine sit beside the output, not inside it.
    let report: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("out.report.json")).unwrap())
            .unwrap();
    assert_eq!(report["output_charset"], "ISO_IR 192");
    assert_eq!(report["counts"]["files"], 8);
    assert!(report["actions"]["PatientName"]["P"].as_u64().unwrap() >= 4);
    assert_eq!(files_under(&tmp.path().join("out.quarantine")).len(), 1);
    let written = files_under(&out_dir);
    assert_eq!(written.len(), 4 + 2, "{written:?}");
    for f in &written {
        let bytes = std::fs::read(out_dir.join(f)).unwrap();
        for id in IDENTIFIERS {
            assert!(!contains(&bytes, id.as_bytes()), "residual identifier");
        }
    }
    // The output registers as an imaging dataset as it is.
    let reg = mdc(
        &root,
        &[
            "dataset",
            "register",
            "--name",
            "ct-korea",
            "--path",
            out_dir.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(
        reg.status.success(),
        "{}",
        String::from_utf8_lossy(&reg.stderr)
    );
    let v: Value = serde_json::from_slice(&reg.stdout).unwrap();
    assert_eq!(v["kind"], "dicom");
    // The run itself is in the audit log, with counts and no identifiers.
    let log = mdc(&root, &["audit", "log", "--json"]);
    let log: Value = serde_json::from_slice(&log.stdout).unwrap();
    let entries = log
        .as_array()
        .or_else(|| log["entries"].as_array())
        .unwrap();
    let entry = entries
        .iter()
        .find(|e| e["action"] == "deid.dicom")
        .unwrap_or_else(|| panic!("no deid.dicom entry in {log:#}"));
    let text = entry.to_string();
    assert!(
        text.contains("\"quarantined\":1") && text.contains("\"rejected\":3"),
        "{entry:#}"
    );
    for id in IDENTIFIERS.iter().chain(&["MR_truncated", "ctbrain1"]) {
        assert!(
            !text.contains(id),
            "an identifier or file name in the audit entry"
        );
    }
}

#[test]
fn deid_dicom_is_deterministic_across_runs_and_exits_0_when_all_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let root = init(tmp.path(), "vault");
    let input = input_with(
        tmp.path(),
        &[
            "CT_small.dcm",
            "MR_small_implicit.dcm",
            "JPEG2000.dcm",
            "chrI2.dcm",
        ],
    );
    let mut listings = Vec::new();
    for name in ["a", "b"] {
        let o = tmp.path().join(name);
        let out = mdc(
            &root,
            &[
                "deid",
                "dicom",
                "--input",
                input.to_str().unwrap(),
                "--output",
                o.to_str().unwrap(),
                "--jobs",
                "2",
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let files: Vec<PathBuf> = files_under(&o)
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "dcm"))
            .collect();
        assert_eq!(files.len(), 4);
        listings.push(files);
    }
    // Same patient pseudonym folders, same new study/series/SOP UIDs.
    assert_eq!(listings[0], listings[1]);
}

#[test]
fn deid_dicom_usage_errors_exit_2_and_a_used_output_folder_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let root = init(tmp.path(), "keyed");
    let input = input_with(tmp.path(), &["CT_small.dcm"]);
    let o = tmp.path().join("o");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "deid".to_owned(),
            "dicom".into(),
            "--input".into(),
            input.to_str().unwrap().into(),
            "--output".into(),
            o.to_str().unwrap().into(),
        ];
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        mdc(&root, &refs)
    };
    assert_eq!(
        run(args(&["--option", "retain-everything"])).status.code(),
        Some(2)
    );
    assert_eq!(
        run(args(&["--option", "clean-graphics"])).status.code(),
        Some(2)
    );
    assert_eq!(run(args(&["--profile", "paranoid"])).status.code(), Some(2));
    assert_eq!(run(args(&[])).status.code(), Some(0));
    // The same output folder again: refused, nothing overwritten.
    let again = run(args(&[]));
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    // Only bad input: exit 1, and no output folder is left behind.
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::copy(fixtures().join("not_dicom.txt"), bad.join("x.dcm")).unwrap();
    let o2 = tmp.path().join("o2");
    let r = mdc(
        &root,
        &[
            "deid",
            "dicom",
            "--input",
            bad.to_str().unwrap(),
            "--output",
            o2.to_str().unwrap(),
        ],
    );
    assert_eq!(r.status.code(), Some(1));
    assert!(!o2.exists());
}
