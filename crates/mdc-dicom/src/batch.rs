//! A folder (or file) of DICOM in, a registrable dataset folder out.
//!
//! Output layout: `OUT/<patient pseudonym>/<study UID>/<series UID>/<SOP UID>.dcm`
//! (all new values), plus `manifest.json` and `instances.parquet` (DESIGN §3).
//! The report and the quarantine folder live *beside* the output by default,
//! never inside it, so the output holds only de-identified data and
//! `mdc dataset register` accepts it as it is.
//!
//! Every file is written under a temporary name inside the output folder and
//! renamed when complete; a failed file leaves nothing. Files are handled by a
//! small pool of threads; one bad file never stops the batch.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mdc_deid::Pseudonymizer;
use mdc_table::arrow_array::{Date32Array, Int64Array, RecordBatch, StringArray};
use mdc_table::arrow_schema::{DataType, Field, Schema};
use mdc_types::manifest::{
    Manifest, ManifestFile, ManifestKind, ManifestTable, PolicyRef, Rejected, SourceRef,
    MANIFEST_FILE, MANIFEST_FORMAT,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::deid::{ActionCounts, Deidentifier, Instance, Outcome, OUTPUT_CHARSET};
use crate::ProfileOption;

pub const INSTANCES_FILE: &str = "instances.parquet";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    #[error("input {0} does not exist")]
    NoInput(PathBuf),
    #[error("output folder {0} is not empty; choose a new folder")]
    OutputNotEmpty(PathBuf),
    #[error(
        "{what} {path} must not be inside the output folder (it would be registered with the data)"
    )]
    InsideOutput { what: &'static str, path: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("instances.parquet: {0}")]
    Table(#[from] mdc_table::TableError),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BatchError + '_ {
    move |source| BatchError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where a run reads and writes.
#[derive(Debug, Clone)]
pub struct Paths {
    pub input: PathBuf,
    pub output: PathBuf,
    pub report: PathBuf,
    pub quarantine: PathBuf,
}

impl Paths {
    /// Defaults of the CLI: `OUT.report.json` and `OUT.quarantine/` beside `OUT`.
    pub fn with_defaults(
        input: PathBuf,
        output: PathBuf,
        report: Option<PathBuf>,
        quarantine: Option<PathBuf>,
    ) -> Paths {
        let base = output
            .file_name()
            .map_or_else(|| "dicom-deid".into(), |n| n.to_string_lossy().into_owned());
        let parent = output.parent().map(Path::to_path_buf).unwrap_or_default();
        Paths {
            report: report.unwrap_or_else(|| parent.join(format!("{base}.report.json"))),
            quarantine: quarantine.unwrap_or_else(|| parent.join(format!("{base}.quarantine"))),
            input,
            output,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Done,
    Quarantined,
    Rejected,
}

/// One input file's fate. `input` is the path relative to the input folder.
#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    pub input: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined_as: Option<String>,
    pub bytes_in: u64,
    #[serde(skip)]
    instance: Option<Instance>,
    #[serde(skip)]
    sha256_out: Option<String>,
    #[serde(skip)]
    sha256_in: String,
    #[serde(skip)]
    bytes_out: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub files: usize,
    pub done: usize,
    pub quarantined: usize,
    pub rejected: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// The JSON report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub profile: &'static str,
    pub options: Vec<&'static str>,
    pub output_charset: &'static str,
    pub key_id: String,
    pub pseudonym_mode: String,
    pub counts: Counts,
    pub seconds: f64,
    pub files: Vec<FileResult>,
    /// Tags changed, by attribute keyword and action (X, Z, D, C, U, P).
    pub actions: ActionCounts,
}

/// What the CLI needs to print and to choose an exit code.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub counts: Counts,
    pub output: PathBuf,
    pub report: PathBuf,
    pub quarantine: PathBuf,
    pub manifest_written: bool,
    pub seconds: f64,
}

/// Progress callback: (files finished, files total).
pub type Progress<'p> = &'p (dyn Fn(usize, usize) + Sync);

fn collect(input: &Path) -> Result<Vec<PathBuf>, BatchError> {
    let meta = fs::metadata(input).map_err(|_| BatchError::NoInput(input.to_owned()))?;
    if meta.is_file() {
        return Ok(vec![input.to_owned()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![input.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(io_at(&dir))? {
            let entry = entry.map_err(io_at(&dir))?;
            let ft = entry.file_type().map_err(io_at(&dir))?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn inside(child: &Path, parent: &Path) -> bool {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    abs(child).starts_with(abs(parent))
}

/// A writer that hashes and counts what passes through.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    n: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Inputs at least this large are hashed on a side thread, so that hashing the
/// input (for the manifest's source digest) overlaps hashing the output.
const THREADED_HASH_FROM: u64 = 4 << 20;
const HASH_CHUNK: usize = 1 << 18;

enum InputHash {
    Inline(Sha256),
    Thread {
        pending: Vec<u8>,
        tx: std::sync::mpsc::SyncSender<Vec<u8>>,
        handle: std::thread::JoinHandle<Sha256>,
    },
}

/// A reader that hashes and counts what passes through.
struct HashingReader<R> {
    inner: R,
    hash: InputHash,
    n: u64,
}

impl<R> HashingReader<R> {
    fn new(inner: R, size_hint: u64) -> Self {
        let hash = if size_hint >= THREADED_HASH_FROM {
            // Bounded: at most 4 chunks (1 MiB) wait for the hasher.
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
            let handle = std::thread::spawn(move || {
                let mut h = Sha256::new();
                for chunk in rx {
                    h.update(&chunk);
                }
                h
            });
            InputHash::Thread {
                pending: Vec::with_capacity(HASH_CHUNK),
                tx,
                handle,
            }
        } else {
            InputHash::Inline(Sha256::new())
        };
        HashingReader { inner, hash, n: 0 }
    }

    fn finish(self) -> String {
        match self.hash {
            InputHash::Inline(h) => hex(h.finalize()),
            InputHash::Thread {
                pending,
                tx,
                handle,
            } => {
                let _ = tx.send(pending);
                drop(tx);
                // A panicked hasher thread gives an all-zero digest, which no
                // real input has; the file itself is unaffected.
                handle
                    .join()
                    .map_or_else(|_| "0".repeat(64), |h| hex(h.finalize()))
            }
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        match &mut self.hash {
            InputHash::Inline(h) => h.update(&buf[..n]),
            InputHash::Thread { pending, tx, .. } => {
                pending.extend_from_slice(&buf[..n]);
                if pending.len() >= HASH_CHUNK {
                    let full = std::mem::replace(pending, Vec::with_capacity(HASH_CHUNK));
                    tx.send(full)
                        .map_err(|_| io::Error::other("input hasher stopped"))?;
                }
            }
        }
        self.n += n as u64;
        Ok(n)
    }
}

fn hex(d: impl AsRef<[u8]>) -> String {
    data_encoding::HEXLOWER.encode(d.as_ref())
}

struct Shared<'a> {
    deid: &'a Deidentifier<'a>,
    paths: &'a Paths,
    claimed: Mutex<HashSet<PathBuf>>,
    tmp_seq: AtomicUsize,
}

fn rel(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn one_file(shared: &Shared<'_>, path: &Path, actions: &mut ActionCounts) -> FileResult {
    let input_base = if shared.paths.input.is_file() {
        shared.paths.input.parent().unwrap_or(Path::new(""))
    } else {
        shared.paths.input.as_path()
    };
    let mut result = FileResult {
        input: rel(path, input_base),
        status: Status::Rejected,
        code: None,
        reason: None,
        output: None,
        quarantined_as: None,
        bytes_in: 0,
        instance: None,
        sha256_out: None,
        sha256_in: String::new(),
        bytes_out: 0,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            result.code = Some("io");
            result.reason = Some(format!("cannot open: {}", e.kind()));
            return result;
        }
    };
    let size = file.metadata().map_or(0, |m| m.len());
    let mut reader = HashingReader::new(BufReader::with_capacity(1 << 16, file), size);
    let n = shared.tmp_seq.fetch_add(1, Ordering::Relaxed);
    let tmp = shared
        .paths
        .output
        .join(format!(".mdc-tmp-{}-{n}.part", std::process::id()));
    let outcome = shared.deid.deidentify(&mut reader, |_inst| {
        let f = File::create(&tmp)?;
        Ok(HashingWriter {
            inner: BufWriter::with_capacity(1 << 16, f),
            hasher: Sha256::new(),
            n: 0,
        })
    });
    // Hash the rest of the input too, so the source digest covers every byte.
    let _ = io::copy(&mut reader, &mut io::sink());
    result.bytes_in = reader.n;
    result.sha256_in = reader.finish();
    match outcome {
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            result.code = Some(e.code());
            result.reason = Some(e.to_string());
        }
        Ok(Outcome::Quarantined(reason)) => {
            result.status = Status::Quarantined;
            result.reason = Some(reason);
            let name = format!("{}.dcm", &result.sha256_in[..32]);
            let dest = shared.paths.quarantine.join(&name);
            let part = shared.paths.quarantine.join(format!(".{name}.part"));
            let copied = fs::create_dir_all(&shared.paths.quarantine)
                .and_then(|()| fs::copy(path, &part))
                .and_then(|_| fs::rename(&part, &dest));
            if let Err(e) = copied {
                let _ = fs::remove_file(&part);
                result.status = Status::Rejected;
                result.code = Some("io");
                result.reason = Some(format!("cannot copy to quarantine: {}", e.kind()));
            } else {
                result.quarantined_as = Some(name);
            }
        }
        Ok(Outcome::Written(w)) => {
            let hw = w.writer;
            let n_out = hw.n;
            let digest = hex(hw.hasher.finalize());
            // No fsync per file (it would cost more than the de-identification
            // of a small file); the rename is atomic, and the manifest's digests
            // make `register` refuse a file a crash left incomplete.
            let closed = hw
                .inner
                .into_inner()
                .map_err(io::IntoInnerError::into_error);
            let inst = w.instance;
            let relp = format!(
                "{}/{}/{}/{}.dcm",
                inst.patient_pseudonym,
                or_unknown(&inst.study_instance_uid),
                or_unknown(&inst.series_instance_uid),
                inst.sop_instance_uid
            );
            let dest = shared.paths.output.join(&relp);
            let fresh = shared
                .claimed
                .lock()
                .map(|mut c| c.insert(dest.clone()))
                .unwrap_or(false);
            let placed = closed.and_then(|_| {
                if !fresh || dest.exists() {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "duplicate SOP Instance UID in the input",
                    ));
                }
                if let Some(dir) = dest.parent() {
                    fs::create_dir_all(dir)?;
                }
                fs::rename(&tmp, &dest)
            });
            match placed {
                Ok(()) => {
                    for (k, v) in w.actions {
                        let slot = actions.entry(k).or_default();
                        for (a, c) in v {
                            *slot.entry(a).or_default() += c;
                        }
                    }
                    result.status = Status::Done;
                    result.output = Some(relp);
                    result.sha256_out = Some(digest);
                    result.bytes_out = n_out;
                    result.instance = Some(inst);
                }
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    result.code = Some(if e.kind() == io::ErrorKind::AlreadyExists {
                        "duplicate"
                    } else {
                        "io"
                    });
                    result.reason = Some(if e.kind() == io::ErrorKind::AlreadyExists {
                        "duplicate SOP Instance UID in the input".into()
                    } else {
                        format!("cannot write the output: {}", e.kind())
                    });
                }
            }
        }
    }
    result
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BatchError> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            fs::create_dir_all(dir).map_err(io_at(dir))?;
        }
    }
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.part"));
    fs::write(&tmp, bytes).map_err(io_at(&tmp))?;
    fs::rename(&tmp, path).map_err(io_at(path))
}

fn instances_batch(done: &[&FileResult]) -> Result<RecordBatch, BatchError> {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let inst: Vec<(&Instance, &FileResult)> = done
        .iter()
        .filter_map(|r| r.instance.as_ref().map(|i| (i, *r)))
        .collect();
    let s = |f: &dyn Fn(&Instance, &FileResult) -> String| {
        StringArray::from_iter_values(inst.iter().map(|(i, r)| f(i, r)))
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("patient_pseudonym", DataType::Utf8, false),
        Field::new("person_id", DataType::Int64, false),
        Field::new("study_instance_uid", DataType::Utf8, false),
        Field::new("series_instance_uid", DataType::Utf8, false),
        Field::new("sop_instance_uid", DataType::Utf8, false),
        Field::new("sop_class_uid", DataType::Utf8, false),
        Field::new("modality", DataType::Utf8, false),
        Field::new("study_date", DataType::Date32, true),
        Field::new("transfer_syntax", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("bytes", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(s(&|i, _| i.patient_pseudonym.clone())),
            Arc::new(Int64Array::from_iter_values(
                inst.iter().map(|(i, _)| i.person_id),
            )),
            Arc::new(s(&|i, _| i.study_instance_uid.clone())),
            Arc::new(s(&|i, _| i.series_instance_uid.clone())),
            Arc::new(s(&|i, _| i.sop_instance_uid.clone())),
            Arc::new(s(&|i, _| i.sop_class_uid.clone())),
            Arc::new(s(&|i, _| i.modality.clone())),
            Arc::new(
                inst.iter()
                    .map(|(i, _)| i.study_date.map(|d| (d - epoch).num_days() as i32))
                    .collect::<Date32Array>(),
            ),
            Arc::new(s(&|i, _| i.transfer_syntax.clone())),
            Arc::new(s(&|_, r| r.output.clone().unwrap_or_default())),
            Arc::new(Int64Array::from_iter_values(
                inst.iter().map(|(_, r)| r.bytes_out as i64),
            )),
        ],
    )
    .map_err(|e| {
        BatchError::Table(mdc_table::TableError::Write {
            path: INSTANCES_FILE.into(),
            reason: e.to_string(),
        })
    })?;
    Ok(batch)
}

/// Runs a batch. `jobs` threads (at least 1) share the files.
pub fn run(
    deid: &Deidentifier<'_>,
    pseudonyms: &dyn Pseudonymizer,
    paths: &Paths,
    jobs: usize,
    progress: Progress<'_>,
) -> Result<Summary, BatchError> {
    let started = std::time::Instant::now();
    if !paths.input.exists() {
        return Err(BatchError::NoInput(paths.input.clone()));
    }
    for (what, p) in [
        ("report", &paths.report),
        ("quarantine folder", &paths.quarantine),
    ] {
        if inside(p, &paths.output) {
            return Err(BatchError::InsideOutput {
                what,
                path: p.clone(),
            });
        }
    }
    if paths.output.exists()
        && fs::read_dir(&paths.output)
            .map_err(io_at(&paths.output))?
            .next()
            .is_some()
    {
        return Err(BatchError::OutputNotEmpty(paths.output.clone()));
    }
    let mut files = collect(&paths.input)?;
    // Never read our own output (an output folder inside the input folder).
    files.retain(|f| !inside(f, &paths.output) && !inside(f, &paths.quarantine));
    let created_output = !paths.output.exists();
    fs::create_dir_all(&paths.output).map_err(io_at(&paths.output))?;

    let shared = Shared {
        deid,
        paths,
        claimed: Mutex::new(HashSet::new()),
        tmp_seq: AtomicUsize::new(0),
    };
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let total = files.len();
    let jobs = jobs.clamp(1, 64);
    let mut results: Vec<Option<FileResult>> = vec![None; total];
    let mut actions = ActionCounts::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    let mut acts = ActionCounts::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        mine.push((i, one_file(&shared, path, &mut acts)));
                        let f = finished.fetch_add(1, Ordering::Relaxed) + 1;
                        progress(f, total);
                    }
                    (mine, acts)
                })
            })
            .collect();
        for h in handles {
            if let Ok((mine, acts)) = h.join() {
                for (i, r) in mine {
                    if let Some(slot) = results.get_mut(i) {
                        *slot = Some(r);
                    }
                }
                for (k, v) in acts {
                    let slot = actions.entry(k).or_default();
                    for (a, c) in v {
                        *slot.entry(a).or_default() += c;
                    }
                }
            }
        }
    });
    let results: Vec<FileResult> = results
        .into_iter()
        .zip(&files)
        .map(|(r, path)| {
            r.unwrap_or_else(|| FileResult {
                input: rel(path, &paths.input),
                status: Status::Rejected,
                code: Some("internal"),
                reason: Some("worker failed".into()),
                output: None,
                quarantined_as: None,
                bytes_in: 0,
                instance: None,
                sha256_out: None,
                sha256_in: String::new(),
                bytes_out: 0,
            })
        })
        .collect();

    let mut counts = Counts {
        files: total,
        ..Counts::default()
    };
    let mut source = Sha256::new();
    for r in &results {
        match r.status {
            Status::Done => counts.done += 1,
            Status::Quarantined => counts.quarantined += 1,
            Status::Rejected => counts.rejected += 1,
        }
        counts.bytes_in += r.bytes_in;
        counts.bytes_out += r.bytes_out;
        source.update(r.sha256_in.as_bytes());
        source.update(b"\n");
    }
    let options: Vec<&'static str> = deid
        .config()
        .options
        .iter()
        .map(ProfileOption::name)
        .collect();
    let mut done: Vec<&FileResult> = results
        .iter()
        .filter(|r| r.status == Status::Done)
        .collect();
    done.sort_by(|a, b| a.output.cmp(&b.output));

    let manifest_written = !done.is_empty();
    if manifest_written {
        let batch = instances_batch(&done)?;
        let parquet = paths.output.join(INSTANCES_FILE);
        mdc_table::write_parquet_atomic(&parquet, &[batch])?;
        let policy_text = format!(
            "PS3.15 E.1-1 2025a basic;options={};allow-modalities={};charset={OUTPUT_CHARSET}",
            options.join(","),
            deid.config().allow_modalities.join(",")
        );
        let manifest = Manifest {
            format_version: MANIFEST_FORMAT,
            kind: ManifestKind::Dicom,
            tables: vec![ManifestTable {
                name: "instances".into(),
                files: vec![ManifestFile {
                    path: INSTANCES_FILE.into(),
                    sha256: mdc_table::sha256_file(&parquet)?,
                    rows: Some(done.len() as u64),
                }],
                schema: serde_json::Value::Null,
                patient_column: Some("patient_pseudonym".into()),
            }],
            files: done
                .iter()
                .filter_map(|r| {
                    Some(ManifestFile {
                        path: r.output.clone()?,
                        sha256: r.sha256_out.clone()?,
                        rows: None,
                    })
                })
                .collect(),
            key_id: pseudonyms.key_id().to_owned(),
            pseudonym_mode: pseudonyms.mode().to_owned(),
            policy: PolicyRef {
                name: format!("dicom-basic-profile+{}", options.join("+")),
                sha256: hex(Sha256::digest(policy_text.as_bytes())),
            },
            source: SourceRef {
                description: format!("{} DICOM files (mdc deid dicom)", counts.files),
                sha256: hex(source.finalize()),
            },
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            mdc_version: env!("CARGO_PKG_VERSION").into(),
            rejected: Rejected {
                count: (counts.rejected + counts.quarantined) as u64,
                report: Some(paths.report.to_string_lossy().into_owned()),
            },
        };
        write_atomic(
            &paths.output.join(MANIFEST_FILE),
            serde_json::to_string_pretty(&manifest)?.as_bytes(),
        )?;
    } else if created_output {
        let _ = fs::remove_dir(&paths.output);
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = Report {
        profile: "basic",
        options,
        output_charset: OUTPUT_CHARSET,
        key_id: pseudonyms.key_id().to_owned(),
        pseudonym_mode: pseudonyms.mode().to_owned(),
        counts: counts.clone(),
        seconds,
        files: results,
        actions,
    };
    write_atomic(
        &paths.report,
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    Ok(Summary {
        counts,
        output: paths.output.clone(),
        report: paths.report.clone(),
        quarantine: paths.quarantine.clone(),
        manifest_written,
        seconds,
    })
}

/// Rows of `instances.parquet` by output path, for callers that want them.
pub type InstancesByPath = BTreeMap<String, Instance>;
