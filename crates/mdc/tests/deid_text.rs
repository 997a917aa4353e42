//! CLI tests of `mdc deid text` (issue 3): the real binary on JSONL notes,
//! good and bad, and on stdin.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn mdc(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mdc"))
        .env("MDC_ROOT", root)
        .env_remove("MDC_TOKEN")
        .stdin(Stdio::null())
        .args(args)
        .output()
        .unwrap()
}

fn init(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    let out = mdc(&root, &["init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    root
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const KO: &str = "환자명: 김민준\n보호자 이서연님 010-2345-6789, 서울특별시 강남구 테헤란로 123 거주. 2024.03.05 내원. 이상 소견 없음, 조영제 투여.";
const EN: &str = "Patient: Smith, John  MRN: 87654321. Seen 03/05/2024 by Dr. Garcia. Parkinson's disease, metformin 500 mg BID.";

fn note(id: &str, text: &str) -> String {
    serde_json::json!({"id": id, "text": text, "ward": "7B", "patient_id": "87654321"}).to_string()
}

#[test]
fn deid_text_tags_notes_spans_in_code_points_and_audits_the_run() {
    let t = tempfile::tempdir().unwrap();
    let root = init(t.path());
    let input = t.path().join("notes.jsonl");
    std::fs::write(&input, format!("{}\n{}\n", note("a", KO), note("b", EN))).unwrap();
    let out_dir = t.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let output = out_dir.join("notes.jsonl");
    let o = mdc(
        &root,
        &[
            "deid",
            "text",
            "--input",
            s(&input),
            "--output",
            s(&output),
            "--keep-fields",
            "ward",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = lines(&output);
    assert_eq!(v.len(), 2);
    let ko = v[0]["text"].as_str().unwrap();
    assert!(ko.starts_with("환자명: [NAME]\n보호자 [NAME]님 [PHONE], [ADDRESS] 거주. [DATE] 내원. 이상 소견 없음, 조영제 투여."), "{ko}");
    // Offsets are code points of the input.
    let chars: Vec<char> = KO.chars().collect();
    let first = &v[0]["spans"][0];
    let (a, b) = (
        first["start"].as_u64().unwrap() as usize,
        first["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(chars[a..b].iter().collect::<String>(), "김민준");
    assert_eq!(first["type"], "NAME");
    assert_eq!(v[0]["ward"], "7B");
    assert!(v[0].get("patient_id").is_none());
    let all = std::fs::read_to_string(&output).unwrap();
    for secret in [
        "김민준",
        "이서연",
        "2345-6789",
        "테헤란로",
        "Smith",
        "Garcia",
        "87654321",
        "03/05/2024",
    ] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
    assert!(all.contains("Parkinson's disease, metformin 500 mg BID"));
    // The manifest describes the notes file.
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["kind"], "notes");
    assert_eq!(m["files"][0]["rows"], 2);
    // One audit entry, with counts and digests only.
    let log = mdc(&root, &["audit", "log", "--json"]);
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(log.contains("deid.text"), "{log}");
    assert!(!log.contains("김민준") && !log.contains("87654321"));
}

#[test]
fn bad_lines_are_rejected_by_line_the_rest_is_processed_and_the_exit_code_is_3() {
    let t = tempfile::tempdir().unwrap();
    let root = init(t.path());
    let input = t.path().join("bad.jsonl");
    let mut f = std::fs::File::create(&input).unwrap();
    writeln!(f, "{}", note("ok1", KO)).unwrap(); // line 1
    f.write_all(b"{\"id\":\"x\",\"text\":\"\xff\xfe \xea\xb9\x80\"}\n")
        .unwrap(); // 2: invalid UTF-8
    writeln!(f).unwrap(); // 3: empty
    writeln!(f, "{{\"id\": \"y\", \"text\": \"김민준님 010-1234-5678").unwrap(); // 4: malformed
    writeln!(f, "{{\"id\": \"z\"}}").unwrap(); // 5: no text
    writeln!(
        f,
        "{{\"id\": \"w\", \"text\": \"{}\"}}",
        "김민준 ".repeat(400_000)
    )
    .unwrap(); // 6: too long
    writeln!(f, "[1, 2]").unwrap(); // 7: not an object
    writeln!(f, "{}", note("ok2", EN)).unwrap(); // 8
    drop(f);
    let output = t.path().join("out.jsonl");
    let o = mdc(
        &root,
        &[
            "deid",
            "text",
            "--input",
            s(&input),
            "--output",
            s(&output),
            "--max-note-bytes",
            "1000000",
            "--no-manifest",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = lines(&output);
    assert_eq!(
        v.iter()
            .map(|l| l["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["ok1", "ok2"]
    );
    let report = std::fs::read_to_string(t.path().join("out.jsonl.rejects.jsonl")).unwrap();
    let rejected: Vec<Value> = report
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let nums: Vec<u64> = rejected
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(nums, [2, 3, 4, 5, 6, 7]);
    assert!(rejected[0]["error"].as_str().unwrap().contains("UTF-8"));
    assert!(rejected[2]["error"]
        .as_str()
        .unwrap()
        .contains("malformed JSON"));
    assert!(rejected[3]["error"].as_str().unwrap().contains("`text`"));
    assert!(rejected[4]["error"]
        .as_str()
        .unwrap()
        .contains("max-note-bytes"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    for hay in [
        report.as_str(),
        &stderr,
        &String::from_utf8_lossy(&o.stdout),
    ] {
        assert!(
            !hay.contains("김민준") && !hay.contains("1234-5678"),
            "a value was echoed: {hay}"
        );
    }
}

#[test]
fn a_50_mb_single_note_is_rejected_with_memory_bounded_and_the_rest_kept() {
    let t = tempfile::tempdir().unwrap();
    let root = init(t.path());
    let input = t.path().join("huge.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    writeln!(f, "{}", note("small", EN)).unwrap();
    write!(f, "{{\"id\":\"huge\",\"text\":\"").unwrap();
    let chunk = "Patient John Smith 010-1234-5678 ".repeat(1000);
    let mut written = 0;
    while written < 50_000_000 {
        f.write_all(chunk.as_bytes()).unwrap();
        written += chunk.len();
    }
    writeln!(f, "\"}}").unwrap();
    writeln!(f, "{}", note("after", KO)).unwrap();
    drop(f);
    let output = t.path().join("o.jsonl");
    let o = mdc(
        &root,
        &[
            "deid",
            "text",
            "--input",
            s(&input),
            "--output",
            s(&output),
            "--no-manifest",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let ids: Vec<String> = lines(&output)
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["small", "after"]);
}

#[test]
fn a_failed_run_leaves_no_partial_output() {
    let t = tempfile::tempdir().unwrap();
    let root = init(t.path());
    let input = t.path().join("notes.jsonl");
    std::fs::write(&input, format!("{}\n", note("a", KO))).unwrap();
    // A researcher may not de-identify: refused before anything is written.
    let issued = mdc(&root, &["user", "add", "kim", "--roles", "researcher"]);
    assert!(issued.status.success());
    let tok = mdc(&root, &["token", "issue", "--user", "kim", "--json"]);
    let tok: Value = serde_json::from_slice(&tok.stdout).unwrap();
    let token = tok["secret"].as_str().unwrap();
    let output = t.path().join("out.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_mdc"))
        .env("MDC_ROOT", &root)
        .env("MDC_TOKEN", token)
        .args(["deid", "text", "--input", s(&input), "--output", s(&output)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(!output.exists());
    // A folder whose manifest describes something else is never clobbered.
    std::fs::write(t.path().join("manifest.json"), "{\"kind\":\"tables\"}").unwrap();
    let o = mdc(
        &root,
        &["deid", "text", "--input", s(&input), "--output", s(&output)],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(!output.exists());
    let leftovers: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn stdin_plain_text_goes_to_stdout() {
    let t = tempfile::tempdir().unwrap();
    let root = init(t.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_mdc"))
        .env("MDC_ROOT", &root)
        .env_remove("MDC_TOKEN")
        .args(["deid", "text"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("김민준님 연락처 010-1234-5678, 정상 소견.".as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "[NAME]님 연락처 [PHONE], 정상 소견."
    );
}

#[test]
fn surrogate_and_pseudonym_modes_are_deterministic_for_the_key() {
    let t = tempfile::tempdir().unwrap();
    let root = init(t.path());
    let input = t.path().join("n.jsonl");
    std::fs::write(&input, format!("{}\n{}\n", note("a", KO), note("b", EN))).unwrap();
    for mode in ["surrogate", "pseudonym", "detect"] {
        let o1 = t.path().join(format!("{mode}1.jsonl"));
        let o2 = t.path().join(format!("{mode}2.jsonl"));
        for o in [&o1, &o2] {
            let r = mdc(
                &root,
                &[
                    "deid",
                    "text",
                    "--mode",
                    mode,
                    "--input",
                    s(&input),
                    "--output",
                    s(o),
                    "--no-manifest",
                ],
            );
            assert_eq!(
                r.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&r.stderr)
            );
        }
        let (a, b) = (std::fs::read(&o1).unwrap(), std::fs::read(&o2).unwrap());
        assert_eq!(a, b, "{mode} is not deterministic");
        let text = String::from_utf8(a).unwrap();
        for secret in ["김민준", "이서연", "010-2345-6789", "Smith", "87654321"] {
            assert!(!text.contains(secret), "{mode}: {secret} leaked");
        }
        if mode == "detect" {
            assert!(lines(&o1)[0].get("text").is_none());
        }
    }
}

#[test]
fn explain_is_refused_when_stderr_is_not_a_terminal() {
    let t = tempfile::tempdir().unwrap();
    let root = init(t.path());
    let o = mdc(&root, &["deid", "text", "--explain"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn text_eval_meets_the_issue_targets() {
    let t = tempfile::tempdir().unwrap();
    let o = mdc(
        &t.path().join("none"),
        &["deid", "text-eval", "--notes", "600", "--check"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("targets met: yes"), "{out}");
    let c = t.path().join("c.jsonl");
    let o = mdc(
        &t.path().join("none"),
        &["deid", "text-corpus", "--out", s(&c), "--notes", "10"],
    );
    assert!(o.status.success());
    assert_eq!(lines(&c).len(), 10);
}
