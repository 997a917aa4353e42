//! The data root's layout and its typed configuration (`mdc.toml`).
//!
//! Loaded once: the file first, then `MDC_DATABASE` from the environment.
//! Nothing else in mdc reads configuration from the environment.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PseudonymMode {
    Keyed,
    Vault,
}

impl PseudonymMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PseudonymMode::Keyed => "keyed",
            PseudonymMode::Vault => "vault",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite:catalog.db` (relative to the root) or `postgres://…`. Keep a
    /// PostgreSQL password out of this file: set `MDC_DATABASE` in the service's
    /// environment instead, which overrides this value.
    pub database: String,
    pub pseudonym_mode: PseudonymMode,
    pub date_shift_range: u32,
    /// A signed checkpoint is written automatically every this many audit entries.
    #[serde(default = "default_checkpoint_every")]
    pub audit_checkpoint_every: u64,
    /// Disclosure-control preset bound to new projects (used by the query layer).
    #[serde(default = "default_preset")]
    pub disclosure_preset: String,
    /// Path of `libonnxruntime.so`, when not found by the default search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnxruntime: Option<String>,
}

fn default_checkpoint_every() -> u64 {
    1000
}

fn default_preset() -> String {
    "kr-public".into()
}

impl Config {
    pub fn new(database: String, pseudonym_mode: PseudonymMode, date_shift_range: u32) -> Config {
        Config {
            database,
            pseudonym_mode,
            date_shift_range,
            audit_checkpoint_every: default_checkpoint_every(),
            disclosure_preset: default_preset(),
            onnxruntime: None,
        }
    }

    pub fn load(root: &Root) -> Result<Config> {
        let path = root.config_file();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::Config(format!(
                    "{} is not an mdc data root (no mdc.toml); run `mdc init --root {}` first",
                    root.path().display(),
                    root.path().display()
                ))
            } else {
                StoreError::Io {
                    path: path.clone(),
                    source: e,
                }
            }
        })?;
        let mut config: Config = toml::from_str(&text)
            .map_err(|e| StoreError::Config(format!("{}: {}", path.display(), e.message())))?;
        if let Ok(url) = std::env::var("MDC_DATABASE") {
            if !url.is_empty() {
                config.database = url;
            }
        }
        if config.audit_checkpoint_every == 0 {
            return Err(StoreError::Config(format!(
                "{}: audit_checkpoint_every must be at least 1",
                path.display()
            )));
        }
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!(
            "# mdc data root configuration (DESIGN §3). Keys live in keys/, never here.\n{body}"
        )
    }
}

/// The data root folder and the fixed paths inside it (DESIGN §3).
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(path: impl Into<PathBuf>) -> Root {
        Root(path.into())
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn config_file(&self) -> PathBuf {
        self.0.join("mdc.toml")
    }
    pub fn keys_dir(&self) -> PathBuf {
        self.0.join("keys")
    }
    pub fn pseudonym_key(&self) -> PathBuf {
        self.keys_dir().join("pseudonym.key")
    }
    pub fn audit_key(&self) -> PathBuf {
        self.keys_dir().join("audit.ed25519")
    }
    pub fn vault(&self) -> PathBuf {
        self.keys_dir().join("vault.db")
    }
    pub fn datasets_dir(&self) -> PathBuf {
        self.0.join("datasets")
    }
    pub fn outputs_dir(&self) -> PathBuf {
        self.0.join("outputs")
    }
    /// Derived data that may be deleted at any time (recomputed on demand):
    /// `cache/consent/` holds the consent row selections of mdc-query.
    pub fn cache_dir(&self) -> PathBuf {
        self.0.join("cache")
    }
    /// Resolves `sqlite:catalog.db` relative to the root; other URLs pass through.
    /// Only `init` may create the SQLite file: opening a root whose catalog has
    /// gone missing must fail, not start an empty catalog.
    pub fn database_url(&self, configured: &str, create: bool) -> String {
        match configured.strip_prefix("sqlite:") {
            Some(rest) if !rest.starts_with('/') && !rest.starts_with("//") => {
                let (file, query) = rest.split_once('?').unwrap_or((rest, ""));
                let abs = self.0.join(file);
                let mode = if create { "rwc" } else { "rw" };
                let sep = if query.is_empty() {
                    format!("?mode={mode}")
                } else {
                    format!("?{query}")
                };
                format!("sqlite://{}{}", abs.display(), sep)
            }
            _ => configured.to_owned(),
        }
    }
}
