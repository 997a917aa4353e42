//! The pseudonym vault (DESIGN §4, `vault` mode).
//!
//! Korean guidance treats a keyed hash of an identifier as still an identifier,
//! so in this mode each new `h(domain, id)` gets a random token with no relation
//! to the id, stored as `h → token` in `keys/vault.db` (never the id itself).
//!
//! Engines are synchronous and call the `Pseudonymizer` trait from any thread,
//! so the vault's database lives on its own thread with its own small runtime;
//! callers block on a channel for a cache miss. New tokens are inserted with
//! `INSERT OR IGNORE` and read back, so two processes that meet the same new
//! patient at once still agree on one token.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Mutex};

use mdc_deid::pseudonym::{offset_from_u64, text_form};
use mdc_deid::{Domain, PseudonymError, PseudonymKey, Pseudonymizer, Token};
use mdc_types::{Pseudonym, SourceId};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

use crate::error::{Result, StoreError};
use crate::keys::random_bytes;

#[derive(Debug, Clone, Copy)]
struct Entry {
    text: [u8; 10],
    int: i64,
    shift: i32,
}

struct Request {
    h: String,
    reply: mpsc::Sender<std::result::Result<Entry, String>>,
}

pub struct VaultPseudonymizer {
    key: PseudonymKey,
    key_id: String,
    cache: Mutex<HashMap<[u8; 32], Entry>>,
    requests: Mutex<mpsc::Sender<Request>>,
}

impl std::fmt::Debug for VaultPseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultPseudonymizer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS vault (\
    h TEXT PRIMARY KEY, token BLOB NOT NULL UNIQUE, int_token INTEGER NOT NULL UNIQUE, \
    shift INTEGER NOT NULL, created_at TEXT NOT NULL)";

/// Creates an empty vault file (mode 0600). Called once by `init`.
pub fn create(path: &Path) -> Result<()> {
    crate::keys::write_secret(path, b"")?;
    let path = path.to_owned();
    run_blocking(async move {
        let pool = open_pool(&path).await?;
        sqlx::query(SCHEMA).execute(&pool).await?;
        pool.close().await;
        Ok(())
    })
}

fn run_blocking<F: std::future::Future<Output = Result<()>> + Send + 'static>(
    fut: F,
) -> Result<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StoreError::io("tokio runtime"))?;
        rt.block_on(fut)
    })
    .join()
    .map_err(|_| StoreError::Config("vault thread failed".into()))?
}

async fn open_pool(path: &Path) -> Result<SqlitePool> {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(30));
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await?)
}

async fn lookup_or_create(pool: &SqlitePool, h: &str, range: u32) -> Result<Entry> {
    for _ in 0..8 {
        if let Some(row) = sqlx::query("SELECT token, int_token, shift FROM vault WHERE h = ?1")
            .bind(h)
            .fetch_optional(pool)
            .await?
        {
            let token: Vec<u8> = row.try_get(0)?;
            let text: [u8; 10] = token
                .try_into()
                .map_err(|_| StoreError::Integrity("vault token has the wrong length".into()))?;
            return Ok(Entry {
                text,
                int: row.try_get(1)?,
                shift: row.try_get::<i64, _>(2)? as i32,
            });
        }
        let text: [u8; 10] = random_bytes();
        let int = i64::from_be_bytes(random_bytes()) & i64::MAX;
        let shift = offset_from_u64(u64::from_be_bytes(random_bytes()), range);
        // A collision on a random token (or a concurrent insert of this h) inserts
        // nothing; the loop then reads back whichever row won.
        sqlx::query("INSERT OR IGNORE INTO vault (h, token, int_token, shift, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .bind(h)
            .bind(text.to_vec())
            .bind(int)
            .bind(i64::from(shift))
            .bind(crate::audit::now_text())
            .execute(pool)
            .await?;
    }
    Err(StoreError::Integrity(
        "vault could not allocate a unique token".into(),
    ))
}

impl VaultPseudonymizer {
    pub fn open(
        path: &Path,
        key: PseudonymKey,
        date_shift_range: u32,
    ) -> Result<VaultPseudonymizer> {
        if !path.exists() {
            return Err(StoreError::Config(format!(
                "{} is missing: this root uses vault pseudonyms",
                path.display()
            )));
        }
        let (tx, rx) = mpsc::channel::<Request>();
        let path = path.to_owned();
        let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<(), String>>();
        std::thread::Builder::new()
            .name("mdc-vault".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let pool = match open_pool(&path).await {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    while let Ok(req) = rx.recv() {
                        let res = lookup_or_create(&pool, &req.h, date_shift_range)
                            .await
                            .map_err(|e| e.to_string());
                        let _ = req.reply.send(res);
                    }
                    pool.close().await;
                });
            })
            .map_err(StoreError::io("vault thread"))?;
        ready_rx
            .recv()
            .map_err(|_| StoreError::Config("vault thread did not start".into()))?
            .map_err(|e| StoreError::Config(format!("vault: {e}")))?;
        Ok(VaultPseudonymizer {
            key_id: key.key_id(),
            key,
            cache: Mutex::new(HashMap::new()),
            requests: Mutex::new(tx),
        })
    }

    fn entry(&self, domain: Domain, id: &SourceId) -> std::result::Result<Entry, PseudonymError> {
        let h = self.key.h(domain, id)?;
        if let Some(e) = self
            .cache
            .lock()
            .map_err(|_| PseudonymError::Vault("cache poisoned".into()))?
            .get(&h)
        {
            return Ok(*e);
        }
        let (reply, answer) = mpsc::channel();
        self.requests
            .lock()
            .map_err(|_| PseudonymError::Vault("channel poisoned".into()))?
            .send(Request {
                h: data_encoding::HEXLOWER.encode(&h),
                reply,
            })
            .map_err(|_| PseudonymError::Vault("vault thread stopped".into()))?;
        let entry = answer
            .recv()
            .map_err(|_| PseudonymError::Vault("vault thread stopped".into()))?
            .map_err(PseudonymError::Vault)?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(h, entry);
        }
        Ok(entry)
    }
}

impl Pseudonymizer for VaultPseudonymizer {
    fn token(&self, domain: Domain, id: &SourceId) -> std::result::Result<Token, PseudonymError> {
        let e = self.entry(domain, id)?;
        Ok(Token {
            text: text_form(&e.text),
            int: e.int,
        })
    }

    fn date_shift_days(&self, patient: &SourceId) -> std::result::Result<i32, PseudonymError> {
        Ok(self.entry(Domain::Patient, patient)?.shift)
    }

    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn mode(&self) -> &'static str {
        "vault"
    }
}

/// Helper for tests and reports: is this text a plausible pseudonym?
pub fn looks_like_pseudonym(p: &Pseudonym) -> bool {
    Pseudonym::parse(p.as_str()).is_some()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id(s: &str) -> SourceId {
        SourceId::new(s.to_owned())
    }

    #[test]
    fn vault_tokens_are_stable_random_and_never_store_the_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.db");
        create(&path).unwrap();
        let key = PseudonymKey::from_bytes([3; 32]);
        let v = VaultPseudonymizer::open(&path, key.clone(), 180).unwrap();
        let a = v.token(Domain::Patient, &id("MRN-777")).unwrap();
        assert!(looks_like_pseudonym(&a.text));
        assert_eq!(a, v.token(Domain::Patient, &id(" mrn-777")).unwrap());
        // Not the keyed pseudonym: the token is random.
        let keyed = mdc_deid::KeyedPseudonymizer::new(key.clone(), 180)
            .token(Domain::Patient, &id("MRN-777"))
            .unwrap();
        assert_ne!(a, keyed);
        let shift = v.date_shift_days(&id("MRN-777")).unwrap();
        assert!(shift != 0 && shift.abs() <= 180);
        drop(v);
        // A second opener (another process) sees the same token and offset.
        let v2 = VaultPseudonymizer::open(&path, key, 180).unwrap();
        assert_eq!(a, v2.token(Domain::Patient, &id("MRN-777")).unwrap());
        assert_eq!(shift, v2.date_shift_days(&id("MRN-777")).unwrap());
        drop(v2);
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(7).any(|w| w == b"MRN-777"));
    }
}
