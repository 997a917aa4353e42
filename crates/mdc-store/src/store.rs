//! Opening and initialising a data root, resolving the caller, and the
//! authorize-then-audit plumbing every operation shares.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ed25519_dalek::SigningKey;
use mdc_deid::{KeyedPseudonymizer, PseudonymKey, Pseudonymizer};
use mdc_types::{DuoCode, DuoList, GrantLevel, Role, UserName};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;

use crate::audit::{self, Event, Outcome};
use crate::authz::{
    self, Action, Actor, Allowed, Block, Facts, GrantFacts, IrbFacts, ProjectFacts, Resource,
};
use crate::config::{Config, PseudonymMode, Root};
use crate::db::{Db, Tx};
use crate::error::{Result, StoreError};
use crate::keys;
use crate::vault::{self, VaultPseudonymizer};

/// An open data root.
pub struct Store {
    pub(crate) root: Root,
    pub(crate) config: Config,
    pub(crate) db: Db,
    pub(crate) signer: SigningKey,
    pub(crate) pseudonym_key: PseudonymKey,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .field("key_id", &self.pseudonym_key.key_id())
            .finish_non_exhaustive()
    }
}

/// How the caller identifies itself.
#[derive(Clone)]
pub enum Credential {
    /// A bearer token (HTTP, or `--token`/`MDC_TOKEN` on the CLI).
    Token(String),
    /// The local operating-system account running the CLI.
    Local(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Token(_) => f.write_str("Token([redacted])"),
            Credential::Local(u) => write!(f, "Local({u})"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct InitOptions {
    pub pseudonyms: PseudonymMode,
    pub date_shift_range: u32,
    /// `None`: the embedded SQLite catalog.
    pub database: Option<String>,
    /// The OS account running `init`, made the local operator.
    pub os_user: String,
}

#[derive(Serialize)]
pub struct InitReport {
    pub root: PathBuf,
    pub key_id: String,
    pub pseudonym_mode: PseudonymMode,
    pub database: String,
    pub admin_user: String,
    /// Shown once; only its hash is stored.
    pub admin_token: String,
    pub operator: String,
}

impl std::fmt::Debug for InitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitReport")
            .field("root", &self.root)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// `--since` as a date (`2026-11-01`, Korea time midnight) or an RFC 3339 time,
/// turned into the stored UTC text form so that text comparison is time order.
fn normalise_since(since: &str) -> Result<String> {
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(since.trim()) {
        return Ok(fmt(t.with_timezone(&chrono::Utc)));
    }
    let day = mdc_types::parse_date("since", since)
        .map_err(|_| StoreError::invalid("since", "expected YYYY-MM-DD or an RFC 3339 time"))?;
    let kst_midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default() - chrono::Duration::hours(9);
    Ok(fmt(kst_midnight.and_utc()))
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for printing.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((creds, host)) if creds.contains(':') => {
            let user = creds.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// Today in Korea Standard Time: IRB and consent dates are Korean calendar
/// dates, so every "as of today" check (consent, IRB validity) uses this one
/// clock; a UTC date lags it from 15:00 to 24:00 UTC.
pub fn today() -> NaiveDate {
    let now = chrono::Utc::now();
    match chrono::FixedOffset::east_opt(9 * 3600) {
        Some(kst) => now.with_timezone(&kst).date_naive(),
        None => now.date_naive(),
    }
}

impl Store {
    /// Creates a new data root. Refuses if one exists; never overwrites keys.
    pub async fn init(root: &Path, opts: InitOptions) -> Result<InitReport> {
        let root = Root::new(root);
        if root.config_file().exists() || root.pseudonym_key().exists() || root.audit_key().exists()
        {
            return Err(StoreError::Conflict(format!(
                "{} is already an mdc data root; init never overwrites keys (use another --root)",
                root.path().display()
            )));
        }
        if !(1..=3650).contains(&opts.date_shift_range) {
            return Err(StoreError::invalid(
                "date-shift-range",
                "must be between 1 and 3650 days",
            ));
        }
        let created_root = !root.path().exists();
        let result = Self::init_inner(&root, &opts).await;
        if result.is_err() {
            // Leave nothing half-made: remove what this call created.
            if created_root {
                let _ = fs::remove_dir_all(root.path());
            } else {
                for p in [
                    root.pseudonym_key(),
                    root.audit_key(),
                    root.vault(),
                    root.path().join("catalog.db"),
                ] {
                    let _ = fs::remove_file(p);
                }
                let _ = fs::remove_file(root.path().join("catalog.db-wal"));
                let _ = fs::remove_file(root.path().join("catalog.db-shm"));
            }
        }
        result
    }

    async fn init_inner(root: &Root, opts: &InitOptions) -> Result<InitReport> {
        fs::create_dir_all(root.path()).map_err(StoreError::io(root.path()))?;
        fs::create_dir_all(root.keys_dir()).map_err(StoreError::io(root.keys_dir()))?;
        fs::set_permissions(root.keys_dir(), fs::Permissions::from_mode(0o700))
            .map_err(StoreError::io(root.keys_dir()))?;
        for d in [root.datasets_dir(), root.outputs_dir()] {
            fs::create_dir_all(&d).map_err(StoreError::io(&d))?;
        }
        let pkey: [u8; 32] = keys::random_bytes();
        keys::write_secret(&root.pseudonym_key(), &pkey)?;
        let signer = SigningKey::from_bytes(&keys::random_bytes());
        keys::write_secret(&root.audit_key(), signer.as_bytes())?;
        if opts.pseudonyms == PseudonymMode::Vault {
            vault::create(&root.vault())?;
        }
        let database = opts
            .database
            .clone()
            .unwrap_or_else(|| "sqlite:catalog.db".into());
        let config = Config::new(database.clone(), opts.pseudonyms, opts.date_shift_range);
        let db = Db::connect(&root.database_url(&config.database, true)).await?;
        db.migrate().await?;
        let existing: i64 = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(db.pool())
            .await?
            .try_get(0)?;
        if existing > 0 {
            db.close().await;
            return Err(StoreError::Conflict(
                "the catalog database already holds an initialised root".into(),
            ));
        }
        let store = Store {
            root: root.clone(),
            config: config.clone(),
            db,
            signer,
            pseudonym_key: PseudonymKey::from_bytes(pkey),
        };
        let operator = UserName::local(&opts.os_user)?;
        let actor = Actor {
            name: operator.to_string(),
            via: "local".into(),
            client: "cli".into(),
            roles: vec![Role::Admin, Role::Steward],
            blocked: None,
        };
        let mut tx = store.db.write().await?;
        let mut params = Map::new();
        params.insert("pseudonym_mode".into(), opts.pseudonyms.as_str().into());
        params.insert("date_shift_range".into(), opts.date_shift_range.into());
        params.insert("key_id".into(), store.pseudonym_key.key_id().into());
        store
            .audit_in(
                &mut tx,
                &actor,
                "root.init",
                &Resource::System,
                Allowed::default(),
                params,
            )
            .await?;
        crate::users::insert_user(
            &store,
            &mut tx,
            &actor,
            &operator,
            &[Role::Admin, Role::Steward],
            Some("local operator"),
        )
        .await?;
        let admin = UserName::parse("user", "admin")?;
        crate::users::insert_user(
            &store,
            &mut tx,
            &actor,
            &admin,
            &[Role::Admin],
            Some("first administrator"),
        )
        .await?;
        let token =
            crate::users::insert_token(&store, &mut tx, &actor, &admin, Some("init"), None).await?;
        tx.commit().await?;
        store.db.close().await;
        // The config file is written last: a root without it is not a root.
        let tmp = root.path().join(".mdc.toml.tmp");
        fs::write(&tmp, config.to_toml()).map_err(StoreError::io(&tmp))?;
        fs::rename(&tmp, root.config_file()).map_err(StoreError::io(root.config_file()))?;
        Ok(InitReport {
            root: root.path().to_owned(),
            key_id: store.pseudonym_key.key_id(),
            pseudonym_mode: opts.pseudonyms,
            database: redact_password(&database),
            admin_user: admin.to_string(),
            admin_token: token.secret,
            operator: operator.to_string(),
        })
    }

    pub async fn open(root: &Path) -> Result<Store> {
        let root = Root::new(root);
        let config = Config::load(&root)?;
        let pseudonym_key = keys::load_pseudonym_key(&root.pseudonym_key())?;
        let signer = keys::load_audit_key(&root.audit_key())?;
        let db = Db::connect(&root.database_url(&config.database, false))
            .await
            .map_err(|e| {
                // Never print a PostgreSQL URL: it may carry a password.
                let what = if config.database.starts_with("sqlite:") {
                    config.database.clone()
                } else {
                    "the PostgreSQL catalog".into()
                };
                StoreError::Config(format!(
                    "cannot open {what} of root {}: {e}",
                    root.path().display()
                ))
            })?;
        db.migrate().await?;
        Ok(Store {
            root,
            config,
            db,
            signer,
            pseudonym_key,
        })
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn key_id(&self) -> String {
        self.pseudonym_key.key_id()
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    /// The pseudonymiser of this root's mode (DESIGN §4), for the de-id engines.
    pub fn pseudonymizer(&self) -> Result<Box<dyn Pseudonymizer>> {
        Ok(match self.config.pseudonym_mode {
            PseudonymMode::Keyed => Box::new(KeyedPseudonymizer::new(
                self.pseudonym_key.clone(),
                self.config.date_shift_range,
            )),
            PseudonymMode::Vault => Box::new(VaultPseudonymizer::open(
                &self.root.vault(),
                self.pseudonym_key.clone(),
                self.config.date_shift_range,
            )?),
        })
    }

    /// Resolves a credential to an actor. An unknown token is refused outright
    /// (and the attempt audited); a known-but-blocked actor is returned with the
    /// block so that `authorize` denies, and audits, each action.
    pub async fn actor(&self, credential: &Credential, client: &str) -> Result<Actor> {
        let (name, via, token_block) = match credential {
            Credential::Local(os_user) => (
                UserName::local(os_user)?.to_string(),
                "local".to_owned(),
                None,
            ),
            Credential::Token(secret) => {
                let hash = audit::sha256_hex(&[secret.trim().as_bytes()]);
                let row = sqlx::query(
                    "SELECT id, user_name, revoked_at, expires_at FROM tokens WHERE hash = $1",
                )
                .bind(&hash)
                .fetch_optional(self.db.pool())
                .await?;
                let Some(row) = row else {
                    let actor = Actor {
                        name: "unknown".into(),
                        via: "token:unknown".into(),
                        client: client.into(),
                        roles: vec![],
                        blocked: None,
                    };
                    let mut tx = self.db.write().await?;
                    let ev = self.event(
                        &actor,
                        "auth.token",
                        &Resource::System,
                        Outcome::Denied,
                        Some("unknown token".into()),
                        Allowed::default(),
                        Map::new(),
                    );
                    audit::record(
                        &mut tx,
                        &self.signer,
                        self.config.audit_checkpoint_every,
                        &ev,
                    )
                    .await?;
                    tx.commit().await?;
                    return Err(StoreError::Unauthenticated("unknown token".into()));
                };
                let id: String = row.try_get(0)?;
                let revoked: Option<String> = row.try_get(2)?;
                let expires: Option<String> = row.try_get(3)?;
                let block = if revoked.is_some() {
                    Some(Block::TokenRevoked)
                } else if expires.is_some_and(|e| e < audit::now_text()) {
                    Some(Block::TokenExpired)
                } else {
                    None
                };
                (row.try_get::<String, _>(1)?, format!("token:{id}"), block)
            }
        };
        let user = sqlx::query("SELECT roles, disabled_at FROM users WHERE name = $1")
            .bind(&name)
            .fetch_optional(self.db.pool())
            .await?;
        let (roles, blocked) = match user {
            None => (vec![], Some(Block::UnknownUser)),
            Some(row) => {
                let roles: String = row.try_get(0)?;
                let disabled: Option<String> = row.try_get(1)?;
                let roles = Role::parse_list("roles", &roles).unwrap_or_default();
                (
                    roles,
                    if disabled.is_some() {
                        Some(Block::Disabled)
                    } else {
                        token_block
                    },
                )
            }
        };
        Ok(Actor {
            name,
            via,
            client: client.into(),
            roles,
            blocked,
        })
    }

    #[allow(clippy::unused_self)]
    pub(crate) fn event(
        &self,
        actor: &Actor,
        action: &str,
        resource: &Resource,
        outcome: Outcome,
        reason: Option<String>,
        allowed: Allowed,
        params: Map<String, Value>,
    ) -> Event {
        Event {
            actor: actor.name.clone(),
            via: actor.via.clone(),
            client: actor.client.clone(),
            action: action.into(),
            resource: resource.to_string(),
            project: resource.project().map(str::to_owned),
            grant: allowed.grant,
            irb: allowed.irb,
            outcome,
            reason,
            params,
        }
    }

    /// Appends an "allowed" entry inside the caller's transaction.
    pub(crate) async fn audit_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        action: &str,
        resource: &Resource,
        allowed: Allowed,
        params: Map<String, Value>,
    ) -> Result<i64> {
        let ev = self.event(
            actor,
            action,
            resource,
            Outcome::Allowed,
            None,
            allowed,
            params,
        );
        audit::record(tx, &self.signer, self.config.audit_checkpoint_every, &ev).await
    }

    /// The one authorisation entry point. Denials are audited here, with the reason.
    pub async fn authorize(
        &self,
        actor: &Actor,
        action: Action,
        resource: &Resource,
    ) -> Result<Allowed> {
        let facts = self.facts(actor, resource).await?;
        match authz::decide(actor, action, resource, &facts) {
            Ok(allowed) => Ok(allowed),
            Err(denied) => {
                let mut tx = self.db.write().await?;
                let ev = self.event(
                    actor,
                    action.name(),
                    resource,
                    Outcome::Denied,
                    Some(denied.reason.clone()),
                    Allowed::default(),
                    Map::new(),
                );
                audit::record(
                    &mut tx,
                    &self.signer,
                    self.config.audit_checkpoint_every,
                    &ev,
                )
                .await?;
                tx.commit().await?;
                Err(StoreError::Denied(denied))
            }
        }
    }

    /// Everything the decision needs, in two statements (one for the
    /// project, the actor's membership and the IRB in force; one for the
    /// grants and use conditions of a dataset version): authorisation runs
    /// on every call, so its round trips are per-query cost.
    async fn facts(&self, actor: &Actor, resource: &Resource) -> Result<Facts> {
        let mut facts = Facts {
            today: Some(today()),
            ..Facts::default()
        };
        let Some(project) = resource.project() else {
            return Ok(facts);
        };
        let Some(row) = sqlx::query(
            "SELECT p.status, p.purpose, p.commercial, p.country, \
             (SELECT m.role FROM project_members m WHERE m.project = p.name AND m.user_name = $2), \
             i.id, i.number, i.approved_on, i.expires_on \
             FROM projects p LEFT JOIN irb_approvals i ON i.id = \
             (SELECT MAX(x.id) FROM irb_approvals x WHERE x.project = p.name) \
             WHERE p.name = $1",
        )
        .bind(project)
        .bind(&actor.name)
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(facts);
        };
        let membership: Option<String> = row.try_get(4)?;
        let irb = match row.try_get::<Option<i64>, _>(5)? {
            None => None,
            Some(id) => Some(IrbFacts {
                id,
                number: row.try_get(6)?,
                approved_on: mdc_types::parse_date("irb approved", &row.try_get::<String, _>(7)?)?,
                expires_on: mdc_types::parse_date("irb expiry", &row.try_get::<String, _>(8)?)?,
            }),
        };
        let mut grants = Vec::new();
        if let Resource::DatasetVersion {
            dataset, version, ..
        } = resource
        {
            // The version's use conditions ride along on every grant row; a
            // version with no grant still yields one row with NULL grant.
            let rows = sqlx::query(
                "SELECT g.id, g.version, g.level, \
                 (SELECT v.use_codes FROM dataset_versions v WHERE v.dataset = $2 AND v.version = $3) \
                 FROM (SELECT 1 AS one) o LEFT JOIN grants g ON g.project = $1 AND g.dataset = $2 \
                 ORDER BY g.version",
            )
            .bind(project)
            .bind(dataset)
            .bind(*version)
            .fetch_all(self.db.pool())
            .await?;
            let mut uses: Option<String> = None;
            for r in &rows {
                uses = r.try_get(3)?;
                if let Some(id) = r.try_get::<Option<i64>, _>(0)? {
                    grants.push(GrantFacts {
                        id,
                        version: r.try_get(1)?,
                        level: GrantLevel::parse("level", &r.try_get::<String, _>(2)?)?,
                    });
                }
            }
            facts.dataset_use = uses.map(|u| DuoList::parse("use", &u)).transpose()?;
        }
        let purpose: String = row.try_get(1)?;
        facts.project = Some(ProjectFacts {
            approved: row.try_get::<String, _>(0)? == "approved",
            purpose: DuoCode::parse("purpose", &purpose)?,
            commercial: row.try_get::<i64, _>(2)? != 0,
            country: row.try_get(3)?,
            membership,
            irb,
            grants,
        });
        Ok(facts)
    }

    // ---- audit operations -------------------------------------------------

    pub async fn audit_log(
        &self,
        actor: &Actor,
        filter: &audit::LogFilter,
    ) -> Result<Vec<audit::Entry>> {
        let mut filter = filter.clone();
        if let Some(since) = &filter.since {
            filter.since = Some(normalise_since(since)?);
        }
        if filter.limit.is_some_and(|l| l < 1) {
            return Err(StoreError::invalid("limit", "must be at least 1"));
        }
        self.authorize(actor, Action::ReadAudit, &Resource::System)
            .await?;
        audit::list(&self.db, &filter).await
    }

    pub async fn audit_verify(
        &self,
        actor: &Actor,
        against: Option<&audit::Checkpoint>,
    ) -> Result<audit::VerifyReport> {
        self.authorize(actor, Action::ReadAudit, &Resource::System)
            .await?;
        audit::verify(&self.db, &self.signer.verifying_key(), against).await
    }

    /// Signs the current head, stores it, and returns it for export.
    pub async fn audit_checkpoint(&self, actor: &Actor) -> Result<audit::Checkpoint> {
        let allowed = self
            .authorize(actor, Action::Checkpoint, &Resource::System)
            .await?;
        let mut tx = self.db.write().await?;
        self.audit_in(
            &mut tx,
            actor,
            "audit.checkpoint",
            &Resource::System,
            allowed,
            Map::new(),
        )
        .await?;
        let cp = audit::checkpoint_head(&mut tx, &self.signer).await?;
        tx.commit().await?;
        Ok(cp)
    }

    // ---- keys ---------------------------------------------------------------

    /// An encrypted export of the keys (and the vault), for `mdc key backup`.
    pub async fn key_backup(&self, actor: &Actor, passphrase: &str) -> Result<Vec<u8>> {
        let allowed = self
            .authorize(actor, Action::BackupKeys, &Resource::System)
            .await?;
        let mut files = std::collections::BTreeMap::new();
        files.insert(
            "pseudonym.key".to_owned(),
            keys::b64(self.pseudonym_key.as_bytes()),
        );
        files.insert(
            "audit.ed25519".to_owned(),
            keys::b64(self.signer.as_bytes()),
        );
        if self.root.vault().exists() {
            // VACUUM INTO takes a consistent snapshot even while the vault is in use.
            let snap = tempfile::Builder::new()
                .prefix(".vault-backup-")
                .tempdir_in(self.root.keys_dir())
                .map_err(StoreError::io(self.root.keys_dir()))?;
            let snap_path = snap.path().join("vault.db");
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(self.root.vault())
                .read_only(true);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await?;
            sqlx::query("VACUUM INTO $1")
                .bind(snap_path.display().to_string())
                .execute(&pool)
                .await?;
            pool.close().await;
            let bytes = fs::read(&snap_path).map_err(StoreError::io(&snap_path))?;
            files.insert("vault.db".to_owned(), keys::b64(&bytes));
        }
        let contents = keys::BackupContents {
            format: "mdc-key-backup/1".into(),
            created_at: audit::now_text(),
            key_id: self.key_id(),
            pseudonym_mode: self.config.pseudonym_mode.as_str().into(),
            files,
        };
        let sealed = keys::encrypt_backup(&contents, passphrase)?;
        let mut tx = self.db.write().await?;
        let mut params = Map::new();
        params.insert("key_id".into(), self.key_id().into());
        params.insert(
            "files".into(),
            contents.files.keys().cloned().collect::<Vec<_>>().into(),
        );
        self.audit_in(
            &mut tx,
            actor,
            "key.backup",
            &Resource::System,
            allowed,
            params,
        )
        .await?;
        tx.commit().await?;
        Ok(sealed)
    }

    /// Restores keys from a backup into `keys/` of a root whose keys are missing.
    /// Never overwrites an existing key file.
    pub fn restore_keys(root: &Path, backup: &[u8], passphrase: &str) -> Result<Vec<String>> {
        let root = Root::new(root);
        let contents = keys::decrypt_backup(backup, passphrase)?;
        fs::create_dir_all(root.keys_dir()).map_err(StoreError::io(root.keys_dir()))?;
        let mut restored = Vec::new();
        for (name, data) in &contents.files {
            if !matches!(
                name.as_str(),
                "pseudonym.key" | "audit.ed25519" | "vault.db"
            ) {
                return Err(StoreError::invalid(
                    "backup file",
                    "unexpected file in backup",
                ));
            }
            let target = root.keys_dir().join(name);
            if target.exists() {
                return Err(StoreError::Conflict(format!(
                    "{} exists; restore never overwrites keys",
                    target.display()
                )));
            }
            keys::write_secret(&target, &keys::unb64("backup file", data)?)?;
            restored.push(name.clone());
        }
        Ok(restored)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn since_accepts_dates_and_times_and_rejects_anything_else() {
        assert_eq!(
            super::normalise_since("2026-11-01").unwrap(),
            "2026-10-31T15:00:00.000000Z"
        );
        assert_eq!(
            super::normalise_since("2026-11-01T09:30:00+09:00").unwrap(),
            "2026-11-01T00:30:00.000000Z"
        );
        assert!(super::normalise_since("yesterday").is_err());
        assert!(super::normalise_since("2026-02-30").is_err());
    }

    #[test]
    fn database_passwords_are_never_printed() {
        assert_eq!(
            super::redact_password("postgres://mdc:s3cret@db:5432/mdc"),
            "postgres://mdc:***@db:5432/mdc"
        );
        assert_eq!(
            super::redact_password("postgres://mdc@db/mdc"),
            "postgres://mdc@db/mdc"
        );
        assert_eq!(
            super::redact_password("sqlite:catalog.db"),
            "sqlite:catalog.db"
        );
    }
}
