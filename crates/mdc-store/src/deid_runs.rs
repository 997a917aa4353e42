//! The audit entry of a de-identification run (`mdc deid text`, and any other
//! `mdc deid …` that wants one).
//!
//! A run reads raw PHI, so the entry must hold none of it. The parameter type
//! makes that hard to get wrong: a value is a count, a hex digest (checked),
//! or a word fixed at compile time (`&'static str`, so never a value read from
//! the input). De-identifying is a steward's job, the same role that registers
//! datasets, so the run is authorised as `Action::RegisterDataset` on the
//! system and recorded as `deid.<kind>`.

use serde_json::{Map, Value};

use crate::authz::{Action, Actor, Allowed, Resource};
use crate::error::{Result, StoreError};
use crate::store::Store;

/// One audited parameter of a de-identification run. Never PHI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeidParam {
    Count(u64),
    /// Lower-case hex (a SHA-256 or a key id); anything else is refused.
    Digest(String),
    Word(&'static str),
}

impl Store {
    /// Checks, before any input is read, that `actor` may de-identify.
    /// A denial is audited with its reason.
    pub async fn authorize_deid(&self, actor: &Actor) -> Result<Allowed> {
        self.authorize(actor, Action::RegisterDataset, &Resource::System)
            .await
    }

    /// Appends `deid.<kind>` for a finished run.
    pub async fn record_deid_run(
        &self,
        actor: &Actor,
        allowed: Allowed,
        kind: &'static str,
        params: &[(&'static str, DeidParam)],
    ) -> Result<i64> {
        let mut map = Map::new();
        for (k, v) in params {
            let value = match v {
                DeidParam::Count(n) => Value::from(*n),
                DeidParam::Digest(d) => {
                    if d.is_empty()
                        || d.len() > 64
                        || !d
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    {
                        return Err(StoreError::invalid(
                            k,
                            "an audit parameter of a de-identification run must be a lower-case hex digest",
                        ));
                    }
                    Value::from(d.clone())
                }
                DeidParam::Word(w) => Value::from(*w),
            };
            map.insert((*k).to_owned(), value);
        }
        let mut tx = self.db().write().await?;
        let seq = self
            .audit_in(
                &mut tx,
                actor,
                &format!("deid.{kind}"),
                &Resource::System,
                allowed,
                map,
            )
            .await?;
        tx.commit().await?;
        Ok(seq)
    }
}
