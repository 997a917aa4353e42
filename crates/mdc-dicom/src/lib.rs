//! DICOM de-identification to the PS3.15 Annex E Basic Application Level
//! Confidentiality Profile, with its options, for mdc.
//!
//! Design decisions:
//! - **Streaming.** [`Deidentifier::deidentify`] holds only the dataset header
//!   (everything before Pixel Data) in memory; pixel data, native or
//!   encapsulated, is copied from input to output in bounded chunks, never
//!   decoded. Compressed transfer syntaxes and multi-frame files need nothing
//!   special, and memory does not grow with the file.
//! - **The table is data.** `action_table.rs` is generated from the standard's
//!   Table E.1-1 (`gen/gen_action_table.py`); `action` resolves a row plus the
//!   enabled options into one action.
//! - **Identity.** PatientID and PatientName become the patient pseudonym of
//!   DESIGN §4 (the same one OMOP, FHIR and notes get), dates move by the
//!   patient's offset, UIDs map through the keyed `h("uid", …)` so the same
//!   study keeps the same new UID in every file and run.
//! - **Text.** Values are decoded by their Specific Character Set, ISO 2022
//!   code extensions included (`charset`), and written as UTF-8 (`ISO_IR 192`).
//! - **dicom-rs** supplies the data dictionary (VRs of implicit-VR files), the
//!   transfer syntax registry and the file meta group writer; this is the only
//!   crate that depends on it.
//!
//! Architecture invariant: nothing in this crate logs, and no error message
//! contains a value read from a file.

pub mod action;
#[rustfmt::skip]
mod action_table;
pub mod batch;
pub mod charset;
pub mod clean;
mod dataset;
pub mod deid;
pub mod demo;
pub mod private;

pub use action::{Action, Options, ProfileOption};
pub use batch::{run, Paths, Report, Status, Summary};
pub use clean::{engine_cleaner, EngineCleaner, KnownIdentifiers, KnownValueCleaner, TextCleaner};
pub use dataset::ParseError;
pub use deid::{
    Config, DeidError, Deidentifier, Instance, Outcome, UidMapper, Written, OUTPUT_CHARSET,
};

/// Parses a file far enough to de-identify it into a sink, for the fuzz
/// target: any input must give `Ok` or `Err`, never a panic.
pub fn fuzz_one(data: &[u8]) {
    let key = mdc_deid::PseudonymKey::from_bytes([9; 32]);
    let p = mdc_deid::KeyedPseudonymizer::new(key.clone(), 30);
    let d = Deidentifier::new(Config::default(), &p, UidMapper::new(key));
    let _ = d.deidentify(data, |_| Ok(std::io::sink()));
}
