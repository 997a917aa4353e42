//! Shared vocabulary of mdc: names, roles, data-use codes, PHI types, error codes.
//!
//! This crate does no IO and has no heavy dependencies, so every other crate can
//! depend on it. Values are parsed at the boundary into newtypes with private
//! fields; types that can hold identifiers have a redacting `Debug` and no
//! `Display`, so an identifier cannot reach a log or an error message by accident.

mod duo;
mod error;
pub mod manifest;
mod names;
mod phi;

pub use duo::{DuoCode, DuoList};
pub use error::{ErrorCode, FieldError};
pub use manifest::{Manifest, ManifestFile, ManifestKind, ManifestTable};
pub use names::{parse_date, GrantLevel, Role, Slug, UserName};
pub use phi::{Phi, PhiType, Pseudonym, SourceId};
