//! The tamper-evident audit log (DESIGN §7).
//!
//! Each entry's body is canonical JSON (RFC 8785) stored as text, and
//! `hash = SHA-256(prev_hash ‖ body)` over exactly the stored bytes, so SQLite and
//! PostgreSQL verify identically. Checkpoints sign `(count, head, time)` with
//! Ed25519; one exported off the host lets an auditor detect truncation or a
//! rewritten chain, which the chain alone cannot.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::canonical::canonical_json;
use crate::db::{Db, Tx};
use crate::error::{Result, StoreError};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allowed,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
        }
    }
}

/// One thing that happened. Parameters must never hold PHI: callers pass names
/// of catalog objects, counts and digests, never a record number or a name.
#[derive(Debug, Clone)]
pub struct Event {
    pub actor: String,
    pub via: String,
    pub client: String,
    pub action: String,
    pub resource: String,
    pub project: Option<String>,
    pub grant: Option<i64>,
    pub irb: Option<i64>,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub params: Map<String, Value>,
}

/// A stored entry, as `audit log` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub seq: i64,
    pub hash: String,
    #[serde(flatten)]
    pub body: Value,
}

pub fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

pub fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    data_encoding::HEXLOWER.encode(&h.finalize())
}

pub fn chain_hash(prev: &str, body: &str) -> String {
    sha256_hex(&[prev.as_bytes(), body.as_bytes()])
}

/// Appends one entry inside the caller's write transaction, and signs a
/// checkpoint when the entry count reaches a multiple of `every`.
pub async fn record(tx: &mut Tx, signer: &SigningKey, every: u64, event: &Event) -> Result<i64> {
    let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    let (prev_seq, prev_hash) = match head {
        Some(row) => (row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?),
        None => (0, GENESIS.to_owned()),
    };
    let seq = prev_seq + 1;
    let time = now_text();
    let body = json!({
        "seq": seq,
        "time": time,
        "actor": event.actor,
        "via": event.via,
        "client": event.client,
        "action": event.action,
        "resource": event.resource,
        "project": event.project,
        "grant": event.grant,
        "irb": event.irb,
        "outcome": event.outcome.as_str(),
        "reason": event.reason,
        "params": Value::Object(event.params.clone()),
    });
    let body = canonical_json(&body).map_err(|e| StoreError::Config(e.to_string()))?;
    let hash = chain_hash(&prev_hash, &body);
    sqlx::query(
        "INSERT INTO audit_log (seq, time, actor, action, resource, project, outcome, body, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq)
    .bind(&time)
    .bind(&event.actor)
    .bind(&event.action)
    .bind(&event.resource)
    .bind(event.project.as_deref())
    .bind(event.outcome.as_str())
    .bind(&body)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    if (seq as u64) % every == 0 {
        insert_checkpoint(tx, signer, seq, &hash).await?;
    }
    Ok(seq)
}

/// A signed statement that the log had `count` entries ending in `head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: String,
    pub count: i64,
    pub head: String,
    pub time: String,
    pub public_key: String,
    pub signature: String,
}

pub const CHECKPOINT_FORMAT: &str = "mdc-audit-checkpoint/1";

fn checkpoint_message(count: i64, head: &str, time: &str) -> String {
    // Canonical JSON of three strings and an integer cannot fail.
    canonical_json(
        &json!({"format": CHECKPOINT_FORMAT, "count": count, "head": head, "time": time}),
    )
    .unwrap_or_default()
}

pub fn sign_checkpoint(signer: &SigningKey, count: i64, head: &str) -> Checkpoint {
    let time = now_text();
    let sig = signer.sign(checkpoint_message(count, head, &time).as_bytes());
    Checkpoint {
        format: CHECKPOINT_FORMAT.into(),
        count,
        head: head.to_owned(),
        time,
        public_key: data_encoding::HEXLOWER.encode(signer.verifying_key().as_bytes()),
        signature: data_encoding::HEXLOWER.encode(&sig.to_bytes()),
    }
}

/// Checks a checkpoint's signature against the root's own public key.
pub fn check_signature(cp: &Checkpoint, key: &VerifyingKey) -> std::result::Result<(), String> {
    if cp.format != CHECKPOINT_FORMAT {
        return Err(format!("unknown checkpoint format '{}'", cp.format));
    }
    if cp.public_key != data_encoding::HEXLOWER.encode(key.as_bytes()) {
        return Err("checkpoint was signed by a different key than this root's audit key".into());
    }
    let sig = data_encoding::HEXLOWER
        .decode(cp.signature.as_bytes())
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or("checkpoint signature is malformed")?;
    key.verify(
        checkpoint_message(cp.count, &cp.head, &cp.time).as_bytes(),
        &sig,
    )
    .map_err(|_| "checkpoint signature does not verify".to_owned())
}

async fn insert_checkpoint(
    tx: &mut Tx,
    signer: &SigningKey,
    seq: i64,
    head: &str,
) -> Result<Checkpoint> {
    let cp = sign_checkpoint(signer, seq, head);
    let id: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 FROM audit_checkpoints")
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    sqlx::query("INSERT INTO audit_checkpoints (id, seq, head_hash, time, public_key, signature) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(cp.count)
        .bind(&cp.head)
        .bind(&cp.time)
        .bind(&cp.public_key)
        .bind(&cp.signature)
        .execute(&mut **tx)
        .await?;
    Ok(cp)
}

/// Signs the current head (inside a write transaction) and stores the checkpoint.
pub async fn checkpoint_head(tx: &mut Tx, signer: &SigningKey) -> Result<Checkpoint> {
    let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    let (seq, hash) = match head {
        Some(row) => (row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?),
        None => (0, GENESIS.to_owned()),
    };
    insert_checkpoint(tx, signer, seq, &hash).await
}

/// What `audit verify` found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub entries: i64,
    pub head: String,
    pub checkpoints_checked: usize,
    pub against_checked: bool,
    /// The first problem found, naming the entry.
    pub first_problem: Option<Problem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Problem {
    pub seq: i64,
    pub kind: String,
    pub detail: String,
}

fn problem(seq: i64, kind: &str, detail: String) -> Problem {
    Problem {
        seq,
        kind: kind.into(),
        detail,
    }
}

/// Recomputes the chain, checks every stored checkpoint, and optionally an
/// exported one. Reads in pages so the whole log never sits in memory.
pub async fn verify(
    db: &Db,
    key: &VerifyingKey,
    against: Option<&Checkpoint>,
) -> Result<VerifyReport> {
    const PAGE: i64 = 5000;
    let mut expected_seq = 1i64;
    let mut prev = GENESIS.to_owned();
    let mut hashes_wanted: std::collections::BTreeMap<i64, Vec<(String, String)>> =
        Default::default();
    let mut first: Option<Problem> = None;

    // Checkpoints first, so the chain pass can compare heads as it goes.
    let cps = sqlx::query(
        "SELECT id, seq, head_hash, time, public_key, signature FROM audit_checkpoints ORDER BY id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut checkpoints = Vec::new();
    for row in &cps {
        let id: i64 = row.try_get(0)?;
        let cp = Checkpoint {
            format: CHECKPOINT_FORMAT.into(),
            count: row.try_get(1)?,
            head: row.try_get(2)?,
            time: row.try_get(3)?,
            public_key: row.try_get(4)?,
            signature: row.try_get(5)?,
        };
        // Only a checkpoint with a good signature is evidence about the log.
        match check_signature(&cp, key) {
            Err(why) => {
                first.get_or_insert(problem(
                    cp.count,
                    "bad-checkpoint",
                    format!("stored checkpoint #{id}: {why}"),
                ));
            }
            Ok(()) => hashes_wanted
                .entry(cp.count)
                .or_default()
                .push((format!("stored checkpoint #{id}"), cp.head.clone())),
        }
        checkpoints.push(cp);
    }
    let mut against_checked = false;
    if let Some(cp) = against {
        match check_signature(cp, key) {
            Err(why) => {
                first.get_or_insert(problem(
                    cp.count,
                    "bad-checkpoint",
                    format!("exported checkpoint: {why}"),
                ));
            }
            Ok(()) => hashes_wanted
                .entry(cp.count)
                .or_default()
                .push(("the exported checkpoint".into(), cp.head.clone())),
        }
        against_checked = true;
    }

    let mut last_seen = 0i64;
    'pages: loop {
        let rows = sqlx::query(
            "SELECT seq, time, actor, action, resource, project, outcome, body, prev_hash, hash \
             FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(last_seen)
        .bind(PAGE)
        .fetch_all(db.pool())
        .await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let seq: i64 = row.try_get(0)?;
            last_seen = seq;
            let body: String = row.try_get(7)?;
            let stored_prev: String = row.try_get(8)?;
            let stored_hash: String = row.try_get(9)?;
            if seq != expected_seq {
                first = Some(problem(
                    expected_seq,
                    "missing",
                    format!("entry {expected_seq} is missing: the log jumps from {} to {seq} (deleted entries)", expected_seq - 1),
                ));
                break 'pages;
            }
            let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if parsed.get("seq").and_then(Value::as_i64) != Some(seq) {
                first = Some(problem(seq, "reordered", format!("entry {seq}'s hashed body carries another position: entries were moved or reordered")));
                break 'pages;
            }
            if stored_prev != prev {
                first = Some(problem(seq, "unlinked", format!("entry {seq} does not link to entry {}: an entry was inserted, removed or reordered before it", seq - 1)));
                break 'pages;
            }
            if chain_hash(&prev, &body) != stored_hash {
                first = Some(problem(
                    seq,
                    "edited",
                    format!("entry {seq}'s content does not match its hash: it was edited"),
                ));
                break 'pages;
            }
            let columns = [
                ("time", row.try_get::<String, _>(1)?),
                ("actor", row.try_get::<String, _>(2)?),
                ("action", row.try_get::<String, _>(3)?),
                ("resource", row.try_get::<String, _>(4)?),
                ("outcome", row.try_get::<String, _>(6)?),
            ];
            let project: Option<String> = row.try_get(5)?;
            let columns_match = columns
                .iter()
                .all(|(k, v)| parsed.get(*k).and_then(Value::as_str) == Some(v.as_str()))
                && parsed.get("project").and_then(Value::as_str) == project.as_deref();
            if !columns_match {
                first = Some(problem(
                    seq,
                    "edited",
                    format!(
                        "entry {seq}'s indexed columns differ from its hashed body: it was edited"
                    ),
                ));
                break 'pages;
            }
            if let Some(wanted) = hashes_wanted.get(&seq) {
                for (who, head) in wanted {
                    if *head != stored_hash {
                        first = Some(problem(seq, "rewritten", format!("entry {seq} differs from {who}: the chain was rewritten from here or earlier")));
                        break 'pages;
                    }
                }
            }
            prev = stored_hash;
            expected_seq += 1;
        }
    }
    let entries = expected_seq - 1;
    if first.is_none() {
        if let Some((count, wanted)) = hashes_wanted.range(entries + 1..).next() {
            let who = wanted.first().map_or("a checkpoint", |w| w.0.as_str());
            first = Some(problem(
                entries + 1,
                "truncated",
                format!("the log has {entries} entries but {who} covers {count}: entries were removed from the end"),
            ));
        }
    }
    Ok(VerifyReport {
        ok: first.is_none(),
        entries,
        head: prev,
        checkpoints_checked: checkpoints.len(),
        against_checked,
        first_problem: first,
    })
}

/// Filters for `audit log`.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub since: Option<String>,
    pub actor: Option<String>,
    pub project: Option<String>,
    pub limit: Option<i64>,
}

pub async fn list(db: &Db, filter: &LogFilter) -> Result<Vec<Entry>> {
    let rows = sqlx::query(
        "SELECT seq, hash, body FROM audit_log \
         WHERE ($1 = '' OR time >= $1) AND ($2 = '' OR actor = $2) AND ($3 = '' OR project = $3) \
         ORDER BY seq LIMIT $4",
    )
    .bind(filter.since.clone().unwrap_or_default())
    .bind(filter.actor.clone().unwrap_or_default())
    .bind(filter.project.clone().unwrap_or_default())
    .bind(filter.limit.unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let body: String = r.try_get(2)?;
            Ok(Entry {
                seq: r.try_get(0)?,
                hash: r.try_get(1)?,
                body: serde_json::from_str(&body).unwrap_or(Value::String(body)),
            })
        })
        .collect()
}
