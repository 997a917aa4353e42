//! Consent exclusion in the forms a query needs (DESIGN §4, §6).
//!
//! The consent registry holds text pseudonyms; OMOP tables key patients by the
//! integer form. In `keyed` mode the integer form is derived from the same
//! digest as the text form (its first 8 bytes, top bit cleared), so it is
//! recomputed here; in `vault` mode the two are independent random tokens and
//! are looked up in the vault. Either way the query layer gets both sets and
//! filters the patient column before the researcher's SQL sees a row.

use std::collections::HashSet;

use chrono::NaiveDate;
use sqlx::Row;

use crate::config::PseudonymMode;
use crate::error::{Result, StoreError};
use crate::store::Store;

/// Patients to leave out of (or, for opt-in-only datasets, the only ones to
/// keep in) a read, in text and integer form.
#[derive(Debug, Clone, Default)]
pub struct PatientExclusion {
    pub opt_in_only: bool,
    pub out_text: HashSet<String>,
    pub out_int: HashSet<i64>,
    pub in_text: HashSet<String>,
    pub in_int: HashSet<i64>,
}

/// The integer form of a `keyed` text pseudonym: the text is base32 of the
/// digest's first 10 bytes, the integer its first 8 with the top bit cleared.
pub fn keyed_int_form(text: &str) -> Option<i64> {
    let bytes = data_encoding::BASE32_NOPAD.decode(text.as_bytes()).ok()?;
    let first: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(first) & 0x7fff_ffff_ffff_ffff) as i64)
}

impl Store {
    /// `excluded_patients` with the integer forms added.
    pub async fn patient_exclusion(
        &self,
        dataset: &str,
        version: i64,
        purpose: &str,
        at: NaiveDate,
    ) -> Result<PatientExclusion> {
        let f = self
            .excluded_patients(dataset, version, purpose, at)
            .await?;
        let texts = |s: &HashSet<mdc_types::Pseudonym>| -> HashSet<String> {
            s.iter().map(|p| p.as_str().to_owned()).collect()
        };
        let out_text = texts(&f.opted_out);
        let in_text = texts(&f.opted_in);
        let (out_int, in_int) = match self.config.pseudonym_mode {
            PseudonymMode::Keyed => (
                out_text.iter().filter_map(|t| keyed_int_form(t)).collect(),
                in_text.iter().filter_map(|t| keyed_int_form(t)).collect(),
            ),
            PseudonymMode::Vault => (
                self.vault_ints(&out_text).await?,
                self.vault_ints(&in_text).await?,
            ),
        };
        Ok(PatientExclusion {
            opt_in_only: f.opt_in_only,
            out_text,
            out_int,
            in_text,
            in_int,
        })
    }

    async fn vault_ints(&self, texts: &HashSet<String>) -> Result<HashSet<i64>> {
        let mut out = HashSet::new();
        if texts.is_empty() {
            return Ok(out);
        }
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(self.root.vault())
            .read_only(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        for t in texts {
            let Ok(token) = data_encoding::BASE32_NOPAD.decode(t.as_bytes()) else {
                continue;
            };
            if let Some(r) = sqlx::query("SELECT int_token FROM vault WHERE token = ?1")
                .bind(token)
                .fetch_optional(&pool)
                .await?
            {
                out.insert(r.try_get::<i64, _>(0).map_err(StoreError::from)?);
            }
        }
        pool.close().await;
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use mdc_deid::Pseudonymizer;

    #[test]
    fn keyed_int_form_matches_the_pseudonymiser() {
        let key = mdc_deid::PseudonymKey::from_bytes([7; 32]);
        let p = mdc_deid::KeyedPseudonymizer::new(key, 30);
        let t = p
            .token(
                mdc_deid::Domain::Patient,
                &mdc_types::SourceId::new("12345678".into()),
            )
            .unwrap();
        assert_eq!(super::keyed_int_form(t.text.as_str()), Some(t.int));
    }
}
