//! The accelerator testbed of issue 8: LoadGen-style benchmark scenarios over
//! any system under test, and the clinical parity check.
//!
//! Why a crate of its own: vendors bring a chip and the center must measure
//! it the same way every time, whatever runtime the chip needs. So the
//! scenario rules (MLPerf Inference's single-stream, multi-stream, server,
//! offline), the latency statistics and the validity decision live here,
//! behind one small trait, [`harness::Sut`]; ONNX Runtime in-process and the
//! Open Inference Protocol (vendor servers, Triton) are two implementations of
//! it ([`sut`]). Results follow MLPerf's method but are never labelled MLPerf
//! results: nothing here is an audited submission.
//!
//! Architecture invariant: the query generator never waits for the system
//! under test. It runs on its own thread and only pushes onto an unbounded
//! queue; latency is measured from the *scheduled* issue time, so a slow
//! system cannot hide its queueing delay.

pub mod harness;
pub mod html;
pub mod parity;
pub mod result;
pub mod stats;
pub mod sut;
pub mod system;

pub use harness::{run, Scenario, Settings, Sut};
pub use result::BenchResult;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The benchmark cannot run as asked (the message says why).
    #[error("{0}")]
    Invalid(String),
    /// The system under test failed.
    #[error("{0}")]
    Sut(String),
}
