//! Execution providers chosen by name (issue 8).
//!
//! Why a table of names: an operator types `--backend cuda` or the vendor's
//! own name, and the answer must be the provider ONNX Runtime registers, or a
//! clear refusal. The refusal matters more than the lookup: by default ort
//! quietly falls back to the CPU when a provider fails to register, which
//! would label a CPU measurement as a GPU one. Here a provider that the loaded
//! library was not built with is an error naming what the library does have,
//! and registration failures are errors too (`error_on_failure`).

use ort::execution_providers::{
    ACLExecutionProvider, ArmNNExecutionProvider, CANNExecutionProvider, CPUExecutionProvider,
    CUDAExecutionProvider, CoreMLExecutionProvider, DirectMLExecutionProvider, ExecutionProvider,
    ExecutionProviderDispatch, MIGraphXExecutionProvider, NNAPIExecutionProvider,
    NVExecutionProvider, OneDNNExecutionProvider, OpenVINOExecutionProvider, QNNExecutionProvider,
    ROCmExecutionProvider, TVMExecutionProvider, TensorRTExecutionProvider,
    VitisAIExecutionProvider, WebGPUExecutionProvider, XNNPACKExecutionProvider,
};

/// Short names accepted on the command line, with ONNX Runtime's own name.
pub const KNOWN: &[(&str, &str)] = &[
    ("cpu", "CPUExecutionProvider"),
    ("cuda", "CUDAExecutionProvider"),
    ("tensorrt", "TensorrtExecutionProvider"),
    ("nv-tensorrt-rtx", "NvTensorRTRTXExecutionProvider"),
    ("openvino", "OpenVINOExecutionProvider"),
    ("rocm", "ROCMExecutionProvider"),
    ("migraphx", "MIGraphXExecutionProvider"),
    ("onednn", "DnnlExecutionProvider"),
    ("xnnpack", "XnnpackExecutionProvider"),
    ("coreml", "CoreMLExecutionProvider"),
    ("directml", "DmlExecutionProvider"),
    ("qnn", "QNNExecutionProvider"),
    ("cann", "CANNExecutionProvider"),
    ("acl", "ACLExecutionProvider"),
    ("armnn", "ArmNNExecutionProvider"),
    ("nnapi", "NnapiExecutionProvider"),
    ("tvm", "TvmExecutionProvider"),
    ("vitis", "VitisAIExecutionProvider"),
    ("webgpu", "WebGpuExecutionProvider"),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EpError {
    #[error("unknown execution provider '{name}'; known: {known}")]
    Unknown { name: String, known: String },
    #[error("execution provider {provider} ('{name}') is not in the loaded ONNX Runtime library, which has: {available}; install a build that includes it (e.g. the onnxruntime-gpu wheel for cuda/tensorrt, or the vendor's build)")]
    NotInLibrary {
        name: String,
        provider: String,
        available: String,
    },
    #[error("cannot query the execution providers of the loaded ONNX Runtime library: {0}")]
    Query(String),
}

/// A resolved execution provider: the short name, ONNX Runtime's name, and
/// the registration to hand to a session builder.
#[derive(Debug, Clone)]
pub struct Ep {
    pub name: String,
    pub provider: String,
    dispatch: ExecutionProviderDispatch,
}

impl Ep {
    /// Registration for `SessionBuilder::with_execution_providers`: fails the
    /// session instead of silently falling back to the CPU.
    pub fn dispatch(&self) -> ExecutionProviderDispatch {
        self.dispatch.clone()
    }
}

fn known_list() -> String {
    KNOWN.iter().map(|(s, _)| *s).collect::<Vec<_>>().join(", ")
}

/// Maps a short or full name to ONNX Runtime's provider name, without
/// touching the library (so usage errors come before any loading).
pub fn provider_name(name: &str) -> Result<(&'static str, &'static str), EpError> {
    let n = name.trim();
    KNOWN
        .iter()
        .find(|(short, full)| short.eq_ignore_ascii_case(n) || full.eq_ignore_ascii_case(n))
        .map(|(s, f)| (*s, *f))
        .ok_or_else(|| EpError::Unknown {
            name: n.to_owned(),
            known: known_list(),
        })
}

fn dispatch_for(short: &str) -> (ExecutionProviderDispatch, Box<dyn ExecutionProvider>) {
    macro_rules! ep {
        ($t:ty) => {
            (
                <$t>::default().build().error_on_failure(),
                Box::new(<$t>::default()) as Box<dyn ExecutionProvider>,
            )
        };
    }
    match short {
        "cuda" => ep!(CUDAExecutionProvider),
        "tensorrt" => ep!(TensorRTExecutionProvider),
        "nv-tensorrt-rtx" => ep!(NVExecutionProvider),
        "openvino" => ep!(OpenVINOExecutionProvider),
        "rocm" => ep!(ROCmExecutionProvider),
        "migraphx" => ep!(MIGraphXExecutionProvider),
        "onednn" => ep!(OneDNNExecutionProvider),
        "xnnpack" => ep!(XNNPACKExecutionProvider),
        "coreml" => ep!(CoreMLExecutionProvider),
        "directml" => ep!(DirectMLExecutionProvider),
        "qnn" => ep!(QNNExecutionProvider),
        "cann" => ep!(CANNExecutionProvider),
        "acl" => ep!(ACLExecutionProvider),
        "armnn" => ep!(ArmNNExecutionProvider),
        "nnapi" => ep!(NNAPIExecutionProvider),
        "tvm" => ep!(TVMExecutionProvider),
        "vitis" => ep!(VitisAIExecutionProvider),
        "webgpu" => ep!(WebGPUExecutionProvider),
        _ => ep!(CPUExecutionProvider),
    }
}

/// Providers the loaded library was built with (ONNX Runtime's
/// `GetAvailableProviders`), probed through the known table.
pub fn available() -> Vec<&'static str> {
    KNOWN
        .iter()
        .filter(|(short, _)| dispatch_for(short).1.is_available().unwrap_or(false))
        .map(|(_, full)| *full)
        .collect()
}

/// Resolves `name` against the loaded library. The library must already be
/// loaded (see `generic::load_library`).
pub fn resolve(name: &str) -> Result<Ep, EpError> {
    let (short, full) = provider_name(name)?;
    let (dispatch, probe) = dispatch_for(short);
    let here = probe
        .is_available()
        .map_err(|e| EpError::Query(e.to_string()))?;
    if !here {
        return Err(EpError::NotInLibrary {
            name: short.to_owned(),
            provider: full.to_owned(),
            available: available().join(", "),
        });
    }
    Ok(Ep {
        name: short.to_owned(),
        provider: full.to_owned(),
        dispatch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_full_names_map_to_onnx_runtime_names() {
        assert_eq!(provider_name("cuda").unwrap().1, "CUDAExecutionProvider");
        assert_eq!(
            provider_name("TensorrtExecutionProvider").unwrap().0,
            "tensorrt"
        );
        assert_eq!(provider_name(" CPU ").unwrap().1, "CPUExecutionProvider");
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let e = provider_name("furiosa-npu").unwrap_err().to_string();
        assert!(
            e.contains("unknown execution provider 'furiosa-npu'"),
            "{e}"
        );
        assert!(e.contains("openvino"), "{e}");
    }
}
