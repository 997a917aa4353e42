//! The consent registry (DESIGN §6): append-only (pseudonym, purpose, status,
//! effective) records. Hospitals send opt-outs keyed by record number; those are
//! pseudonymised on the way in, so the registry never holds a record number.
//! Read paths ask `excluded_patients` at query time, so a withdrawal also
//! applies to dataset versions made before it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::NaiveDate;
use mdc_types::{parse_date, DuoCode, Pseudonym, SourceId};
use serde::Serialize;
use serde_json::Map;
use sqlx::Row;

use crate::audit::now_text;
use crate::authz::{Action, Actor, Resource};
use crate::error::{Result, StoreError};
use crate::store::{today, Store};

/// One rejected CSV row: the line and field, never the value.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedRow {
    pub line: u64,
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub imported: u64,
    pub opt_out: u64,
    pub opt_in: u64,
    pub rejected: Vec<RejectedRow>,
}

/// Who must be left out of a read, as of a moment.
#[derive(Debug, Clone, Default)]
pub struct ConsentFilter {
    pub opt_in_only: bool,
    pub opted_out: HashSet<Pseudonym>,
    pub opted_in: HashSet<Pseudonym>,
}

impl ConsentFilter {
    pub fn excludes(&self, patient: &Pseudonym) -> bool {
        if self.opt_in_only {
            !self.opted_in.contains(patient)
        } else {
            self.opted_out.contains(patient)
        }
    }
}

struct Record {
    pseudonym: Pseudonym,
    purpose: String,
    status: &'static str,
    effective: NaiveDate,
}

fn parse_purpose(s: &str) -> std::result::Result<String, String> {
    let s = s.trim();
    if s == "*" {
        return Ok("*".into());
    }
    DuoCode::parse("purpose", s)
        .map(|c| c.to_string())
        .map_err(|e| e.message)
}

fn parse_status(s: &str) -> Option<&'static str> {
    match s.trim().to_ascii_lowercase().as_str() {
        "opt-out" | "optout" => Some("opt-out"),
        "opt-in" | "optin" => Some("opt-in"),
        _ => None,
    }
}

impl Store {
    /// Imports a consent CSV: header `patient_id` or `pseudonym`, `purpose`,
    /// `status`, `effective`. Bad rows are reported (line and field) and skipped;
    /// the good ones are appended in one transaction.
    pub async fn consent_import(&self, actor: &Actor, path: &Path) -> Result<ImportReport> {
        let allowed = self
            .authorize(actor, Action::ManageConsent, &Resource::System)
            .await?;
        let file = std::fs::File::open(path)
            .map_err(|_| StoreError::invalid("file", format!("cannot open {}", path.display())))?;
        let csv = mdc_table::read_csv_strings(file, path)?;
        let col = |name: &str| csv.header.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (id_col, by_pseudonym) = match (col("patient_id"), col("pseudonym")) {
            (Some(_), Some(_)) => {
                return Err(StoreError::invalid(
                    "header",
                    "use either patient_id or pseudonym, not both",
                ))
            }
            (Some(i), None) => (i, false),
            (None, Some(i)) => (i, true),
            (None, None) => {
                return Err(StoreError::invalid(
                    "header",
                    "expected columns patient_id (or pseudonym), purpose, status, effective",
                ))
            }
        };
        let (Some(purpose_col), Some(status_col), Some(eff_col)) =
            (col("purpose"), col("status"), col("effective"))
        else {
            return Err(StoreError::invalid(
                "header",
                "expected columns patient_id (or pseudonym), purpose, status, effective",
            ));
        };
        let pseudonymizer = if by_pseudonym {
            None
        } else {
            Some(self.pseudonymizer()?)
        };
        let mut records = Vec::new();
        let mut rejected = Vec::new();
        let reject = |line: u64, field: &str, reason: &str| RejectedRow {
            line,
            field: field.into(),
            reason: reason.into(),
        };
        for (line, row) in csv.rows {
            let get = |i: usize| row.get(i).map(String::as_str).unwrap_or("");
            let purpose = match parse_purpose(get(purpose_col)) {
                Ok(p) => p,
                Err(why) => {
                    rejected.push(reject(line, "purpose", &why));
                    continue;
                }
            };
            let Some(status) = parse_status(get(status_col)) else {
                rejected.push(reject(line, "status", "expected opt-out or opt-in"));
                continue;
            };
            let Ok(effective) = parse_date("effective", get(eff_col)) else {
                rejected.push(reject(
                    line,
                    "effective",
                    "expected a real date as YYYY-MM-DD",
                ));
                continue;
            };
            let raw = get(id_col);
            let pseudonym = if let Some(p) = &pseudonymizer {
                // Pseudonymising may touch the vault (blocking IO): run it off the async workers.
                let id = SourceId::new(raw.to_owned());
                match tokio::task::block_in_place(|| p.patient(&id)) {
                    Ok(p) => p,
                    Err(_) => {
                        rejected.push(reject(
                            line,
                            "patient_id",
                            "empty or unusable record number",
                        ));
                        continue;
                    }
                }
            } else {
                match Pseudonym::parse(raw.trim()) {
                    Some(p) => p,
                    None => {
                        rejected.push(reject(
                            line,
                            "pseudonym",
                            "expected 16 characters of base32 (A-Z, 2-7)",
                        ));
                        continue;
                    }
                }
            };
            records.push(Record {
                pseudonym,
                purpose,
                status,
                effective,
            });
        }
        let report = ImportReport {
            imported: records.len() as u64,
            opt_out: records.iter().filter(|r| r.status == "opt-out").count() as u64,
            opt_in: records.iter().filter(|r| r.status == "opt-in").count() as u64,
            rejected,
        };
        let mut tx = self.db.write().await?;
        let mut id: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM consent")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let now = now_text();
        let source = format!(
            "import:{}",
            crate::audit::sha256_hex(&[&std::fs::read(path).unwrap_or_default()])
        );
        for r in &records {
            id += 1;
            sqlx::query("INSERT INTO consent (id, pseudonym, purpose, status, effective, recorded_at, source) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(id)
                .bind(r.pseudonym.as_str())
                .bind(&r.purpose)
                .bind(r.status)
                .bind(r.effective.to_string())
                .bind(&now)
                .bind(&source)
                .execute(&mut *tx)
                .await?;
        }
        let mut params = Map::new();
        params.insert("imported".into(), report.imported.into());
        params.insert("opt_out".into(), report.opt_out.into());
        params.insert("opt_in".into(), report.opt_in.into());
        params.insert("rejected".into(), (report.rejected.len() as u64).into());
        params.insert(
            "keyed_by".into(),
            if by_pseudonym {
                "pseudonym"
            } else {
                "patient_id"
            }
            .into(),
        );
        params.insert(
            "file_sha256".into(),
            source.trim_start_matches("import:").into(),
        );
        self.audit_in(
            &mut tx,
            actor,
            "consent.import",
            &Resource::System,
            allowed,
            params,
        )
        .await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Records one patient's withdrawal (opt-out), effective today unless given.
    pub async fn consent_withdraw(
        &self,
        actor: &Actor,
        patient_id: &SourceId,
        purpose: &str,
        effective: Option<&str>,
    ) -> Result<Pseudonym> {
        let purpose = parse_purpose(purpose).map_err(|m| StoreError::invalid("purpose", m))?;
        let effective = match effective {
            Some(e) => parse_date("effective", e)?,
            None => today(),
        };
        let allowed = self
            .authorize(actor, Action::ManageConsent, &Resource::System)
            .await?;
        let p = self.pseudonymizer()?;
        let id = patient_id.clone();
        let pseudonym = tokio::task::spawn_blocking(move || p.patient(&id))
            .await
            .map_err(|_| StoreError::Config("pseudonymiser worker failed".into()))?
            .map_err(|_| StoreError::invalid("patient-id", "empty or unusable record number"))?;
        let mut tx = self.db.write().await?;
        let id: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 FROM consent")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        sqlx::query("INSERT INTO consent (id, pseudonym, purpose, status, effective, recorded_at, source) VALUES ($1, $2, $3, 'opt-out', $4, $5, 'withdraw')")
            .bind(id)
            .bind(pseudonym.as_str())
            .bind(&purpose)
            .bind(effective.to_string())
            .bind(now_text())
            .execute(&mut *tx)
            .await?;
        let mut params = Map::new();
        params.insert("pseudonym".into(), pseudonym.as_str().into());
        params.insert("purpose".into(), purpose.into());
        params.insert("effective".into(), effective.to_string().into());
        self.audit_in(
            &mut tx,
            actor,
            "consent.withdraw",
            &Resource::System,
            allowed,
            params,
        )
        .await?;
        tx.commit().await?;
        Ok(pseudonym)
    }

    /// Patients to leave out of a read of `dataset@version` for `purpose` as of
    /// `at`: the latest record per patient (for this purpose or `*`) wins.
    pub async fn excluded_patients(
        &self,
        dataset: &str,
        version: i64,
        purpose: &str,
        at: NaiveDate,
    ) -> Result<ConsentFilter> {
        let opt_in_only: i64 = sqlx::query(
            "SELECT opt_in_only FROM dataset_versions WHERE dataset = $1 AND version = $2",
        )
        .bind(dataset)
        .bind(version)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "dataset version",
            name: format!("{dataset}@{version}"),
        })?
        .try_get(0)?;
        let rows = sqlx::query("SELECT pseudonym, status FROM consent WHERE effective <= $1 AND (purpose = $2 OR purpose = '*') ORDER BY effective, id")
            .bind(at.to_string())
            .bind(purpose)
            .fetch_all(self.db.pool())
            .await?;
        let mut latest: HashMap<String, String> = HashMap::new();
        for r in rows {
            latest.insert(r.try_get(0)?, r.try_get(1)?);
        }
        let mut filter = ConsentFilter {
            opt_in_only: opt_in_only != 0,
            ..ConsentFilter::default()
        };
        for (p, status) in latest {
            let p = Pseudonym::from_token(p);
            if status == "opt-out" {
                filter.opted_out.insert(p);
            } else {
                filter.opted_in.insert(p);
            }
        }
        Ok(filter)
    }
}
