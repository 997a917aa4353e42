//! The store's error type, and its mapping onto the stable error codes.

use std::path::PathBuf;

use mdc_types::{ErrorCode, FieldError};

use crate::authz::Denied;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("denied: {0}")]
    Denied(Denied),
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    #[error("{what} '{name}' not found")]
    NotFound { what: &'static str, name: String },
    #[error("{0}")]
    Conflict(String),
    #[error("integrity check failed: {0}")]
    Integrity(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Table(#[from] mdc_table::TableError),
    #[error(transparent)]
    Pseudonym(#[from] mdc_deid::PseudonymError),
    #[error("{0}")]
    Config(String),
}

impl StoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::Invalid(_) | StoreError::Table(_) => ErrorCode::InvalidInput,
            StoreError::Denied(_) => ErrorCode::Forbidden,
            StoreError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            StoreError::NotFound { .. } => ErrorCode::NotFound,
            StoreError::Conflict(_) => ErrorCode::Conflict,
            StoreError::Integrity(_) => ErrorCode::IntegrityFailure,
            StoreError::Io { .. }
            | StoreError::Db(_)
            | StoreError::Migrate(_)
            | StoreError::Pseudonym(_)
            | StoreError::Config(_) => ErrorCode::Internal,
        }
    }

    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> StoreError {
        StoreError::Invalid(FieldError::new(field, message))
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
