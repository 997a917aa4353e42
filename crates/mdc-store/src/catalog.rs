//! Dataset registration: a de-identified folder becomes an immutable version.
//!
//! The folder's `manifest.json` is checked file by file (SHA-256, Parquet row
//! counts, no unlisted files, the root's key id and pseudonym mode). Files are
//! copied into a staging folder under `datasets/<name>/` and verified *there*,
//! then renamed to `<version>` inside the catalog transaction. A crash (even
//! `kill -9`) leaves either no version or a whole one; a stray staging or
//! orphaned folder is ignored and cleaned up by the next registration.

use std::fs;
use std::path::{Component, Path, PathBuf};

use mdc_types::manifest::{
    Manifest, ManifestFile, ManifestKind, ManifestTable, PolicyRef, Rejected, SourceRef,
    MANIFEST_FILE, MANIFEST_FORMAT,
};
use mdc_types::{DuoList, Slug};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::Row;

use crate::audit::now_text;
use crate::authz::{Action, Actor, Resource};
use crate::error::{Result, StoreError};
use crate::store::Store;

#[derive(Debug, Clone, Deserialize)]
pub struct RegisterRequest {
    pub name: String,
    pub path: PathBuf,
    /// DUO use conditions, e.g. `GRU,NCU`. Default GRU.
    #[serde(default)]
    pub use_codes: Option<String>,
    #[serde(default)]
    pub opt_in_only: bool,
    /// Register a folder without a manifest; requires a reason (audited).
    #[serde(default)]
    pub no_manifest_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    pub dataset: String,
    pub version: i64,
    pub kind: String,
    pub path: String,
    pub key_id: Option<String>,
    pub policy: Option<String>,
    pub use_codes: String,
    pub opt_in_only: bool,
    pub override_reason: Option<String>,
    pub rows: i64,
    pub bytes: i64,
    pub tables: Value,
    pub registered_at: String,
    pub registered_by: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetSummary {
    pub name: String,
    pub latest_version: i64,
    pub versions: i64,
    pub use_codes: String,
}

fn safe_relative(field: &str, rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    let ok = !rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(p.to_owned())
    } else {
        Err(StoreError::invalid(
            field,
            "file paths must be relative and stay inside the dataset folder",
        ))
    }
}

/// Every regular file under `dir`, as `/`-separated relative paths.
fn list_files(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(StoreError::io(&d))? {
            let entry = entry.map_err(StoreError::io(&d))?;
            let ft = entry.file_type().map_err(StoreError::io(entry.path()))?;
            let path = entry.path();
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                out.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            } else {
                return Err(StoreError::invalid(
                    "path",
                    format!(
                        "{}: only regular files and folders are allowed",
                        path.display()
                    ),
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

struct Checked {
    manifest: Manifest,
    rows: u64,
    bytes: u64,
}

/// Copies `rel` from `src` into `staging` and returns the copy's digest.
fn copy_in(src: &Path, staging: &Path, rel: &Path) -> Result<(PathBuf, String, u64)> {
    let from = src.join(rel);
    let to = staging.join(rel);
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(StoreError::io(parent))?;
    }
    let meta = fs::symlink_metadata(&from).map_err(|_| {
        StoreError::invalid(
            "manifest.json",
            format!("listed file {} does not exist", rel.display()),
        )
    })?;
    if !meta.is_file() {
        return Err(StoreError::invalid(
            "manifest.json",
            format!("listed file {} is not a regular file", rel.display()),
        ));
    }
    let bytes = fs::copy(&from, &to).map_err(StoreError::io(&from))?;
    let digest = mdc_table::sha256_file(&to)?;
    Ok((to, digest, bytes))
}

fn check_file(
    src: &Path,
    staging: &Path,
    f: &ManifestFile,
    parquet: bool,
) -> Result<(u64, u64, Option<mdc_table::ParquetSummary>)> {
    let rel = safe_relative("manifest.json", &f.path)?;
    let (copy, digest, bytes) = copy_in(src, staging, &rel)?;
    if !digest.eq_ignore_ascii_case(&f.sha256) {
        return Err(StoreError::Integrity(format!(
            "{}: SHA-256 does not match the manifest",
            f.path
        )));
    }
    if parquet {
        let summary = mdc_table::parquet_summary(&copy)?;
        if let Some(rows) = f.rows {
            if rows != summary.rows {
                return Err(StoreError::Integrity(format!(
                    "{}: {} rows, manifest says {rows}",
                    f.path, summary.rows
                )));
            }
        }
        return Ok((summary.rows, bytes, Some(summary)));
    }
    let rows = match f.rows {
        Some(expected)
            if rel
                .extension()
                .is_some_and(|e| e == "jsonl" || e == "ndjson") =>
        {
            let text = fs::read(&copy).map_err(StoreError::io(&copy))?;
            let lines = text
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count() as u64;
            if lines != expected {
                return Err(StoreError::Integrity(format!(
                    "{}: {lines} lines, manifest says {expected}",
                    f.path
                )));
            }
            lines
        }
        _ => 0,
    };
    Ok((rows, bytes, None))
}

fn verify_with_manifest(
    store: &StoreProbe,
    src: &Path,
    staging: &Path,
    manifest: Manifest,
) -> Result<Checked> {
    if manifest.format_version != MANIFEST_FORMAT {
        return Err(StoreError::invalid(
            "manifest.json",
            format!(
                "format_version {} is not supported (expected {MANIFEST_FORMAT})",
                manifest.format_version
            ),
        ));
    }
    if manifest.key_id != store.key_id {
        return Err(StoreError::invalid(
            "manifest.json",
            format!("key_id {} is not this root's pseudonym key ({}): the data was de-identified with another key", manifest.key_id, store.key_id),
        ));
    }
    if manifest.pseudonym_mode != store.mode.as_str() {
        return Err(StoreError::invalid(
            "manifest.json",
            format!(
                "pseudonym_mode '{}' differs from this root's '{}'",
                manifest.pseudonym_mode,
                store.mode.as_str()
            ),
        ));
    }
    if manifest.kind == ManifestKind::Tables && manifest.tables.is_empty() {
        return Err(StoreError::invalid(
            "manifest.json",
            "a tables dataset must list at least one table",
        ));
    }
    let mut listed = std::collections::BTreeSet::new();
    let mut rows = 0u64;
    let mut bytes = 0u64;
    let mut manifest = manifest;
    for table in &mut manifest.tables {
        if table.files.is_empty() {
            return Err(StoreError::invalid(
                "manifest.json",
                format!("table {} lists no files", table.name),
            ));
        }
        let mut schema = None;
        for f in &table.files {
            if !listed.insert(f.path.clone()) {
                return Err(StoreError::invalid(
                    "manifest.json",
                    format!("{} is listed twice", f.path),
                ));
            }
            let (r, b, summary) = check_file(src, staging, f, true)?;
            rows += r;
            bytes += b;
            if let Some(s) = summary {
                match &schema {
                    None => schema = Some(s.columns),
                    Some(first) if *first != s.columns => {
                        return Err(StoreError::invalid(
                            "manifest.json",
                            format!(
                                "table {}: {} has a different schema from the table's first file",
                                table.name, f.path
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        // The schema recorded is the one read from the files, not the one claimed.
        table.schema = serde_json::to_value(schema.unwrap_or_default()).unwrap_or(Value::Null);
    }
    for f in &manifest.files {
        if !listed.insert(f.path.clone()) {
            return Err(StoreError::invalid(
                "manifest.json",
                format!("{} is listed twice", f.path),
            ));
        }
        let (r, b, _) = check_file(src, staging, f, false)?;
        rows += r;
        bytes += b;
    }
    for present in list_files(src)? {
        if present != MANIFEST_FILE && !listed.contains(&present) {
            return Err(StoreError::invalid(
                "path",
                format!("{present} is not listed in manifest.json; refusing unlisted files"),
            ));
        }
    }
    Ok(Checked {
        manifest,
        rows,
        bytes,
    })
}

fn verify_without_manifest(
    store: &StoreProbe,
    src: &Path,
    staging: &Path,
    reason: &str,
) -> Result<Checked> {
    let files = list_files(src)?;
    if files.is_empty() {
        return Err(StoreError::invalid("path", "the folder holds no files"));
    }
    let mut tables = Vec::new();
    let (mut rows, mut bytes) = (0u64, 0u64);
    for rel in files {
        if !rel.ends_with(".parquet") {
            return Err(StoreError::invalid("path", format!("{rel} is not a .parquet file; without a manifest only Parquet tables can be registered")));
        }
        let (copy, digest, b) = copy_in(src, staging, Path::new(&rel))?;
        let summary = mdc_table::parquet_summary(&copy)?;
        rows += summary.rows;
        bytes += b;
        let name = rel.trim_end_matches(".parquet").replace('/', ".");
        tables.push(ManifestTable {
            name,
            files: vec![ManifestFile {
                path: rel,
                sha256: digest,
                rows: Some(summary.rows),
            }],
            schema: serde_json::to_value(summary.columns).unwrap_or(Value::Null),
            patient_column: None,
        });
    }
    let manifest = Manifest {
        format_version: MANIFEST_FORMAT,
        kind: ManifestKind::Tables,
        tables,
        files: vec![],
        key_id: String::new(),
        pseudonym_mode: store.mode.as_str().into(),
        policy: PolicyRef {
            name: "none (registered without a manifest)".into(),
            sha256: String::new(),
        },
        source: SourceRef {
            description: format!("override: {reason}"),
            sha256: String::new(),
        },
        created_at: now_text(),
        mdc_version: env!("CARGO_PKG_VERSION").into(),
        rejected: Rejected::default(),
    };
    Ok(Checked {
        manifest,
        rows,
        bytes,
    })
}

fn remove_stale(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".staging-") || name.starts_with(".orphan-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

impl Store {
    pub async fn dataset_register(
        &self,
        actor: &Actor,
        req: &RegisterRequest,
    ) -> Result<VersionInfo> {
        let name = Slug::parse("name", &req.name)?;
        let uses = DuoList::parse("use", req.use_codes.as_deref().unwrap_or("GRU"))?;
        if uses.0.is_empty() {
            return Err(StoreError::invalid(
                "use",
                "at least one DUO code is required",
            ));
        }
        let reason = match &req.no_manifest_reason {
            Some(r) if r.trim().len() < 10 => {
                return Err(StoreError::invalid(
                    "reason",
                    "an override needs a reason of at least 10 characters",
                ))
            }
            Some(r) => Some(r.trim().to_owned()),
            None => None,
        };
        let src = req.path.clone();
        if !src.is_dir() {
            return Err(StoreError::invalid(
                "path",
                format!("{} is not a folder", src.display()),
            ));
        }
        let allowed = self
            .authorize(actor, Action::RegisterDataset, &Resource::System)
            .await?;

        let manifest_path = src.join(MANIFEST_FILE);
        let manifest = if manifest_path.exists() {
            let text =
                fs::read_to_string(&manifest_path).map_err(StoreError::io(&manifest_path))?;
            Some(serde_json::from_str::<Manifest>(&text).map_err(|e| {
                StoreError::invalid("manifest.json", format!("not a valid manifest ({e})"))
            })?)
        } else if reason.is_none() {
            return Err(StoreError::invalid(
                "path",
                format!("{} has no manifest.json (write one with `mdc deid …`, or pass --no-manifest --reason TEXT)", src.display()),
            ));
        } else {
            None
        };
        if manifest.is_some() && reason.is_some() {
            return Err(StoreError::invalid(
                "no-manifest",
                "the folder has a manifest.json; --no-manifest is only for folders without one",
            ));
        }

        let dataset_dir = self.root.datasets_dir().join(name.as_str());
        fs::create_dir_all(&dataset_dir).map_err(StoreError::io(&dataset_dir))?;
        remove_stale(&dataset_dir);
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&dataset_dir)
            .map_err(StoreError::io(&dataset_dir))?;

        // Copying and hashing are blocking file work: keep them off the async workers.
        let checked = {
            let store_key = (self.key_id(), self.config.pseudonym_mode);
            let (src, staging_path, reason) =
                (src.clone(), staging.path().to_owned(), reason.clone());
            let probe = StoreProbe {
                key_id: store_key.0,
                mode: store_key.1,
            };
            tokio::task::spawn_blocking(move || {
                probe.verify(&src, &staging_path, manifest, reason.as_deref())
            })
            .await
            .map_err(|_| StoreError::Config("registration worker failed".into()))??
        };
        let manifest_json = serde_json::to_string_pretty(&checked.manifest)
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let manifest_out = staging.path().join(MANIFEST_FILE);
        fs::write(&manifest_out, &manifest_json).map_err(StoreError::io(&manifest_out))?;
        let tables_json = serde_json::to_value(&checked.manifest.tables).unwrap_or(Value::Null);

        let mut tx = self.db.write().await?;
        let version: i64 = sqlx::query(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM dataset_versions WHERE dataset = $1",
        )
        .bind(name.as_str())
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        let final_dir = dataset_dir.join(version.to_string());
        if final_dir.exists() {
            // Left by a registration killed after its rename but before its commit.
            let orphan = dataset_dir.join(format!(".orphan-{version}-{}", std::process::id()));
            fs::rename(&final_dir, &orphan).map_err(StoreError::io(&final_dir))?;
            let _ = fs::remove_dir_all(&orphan);
        }
        let staging_path = staging.keep();
        fs::rename(&staging_path, &final_dir).map_err(StoreError::io(&final_dir))?;
        let result = async {
            if sqlx::query("SELECT 1 FROM datasets WHERE name = $1").bind(name.as_str()).fetch_optional(&mut *tx).await?.is_none() {
                sqlx::query("INSERT INTO datasets (name, created_at) VALUES ($1, $2)").bind(name.as_str()).bind(now_text()).execute(&mut *tx).await?;
            }
            let key_id = (!checked.manifest.key_id.is_empty()).then(|| checked.manifest.key_id.clone());
            let policy = format!("{} sha256:{}", checked.manifest.policy.name, checked.manifest.policy.sha256);
            sqlx::query(
                "INSERT INTO dataset_versions (dataset, version, kind, path, manifest, schema_json, key_id, policy, use_codes, opt_in_only, override_reason, row_count, byte_count, registered_at, registered_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(name.as_str())
            .bind(version)
            .bind(checked.manifest.kind.as_str())
            .bind(format!("datasets/{name}/{version}"))
            .bind(&manifest_json)
            .bind(tables_json.to_string())
            .bind(key_id.as_deref())
            .bind(&policy)
            .bind(uses.to_string())
            .bind(i64::from(req.opt_in_only))
            .bind(reason.as_deref())
            .bind(checked.rows as i64)
            .bind(checked.bytes as i64)
            .bind(now_text())
            .bind(&actor.name)
            .execute(&mut *tx)
            .await?;
            let mut params = Map::new();
            params.insert("version".into(), version.into());
            params.insert("kind".into(), checked.manifest.kind.as_str().into());
            params.insert("rows".into(), (checked.rows as i64).into());
            params.insert("use".into(), uses.to_string().into());
            params.insert("opt_in_only".into(), req.opt_in_only.into());
            params.insert("manifest_sha256".into(), crate::audit::sha256_hex(&[manifest_json.as_bytes()]).into());
            if let Some(r) = &reason {
                params.insert("no_manifest_reason".into(), r.clone().into());
            }
            let resource = Resource::Dataset { dataset: name.to_string(), version };
            self.audit_in(&mut tx, actor, "dataset.register", &resource, allowed, params).await?;
            Ok::<(), StoreError>(())
        }
        .await;
        let committed = match result {
            Ok(()) => tx.commit().await.map_err(StoreError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = committed {
            let _ = fs::remove_dir_all(&final_dir);
            return Err(e);
        }
        self.version_info(name.as_str(), version).await
    }

    pub async fn dataset_list(&self, actor: &Actor) -> Result<Vec<DatasetSummary>> {
        self.authorize(actor, Action::ReadCatalog, &Resource::System)
            .await?;
        let rows = sqlx::query(
            "SELECT v.dataset, v.version, c.n, v.use_codes FROM dataset_versions v \
             JOIN (SELECT dataset, MAX(version) AS latest, COUNT(*) AS n FROM dataset_versions GROUP BY dataset) c \
             ON c.dataset = v.dataset AND c.latest = v.version ORDER BY v.dataset",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DatasetSummary {
                    name: r.try_get(0)?,
                    latest_version: r.try_get(1)?,
                    versions: r.try_get(2)?,
                    use_codes: r.try_get(3)?,
                })
            })
            .collect()
    }

    pub async fn dataset_show(&self, actor: &Actor, name: &str) -> Result<Vec<VersionInfo>> {
        self.authorize(actor, Action::ReadCatalog, &Resource::System)
            .await?;
        let versions: Vec<i64> =
            sqlx::query("SELECT version FROM dataset_versions WHERE dataset = $1 ORDER BY version")
                .bind(name)
                .fetch_all(self.db.pool())
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
        if versions.is_empty() {
            return Err(StoreError::NotFound {
                what: "dataset",
                name: name.chars().take(64).collect(),
            });
        }
        let mut out = Vec::new();
        for v in versions {
            out.push(self.version_info(name, v).await?);
        }
        Ok(out)
    }

    pub async fn version_info(&self, name: &str, version: i64) -> Result<VersionInfo> {
        let r = sqlx::query(
            "SELECT kind, path, key_id, policy, use_codes, opt_in_only, override_reason, row_count, byte_count, schema_json, registered_at, registered_by \
             FROM dataset_versions WHERE dataset = $1 AND version = $2",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound { what: "dataset version", name: format!("{name}@{version}") })?;
        let schema: String = r.try_get(9)?;
        Ok(VersionInfo {
            dataset: name.to_owned(),
            version,
            kind: r.try_get(0)?,
            path: r.try_get(1)?,
            key_id: r.try_get(2)?,
            policy: r.try_get(3)?,
            use_codes: r.try_get(4)?,
            opt_in_only: r.try_get::<i64, _>(5)? != 0,
            override_reason: r.try_get(6)?,
            rows: r.try_get(7)?,
            bytes: r.try_get(8)?,
            tables: serde_json::from_str(&schema).unwrap_or(Value::Null),
            registered_at: r.try_get(10)?,
            registered_by: r.try_get(11)?,
        })
    }

    /// Statistics of a table of a version, if the query engine has derived
    /// them (see migration 0004). No PHI: counts.
    pub async fn table_stats(
        &self,
        dataset: &str,
        version: i64,
        table: &str,
    ) -> Result<Option<TableStats>> {
        sqlx::query(
            "SELECT max_rows_per_patient, rows_without_patient FROM table_stats WHERE dataset = $1 AND version = $2 AND table_name = $3",
        )
        .bind(dataset)
        .bind(version)
        .bind(table)
        .fetch_optional(self.db.pool())
        .await?
        .map(|r| {
            Ok(TableStats {
                max_rows_per_patient: r.try_get(0)?,
                rows_without_patient: r.try_get(1)?,
            })
        })
        .transpose()
    }

    /// Keeps derived table statistics. Versions are immutable, so the first
    /// value stands; a concurrent second writer changes nothing.
    pub async fn set_table_stats(
        &self,
        dataset: &str,
        version: i64,
        table: &str,
        stats: TableStats,
    ) -> Result<()> {
        if stats.max_rows_per_patient < 0 || stats.rows_without_patient < 0 {
            return Err(StoreError::invalid(
                "table_stats",
                "counts must not be negative",
            ));
        }
        sqlx::query(
            "INSERT INTO table_stats (dataset, version, table_name, max_rows_per_patient, rows_without_patient, computed_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dataset, version, table_name) DO NOTHING",
        )
        .bind(dataset)
        .bind(version)
        .bind(table)
        .bind(stats.max_rows_per_patient)
        .bind(stats.rows_without_patient)
        .bind(now_text())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}

/// What the query engine keeps about a table of a dataset version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStats {
    /// The most rows any one patient has in the table.
    pub max_rows_per_patient: i64,
    /// Rows whose patient column is empty.
    pub rows_without_patient: i64,
}

/// The parts of the store that verification needs, movable to a blocking thread.
struct StoreProbe {
    key_id: String,
    mode: crate::config::PseudonymMode,
}

impl StoreProbe {
    fn verify(
        &self,
        src: &Path,
        staging: &Path,
        manifest: Option<Manifest>,
        reason: Option<&str>,
    ) -> Result<Checked> {
        match manifest {
            Some(m) => verify_with_manifest(self, src, staging, m),
            None => verify_without_manifest(self, src, staging, reason.unwrap_or_default()),
        }
    }
}
