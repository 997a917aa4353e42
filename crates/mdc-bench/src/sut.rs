//! The two kinds of system under test: ONNX Runtime in-process on an
//! execution provider, and any server speaking the Open Inference Protocol.
//!
//! Inputs are made before the clock starts: a few distinct batches (seeded
//! from the declared shapes, or taken from a dataset) are converted once and
//! cycled through, so the timed loop measures inference, not input making.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use mdc_infer::ep::Ep;
use mdc_infer::generic::{generate, Data, Elem, Feed, InputSpec, ModelSession, Prepared, Seeded};
use mdc_infer::kserve::Client;

use crate::harness::Sut;
use crate::BenchError;

/// Distinct input batches cycled through during a run.
pub const INPUT_SETS: usize = 8;

/// Rows of a tabular dataset for a single `[N, d]` float input.
#[derive(Debug, Clone)]
pub struct Rows {
    pub columns: Vec<String>,
    /// Row-major values.
    pub values: Vec<Vec<f64>>,
}

/// Builds `sets` input batches of `batch` samples for `specs`: from `rows`
/// when given (one 2-D input whose width must match), else generated.
pub fn make_inputs(
    specs: &[InputSpec],
    batch: usize,
    sets: usize,
    rows: Option<&Rows>,
    seed: u64,
) -> Result<Vec<Vec<Feed>>, BenchError> {
    let mut rng = Seeded::new(seed);
    let mut out = Vec::with_capacity(sets);
    if let Some(rows) = rows {
        let [spec] = specs else {
            return Err(BenchError::Invalid(format!(
                "--dataset feeds one [N, features] input, but the model has {} inputs",
                specs.len()
            )));
        };
        if spec.shape.len() != 2 {
            return Err(BenchError::Invalid(format!(
                "input shape mismatch: --dataset gives rows of {} features, but input '{}' has shape {:?}",
                rows.columns.len(),
                spec.name,
                spec.shape
            )));
        }
        if spec.shape[1] > 0 && spec.shape[1] as usize != rows.columns.len() {
            return Err(BenchError::Invalid(format!(
                "input shape mismatch: input '{}' expects {} features per row (shape {:?}), the dataset gives {} ({})",
                spec.name,
                spec.shape[1],
                spec.shape,
                rows.columns.len(),
                rows.columns.join(",")
            )));
        }
        if rows.values.is_empty() {
            return Err(BenchError::Invalid("the dataset has no rows".into()));
        }
        let shape = spec
            .concrete(Some(batch))
            .map_err(|e| BenchError::Invalid(e.to_string()))?;
        let b = shape[0];
        let mut r = 0usize;
        for _ in 0..sets {
            let mut flat = Vec::with_capacity(b * rows.columns.len());
            for _ in 0..b {
                flat.extend(rows.values[r % rows.values.len()].iter().copied());
                r += 1;
            }
            let data = match spec.elem {
                Elem::F32 => Data::F32(flat.iter().map(|&v| v as f32).collect()),
                Elem::F64 => Data::F64(flat),
                other => {
                    return Err(BenchError::Invalid(format!(
                        "--dataset gives numbers, but input '{}' is {}",
                        spec.name,
                        other.as_str()
                    )))
                }
            };
            out.push(vec![Feed {
                name: spec.name.clone(),
                shape: vec![b, rows.columns.len()],
                data,
            }]);
        }
        return Ok(out);
    }
    for _ in 0..sets {
        let mut feeds = Vec::with_capacity(specs.len());
        for spec in specs {
            let shape = spec
                .concrete(Some(batch))
                .map_err(|e| BenchError::Invalid(e.to_string()))?;
            feeds.push(generate(spec, &shape, &mut rng));
        }
        out.push(feeds);
    }
    Ok(out)
}

struct Worker {
    session: ModelSession,
    inputs: Vec<Prepared>,
}

/// ONNX Runtime in-process: one session per worker.
pub struct OrtSut {
    workers: Vec<Mutex<Worker>>,
    batch: usize,
    pub specs: Vec<InputSpec>,
    pub outputs: Vec<String>,
}

impl std::fmt::Debug for OrtSut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtSut")
            .field("workers", &self.workers.len())
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl OrtSut {
    /// Opens `workers` sessions of `model` on `ep`, each with `threads`
    /// intra-op threads, and prepares their inputs; checks shapes on the way.
    pub fn open(
        model: &Path,
        ep: &Ep,
        threads: usize,
        workers: usize,
        batch: usize,
        rows: Option<&Rows>,
        seed: u64,
    ) -> Result<OrtSut, BenchError> {
        let first =
            ModelSession::open(model, ep, threads).map_err(|e| BenchError::Sut(e.to_string()))?;
        let specs = first.inputs().to_vec();
        let outputs = first.output_names().to_vec();
        let feeds = make_inputs(&specs, batch, INPUT_SETS, rows, seed)?;
        let samples = feeds
            .first()
            .and_then(|f| f.first())
            .and_then(|f| f.shape.first().copied())
            .unwrap_or(batch);
        let mut ws = Vec::with_capacity(workers);
        let mut session = Some(first);
        for _ in 0..workers.max(1) {
            let s = match session.take() {
                Some(s) => s,
                None => ModelSession::open(model, ep, threads)
                    .map_err(|e| BenchError::Sut(e.to_string()))?,
            };
            let inputs = feeds
                .iter()
                .map(|f| s.prepare(f).map_err(|e| BenchError::Invalid(e.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            ws.push(Mutex::new(Worker { session: s, inputs }));
        }
        Ok(OrtSut {
            workers: ws,
            batch: samples,
            specs,
            outputs,
        })
    }
}

impl Sut for OrtSut {
    fn samples_per_query(&self) -> usize {
        self.batch
    }

    fn workers(&self) -> usize {
        self.workers.len()
    }

    fn run(&self, worker: usize, query: u64) -> Result<(), String> {
        let w = self.workers.get(worker).ok_or("no such worker")?;
        let mut g = w
            .lock()
            .map_err(|_| "a worker panicked earlier".to_owned())?;
        let Worker { session, inputs } = &mut *g;
        let input = &inputs[(query as usize) % inputs.len()];
        session
            .run(input, false)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// A server speaking the Open Inference Protocol: one HTTP connection per
/// worker (the client pools them).
#[derive(Debug)]
pub struct KserveSut {
    client: Client,
    inputs: Vec<Vec<Feed>>,
    batch: usize,
    workers: usize,
    pub specs: Vec<InputSpec>,
}

impl KserveSut {
    pub fn open(
        endpoint: &str,
        model_name: &str,
        workers: usize,
        batch: usize,
        rows: Option<&Rows>,
        seed: u64,
    ) -> Result<KserveSut, BenchError> {
        let client = Client::new(endpoint, model_name, Duration::from_secs(60))
            .map_err(|e| BenchError::Invalid(e.to_string()))?;
        client.ready().map_err(|e| BenchError::Sut(e.to_string()))?;
        let specs = client
            .input_specs()
            .map_err(|e| BenchError::Sut(e.to_string()))?;
        let inputs = make_inputs(&specs, batch, INPUT_SETS, rows, seed)?;
        let samples = inputs
            .first()
            .and_then(|f| f.first())
            .and_then(|f| f.shape.first().copied())
            .unwrap_or(batch);
        Ok(KserveSut {
            client,
            inputs,
            batch: samples,
            workers: workers.max(1),
            specs,
        })
    }
}

impl Sut for KserveSut {
    fn samples_per_query(&self) -> usize {
        self.batch
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn run(&self, _worker: usize, query: u64) -> Result<(), String> {
        let feeds = &self.inputs[(query as usize) % self.inputs.len()];
        self.client
            .infer(feeds)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Probabilities from an Open Inference Protocol server for tabular rows:
/// the model's one input gets `[n, d]` rows; the output is `[n]`, `[n, 1]`
/// (taken as is) or `[n, k]` (column `positive_index`, default 1).
pub fn kserve_predict(
    client: &Client,
    columns: &[Vec<f64>],
    batch: usize,
    positive_index: Option<usize>,
) -> Result<Vec<f64>, BenchError> {
    let specs = client
        .input_specs()
        .map_err(|e| BenchError::Sut(e.to_string()))?;
    let [spec] = specs.as_slice() else {
        return Err(BenchError::Invalid(format!(
            "parity over an endpoint needs a model with one [N, features] input; it declares {}",
            specs.len()
        )));
    };
    let d = columns.len();
    if spec.shape.len() != 2 || (spec.shape[1] > 0 && spec.shape[1] as usize != d) {
        return Err(BenchError::Invalid(format!(
            "input shape mismatch: the endpoint's input '{}' has shape {:?}, --features names {d}",
            spec.name, spec.shape
        )));
    }
    let rows = columns.first().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(rows);
    let mut start = 0;
    while start < rows {
        let end = (start + batch.max(1)).min(rows);
        let n = end - start;
        let mut flat = Vec::with_capacity(n * d);
        for r in start..end {
            flat.extend(columns.iter().map(|c| c[r]));
        }
        let data = match spec.elem {
            Elem::F64 => Data::F64(flat),
            _ => Data::F32(flat.iter().map(|&v| v as f32).collect()),
        };
        let outs = client
            .infer(&[Feed {
                name: spec.name.clone(),
                shape: vec![n, d],
                data,
            }])
            .map_err(|e| BenchError::Sut(e.to_string()))?;
        let o = outs
            .iter()
            .find(|o| o.name.to_ascii_lowercase().contains("prob"))
            .or_else(|| outs.first())
            .ok_or_else(|| BenchError::Sut("the endpoint returned no output".into()))?;
        let cols = match o.shape.as_slice() {
            [r] if *r as usize == n => 1,
            [r, c] if *r as usize == n && *c > 0 => *c as usize,
            _ => {
                return Err(BenchError::Sut(format!(
                    "output {} has shape {:?} for a batch of {n}",
                    o.name, o.shape
                )))
            }
        };
        let col = if cols == 1 {
            0
        } else {
            positive_index.unwrap_or(1)
        };
        if col >= cols {
            return Err(BenchError::Invalid(format!(
                "--positive-index {col} is out of range for output {} with {cols} columns",
                o.name
            )));
        }
        out.extend((0..n).map(|r| o.values[r * cols + col]));
        start = end;
    }
    Ok(out)
}
