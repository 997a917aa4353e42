//! Structured de-identification: OMOP CDM tables, FHIR R4 resources and any
//! table, by policy, with re-identification risk (issue 4).
//!
//! The engines here are sans-IO. `policy` parses and checks the TOML policy
//! and the built-in profiles; `engine` applies an action to a column of plain
//! values (`value::Column`); `fhir` rewrites one resource at a time; `risk`
//! measures k-anonymity and searches generalisations toward a target k;
//! `report` is the run's report model and HTML page; `omop` is the CDM v5.4
//! table specification; `synth` generates synthetic Korean OMOP extracts.
//! Reading and writing CSV/Parquet, and the per-batch driver that resolves
//! patients and calls `engine`, live in `mdc-table` (`mdc_table::structured`),
//! the crate that owns arrow.

pub mod engine;
pub mod fhir;
pub mod generalize;
pub mod omop;
pub mod policy;
#[cfg(test)]
mod proptests;
pub mod report;
pub mod risk;
pub mod synth;
pub mod text_bridge;
pub mod value;

pub use engine::{
    apply, output_kind, plan_table, ColumnPlan, ColumnStats, Ctx, DigitHasher, PatientInfo,
    TextScrubber,
};
pub use policy::{Action, Generalize, Policy, PolicyError};
pub use report::{Reject, Report};
pub use value::{Column, ColumnKind};
