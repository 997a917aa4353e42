//! Structured de-identification on disk (issue 4): the OMOP, FHIR and table
//! runs, reading CSV/Parquet/NDJSON in bounded batches and writing Parquet,
//! NDJSON, `manifest.json` and the report into a staging folder that is
//! renamed into place only when everything succeeded.

pub mod driver;
pub mod fhir;
pub mod io;
pub mod run;
pub mod synth_out;

pub use driver::{DeidError, Patients};
pub use run::{risk_file, run_omop, run_table_file, RiskArgs, RunOptions, RunOutcome};
pub use synth_out::write_synth;
