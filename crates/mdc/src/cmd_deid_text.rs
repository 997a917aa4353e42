//! `mdc deid text`, `mdc deid text-eval`, `mdc deid text-corpus`: free-text
//! de-identification of clinical notes (issue 3), its evaluation on a
//! generated labelled corpus, and the corpus generator for benchmarks.
//!
//! The input is streamed line by line with a bounded buffer, processed in
//! batches on all cores, and written in order to a temporary file that is
//! renamed over the output only when the run succeeds: a failed run leaves no
//! partial output. Bad lines (invalid UTF-8, malformed JSON, empty, too long)
//! are rejected one by one into a report that names the line and the field,
//! never a value; the rest is processed and the exit code is 3 (DESIGN §9).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use mdc_deid::text::corpus::{self, CorpusLang};
use mdc_deid::text::eval::{self, Score};
use mdc_deid::text::{self, DetectOptions, Detector, Known, Lang, Mode, Span, TransformContext};
use mdc_deid::Pseudonymizer;
use mdc_store::DeidParam;
use mdc_types::manifest::{
    Manifest, ManifestFile, ManifestKind, PolicyRef, Rejected, SourceRef, MANIFEST_FILE,
    MANIFEST_FORMAT,
};
use mdc_types::{PhiType, SourceId};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cli::Global;

/// Exit code 3: done, but some records were rejected (DESIGN §9).
const EXIT_REJECTS: u8 = 3;
/// Exit code 2: usage error.
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LangArg {
    Auto,
    Ko,
    En,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Tag,
    Surrogate,
    Pseudonym,
    Detect,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CorpusLangArg {
    Ko,
    En,
    Mixed,
}

#[derive(Debug, Args)]
pub struct TextArgs {
    /// JSONL notes: {"id", "text", optional "patient_id", "known"}. Without it,
    /// plain text is read from stdin and written to stdout.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Output JSONL: {"id", "text", "spans"} (required with --input).
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    pub lang: LangArg,
    #[arg(long, value_enum, default_value = "tag")]
    pub mode: ModeArg,
    /// Other input fields to copy to the output unchanged (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub keep_fields: Vec<String>,
    /// Print every span with its type, rule and context to this terminal
    /// (contains identifiers: refused unless stderr is a terminal).
    #[arg(long)]
    pub explain: bool,
    /// Reject report (default: OUTPUT.rejects.jsonl).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Notes longer than this many bytes are rejected.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub max_note_bytes: usize,
    /// Do not write manifest.json next to the output.
    #[arg(long)]
    pub no_manifest: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct TextEvalArgs {
    /// Notes to generate.
    #[arg(long, default_value_t = 4000)]
    pub notes: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "mixed")]
    pub lang: CorpusLangArg,
    /// Exit 1 unless every target of issue 3 is met.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct TextCorpusArgs {
    /// Output JSONL (input lines of `mdc deid text` plus "lang" and "gold").
    #[arg(long)]
    pub out: PathBuf,
    /// Number of notes (ignored when --bytes is given).
    #[arg(long, default_value_t = 1000)]
    pub notes: usize,
    /// Stop once the file has at least this many bytes (e.g. 40000000).
    #[arg(long)]
    pub bytes: Option<u64>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "mixed")]
    pub lang: CorpusLangArg,
}

fn lang(l: LangArg) -> Lang {
    match l {
        LangArg::Auto => Lang::Auto,
        LangArg::Ko => Lang::Ko,
        LangArg::En => Lang::En,
    }
}

fn mode(m: ModeArg) -> Mode {
    match m {
        ModeArg::Tag => Mode::Tag,
        ModeArg::Surrogate => Mode::Surrogate,
        ModeArg::Pseudonym => Mode::Pseudonym,
        ModeArg::Detect => Mode::Detect,
    }
}

fn corpus_lang(l: CorpusLangArg) -> CorpusLang {
    match l {
        CorpusLangArg::Ko => CorpusLang::Ko,
        CorpusLangArg::En => CorpusLang::En,
        CorpusLangArg::Mixed => CorpusLang::Mixed,
    }
}

fn phi_type(s: &str) -> Option<PhiType> {
    Some(match s.to_ascii_uppercase().as_str() {
        "NAME" => PhiType::Name,
        "RRN" => PhiType::Rrn,
        "PHONE" => PhiType::Phone,
        "EMAIL" => PhiType::Email,
        "ADDRESS" => PhiType::Address,
        "DATE" => PhiType::Date,
        "AGE" => PhiType::Age,
        "MRN" => PhiType::Mrn,
        "ID" => PhiType::Id,
        "URL" => PhiType::Url,
        "IP" => PhiType::Ip,
        _ => return None,
    })
}

/// Everything one line needs; shared by the worker threads.
struct LineCtx<'a> {
    detector: &'a Detector,
    lang: Lang,
    mode: Mode,
    pseudonymizer: Option<&'a dyn Pseudonymizer>,
    keep: &'a [String],
    explain: bool,
}

/// A processed line: its output JSON, or why it was rejected.
enum LineOut {
    Done {
        json: Vec<u8>,
        spans: u64,
        explain: String,
    },
    Rejected(String),
    /// A failure of the system, not of the line (e.g. the vault): abort the run.
    Fatal(anyhow::Error),
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    // Serialising a &str cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn known_from(v: &Value, known: &mut Known) -> Result<(), String> {
    let add_value = |known: &mut Known, ty: Option<PhiType>, v: &Value| -> Result<(), String> {
        match v {
            Value::String(s) => known.add(ty, s),
            Value::Number(n) => known.add(ty, &n.to_string()),
            Value::Array(items) => {
                for i in items {
                    match i {
                        Value::String(s) => known.add(ty, s),
                        Value::Number(n) => known.add(ty, &n.to_string()),
                        _ => return Err("field `known` holds a value that is not a string".into()),
                    }
                }
            }
            _ => return Err("field `known` holds a value that is not a string".into()),
        }
        Ok(())
    };
    match v {
        Value::Null => Ok(()),
        Value::Array(_) | Value::String(_) => add_value(known, None, v),
        Value::Object(map) => {
            for (k, items) in map {
                let ty = phi_type(k).ok_or_else(|| {
                    "field `known` has a key that is not a PHI type of DESIGN §5".to_owned()
                })?;
                add_value(known, Some(ty), items)?;
            }
            Ok(())
        }
        _ => Err("field `known` must be an object of PHI type → strings, or an array".into()),
    }
}

/// The fields of an input line that the run reads.
#[derive(serde::Deserialize)]
struct NoteIn {
    id: Option<Value>,
    text: Option<Value>,
    patient_id: Option<Value>,
    known: Option<Value>,
}

/// A JSON error without its message, which may quote a value.
fn malformed(e: &serde_json::Error) -> String {
    format!(
        "malformed JSON ({:?} error at column {})",
        e.classify(),
        e.column()
    )
}

fn process_line(c: &LineCtx<'_>, bytes: &[u8]) -> LineOut {
    let Ok(line) = std::str::from_utf8(bytes) else {
        let at = std::str::from_utf8(bytes)
            .err()
            .map_or(0, |e| e.valid_up_to());
        return LineOut::Rejected(format!("invalid UTF-8 at byte {at} of the line"));
    };
    if line.trim().is_empty() {
        return LineOut::Rejected("empty line".into());
    }
    // Without --keep-fields only four fields matter: parsing into a struct
    // skips the rest without building a map (measured faster).
    if !line.trim_start().starts_with('{') {
        return LineOut::Rejected("the line is not a JSON object".into());
    }
    let obj: serde_json::Map<String, Value> = if c.keep.is_empty() {
        match serde_json::from_str::<NoteIn>(line) {
            Ok(n) => [
                ("id", n.id),
                ("text", n.text),
                ("patient_id", n.patient_id),
                ("known", n.known),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect(),
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                return LineOut::Rejected("the line is not a JSON object".into())
            }
            Err(e) => return LineOut::Rejected(malformed(&e)),
        }
    } else {
        match serde_json::from_str(line) {
            Ok(Value::Object(obj)) => obj,
            Ok(_) => return LineOut::Rejected("the line is not a JSON object".into()),
            Err(e) => return LineOut::Rejected(malformed(&e)),
        }
    };
    let Some(id @ (Value::String(_) | Value::Number(_))) = obj.get("id") else {
        return LineOut::Rejected("field `id` is missing or not a string or number".into());
    };
    let Some(Value::String(text)) = obj.get("text") else {
        return LineOut::Rejected("field `text` is missing or not a string".into());
    };
    let patient = match obj.get("patient_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(SourceId::new(s.clone())),
        Some(Value::Number(n)) => Some(SourceId::new(n.to_string())),
        Some(_) => {
            return LineOut::Rejected(
                "field `patient_id` is not a non-empty string or number".into(),
            )
        }
    };
    let mut known = Known::new();
    if let Some(k) = obj.get("known") {
        if let Err(e) = known_from(k, &mut known) {
            return LineOut::Rejected(e);
        }
    }
    if let Some(p) = &patient {
        // The record number itself is an identifier of this note's patient.
        known.add(Some(PhiType::Mrn), p.expose());
    }
    let spans = c.detector.detect(
        text,
        &DetectOptions {
            lang: c.lang,
            known: (!known.is_empty()).then_some(&known),
        },
    );
    let note_key = match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let out_text = if c.mode == Mode::Detect {
        None
    } else {
        match text::transform(
            text,
            &spans,
            c.mode,
            &TransformContext {
                pseudonymizer: c.pseudonymizer,
                patient: patient.as_ref(),
                note_key: Some(&note_key),
            },
        ) {
            Ok(t) => Some(t),
            Err(e) => {
                return LineOut::Fatal(anyhow::Error::new(e).context("de-identification failed"))
            }
        }
    };
    let mut json = Vec::with_capacity(text.len() + 64 + spans.len() * 40);
    json.extend_from_slice(b"{\"id\":");
    let _ = serde_json::to_writer(&mut json, id);
    if let Some(t) = &out_text {
        json.extend_from_slice(b",\"text\":");
        json_string(&mut json, t);
    }
    json.extend_from_slice(b",\"spans\":[");
    for (i, s) in spans.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        let _ = write!(
            json,
            "{{\"start\":{},\"end\":{},\"type\":\"{}\"}}",
            s.start,
            s.end,
            s.ty.as_str()
        );
    }
    json.push(b']');
    for k in c.keep {
        if let Some(v) = obj.get(k) {
            json.push(b',');
            json_string(&mut json, k);
            json.push(b':');
            let _ = serde_json::to_writer(&mut json, v);
        }
    }
    json.extend_from_slice(b"}\n");
    let explain = if c.explain {
        explain_lines(text, &spans)
    } else {
        String::new()
    };
    LineOut::Done {
        json,
        spans: spans.len() as u64,
        explain,
    }
}

/// `--explain`: each span with type, rule and ±24 characters of context.
pub fn explain_lines(text: &str, spans: &[Span]) -> String {
    let mut out = String::new();
    for s in spans {
        let before = &text[..s.bytes.start];
        let after = &text[s.bytes.end..];
        let b: String = before
            .chars()
            .rev()
            .take(24)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let a: String = after.chars().take(24).collect();
        let ctx = format!("{b}⟦{}⟧{a}", &text[s.bytes.clone()]).replace(['\n', '\r', '\t'], " ");
        let _ = writeln!(
            out,
            "  {:<7} {:>6}..{:<6} {:<28} {ctx}",
            s.ty.as_str(),
            s.start,
            s.end,
            s.rule
        );
    }
    out
}

/// Reads one line into `buf` (without the newline), keeping at most `max`
/// bytes: a longer line is consumed and reported as too long, so memory stays
/// bounded whatever the input. Returns `None` at the end of input.
fn read_bounded(
    r: &mut impl BufRead,
    max: usize,
    buf: &mut Vec<u8>,
    hasher: &mut Sha256,
) -> std::io::Result<Option<(bool, u64)>> {
    buf.clear();
    let mut too_long = false;
    let mut seen = 0u64;
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Ok((seen > 0).then_some((too_long, seen)));
        }
        let (take, newline) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (avail.len(), false),
        };
        hasher.update(&avail[..take + usize::from(newline)]);
        if !too_long {
            if buf.len() + take > max {
                too_long = true;
                buf.clear();
                buf.shrink_to(64 * 1024);
            } else {
                buf.extend_from_slice(&avail[..take]);
            }
        }
        let used = take + usize::from(newline);
        seen += used as u64;
        r.consume(used);
        if newline {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some((too_long, seen)));
        }
    }
}

struct Progress {
    enabled: bool,
    total: u64,
    start: Instant,
    last: Instant,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let now = Instant::now();
        Progress {
            enabled: std::io::stderr().is_terminal() && total > 4 * 1024 * 1024,
            total,
            start: now,
            last: now,
        }
    }
    fn tick(&mut self, done: u64) {
        if !self.enabled || self.last.elapsed().as_millis() < 200 {
            return;
        }
        self.last = Instant::now();
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let width = 30usize;
        let frac = (done as f64 / self.total.max(1) as f64).min(1.0);
        let filled = (frac * width as f64) as usize;
        eprint!(
            "\r  [{}{}] {:>5.1}%  {:.1}/{:.1} MB  {:.1} MB/s ",
            "#".repeat(filled),
            "-".repeat(width - filled),
            frac * 100.0,
            done as f64 / 1e6,
            self.total as f64 / 1e6,
            done as f64 / 1e6 / secs
        );
    }
    fn finish(&self) {
        if self.enabled {
            eprint!("\r{}\r", " ".repeat(72));
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Counts of one run, for the summary, the manifest and the audit entry.
#[derive(Debug, Default, serde::Serialize)]
struct Summary {
    notes: u64,
    rejected: u64,
    spans: u64,
    bytes: u64,
    seconds: f64,
    mb_per_s: f64,
    output: Option<String>,
    rejects_report: Option<String>,
}

pub async fn run_text(g: &Global, a: TextArgs) -> anyhow::Result<u8> {
    if a.explain && !std::io::stderr().is_terminal() {
        eprintln!("error: --explain prints identifiers and is for a terminal only; stderr is not a terminal");
        return Ok(EXIT_USAGE);
    }
    for k in &a.keep_fields {
        if matches!(k.as_str(), "id" | "text" | "spans" | "patient_id" | "known") {
            eprintln!("error: --keep-fields cannot name `{k}`: it is written by mdc or carries identifiers");
            return Ok(EXIT_USAGE);
        }
    }
    if a.input.is_some() != a.output.is_some() {
        eprintln!("error: --input and --output go together (without both, stdin is read and stdout written)");
        return Ok(EXIT_USAGE);
    }
    let (store, actor) = crate::commands::open_as(g).await?;
    let allowed = store.authorize_deid(&actor).await?;
    let mode = mode(a.mode);
    let pseudonymizer = if mode.needs_key() {
        Some(store.pseudonymizer()?)
    } else {
        None
    };
    let detector = Detector::new()?;
    let ctx = LineCtx {
        detector: &detector,
        lang: lang(a.lang),
        mode,
        pseudonymizer: pseudonymizer.as_deref(),
        keep: &a.keep_fields,
        explain: a.explain,
    };
    let (summary, in_sha, out_sha) = match (&a.input, &a.output) {
        (Some(input), Some(output)) => run_jsonl(&ctx, &a, input, output)?,
        _ => run_stdin(&ctx, a.max_note_bytes)?,
    };
    let mut params = vec![
        ("mode", DeidParam::Word(mode.as_str())),
        (
            "lang",
            DeidParam::Word(match a.lang {
                LangArg::Auto => "auto",
                LangArg::Ko => "ko",
                LangArg::En => "en",
            }),
        ),
        ("notes", DeidParam::Count(summary.notes)),
        ("rejected", DeidParam::Count(summary.rejected)),
        ("spans", DeidParam::Count(summary.spans)),
        ("bytes", DeidParam::Count(summary.bytes)),
        ("input_sha256", DeidParam::Digest(in_sha)),
        ("output_sha256", DeidParam::Digest(out_sha)),
    ];
    if let Some(p) = &pseudonymizer {
        params.push(("key_id", DeidParam::Digest(p.key_id().to_owned())));
    }
    store
        .record_deid_run(&actor, allowed, "text", &params)
        .await?;
    store.close().await;
    if a.input.is_some() {
        crate::output::emit(g.json, &summary, |s| {
            println!(
                "de-identified {} notes ({} spans, mode {}), rejected {}, {:.1} MB in {:.2} s ({:.1} MB/s)",
                s.notes,
                s.spans,
                mode.as_str(),
                s.rejected,
                s.bytes as f64 / 1e6,
                s.seconds,
                s.mb_per_s
            );
            if let Some(r) = &s.rejects_report {
                println!("  reject report: {r} (line numbers and reasons, no values)");
            }
        })?;
    }
    Ok(if summary.rejected > 0 {
        EXIT_REJECTS
    } else {
        0
    })
}

fn run_stdin(c: &LineCtx<'_>, max: usize) -> anyhow::Result<(Summary, String, String)> {
    let start = Instant::now();
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .context("cannot read stdin")?;
    if bytes.len() > max {
        bail!("stdin holds more than --max-note-bytes ({max}) bytes");
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        bail!("stdin is not valid UTF-8");
    };
    let spans = c.detector.detect(
        text,
        &DetectOptions {
            lang: c.lang,
            known: None,
        },
    );
    let out = if c.mode == Mode::Detect {
        let mut s = String::new();
        for sp in &spans {
            let _ = writeln!(s, "{}\t{}\t{}", sp.start, sp.end, sp.ty.as_str());
        }
        s
    } else {
        text::transform(
            text,
            &spans,
            c.mode,
            &TransformContext {
                pseudonymizer: c.pseudonymizer,
                patient: None,
                note_key: Some("stdin"),
            },
        )?
    };
    if c.explain {
        eprint!("{}", explain_lines(text, &spans));
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    let seconds = start.elapsed().as_secs_f64();
    let summary = Summary {
        notes: 1,
        spans: spans.len() as u64,
        bytes: bytes.len() as u64,
        seconds,
        mb_per_s: bytes.len() as f64 / 1e6 / seconds.max(1e-9),
        ..Summary::default()
    };
    Ok((
        summary,
        hex(Sha256::digest(&bytes)),
        hex(Sha256::digest(out.as_bytes())),
    ))
}

/// The notes manifest next to the output (DESIGN §3). An existing manifest for
/// anything else is never overwritten.
fn manifest_check(output: &Path) -> anyhow::Result<Option<PathBuf>> {
    let path = parent_dir(output).join(MANIFEST_FILE);
    if path.exists() {
        let existing: Option<Manifest> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let name = output.file_name().map(|n| n.to_string_lossy().into_owned());
        let ours = existing.is_some_and(|m| {
            m.kind == ManifestKind::Notes
                && m.files.len() == 1
                && Some(&m.files[0].path) == name.as_ref()
        });
        if !ours {
            bail!(
                "{} already exists and describes other files; write the output into its own folder or pass --no-manifest",
                path.display()
            );
        }
    }
    Ok(Some(path))
}

fn run_jsonl(
    c: &LineCtx<'_>,
    a: &TextArgs,
    input: &Path,
    output: &Path,
) -> anyhow::Result<(Summary, String, String)> {
    let manifest_path = if a.no_manifest {
        None
    } else {
        manifest_check(output)?
    };
    let file =
        std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let dir = parent_dir(output);
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, tmp);
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let start = Instant::now();
    let max_note = a.max_note_bytes;
    // Three stages overlap: a reader thread splits and hashes the input into
    // 4 MB batches, the workers de-identify one batch while the next is read,
    // and a writer thread hashes and writes the previous one, in input order.
    let (summary, writer, out_hash, rejects, in_hash) = std::thread::scope(|s| {
        let (batch_tx, batch_rx) = std::sync::mpsc::sync_channel::<Batch>(1);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<(Batch, Vec<LineOut>)>(1);
        let reader_h = s.spawn(move || -> anyhow::Result<Sha256> {
            let mut in_hash = Sha256::new();
            let mut line_no = 0u64;
            let mut buf = Vec::new();
            let batch_bytes = 4 << 20;
            let mut done = false;
            while !done {
                // One batch: lines (or their rejection) in input order.
                let mut batch = Batch::default();
                let mut size = 0usize;
                while size < batch_bytes && batch.lines.len() < 20_000 {
                    match read_bounded(&mut reader, max_note, &mut buf, &mut in_hash)
                        .with_context(|| format!("cannot read {}", input.display()))?
                    {
                        None => {
                            done = true;
                            break;
                        }
                        Some((too_long, seen)) => {
                            line_no += 1;
                            batch.bytes += seen;
                            if too_long {
                                batch.lines.push((
                                    line_no,
                                    Err(format!(
                                        "note longer than --max-note-bytes ({max_note} bytes)"
                                    )),
                                ));
                            } else {
                                size += buf.len();
                                batch.lines.push((line_no, Ok(std::mem::take(&mut buf))));
                            }
                        }
                    }
                }
                if batch_tx.send(batch).is_err() {
                    // The writer stopped on an error; it reports it.
                    break;
                }
            }
            Ok(in_hash)
        });
        let writer_h = s.spawn(move || -> anyhow::Result<_> {
            let mut summary = Summary::default();
            let mut out_hash = Sha256::new();
            let mut rejects: Vec<u8> = Vec::new();
            let mut progress = Progress::new(total);
            for (batch, results) in done_rx {
                summary.bytes += batch.bytes;
                for ((n, _), r) in batch.lines.iter().zip(results) {
                    match r {
                        LineOut::Done {
                            json,
                            spans,
                            explain,
                        } => {
                            out_hash.update(&json);
                            writer.write_all(&json)?;
                            summary.notes += 1;
                            summary.spans += spans;
                            if !explain.is_empty() {
                                eprint!("line {n}:\n{explain}");
                            }
                        }
                        LineOut::Rejected(reason) => {
                            summary.rejected += 1;
                            rejects
                                .extend_from_slice(format!("{{\"line\":{n},\"error\":").as_bytes());
                            json_string(&mut rejects, &reason);
                            rejects.extend_from_slice(b"}\n");
                        }
                        LineOut::Fatal(e) => return Err(e.context(format!("line {n}"))),
                    }
                }
                progress.tick(summary.bytes);
            }
            progress.finish();
            Ok((summary, writer, out_hash, rejects))
        });
        for batch in batch_rx {
            let results = process_batch(c, &batch.lines, threads);
            if done_tx.send((batch, results)).is_err() {
                break;
            }
        }
        drop(done_tx);
        let written = writer_h
            .join()
            .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
        let in_hash = reader_h
            .join()
            .map_err(|_| anyhow::anyhow!("the reader thread panicked"))?;
        let (summary, writer, out_hash, rejects) = written?;
        anyhow::Ok((summary, writer, out_hash, rejects, in_hash?))
    })?;
    let mut summary = summary;
    let tmp = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write the output: {}", e.error()))?;
    tmp.as_file().sync_all()?;
    tmp.persist(output)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let rejects_path = a
        .rejects
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.rejects.jsonl", output.display())));
    if summary.rejected > 0 {
        write_atomic(&rejects_path, &rejects)?;
        summary.rejects_report = Some(rejects_path.display().to_string());
    } else if rejects_path.exists() {
        // A report from an earlier run would now be wrong.
        std::fs::remove_file(&rejects_path)
            .with_context(|| format!("cannot remove stale {}", rejects_path.display()))?;
    }
    summary.seconds = start.elapsed().as_secs_f64();
    summary.mb_per_s = summary.bytes as f64 / 1e6 / summary.seconds.max(1e-9);
    summary.output = Some(output.display().to_string());
    if !c.explain {
        eprintln!(
            "deid text: {} notes, {} rejected, {:.1} MB/s",
            summary.notes, summary.rejected, summary.mb_per_s
        );
    }
    let in_sha = hex(in_hash.finalize());
    let out_sha = hex(out_hash.finalize());
    if let Some(mpath) = manifest_path {
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let manifest = Manifest {
            format_version: MANIFEST_FORMAT,
            kind: ManifestKind::Notes,
            tables: vec![],
            files: vec![ManifestFile {
                path: name,
                sha256: out_sha.clone(),
                rows: Some(summary.notes),
            }],
            key_id: c
                .pseudonymizer
                .map(|p| p.key_id().to_owned())
                .unwrap_or_default(),
            pseudonym_mode: c.pseudonymizer.map_or("none", Pseudonymizer::mode).into(),
            policy: PolicyRef {
                name: format!("text-{}", c.mode.as_str()),
                sha256: hex(Sha256::digest(
                    format!(
                        "mdc-deid-text/{}/{}",
                        env!("CARGO_PKG_VERSION"),
                        c.mode.as_str()
                    )
                    .as_bytes(),
                )),
            },
            source: SourceRef {
                description: "free-text notes (JSONL)".into(),
                sha256: in_sha.clone(),
            },
            created_at: mdc_store::audit::now_text(),
            mdc_version: env!("CARGO_PKG_VERSION").into(),
            rejected: Rejected {
                count: summary.rejected,
                report: summary.rejects_report.clone(),
            },
        };
        write_atomic(&mpath, serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    }
    Ok((summary, in_sha, out_sha))
}

/// Input lines read together: (line number, bytes or why they were refused).
#[derive(Default)]
struct Batch {
    lines: Vec<(u64, Result<Vec<u8>, String>)>,
    /// Input bytes the batch covers, refused lines included.
    bytes: u64,
}

/// Lines a worker takes at a time.
const CHUNK: usize = 64;

fn process_batch(
    c: &LineCtx<'_>,
    batch: &[(u64, Result<Vec<u8>, String>)],
    threads: usize,
) -> Vec<LineOut> {
    let one = |item: &(u64, Result<Vec<u8>, String>)| match &item.1 {
        Ok(bytes) => process_line(c, bytes),
        Err(reason) => LineOut::Rejected(reason.clone()),
    };
    if threads <= 1 || batch.len() < 2 {
        return batch.iter().map(one).collect();
    }
    // Workers take small chunks from a shared counter, so a thread that drew
    // short notes does not sit idle while another finishes long ones.
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let at = next.fetch_add(CHUNK, std::sync::atomic::Ordering::Relaxed);
                        if at >= batch.len() {
                            break;
                        }
                        let part = &batch[at..(at + CHUNK).min(batch.len())];
                        mine.push((at, part.iter().map(one).collect::<Vec<_>>()));
                    }
                    mine
                })
            })
            .collect();
        let mut parts = Vec::new();
        for h in handles {
            match h.join() {
                Ok(v) => parts.extend(v),
                Err(_) => return vec![LineOut::Fatal(anyhow::anyhow!("a worker thread panicked"))],
            }
        }
        parts.sort_unstable_by_key(|(at, _)| *at);
        parts.into_iter().flat_map(|(_, v)| v).collect()
    })
}

/// `mdc deid text-eval`: generate the labelled corpus, detect, score.
pub fn run_eval(g: &Global, a: &TextEvalArgs) -> anyhow::Result<u8> {
    let detector = Detector::new()?;
    let notes = corpus::generate(a.seed, a.notes, corpus_lang(a.lang));
    let mut score = Score::default();
    let start = Instant::now();
    for n in &notes {
        let mut known = Known::new();
        for (t, v) in &n.known {
            known.add(Some(*t), v);
        }
        known.add(Some(PhiType::Mrn), &n.patient_id);
        let spans = detector.detect(
            &n.text,
            &DetectOptions {
                lang: Lang::Auto,
                known: Some(&known),
            },
        );
        score.add(&n.text, &n.gold, &spans);
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let mut met = true;
    for (ty, t) in &score.per_type {
        if t.recall().is_some_and(|r| r < eval::recall_target(*ty)) {
            met = false;
        }
    }
    if score
        .total
        .precision()
        .is_some_and(|p| p < eval::PRECISION_TARGET)
    {
        met = false;
    }
    crate::output::emit(g.json, &score, |s| {
        println!(
            "corpus: {} notes ({:.1} MB, seed {}, {:?}), detector {:.1} MB/s on one thread",
            s.notes,
            s.bytes as f64 / 1e6,
            a.seed,
            a.lang,
            s.bytes as f64 / 1e6 / secs
        );
        println!("  type     gold  caught  recall  target  char-precision");
        let f = |x: Option<f64>| x.map_or("    -".to_owned(), |v| format!("{v:.4}"));
        for (ty, t) in &s.per_type {
            println!(
                "  {:<7} {:>5}  {:>6}  {}  {:>6.2}  {}",
                ty.as_str(),
                t.gold,
                t.caught,
                f(t.recall()),
                eval::recall_target(*ty),
                f(t.precision())
            );
        }
        println!(
            "  {:<7} {:>5}  {:>6}  {}          {}  (target {:.2})",
            "ALL",
            s.total.gold,
            s.total.caught,
            f(s.total.recall()),
            f(s.total.precision()),
            eval::PRECISION_TARGET
        );
        println!("  targets met: {}", if met { "yes" } else { "NO" });
    })?;
    Ok(u8::from(a.check && !met))
}

/// `mdc deid text-corpus`: write generated notes with gold spans as JSONL.
pub fn run_corpus(g: &Global, a: &TextCorpusArgs) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    let mut notes = 0u64;
    for n in corpus::generate_iter(a.seed, corpus_lang(a.lang)) {
        let done = match a.bytes {
            Some(b) => out.len() as u64 >= b,
            None => notes >= a.notes as u64,
        };
        if done {
            break;
        }
        out.extend_from_slice(n.to_json(true).as_bytes());
        out.push(b'\n');
        notes += 1;
    }
    write_atomic(&a.out, &out)?;
    let info = serde_json::json!({"notes": notes, "bytes": out.len(), "path": a.out.display().to_string()});
    crate::output::emit(g.json, &info, |_| {
        println!(
            "wrote {notes} notes ({:.1} MB) to {}",
            out.len() as f64 / 1e6,
            a.out.display()
        );
    })?;
    Ok(0)
}

/// The demo step: a Korean and an English note, tagged, and the Korean one
/// also with keyed surrogates (dates shifted by the patient's offset).
/// Prints three lines.
pub fn demo(p: &dyn Pseudonymizer) -> anyhow::Result<()> {
    let detector = Detector::new()?;
    let notes = [
        ("환자명: 김민준 (등록번호 12345678). 보호자 이서연님 010-2345-6789, 서울특별시 강남구 테헤란로 123 거주. 2024.03.05 내원, 정상 소견, 조영제 이상 반응 없음.", "12345678"),
        ("Mr. Smith (MRN 87654321) seen 03/05/2024 by Dr. Garcia; history of Parkinson's disease, metformin 500 mg BID. Call (617) 555-0134.", "87654321"),
    ];
    for (i, (text, pid)) in notes.into_iter().enumerate() {
        let patient = SourceId::new(pid.to_owned());
        let spans = detector.detect(text, &DetectOptions::default());
        let tagged = text::transform(text, &spans, Mode::Tag, &TransformContext::default())?;
        let sur = text::transform(
            text,
            &spans,
            Mode::Surrogate,
            &TransformContext {
                pseudonymizer: Some(p),
                patient: Some(&patient),
                note_key: None,
            },
        )?;
        println!("  tag:       {tagged}");
        if i == 0 {
            println!("  surrogate: {sur}");
        }
    }
    Ok(())
}
