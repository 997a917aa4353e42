//! Any ONNX model, with inputs made from its declared shapes (issue 8).
//!
//! Why this exists beside the validation wrapper: a benchmark must run models
//! it knows nothing about (images, signals, several inputs, integer tensors),
//! so inputs are described generically and generated from the model's own
//! declaration, seeded, before the clock starts. Each `ModelSession` is owned
//! by one worker thread (`Session::run` needs `&mut`), so concurrency comes
//! from several sessions, not from sharing one. The library itself is
//! loaded once by `crate::init`.

use std::path::Path;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::tensor::TensorElementType;
use ort::value::{DynValue, Tensor, ValueType};

use crate::ep::Ep;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("cannot open model {path} on {provider}: {message}")]
    Open {
        path: String,
        provider: String,
        message: String,
    },
    #[error("input shape mismatch: {0}")]
    Shape(String),
    #[error("unsupported model input: {0}")]
    Unsupported(String),
    #[error("the model failed on the backend: {0}")]
    Run(String),
}

/// Element types the generator can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    F32,
    F64,
    I64,
    I32,
    U8,
    I8,
    Bool,
}

impl Elem {
    fn from_ort(t: TensorElementType) -> Option<Elem> {
        Some(match t {
            TensorElementType::Float32 => Elem::F32,
            TensorElementType::Float64 => Elem::F64,
            TensorElementType::Int64 => Elem::I64,
            TensorElementType::Int32 => Elem::I32,
            TensorElementType::Uint8 => Elem::U8,
            TensorElementType::Int8 => Elem::I8,
            TensorElementType::Bool => Elem::Bool,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Elem::F32 => "float32",
            Elem::F64 => "float64",
            Elem::I64 => "int64",
            Elem::I32 => "int32",
            Elem::U8 => "uint8",
            Elem::I8 => "int8",
            Elem::Bool => "bool",
        }
    }
}

/// One declared input: name, element type, shape with -1 for dynamic axes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    pub name: String,
    pub elem: Elem,
    pub shape: Vec<i64>,
}

impl InputSpec {
    /// The concrete shape for a batch: a dynamic first axis takes `batch`, a
    /// fixed first axis must equal it when the caller asked for a batch, and
    /// other dynamic axes take 1.
    pub fn concrete(&self, batch: Option<usize>) -> Result<Vec<usize>, ModelError> {
        let mut out = Vec::with_capacity(self.shape.len());
        for (i, &d) in self.shape.iter().enumerate() {
            let v = if i == 0 {
                match (d, batch) {
                    (d, None) if d > 0 => d as usize,
                    (d, Some(b)) if d > 0 && d as usize != b => {
                        return Err(ModelError::Shape(format!(
                            "input '{}' has a fixed batch axis of {d}, but --batch {b} was asked",
                            self.name
                        )))
                    }
                    (_, Some(b)) => b,
                    (_, None) => 1,
                }
            } else if d > 0 {
                d as usize
            } else {
                1
            };
            out.push(v);
        }
        Ok(out)
    }
}

/// Values for one input of one run.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    U8(Vec<u8>),
    I8(Vec<i8>),
    Bool(Vec<bool>),
}

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One named input tensor, ready to hand to a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Data,
}

/// A small deterministic generator (SplitMix64) so inputs are reproducible
/// from a seed without a dependency.
#[derive(Debug, Clone)]
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Seeded {
        Seeded(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Approximately standard normal (sum of 12 uniforms − 6): cheap and
    /// bounded, which suits synthetic inputs.
    pub fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}

/// Generates seeded values for `spec` at `shape`: floats ~ N(0,1), integers
/// in [0, 10), booleans fair.
pub fn generate(spec: &InputSpec, shape: &[usize], rng: &mut Seeded) -> Feed {
    let n: usize = shape.iter().product();
    let data = match spec.elem {
        Elem::F32 => Data::F32((0..n).map(|_| rng.normal() as f32).collect()),
        Elem::F64 => Data::F64((0..n).map(|_| rng.normal()).collect()),
        Elem::I64 => Data::I64((0..n).map(|_| (rng.next_u64() % 10) as i64).collect()),
        Elem::I32 => Data::I32((0..n).map(|_| (rng.next_u64() % 10) as i32).collect()),
        Elem::U8 => Data::U8((0..n).map(|_| (rng.next_u64() % 256) as u8).collect()),
        Elem::I8 => Data::I8((0..n).map(|_| (rng.next_u64() % 256) as u8 as i8).collect()),
        Elem::Bool => Data::Bool((0..n).map(|_| rng.next_u64() & 1 == 1).collect()),
    };
    Feed {
        name: spec.name.clone(),
        shape: shape.to_vec(),
        data,
    }
}

/// One output of a run, as `f64` (tensors only; maps and sequences are skipped).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub values: Vec<f64>,
}

/// A session on one execution provider, with its inputs described.
#[derive(Debug)]
pub struct ModelSession {
    session: Session,
    inputs: Vec<InputSpec>,
    outputs: Vec<String>,
    provider: String,
}

impl ModelSession {
    /// Opens `model` on `ep` with `threads` intra-op threads (0: ORT's default).
    pub fn open(model: &Path, ep: &Ep, threads: usize) -> Result<ModelSession, ModelError> {
        let open_err = |e: ort::Error| ModelError::Open {
            path: model.display().to_string(),
            provider: ep.provider.clone(),
            message: e.to_string(),
        };
        let mut b = Session::builder()
            .map_err(open_err)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(open_err)?;
        if threads > 0 {
            b = b.with_intra_threads(threads).map_err(open_err)?;
        }
        if ep.name != "cpu" {
            b = b
                .with_execution_providers([ep.dispatch()])
                .map_err(open_err)?;
        }
        let session = b.commit_from_file(model).map_err(open_err)?;
        let mut inputs = Vec::new();
        for i in &session.inputs {
            let ValueType::Tensor { ty, shape, .. } = &i.input_type else {
                return Err(ModelError::Unsupported(format!(
                    "input '{}' is not a tensor",
                    i.name
                )));
            };
            let elem = Elem::from_ort(*ty).ok_or_else(|| {
                ModelError::Unsupported(format!("input '{}' has element type {ty:?}", i.name))
            })?;
            inputs.push(InputSpec {
                name: i.name.clone(),
                elem,
                shape: shape.iter().copied().collect(),
            });
        }
        let outputs = session.outputs.iter().map(|o| o.name.clone()).collect();
        Ok(ModelSession {
            session,
            inputs,
            outputs,
            provider: ep.provider.clone(),
        })
    }

    pub fn inputs(&self) -> &[InputSpec] {
        &self.inputs
    }

    pub fn output_names(&self) -> &[String] {
        &self.outputs
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Turns feeds into ONNX Runtime values once, so the timed loop only runs.
    pub fn prepare(&self, feeds: &[Feed]) -> Result<Prepared, ModelError> {
        let mut values = Vec::with_capacity(feeds.len());
        for spec in &self.inputs {
            let f = feeds.iter().find(|f| f.name == spec.name).ok_or_else(|| {
                ModelError::Shape(format!("no value given for input '{}'", spec.name))
            })?;
            check_shape(spec, f)?;
            let shape: Vec<i64> = f.shape.iter().map(|&d| d as i64).collect();
            let v = tensor(shape, &f.data).map_err(|e| ModelError::Shape(e.to_string()))?;
            values.push((spec.name.clone(), v));
        }
        Ok(Prepared { values })
    }

    /// Runs once; returns the tensor outputs when `collect`, else nothing
    /// (outputs are still computed, only not copied out).
    pub fn run(
        &mut self,
        prepared: &Prepared,
        collect: bool,
    ) -> Result<Vec<OutputTensor>, ModelError> {
        let inputs: Vec<(&str, &DynValue)> = prepared
            .values
            .iter()
            .map(|(n, v)| (n.as_str(), v))
            .collect();
        let out = self
            .session
            .run(inputs)
            .map_err(|e| ModelError::Run(e.to_string()))?;
        if !collect {
            return Ok(Vec::new());
        }
        let mut tensors = Vec::new();
        for (name, value) in &out {
            let values: Option<(Vec<i64>, Vec<f64>)> =
                if let Ok((s, d)) = value.try_extract_tensor::<f32>() {
                    Some((s.to_vec(), d.iter().map(|&x| f64::from(x)).collect()))
                } else if let Ok((s, d)) = value.try_extract_tensor::<f64>() {
                    Some((s.to_vec(), d.to_vec()))
                } else if let Ok((s, d)) = value.try_extract_tensor::<i64>() {
                    Some((s.to_vec(), d.iter().map(|&x| x as f64).collect()))
                } else {
                    None
                };
            if let Some((shape, values)) = values {
                tensors.push(OutputTensor {
                    name: name.to_owned(),
                    shape,
                    values,
                });
            }
        }
        Ok(tensors)
    }
}

/// Inputs already converted to ONNX Runtime values.
#[derive(Debug)]
pub struct Prepared {
    values: Vec<(String, DynValue)>,
}

fn check_shape(spec: &InputSpec, f: &Feed) -> Result<(), ModelError> {
    if f.shape.len() != spec.shape.len() {
        return Err(ModelError::Shape(format!(
            "input '{}' expects rank {} ({:?}), got {:?}",
            spec.name,
            spec.shape.len(),
            spec.shape,
            f.shape
        )));
    }
    for (axis, (&want, &got)) in spec.shape.iter().zip(&f.shape).enumerate() {
        if want > 0 && want as usize != got {
            return Err(ModelError::Shape(format!(
                "input '{}' expects {want} on axis {axis} (declared {:?}), got {:?}",
                spec.name, spec.shape, f.shape
            )));
        }
    }
    let n: usize = f.shape.iter().product();
    if n != f.data.len() {
        return Err(ModelError::Shape(format!(
            "input '{}': shape {:?} holds {n} values, {} given",
            spec.name,
            f.shape,
            f.data.len()
        )));
    }
    Ok(())
}

fn tensor(shape: Vec<i64>, data: &Data) -> ort::Result<DynValue> {
    Ok(match data {
        Data::F32(v) => Tensor::from_array((shape, v.clone()))?.into_dyn(),
        Data::F64(v) => Tensor::from_array((shape, v.clone()))?.into_dyn(),
        Data::I64(v) => Tensor::from_array((shape, v.clone()))?.into_dyn(),
        Data::I32(v) => Tensor::from_array((shape, v.clone()))?.into_dyn(),
        Data::U8(v) => Tensor::from_array((shape, v.clone()))?.into_dyn(),
        Data::I8(v) => Tensor::from_array((shape, v.clone()))?.into_dyn(),
        Data::Bool(v) => Tensor::from_array((shape, v.clone()))?.into_dyn(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(shape: &[i64]) -> InputSpec {
        InputSpec {
            name: "x".into(),
            elem: Elem::F32,
            shape: shape.to_vec(),
        }
    }

    #[test]
    fn dynamic_batch_axis_takes_the_batch() {
        assert_eq!(spec(&[-1, 8]).concrete(Some(4)).unwrap(), vec![4, 8]);
        assert_eq!(spec(&[-1, 8]).concrete(None).unwrap(), vec![1, 8]);
    }

    #[test]
    fn fixed_batch_axis_refuses_another_batch() {
        let e = spec(&[1, 3, 32, 32]).concrete(Some(8)).unwrap_err();
        assert!(e.to_string().contains("fixed batch axis of 1"), "{e}");
    }

    #[test]
    fn generation_is_deterministic_for_a_seed() {
        let s = spec(&[-1, 8]);
        let a = generate(&s, &[2, 8], &mut Seeded::new(7));
        let b = generate(&s, &[2, 8], &mut Seeded::new(7));
        assert_eq!(a, b);
        assert_eq!(a.data.len(), 16);
    }
}
