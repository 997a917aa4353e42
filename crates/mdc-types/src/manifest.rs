//! `manifest.json`: what a de-identification run wrote (DESIGN §3).
//!
//! Written by every `mdc deid …`, read by `mdc dataset register`, which checks
//! every file's digest and row count against it before recording a version.

use serde::{Deserialize, Serialize};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const MANIFEST_FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManifestKind {
    Tables,
    Dicom,
    Notes,
}

impl ManifestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ManifestKind::Tables => "tables",
            ManifestKind::Dicom => "dicom",
            ManifestKind::Notes => "notes",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Relative to the dataset folder, `/`-separated.
    pub path: String,
    pub sha256: String,
    /// Row count for Parquet tables (and lines for JSONL notes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestTable {
    pub name: String,
    pub files: Vec<ManifestFile>,
    #[serde(default)]
    pub schema: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_column: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PolicyRef {
    pub name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SourceRef {
    pub description: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Rejected {
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub kind: ManifestKind,
    #[serde(default)]
    pub tables: Vec<ManifestTable>,
    /// Files that are not tables (DICOM objects, note files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ManifestFile>,
    pub key_id: String,
    pub pseudonym_mode: String,
    pub policy: PolicyRef,
    pub source: SourceRef,
    pub created_at: String,
    pub mdc_version: String,
    #[serde(default)]
    pub rejected: Rejected,
}
