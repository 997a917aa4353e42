//! The catalog database: one pool over SQLite or PostgreSQL through sqlx's `Any`
//! driver, runtime-checked queries, and embedded migrations per backend.
//!
//! Every write goes through `Db::write`, which takes the single `write_lock` row
//! first. That serialises writers across processes on both backends (SQLite via
//! `BEGIN IMMEDIATE`, PostgreSQL via the row lock), so the audit chain's
//! read-head-then-append never races.

use std::borrow::Cow;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Executor, Transaction};

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

pub type Tx = Transaction<'static, Any>;

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "catalog",
        include_str!("../migrations/sqlite/0001_catalog.sql"),
    ),
    (
        2,
        "outputs",
        include_str!("../migrations/sqlite/0002_outputs.sql"),
    ),
    (
        3,
        "bench",
        include_str!("../migrations/sqlite/0003_bench.sql"),
    ),
    (
        4,
        "table stats",
        include_str!("../migrations/sqlite/0004_table_stats.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "catalog",
        include_str!("../migrations/postgres/0001_catalog.sql"),
    ),
    (
        2,
        "outputs",
        include_str!("../migrations/postgres/0002_outputs.sql"),
    ),
    (
        3,
        "bench",
        include_str!("../migrations/postgres/0003_bench.sql"),
    ),
    (
        4,
        "table stats",
        include_str!("../migrations/postgres/0004_table_stats.sql"),
    ),
];

impl Db {
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(crate::StoreError::Config(
                "database must be a sqlite: or postgres:// URL".into(),
            ));
        };
        let options: AnyConnectOptions = url.parse()?;
        let mut pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(60));
        if backend == Backend::Sqlite {
            // A local file cannot drop a connection: skip the ping on every
            // acquire, a round trip to the worker thread before every statement.
            pool = pool
                .test_before_acquire(false)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        // WAL lets readers run beside the one writer; the busy timeout makes
                        // concurrent CLI processes and the server wait instead of failing.
                        conn.execute("PRAGMA busy_timeout = 30000").await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        Ok(())
                    })
                });
        }
        let pool = pool.connect_with(options).await?;
        Ok(Db { pool, backend })
    }

    pub async fn migrate(&self) -> Result<()> {
        let source = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let migrations: Vec<Migration> = source
            .iter()
            .map(|(v, d, sql)| {
                Migration::new(
                    *v,
                    Cow::Borrowed(*d),
                    MigrationType::Simple,
                    Cow::Borrowed(*sql),
                    false,
                )
            })
            .collect();
        let migrator = Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a write transaction holding the catalog-wide write lock.
    pub async fn write(&self) -> Result<Tx> {
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        let mut tx = self.pool.begin_with(begin).await?;
        sqlx::query("UPDATE write_lock SET n = n + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
