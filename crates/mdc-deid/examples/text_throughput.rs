//! Engine throughput of `mdc_deid::text` on a JSONL file, the same per-line
//! work as `mdc deid text --mode tag` (parse the JSON line, detect, tag,
//! serialise) without the CLI around it. Used by benches/text when a full
//! release build of `mdc` is not at hand; the end-to-end figure comes from
//! `mdc deid text` itself.
//!
//! cargo run --release -p mdc-deid --example text_throughput -- FILE.jsonl [THREADS]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::time::Instant;

use mdc_deid::text::{transform, DetectOptions, Detector, Mode, TransformContext};

fn process(d: &Detector, line: &str, out: &mut Vec<u8>) -> usize {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let text = v["text"].as_str().unwrap();
    let spans = d.detect(text, &DetectOptions::default());
    let t = transform(text, &spans, Mode::Tag, &TransformContext::default()).unwrap();
    out.extend_from_slice(b"{\"id\":");
    serde_json::to_writer(&mut *out, &v["id"]).unwrap();
    out.extend_from_slice(b",\"text\":");
    serde_json::to_writer(&mut *out, &t).unwrap();
    for s in &spans {
        let _ = write!(out, "[{},{},\"{}\"]", s.start, s.end, s.ty.as_str());
    }
    out.push(b'\n');
    spans.len()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .expect("usage: text_throughput FILE.jsonl [THREADS]");
    let threads: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(1);
    let d = Detector::new().unwrap();
    let lines: Vec<String> = BufReader::new(std::fs::File::open(path).unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    if std::env::var_os("PROFILE_RULES").is_some() {
        // Time each rule's pattern alone on the note texts.
        let texts: Vec<String> = lines
            .iter()
            .take(5000)
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["text"].as_str().unwrap().to_owned()
            })
            .collect();
        let mb: f64 = texts.iter().map(String::len).sum::<usize>() as f64 / 1e6;
        let rules = mdc_deid::text::rule_patterns();
        let all: Vec<&str> = rules.iter().map(|p| p.1.as_str()).collect();
        let time = |ps: &[&str]| {
            let re = regex_automata::meta::Regex::new_many(ps).unwrap();
            let t = Instant::now();
            let n: usize = texts.iter().map(|t| re.find_iter(t.as_str()).count()).sum();
            (n, mb / t.elapsed().as_secs_f64())
        };
        for (name, p) in &rules {
            let (n, r) = time(&[p.as_str()]);
            println!("{name:<28} {n:>7} matches {r:>8.1} MB/s");
        }
        if let Ok(groups) = std::env::var("PROFILE_GROUPS") {
            let mut inv = 0.0;
            for g in groups.split('|') {
                let names: Vec<&str> = g.split(',').collect();
                let ps: Vec<&str> = rules
                    .iter()
                    .filter(|p| names.contains(&p.0))
                    .map(|p| p.1.as_str())
                    .collect();
                let (n, r) = time(&ps);
                inv += 1.0 / r;
                println!("group {g}: {n} matches {r:.1} MB/s");
            }
            println!("groups together: {:.1} MB/s", 1.0 / inv);
            return;
        }
        let (n, r) = time(&all);
        println!("{:<28} {n:>7} matches {r:>8.1} MB/s", "ALL");
        return;
    }
    let start = Instant::now();
    let chunk = lines.len().div_ceil(threads);
    let spans: usize = std::thread::scope(|s| {
        let hs: Vec<_> = lines
            .chunks(chunk)
            .map(|part| {
                let d = &d;
                s.spawn(move || {
                    let mut out = Vec::with_capacity(1 << 20);
                    let mut n = 0;
                    for l in part {
                        n += process(d, l, &mut out);
                        if out.len() > 1 << 20 {
                            out.clear();
                        }
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} notes, {:.1} MB, {} spans, {} thread(s): {:.2} s, {:.1} MB/s",
        lines.len(),
        bytes as f64 / 1e6,
        spans,
        threads,
        secs,
        bytes as f64 / 1e6 / secs
    );
}
