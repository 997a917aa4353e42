//! Inference through ONNX Runtime (DESIGN §2, §9).
//!
//! Why ONNX Runtime through `ort` with `load-dynamic`: it builds in under a
//! minute, loads the ONNX-ML operators that scikit-learn, XGBoost and LightGBM
//! exports use (Scaler, LinearClassifier, TreeEnsembleClassifier), and the
//! `libonnxruntime.so` it loads at run time ships inside the PyPI wheels
//! (`onnxruntime`, `onnxruntime-gpu`) or a vendor's build. Nothing is
//! downloaded at build time. This is the only crate that links `ort`.
//!
//! The library is found by [`locate`], in the order of DESIGN §9; the caller
//! passes what it knows (flag, environment, mdc.toml, executable), so this
//! crate reads no configuration itself. Loading problems (no library, a wrong
//! version) become one-line [`InferError`]s, never a panic.
//!
//! A [`Model`] checks, before any row is run, that its inputs match the
//! features ([`Model::plan`]): one float tensor `[N, d]` with d equal to the
//! number of features, or one `[N, 1]` input per feature, by name. The
//! probability output is found automatically (a float tensor `[N, 2]` →
//! column 1, or `[N, 1]`), or named by the caller.

pub mod ep;
pub mod generic;
pub mod kserve;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::{Session, SessionInputValue};
use ort::tensor::TensorElementType;
use ort::value::{Tensor, ValueType};

/// The ONNX Runtime minor version this build speaks (ort 2.0.0-rc.10: 1.22).
pub const ORT_API_MINOR: u32 = 22;

/// How to get the library, said by every "not found" error.
pub const INSTALL_HINT: &str = "run scripts/setup (it installs the pinned onnxruntime wheel's libonnxruntime.so into runtime/onnxruntime/), or pass --onnxruntime PATH, set MDC_ONNXRUNTIME, or set `onnxruntime = \"PATH\"` in mdc.toml";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferError {
    #[error("ONNX Runtime library not found ({searched}); {INSTALL_HINT}")]
    NotFound { searched: String },
    #[error("cannot load ONNX Runtime from {path}: {reason}; {INSTALL_HINT}")]
    Load { path: PathBuf, reason: String },
    #[error("not a readable ONNX model: {0}")]
    Model(String),
    /// The model's inputs or outputs do not fit the request.
    #[error("{0}")]
    Mismatch(String),
    #[error("inference failed: {0}")]
    Run(String),
}

/// Where to look for `libonnxruntime.so`, in order (DESIGN §9).
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// `--onnxruntime PATH`.
    pub flag: Option<PathBuf>,
    /// `MDC_ONNXRUNTIME`, else `ORT_DYLIB_PATH`.
    pub env: Option<PathBuf>,
    /// `onnxruntime = …` in mdc.toml.
    pub config: Option<PathBuf>,
    /// The running executable, to look beside it.
    pub exe: Option<PathBuf>,
}

/// A file, or a folder holding `libonnxruntime.so*`.
fn resolve(p: &Path) -> Option<PathBuf> {
    if p.is_file() {
        return Some(p.to_owned());
    }
    if p.is_dir() {
        let plain = p.join("libonnxruntime.so");
        if plain.is_file() {
            return Some(plain);
        }
        let mut versioned: Vec<PathBuf> = std::fs::read_dir(p)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|f| {
                f.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libonnxruntime.so."))
            })
            .collect();
        versioned.sort();
        return versioned.pop();
    }
    None
}

/// Finds the library. An explicitly given path (flag, environment, config)
/// that does not exist is an error, not a reason to look elsewhere.
pub fn locate(s: &Search) -> Result<PathBuf, InferError> {
    for (what, p) in [
        ("--onnxruntime", &s.flag),
        ("MDC_ONNXRUNTIME/ORT_DYLIB_PATH", &s.env),
        ("mdc.toml onnxruntime", &s.config),
    ] {
        if let Some(p) = p {
            return resolve(p).ok_or_else(|| InferError::NotFound {
                searched: format!("{what} = {} does not exist", p.display()),
            });
        }
    }
    let mut tried = Vec::new();
    if let Some(dir) = s.exe.as_deref().and_then(Path::parent) {
        // Beside the executable (a release layout), then a development
        // checkout's runtime/onnxruntime/ above target/<profile>/.
        let mut candidates = vec![dir.join("onnxruntime"), dir.to_owned()];
        candidates.extend(
            dir.ancestors()
                .skip(1)
                .take(3)
                .map(|a| a.join("runtime").join("onnxruntime")),
        );
        for c in candidates {
            if let Some(f) = resolve(&c) {
                return Ok(f);
            }
            tried.push(c.display().to_string());
        }
    }
    Err(InferError::NotFound {
        searched: if tried.is_empty() {
            "no location given".into()
        } else {
            format!("looked in {}", tried.join(", "))
        },
    })
}

/// The loaded runtime.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub path: PathBuf,
    /// e.g. `1.22.1`.
    pub version: String,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown failure".into())
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Loads ONNX Runtime from `path` once per process. `ort` panics when the
/// library cannot be loaded or has the wrong version; that panic is caught
/// (with the panic message silenced) and returned as one line.
pub fn init(path: &Path) -> Result<Runtime, InferError> {
    let r = RUNTIME.get_or_init(|| {
        let p = path.to_owned();
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let out = std::panic::catch_unwind(move || -> Result<Runtime, String> {
            ort::init_from(p.display().to_string())
                .with_name("mdc")
                .commit()
                .map_err(|e| e.to_string())?;
            let info = ort::info();
            let version = info
                .split("git-branch=rel-")
                .nth(1)
                .and_then(|s| s.split([',', ' ']).next())
                .map(str::to_owned)
                .or_else(|| {
                    // Wheels build from a detached head: take the version from
                    // the library's file name (through the symlink).
                    let real = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
                    real.file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.strip_prefix("libonnxruntime.so."))
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "unknown".into());
            Ok(Runtime { path: p, version })
        });
        std::panic::set_hook(hook);
        match out {
            Ok(r) => r,
            Err(e) => Err(panic_text(e.as_ref())),
        }
    });
    match r {
        Ok(rt) => Ok(rt.clone()),
        Err(reason) => Err(InferError::Load {
            path: path.to_owned(),
            reason: reason.clone(),
        }),
    }
}

/// An input or output as the model declares it.
#[derive(Debug, Clone)]
pub struct Port {
    pub name: String,
    /// e.g. `tensor(float)[-1,8]`, `seq(map(int64,tensor(float)))`.
    pub kind: String,
    elem: Option<TensorElementType>,
    shape: Option<Vec<i64>>,
}

fn port(name: &str, t: &ValueType) -> Port {
    match t {
        ValueType::Tensor { ty, shape, .. } => Port {
            name: name.to_owned(),
            kind: format!(
                "tensor({ty})[{}]",
                shape
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            elem: Some(*ty),
            shape: Some(shape.to_vec()),
        },
        other => Port {
            name: name.to_owned(),
            kind: format!("{other}"),
            elem: None,
            shape: None,
        },
    }
}

/// How features are fed and which output is read, decided before any work.
#[derive(Debug, Clone)]
pub struct Plan {
    pub feeding: Feeding,
    pub output: String,
    /// Column of the probability output; `None` for a one-column output.
    pub positive_index: Option<usize>,
    output_cols: usize,
    output_f64: bool,
}

#[derive(Debug, Clone)]
pub enum Feeding {
    /// One `[N, d]` tensor: features in the given order.
    Matrix { input: String, f64_input: bool },
    /// One `[N, 1]` tensor per feature, by name: (input name, feature index).
    PerFeature(Vec<(String, usize, bool)>),
}

#[derive(Debug)]
pub struct Model {
    session: Session,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    pub producer: Option<String>,
}

fn is_float(t: Option<TensorElementType>) -> bool {
    matches!(
        t,
        Some(TensorElementType::Float32 | TensorElementType::Float64)
    )
}

impl Model {
    /// Parses the model (after [`init`]). `threads` 0: ONNX Runtime's default.
    pub fn load(bytes: &[u8], threads: usize) -> Result<Model, InferError> {
        let err = |e: ort::Error| {
            InferError::Model(e.to_string().lines().next().unwrap_or_default().to_owned())
        };
        let mut b = Session::builder().map_err(err)?;
        if threads > 0 {
            b = b.with_intra_threads(threads).map_err(err)?;
        }
        let session = b.commit_from_memory(bytes).map_err(err)?;
        let inputs = session
            .inputs
            .iter()
            .map(|i| port(&i.name, &i.input_type))
            .collect();
        let outputs = session
            .outputs
            .iter()
            .map(|o| port(&o.name, &o.output_type))
            .collect();
        let producer = session
            .metadata()
            .ok()
            .and_then(|m| m.producer().ok())
            .filter(|p| !p.is_empty());
        Ok(Model {
            session,
            inputs,
            outputs,
            producer,
        })
    }

    /// Matches the model's inputs to `features` and chooses the probability
    /// output; every mismatch is reported here, before any inference.
    pub fn plan(
        &self,
        features: &[String],
        output_name: Option<&str>,
        positive_index: Option<usize>,
    ) -> Result<Plan, InferError> {
        let mismatch = |m: String| Err(InferError::Mismatch(m));
        let described = |ports: &[Port]| {
            ports
                .iter()
                .map(|p| format!("{} {}", p.name, p.kind))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let feeding = if self.inputs.len() == 1 {
            let i = &self.inputs[0];
            let Some(shape) = &i.shape else {
                return mismatch(format!(
                    "model input {} is {}, not a tensor",
                    i.name, i.kind
                ));
            };
            if !is_float(i.elem) {
                return mismatch(format!(
                    "model input {} is {}; mdc feeds float or double features",
                    i.name, i.kind
                ));
            }
            let d = match shape.as_slice() {
                [_, d] => *d,
                _ => {
                    return mismatch(format!(
                        "model input {} has shape {}; expected [N, features]",
                        i.name, i.kind
                    ))
                }
            };
            if d >= 0 && d as usize != features.len() {
                return mismatch(format!(
                    "the model expects {d} features (input {} {}), but --features names {}",
                    i.name,
                    i.kind,
                    features.len()
                ));
            }
            if d == 1 && features.len() == 1 && i.name != features[0] && self.inputs.len() > 1 {
                return mismatch(format!(
                    "model input {} does not match feature {}",
                    i.name, features[0]
                ));
            }
            Feeding::Matrix {
                input: i.name.clone(),
                f64_input: i.elem == Some(TensorElementType::Float64),
            }
        } else {
            let mut per = Vec::new();
            for i in &self.inputs {
                let Some(k) = features.iter().position(|f| *f == i.name) else {
                    return mismatch(format!(
                        "the model has {} inputs ({}) and input {} is not among --features",
                        self.inputs.len(),
                        described(&self.inputs),
                        i.name
                    ));
                };
                let ok_shape = matches!(i.shape.as_deref(), Some([_, 1] | [_]));
                if !is_float(i.elem) || !ok_shape {
                    return mismatch(format!(
                        "model input {} is {}; expected a float tensor [N, 1]",
                        i.name, i.kind
                    ));
                }
                per.push((
                    i.name.clone(),
                    k,
                    i.elem == Some(TensorElementType::Float64),
                ));
            }
            if per.len() != features.len() {
                let unused: Vec<&str> = features
                    .iter()
                    .filter(|f| !self.inputs.iter().any(|i| &i.name == *f))
                    .map(String::as_str)
                    .collect();
                return mismatch(format!(
                    "--features {} are not inputs of the model ({})",
                    unused.join(", "),
                    described(&self.inputs)
                ));
            }
            Feeding::PerFeature(per)
        };
        let candidates: Vec<&Port> = match output_name {
            Some(n) => {
                let Some(o) = self.outputs.iter().find(|o| o.name == n) else {
                    return mismatch(format!(
                        "the model has no output {n} (outputs: {})",
                        described(&self.outputs)
                    ));
                };
                vec![o]
            }
            None => self
                .outputs
                .iter()
                .filter(|o| {
                    is_float(o.elem) && matches!(o.shape.as_deref(), Some([_, 1 | 2] | [_]))
                })
                .collect(),
        };
        let chosen = match candidates.as_slice() {
            [one] => *one,
            [] => {
                let zipmap = self.outputs.iter().any(|o| o.kind.starts_with("seq") || o.kind.starts_with("Sequence"));
                return mismatch(format!(
                    "no probability output found (outputs: {}){}",
                    described(&self.outputs),
                    if zipmap {
                        "; a ZipMap output (sequence of maps) is not supported: export with zipmap=False (skl2onnx options={id(model): {'zipmap': False}})"
                    } else {
                        "; name it with --output-name"
                    }
                ));
            }
            many => match many.iter().find(|o| o.name.to_ascii_lowercase().contains("prob")) {
                Some(o) => *o,
                None => {
                    return mismatch(format!(
                        "several float outputs could be the probability ({}); choose one with --output-name",
                        described(&self.outputs)
                    ))
                }
            },
        };
        if !is_float(chosen.elem) {
            return mismatch(format!(
                "output {} is {}, not a float tensor",
                chosen.name, chosen.kind
            ));
        }
        let cols = match chosen.shape.as_deref() {
            Some([_]) => 1,
            Some([_, c]) if *c > 0 => *c as usize,
            Some([_, _]) => 0, // dynamic: checked on the first batch
            _ => {
                return mismatch(format!(
                    "output {} has shape {}; expected [N, k]",
                    chosen.name, chosen.kind
                ))
            }
        };
        let positive_index = match (positive_index, cols) {
            (Some(i), c) if c > 0 && i >= c => {
                return mismatch(format!(
                    "--positive-index {i} is out of range for output {} ({})",
                    chosen.name, chosen.kind
                ))
            }
            (Some(i), _) => Some(i),
            (None, 1) => None,
            (None, _) => Some(1),
        };
        Ok(Plan {
            feeding,
            output: chosen.name.clone(),
            positive_index,
            output_cols: cols,
            output_f64: chosen.elem == Some(TensorElementType::Float64),
        })
    }

    /// Runs the model over column-major features (`columns[k][row]`) in
    /// batches and returns the positive-class probability per row, widened to
    /// f64. Features are narrowed to f32 for float inputs, as ONNX models
    /// exported from float32 training expect.
    pub fn predict(
        &mut self,
        plan: &Plan,
        columns: &[Vec<f64>],
        batch: usize,
    ) -> Result<Vec<f64>, InferError> {
        let rows = columns.first().map_or(0, Vec::len);
        let batch = batch.max(1);
        let mut out = Vec::with_capacity(rows);
        let run_err = |e: ort::Error| {
            InferError::Run(e.to_string().lines().next().unwrap_or_default().to_owned())
        };
        let mut start = 0;
        while start < rows {
            let end = (start + batch).min(rows);
            let n = end - start;
            let mut inputs: Vec<(Cow<'static, str>, SessionInputValue<'static>)> = Vec::new();
            match &plan.feeding {
                Feeding::Matrix { input, f64_input } => {
                    let d = columns.len();
                    if *f64_input {
                        let mut data = Vec::with_capacity(n * d);
                        for r in start..end {
                            data.extend(columns.iter().map(|c| c[r]));
                        }
                        let t = Tensor::from_array(([n, d], data)).map_err(run_err)?;
                        inputs.push((Cow::Owned(input.clone()), t.into()));
                    } else {
                        let mut data = Vec::with_capacity(n * d);
                        for r in start..end {
                            data.extend(columns.iter().map(|c| c[r] as f32));
                        }
                        let t = Tensor::from_array(([n, d], data)).map_err(run_err)?;
                        inputs.push((Cow::Owned(input.clone()), t.into()));
                    }
                }
                Feeding::PerFeature(per) => {
                    for (name, k, f64_input) in per {
                        let col = &columns[*k][start..end];
                        let v: SessionInputValue<'static> = if *f64_input {
                            Tensor::from_array(([n, 1], col.to_vec()))
                                .map_err(run_err)?
                                .into()
                        } else {
                            Tensor::from_array((
                                [n, 1],
                                col.iter().map(|&x| x as f32).collect::<Vec<f32>>(),
                            ))
                            .map_err(run_err)?
                            .into()
                        };
                        inputs.push((Cow::Owned(name.clone()), v));
                    }
                }
            }
            let outputs = self.session.run(inputs).map_err(run_err)?;
            let value = outputs.get(plan.output.as_str()).ok_or_else(|| {
                InferError::Run(format!("output {} missing from the result", plan.output))
            })?;
            let (shape, data): (Vec<i64>, Vec<f64>) = if plan.output_f64 {
                let (s, d) = value.try_extract_tensor::<f64>().map_err(run_err)?;
                (s.to_vec(), d.to_vec())
            } else {
                let (s, d) = value.try_extract_tensor::<f32>().map_err(run_err)?;
                (s.to_vec(), d.iter().map(|&x| f64::from(x)).collect())
            };
            let cols = match shape.as_slice() {
                [r] if *r as usize == n => 1,
                [r, c] if *r as usize == n && *c > 0 => *c as usize,
                _ => {
                    return Err(InferError::Mismatch(format!(
                        "output {} has shape {shape:?} for a batch of {n} rows",
                        plan.output
                    )))
                }
            };
            if plan.output_cols > 0 && cols != plan.output_cols {
                return Err(InferError::Mismatch(format!(
                    "output {} changed width",
                    plan.output
                )));
            }
            let col = match (plan.positive_index, cols) {
                (None, 1) => 0,
                (None, _) => {
                    return Err(InferError::Mismatch(format!(
                        "output {} has {cols} columns; choose one with --positive-index",
                        plan.output
                    )))
                }
                (Some(i), c) if i < c => i,
                (Some(i), c) => {
                    return Err(InferError::Mismatch(format!(
                        "--positive-index {i} is out of range for output {} with {c} columns",
                        plan.output
                    )))
                }
            };
            out.extend((0..n).map(|r| data[r * cols + col]));
            start = end;
        }
        Ok(out)
    }
}
