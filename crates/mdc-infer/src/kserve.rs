//! A client for the Open Inference Protocol (KServe v2, REST) (issue 8).
//!
//! Why: domestic NPUs (FuriosaAI, Rebellions) and Triton ship their own
//! runtimes rather than ONNX Runtime execution providers, and they speak this
//! protocol. So a vendor's chip is benchmarked through the same harness by
//! pointing `--endpoint` at its server. Only the parts a benchmark needs are
//! implemented: readiness, model metadata (to generate inputs from declared
//! shapes) and inference with JSON tensor data. Every failure is an error
//! naming the endpoint and the HTTP status or the protocol field at fault.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::generic::{Data, Elem, Feed, InputSpec, OutputTensor};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KserveError {
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: the server answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: not an Open Inference Protocol answer: {message}")]
    Protocol { url: String, message: String },
}

/// A tensor as the protocol describes it (metadata).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TensorMeta {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ModelMeta {
    pub name: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub versions: Vec<String>,
    #[serde(default)]
    pub inputs: Vec<TensorMeta>,
    #[serde(default)]
    pub outputs: Vec<TensorMeta>,
}

#[derive(Debug, Serialize)]
struct InferInput<'a> {
    name: &'a str,
    shape: &'a [usize],
    datatype: &'static str,
    data: serde_json::Value,
}

#[derive(Debug, Serialize)]
struct InferRequest<'a> {
    inputs: Vec<InferInput<'a>>,
}

#[derive(Debug, Deserialize)]
struct InferOutput {
    name: String,
    #[serde(default)]
    shape: Vec<i64>,
    #[serde(default)]
    data: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct InferResponse {
    #[serde(default)]
    outputs: Vec<InferOutput>,
}

/// Protocol datatype names for our element types.
pub fn datatype(e: Elem) -> &'static str {
    match e {
        Elem::F32 => "FP32",
        Elem::F64 => "FP64",
        Elem::I64 => "INT64",
        Elem::I32 => "INT32",
        Elem::U8 => "UINT8",
        Elem::I8 => "INT8",
        Elem::Bool => "BOOL",
    }
}

fn elem_of(datatype: &str) -> Option<Elem> {
    Some(match datatype {
        "FP32" => Elem::F32,
        "FP64" => Elem::F64,
        "INT64" => Elem::I64,
        "INT32" => Elem::I32,
        "UINT8" => Elem::U8,
        "INT8" => Elem::I8,
        "BOOL" => Elem::Bool,
        _ => return None,
    })
}

fn data_json(d: &Data) -> serde_json::Value {
    match d {
        Data::F32(v) => serde_json::json!(v),
        Data::F64(v) => serde_json::json!(v),
        Data::I64(v) => serde_json::json!(v),
        Data::I32(v) => serde_json::json!(v),
        Data::U8(v) => serde_json::json!(v),
        Data::I8(v) => serde_json::json!(v),
        Data::Bool(v) => serde_json::json!(v),
    }
}

fn elem_of_data(d: &Data) -> Elem {
    match d {
        Data::F32(_) => Elem::F32,
        Data::F64(_) => Elem::F64,
        Data::I64(_) => Elem::I64,
        Data::I32(_) => Elem::I32,
        Data::U8(_) => Elem::U8,
        Data::I8(_) => Elem::I8,
        Data::Bool(_) => Elem::Bool,
    }
}

/// One server and one model on it. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    model: String,
    agent: ureq::Agent,
}

impl Client {
    /// `endpoint` like `http://host:port`; `timeout` bounds each request.
    pub fn new(endpoint: &str, model: &str, timeout: Duration) -> Result<Client, KserveError> {
        let base = endpoint.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(KserveError::Http {
                url: base,
                message: "the endpoint must start with http:// or https://".into(),
            });
        }
        if model.is_empty() || model.contains('/') {
            return Err(KserveError::Http {
                url: base,
                message: "--model-name must be a non-empty name without '/'".into(),
            });
        }
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .max_idle_connections_per_host(64)
            .build();
        Ok(Client {
            base,
            model: model.to_owned(),
            agent,
        })
    }

    pub fn model_name(&self) -> &str {
        &self.model
    }

    pub fn endpoint(&self) -> &str {
        &self.base
    }

    fn fail(url: &str, e: ureq::Error) -> KserveError {
        match e {
            ureq::Error::Status(status, resp) => KserveError::Status {
                url: url.to_owned(),
                status,
                body: resp
                    .into_string()
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect(),
            },
            ureq::Error::Transport(t) => KserveError::Http {
                url: url.to_owned(),
                message: t.to_string(),
            },
        }
    }

    /// `GET /v2/health/ready` and `GET /v2/models/{name}/ready`.
    pub fn ready(&self) -> Result<(), KserveError> {
        for url in [
            format!("{}/v2/health/ready", self.base),
            format!("{}/v2/models/{}/ready", self.base, self.model),
        ] {
            self.agent
                .get(&url)
                .call()
                .map_err(|e| Self::fail(&url, e))?;
        }
        Ok(())
    }

    /// `GET /v2/models/{name}`: the model's declared inputs and outputs.
    pub fn metadata(&self) -> Result<ModelMeta, KserveError> {
        let url = format!("{}/v2/models/{}", self.base, self.model);
        let resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| Self::fail(&url, e))?;
        resp.into_json::<ModelMeta>()
            .map_err(|e| KserveError::Protocol {
                url,
                message: e.to_string(),
            })
    }

    /// The declared inputs as generator specs.
    pub fn input_specs(&self) -> Result<Vec<InputSpec>, KserveError> {
        let url = format!("{}/v2/models/{}", self.base, self.model);
        let meta = self.metadata()?;
        meta.inputs
            .iter()
            .map(|t| {
                Ok(InputSpec {
                    name: t.name.clone(),
                    elem: elem_of(&t.datatype).ok_or_else(|| KserveError::Protocol {
                        url: url.clone(),
                        message: format!(
                            "input {} has unsupported datatype {}",
                            t.name, t.datatype
                        ),
                    })?,
                    shape: t.shape.clone(),
                })
            })
            .collect()
    }

    /// `POST /v2/models/{name}/infer` with JSON tensor data; returns numeric
    /// outputs as f64.
    pub fn infer(&self, feeds: &[Feed]) -> Result<Vec<OutputTensor>, KserveError> {
        let url = format!("{}/v2/models/{}/infer", self.base, self.model);
        let req = InferRequest {
            inputs: feeds
                .iter()
                .map(|f| InferInput {
                    name: &f.name,
                    shape: &f.shape,
                    datatype: datatype(elem_of_data(&f.data)),
                    data: data_json(&f.data),
                })
                .collect(),
        };
        let resp = self
            .agent
            .post(&url)
            .send_json(&req)
            .map_err(|e| Self::fail(&url, e))?;
        let body: InferResponse = resp.into_json().map_err(|e| KserveError::Protocol {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let mut out = Vec::with_capacity(body.outputs.len());
        for o in body.outputs {
            let mut values = Vec::with_capacity(o.data.len());
            for v in &o.data {
                let x = match v {
                    serde_json::Value::Number(n) => n.as_f64(),
                    serde_json::Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
                    _ => None,
                }
                .ok_or_else(|| KserveError::Protocol {
                    url: url.clone(),
                    message: format!("output {} holds a non-numeric value", o.name),
                })?;
                values.push(x);
            }
            let n: i64 = o.shape.iter().product();
            if !o.shape.is_empty() && n as usize != values.len() {
                return Err(KserveError::Protocol {
                    url: url.clone(),
                    message: format!(
                        "output {} has shape {:?} but {} values",
                        o.name,
                        o.shape,
                        values.len()
                    ),
                });
            }
            out.push(OutputTensor {
                name: o.name,
                shape: o.shape,
                values,
            });
        }
        if out.is_empty() {
            return Err(KserveError::Protocol {
                url,
                message: "the answer has no outputs".into(),
            });
        }
        Ok(out)
    }
}
