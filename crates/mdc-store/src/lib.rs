//! The governed core of mdc: data root, catalog, projects, consent, audit, and
//! the pseudonym vault.
//!
//! `Store` is the one facade that the CLI and the HTTP server call. Each of its
//! operations resolves who is calling, asks `authz::decide` (through
//! `Store::authorize`), performs the change in one database transaction that
//! also appends the audit entry, and returns plain serialisable values. Neither
//! front end talks to the database or decides access itself.

pub mod audit;
pub mod authz;
mod bench_runs;
mod canonical;
mod catalog;
pub mod config;
mod consent;
pub mod db;
mod deid_runs;
pub mod differencing;
mod error;
mod exclusion;
pub mod keys;
mod outputs;
mod projects;
mod store;
mod users;
mod validation_runs;
pub mod vault;

pub use authz::{Action, Actor, Allowed, Denied, Gate, Resource};
pub use bench_runs::{BenchRunInfo, NewBenchRun};
pub use canonical::canonical_json;
pub use catalog::{DatasetSummary, RegisterRequest, TableStats, VersionInfo};
pub use config::{Config, PseudonymMode, Root};
pub use consent::{ConsentFilter, ImportReport, RejectedRow};
pub use deid_runs::DeidParam;
pub use error::{Result, StoreError};
pub use exclusion::{keyed_int_form, PatientExclusion};
pub use outputs::{
    CellPatients, Decision, DisclosureSettings, NewOutput, OutputInfo, PolicyRecord, ReviewInfo,
};
pub use projects::{AccessInfo, GrantInfo, IrbInfo, MemberInfo, NewIrb, NewProject, ProjectInfo};
pub use store::today;
pub use store::{Credential, InitOptions, InitReport, Store};
pub use users::{IssuedToken, TokenInfo, UserInfo};
pub use validation_runs::ValidationRun;
